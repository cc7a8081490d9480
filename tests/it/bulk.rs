//! Bulk replay: a dry run counts every match (not one page), a run replays each once at its own rate and
//! reports progress, a cancel stops it, and a restart goes on from where it was.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::queue::{Destination, deliver, forwarding, server, until};
use crate::support::*;

async fn bulk_until(s: &TestServer, id: &str, want: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        let (st, b) = s.get(&format!("/api/v1/replays/{id}")).await;
        assert_eq!(st, 200, "{b}");
        if b["status"] == want {
            return b;
        }
        last = b;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("bulk replay {id} never became {want}: {last}");
}

/// `n` deliveries for one forwarding subscription, each delivered once; returns the subscription's id.
async fn delivered(s: &TestServer, dest: &Destination, topic: &str, n: u64) -> (String, Vec<String>) {
    let sub = forwarding(s, topic, &dest.url).await;
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(deliver(s, topic, i).await);
    }
    for id in &ids {
        until(s, id, "status", json!("succeeded")).await;
    }
    (sub, ids)
}

#[tokio::test]
async fn a_bulk_replay_counts_then_replays_every_match_once_and_can_be_cancelled() {
    let dest = Destination::start(&[]).await;
    // Pages of the deliveries list hold at most 500: 520 makes the count cross a page.
    let s = server("60", &[]).await;
    let (sub, oldest) = delivered(&s, &dest, "orders/create", 520).await;
    let (other, _) = delivered(&s, &dest, "orders/paid", 11).await;
    assert_eq!(dest.received().len(), 531);

    let (st, body) = s.post("/api/v1/replays", json!({ "subscription": sub, "dry_run": true })).await;
    assert_eq!((st, body["matched"].as_u64()), (StatusCode::OK, Some(520)), "{body}");
    for (bad, code, status) in [
        (json!({}), "invalid_request", 400),
        (json!({ "subscription": sub, "rate_per_second": 0 }), "invalid_request", 400),
        (json!({ "subscription": sub, "rate_per_second": 201 }), "invalid_request", 400),
        (json!({ "subscription": sub, "from": "yesterday" }), "invalid_request", 400),
        (json!({ "subscription": sub, "status": "failed" }), "not_replayable", 409),
    ] {
        let got = s.post("/api/v1/replays", bad.clone()).await;
        assert_problem(&got, status, code);
    }
    let viewer = {
        let (_, t) = s.post("/api/v1/tokens", json!({ "name": "v", "role": "viewer" })).await;
        t["secret"].as_str().unwrap().to_owned()
    };
    let refused = s.client.post(s.url("/api/v1/replays")).bearer_auth(&viewer).body("{}").send().await.unwrap();
    assert_eq!(refused.status(), 403);

    // The eleven of the other subscription, quickly.
    let (st, started) = s.post("/api/v1/replays", json!({ "subscription": other, "rate_per_second": 200 })).await;
    assert_eq!(st, 202, "{started}");
    assert_eq!((started["status"].as_str(), started["matched"].as_u64()), (Some("running"), Some(11)));
    assert!(started["filter"]["to"].is_string(), "fixed at the start: {started}");
    let id = started["id"].as_str().unwrap();
    let done = bulk_until(&s, id, "done").await;
    assert_eq!((done["replayed"].as_u64(), done["skipped"].as_u64()), (Some(11), Some(0)), "{done}");
    dest.wait_for(542).await;
    // A bulk replay is paced by its rate; it does not use up its admin's ten replays an hour.
    let (st, single) = s.post(&format!("/api/v1/deliveries/{}/replay", oldest[0]), json!({})).await;
    assert_eq!(st, 202, "{single}");
    // Again within 5 minutes: each is skipped, none sent twice.
    let (_, again) = s.post("/api/v1/replays", json!({ "subscription": other, "rate_per_second": 200 })).await;
    let again = bulk_until(&s, again["id"].as_str().unwrap(), "done").await;
    assert_eq!((again["replayed"].as_u64(), again["skipped"].as_u64()), (Some(0), Some(11)), "{again}");

    // The 520 at one per second: cancelled after a few; what was replayed stays, nothing more follows.
    let (_, slow) = s.post("/api/v1/replays", json!({ "subscription": sub, "rate_per_second": 1 })).await;
    let slow_id = slow["id"].as_str().unwrap().to_owned();
    dest.wait_for(546).await;
    let (st, cancelled) = s.post(&format!("/api/v1/replays/{slow_id}/cancel"), json!({})).await;
    assert_eq!((st, cancelled["status"].as_str()), (StatusCode::OK, Some("cancelled")), "{cancelled}");
    let got = s.post(&format!("/api/v1/replays/{slow_id}/cancel"), json!({})).await;
    assert_problem(&got, 409, "conflict");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = dest.received().len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(dest.received().len(), after, "nothing more after the cancel");
    let (_, b) = s.get(&format!("/api/v1/replays/{slow_id}")).await;
    assert_eq!(b["status"], "cancelled");
    assert!(b["replayed"].as_u64().unwrap() >= 2 && b["replayed"].as_u64().unwrap() < 10, "{b}");

    let (_, list) = s.get("/api/v1/replays").await;
    assert_eq!(list.as_array().unwrap().len(), 3);
    let (_, audit) = s.get(&format!("/api/v1/audit?action=bulk_replay_cancelled&target_id={slow_id}")).await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");
    let (_, audit) = s.get("/api/v1/audit?action=delivery_replayed&limit=100").await;
    let bulk_ids = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["changes"].as_array().unwrap().iter().any(|c| c["field"] == "bulk_replay_id" && c["after"] == id))
        .count();
    assert_eq!(bulk_ids, 11, "each replay of the bulk is audited with its id");
    let (st, missing) = s.get("/api/v1/replays/blk_01J0000000000000000000000A").await;
    assert_eq!((st, missing["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
}

#[tokio::test]
async fn a_bulk_replay_goes_on_after_a_restart_from_where_it_was() {
    let dest = Destination::start(&[]).await;
    let s = server("60", &[]).await;
    let (sub, _) = delivered(&s, &dest, "orders/updated", 12).await;
    let (_, started) = s.post("/api/v1/replays", json!({ "subscription": sub, "rate_per_second": 4 })).await;
    let id = started["id"].as_str().unwrap().to_owned();
    dest.wait_for(14).await;
    let dir = s.stop().await;
    let sent_before = dest.received().len();

    let s = TestServer::start_with(Options {
        env: env(&[("HOOKPLANE_DELIVERY__POLL_INTERVAL_MS", "20")]),
        dir: Some(dir),
        ..Options::default()
    })
    .await;
    let done = bulk_until(&s, &id, "done").await;
    assert_eq!(done["matched"], 12);
    assert_eq!(
        done["replayed"].as_u64().unwrap() + done["skipped"].as_u64().unwrap(),
        12,
        "each delivery handled once: {done}"
    );
    dest.wait_for(24).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut bodies: Vec<Vec<u8>> = dest.received().into_iter().map(|r| r.body).collect();
    bodies.sort();
    bodies.dedup_by(|a, b| a == b);
    assert_eq!(bodies.len(), 12);
    assert!(dest.received().len() <= 24 + 1, "at most the one cut short by the stop again: {sent_before}");
}
