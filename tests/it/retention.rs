//! Retention against the real store, on the manual clock: the sweep at start deletes expired deliveries
//! whole (row, payload, attempts, replays, index entries, search hits) and nothing younger; a deleted
//! delivery's dedupe key outlives it while its provider may still retry, and goes after that.

use hookplane::demo::factories::standard_request;
use hookplane::domain::{Clock as _, Timestamp};
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};
use serde_json::{Value, json};

use crate::queue::{Destination, deliver, forwarding, s_post, until};
use crate::support::*;

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn start_at(at: Timestamp, dir: Option<tempfile::TempDir>, extra: &[(&str, &str)]) -> TestServer {
    let mut vars = vec![("HOOKPLANE_DELIVERY__POLL_INTERVAL_MS", "20")];
    vars.extend_from_slice(extra);
    TestServer::start_with(Options { env: env(&vars), clock_at: Some(at), dir, ..Options::default() }).await
}

/// Waits until the delivery is gone (the sweep at start runs beside the server).
async fn gone(s: &TestServer, id: &str) {
    for _ in 0..400 {
        if s.get(&format!("/api/v1/deliveries/{id}")).await.0 == 404 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("{id} was never deleted");
}

fn count(db: &redb::Database, name: &str) -> u64 {
    let tx = db.begin_read().unwrap();
    let any = redb::TableDefinition::<u128, &[u8]>::new(name);
    tx.open_untyped_table(any).unwrap().len().unwrap()
}

#[tokio::test]
async fn expired_deliveries_are_deleted_whole_and_younger_ones_kept() {
    let dest = Destination::start(&[]).await;
    let t0 = now().plus_millis(-10 * DAY);
    let s = start_at(t0, None, &[]).await;
    forwarding(&s, "orders/paid", &dest.url).await;
    let old: Vec<String> = {
        let mut ids = Vec::new();
        for n in 1..=3 {
            ids.push(deliver(&s, "orders/paid", n).await);
        }
        ids
    };
    for id in &old {
        until(&s, id, "status", json!("succeeded")).await;
    }
    let (st, _, _) = s_post(&s, &format!("/api/v1/deliveries/{}/replay", old[0])).await;
    assert_eq!(st, 202);
    until(&s, &old[0], "attempt_count", json!(2)).await;
    searched(&s, "q=order%201", 1).await;
    s.clock.advance_millis(5 * DAY);
    let young = deliver(&s, "orders/paid", 4).await;
    until(&s, &young, "status", json!("succeeded")).await;
    let dir = s.stop().await;

    // Seven days and an hour after the first three arrived: they expired, the fourth has two days left.
    let s = start_at(t0.plus_millis(7 * DAY + HOUR), Some(dir), &[]).await;
    for id in &old {
        gone(&s, id).await;
        let (st, _) = s.get(&format!("/api/v1/deliveries/{id}/attempts")).await;
        assert_eq!(st, 404, "its attempts went with it");
    }
    let (_, d) = s.get(&format!("/api/v1/deliveries/{young}")).await;
    assert_eq!(d["status"], "succeeded", "{d}");
    let listed: Vec<Value> = s.all_deliveries("").await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let (_, failed) = s.get("/api/v1/deliveries?status=succeeded").await;
    assert_eq!(failed["items"].as_array().unwrap().len(), 1, "the status index too: {failed}");
    searched(&s, "q=order%204", 1).await;
    searched(&s, "q=order%201", 0).await;
    let dir = s.stop().await;

    let store = hookplane::storage::Store::open(&dir.path().join("data")).unwrap();
    let db = store.db().unwrap();
    assert_eq!(count(&db, "deliveries_v1"), 1);
    assert_eq!(count(&db, "replays_v1"), 0, "the replay of an expired delivery is gone");
    let tx = db.begin_read().unwrap();
    let attempts = tx.open_table(hookplane::storage::tables::ATTEMPTS.def()).unwrap();
    let left: Vec<u128> = attempts.iter().unwrap().map(|r| r.unwrap().0.value().0).collect();
    assert_eq!(left, vec![young.parse::<hookplane::domain::DeliveryId>().unwrap().as_u128()]);
    let stats = tx.open_table(hookplane::storage::tables::STATS.def()).unwrap();
    assert!(stats.len().unwrap() > 0, "rollup counts stay");
    drop((tx, db));

    // Held by this process, the store cannot be compacted; once let go, it can.
    let data = dir.path().join("data");
    let compact = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_hookplane"))
            .args(["compact", "--data-dir", data.to_str().unwrap()])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .output()
            .unwrap()
    };
    let refused = compact();
    assert!(
        !refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("in use by a running Hookplane")
    );
    store.close();
    let done = compact();
    let said = String::from_utf8_lossy(&done.stdout);
    assert!(done.status.success() && said.contains("compacted") && said.contains("MiB given back"), "{said}");
}

