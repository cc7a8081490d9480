//! `hookplane subscriptions …`: the API of a running instance, from the command line.

use anyhow::Context as _;
use clap::Subcommand;

use super::{ConfigArgs, SecretArgs, load_settings, problem_detail, runtime};

#[derive(clap::Args, Debug, Clone)]
pub struct Target {
    /// Base URL of the running instance (default: http:// + the configured listen address).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    #[command(flatten)]
    config: ConfigArgs,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum SubscriptionsCommand {
    /// List subscriptions as JSON.
    List(Target),
    /// Create a subscription (or adopt a discovered Shopify one). Uses HOOKPLANE_ADMIN_TOKEN.
    Create(CreateArgs),
    /// Change where a subscription's deliveries are forwarded. Uses HOOKPLANE_ADMIN_TOKEN.
    SetDestination(SetDestinationArgs),
}

#[derive(clap::Args, Debug)]
#[command(group = clap::ArgGroup::new("to").required(true).multiple(true))]
pub struct SetDestinationArgs {
    #[command(flatten)]
    target: Target,
    /// The subscription's id or name.
    subscription: String,
    /// The processing service's URL.
    #[arg(long, group = "to", conflicts_with = "store")]
    destination_url: Option<String>,
    /// Keep deliveries from now on instead of forwarding them; held ones are recorded as not sent.
    #[arg(long, group = "to")]
    store: bool,
    /// Seconds an attempt may take.
    #[arg(long, group = "to", conflicts_with = "store")]
    timeout_seconds: Option<u32>,
    /// At most this many attempts at once towards the destination.
    #[arg(long, group = "to", conflicts_with = "store")]
    concurrency: Option<u32>,
}

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    target: Target,
    /// shopify, zoho or standard.
    #[arg(long)]
    source: String,
    #[arg(long)]
    topic: String,
    /// Shop domain (or `*`), Zoho org, or the sender's name.
    #[arg(long)]
    account: String,
    #[arg(long)]
    name: Option<String>,
    /// Where to forward deliveries; absent keeps them in store.
    #[arg(long)]
    destination_url: Option<String>,
    #[command(flatten)]
    secret: SecretArgs,
    /// Zoho CRM notification channel id.
    #[arg(long)]
    channel_id: Option<String>,
    /// Zoho workflow webhooks: token or signature.
    #[arg(long)]
    auth: Option<String>,
    /// Zoho workflow webhooks: the header carrying the token.
    #[arg(long)]
    token_header: Option<String>,
    /// A request header holding a per-delivery id, for senders without a standard one.
    #[arg(long)]
    dedupe_header: Option<String>,
}

pub fn run(cmd: SubscriptionsCommand) -> anyhow::Result<()> {
    match cmd {
        SubscriptionsCommand::List(target) => {
            let (base, token) = connection(&target)?;
            let out = runtime()?.block_on(call(
                reqwest::Method::GET,
                &format!("{base}/api/v1/subscriptions"),
                &token,
                None,
            ))?;
            println!("{out}");
        }
        SubscriptionsCommand::Create(args) => {
            let (base, token) = connection(&args.target)?;
            let secret = args.secret.read()?;
            let body = serde_json::json!({
                "source": args.source, "topic": args.topic, "account": args.account, "name": args.name,
                "destination_url": args.destination_url, "secret": secret, "channel_id": args.channel_id,
                "auth": args.auth, "token_header": args.token_header, "dedupe_header": args.dedupe_header,
            });
            let out = runtime()?.block_on(call(
                reqwest::Method::POST,
                &format!("{base}/api/v1/subscriptions"),
                &token,
                Some(body),
            ))?;
            println!("{out}");
        }
        SubscriptionsCommand::SetDestination(args) => {
            let (base, token) = connection(&args.target)?;
            let mut body = serde_json::Map::new();
            if args.store {
                body.insert("destination_url".into(), serde_json::Value::Null);
            }
            if let Some(url) = args.destination_url {
                body.insert("destination_url".into(), url.into());
            }
            if let Some(t) = args.timeout_seconds {
                body.insert("destination_timeout_seconds".into(), t.into());
            }
            if let Some(c) = args.concurrency {
                body.insert("destination_concurrency".into(), c.into());
            }
            let out = runtime()?.block_on(call(
                reqwest::Method::PATCH,
                &format!("{base}/api/v1/subscriptions/{}", args.subscription),
                &token,
                Some(body.into()),
            ))?;
            println!("{out}");
        }
    }
    Ok(())
}

impl Target {
    /// The configuration flags, for commands that read the configuration themselves.
    pub(super) fn config_flags(&self) -> crate::config::Flags {
        self.config.flags()
    }

    /// The base URL given on the command line.
    pub(super) fn url(&self) -> Option<String> {
        self.url.clone()
    }
}

pub(super) fn connection(target: &Target) -> anyhow::Result<(String, String)> {
    let settings = load_settings(&target.config.flags())?;
    let base = target.url.clone().unwrap_or_else(|| format!("http://{}", settings.listen));
    let token = settings
        .env
        .admin_token
        .map(|t| String::from_utf8_lossy(t.expose()).into_owned())
        .context("set HOOKPLANE_ADMIN_TOKEN to the instance's admin token")?;
    Ok((base.trim_end_matches('/').to_owned(), token))
}

pub(super) async fn call(
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<String> {
    let client = reqwest::Client::new();
    let mut req = client.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_string());
    }
    let resp = req.send().await.with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        anyhow::bail!("{status}: {}", problem_detail(text));
    }
    Ok(serde_json::from_str::<serde_json::Value>(&text).and_then(|v| serde_json::to_string_pretty(&v)).unwrap_or(text))
}
