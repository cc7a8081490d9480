//! `hookplane admin`: operators and API tokens, on the data directory of a stopped instance. Every change
//! is in the audit log as done by `cli`.

use std::path::PathBuf;

use clap::Subcommand;

use super::{load_settings, open_stopped_store};
use crate::auth::operators;
use crate::config::{Flags, Settings};
use crate::domain::access::Operator;
use crate::domain::access::Role;
use crate::domain::audit::{Actor, AuditAction, Change};
use crate::domain::ids::OperatorId;
use crate::domain::{Clock as _, SystemClock};
use crate::storage::{Store, tokens};

#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// Configuration file (default: HOOKPLANE_CONFIG, else the built-in defaults).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (overrides `data_dir` and HOOKPLANE_DATA_DIR).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

/// Where a new password comes from: never an argument, which would show in the process list. Without
/// either flag a strong password is made and printed once.
#[derive(clap::Args, Debug, Clone)]
pub struct PasswordArgs {
    /// Read the password from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with = "password_stdin")]
    password_env: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Make an operator who signs in to the dashboard.
    CreateUser {
        /// The name they sign in with (a-z, 0-9, `.`, `_`, `-`, `@`; case does not matter).
        #[arg(long)]
        username: String,
        /// viewer, operator or admin.
        #[arg(long)]
        role: Role,
        #[command(flatten)]
        password: PasswordArgs,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set a new password for an operator; their sessions end.
    ResetPassword {
        #[arg(long)]
        username: String,
        #[command(flatten)]
        password: PasswordArgs,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List operators (never their passwords).
    ListUsers {
        #[command(flatten)]
        store: StoreArgs,
    },
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
    let cli = Actor::cli();
    match cmd {
        AdminCommand::CreateUser { username, role, password, store } => {
            let username = operators::username(&username)?;
            let (settings, store) = open(&store)?;
            let (password, generated) = password.read()?;
            let digest = operators::hash_password(&password, settings.auth.password_params())?;
            let op = Operator {
                id: OperatorId::new(now),
                username,
                role,
                password: digest,
                created_at: now,
                created_by: cli.label.clone(),
                password_changed_at: now,
            };
            let entry = cli
                .entry(now, AuditAction::OperatorCreated)
                .target(op.id)
                .change(Change::set("username", op.username.clone()))
                .change(Change::set("role", role.as_str()));
            crate::storage::operators::create(&*store.db()?, &op, &entry)?;
            println!("made operator `{}` ({}) with the {} role", op.username, op.id, op.role);
            if generated {
                println!("password (shown once): {password}");
            }
        }
        AdminCommand::ResetPassword { username, password, store } => {
            let username = operators::username(&username)?;
            let (settings, store) = open(&store)?;
            let (password, generated) = password.read()?;
            let digest = operators::hash_password(&password, settings.auth.password_params())?;
            let entry = |op: &Operator| {
                cli.entry(now, AuditAction::PasswordReset).target(op.id).change(Change::changed(
                    "password_changed_at",
                    op.password_changed_at.to_rfc3339(),
                    now.to_rfc3339(),
                ))
            };
            match crate::storage::operators::set_password(&*store.db()?, &username, digest, entry)? {
                Some(op) => println!("set a new password for `{}`; their sessions have ended", op.username),
                None => anyhow::bail!("there is no operator `{username}` (`hookplane admin list-users` lists them)"),
            }
            if generated {
                println!("password (shown once): {password}");
            }
        }
        AdminCommand::ListUsers { store } => {
            let (_, store) = open(&store)?;
            for op in crate::storage::operators::list(&*store.db()?)? {
                println!("{}\t{}\t{}\tmade {} by {}", op.id, op.username, op.role, op.created_at, op.created_by);
            }
        }
        AdminCommand::CreateToken { name, role, store } => {
            let (_, store) = open(&store)?;
            let (token, secret) = tokens::create(&*store.db()?, &name, role, &cli, now)?;
            eprintln!("Made token `{}` ({}) with the {} role. It is shown once:", token.name, token.id, token.role);
            println!("{}", String::from_utf8_lossy(secret.expose()));
        }
        AdminCommand::RevokeToken { name, store } => {
            let (_, store) = open(&store)?;
            match tokens::revoke(&*store.db()?, tokens::TokenRef::Name(&name), &cli, now)? {
                Some(t) => println!("revoked token `{}` ({})", t.name, t.id),
                None => {
                    anyhow::bail!("there is no live token named `{name}` (`hookplane admin list-tokens` lists them)")
                }
            }
        }
        AdminCommand::ListTokens { store } => {
            let (_, store) = open(&store)?;
            for t in tokens::list(&*store.db()?)? {
                let state = t.revoked_at.map_or_else(|| "live".to_owned(), |at| format!("revoked {at}"));
                println!("{}\t{}\t{}\tmade {} by {}\t{state}", t.id, t.name, t.role, t.created_at, t.created_by);
            }
        }
    }
    Ok(())
}

impl PasswordArgs {
    /// The password, and whether it was made here (and so must be shown).
    fn read(&self) -> anyhow::Result<(String, bool)> {
        if let Some(p) = super::read_secret(self.password_env.as_deref(), self.password_stdin, "the password")? {
            return Ok((p, false));
        }
        // 18 random bytes: 24 characters of base64url, far past any guessing.
        use base64::Engine as _;
        let bytes: [u8; 18] = rand::random();
        Ok((base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes), true))
    }
}

fn open(args: &StoreArgs) -> anyhow::Result<(Settings, Store)> {
    let settings =
        load_settings(&Flags { config: args.config.clone(), data_dir: args.data_dir.clone(), ..Flags::default() })?;
    let store = open_stopped_store(&settings.data_dir, "stop it first")?;
    Ok((settings, store))
}
