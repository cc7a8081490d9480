//! Where a subscription's destination tells its version.

use super::queue::DestinationState;
use super::subscriptions::{Control, ControlError, invalid, validate_header_name, validate_url};
use crate::domain::audit::{Actor, AuditAction, Change};
use crate::domain::deploy::{self, VersionWatch};
use crate::domain::{Subscription, SubscriptionId};
use crate::storage::StoreError;
use crate::storage::subscriptions::{self as repo};

impl Control {
    /// Sets where the subscription's destination tells its version (a response header, a version URL to
    /// poll) and the service name deploys are announced under; each absent value is the default. Audited
    /// with before and after.
    pub fn set_versions_blocking(
        &self,
        id: SubscriptionId,
        watch: VersionWatch,
        by: &Actor,
    ) -> Result<Subscription, ControlError> {
        if let Some(h) = &watch.header {
            validate_header_name("header", h)?;
        }
        let url = watch.url.as_deref().map(|u| validate_url("url", u)).transpose()?;
        if let Some(s) = &watch.service {
            deploy::check_label("service", s).map_err(invalid)?;
        }
        let watch = VersionWatch { url, ..watch };
        let _serial = self.serial();
        let db = self.store.db()?;
        let tx = db.begin_write().map_err(StoreError::from)?;
        let before = repo::get_in(&tx, id)?.ok_or_else(|| ControlError::NotFound(format!("no subscription {id}")))?;
        if before.versions == watch {
            return Ok(before);
        }
        let now = self.clock.now();
        let after = Subscription { versions: watch, updated_at: now, ..before.clone() };
        repo::update(&tx, &before, &after)?;
        let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "default".to_owned());
        let mut entry = by.entry(now, AuditAction::SubscriptionUpdated).target(id);
        for (field, was, is) in [
            ("version_header", &before.versions.header, &after.versions.header),
            ("version_url", &before.versions.url, &after.versions.url),
            ("service", &before.versions.service, &after.versions.service),
        ] {
            if was != is {
                entry = entry.change(Change::changed(field, shown(was), shown(is)));
            }
        }
        let DestinationState { subscription, .. } = self.commit_destination(tx, &entry, after, 0)?;
        Ok(subscription)
    }
}
