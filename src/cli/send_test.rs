//! `hookplane send-test`: one correctly signed sample delivery to a running instance, for a first look at
//! an empty dashboard and for smoke tests after a deploy.

use anyhow::Context as _;
use clap::ValueEnum;

use super::{ConfigArgs, SecretArgs, load_settings, problem_detail, runtime};
use crate::demo::factories::{self, Factory, SignedRequest};
use crate::domain::{Clock, SystemClock};

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestSource {
    Shopify,
    Zoho,
    Standard,
}

#[derive(clap::Args, Debug)]
pub struct SendTestArgs {
    /// Base URL of the running instance (default: http:// + the configured listen address).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    #[command(flatten)]
    config: ConfigArgs,
    /// Which provider's format and signature to send.
    #[arg(long, value_enum, default_value = "shopify")]
    source: TestSource,
    /// Topic (default: orders/create, Leads.all or invoice.paid).
    #[arg(long)]
    topic: Option<String>,
    /// Shopify: the shop domain the delivery claims to come from.
    #[arg(long, default_value = "hookplane-test.myshopify.com")]
    shop: String,
    /// Standard Webhooks and Zoho workflow webhooks: the subscription's name or id.
    #[arg(long)]
    subscription: Option<String>,
    /// Zoho: send a CRM notification for this channel (the token goes in the body) instead of a workflow
    /// webhook.
    #[arg(long)]
    channel_id: Option<String>,
    /// Zoho workflow webhooks: the header carrying the token.
    #[arg(long, default_value = "Authorization")]
    token_header: String,
    /// The signing secret or token. Shopify defaults to SHOPIFY_WEBHOOK_SECRET.
    #[command(flatten)]
    secret: SecretArgs,
}

pub fn run(args: SendTestArgs) -> anyhow::Result<()> {
    let settings = load_settings(&args.config.flags())?;
    let base = args.url.clone().unwrap_or_else(|| format!("http://{}", settings.listen));
    let secret = match (args.secret.read()?, args.source) {
        (Some(s), _) => s,
        (None, TestSource::Shopify) => std::env::var("SHOPIFY_WEBHOOK_SECRET")
            .context("give the secret with --secret-env or --secret-stdin, or set SHOPIFY_WEBHOOK_SECRET")?,
        (None, _) => anyhow::bail!("give the subscription's secret or token with --secret-env or --secret-stdin"),
    };
    let req = request(&args, &secret)?;
    let url = format!("{}{}", base.trim_end_matches('/'), req.path);
    let (status, text) = runtime()?.block_on(async {
        let mut r = reqwest::Client::new().post(&url);
        for (k, v) in &req.headers {
            r = r.header(k, v);
        }
        let resp = r.body(req.body.clone()).send().await.with_context(|| format!("cannot reach {url}"))?;
        let status = resp.status();
        anyhow::Ok((status, resp.text().await.unwrap_or_default()))
    })?;
    if !status.is_success() {
        anyhow::bail!("{url} answered {status}: {}", problem_detail(text));
    }
    println!("{status} from {url}: {text}");
    Ok(())
}

fn request(args: &SendTestArgs, secret: &str) -> anyhow::Result<SignedRequest> {
    let now = SystemClock.now();
    let mut f = Factory::new(u64::try_from(now.millis()).unwrap_or(0));
    let id = f.uuid();
    let subscription =
        || args.subscription.as_deref().with_context(|| format!("--source {:?} needs --subscription", args.source));
    Ok(match args.source {
        TestSource::Shopify => {
            let topic = args.topic.as_deref().unwrap_or("orders/create");
            let body = f.shopify_order(1001, now);
            factories::shopify_request(topic, &args.shop, body, secret.as_bytes(), &id, now)
        }
        TestSource::Zoho => {
            let module = args.topic.as_deref().unwrap_or("Leads.all");
            let module = module.split('.').next().unwrap_or(module);
            match &args.channel_id {
                Some(channel) => {
                    factories::zoho_channel_request(f.zoho_notification(module, "insert", channel, secret, now))
                }
                None => {
                    let body = f.zoho_notification(module, "insert", "", "", now);
                    factories::zoho_token_request(subscription()?, &args.token_header, secret, body)
                }
            }
        }
        TestSource::Standard => {
            let kind = args.topic.as_deref().unwrap_or("invoice.paid");
            factories::standard_request(subscription()?, secret, &format!("msg_{id}"), now, f.standard_event(kind, now))
        }
    })
}
