//! `hookplane smoke`: the deploy checklist's smoke step against a running instance. It fires one correctly
//! signed Shopify webhook, waits until it is stored and forwarded, replays it once, and confirms the
//! dashboard's figures counted it, printing each step and stopping at the first that fails.

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::Value;

use super::subscriptions::Target;
use super::{load_settings, problem_detail, runtime};
use crate::demo::factories::{self, Factory};
use crate::domain::{Clock as _, SystemClock};

const SHOP: &str = "hookplane-smoke.myshopify.com";
const TOPIC: &str = "orders/create";

#[derive(clap::Args, Debug)]
pub struct SmokeArgs {
    #[command(flatten)]
    target: Target,
    /// The environment variable holding an API token with the operator role (or admin).
    #[arg(long, value_name = "VAR", default_value = "HOOKPLANE_ADMIN_TOKEN")]
    token_env: String,
    /// The environment variable holding the Shopify app's client secret the webhook is signed with.
    #[arg(long, value_name = "VAR", default_value = "SHOPIFY_WEBHOOK_SECRET")]
    secret_env: String,
    /// How long each step may wait.
    #[arg(long, default_value_t = 60)]
    timeout_seconds: u64,
}

struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .client
            .request(method, &url)
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        match self.call(reqwest::Method::GET, path).await? {
            (200, v) => Ok(v),
            (status, v) => anyhow::bail!("GET {path} answered {status}: {}", problem_detail(v.to_string())),
        }
    }

    async fn deliveries_24h(&self) -> anyhow::Result<u64> {
        let d = self.get("/api/v1/dashboard").await?;
        d["kpis"]["deliveries_24h"].as_u64().context("the dashboard's answer has no kpis.deliveries_24h")
    }
}

fn say(step: &str, text: impl AsRef<str>) {
    let _ = writeln!(std::io::stdout(), "{step} {}", text.as_ref());
}

/// Polls `probe` until it returns `Some`, for at most `timeout`.
async fn until<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let started = Instant::now();
    loop {
        if let Some(found) = probe().await? {
            return Ok(found);
        }
        if started.elapsed() >= timeout {
            anyhow::bail!("{what} within {} s", timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub fn run(args: SmokeArgs) -> anyhow::Result<()> {
    let settings = load_settings(&args.target.config_flags())?;
    let base = args.target.url().unwrap_or_else(|| format!("http://{}", settings.listen));
    let base = base.trim_end_matches('/').to_owned();
    let token = std::env::var(&args.token_env)
        .ok()
        .filter(|t| !t.is_empty())
        .with_context(|| format!("set {} to an API token with the operator role", args.token_env))?;
    let secret = std::env::var(&args.secret_env)
        .ok()
        .filter(|t| !t.is_empty())
        .with_context(|| format!("set {} to the Shopify app's client secret", args.secret_env))?;
    let timeout = Duration::from_secs(args.timeout_seconds);
    // Every request is bounded too, not only the waits between them.
    let client = reqwest::Client::builder().timeout(timeout).build().context("cannot build the HTTP client")?;
    let api = Api { client, base, token };
    runtime()?.block_on(smoke(&api, &secret, timeout))
}

async fn smoke(api: &Api, secret: &str, timeout: Duration) -> anyhow::Result<()> {
    let counted_before = api.deliveries_24h().await.context("0/4 cannot read the dashboard's figures")?;

    // 1. A correctly signed webhook, acknowledged.
    let now = SystemClock.now();
    let mut f = Factory::new(u64::try_from(now.millis()).unwrap_or(0));
    let id = format!("smoke-{}", f.uuid());
    let req = factories::shopify_request(TOPIC, SHOP, f.shopify_order(1001, now), secret.as_bytes(), &id, now);
    let url = format!("{}{}", api.base, req.path);
    let mut post = api.client.post(&url);
    for (k, v) in &req.headers {
        post = post.header(k, v);
    }
    let resp = post.body(req.body.clone()).send().await.with_context(|| format!("1/4 cannot reach {url}"))?;
    let status = resp.status();
    let answer: Value = serde_json::from_str(&resp.text().await.unwrap_or_default()).unwrap_or_default();
    if !status.is_success() {
        anyhow::bail!("1/4 the webhook was refused: {status}: {}", problem_detail(answer.to_string()));
    }
    let delivery = answer["delivery_id"].as_str().context("1/4 the answer names no delivery_id")?.to_owned();
    say("1/4", format!("fired a signed {TOPIC} webhook from {SHOP}: {status}, delivery {delivery}"));

    // 2. Stored, and forwarded when its subscription forwards.
    let path = format!("/api/v1/deliveries/{delivery}");
    let forwarding = until(timeout, "2/4 the delivery was neither forwarded nor kept", || async {
        let d = api.get(&path).await?;
        Ok(match d["status"].as_str().unwrap_or_default() {
            "succeeded" => Some(true),
            "stored" => Some(false),
            "failed" | "retrying" => anyhow::bail!(
                "2/4 forwarding failed ({}): {}",
                d["status"].as_str().unwrap_or_default(),
                d["error_message"].as_str().unwrap_or("the destination did not take it")
            ),
            _ => None,
        })
    })
    .await?;
    say(
        "2/4",
        if forwarding {
            "stored and delivered to the destination"
        } else {
            "stored; its subscription keeps deliveries (no destination), so nothing was forwarded"
        },
    );

    // 3. Replayed once.
    if forwarding {
        let attempts_path = format!("{path}/attempts");
        let before = api.get(&attempts_path).await?.as_array().map_or(0, Vec::len);
        match api.call(reqwest::Method::POST, &format!("{path}/replay")).await? {
            (202 | 200, _) => {}
            (status, v) => anyhow::bail!("3/4 the replay was refused: {status}: {}", problem_detail(v.to_string())),
        }
        let last = until(timeout, "3/4 the replay made no attempt", || async {
            let list = api.get(&attempts_path).await?;
            let list = list.as_array().cloned().unwrap_or_default();
            Ok((list.len() > before).then(|| list.last().cloned()).flatten())
        })
        .await?;
        match last["response_code"].as_u64() {
            Some(code) if (200..300).contains(&code) => {
                say("3/4", format!("replayed once: the destination answered {code}"))
            }
            code => anyhow::bail!(
                "3/4 the replay's attempt failed: {}",
                last["error"].as_str().map_or_else(|| format!("answer {code:?}"), str::to_owned)
            ),
        }
    } else {
        say("3/4", "replay skipped: a delivery that is kept, not forwarded, has nothing to replay to");
    }

    // 4. The dashboard counted it.
    let counted = until(timeout, "4/4 the dashboard's figures did not move", || async {
        let now = api.deliveries_24h().await?;
        Ok((now > counted_before).then_some(now))
    })
    .await?;
    say("4/4", format!("the dashboard counts {counted} deliveries in the last 24 hours ({counted_before} before)"));
    say("ok", "the smoke test passed");
    Ok(())
}
