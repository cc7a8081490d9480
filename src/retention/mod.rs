//! The retention sweep: at start and every `retention.sweep_interval_minutes`, it deletes the deliveries
//! past their retention in batches of `retention.batch` (each its own short transaction, so the ingest
//! writer waits at most one batch), tells the search indexer which documents to drop, and drops the dedupe
//! keys kept after deleted deliveries once their provider can no longer send them again. The schedule is
//! the deliveries' own arrival times: a sweep missed while Hookplane was stopped is made at the next start.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::domain::Clock;
use crate::domain::retention::{self, RetryWindows};
use crate::search::indexer::IndexerHandle;
use crate::storage::{Store, StoreError};
use crate::task::AliveGuard;

/// The `[retention]` section.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    pub days: u32,
    pub sweep_interval_minutes: u32,
    pub batch: usize,
    pub shopify_retry_hours: u32,
    pub zoho_retry_hours: u32,
    pub standard_retry_hours: u32,
}

impl RetentionSettings {
    pub fn check(&self) -> Result<(), String> {
        retention::check_days(self.days).map_err(|e| format!("retention.days: {e}"))?;
        if !(1..=1440).contains(&self.sweep_interval_minutes) {
            return Err("retention.sweep_interval_minutes must be between 1 and 1440".to_owned());
        }
        if !(1..=10_000).contains(&self.batch) {
            return Err("retention.batch must be between 1 and 10000".to_owned());
        }
        for (key, hours) in [
            ("shopify_retry_hours", self.shopify_retry_hours),
            ("zoho_retry_hours", self.zoho_retry_hours),
            ("standard_retry_hours", self.standard_retry_hours),
        ] {
            if !(1..=720).contains(&hours) {
                return Err(format!("retention.{key} must be between 1 and 720"));
            }
        }
        Ok(())
    }

    pub fn windows(&self) -> RetryWindows {
        RetryWindows {
            shopify_hours: self.shopify_retry_hours,
            zoho_hours: self.zoho_retry_hours,
            standard_hours: self.standard_retry_hours,
        }
    }
}

/// What one sweep did, batches added up.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub deleted: usize,
    pub busy: usize,
    pub stubs_kept: usize,
    pub stubs_dropped: usize,
    pub jobs_dropped: usize,
}

pub struct Retention {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    settings: RetentionSettings,
    /// Where the configuration set `retention.days`, when it did: then the dashboard cannot change it.
    pinned_by: Option<String>,
    indexer: IndexerHandle,
}

/// The pause after a batch, as a multiple of the time it took.
pub const PACE: u32 = 4;
/// The shortest pause between batches: the ingest writer's commits go first.
pub const BETWEEN_BATCHES: Duration = Duration::from_millis(5);

impl Retention {
    pub fn new(
        store: Arc<Store>,
        clock: Arc<dyn Clock>,
        settings: RetentionSettings,
        pinned_by: Option<String>,
        indexer: IndexerHandle,
    ) -> Self {
        Self { store, clock, settings, pinned_by, indexer }
    }

    /// Where the configuration sets `retention.days`, when it does.
    pub fn pinned_by(&self) -> Option<&str> {
        self.pinned_by.as_deref()
    }

    /// `retention.days` as configured (or its default), before the dashboard's.
    pub fn configured_days(&self) -> u32 {
        self.settings.days
    }

    /// The retention that applies to subscriptions without their own: the configuration's when it sets
    /// one, else the dashboard's, else the default.
    pub async fn days(&self) -> Result<u32, StoreError> {
        if self.pinned_by.is_some() {
            return Ok(self.settings.days);
        }
        let stored = self.store.read(crate::storage::settings::retention_days).await?;
        Ok(stored.unwrap_or(self.settings.days))
    }

    /// Deletes one batch of what is past a retention of `days` now, tells the indexer, and when more may be
    /// waiting (the answer) pauses: at least [`PACE`] times as long as the batch took, so the sweep holds
    /// the store's single writer at most a fifth of the time and ingest's commits rarely wait behind it.
    pub async fn sweep_batch(&self, days: u32, totals: &mut Totals) -> Result<bool, StoreError> {
        // The time waiting for the store's writer counts too: the busier ingest keeps it, the longer the sweep
        // steps aside. Timing the transaction alone measured 1.1-1.6 ms more ingest p99 than this (0.6-1.0).
        let started = std::time::Instant::now();
        let now = self.clock.now();
        let (windows, batch) = (self.settings.windows(), self.settings.batch);
        let mut swept =
            self.store.read(move |db| crate::storage::retention::sweep(db, now, days, &windows, batch)).await?;
        self.store.forget_dedupe(std::mem::take(&mut swept.forgotten));
        let took = started.elapsed();
        totals.deleted += swept.deleted.len();
        crate::metrics::get().retention_deleted(swept.deleted.len());
        totals.busy = swept.busy;
        totals.stubs_kept += swept.stubs_kept;
        totals.stubs_dropped += swept.stubs_dropped;
        totals.jobs_dropped += swept.jobs_dropped;
        self.indexer.deleted(swept.deleted);
        if !swept.more {
            // Whatever deletions of earlier sweeps the index missed go too.
            self.indexer.expired(swept.expired_before);
            return Ok(false);
        }
        tokio::time::sleep(BETWEEN_BATCHES.max(took * PACE)).await;
        Ok(true)
    }

    /// Deletes every delivery past its retention now, batch by batch.
    pub async fn sweep(&self) -> Result<Totals, StoreError> {
        let mut totals = Totals::default();
        let days = self.days().await?;
        while self.sweep_batch(days, &mut totals).await? {}
        if totals != Totals::default() {
            tracing::info!(
                deleted = totals.deleted,
                kept_while_attempts_run = totals.busy,
                dedupe_keys_kept = totals.stubs_kept,
                dedupe_keys_dropped = totals.stubs_dropped,
                dead_jobs_dropped = totals.jobs_dropped,
                days,
                "retention sweep"
            );
        }
        Ok(totals)
    }

    /// Sweeps at once, then every `sweep_interval_minutes`. A failed sweep is logged and made again at the
    /// next tick: what it did not delete is still expired then.
    pub fn spawn(self: Arc<Self>, guard: AliveGuard) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let _alive = guard;
            let mut tick =
                tokio::time::interval(Duration::from_secs(u64::from(self.settings.sweep_interval_minutes) * 60));
            loop {
                tick.tick().await;
                if let Err(e) = self.sweep().await {
                    tracing::error!(
                        "the retention sweep failed; it runs again at the next tick: {}",
                        crate::logging::chain(&e)
                    );
                }
            }
        })
    }
}
