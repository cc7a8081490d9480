//! The process's metrics, in the Prometheus exposition format (OpenMetrics text) through `prometheus-client`.
//!
//! Events are counted where they happen (ingest's answers, the writer's commits, the worker's attempts, the
//! retention sweep, the alert notifier), into one process-wide set of instruments: there is one server per
//! process, and a count kept beside each component would need threading through every layer for nothing.
//! Levels that already live in storage (queue depth, index lag, file sizes, open incidents) are read when
//! `/metrics` is asked, by the HTTP layer, and set here just before encoding.

use std::sync::LazyLock;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

type Labels<const N: usize> = [(&'static str, &'static str); N];
type HistogramFamily<const N: usize> = Family<Labels<N>, Histogram, fn() -> Histogram>;

/// Seconds from 100 µs to about 100 s: an acknowledgement takes about a millisecond, an attempt may time out.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 21))
}

/// Every instrument. Read with [`get`].
pub struct Metrics {
    registry: Registry,
    ingest_requests: Family<Labels<3>, Counter>,
    ingest_ack: HistogramFamily<1>,
    /// The series every accepted webhook moves, resolved once: the ingest path takes no family's lock.
    by_source: [SourceSeries; 3],
    commit_deliveries: Histogram,
    commit_seconds: Histogram,
    attempts: Family<Labels<1>, Counter>,
    attempt_seconds: Histogram,
    retention_deleted: Counter,
    notifications: Family<Labels<2>, Counter>,
    log_lines_dropped: Counter<u64, AtomicU64>,
    /// Set at each scrape.
    pub levels: Levels,
}

/// The levels read from storage at each scrape.
#[derive(Default)]
pub struct Levels {
    pub queue_jobs: Family<Labels<1>, Gauge>,
    pub queue_oldest_waiting_seconds: Gauge<f64, AtomicU64>,
    pub search_lag_deliveries: Gauge,
    pub search_index_bytes: Gauge,
    pub store_bytes: Gauge,
    pub incidents_open: Family<Labels<1>, Gauge>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's instruments.
pub fn get() -> &'static Metrics {
    &METRICS
}

/// Where a webhook came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestSource {
    Shopify,
    Zoho,
    Standard,
}

impl IngestSource {
    const ALL: [IngestSource; 3] = [IngestSource::Shopify, IngestSource::Zoho, IngestSource::Standard];

    const fn as_str(self) -> &'static str {
        match self {
            IngestSource::Shopify => "shopify",
            IngestSource::Zoho => "zoho",
            IngestSource::Standard => "standard",
        }
    }
}

/// One source's accepted and duplicate counters and its acknowledgement histogram (handles onto the
/// families' own series).
struct SourceSeries {
    accepted: Counter,
    duplicate: Counter,
    ack: Histogram,
}

