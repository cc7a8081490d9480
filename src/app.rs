//! The composition root: opens storage, builds the registry, starts the writer and the HTTP server, and
//! stops them in order. Production, tests and subcommands all start Hookplane through [`serve`] (or, without
//! HTTP, through [`Core`]).

use std::future::Future;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use poem::Server;
use poem::listener::TcpAcceptor;
use tokio::net::TcpListener;

use crate::alerts::Alerts;
use crate::auth::Gate;
use crate::auth::setup::LocalSetup;
use crate::config::Settings;
use crate::contract::demo::MockDestinations;
use crate::contract::paths;
use crate::control::Control;
use crate::control::bulk::BulkReplays;
use crate::control::erasures::Erasures;
use crate::deploys::Deploys;
use crate::domain::Delivery;
use crate::domain::Job;
use crate::domain::erasure;
use crate::domain::job::Preloaded;
use crate::domain::{Clock, SubscriptionId, SystemClock};
use crate::handshakes::{ChannelTokens, Handshakes};
use crate::http::{self, AppState};
use crate::ingest::Ingest;
use crate::ingest::registry::{Registry, SharedRegistry};
use crate::ingest::writer::{self, Hooks, LeaseRoom, WriterHandle};
use crate::jobs::backend::Meeting;
use crate::jobs::handoff::{AnswerSink, Handoff};
use crate::jobs::worker::{Queue, QueueParts, Wake};
use crate::retention::Retention;
use crate::search::SearchIndex;
use crate::search::indexer::{self, Indexer, IndexerHandle};
use crate::secrets::SecretBytes;
use crate::storage::Store;
use crate::storage::jobs::Answers;
use crate::task::Vitals;

/// How much payload may wait in memory for the delivery worker (see `jobs::handoff`).
const HANDOFF_MAX_BYTES: usize = 32 * 1024 * 1024;

/// Everything but HTTP: storage, the registry, the writer and the services built on them.
pub struct Core {
    pub settings: Arc<Settings>,
    pub store: Arc<Store>,
    pub registry: Arc<SharedRegistry>,
    pub control: Arc<Control>,
    pub ingest: Arc<Ingest>,
    pub clock: Arc<dyn Clock>,
    pub search: Arc<SearchIndex>,
    pub gate: Arc<Gate>,
    sweeper: tokio::task::JoinHandle<()>,
    queue: Option<Queue>,
    pub bulk: Arc<BulkReplays>,
    indexer: Indexer,
    writer: WriterHandle,
    writer_thread: JoinHandle<()>,
    /// The parts that must keep running, watched: `/healthz` reports them, and losing the writer or the
    /// queue stops the server (see [`serve_core`]).
    pub vitals: Arc<Vitals>,
    /// Whether the setup link is open, and its code when it may be printed (not a configured one); the link
    /// is printed once the listening address is known.
    setup_code: Option<Option<SecretBytes>>,
    /// The demo's processing service, whose destinations the dashboard flips; only under `serve --demo`.
    pub demo: Option<Arc<dyn MockDestinations>>,
    /// The alert rules, incidents and their notifications.
    pub alerts: Arc<Alerts>,
    alerting: Option<tokio::task::JoinHandle<()>>,
    /// Provider handshakes and their watchdog.
    pub handshakes: Arc<Handshakes>,
    watchdog: Option<tokio::task::JoinHandle<()>>,
    /// Deletes what is past its retention.
    pub retention: Arc<Retention>,
    sweeping: Option<tokio::task::JoinHandle<()>>,
    /// Privacy erasures, and the watcher that honours redact webhooks.
    pub erasures: Arc<Erasures>,
    redact_watcher: Option<tokio::task::JoinHandle<()>>,
    /// Announced deploys and the version URLs' poller.
    pub deploys: Arc<Deploys>,
    version_poller: Option<tokio::task::JoinHandle<()>>,
}

impl Core {
    pub async fn start(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        Self::start_with(settings, clock, true).await
    }

    /// Starts everything but the delivery queue: for seeding demo data, whose deliveries must not be sent.
    pub async fn start_without_queue(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        Self::start_with(settings, clock, false).await
    }

