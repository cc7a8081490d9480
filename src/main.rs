fn main() -> std::process::ExitCode {
    hookplane::cli::run()
}
