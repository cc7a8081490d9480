//! `hookplane handshake` and `hookplane credentials …`: the handshake and credential API of a running
//! instance, from the command line, with HOOKPLANE_ADMIN_TOKEN.

use clap::Subcommand;

use super::subscriptions::{Target, call, connection};
use super::{SecretArgs, read_secret, runtime};

#[derive(clap::Args, Debug)]
#[command(group = clap::ArgGroup::new("which").required(true))]
pub struct HandshakeArgs {
    #[command(flatten)]
    target: Target,
    /// The subscription's name or id.
    #[arg(long, group = "which")]
    subscription: Option<String>,
    /// Every subscription whose shop or organisation has a credential.
    #[arg(long, group = "which")]
    all: bool,
}

/// Runs the handshakes now and prints what they did; fails when one failed, so scripts notice.
pub fn run_handshake(args: HandshakeArgs) -> anyhow::Result<()> {
    let (base, token) = connection(&args.target)?;
    let (url, one) = match &args.subscription {
        Some(s) => (api_url(&base, &["subscriptions", s, "handshake"])?, true),
        None => (api_url(&base, &["handshakes"])?, false),
    };
    let out = runtime()?.block_on(call(reqwest::Method::POST, &url, &token, Some(serde_json::json!({}))))?;
    print(&out);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    let runs = if one { vec![v] } else { v["runs"].as_array().cloned().unwrap_or_default() };
    let failed = runs.iter().filter(|r| r["outcome"] == "failed").count();
    if failed > 0 {
        anyhow::bail!("{failed} of {} handshakes failed; each says why above", runs.len());
    }
    Ok(())
}

/// `{base}/api/v1/` and `segments`, each percent-encoded: a name given on the command line is one segment,
/// whatever it holds.
pub(super) fn api_url(base: &str, segments: &[&str]) -> anyhow::Result<String> {
    let mut url = reqwest::Url::parse(base).map_err(|e| anyhow::anyhow!("`{base}` is not a URL: {e}"))?;
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("`{base}` cannot have a path"))?
        .pop_if_empty()
        .extend(["api", "v1"])
        .extend(segments);
    Ok(url.to_string())
}

#[derive(Subcommand, Debug)]
pub enum CredentialsCommand {
    /// List provider credentials (fingerprints only).
    List(Target),
    /// Set a credential: `set shopify SHOP` or `set zoho ORG`.
    #[command(subcommand)]
    Set(SetCredential),
    /// Remove a credential: `shopify SHOP` or `zoho ORG`.
    Remove {
        #[command(flatten)]
        target: Target,
        provider: ProviderArg,
        /// The shop domain or Zoho organisation.
        account: String,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ProviderArg {
    Shopify,
    Zoho,
}

#[derive(Subcommand, Debug)]
pub enum SetCredential {
    /// A shop's Admin API access token, read from an environment variable or standard input.
    Shopify {
        #[command(flatten)]
        target: Target,
        /// The shop's `name.myshopify.com` domain.
        shop: String,
        #[command(flatten)]
        token: SecretArgs,
    },
    /// A Zoho organisation's OAuth client and refresh token. The client secret and refresh token are read
    /// from the environment variables named, or from standard input as two lines.
    Zoho {
        #[command(flatten)]
        target: Target,
        /// The organisation as its subscriptions name it.
        org: String,
        /// The OAuth client's id (a self client in Zoho's API console will do).
        #[arg(long)]
        client_id: String,
        /// com, eu, in, com.au, jp, ca, sa, uk or com.cn.
        #[arg(long, default_value = "com")]
        data_centre: String,
        /// The environment variable holding the client secret.
        #[arg(long, value_name = "VAR", requires = "refresh_token_env", conflicts_with = "stdin")]
        client_secret_env: Option<String>,
        /// The environment variable holding the refresh token (scope ZohoCRM.notifications.ALL).
        #[arg(long, value_name = "VAR", requires = "client_secret_env", conflicts_with = "stdin")]
        refresh_token_env: Option<String>,
        /// Read the client secret, then the refresh token, one per line from standard input.
        #[arg(long)]
        stdin: bool,
    },
}

pub fn run_credentials(cmd: CredentialsCommand) -> anyhow::Result<()> {
    let (target, method, path, body) = match cmd {
        CredentialsCommand::List(target) => (target, reqwest::Method::GET, vec!["credentials".to_owned()], None),
        CredentialsCommand::Set(SetCredential::Shopify { target, shop, token }) => {
            let token =
                token.read()?.ok_or_else(|| anyhow::anyhow!("give the token with --secret-env or --secret-stdin"))?;
            let body = serde_json::json!({ "access_token": token });
            (target, reqwest::Method::PUT, vec!["credentials".to_owned(), "shopify".to_owned(), shop], Some(body))
        }
        CredentialsCommand::Set(SetCredential::Zoho {
            target,
            org,
            client_id,
            data_centre,
            client_secret_env,
            refresh_token_env,
            stdin,
        }) => {
            let (secret, refresh) = match (client_secret_env, refresh_token_env) {
                (Some(s), Some(r)) => (
                    read_secret(Some(&s), false, "the client secret")?,
                    read_secret(Some(&r), false, "the refresh token")?,
                ),
                _ if stdin => {
                    let both = read_secret(None, true, "the client secret and refresh token")?.unwrap_or_default();
                    let mut lines = both.lines().map(str::trim).filter(|l| !l.is_empty());
                    (lines.next().map(str::to_owned), lines.next().map(str::to_owned))
                }
                _ => anyhow::bail!(
                    "give the client secret and refresh token with --client-secret-env and --refresh-token-env, or --stdin"
                ),
            };
            let (Some(secret), Some(refresh)) = (secret, refresh) else {
                anyhow::bail!("both the client secret and the refresh token are needed");
            };
            let body = serde_json::json!({ "client_id": client_id, "client_secret": secret, "refresh_token": refresh,
                                           "data_centre": data_centre });
            (target, reqwest::Method::PUT, vec!["credentials".to_owned(), "zoho".to_owned(), org], Some(body))
        }
        CredentialsCommand::Remove { target, provider, account } => {
            let provider = match provider {
                ProviderArg::Shopify => "shopify",
                ProviderArg::Zoho => "zoho",
            };
            (target, reqwest::Method::DELETE, vec!["credentials".to_owned(), provider.to_owned(), account], None)
        }
    };
    let (base, token) = connection(&target)?;
    let segments: Vec<&str> = path.iter().map(String::as_str).collect();
    let out = runtime()?.block_on(call(method, &api_url(&base, &segments)?, &token, body))?;
    print(&out);
    Ok(())
}

/// The API's answer on standard output. Not `println!`, which panics when standard output is gone (a
/// closed pipe): the command's outcome stands either way.
pub(super) fn print(out: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout(), "{out}");
}