/// How an ingest request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestOutcome {
    Accepted,
    Duplicate,
    /// Refused, with the stable code of the cause (`signature_invalid`, `storage_unavailable`, …).
    Refused(&'static str),
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("hookplane");
        let ingest_requests: Family<Labels<3>, Counter> = Family::default();
        let ingest_ack: HistogramFamily<1> = Family::new_with_constructor(latency);
        // Every source's accepted and duplicate series exist from the start, at zero, so a rate over them is
        // defined before the first event.
        let by_source = IngestSource::ALL.map(|source| {
            let source = source.as_str();
            let count = |outcome| {
                ingest_requests.get_or_create_owned(&[("source", source), ("outcome", outcome), ("cause", "")])
            };
            SourceSeries {
                accepted: count("accepted"),
                duplicate: count("duplicate"),
                ack: ingest_ack.get_or_create_owned(&[("source", source)]),
            }
        });
        let m = Metrics {
            registry: Registry::default(),
            ingest_requests,
            ingest_ack,
            by_source,
            commit_deliveries: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
            commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            attempts: Family::default(),
            attempt_seconds: latency(),
            retention_deleted: Counter::default(),
            notifications: Family::default(),
            log_lines_dropped: Counter::default(),
            levels: Levels::default(),
        };
        registry.register(
            "ingest_requests",
            "Ingest requests by source and outcome (accepted, duplicate, refused); `cause` names a refusal's cause",
            m.ingest_requests.clone(),
        );
        registry.register_with_unit(
            "ingest_acknowledgement",
            "Time from a webhook's arrival to its answer, the commit's fsync included, by source",
            Unit::Seconds,
            m.ingest_ack.clone(),
        );
        registry.register(
            "commit_deliveries",
            "Deliveries written by one group commit of the ingest writer",
            m.commit_deliveries.clone(),
        );
        registry.register_with_unit(
            "commit_fsync",
            "Time the ingest writer's durable commit takes, its fsync included",
            Unit::Seconds,
            m.commit_seconds.clone(),
        );
        registry.register(
            "attempts",
            "Attempts to hand a delivery to its destination, by outcome: delivered, or why not (http, timeout, connect, internal)",
            m.attempts.clone(),
        );
        registry.register_with_unit(
            "attempt",
            "Time an attempt took, until the destination's answer or the failure",
            Unit::Seconds,
            m.attempt_seconds.clone(),
        );
        registry.register(
            "retention_deleted_deliveries",
            "Deliveries deleted by the retention sweep",
            m.retention_deleted.clone(),
        );
        registry.register(
            "alert_notifications",
            "Tries to tell an alert sink of an incident, by sink and outcome (sent, or failed: refused or to be tried again)",
            m.notifications.clone(),
        );
        registry.register(
            "log_lines_dropped",
            "Log lines dropped because standard output could not be written",
            m.log_lines_dropped.clone(),
        );
        let l = &m.levels;
        registry.register("queue_jobs", "Delivery jobs by state (due, scheduled, leased, held)", l.queue_jobs.clone());
        registry.register_with_unit(
            "queue_oldest_waiting",
            "How long the oldest due job has waited for a worker",
            Unit::Seconds,
            l.queue_oldest_waiting_seconds.clone(),
        );
        registry.register(
            "search_lag_deliveries",
            "Stored deliveries not yet searchable (counted up to 10 000)",
            l.search_lag_deliveries.clone(),
        );
        registry.register_with_unit(
            "search_index_size",
            "Size of the search index on disk",
            Unit::Bytes,
            l.search_index_bytes.clone(),
        );
        registry.register_with_unit("store_size", "Size of the redb data file", Unit::Bytes, l.store_bytes.clone());
        registry.register("incidents_open", "Open incidents by alert rule", l.incidents_open.clone());
        registry.register(
            "build",
            "The running build",
            Info::new([("version", env!("CARGO_PKG_VERSION")), ("git_sha", env!("BUILD_GIT_SHA"))]),
        );
        // Series that exist from the start, at zero, so a rate over them is defined before the first event.
        for outcome in ["delivered", "http", "timeout", "connect", "internal"] {
            let _ = m.attempts.get_or_create(&[("outcome", outcome)]);
        }
        for sink in ["pagerduty", "betterstack", "webhook"] {
            for outcome in ["sent", "failed"] {
                let _ = m.notifications.get_or_create(&[("sink", sink), ("outcome", outcome)]);
            }
        }
        Metrics { registry, ..m }
    }

    pub fn ingested(&self, source: IngestSource, outcome: IngestOutcome, took: Duration) {
        let series = &self.by_source[source as usize];
        match outcome {
            IngestOutcome::Accepted => series.accepted.inc(),
            IngestOutcome::Duplicate => series.duplicate.inc(),
            IngestOutcome::Refused(cause) => self
                .ingest_requests
                .get_or_create(&[("source", source.as_str()), ("outcome", "refused"), ("cause", cause)])
                .inc(),
        };
        series.ack.observe(took.as_secs_f64());
    }

    /// A durable group commit of `deliveries` that took `took`.
    pub fn committed(&self, deliveries: usize, took: Duration) {
        self.commit_deliveries.observe(deliveries as f64);
        self.commit_seconds.observe(took.as_secs_f64());
    }

    /// An attempt: `outcome` is `delivered` or the error class.
    pub fn attempted(&self, outcome: &'static str, took: Duration) {
        self.attempts.get_or_create(&[("outcome", outcome)]).inc();
        self.attempt_seconds.observe(took.as_secs_f64());
    }

    pub fn retention_deleted(&self, deliveries: usize) {
        self.retention_deleted.inc_by(deliveries as u64);
    }

    pub fn notified(&self, sink: &'static str, sent: bool) {
        self.notifications.get_or_create(&[("sink", sink), ("outcome", if sent { "sent" } else { "failed" })]).inc();
    }

    /// The exposition of every instrument. `dropped_log_lines` is the logger's own count.
    pub fn encode(&self, dropped_log_lines: u64) -> String {
        let seen = self.log_lines_dropped.get();
        self.log_lines_dropped.inc_by(dropped_log_lines.saturating_sub(seen));
        let mut out = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
