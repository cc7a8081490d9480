//! The wall clock stepped back an hour under the real binary (libfaketime, its offset changed while the
//! server runs; the monotonic clock left alone, as an NTP step leaves it): ids stay in the order webhooks
//! came, nothing is taken for a duplicate, a retry scheduled before the step is not put off by an hour, and a
//! restart with the clock still behind does not make ids older than the stored ones.

use std::path::Path;
use std::time::{Duration, Instant};

use hookplane::demo::factories::shopify_request;
use serde_json::{Value, json};

use crate::process::Proc;
use crate::queue::{Answer, Destination};
use crate::support::{ADMIN_TOKEN, SHOPIFY_SECRET, now, signed};

const SHOP: &str = "clock.myshopify.com";
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
/// Bounds a wait that only a broken build would exceed; far less than the hour a wrong clock would cost.
const GENEROUS: Duration = Duration::from_secs(60);

async fn api(base: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut req = reqwest::Client::new().request(method, format!("{base}{path}")).bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        req = req.header("content-type", "application/json").body(body.to_string());
    }
    let resp = req.send().await.unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    serde_json::from_str(&resp.text().await.unwrap()).unwrap()
}

async fn order(base: &str, id: &str) -> Value {
    let body = format!(r#"{{"note":"{id}"}}"#).into_bytes();
    let req = shopify_request("orders/create", SHOP, body, SHOPIFY_SECRET.as_bytes(), id, now());
    let resp = signed(&reqwest::Client::new(), base, &req).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{id}");
    serde_json::from_str(&resp.text().await.unwrap()).unwrap()
}

/// The provider ids of every delivery, newest first (by id).
async fn listed(base: &str) -> Vec<String> {
    let page = api(base, reqwest::Method::GET, "/api/v1/deliveries?limit=100", None).await;
    page["items"].as_array().unwrap().iter().map(|d| d["provider_delivery_id"].as_str().unwrap().to_owned()).collect()
}

fn start(dir: &Path, offset: &Path) -> Proc {
    let offset = offset.to_str().unwrap();
    Proc::start_env(
        dir,
        None,
        &[
            ("LD_PRELOAD", LIBFAKETIME),
            ("FAKETIME_TIMESTAMP_FILE", offset),
            ("FAKETIME_NO_CACHE", "1"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
            ("HOOKPLANE_DELIVERY__RETRY_DELAYS_SECONDS", "3"),
            ("HOOKPLANE_DELIVERY__RETRY_JITTER_PERCENT", "0"),
            ("HOOKPLANE_DELIVERY__POLL_INTERVAL_MS", "50"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wall_clock_stepped_back_an_hour_keeps_ids_in_order_and_retries_on_time() {
    assert!(Path::new(LIBFAKETIME).is_file(), "libfaketime is missing: apt-get install faketime");
    let dir = tempfile::tempdir().unwrap();
    let offset = dir.path().join("faketime");
    std::fs::write(&offset, "+0").unwrap();
    let data = dir.path().join("data");
    let proc = start(&data, &offset);
    let dest = Destination::start(&[Answer::Status(503)]).await;
    let made = json!({ "source": "shopify", "topic": "orders/create", "account": SHOP, "destination_url": dest.url });
    api(&proc.base, reqwest::Method::POST, "/api/v1/subscriptions", Some(made)).await;

    // The first attempt fails; its retry is due 3 s later.
    order(&proc.base, "before-1").await;
    dest.wait_for(1).await;
    order(&proc.base, "before-2").await;
    std::fs::write(&offset, "-3600").unwrap();
    let stepped = api(&proc.base, reqwest::Method::GET, "/api/v1/deliveries?limit=1", None).await;
    assert!(!stepped["items"].as_array().unwrap().is_empty());
    for n in 1..=3 {
        let got = order(&proc.base, &format!("after-{n}")).await;
        assert_eq!(got["duplicate"], false, "{got}");
    }
    assert_eq!(listed(&proc.base).await, ["after-3", "after-2", "after-1", "before-2", "before-1"]);
    // The retry scheduled before the step comes in seconds, not in an hour.
    let deadline = Instant::now() + GENEROUS;
    while dest.received().iter().filter(|r| String::from_utf8_lossy(&r.body).contains("before-1")).count() < 2 {
        assert!(Instant::now() < deadline, "the retry scheduled before the clock stepped back never came");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _) = proc.terminate();
    assert!(status.success());

    // Started again with the wall clock still an hour behind: ids still come after the stored ones.
    let proc = start(&data, &offset);
    order(&proc.base, "restarted").await;
    assert_eq!(listed(&proc.base).await[0], "restarted");
    let (status, _) = proc.terminate();
    assert!(status.success());
}
