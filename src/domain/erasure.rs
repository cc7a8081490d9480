//! Privacy erasure: the payloads of the deliveries a filter matches are replaced by a tombstone, while
//! their metadata (arrival, topic, status, attempts) stays. An operator asks for one to answer a
//! data-subject request; with `privacy.honor_shopify_redact`, a stored `customers/redact` or `shop/redact`
//! webhook asks for one about that customer or shop.

use serde::{Deserialize, Serialize};

use super::filter::DeliveryFilter;
use super::replay::BulkStatus;
use super::{Delivery, DeliveryId, ErasureId, Source, Timestamp};

/// Most busy deliveries an erasure remembers by id.
pub const WAITING_KEPT: usize = 10_000;

/// The Shopify topics that ask for an erasure.
pub const CUSTOMERS_REDACT: &str = "customers/redact";
pub const SHOP_REDACT: &str = "shop/redact";

/// An erasure and its progress. Deliveries are taken newest first; `cursor` is the last one handled, so a
/// restart goes on from there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erasure {
    pub id: ErasureId,
    /// An operator's name, or `system` for a redact webhook's.
    pub requested_by: String,
    pub requested_at: Timestamp,
    /// What it erases: `to` is fixed when it starts, so what arrives later is not part of it.
    pub filter: DeliveryFilter,
    /// The operator's reason (a data-subject request's reference), or what the redact webhook asked.
    pub reason: Option<String>,
    /// The `customers/redact` or `shop/redact` delivery that asked for it.
    pub redact: Option<DeliveryId>,
    /// How many deliveries matched when it started.
    pub matched: u64,
    pub erased: u64,
    /// Erased already.
    pub skipped: u64,
    /// Their attempts were under way, so their payloads wait until those settle.
    pub busy: u64,
    /// Which ones (at most [`WAITING_KEPT`]): the erasure looks at them again, not at all it matched.
    #[serde(default)]
    pub waiting: Vec<DeliveryId>,
    /// More were busy than `waiting` holds: the next look goes over everything it matches again.
    #[serde(default)]
    pub waiting_overflowed: bool,
    pub status: BulkStatus,
    pub cursor: Option<DeliveryId>,
    pub finished_at: Option<Timestamp>,
    pub error: Option<String>,
}

impl Erasure {
    /// The erasure a redact webhook asks for has the id of that delivery, so asking twice (a restart
    /// between storing the webhook and recording its erasure) finds the first.
    pub fn id_for_redact(redact: DeliveryId) -> ErasureId {
        ErasureId::from_u128(redact.as_u128())
    }
}

/// What an erased delivery keeps of its payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erased {
    pub at: Timestamp,
    pub erasure: ErasureId,
    /// The size of the body it had.
    pub size_bytes: u64,
}

impl Erased {
    /// Why an erased delivery cannot be replayed.
    pub fn replay_refusal(&self) -> String {
        format!(
            "its payload was erased by {} at {}: there is nothing left to replay",
            self.erasure,
            self.at.to_rfc3339()
        )
    }
}