    async fn start_with(settings: Settings, clock: Arc<dyn Clock>, run_queue: bool) -> anyhow::Result<Self> {
        let master_key = crate::config::master_key(&settings)?;
        let settings = Arc::new(settings);
        let data_dir = settings.data_dir.clone();
        let cache_bytes = (settings.storage.cache_mib as usize).saturating_mul(1 << 20);
        let verify = settings.storage.verify_on_start;
        let store = Arc::new(
            tokio::task::spawn_blocking(move || Store::open_with_cache(&data_dir, cache_bytes, verify))
                .await?
                .with_context(|| format!("cannot open the data directory {}", settings.data_dir.display()))?,
        );
        let (operators_exist, newest) = {
            let store = Arc::clone(&store);
            tokio::task::spawn_blocking(move || {
                let db = store.db()?;
                Ok::<_, crate::storage::StoreError>((
                    crate::storage::operators::any(&db)?,
                    crate::storage::deliveries::newest_id(&db)?,
                ))
            })
            .await??
        };
        // A wall clock stepped back while stopped must not make ids older than those stored.
        if let Some(newest) = newest {
            clock.not_before(newest.timestamp());
        }
        let (setup, setup_code) = if operators_exist || !settings.dashboard.open_on_loopback {
            (LocalSetup::closed(), None)
        } else {
            let (setup, printable) = LocalSetup::open(settings.env.setup_code.as_ref());
            (setup, Some(printable))
        };
        let gate = Arc::new(Gate::new(&settings.auth, master_key.derive("csrf"), operators_exist, setup));
        let registry = Arc::new(SharedRegistry::default());
        let signing_root = master_key.destination_signing_root();
        let wake = Wake::default();
        let control = Arc::new(Control::new(
            Arc::clone(&store),
            Arc::clone(&registry),
            master_key.clone(),
            Arc::clone(&clock),
            settings.control_options(),
            wake.clone(),
        ));
        let loaded = {
            let (control, settings) = (Arc::clone(&control), Arc::clone(&settings));
            tokio::task::spawn_blocking(move || -> anyhow::Result<Registry> {
                let env = |name: &str| settings.env.var(name).map(str::to_owned);
                let declared = control.apply_declared(&settings.subscriptions, &env)?;
                Ok(control.load_registry(declared, settings.env.shopify_app_secrets())?)
            })
            .await??
        };
        settings.log_hints(&loaded, operators_exist);
        for name in settings.alerts.overrides.keys() {
            if loaded.by_name_or_id(name).is_none() {
                tracing::warn!(
                    subscription = %name,
                    "alerts.overrides names no subscription; its thresholds apply once one of that name exists"
                );
            }
        }
        registry.replace(loaded);
        let vitals = Vitals::new();
        let sweeper = control.spawn_secret_sweep(vitals.part(SWEEP, false));

        let search_dir = settings.data_dir.join("search");
        let (search, opened) = tokio::task::spawn_blocking(move || SearchIndex::open(&search_dir)).await??;
        let search = Arc::new(search);
        let indexer = indexer::spawn(
            Arc::clone(&search),
            Arc::clone(&store),
            opened,
            settings.search.clone(),
            vitals.part(INDEXER, false),
        )
        .context("cannot start the search indexer")?;

        let sinks = crate::sinks::Sinks::new(settings.sink_settings()).context("cannot set up the alert sinks")?;
        let alerts = Arc::new(Alerts::new(
            Arc::clone(&store),
            Arc::clone(&clock),
            Arc::new(settings.alerts.rules(settings.drift.grace_minutes)),
            sinks,
            registry.snapshot().shopify_app.iter().map(|s| s.fingerprint.clone()).collect(),
            settings.alerts.evaluate_every(),
        ));
        let erasures = Arc::new(Erasures::new(
            Arc::clone(&store),
            Arc::clone(&search),
            indexer.handle.clone(),
            Arc::clone(&clock),
            settings.privacy.clone(),
        ));
        let handoff = Arc::new(Handoff::new(settings.delivery.concurrency * 4, HANDOFF_MAX_BYTES));
        let hooks = WriterHooks {
            store: Arc::clone(&store),
            handoff: Arc::clone(&handoff),
            wake: wake.clone(),
            indexer: indexer.handle.clone(),
            alerts: Arc::clone(&alerts),
            erasures: erasures.honors_redact().then(|| Arc::clone(&erasures)),
        };
        let writer = writer::spawn(
            Arc::clone(&store),
            Arc::clone(&registry),
            Arc::new(hooks),
            settings.ingest.write_queue,
            settings.ingest.max_batch,
            vitals.part(WRITER, true),
        )
        .context("cannot start the writer thread")?;
        let queue = run_queue
            .then(|| {
                Queue::start(QueueParts {
                    store: Arc::clone(&store),
                    clock: Arc::clone(&clock),
                    settings: settings.delivery.clone(),
                    signing_root,
                    wake: wake.clone(),
                    meeting: Meeting { handoff, sink: Some(Arc::new(WriterAnswers(writer.handle.clone()))) },
                    guard: vitals.part(QUEUE, true),
                })
            })
            .transpose()
            .context("cannot start the delivery queue")?;
        let ingest = Arc::new(Ingest::new(
            settings.ingest_options(),
            writer.handle.clone(),
            Arc::clone(&registry),
            Arc::clone(&clock),
        ));
        let bulk = Arc::new(BulkReplays::new(
            Arc::clone(&store),
            Arc::clone(&search),
            Arc::clone(&control),
            Arc::clone(&ingest),
            Arc::clone(&clock),
        ));
        if run_queue {
            bulk.resume().await.context("cannot read the bulk replays to go on with")?;
        }
        let alerting = run_queue.then(|| Arc::clone(&alerts).spawn(vitals.part(ALERTS, false)));
        let handshakes = Arc::new(
            Handshakes::new(
                Arc::clone(&store),
                Arc::clone(&clock),
                master_key,
                settings.handshake_options(),
                Arc::new(RegistryTokens(Arc::clone(&registry))),
            )
            .context("cannot set up the provider clients")?,
        );
        let watchdog = run_queue.then(|| handshakes.spawn_watchdog(vitals.part(HANDSHAKES, false)));
        let retention = Arc::new(Retention::new(
            Arc::clone(&store),
            Arc::clone(&clock),
            settings.retention.clone(),
            settings.retention_days_from.clone(),
            indexer.handle.clone(),
        ));
        let sweeping = run_queue.then(|| Arc::clone(&retention).spawn(vitals.part(RETENTION, false)));
        let deploys = Arc::new(
            Deploys::new(Arc::clone(&store), Arc::clone(&clock), settings.drift.clone())
                .context("cannot set up the version poller")?,
        );
        let version_poller = run_queue.then(|| deploys.spawn_poller(vitals.part(VERSIONS, false)));
        if run_queue {
            erasures.resume().await.context("cannot read the erasures to go on with")?;
        }
        let redact_watcher =
            (run_queue && erasures.honors_redact()).then(|| erasures.spawn_redact_watcher(vitals.part(REDACTS, false)));
        Ok(Self {
            settings,
            store,
            registry,
            control,
            ingest,
            clock,
            search,
            gate,
            sweeper,
            queue,
            bulk,
            indexer,
            writer: writer.handle,
            writer_thread: writer.thread,
            vitals,
            setup_code,
            demo: None,
            alerts,
            alerting,
            handshakes,
            watchdog,
            retention,
            sweeping,
            erasures,
            redact_watcher,
            deploys,
            version_poller,
        })
    }

