//! `hookplane admin`: API tokens, on the data directory of a stopped instance.

use std::path::PathBuf;

use clap::Subcommand;

use super::{load_settings, open_stopped_store};
use crate::auth::Role;
use crate::config::Flags;
use crate::domain::{Clock as _, SystemClock};
use crate::storage::tokens;

#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// Configuration file (default: HOOKPLANE_CONFIG, else the built-in defaults).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (overrides `data_dir` and HOOKPLANE_DATA_DIR).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Make an API token and print it once; only its SHA-256 is kept.
    CreateToken {
        /// What the token is for; unique among live tokens.
        #[arg(long)]
        name: String,
        /// viewer, operator or admin.
        #[arg(long)]
        role: Role,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke the live token with this name.
    RevokeToken {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List tokens, live and revoked (never the tokens themselves).
    ListTokens {
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub fn run(cmd: AdminCommand) -> anyhow::Result<()> {
    let now = SystemClock.now();
    match cmd {
        AdminCommand::CreateToken { name, role, store } => {
            let store = open(&store)?;
            let (token, secret) = tokens::create(&*store.db()?, &name, role, "cli", now)?;
            eprintln!("Made token `{}` ({}) with the {} role. It is shown once:", token.name, token.id, token.role);
            println!("{}", String::from_utf8_lossy(secret.expose()));
        }
        AdminCommand::RevokeToken { name, store } => {
            let store = open(&store)?;
            match tokens::revoke(&*store.db()?, &name, now)? {
                Some(t) => println!("revoked token `{}` ({})", t.name, t.id),
                None => {
                    anyhow::bail!("there is no live token named `{name}` (`hookplane admin list-tokens` lists them)")
                }
            }
        }
        AdminCommand::ListTokens { store } => {
            let store = open(&store)?;
            for t in tokens::list(&*store.db()?)? {
                let state = t.revoked_at.map_or_else(|| "live".to_owned(), |at| format!("revoked {at}"));
                println!("{}\t{}\t{}\tmade {} by {}\t{state}", t.id, t.name, t.role, t.created_at, t.created_by);
            }
        }
    }
    Ok(())
}

fn open(args: &StoreArgs) -> anyhow::Result<crate::storage::Store> {
    let settings =
        load_settings(&Flags { config: args.config.clone(), data_dir: args.data_dir.clone(), ..Flags::default() })?;
    open_stopped_store(&settings.data_dir, "stop it first")
}
