//! `hookplane healthcheck`: asks a running instance's `/healthz` and exits non-zero unless it answers 2xx.
//! It is the container's HEALTHCHECK: the distroless image has no shell and no curl.

use std::time::Duration;

use anyhow::Context as _;

use super::{ConfigArgs, load_settings, problem_detail, runtime};

#[derive(clap::Args, Debug)]
pub struct HealthcheckArgs {
    /// Base URL of the running instance (default: http:// + the configured listen address).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 3)]
    timeout_seconds: u64,
    #[command(flatten)]
    config: ConfigArgs,
}

pub fn run(args: HealthcheckArgs) -> anyhow::Result<()> {
    let settings = load_settings(&args.config.flags())?;
    let base = args.url.clone().unwrap_or_else(|| format!("http://{}", settings.listen));
    let url = format!("{}{}", base.trim_end_matches('/'), crate::contract::paths::HEALTHZ);
    let (status, text) = runtime()?.block_on(async {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(args.timeout_seconds)).build()?;
        let resp = client.get(&url).send().await.with_context(|| format!("cannot reach {url}"))?;
        let status = resp.status();
        anyhow::Ok((status, resp.text().await.unwrap_or_default()))
    })?;
    if !status.is_success() {
        anyhow::bail!("{url} answered {status}: {}", problem_detail(text));
    }
    println!("{status}: {text}");
    Ok(())
}
