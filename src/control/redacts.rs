//! The redact watcher: with `privacy.honor_shopify_redact`, an erasure for each stored `customers/redact` or
//! `shop/redact` webhook, audited as `system`.

use std::sync::Arc;
use std::time::Duration;

use super::erasures::{Erasures, fresh};
use crate::domain::DeliveryId;
use crate::domain::audit::Actor;
use crate::domain::erasure::{self, Erasure};
use crate::domain::filter::DeliveryFilter;
use crate::domain::replay::BulkStatus;
use crate::storage::{StoreError, erasures};
use crate::task::AliveGuard;

/// Redact webhooks read at once; more are read straight after.
const REDACTS_AT_ONCE: usize = 100;
/// How often redact webhooks are looked for besides when one is stored.
const REDACT_POLL: Duration = Duration::from_secs(30);
/// Redact webhooks are looked for from this long before the newest one seen: ids are taken a moment
/// before their commit, so they can commit out of order.
const REDACT_MARGIN_MS: i64 = 5 * 60 * 1000;

impl Erasures {
    /// Tells the redact watcher a redact webhook was stored.
    pub fn redact_stored(&self) {
        self.redacted.notify_one();
    }

    /// Run with `privacy.honor_shopify_redact` only: starts an erasure for every redact webhook stored without one:
    /// at start, whenever one is stored, and every half minute.
    pub fn spawn_redact_watcher(self: &Arc<Self>, guard: AliveGuard) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let _guard = guard;
            let mut after: Option<DeliveryId> = None;
            loop {
                let mut more = false;
                match this.honor_redacts(after).await {
                    Ok((newest, full)) => {
                        if let Some(n) = newest {
                            let from = n.timestamp().plus_millis(-REDACT_MARGIN_MS);
                            after = after.max(Some(DeliveryId::first_at(from)));
                        }
                        more = full;
                    }
                    Err(e) => tracing::error!(error = %e, "looking for redact webhooks failed; will retry"),
                }
                if !more {
                    let _ = tokio::time::timeout(REDACT_POLL, this.redacted.notified()).await;
                }
            }
        })
    }

    /// Starts the erasures the redact webhooks after `after` ask for; returns the newest webhook seen, and
    /// whether more may be waiting.
    async fn honor_redacts(
        self: &Arc<Self>,
        after: Option<DeliveryId>,
    ) -> Result<(Option<DeliveryId>, bool), StoreError> {
        let found = self.store.read(move |db| erasures::unhandled_redacts(db, after, REDACTS_AT_ONCE)).await?;
        let (newest, full) = (found.last().map(|(d, _)| d.id), found.len() == REDACTS_AT_ONCE);
        let mut recorded = false;
        let by = Actor::system();
        for (d, body) in found {
            let Some(asked) = erasure::redact_filter(&d, &body) else { continue };
            let now = self.clock.now();
            let id = Erasure::id_for_redact(d.id);
            let e = match asked {
                Ok((filter, why)) => fresh(id, now, filter, 0, Some(why), Some(d.id), &by),
                Err(why) => {
                    // Recorded failed, so it shows and the watcher does not ask again.
                    tracing::error!(delivery = %d.id, %why, "a redact webhook cannot be honoured");
                    let mut e = fresh(id, now, DeliveryFilter::default(), 0, Some(d.topic.clone()), Some(d.id), &by);
                    e.status = BulkStatus::Failed;
                    e.finished_at = Some(now);
                    e.error = Some(why);
                    e
                }
            };
            let new = self.record(e.clone(), &by).await?;
            recorded |= new;
            if new && e.status == BulkStatus::Running {
                tracing::info!(erasure = %e.id, delivery = %d.id, topic = %d.topic, "honouring a redact webhook");
                self.spawn(e, by.clone());
            }
        }
        // Straight on only while it gets somewhere: webhooks it cannot record are not read in a loop.
        Ok((newest, full && recorded))
    }
}
