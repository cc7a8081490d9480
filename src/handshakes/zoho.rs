//! One Zoho organisation's handshake: read its notification channels, then for each Hookplane channel
//! subscription enable the channel when Zoho does not have it, update it when its address, events or token
//! differ, and refresh it (a new `channel_expiry`) when it expires within `zoho_refresh_before_minutes`.

use subtle::ConstantTimeEq;

use super::{ChannelTokens, Found, Target, same_address};
use crate::domain::handshake::HandshakeFailure;
use crate::domain::subscription::ZohoAuth;
use crate::domain::{Subscription, Timestamp};
use crate::providers::zoho::{ChannelSpec, Org, ZohoCrm};

/// What a run asks of each channel.
pub(super) struct Plan<'a> {
    pub notify_url: &'a str,
    pub now: Timestamp,
    pub lifetime_ms: i64,
    pub refresh_before_ms: i64,
}

fn channel_id(sub: &Subscription) -> Option<&str> {
    match &sub.zoho {
        Some(ZohoAuth::Channel { channel_id }) => Some(channel_id),
        _ => None,
    }
}

/// Whether a channel's events are the subscription's `topic`, as Zoho may list them back: `Leads.all` also
/// as its three operations.
fn same_events(theirs: &[String], topic: &str) -> bool {
    use std::collections::BTreeSet;
    let have: BTreeSet<&str> = theirs.iter().map(String::as_str).collect();
    if have == BTreeSet::from([topic]) {
        return true;
    }
    match topic.strip_suffix(".all") {
        Some(module) => {
            let ops: BTreeSet<String> =
                ["create", "edit", "delete"].iter().map(|op| format!("{module}.{op}")).collect();
            have.iter().all(|e| ops.contains(*e) || *e == topic) && ops.iter().all(|op| have.contains(op.as_str()))
        }
        None => false,
    }
}

pub(super) async fn run(
    api: &ZohoCrm,
    org: &Org<'_>,
    plan: &Plan<'_>,
    targets: &[&Target],
    peers: &[Target],
    tokens: &dyn ChannelTokens,
) -> Vec<Found> {
    let checked = vec![format!("read the notification channels of {}", org.org)];
    let channels = match api.channels(org).await {
        Ok(c) => c,
        Err(failure) => return targets.iter().map(|t| Found::failed(t.sub.id, &checked, &failure)).collect(),
    };
    let unknown: Vec<String> = channels
        .iter()
        .filter(|c| !peers.iter().any(|p| channel_id(&p.sub) == Some(c.channel_id.as_str())))
        .map(|c| {
            format!("channel {} ({}) → {}", c.channel_id, c.events.join(", "), c.notify_url.as_deref().unwrap_or("?"))
        })
        .collect();
    let mut out = Vec::with_capacity(targets.len());
    for t in targets {
        let mut found = Found { checked: checked.clone(), unknown: unknown.clone(), ..Found::new(t.sub.id) };
        let Some(id) = channel_id(&t.sub) else { continue };
        found.registration.provider_id = Some(id.to_owned());
        let Some(token) = tokens.current(t.sub.id) else {
            found.failure = Some(HandshakeFailure::refused(
                "token_missing",
                format!("`{}` holds no token for the channel to carry: rotate its secret to set one", t.sub.name),
                None,
            ));
            out.push(found);
            continue;
        };
        let token = String::from_utf8_lossy(token.expose()).into_owned();
        if token.len() > 50 {
            found.failure = Some(HandshakeFailure::refused(
                "token_too_long",
                format!(
                    "the token of `{}` has {} characters; Zoho takes at most 50 for a channel: rotate it to a shorter one",
                    t.sub.name,
                    token.len()
                ),
                None,
            ));
            out.push(found);
            continue;
        }
        let spec = ChannelSpec {
            channel_id: id,
            events: vec![t.sub.topic.clone()],
            notify_url: plan.notify_url,
            token: &token,
            expires_at: plan.now.plus_millis(plan.lifetime_ms),
        };
        let result = match channels.iter().find(|c| c.channel_id == id) {
            None => {
                found.checked.push(format!("channel {id}: Zoho does not have it"));
                let enabled = api.enable(org, &spec).await;
                if enabled.is_ok() {
                    found.repaired.push(format!("enabled channel {id} for {} to {}", t.sub.topic, plan.notify_url));
                }
                enabled
            }
            Some(c) => {
                let mut differs = Vec::new();
                if !same_address(c.notify_url.as_deref(), plan.notify_url) {
                    differs.push(format!("its address was {}", c.notify_url.as_deref().unwrap_or("(none)")));
                }
                if !same_events(&c.events, &t.sub.topic) {
                    differs.push(format!("its events were {}", c.events.join(", ")));
                }
                let same_token = c.token.as_ref().is_some_and(|k| bool::from(k.as_bytes().ct_eq(token.as_bytes())));
                if !same_token {
                    differs.push("its token was not the one Hookplane verifies".to_owned());
                }
                let expiry =
                    c.expires_at.map_or_else(|| "no expiry".to_owned(), |e| format!("expires {}", e.to_rfc3339()));
                found.checked.push(format!("channel {id}: {}, {expiry}", c.events.join(", ")));
                let due = c.expires_at.is_none_or(|e| e.plus_millis(-plan.refresh_before_ms) <= plan.now);
                if differs.is_empty() && !due {
                    Ok(c.expires_at)
                } else {
                    let updated = api.update(org, &spec).await;
                    if let Ok(granted) = &updated {
                        let until = granted.map_or_else(|| "(no expiry returned)".to_owned(), |g| g.to_rfc3339());
                        let why =
                            if differs.is_empty() { "it was near its expiry".to_owned() } else { differs.join("; ") };
                        found.repaired.push(format!("refreshed channel {id} until {until}: {why}"));
                    }
                    updated
                }
            }
        };
        match result {
            Ok(expires) => found.registration.expires_at = expires,
            Err(failure) => found.failure = Some(failure),
        }
        out.push(found);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::same_events;

    #[test]
    fn an_all_channel_matches_its_operations_listed_back() {
        let list = |e: &[&str]| e.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(same_events(&list(&["Leads.all"]), "Leads.all"));
        assert!(same_events(&list(&["Leads.edit", "Leads.create", "Leads.delete"]), "Leads.all"));
        assert!(!same_events(&list(&["Leads.edit", "Leads.create"]), "Leads.all"));
        assert!(!same_events(&list(&["Deals.all"]), "Leads.all"));
        assert!(!same_events(&list(&["Leads.create", "Leads.edit"]), "Leads.create"));
    }
}