    /// Commits what the writer has queued, stops it, and closes the database so the next start needs no
    /// repair.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.vitals.stopping();
        self.sweeper.abort();
        for task in [&self.alerting, &self.watchdog, &self.sweeping, &self.redact_watcher, &self.version_poller]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
        self.bulk.stop();
        self.erasures.stop();
        if let Some(queue) = self.queue {
            queue.stop(Duration::from_secs(self.settings.shutdown_grace_seconds)).await;
        }
        self.writer.stop().await;
        let thread = self.writer_thread;
        // A writer that panicked is reported, after the rest is closed in order all the same.
        let writer = match tokio::task::spawn_blocking(move || thread.join()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(anyhow::anyhow!("the writer thread panicked")),
            Err(e) => Err(anyhow::anyhow!("joining the writer thread failed: {e}")),
        };
        let mut indexer = self.indexer;
        tokio::task::spawn_blocking(move || indexer.stop()).await?;
        let store = self.store;
        tokio::task::spawn_blocking(move || store.close()).await?;
        writer
    }

    /// The ingest writer's handle, as request handlers hold it.
    pub fn writer(&self) -> &WriterHandle {
        &self.writer
    }

    /// What the HTTP handlers reach, for serving this core's routes.
    pub fn state(&self) -> AppState {
        AppState {
            settings: Arc::new(self.settings.http_settings()),
            store: Arc::clone(&self.store),
            ingest: Arc::clone(&self.ingest),
            control: Arc::clone(&self.control),
            admin_token: self.settings.env.admin_token.clone(),
            metrics_token: self.settings.env.metrics_token.clone(),
            vitals: Arc::clone(&self.vitals),
            clock: Arc::clone(&self.clock),
            search: Arc::clone(&self.search),
            gate: Arc::clone(&self.gate),
            bulk: Arc::clone(&self.bulk),
            demo: self.demo.clone(),
            alerts: Arc::clone(&self.alerts),
            handshakes: Arc::clone(&self.handshakes),
            retention: Arc::clone(&self.retention),
            erasures: Arc::clone(&self.erasures),
            deploys: Arc::clone(&self.deploys),
        }
    }
}

/// A Zoho channel carries the token ingest verifies its notifications with: the current one the registry
/// holds, which includes declared subscriptions' tokens from the environment.
struct RegistryTokens(Arc<SharedRegistry>);

impl ChannelTokens for RegistryTokens {
    fn current(&self, id: SubscriptionId) -> Option<SecretBytes> {
        let snapshot = self.0.snapshot();
        snapshot.get(id)?.secrets.iter().find(|s| s.label == "current").map(|s| s.key.clone())
    }
}

