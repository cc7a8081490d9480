//! The read model: health figures against hand-computed expectations, time filters, and the dashboard
//! payload agreeing with the deliveries API.

use hookplane::demo::factories::{Factory, shopify_request};
use hookplane::domain::Timestamp;
use serde_json::{Value, json};

use crate::support::*;

const SHOP: &str = "stats-shop.myshopify.com";
const HOUR: i64 = 3_600_000;
const MINUTE: i64 = 60_000;

/// 2026-11-28T10:00:00Z: the start of an hour, so windows are easy to count by hand.
fn t0() -> Timestamp {
    Timestamp::parse_rfc3339("2026-11-28T10:00:00Z").unwrap()
}

/// Sends one order at `at` with the given webhook id and returns the response body.
async fn order_at(s: &TestServer, f: &mut Factory, at: Timestamp, webhook_id: &str) -> Value {
    s.clock.set(at);
    let req =
        shopify_request("orders/create", SHOP, f.shopify_order(3000, at), SHOPIFY_SECRET.as_bytes(), webhook_id, at);
    let (st, body) = s.send_json(&req).await;
    assert_eq!(st, 200, "{body}");
    body
}

/// One subscription with deliveries at known times:
/// 25 h before t0 (outside every window), 3 at 23 h before (the oldest hour of the day window),
/// 2 at 2 h before, 4 at 30 min before (the hour window), and a repeat 10 min before.
async fn history() -> TestServer {
    let s = TestServer::start_with(Options { clock_at: Some(t0()), ..Options::default() }).await;
    let (st, body) =
        s.post("/api/v1/subscriptions", json!({"source": "shopify", "topic": "orders/create", "account": SHOP})).await;
    assert_eq!(st, 201, "{body}");
    let mut f = Factory::new(5);
    let mut n = 0;
    for (offset, count) in [(25 * HOUR, 1), (23 * HOUR, 3), (2 * HOUR, 2), (30 * MINUTE, 4)] {
        for _ in 0..count {
            n += 1;
            order_at(&s, &mut f, t0().plus_millis(-offset), &format!("w-{n}")).await;
        }
    }
    let repeat = order_at(&s, &mut f, t0().plus_millis(-10 * MINUTE), "w-1").await;
    assert_eq!(repeat["duplicate"], true);
    s.clock.set(t0());
    s
}

