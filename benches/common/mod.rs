//! What the load generators share: correctly signed Shopify order bodies and Shopify-like webhook ids.

use bytes::Bytes;
use hookplane::connectors::shopify;
use hookplane::demo::factories::Factory;
use hookplane::domain::{Clock, SystemClock};

pub struct Body {
    pub bytes: Bytes,
    pub hmac: String,
}

/// 512 order bodies (2–4 KB) signed with `secret`. HMAC covers only the body, so unique webhook ids over
/// this pool are still correctly signed deliveries, and the generator spends its CPU on sending.
pub fn bodies(seed: u64, secret: &[u8]) -> Vec<Body> {
    let mut f = Factory::new(seed);
    let now = SystemClock.now();
    (0..512)
        .map(|i| {
            let bytes = f.shopify_order(1000 + i, now);
            Body { hmac: shopify::sign(&bytes, secret), bytes: Bytes::from(bytes) }
        })
        .collect()
}

/// Random, like Shopify's own ids: dedupe keys land all over the index, as in production.
pub fn webhook_id() -> String {
    let v: u128 = rand::random();
    let h = format!("{v:032x}");
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}