/// The same Standard Webhooks message, signed at `at`.
async fn send(s: &TestServer, at: Timestamp) -> (reqwest::StatusCode, Value) {
    let req = standard_request("billing", SECRET, "msg_retried_late", at, br#"{"invoice":"in_1"}"#.to_vec());
    s.send_json(&req).await
}

#[tokio::test]
async fn a_deleted_deliverys_dedupe_key_outlives_it_while_its_sender_may_retry() {
    let t0 = now().plus_millis(-5 * DAY);
    let one_day = [("HOOKPLANE_RETENTION__DAYS", "1")];
    let s = start_at(t0, None, &one_day).await;
    let (st, made) = s
        .post(
            "/api/v1/subscriptions",
            json!({ "source": "standard", "topic": "invoice.paid", "account": "billing", "name": "billing", "secret": SECRET }),
        )
        .await;
    assert_eq!(st, 201, "{made}");
    let (st, first) = send(&s, t0).await;
    assert_eq!((st.as_u16(), first["duplicate"].clone()), (200, json!(false)), "{first}");
    let id = first["delivery_id"].as_str().unwrap().to_owned();
    let dir = s.stop().await;

    // A day and an hour on, the delivery is gone, but the sender may retry for 76 hours: still a repeat.
    let at = t0.plus_millis(DAY + HOUR);
    let s = start_at(at, Some(dir), &one_day).await;
    gone(&s, &id).await;
    let (_, sub) = s.get("/api/v1/subscriptions/billing").await;
    let last = Timestamp::parse_rfc3339(sub["health"]["last_delivery_at"].as_str().unwrap()).unwrap();
    assert!(last >= t0 && last < t0.plus_millis(HOUR), "the rollups still say when it last received: {sub}");
    let (st, again) = send(&s, at).await;
    assert_eq!((st.as_u16(), again["duplicate"].clone()), (200, json!(true)), "{again}");
    assert_eq!(s.all_deliveries("").await.len(), 0, "nothing stored twice");
    let dir = s.stop().await;

    // Past the sender's retry window, the key goes too: the same id is new again.
    let at = t0.plus_millis(77 * HOUR);
    let s = start_at(at, Some(dir), &one_day).await;
    let mut fresh = json!(null);
    for _ in 0..200 {
        let (st, answer) = send(&s, at).await;
        assert_eq!(st, 200, "{answer}");
        if answer["duplicate"] == json!(false) {
            fresh = answer;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(fresh["duplicate"], json!(false), "the key was dropped");
    assert_ne!(fresh["delivery_id"], json!(id));
}

#[tokio::test]
async fn retention_outside_its_bounds_is_refused_at_start() {
    for bad in ["0", "31"] {
        let vars = env(&[("HOOKPLANE_RETENTION__DAYS", bad)]);
        let err = hookplane::config::Settings::load(&hookplane::config::Flags::default(), &vars).unwrap_err();
        assert!(err.to_string().contains("retention.days: retention must be between 1 and 30 days"), "{err}");
    }
}

#[tokio::test]
async fn a_subscription_keeps_its_own_retention_audited_and_checked() {
    let t0 = now().plus_millis(-10 * DAY);
    let s = start_at(t0, None, &[]).await;
    let mut ids = Vec::new();
    for topic in ["orders/create", "orders/paid"] {
        let (st, made) = s
            .post(
                "/api/v1/subscriptions",
                json!({ "source": "shopify", "topic": topic, "account": "keep.myshopify.com" }),
            )
            .await;
        assert_eq!(st, 201, "{made}");
        ids.push(made["subscription"]["id"].as_str().unwrap().to_owned());
    }
    let (st, kept) = s.put(&format!("/api/v1/subscriptions/{}/retention", ids[1]), json!({ "days": 30 })).await;
    assert_eq!((st.as_u16(), kept["retention_days"].clone()), (200, json!(30)), "{kept}");
    for bad in [json!({ "days": 0 }), json!({ "days": 31 }), json!({})] {
        let (st, refused) = s.put(&format!("/api/v1/subscriptions/{}/retention", ids[0]), bad).await;
        assert_problem(&(st, refused.clone()), 400, "invalid_request");
        assert!(refused["detail"].as_str().unwrap().contains("1 and 30"), "{refused}");
    }
    let (_, audit) = s.get("/api/v1/audit?action=subscription_updated").await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "only the change that was made: {audit}");
    assert_eq!(
        audit["items"][0]["changes"][0],
        json!({ "field": "retention_days", "before": "default", "after": "30" })
    );
    let mut delivered = Vec::new();
    for (n, topic) in ["orders/create", "orders/paid"].into_iter().enumerate() {
        let req = hookplane::demo::factories::shopify_request(
            topic,
            "keep.myshopify.com",
            b"{}".to_vec(),
            SHOPIFY_SECRET.as_bytes(),
            &format!("keep-{n}"),
            s.clock.now(),
        );
        let (st, got) = s.send_json(&req).await;
        assert_eq!(st, 200, "{got}");
        delivered.push(got["delivery_id"].as_str().unwrap().to_owned());
    }
    let dir = s.stop().await;

    let s = start_at(t0.plus_millis(8 * DAY), Some(dir), &[]).await;
    gone(&s, &delivered[0]).await;
    let (st, _) = s.get(&format!("/api/v1/deliveries/{}", delivered[1])).await;
    assert_eq!(st, 200, "kept for its own 30 days");
}

#[tokio::test]
async fn the_retention_set_in_the_dashboard_is_the_one_the_sweep_applies() {
    let t0 = now().plus_millis(-10 * DAY);
    let s = start_at(t0, None, &[]).await;
    let (st, set) = s.put("/api/v1/settings/retention", json!({ "days": 30, "confirm": true })).await;
    assert_eq!(st, 200, "{set}");
    let kept = deliver(&s, "orders/create", 1).await;
    // A marker the same sweep deletes after the first subscription's turn: its subscription keeps a day.
    let marker = deliver(&s, "orders/paid", 2).await;
    let (_, d) = s.get(&format!("/api/v1/deliveries/{marker}")).await;
    let sub = d["subscription_id"].as_str().unwrap().to_owned();
    let (st, _) = s.put(&format!("/api/v1/subscriptions/{sub}/retention"), json!({ "days": 1 })).await;
    assert_eq!(st, 200);
    let dir = s.stop().await;
    let s = start_at(t0.plus_millis(8 * DAY), Some(dir), &[]).await;
    gone(&s, &marker).await;
    let (st, _) = s.get(&format!("/api/v1/deliveries/{kept}")).await;
    assert_eq!(st, 200, "kept: 30 days, not the default 7");
}

#[tokio::test]
async fn a_delivery_whose_replay_waits_on_a_paused_destination_is_kept_until_it_is_sent() {
    let dest = Destination::start(&[]).await;
    let t0 = now().plus_millis(-10 * DAY);
    let s = start_at(t0, None, &[]).await;
    let sub = forwarding(&s, "orders/paid", &dest.url).await;
    let waiting = deliver(&s, "orders/paid", 1).await;
    until(&s, &waiting, "status", json!("succeeded")).await;
    let (st, _) = s.post(&format!("/api/v1/subscriptions/{sub}/pause"), json!({})).await;
    assert_eq!(st, 200);
    let (st, held, _) = s_post(&s, &format!("/api/v1/deliveries/{waiting}/replay")).await;
    assert_eq!((st.as_u16(), held["status"].clone()), (202, json!("held")), "{held}");
    // A marker in a subscription swept after this one.
    let marker = deliver(&s, "orders/create", 2).await;
    let dir = s.stop().await;

    let s = start_at(t0.plus_millis(8 * DAY), Some(dir), &[]).await;
    gone(&s, &marker).await;
    let (st, d) = s.get(&format!("/api/v1/deliveries/{waiting}")).await;
    assert_eq!(st, 200, "kept while its replay waits: {d}");
    let (st, _) = s.post(&format!("/api/v1/subscriptions/{sub}/resume"), json!({})).await;
    assert_eq!(st, 200);
    until(&s, &waiting, "attempt_count", json!(2)).await;
}

/// Under a constant load with a one-day retention, the store stops growing once a day's deliveries are
/// deleted as the next day's arrive: freed pages are reused. Each simulated day is one start (whose sweep
/// deletes the day before yesterday's) and a day's deliveries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_constant_load_the_store_stops_growing_once_retention_deletes_as_fast() {
    const PER_DAY: u64 = 800;
    let t0 = now().plus_millis(-20 * DAY);
    let one_day = [("HOOKPLANE_RETENTION__DAYS", "1")];
    let mut factory = hookplane::demo::factories::Factory::new(7);
    let mut dir = None;
    let mut sizes = Vec::new();
    let mut newest_of_day: Vec<String> = Vec::new();
    for day in 0..14 {
        let at = t0.plus_millis(day * DAY);
        let s = start_at(at, dir.take(), &one_day).await;
        // The sweep at start deletes the day before yesterday's, oldest first: once its newest is gone, all
        // is, and the day's deliveries take the pages it left rather than racing it.
        if day >= 2 {
            gone(&s, &newest_of_day[day as usize - 2]).await;
        }
        let requests: Vec<_> = (0..PER_DAY)
            .map(|n| {
                let number = day as u64 * PER_DAY + n;
                let body = factory.shopify_order(number, at);
                hookplane::demo::factories::shopify_request(
                    "orders/create",
                    "steady.myshopify.com",
                    body,
                    SHOPIFY_SECRET.as_bytes(),
                    &format!("steady-{number}"),
                    at,
                )
            })
            .collect();
        let mut newest = String::new();
        for chunk in requests.chunks(50) {
            let sent = futures_util::future::join_all(chunk.iter().map(|r| s.send_json(r))).await;
            for (st, got) in sent {
                assert_eq!(st, 200, "{got}");
                newest = newest.max(got["delivery_id"].as_str().unwrap().to_owned());
            }
        }
        newest_of_day.push(newest);
        let stopped = s.stop().await;
        sizes.push(std::fs::metadata(stopped.path().join("data/hookplane.redb")).unwrap().len());
        dir = Some(stopped);
    }
    // Two days are kept at most (yesterday's until today's sweep, and today's). redb grows its file by
    // doubling regions, and pages freed while a reader (the indexer catching up) holds an older snapshot
    // wait for it, so the plateau lands between two and eight days' worth from run to run. Without deletion
    // the fourteenth day holds fourteen days' worth, and the file has doubled past that.
    let one_day = sizes[0];
    eprintln!("store size by day, in bytes: {sizes:?}");
    assert!(sizes[13] <= 10 * one_day, "the file keeps growing under a constant load: {sizes:?}");
}