#[tokio::test]
async fn health_figures_match_a_hand_count() {
    let s = history().await;
    let (st, stats) = s.get("/api/v1/stats").await;
    assert_eq!(st, 200, "{stats}");
    assert_eq!(stats["generated_at"], "2026-11-28T10:00:00.000Z");
    let subs = stats["subscriptions"].as_array().unwrap();
    assert_eq!(subs.len(), 1);
    let h = &subs[0]["health"];
    assert_eq!(h["deliveries_24h"], 9, "{h}");
    assert_eq!(h["deliveries_1h"], 4);
    assert_eq!(h["duplicates_24h"], 1);
    assert_eq!(h["success_rate_24h"], 1.0, "kept deliveries have ended well");
    assert_eq!(h["success_rate_1h"], 1.0);
    assert_eq!(h["last_delivery_at"], "2026-11-28T09:30:00.000Z");
    assert_eq!(h["avg_latency_ms_24h"], Value::Null, "nothing was forwarded");
    let hourly: Vec<u64> = h["hourly_24h"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    let mut want = vec![0u64; 24];
    (want[0], want[21], want[22]) = (3, 2, 4);
    assert_eq!(hourly, want, "oldest hour first; the last is the current hour, empty so far");
    assert_eq!(h["degraded"], json!([]));

    let k = &stats["kpis"];
    assert_eq!((k["active_subscriptions"].as_u64(), k["failing_topics"].as_u64()), (Some(1), Some(0)));
    assert_eq!((k["deliveries_24h"].as_u64(), k["success_rate_24h"].as_f64()), (Some(9), Some(1.0)));
    assert_eq!(stats["banners"], json!([]));

    // An hour later the 30-minutes-ago orders have left the hour window but not the day.
    s.clock.set(t0().plus_millis(HOUR));
    let (_, later) = s.get("/api/v1/subscriptions").await;
    let h = &later[0]["health"];
    assert_eq!((h["deliveries_1h"].as_u64(), h["deliveries_24h"].as_u64()), (Some(0), Some(6)));
    assert_eq!(h["success_rate_1h"], Value::Null, "nothing ended in the last hour");
}

#[tokio::test]
async fn time_filters_narrow_deliveries_and_bad_ones_are_refused() {
    let s = history().await;
    let q = |from: i64, to: Option<i64>| {
        let mut q = format!("from={}", t0().plus_millis(-from).to_rfc3339());
        if let Some(to) = to {
            q.push_str(&format!("&to={}", t0().plus_millis(-to).to_rfc3339()));
        }
        q
    };
    assert_eq!(s.all_deliveries(&q(3 * HOUR, None)).await.len(), 6);
    assert_eq!(s.all_deliveries(&q(3 * HOUR, Some(HOUR))).await.len(), 2);
    assert_eq!(s.all_deliveries(&q(30 * MINUTE, None)).await.len(), 4, "`from` is inclusive");
    assert_eq!(s.all_deliveries(&q(26 * HOUR, Some(30 * MINUTE))).await.len(), 6, "`to` is exclusive");
    // Pages of two across a time range still add up, newest first.
    let (_, page) = s.get(&format!("/api/v1/deliveries?limit=2&{}", q(24 * HOUR, None))).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let (_, next) = s
        .get(&format!(
            "/api/v1/deliveries?limit=10&cursor={}&{}",
            page["next_cursor"].as_str().unwrap(),
            q(24 * HOUR, None)
        ))
        .await;
    assert_eq!(next["items"].as_array().unwrap().len(), 7);

    for bad in ["from=yesterday", "to=2026-13-01T00:00:00Z"] {
        for path in ["/api/v1/deliveries", "/api/v1/dashboard"] {
            let got = s.get(&format!("{path}?{bad}")).await;
            assert_problem(&got, 400, "invalid_request");
        }
    }
    // `from` after `to` is a range that holds nothing, not an error.
    let backwards = q(HOUR, Some(3 * HOUR));
    assert_eq!(s.all_deliveries(&backwards).await.len(), 0);
    let (st, dash) = s.get(&format!("/api/v1/dashboard?{backwards}")).await;
    assert_eq!((st.as_u16(), dash["deliveries"]["items"].as_array().map(Vec::len)), (200, Some(0)), "{dash}");
}

#[tokio::test]
async fn the_dashboard_payload_shows_what_the_apis_show() {
    let s = history().await;
    // A filter that leaves out some deliveries: 6 of the 9 stored arrived in the last 3 hours.
    let from = t0().plus_millis(-3 * HOUR).to_rfc3339();
    let (st, dash) = s.get(&format!("/api/v1/dashboard?limit=3&from={from}")).await;
    assert_eq!(st, 200, "{dash}");
    let (_, page) = s.get(&format!("/api/v1/deliveries?limit=3&from={from}")).await;
    assert_eq!(dash["deliveries"], page, "the same page for the same filters");
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = s.get(&format!("/api/v1/dashboard?limit=10&from={from}&cursor={cursor}")).await;
    assert_eq!(rest["deliveries"]["items"].as_array().unwrap().len(), 3, "the filter holds across pages");
    assert_eq!(rest["deliveries"]["next_cursor"], Value::Null);
    let (_, stats) = s.get("/api/v1/stats").await;
    for field in ["kpis", "subscriptions", "banners", "generated_at"] {
        assert_eq!(dash[field], stats[field], "{field}");
    }
}
