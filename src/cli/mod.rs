//! The command line. `main` calls [`run`]; each subcommand lives in its own file.

mod check;
mod serve;
mod subscriptions;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Flags, Settings};

#[derive(Parser, Debug)]
#[command(name = "hookplane", version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("BUILD_GIT_SHA"), ")"))]
#[command(
    about = "A webhooks control plane: receive, verify, store, search and replay Shopify, Zoho and Standard Webhooks."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per process
enum Command {
    /// Run the server.
    Serve(serve::ServeArgs),
    /// Validate the configuration (file, environment, declared subscriptions) and exit.
    Check(ConfigArgs),
    /// Print a new random master key (64 hex characters) for HOOKPLANE_MASTER_KEY.
    MasterKey,
    /// Manage subscriptions of a running instance through its API.
    #[command(subcommand)]
    Subscriptions(subscriptions::SubscriptionsCommand),
}

#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// Configuration file (default: HOOKPLANE_CONFIG, else the built-in defaults).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ConfigArgs {
    fn flags(&self) -> Flags {
        Flags { config: self.config.clone(), ..Flags::default() }
    }
}

fn process_env() -> BTreeMap<String, String> {
    std::env::vars().collect()
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Check(args) => check::run(&args),
        Command::MasterKey => {
            println!("{}", crate::secrets::MasterKey::generate().to_hex());
            Ok(())
        }
        Command::Subscriptions(cmd) => subscriptions::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_settings(flags: &Flags) -> anyhow::Result<Settings> {
    Ok(Settings::load(flags, &process_env())?)
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal as _;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stdout().is_terminal())
        .try_init();
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}
