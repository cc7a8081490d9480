// glibc's allocator serialises the ingest handlers and the writer thread on its arena locks and spends
// time consolidating freed request buffers; mimalloc keeps per-thread heaps.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    hookplane::cli::run()
}
