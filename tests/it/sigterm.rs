//! SIGTERM to the real binary in the middle of long work: a bulk replay and a handshake whose provider does
//! not answer. Each goes on after the restart from where it was, instead of being lost or started over.

use std::time::{Duration, Instant};

use hookplane::demo::factories::shopify_request;
use hookplane::demo::providers::{MockProviders, Scripted};
use serde_json::{Value, json};

use crate::process::Proc;
use crate::queue::Destination;
use crate::support::{ADMIN_TOKEN, SHOPIFY_SECRET, now, signed};

const SHOP: &str = "sigterm.myshopify.com";
/// Bounds a wait that only a broken build would exceed.
const GENEROUS: Duration = Duration::from_secs(60);

async fn call(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, url).bearer_auth(ADMIN_TOKEN).timeout(GENEROUS);
    if let Some(body) = body {
        req = req.header("content-type", "application/json").body(body.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, serde_json::from_str(&resp.text().await.unwrap()).unwrap_or_default())
}

/// Asks `path` until `done` holds of its answer; returns that answer.
async fn until(base: &str, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + GENEROUS;
    loop {
        let (status, got) = call(reqwest::Method::GET, format!("{base}{path}"), None).await;
        assert_eq!(status, 200, "{path}: {got}");
        if done(&got) {
            return got;
        }
        assert!(Instant::now() < deadline, "{path} never got there: {got}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends SIGTERM and waits for a clean exit.
fn stop(proc: Proc) {
    let (status, _) = proc.terminate();
    assert!(status.success(), "SIGTERM is a clean stop: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_replay_cut_by_sigterm_goes_on_after_the_restart_from_where_it_was() {
    let dest = Destination::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let env = [("HOOKPLANE_DELIVERY__POLL_INTERVAL_MS", "20")];
    let proc = Proc::start_env(dir.path(), None, &env);
    let made = json!({ "source": "shopify", "topic": "orders/updated", "account": SHOP, "destination_url": dest.url });
    let (status, made) = call(reqwest::Method::POST, format!("{}/api/v1/subscriptions", proc.base), Some(made)).await;
    assert_eq!(status, 201, "{made}");
    let sub = made["subscription"]["id"].as_str().unwrap().to_owned();
    for n in 0..12 {
        let body = format!(r#"{{"id":{n}}}"#).into_bytes();
        let req = shopify_request("orders/updated", SHOP, body, SHOPIFY_SECRET.as_bytes(), &format!("bulk-{n}"), now());
        assert_eq!(signed(&reqwest::Client::new(), &proc.base, &req).send().await.unwrap().status(), 200);
    }
    dest.wait_for(12).await;

    let bulk = json!({ "subscription": sub, "rate_per_second": 2 });
    let (status, started) = call(reqwest::Method::POST, format!("{}/api/v1/replays", proc.base), Some(bulk)).await;
    assert_eq!(status, 202, "{started}");
    let path = format!("/api/v1/replays/{}", started["id"].as_str().unwrap());
    let midway = until(&proc.base, &path, |b| b["replayed"].as_u64().unwrap_or(0) >= 2).await;
    assert_eq!(midway["status"], "running", "{midway}");
    assert!(midway["replayed"].as_u64().unwrap() < 12, "{midway}");
    stop(proc);

    let proc = Proc::start_env(dir.path(), None, &env);
    let done = until(&proc.base, &path, |b| b["status"] != "running").await;
    assert_eq!(done["status"], "done", "{done}");
    // Started over, the first ones would be refused by replay's five-minute limit and counted as skipped.
    assert_eq!((done["replayed"].as_u64(), done["skipped"].as_u64()), (Some(12), Some(0)), "{done}");
    let received = dest.wait_for(24).await;
    let mut bodies: Vec<Vec<u8>> = received.iter().map(|r| r.body.clone()).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), 12);
    assert!(received.len() <= 24 + 1, "at most the one cut short by the stop again: {}", received.len());
    stop(proc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_cut_by_sigterm_is_made_after_the_restart() {
    let mock = MockProviders::bind().unwrap();
    mock.serve().unwrap();
    let admin = mock.shopify_admin_url();
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("HOOKPLANE_PUBLIC_URL", "https://hooks.example.com"),
        ("HOOKPLANE_HANDSHAKE__SHOPIFY_ADMIN_URL", admin.as_str()),
        // The watchdog looks at start (and when poked) only.
        ("HOOKPLANE_HANDSHAKE__POLL_INTERVAL_MS", "3600000"),
        ("SHOPIFY_ADMIN_ACCESS_TOKEN", "shpat_sigterm_test_token"),
        ("HOOKPLANE_SHUTDOWN_GRACE_SECONDS", "1"),
    ];
    let proc = Proc::start_env(dir.path(), None, &env);
    let made = json!({ "source": "shopify", "topic": "orders/create", "account": SHOP });
    let (status, made) = call(reqwest::Method::POST, format!("{}/api/v1/subscriptions", proc.base), Some(made)).await;
    assert_eq!(status, 201, "{made}");
    let sub = made["subscription"]["id"].as_str().unwrap().to_owned();
    // A first handshake registers it; the next scheduled one is an hour away.
    let handshake = format!("{}/api/v1/subscriptions/{sub}/handshake", proc.base);
    let (status, run) = call(reqwest::Method::POST, handshake.clone(), Some(json!({}))).await;
    assert_eq!((status, run["outcome"].as_str()), (200, Some("repaired")), "{run}");
    assert_eq!(mock.webhooks(SHOP).len(), 1);

    // Shopify loses the registration; an operator asks for a handshake, and Shopify does not answer.
    mock.remove_webhook(SHOP, &mock.webhooks(SHOP)[0].topic);
    mock.script([Scripted::Hang]);
    let asked = mock.requests().len();
    let operator = tokio::spawn(async move {
        let _ = reqwest::Client::new()
            .post(handshake)
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await;
    });
    let deadline = Instant::now() + GENEROUS;
    while mock.requests().len() == asked {
        assert!(Instant::now() < deadline, "the operator's handshake never reached Shopify");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop(proc);
    operator.abort();
    assert!(mock.webhooks(SHOP).is_empty());

    let proc = Proc::start_env(dir.path(), None, &env);
    let deadline = Instant::now() + GENEROUS;
    while mock.webhooks(SHOP).len() != 1 {
        assert!(Instant::now() < deadline, "the handshake cut by the stop was never made after the restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop(proc);
}