/// What the ingest writer does after its commits: new jobs go to the delivery worker (handed over, or
/// woken for), new deliveries to the search indexer.
struct WriterHooks {
    store: Arc<Store>,
    handoff: Arc<Handoff>,
    wake: Wake,
    indexer: IndexerHandle,
    alerts: Arc<Alerts>,
    /// Told when a redact webhook is stored, while redact webhooks are honoured.
    erasures: Option<Arc<Erasures>>,
}

impl Hooks for WriterHooks {
    fn lease_room(&self) -> Option<LeaseRoom> {
        self.handoff.room().map(|(taker, left)| LeaseRoom { owner: taker.owner, lease_ms: taker.lease_ms, left })
    }

    fn hand_over(&self, owner: &str, jobs: Vec<(Job, Preloaded)>) {
        self.handoff.give_or_return(&self.store, owner, jobs);
    }

    fn wake(&self) {
        self.wake.wake();
    }

    fn stored(&self, deliveries: Vec<(Delivery, Vec<u8>)>, requests: usize) {
        if let Some(erasures) = &self.erasures
            && deliveries.iter().any(|(d, _)| erasure::asks_for_erasure(d))
        {
            erasures.redact_stored();
        }
        self.indexer.stored(deliveries, requests);
    }

    fn answered(&self) {
        self.alerts.poke();
    }
}

/// The delivery worker's answers go to the ingest writer, which commits them between its group commits.
struct WriterAnswers(WriterHandle);

impl AnswerSink for WriterAnswers {
    fn answer(&self, answers: Answers) -> Result<(), Answers> {
        self.0.answer(answers)
    }
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish, drains the writer and closes the
/// database cleanly.
pub async fn serve(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let core = Core::start(settings, Arc::new(SystemClock)).await?;
    serve_core(core, listener, shutdown).await
}

/// Serves a started core until `shutdown` resolves, or until a part it cannot do without (the writer, the
/// delivery queue) stops unasked. Either way in-flight requests finish and the core stops in order; a lost
/// part then makes this an error, so the process exits non-zero and its supervisor starts it again.
pub async fn serve_core(
    core: Core,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let acceptor = TcpAcceptor::from_tokio(listener)?;
    tracing::info!(%addr, data_dir = %core.settings.data_dir.display(), "Hookplane is listening");
    if let Some(code) = &core.setup_code {
        // Always this machine's own address: the public URL may be a proxy's, and the link is for a browser
        // here (through a proxy it is refused, and the code would land in the proxy's log).
        let ip = if addr.ip().is_loopback() { addr.ip() } else { std::net::Ipv4Addr::LOCALHOST.into() };
        let base = format!("http://{}", std::net::SocketAddr::new(ip, addr.port()));
        let code = code
            .as_ref()
            .map_or_else(|| "<HOOKPLANE_SETUP_CODE>".to_owned(), |c| String::from_utf8_lossy(c.expose()).into_owned());
        let link = format!("{base}{}?code={code}", paths::SETUP);
        tracing::info!(
            "no operator exists yet: open {link} in a browser on this machine to use the dashboard (once; it \
             lasts until that browser closes or Hookplane stops), or make an admin with `hookplane admin \
             create-user --username NAME --role admin` while Hookplane is stopped"
        );
    }
    let grace = Duration::from_secs(core.settings.shutdown_grace_seconds);
    let lost = Arc::new(std::sync::Mutex::new(None));
    let stop = {
        let (vitals, lost) = (Arc::clone(&core.vitals), Arc::clone(&lost));
        async move {
            tokio::select! {
                () = shutdown => {}
                part = vitals.lost() => {
                    tracing::error!(part, "a part Hookplane cannot run without stopped unexpectedly; stopping so that it is started again");
                    *lost.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(part);
                }
            }
        }
    };
    let served = Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(http::routes(core.state()), stop, Some(grace))
        .await;
    core.stop().await?;
    if let Some(part) = *lost.lock().unwrap_or_else(std::sync::PoisonError::into_inner) {
        anyhow::bail!("the {part} stopped unexpectedly; Hookplane stopped too, with everything acknowledged on disk");
    }
    tracing::info!("stopped cleanly");
    served.context("the HTTP server failed")
}

/// The watched parts, as `/healthz` names them.
const WRITER: &str = "writer";
const QUEUE: &str = "delivery queue";
const INDEXER: &str = "search indexer";
const SWEEP: &str = "secret sweep";
const ALERTS: &str = "alerts";
const HANDSHAKES: &str = "handshake watchdog";
const RETENTION: &str = "retention sweep";
const REDACTS: &str = "redact watcher";
const VERSIONS: &str = "version poller";
