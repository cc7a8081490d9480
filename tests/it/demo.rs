//! The demo scenarios seed what they promise, through the real ingest path, and the server starts on them.

use hookplane::demo::{self, Scenario};
use reqwest::StatusCode;

use crate::support::*;

/// A seeded server whose subscriptions forward to the demo's own processing service, serving as
/// `serve --demo` runs it; keep the handle for as long as it should serve.
async fn with_processing(scenario: Scenario) -> (TestServer, tokio::task::JoinHandle<std::io::Result<()>>) {
    let mock = demo::processing::Processing::bind(scenario).unwrap();
    let url = |name: &str| mock.url(name);
    let s = seeded_forwarding_to(scenario, &url, Some(mock.destinations())).await;
    (s, mock.serve().unwrap())
}

fn count(items: &[serde_json::Value], field: &str, value: &str) -> usize {
    items.iter().filter(|d| d[field] == value).count()
}

#[tokio::test]
async fn base_is_a_healthy_day_from_every_source() {
    let s = seeded(Scenario::Base).await;
    let all = s.all_deliveries("").await;
    assert!(all.len() > 250, "{} deliveries", all.len());
    for source in ["shopify", "zoho", "standard"] {
        assert!(count(&all, "source", source) > 10, "{source}");
    }
    for topic in ["orders/create", "customers/redact", "shop/redact", "customers/data_request", "Leads.all", "invoices"]
    {
        assert!(count(&all, "topic", topic) > 0, "{topic}");
    }
    assert_eq!(count(&all, "status", "failed"), 0);
    assert!(all.iter().all(|d| d["status"] == "succeeded" || d["status"] == "stored"));
    assert!(all.iter().any(|d| d["attempt_count"] == 2), "some succeeded only after a retry");
    // Each forwarded delivery shows its attempts, as the worker would have filed them.
    let retried = all.iter().find(|d| d["attempt_count"] == 2).unwrap();
    let (_, list) = s.get(&format!("/api/v1/deliveries/{}/attempts", retried["id"].as_str().unwrap())).await;
    let next: Vec<&str> = list.as_array().unwrap().iter().map(|a| a["next"].as_str().unwrap()).collect();
    assert_eq!(next, ["retry", "delivered"], "{list}");
    assert_eq!((list[0]["error_class"].as_str(), list[1]["response_code"].as_u64()), (Some("http"), Some(200)));
    let (_, subs) = s.get("/api/v1/subscriptions").await;
    assert_eq!(subs.as_array().unwrap().len(), 10);
    assert!(subs.as_array().unwrap().iter().all(|s| s["status"] == "active"));

    // A healthy day: no banners, every ended delivery succeeded, forwarded ones have latency figures.
    let (_, stats) = s.get("/api/v1/stats").await;
    assert_eq!(stats["banners"], serde_json::json!([]));
    assert_eq!(stats["kpis"]["success_rate_24h"], 1.0);
    assert_eq!(stats["kpis"]["failing_topics"], 0);
    // The day window is the current hour and the 23 before it: exactly the deliveries received since then.
    let since = hookplane::domain::Timestamp::from_millis(((now().minute() / 60 - 23) * 3_600_000) as i64);
    let in_window = all.iter().filter(|d| d["received_at"].as_str().unwrap() >= since.to_rfc3339().as_str()).count();
    assert_eq!(stats["kpis"]["deliveries_24h"].as_u64().unwrap(), in_window as u64);
    let orders = subs.as_array().unwrap().iter().find(|s| s["name"] == "shop-orders").unwrap();
    assert!(
        orders["health"]["p95_latency_ms_24h"].as_u64().unwrap()
            >= orders["health"]["avg_latency_ms_24h"].as_u64().unwrap()
    );
}