/// The body an erased delivery has instead of its own: JSON, saying what replaced it and when.
pub fn tombstone(erasure: ErasureId, at: Timestamp) -> Vec<u8> {
    format!(r#"{{"erased":true,"erasure_id":"{erasure}","erased_at":"{}"}}"#, at.to_rfc3339()).into_bytes()
}

/// `d` as it is once erased at `at` by `erasure`: its body's digest and size are the tombstone's, so
/// reading the body checks out; the size it had is kept with the mark.
pub fn erase(d: &mut Delivery, erasure: ErasureId, at: Timestamp, tombstone: &[u8]) {
    d.erased = Some(Erased { at, erasure, size_bytes: d.size_bytes });
    d.size_bytes = tombstone.len() as u64;
    d.body_sha256 = crate::secrets::sha256_hex(tombstone);
    d.content_type = Some("application/json".to_owned());
}

/// Whether `d` is a redact webhook.
pub fn asks_for_erasure(d: &Delivery) -> bool {
    d.source == Source::Shopify && (d.topic == CUSTOMERS_REDACT || d.topic == SHOP_REDACT)
}

/// The topics whose payloads name a customer by their own `id` (top-level) rather than `customer.id`.
const CUSTOMER_TOPICS: [&str; 5] =
    ["customers/create", "customers/update", "customers/delete", "customers/enable", "customers/disable"];

/// What a redact webhook stored as `d` with `body` asks to erase: deliveries of the same shop that arrived
/// before it, and for `customers/redact` only those whose payload names the customer by id or email (the
/// search index's exact path fields). Shopify's signature covers the body only, so the body must name the
/// shop the delivery came from (`shop_domain`): a body signed for one purpose, sent again under a redact
/// topic or another shop's name, erases nothing. `None` when `d` is not a redact webhook.
pub fn redact_filter(d: &Delivery, body: &[u8]) -> Option<Result<(DeliveryFilter, String), String>> {
    if !asks_for_erasure(d) {
        return None;
    }
    Some(redact_query(d, body).map(|(q, why)| {
        let filter = DeliveryFilter {
            q,
            source: Some(Source::Shopify.as_str().to_owned()),
            account: Some(d.account.clone()),
            to: Some(d.received_at.to_rfc3339()),
            ..DeliveryFilter::default()
        };
        (filter, why)
    }))
}

fn redact_query(d: &Delivery, body: &[u8]) -> Result<(Option<String>, String), String> {
    #[derive(Deserialize)]
    struct Redact {
        shop_domain: Option<String>,
        customer: Option<Customer>,
    }
    #[derive(Deserialize)]
    struct Customer {
        id: Option<serde_json::Value>,
        email: Option<String>,
    }
    let r: Redact =
        serde_json::from_slice(body).map_err(|e| format!("the {} body is not the JSON expected: {e}", d.topic))?;
    match r.shop_domain.as_deref().map(str::trim) {
        Some(shop) if shop.eq_ignore_ascii_case(&d.account) => {}
        Some(shop) => {
            return Err(format!(
                "the {} body names the shop `{shop}`, not `{}` that sent it: nothing was erased",
                d.topic, d.account
            ));
        }
        None => return Err(format!("the {} body names no `shop_domain`: nothing was erased", d.topic)),
    }
    if d.topic == SHOP_REDACT {
        return Ok((None, format!("shop/redact for {}", d.account)));
    }
    let c = r.customer.ok_or("the customers/redact body names no `customer`")?;
    let id = match c.id {
        Some(serde_json::Value::Number(n)) if n.is_u64() => Some(n.to_string()),
        Some(serde_json::Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => Some(s),
        None | Some(serde_json::Value::Null) => None,
        Some(other) => return Err(format!("the customers/redact body's `customer.id` is not a number: {other}")),
    };
    let email = c.email.map(|e| e.trim().to_owned()).filter(|e| !e.is_empty());
    if let Some(e) = &email
        && (e.contains(['"', '\\']) || e.chars().count() > 254)
    {
        return Err("the customers/redact body's `customer.email` is not an email address".to_owned());
    }
    let mut terms = Vec::new();
    if let Some(id) = &id {
        terms.push(format!("payload.customer.id:{id}"));
        let topics: Vec<String> = CUSTOMER_TOPICS.iter().map(|t| format!("topic:\"{t}\"")).collect();
        terms.push(format!("(payload.id:{id} AND ({}))", topics.join(" OR ")));
    }
    if let Some(e) = &email {
        for path in ["customer.email", "email", "contact_email"] {
            terms.push(format!("payload.{path}:\"{e}\""));
        }
    }
    if terms.is_empty() {
        return Err("the customers/redact body names the customer by neither `id` nor `email`".to_owned());
    }
    let who = id.unwrap_or_else(|| "with that email".to_owned());
    Ok((Some(terms.join(" OR ")), format!("customers/redact for customer {who} of {}", d.account)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DeliveryStatus, SubscriptionId};

    fn redact(topic: &str) -> Delivery {
        Delivery {
            id: DeliveryId::new(Timestamp(1_800_000_000_000)),
            subscription_id: SubscriptionId::new(Timestamp(1)),
            source: Source::Shopify,
            topic: topic.to_owned(),
            provider_delivery_id: None,
            dedupe_key: None,
            event_id: None,
            account: "acme.myshopify.com".to_owned(),
            status: DeliveryStatus::Stored,
            attempt_count: 0,
            received_at: Timestamp(1_800_000_000_000),
            last_attempted_at: None,
            response_code: None,
            latency_ms: None,
            size_bytes: 10,
            content_type: None,
            body_sha256: String::new(),
            error_message: None,
            initiated_by: "provider".to_owned(),
            verified_with: "app".to_owned(),
            verified_fingerprint: None,
            erased: None,
        }
    }

    #[test]
    fn a_customer_redact_finds_the_customer_by_id_and_email_in_its_own_shop_only() {
        let body = br#"{"shop_id":954889,"shop_domain":"acme.myshopify.com","customer":{"id":191167,"email":"John@Example.com","phone":"555"},"orders_to_redact":[299938]}"#;
        let (f, why) = redact_filter(&redact(CUSTOMERS_REDACT), body).unwrap().unwrap();
        assert_eq!(f.account.as_deref(), Some("acme.myshopify.com"));
        assert_eq!(f.source.as_deref(), Some("shopify"));
        assert_eq!(f.to.as_deref(), Some("2027-01-15T08:00:00.000Z"));
        assert_eq!(
            f.q.as_deref(),
            Some(concat!(
                r#"payload.customer.id:191167 OR (payload.id:191167 AND (topic:"customers/create" OR topic:"customers/update" OR "#,
                r#"topic:"customers/delete" OR topic:"customers/enable" OR topic:"customers/disable")) OR "#,
                r#"payload.customer.email:"John@Example.com" OR payload.email:"John@Example.com" OR payload.contact_email:"John@Example.com""#
            ))
        );
        assert_eq!(why, "customers/redact for customer 191167 of acme.myshopify.com");
    }

    #[test]
    fn a_shop_redact_takes_every_delivery_of_the_shop() {
        let (f, _) = redact_filter(&redact(SHOP_REDACT), br#"{"shop_domain":"ACME.myshopify.com"}"#).unwrap().unwrap();
        assert_eq!((f.q, f.account.as_deref()), (None, Some("acme.myshopify.com")));
    }

    #[test]
    fn other_topics_ask_for_nothing_and_bad_bodies_say_why() {
        assert!(redact_filter(&redact("orders/create"), b"{}").is_none());
        let bad = |body: &str| {
            let body = body.replace("SHOP", r#""shop_domain":"acme.myshopify.com""#);
            redact_filter(&redact(CUSTOMERS_REDACT), body.as_bytes()).unwrap().unwrap_err()
        };
        assert!(bad("not json").starts_with("the customers/redact body is not the JSON expected"));
        assert_eq!(bad("{SHOP}"), "the customers/redact body names no `customer`");
        assert_eq!(
            bad(r#"{SHOP,"customer":{}}"#),
            "the customers/redact body names the customer by neither `id` nor `email`"
        );
        assert_eq!(
            bad(r#"{SHOP,"customer":{"id":"1 OR x"}}"#),
            r#"the customers/redact body's `customer.id` is not a number: "1 OR x""#
        );
        assert_eq!(
            bad(r#"{SHOP,"customer":{"email":"a\" OR b"}}"#),
            "the customers/redact body's `customer.email` is not an email address"
        );
        // Shopify signs the body only: a body of another shop, or of no shop, erases nothing.
        assert_eq!(
            bad(r#"{"shop_domain":"victim.myshopify.com","customer":{"id":1}}"#),
            "the customers/redact body names the shop `victim.myshopify.com`, not `acme.myshopify.com` that sent it: nothing was erased"
        );
        let order = redact_filter(&redact(SHOP_REDACT), br#"{"id":1,"email":"a@b.c"}"#).unwrap().unwrap_err();
        assert_eq!(order, "the shop/redact body names no `shop_domain`: nothing was erased");
    }

    #[test]
    fn an_erased_delivery_reads_as_its_tombstone() {
        let mut d = redact("orders/create");
        let id = ErasureId::new(Timestamp(5));
        let t = tombstone(id, Timestamp(1_800_000_000_000));
        erase(&mut d, id, Timestamp(1_800_000_000_000), &t);
        assert_eq!(d.erased, Some(Erased { at: Timestamp(1_800_000_000_000), erasure: id, size_bytes: 10 }));
        assert_eq!(d.size_bytes, t.len() as u64);
        assert_eq!(d.body_sha256, crate::secrets::sha256_hex(&t));
        let v: serde_json::Value = serde_json::from_slice(&t).unwrap();
        assert_eq!(v["erasure_id"], id.to_string());
    }
}
