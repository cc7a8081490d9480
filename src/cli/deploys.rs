//! `hookplane deploys announce`: a deploy pipeline tells a running instance which version of a service it
//! deployed, with HOOKPLANE_ADMIN_TOKEN.

use clap::Subcommand;

use super::handshake::{api_url, print};
use super::runtime;
use super::subscriptions::{Target, call, connection};

#[derive(Subcommand, Debug)]
pub enum DeploysCommand {
    /// Record that SERVICE now runs VERSION; the drift warnings compare its destinations with it.
    Announce {
        #[command(flatten)]
        target: Target,
        /// The service, as its subscriptions name it (by default their destination URL's host and port).
        #[arg(long)]
        service: String,
        #[arg(long)]
        version: String,
    },
    /// Each forwarding subscription's versions, announced deploys and drift warnings.
    List(Target),
}

pub fn run(cmd: DeploysCommand) -> anyhow::Result<()> {
    let out = match cmd {
        DeploysCommand::Announce { target, service, version } => {
            let (base, token) = connection(&target)?;
            let url = api_url(&base, &["deploys"])?;
            let body = serde_json::json!({ "service": service, "version": version });
            runtime()?.block_on(call(reqwest::Method::POST, &url, &token, Some(body)))?
        }
        DeploysCommand::List(target) => {
            let (base, token) = connection(&target)?;
            let url = api_url(&base, &["deploys"])?;
            runtime()?.block_on(call(reqwest::Method::GET, &url, &token, None))?
        }
    };
    print(&out);
    Ok(())
}