#[tokio::test]
async fn failing_has_a_failing_destination() {
    let s = seeded(Scenario::Failing).await;
    let failed = s.all_deliveries("status=failed").await;
    assert!(failed.len() >= 5, "{} failed", failed.len());
    assert!(failed.iter().all(|d| d["topic"] == "orders/create" && d["error_message"].is_string()));
    // Served by the status index: exactly the failed deliveries a full listing shows, and by source.
    let all = s.all_deliveries("").await;
    assert_eq!(failed.len(), count(&all, "status", "failed"));
    assert_eq!(s.all_deliveries("status=retrying&source=shopify").await.len(), count(&all, "status", "retrying"));
    assert!(s.all_deliveries("status=failed&source=zoho").await.is_empty());
    let (_, list) = s.get(&format!("/api/v1/deliveries/{}/attempts", failed[0]["id"].as_str().unwrap())).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 8, "it ran out of attempts: {list:?}");
    assert_eq!(list[7]["next"], "gave_up");
    assert!(
        list.iter().all(|a| a["started_at"].as_str().unwrap() <= now().to_rfc3339().as_str()),
        "none in the future"
    );
    // The outage going on: its deliveries are still retrying, each attempt when the retry schedule says, and
    // their jobs wait for the next one.
    let retrying = s.all_deliveries("status=retrying").await;
    assert!(retrying.len() >= 5, "{} retrying", retrying.len());
    assert!(retrying.iter().all(|d| d["topic"] == "orders/create"));
    let (_, list) = s.get(&format!("/api/v1/deliveries/{}/attempts", retrying[0]["id"].as_str().unwrap())).await;
    let list = list.as_array().unwrap();
    assert!(!list.is_empty() && list.len() < 8 && list.iter().all(|a| a["next"] == "retry"), "{list:?}");
    let (_, orders) = s.get("/api/v1/subscriptions/shop-orders").await;
    assert_eq!(orders["status"], "failing");
    assert!(orders["consecutive_failures"].as_u64().unwrap() >= 5);

    // The failing destination raises its banner for the orders subscription only, and counts as a failing
    // topic. Its deliveries of the last hour are all retrying, so none has ended to lower its success rate.
    let (_, stats) = s.get("/api/v1/stats").await;
    let banners = stats["banners"].as_array().unwrap();
    let codes: Vec<&str> = banners.iter().map(|b| b["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["failure_streak"], "{banners:?}");
    assert!(banners.iter().all(|b| b["subscription_name"] == "shop-orders"));
    assert_eq!(stats["kpis"]["failing_topics"], 1);
    assert!(stats["kpis"]["success_rate_24h"].as_f64().unwrap() < 1.0);

    // Each retrying delivery keeps one job, due after its last attempt when the schedule says.
    let attempts: std::collections::HashMap<String, u64> =
        retrying.iter().map(|d| (d["id"].as_str().unwrap().to_owned(), d["attempt_count"].as_u64().unwrap())).collect();
    let dir = s.stop().await;
    let store = hookplane::storage::Store::open(&dir.path().join("data")).unwrap();
    let db = store.db().unwrap();
    let tx = redb::ReadableDatabase::begin_read(&*db).unwrap();
    let table = tx.open_table(hookplane::storage::tables::JOBS.def()).unwrap();
    let mut jobs = Vec::new();
    for row in redb::ReadableTable::iter(&table).unwrap() {
        jobs.push(hookplane::storage::tables::JOBS.decode(row.unwrap().1.value()).unwrap());
    }
    assert_eq!(jobs.len(), retrying.len(), "one job for each retrying delivery, and no other");
    let at = now();
    for job in &jobs {
        // A retry that came due while the test ran has counted one more.
        let listed = attempts.get(&job.delivery_id.to_string()).copied().unwrap_or(u64::MAX);
        assert!((listed..8).contains(&u64::from(job.attempts)), "{listed} attempts listed: {job:?}");
        assert!(job.run_at.millis() > at.millis() - 60_000, "due after its last attempt: {job:?}");
    }
    drop((table, tx, db));
    store.close();
}

#[tokio::test]
async fn empty_has_subscriptions_and_no_deliveries() {
    let s = seeded(Scenario::Empty).await;
    assert!(s.all_deliveries("").await.is_empty());
    let (_, subs) = s.get("/api/v1/subscriptions").await;
    assert_eq!(subs.as_array().unwrap().len(), 10);
    let (_, stats) = s.get("/api/v1/stats").await;
    assert_eq!(stats["kpis"]["deliveries_24h"], 0);
    assert_eq!(stats["kpis"]["success_rate_24h"], serde_json::Value::Null, "no rate without deliveries");
    // The demo's printed credentials work: a Standard Webhooks message signed with the demo secret is stored.
    let req = hookplane::demo::factories::standard_request(
        "billing-events",
        demo::STANDARD_SECRET,
        "msg_1",
        now(),
        b"{}".to_vec(),
    );
    assert_eq!(s.send_json(&req).await.0, 200);
}

/// With its processing service (as `serve --demo` runs it), the demo behaves like production: in the
/// failing scenario a live order is refused with 503 and retried, while the other destinations take
/// theirs.
#[tokio::test]
async fn the_demo_forwards_to_its_own_processing_service_which_answers_as_the_scenario_says() {
    let (s, _serving) = with_processing(Scenario::Failing).await;
    let now = hookplane::domain::SystemClock;
    let at = hookplane::domain::Clock::now(&now);
    let order = demo::factories::shopify_request(
        "orders/create",
        demo::SHOP,
        br#"{"id":1}"#.to_vec(),
        SHOPIFY_SECRET.as_bytes(),
        "live-order",
        at,
    );
    let paid =
        demo::factories::standard_request("billing-events", demo::STANDARD_SECRET, "msg_live", at, b"{}".to_vec());
    let (mut failed_at, mut paid_at) = (None, None);
    let (st, sent) = s.send_json(&order).await;
    assert_eq!(st, 200, "{sent}");
    let order_id = sent["delivery_id"].as_str().unwrap().to_owned();
    let (st, sent) = s.send_json(&paid).await;
    assert_eq!(st, 200, "{sent}");
    let paid_id = sent["delivery_id"].as_str().unwrap().to_owned();
    for _ in 0..600 {
        let (_, o) = s.get(&format!("/api/v1/deliveries/{order_id}")).await;
        let (_, p) = s.get(&format!("/api/v1/deliveries/{paid_id}")).await;
        (failed_at, paid_at) = (o["response_code"].as_u64(), p["response_code"].as_u64());
        if failed_at.is_some() && p["status"] == "succeeded" {
            assert_eq!(o["status"], "retrying", "{o}");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!((failed_at, paid_at), (Some(503), Some(200)));
}

/// The rate-limited scenario: the newest orders were replayed a minute ago, so replaying one again is
/// refused with the seconds left, while an older order can be replayed.
#[tokio::test]
async fn rate_limited_has_orders_at_their_replay_limit() {
    // With the demo's own processing service, as `serve --demo rate-limited` runs: the earlier replays are
    // delivered, and the orders stay succeeded.
    let (s, _serving) = with_processing(Scenario::RateLimited).await;
    let (_, orders) = s.get("/api/v1/deliveries?topic=orders/create&limit=10").await;
    let ids: Vec<&str> = orders["items"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    for id in &ids[..demo::REPLAYED_ALREADY] {
        let resp = s
            .client
            .post(s.url(&format!("/api/v1/deliveries/{id}/replay")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        let (status, problem) = json_of(resp).await;
        assert_eq!(
            (status.as_u16(), problem["code"].as_str()),
            (429, Some("replay_limited_per_delivery")),
            "{problem}"
        );
        assert!((1..=240).contains(&retry), "what is left of the five minutes since the replay a minute ago: {retry}");
    }
    let older = ids[demo::REPLAYED_ALREADY];
    let resp = s
        .client
        .post(s.url(&format!("/api/v1/deliveries/{older}/replay")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let (_, audit) = s.get("/api/v1/audit?action=delivery_replayed&performed_by=demo").await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(demo::REPLAYED_ALREADY), "{audit}");
}

/// The demo's banner flips its destinations, audited like any other change: the failing scenario's orders
/// destination made healthy, "Replay latest" replays the newest order that can be replayed (the newer ones
/// are still retrying on their own), it is delivered, and the failure clears by itself.
#[tokio::test]
async fn the_demo_banner_flips_a_destination_and_a_replay_then_clears_the_failure() {
    let (s, _serving) = with_processing(Scenario::Failing).await;
    let mut b = Browser::new(&s);
    assert_eq!(b.get(&format!("/setup?code={SETUP_CODE}")).await.status, StatusCode::SEE_OTHER);
    let page = b.get("/dashboard/webhooks").await;
    let csrf = page.csrf();
    assert!(
        page.body.contains("data-demo-healthy=") && page.body.contains("name=\"intent\" value=\"demo_destination\"")
    );
    assert!(page.body.contains("<option value=\"failing\" selected>Failing (503)</option>"), "{}", page.body);
    let flip = |mode: &'static str, destination: &'static str| {
        [
            ("intent", "demo_destination"),
            ("destination", destination),
            ("mode", mode),
            ("return_to", "/dashboard/webhooks"),
        ]
    };

    // Bad input is refused and changes nothing.
    for (form, detail) in [
        (flip("sideways", "shopify"), "`sideways` is not a way"),
        (flip("healthy", "nowhere"), "no destination `nowhere`"),
    ] {
        let mut form = form.to_vec();
        form.push(("csrf", &csrf));
        let refused = b.post("/dashboard/webhooks", &form).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
        assert!(refused.body.contains(detail), "{}", refused.body);
    }
    let (_, audit) = s.get("/api/v1/audit?action=demo_destination_changed").await;
    assert!(audit["items"].as_array().unwrap().is_empty(), "{audit}");

    let mut form = flip("healthy", "shopify").to_vec();
    form.push(("csrf", &csrf));
    let done = b.post("/dashboard/webhooks", &form).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let shown = b.get(done.location()).await;
    assert!(shown.body.contains("Demo destination changed") && shown.body.contains("Healthy (200)"), "{}", shown.body);
    // The same again changes nothing, and is not audited twice.
    assert_eq!(b.post("/dashboard/webhooks", &form).await.status, StatusCode::SEE_OTHER);
    let (_, audit) = s.get("/api/v1/audit?action=demo_destination_changed").await;
    let items = audit["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{audit}");
    assert_eq!((items[0]["target_id"].as_str(), items[0]["performed_by"].as_str()), (Some("shopify"), Some("local")));
    assert_eq!(items[0]["changes"], serde_json::json!([{ "field": "mode", "before": "failing", "after": "healthy" }]));

    let (_, orders) = s.get("/api/v1/subscriptions/shop-orders").await;
    assert_eq!(orders["status"], "failing");
    let id = orders["id"].as_str().unwrap().to_owned();
    let replayed = b
        .post_for_json("/dashboard/webhooks", &[("intent", "replay_latest"), ("subscription", &id), ("csrf", &csrf)])
        .await;
    assert_eq!(replayed.status, StatusCode::ACCEPTED, "{}", replayed.body);
    let made: serde_json::Value = serde_json::from_str(&replayed.body).unwrap();
    let delivery = made["delivery_id"].as_str().unwrap();
    let newest_retrying = s.all_deliveries("status=retrying").await;
    assert!(newest_retrying.iter().all(|d| d["id"] != delivery), "not one still retrying on its own");
    let mut cleared = serde_json::Value::Null;
    for _ in 0..200 {
        let (_, stats) = s.get("/api/v1/stats").await;
        if stats["kpis"]["failing_topics"] == 0 {
            cleared = stats;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(cleared["banners"].as_array().is_some_and(Vec::is_empty), "the failure clears: {cleared}");
    let (_, orders) = s.get("/api/v1/subscriptions/shop-orders").await;
    assert_eq!((orders["status"].as_str(), orders["consecutive_failures"].as_u64()), (Some("active"), Some(0)));
}

/// Only a demo has destinations to flip.
#[tokio::test]
async fn outside_the_demo_there_is_no_destination_to_flip() {
    let s = seeded(Scenario::Base).await;
    let mut b = Browser::new(&s);
    assert_eq!(b.get(&format!("/setup?code={SETUP_CODE}")).await.status, StatusCode::SEE_OTHER);
    let page = b.get("/dashboard/webhooks").await;
    assert!(!page.body.contains("data-demo"), "no demo banner");
    let csrf = page.csrf();
    let refused = b
        .post(
            "/dashboard/webhooks",
            &[("intent", "demo_destination"), ("destination", "shopify"), ("mode", "gone"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert!(refused.body.contains("this instance is not a demo"), "{}", refused.body);
}
