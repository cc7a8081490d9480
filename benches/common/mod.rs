//! What the load generators share: correctly signed Shopify order bodies and Shopify-like webhook ids.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use hookplane::config::{Flags, Settings};
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

/// A correctly signed Shopify `orders/create` delivery of `body` from `shop` to `path`, with a new webhook id.
pub fn shopify_request(path: &str, body: &Body, shop: &str) -> hyper::Request<http_body_util::Full<Bytes>> {
    hyper::Request::post(path)
        .header("host", "bench")
        .header("content-type", "application/json")
        .header("x-shopify-topic", "orders/create")
        .header("x-shopify-hmac-sha256", body.hmac.as_str())
        .header("x-shopify-shop-domain", shop)
        .header("x-shopify-api-version", "2025-10")
        .header("x-shopify-webhook-id", webhook_id())
        .body(http_body_util::Full::new(body.bytes.clone()))
        .unwrap()
}

/// Random, like Shopify's own ids: dedupe keys land all over the index, as in production.
pub fn webhook_id() -> String {
    let v: u128 = rand::random();
    let h = format!("{v:032x}");
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// Hookplane's settings for a benchmark: a data directory under `dir`, the Shopify secret, `extra` variables,
/// and whatever `HOOKPLANE_*` settings under study the benchmark's own environment holds.
pub fn settings(dir: &Path, secret: &[u8], extra: &[(&str, &str)]) -> Settings {
    let env: BTreeMap<String, String> = [
        ("HOOKPLANE_MASTER_KEY", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"),
        ("SHOPIFY_WEBHOOK_SECRET", std::str::from_utf8(secret).unwrap()),
        ("HOOKPLANE_LOG", "warn"),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .chain(std::env::vars().filter(|(k, _)| k.starts_with("HOOKPLANE_")))
    .collect();
    Settings::load(&Flags { data_dir: Some(dir.join("data")), ..Flags::default() }, &env).unwrap()
}

/// Hookplane serving on 127.0.0.1 on `rt`: its address, and what stops it (send, then await the handle).
/// The sweep benchmark builds its own, to reach the retention service and set the clock.
#[allow(dead_code)]
pub fn serve(
    rt: &tokio::runtime::Runtime,
    settings: Settings,
) -> (std::net::SocketAddr, (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<anyhow::Result<()>>)) {
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(hookplane::app::serve(settings, listener, async move {
            let _ = rx.await;
        }));
        (addr, (tx, handle))
    })
}
