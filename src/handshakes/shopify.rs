//! One shop's handshake: list its webhook subscriptions, then for each Hookplane subscription find its own
//! (by the id the last run recorded, else by topic and callback URL), update it when its address or format
//! differs, create it when it is missing. Subscriptions the shop has that no Hookplane subscription owns
//! are reported, never deleted: another consumer of the same app may own them.

use super::{Found, Target, same_address};
use crate::domain::handshake::shopify_graphql_topic;
use crate::providers::shopify::{Remote, ShopifyAdmin};

pub(super) async fn run(
    api: &ShopifyAdmin,
    shop: &str,
    token: &str,
    callback: &str,
    targets: &[&Target],
    peers: &[Target],
) -> Vec<Found> {
    let mut checked = vec![format!("listed the webhook subscriptions of {shop} at {}", api.endpoint(shop))];
    let remotes = match api.list(shop, token).await {
        Ok(r) => r,
        Err(failure) => return targets.iter().map(|t| Found::failed(t.sub.id, &checked, &failure)).collect(),
    };
    checked.push(format!("{shop} has {} webhook subscriptions for this app", remotes.len()));
    // Another subscription's registration is one sending to this instance for its topic, or the one its
    // last run recorded (which this run may be about to move back here).
    let owned = |r: &Remote| {
        peers.iter().any(|p| {
            let recorded = p.state.as_ref().and_then(|s| s.registration.provider_id.as_deref());
            r.topic == shopify_graphql_topic(&p.sub.topic)
                && (same_address(r.callback.as_deref(), callback) || recorded == Some(r.id.as_str()))
        })
    };
    let unknown: Vec<String> = remotes
        .iter()
        .filter(|r| !owned(r))
        .map(|r| format!("{} {} → {}", r.id, r.topic, r.callback.as_deref().unwrap_or("(not HTTP)")))
        .collect();
    let mut out = Vec::with_capacity(targets.len());
    for t in targets {
        let mut found = Found { checked: checked.clone(), unknown: unknown.clone(), ..Found::new(t.sub.id) };
        let topic = shopify_graphql_topic(&t.sub.topic);
        let known_id = t.state.as_ref().and_then(|s| s.registration.provider_id.as_deref());
        let exact = remotes.iter().find(|r| r.topic == topic && same_address(r.callback.as_deref(), callback));
        let recorded = remotes.iter().find(|r| Some(r.id.as_str()) == known_id && r.topic == topic);
        let result = match (exact, recorded) {
            (Some(r), _) if r.format == "JSON" => {
                found.checked.push(format!("{topic} sends to {callback} as JSON: {}", r.id));
                Ok(r.clone())
            }
            (Some(r), _) | (None, Some(r)) => {
                found.checked.push(format!(
                    "{topic} ({}) sends {} to {}",
                    r.id,
                    r.format,
                    r.callback.as_deref().unwrap_or("an endpoint that is not HTTP")
                ));
                let updated = api.update(shop, token, &r.id, callback).await;
                if updated.is_ok() {
                    found.repaired.push(format!(
                        "updated {}: it sent {} to {}, now JSON to {callback}",
                        r.id,
                        r.format,
                        r.callback.as_deref().unwrap_or("(not HTTP)")
                    ));
                }
                updated
            }
            (None, None) => {
                found.checked.push(format!("{topic}: {shop} has no subscription sending to {callback}"));
                let created = api.create(shop, token, &topic, callback).await;
                if let Ok(r) = &created {
                    found.repaired.push(format!("created {} for {topic}, sending JSON to {callback}", r.id));
                }
                created
            }
        };
        match result {
            Ok(r) => found.registration.provider_id = Some(r.id),
            Err(failure) => found.failure = Some(failure),
        }
        out.push(found);
    }
    out
}
