//! The command line. `main` calls [`run`]; each subcommand lives in its own file.

mod admin;
mod alerts;
mod backup;
mod check;
mod compact;
mod deploys;
mod handshake;
mod healthcheck;
mod reindex;
mod send_test;
mod serve;
mod smoke;
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
    /// Ask a running instance's /healthz; exit non-zero unless it is healthy (the container's HEALTHCHECK).
    Healthcheck(healthcheck::HealthcheckArgs),
    /// Print a new random master key (64 hex characters) for HOOKPLANE_MASTER_KEY.
    MasterKey,
    /// Manage subscriptions of a running instance through its API.
    #[command(subcommand)]
    Subscriptions(subscriptions::SubscriptionsCommand),
    /// Send one correctly signed sample delivery (Shopify by default) to a running instance.
    SendTest(send_test::SendTestArgs),
    /// Copy a running instance's store to a file (a consistent snapshot; ingest goes on), through its API
    /// with HOOKPLANE_ADMIN_TOKEN; or, with --data-dir, a stopped instance's. The file is checked before
    /// it is named.
    Backup(backup::BackupArgs),
    /// Check a backup and make it the store of a stopped instance. The search index rebuilds at the next
    /// start.
    Restore(backup::RestoreArgs),
    /// The deploy checklist's smoke step against a running instance: a signed test webhook, stored and
    /// forwarded, replayed once, counted by the dashboard. Uses an operator token (HOOKPLANE_ADMIN_TOKEN by
    /// default) and SHOPIFY_WEBHOOK_SECRET.
    Smoke(smoke::SmokeArgs),
    /// Give the space freed by retention back to the filesystem. Run it while Hookplane is stopped.
    Compact(compact::CompactArgs),
    /// Rebuild the payload search index from storage, with a progress bar. Run it while Hookplane is stopped.
    Reindex(reindex::ReindexArgs),
    /// Make and change operators, and make, list and revoke API tokens. Run it while Hookplane is stopped.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Try the alert sinks.
    #[command(subcommand)]
    Alerts(alerts::AlertsCommand),
    /// Check subscriptions' registrations at their providers now, and repair them, through the API of a
    /// running instance. Uses HOOKPLANE_ADMIN_TOKEN.
    Handshake(handshake::HandshakeArgs),
    /// Set, list and remove the provider credentials handshakes sign in with, through the API of a running
    /// instance. Uses HOOKPLANE_ADMIN_TOKEN.
    #[command(subcommand)]
    Credentials(handshake::CredentialsCommand),
    /// Announce a deploy of the processing service, or list each destination's versions, through the API
    /// of a running instance. Uses HOOKPLANE_ADMIN_TOKEN.
    #[command(subcommand)]
    Deploys(deploys::DeploysCommand),
}

#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// Configuration file (default: HOOKPLANE_CONFIG, else the built-in defaults).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The `detail` of a problem document, or the whole answer when it is not one.
fn problem_detail(text: String) -> String {
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
        .unwrap_or(text)
}

/// Where a command reads a secret from: never an argument, which would show in the process list.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SecretArgs {
    /// Read the secret from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with = "secret_stdin")]
    pub secret_env: Option<String>,
    /// Read the secret from standard input.
    #[arg(long)]
    pub secret_stdin: bool,
}

impl SecretArgs {
    pub fn read(&self) -> anyhow::Result<Option<String>> {
        read_secret(self.secret_env.as_deref(), self.secret_stdin, "the secret")
    }
}

/// A secret from the environment variable `var`, or from standard input (without its final newline), or
/// `None` when neither is asked for; `what` names it in errors.
fn read_secret(var: Option<&str>, stdin: bool, what: &str) -> anyhow::Result<Option<String>> {
    use anyhow::Context as _;
    use std::io::Read as _;
    match (var, stdin) {
        (Some(var), _) => {
            Ok(Some(std::env::var(var).with_context(|| format!("the environment variable `{var}` is not set"))?))
        }
        (None, true) => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .with_context(|| format!("cannot read {what} from standard input"))?;
            Ok(Some(s.trim_end_matches(['\r', '\n']).to_owned()))
        }
        (None, false) => Ok(None),
    }
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
        Command::Healthcheck(args) => healthcheck::run(args),
        Command::MasterKey => {
            println!("{}", crate::secrets::MasterKey::generate().to_hex());
            Ok(())
        }
        Command::Subscriptions(cmd) => subscriptions::run(cmd),
        Command::SendTest(args) => send_test::run(args),
        Command::Reindex(args) => reindex::run(args),
        Command::Compact(args) => compact::run(args),
        Command::Backup(args) => backup::run_backup(args),
        Command::Smoke(args) => smoke::run(args),
        Command::Restore(args) => backup::run_restore(args),
        Command::Admin(cmd) => admin::run(cmd),
        Command::Alerts(cmd) => alerts::run(cmd),
        Command::Handshake(args) => handshake::run_handshake(args),
        Command::Credentials(cmd) => handshake::run_credentials(cmd),
        Command::Deploys(cmd) => deploys::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Not `eprintln!`: it panics when standard error cannot be written.
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_settings(flags: &Flags) -> anyhow::Result<Settings> {
    Ok(Settings::load(flags, &process_env())?)
}

/// The store of an instance that is not running; `in_use` says what to do when one is.
fn open_stopped_store(data_dir: &std::path::Path, in_use: &str) -> anyhow::Result<crate::storage::Store> {
    use crate::storage::{Store, StoreError};
    use anyhow::Context as _;
    if !data_dir.join(crate::storage::DB_FILE).exists() {
        anyhow::bail!("there is no Hookplane store in {} (set --data-dir or HOOKPLANE_DATA_DIR)", data_dir.display());
    }
    match Store::open(data_dir) {
        Ok(s) => Ok(s),
        Err(StoreError::Locked(path)) => anyhow::bail!("{} is in use by a running Hookplane: {in_use}", path.display()),
        Err(e) => Err(e).with_context(|| format!("cannot open the store in {}", data_dir.display())),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}
