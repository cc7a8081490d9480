//! Changing where and how a subscription's deliveries are forwarded.

use super::queue::DestinationState;
use super::subscriptions::{Control, ControlError, DestinationPatch, invalid};
use crate::domain::audit::{Actor, AuditAction, Change};
use crate::domain::subscription::{Destination, Origin, Subscription};
use crate::domain::{SubscriptionId, SubscriptionStatus};
use crate::storage::StoreError;
use crate::storage::subscriptions::{self as repo};

impl Control {
    /// The longest attempt a destination may ask for (`destination_timeout_seconds`).
    pub fn max_timeout_seconds(&self) -> u32 {
        self.options.max_timeout_seconds
    }

    /// Changes where and how a subscription's deliveries are forwarded, with its audit entry. Attempts made
    /// from now on use the new settings; one already handed to the worker may still go to the old URL.
    /// Going back to `store` ends forwarding: deliveries held by a pause are released, and their attempt
    /// records that they were not sent, since a destination that keeps its deliveries has nothing to resume.
    pub fn change_destination_blocking(
        &self,
        id: SubscriptionId,
        patch: DestinationPatch,
        by: &Actor,
    ) -> Result<DestinationState, ControlError> {
        let DestinationPatch { url, timeout_seconds, concurrency, headers } = patch;
        if url.as_ref().is_some_and(|u| u.as_deref() == Some("")) {
            return Err(invalid("`destination_url` is empty: give a URL, or `null` to keep deliveries in `store`"));
        }
        if url.is_none() && timeout_seconds.is_none() && concurrency.is_none() && headers.is_none() {
            return Err(invalid(
                "nothing to change: give any of `destination_url`, `destination_timeout_seconds`, \
                 `destination_concurrency`, `destination_headers`",
            ));
        }
        let _serial = self.serial();
        let db = self.store.db()?;
        let tx = db.begin_write().map_err(StoreError::from)?;
        let before = repo::get_in(&tx, id)?.ok_or_else(|| ControlError::NotFound(format!("no subscription {id}")))?;
        let refused = match before.origin {
            Origin::Api => None,
            Origin::Config => {
                Some("is declared in the configuration file: change it there, since every start applies the file again")
            }
            Origin::Discovered => Some(
                "was discovered from traffic: adopt it first (`POST /api/v1/subscriptions` with its shop and topic)",
            ),
        };
        if let Some(why) = refused {
            return Err(StoreError::Conflict(format!("`{}` {why}; nothing was changed", before.name)).into());
        }
        let destination = match (url, &before.destination) {
            // Kept or going to `store`: the forwarding settings go with the URL, unless this change sets them.
            (Some(None), _) => {
                self.destination(None, timeout_seconds.flatten(), concurrency.flatten(), headers.unwrap_or_default())?
            }
            // Settings for a destination this subscription does not have: the request is fine, the state is not.
            (None, Destination::Store) => self
                .destination(None, timeout_seconds.flatten(), concurrency.flatten(), headers.unwrap_or_default())
                .map_err(|e| match e {
                    ControlError::Invalid(m) => {
                        ControlError::Conflict(format!("`{}` keeps its deliveries in `store`: {m}", before.name))
                    }
                    other => other,
                })?,
            (url, current) => {
                let (u, t, c, h) = match current {
                    Destination::Http { url, timeout_seconds, concurrency, headers } => {
                        (Some(url.clone()), *timeout_seconds, *concurrency, headers.clone())
                    }
                    Destination::Store => (None, None, None, Vec::new()),
                };
                self.destination(
                    url.unwrap_or(u),
                    timeout_seconds.unwrap_or(t),
                    concurrency.unwrap_or(c),
                    headers.unwrap_or(h),
                )?
            }
        };
        let forwards = matches!(destination, Destination::Http { .. });
        let status = match before.status {
            SubscriptionStatus::Paused if !forwards => SubscriptionStatus::Active,
            status => status,
        };
        if destination == before.destination {
            return Ok(DestinationState { subscription: before, released: 0 });
        }
        let now = self.clock.now();
        // A run of failures belongs to the URL that failed.
        let consecutive_failures =
            if destination.url() == before.destination.url() { before.consecutive_failures } else { 0 };
        let after = Subscription { destination, status, consecutive_failures, updated_at: now, ..before.clone() };
        repo::update(&tx, &before, &after)?;
        let mut entry = by.entry(now, AuditAction::SubscriptionUpdated).target(id);
        for ((field, was), (_, is)) in
            destination_fields(&before.destination).into_iter().zip(destination_fields(&after.destination))
        {
            if was != is {
                entry = entry.change(Change { field: field.to_owned(), before: was, after: is });
            }
        }
        let released = if status == before.status { 0 } else { self.release_held_in(&tx, id, now)? };
        if status != before.status {
            entry = entry
                .change(Change::changed("status", before.status.as_str(), status.as_str()))
                .change(Change::set("released", released.to_string()));
        }
        self.commit_destination(tx, &entry, after, released)
    }
}

/// A destination's settings as its audit entries show them; absent for `store`.
pub(super) fn destination_fields(d: &Destination) -> [(&'static str, Option<String>); 4] {
    let (url, timeout, concurrency, headers) = match d {
        Destination::Store => (None, None, None, None),
        Destination::Http { url, timeout_seconds, concurrency, headers } => (
            Some(url.clone()),
            timeout_seconds.map(|t| t.to_string()),
            concurrency.map(|c| c.to_string()),
            (!headers.is_empty())
                .then(|| headers.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ")),
        ),
    };
    [
        ("destination_url", url),
        ("destination_timeout_seconds", timeout),
        ("destination_concurrency", concurrency),
        ("destination_headers", headers),
    ]
}
