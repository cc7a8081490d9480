//! A subscription's own retention, in place of `retention.days`.

use super::queue::DestinationState;
use super::subscriptions::{Control, ControlError, invalid};
use crate::domain::audit::{Actor, AuditAction, Change};
use crate::domain::retention;
use crate::domain::{Subscription, SubscriptionId};
use crate::storage::StoreError;
use crate::storage::subscriptions::{self as repo};

impl Control {
    /// Keeps the subscription's deliveries `days` (1 to 30), or `None` for `retention.days`, audited with
    /// before and after. The next sweep applies it.
    pub fn set_retention_blocking(
        &self,
        id: SubscriptionId,
        days: Option<u32>,
        by: &Actor,
    ) -> Result<Subscription, ControlError> {
        if let Some(d) = days {
            retention::check_days(d).map_err(invalid)?;
        }
        let _serial = self.serial();
        let db = self.store.db()?;
        let tx = db.begin_write().map_err(StoreError::from)?;
        let before = repo::get_in(&tx, id)?.ok_or_else(|| ControlError::NotFound(format!("no subscription {id}")))?;
        if before.retention_days == days {
            return Ok(before);
        }
        let now = self.clock.now();
        let after = Subscription { retention_days: days, updated_at: now, ..before.clone() };
        repo::update(&tx, &before, &after)?;
        let shown = |d: Option<u32>| d.map_or_else(|| "default".to_owned(), |d| d.to_string());
        let entry = by.entry(now, AuditAction::SubscriptionUpdated).target(id).change(Change::changed(
            "retention_days",
            shown(before.retention_days),
            shown(days),
        ));
        let DestinationState { subscription, .. } = self.commit_destination(tx, &entry, after, 0)?;
        Ok(subscription)
    }
}
