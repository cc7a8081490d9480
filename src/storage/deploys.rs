//! The deploy history: which versions each subscription's destination answered with and when, and the
//! deploys announced per service.

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::{StoreError, tables};
use crate::domain::deploy::{Announced, Seen};
use crate::domain::{SubscriptionId, Timestamp};

/// Versions kept per subscription: the most recently seen.
pub const VERSIONS_KEPT: usize = 50;
/// Announcements kept per service: the newest.
pub const ANNOUNCEMENTS_KEPT: usize = 50;

/// Records that `sub`'s destination answered with `version` at `at`. Written with the attempt that saw it,
/// or by the version poller.
pub fn seen(tx: &WriteTransaction, sub: SubscriptionId, version: &str, at: Timestamp) -> Result<(), StoreError> {
    let mut t = tx.open_table(tables::VERSIONS_SEEN.def())?;
    let key = (sub.as_u128(), version);
    let before = t.get(key)?.map(|v| tables::VERSIONS_SEEN.decode(v.value())).transpose()?;
    let after = before.map_or_else(|| Seen::at(at), |s| s.and(at));
    if before == Some(after) {
        return Ok(());
    }
    t.insert(key, tables::VERSIONS_SEEN.encode(&after)?.as_slice())?;
    if before.is_none() {
        // A new version: past the limit, the one seen longest ago goes.
        let mut all = Vec::new();
        for row in t.range((sub.as_u128(), "")..=(sub.as_u128(), "\u{10ffff}"))? {
            let (k, v) = row?;
            all.push((tables::VERSIONS_SEEN.decode(v.value())?.last_seen, k.value().1.to_owned()));
        }
        if all.len() > VERSIONS_KEPT {
            all.sort();
            for (_, v) in &all[..all.len() - VERSIONS_KEPT] {
                t.remove((sub.as_u128(), v.as_str()))?;
            }
        }
    }
    Ok(())
}

/// Every version `sub`'s destination answered with, most recently seen first.
pub fn versions_in(tx: &ReadTransaction, sub: SubscriptionId) -> Result<Vec<(String, Seen)>, StoreError> {
    let t = tx.open_table(tables::VERSIONS_SEEN.def())?;
    let mut out = Vec::new();
    for row in t.range((sub.as_u128(), "")..=(sub.as_u128(), "\u{10ffff}"))? {
        let (k, v) = row?;
        out.push((k.value().1.to_owned(), tables::VERSIONS_SEEN.decode(v.value())?));
    }
    out.sort_by(|a, b| b.1.last_seen.cmp(&a.1.last_seen).then_with(|| a.0.cmp(&b.0)));
    Ok(out)
}

pub fn announce(tx: &WriteTransaction, service: &str, deploy: &Announced) -> Result<(), StoreError> {
    let mut t = tx.open_table(tables::DEPLOYS.def())?;
    // Two announcements in one millisecond keep their order rather than one overwriting the other.
    let mut at = deploy.at.millis();
    while t.get((service, at))?.is_some() {
        at += 1;
    }
    t.insert((service, at), tables::DEPLOYS.encode(deploy)?.as_slice())?;
    let mut keys = Vec::new();
    for row in t.range((service, i64::MIN)..=(service, i64::MAX))? {
        keys.push(row?.0.value().1);
    }
    for at in keys.iter().take(keys.len().saturating_sub(ANNOUNCEMENTS_KEPT)) {
        t.remove((service, *at))?;
    }
    Ok(())
}

/// The deploys announced for `service`, oldest first.
pub fn announced_in(tx: &ReadTransaction, service: &str) -> Result<Vec<Announced>, StoreError> {
    let t = tx.open_table(tables::DEPLOYS.def())?;
    let mut out = Vec::new();
    for row in t.range((service, i64::MIN)..=(service, i64::MAX))? {
        out.push(tables::DEPLOYS.decode(row?.1.value())?);
    }
    Ok(out)
}
