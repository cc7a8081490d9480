use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;

use super::{load_settings, runtime};
use crate::config::Flags;
use crate::demo::{self, Scenario};
use crate::domain::SystemClock;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Configuration file (default: HOOKPLANE_CONFIG, else the built-in defaults).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on (overrides `listen` and HOOKPLANE_LISTEN).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Data directory (overrides `data_dir` and HOOKPLANE_DATA_DIR).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Run on a throwaway data directory seeded with a scenario, with throwaway keys and a processing
    /// service of its own (default: HOOKPLANE_DEMO).
    #[arg(long, value_enum, value_name = "SCENARIO")]
    demo: Option<Scenario>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut settings =
        load_settings(&Flags { config: args.config, listen: args.listen, data_dir: args.data_dir.clone() })?;
    crate::logging::init(&settings.log, settings.log_format);
    let rt = runtime()?;
    // Held until the server stops: dropping it deletes the demo data.
    let mut demo_dir = None;
    let mut processing = None;
    let mut providers = None;
    let scenario = match args.demo {
        Some(s) => Some(s),
        None => match std::env::var(crate::config::ENV_DEMO) {
            Ok(v) if !v.is_empty() => Some(
                <Scenario as clap::ValueEnum>::from_str(&v, true)
                    .map_err(|e| anyhow::anyhow!("HOOKPLANE_DEMO: {e} (base, failing, empty or rate-limited)"))?,
            ),
            _ => None,
        },
    };
    if let Some(scenario) = scenario {
        let dir = tempfile::Builder::new().prefix("hookplane-demo-").tempdir()?;
        let info = demo::prepare(&mut settings, dir.path(), scenario)?;
        let mock =
            demo::processing::Processing::bind(scenario).context("cannot start the demo's processing service")?;
        let admin = demo::providers::MockProviders::bind().context("cannot start the demo's Shopify and Zoho")?;
        demo::handshakes::use_mock_providers(&mut settings, &admin);
        demo::seed(&settings, scenario, &SystemClock, &|name| mock.url(name))
            .context("seeding the demo data failed")?;
        demo::handshakes::seed_providers(&settings, scenario, &admin, &SystemClock)
            .context("registering the demo's subscriptions with its providers failed")?;
        processing = Some(mock);
        providers = Some(admin);
        // Not `println!`: it panics when standard output cannot be written (a full disk under a redirect).
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), "{}", info.banner(&settings));
        demo_dir = Some(dir);
    }
    rt.block_on(async move {
        let destinations = processing.as_ref().map(demo::processing::Processing::destinations);
        let _processing = processing.map(demo::processing::Processing::serve).transpose()?;
        let _providers = providers.as_ref().map(demo::providers::MockProviders::serve).transpose()?;
        let shutdown = shutdown_signal()?;
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let mut core = crate::app::Core::start(settings, Arc::new(SystemClock)).await?;
        core.demo = destinations;
        crate::app::serve_core(core, listener, shutdown).await
    })?;
    drop(demo_dir);
    Ok(())
}

/// SIGTERM (from systemd or a container runtime) or Ctrl-C. The handlers are installed before this returns,
/// so a signal that arrives while the server is still starting is not lost to the default action.
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::info!("shutting down: finishing in-flight requests");
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: finishing in-flight requests");
    })
}
