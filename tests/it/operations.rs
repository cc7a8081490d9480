//! Running it for real: the metrics a scraper reads, against the real binary in its own process (the
//! instruments are the process's own, so no other test's traffic moves them).

use hookplane::demo::factories::{Factory, shopify_request};
use serde_json::json;

use crate::process::Proc;
use crate::queue::{Answer, Destination};
use crate::support::{ADMIN_TOKEN, JsonBody as _, SHOPIFY_SECRET, now};

const SHOP: &str = "metrics-shop.myshopify.com";
const METRICS_TOKEN: &str = "scrape-token-0123456789abcdef";

async fn scrape(base: &str, token: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(format!("{base}/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    if status == 200 {
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    }
    (status, resp.text().await.unwrap())
}

/// The value of one series, `name{labels}` exactly as exposed; 0 when the series is absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok()).unwrap_or(0.0)
}

fn ingest(outcome: &str, cause: &str) -> String {
    format!(r#"hookplane_ingest_requests_total{{source="shopify",outcome="{outcome}",cause="{cause}"}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_the_traffic_did() {
    let dir = tempfile::tempdir().unwrap();
    let proc = Proc::start_env(
        dir.path(),
        None,
        &[("HOOKPLANE_METRICS_TOKEN", METRICS_TOKEN), ("HOOKPLANE_DELIVERY__RETRY_DELAYS_SECONDS", "3600")],
    );
    let base = proc.base.clone();
    assert_eq!(scrape(&base, None).await.0, 401);
    assert_eq!(scrape(&base, Some("not-the-token")).await.0, 401);
    let (status, before) = scrape(&base, Some(METRICS_TOKEN)).await;
    assert_eq!(status, 200, "{before}");
    assert!(before.trim_end().ends_with("# EOF"), "a complete exposition");
    assert!(value(&before, "hookplane_store_size_bytes") > 0.0, "{before}");
    // The metrics token reads nothing else.
    let api = reqwest::Client::new().get(format!("{base}/api/v1/deliveries")).bearer_auth(METRICS_TOKEN);
    assert_eq!(api.send().await.unwrap().status(), 401);

    let destination = Destination::start(&[Answer::Status(500)]).await;
    let client = reqwest::Client::new();
    let made = client
        .post(format!("{base}/api/v1/subscriptions"))
        .bearer_auth(ADMIN_TOKEN)
        .json_body(&json!({ "source": "shopify", "topic": "orders/create", "account": SHOP, "destination_url": destination.url }))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201, "{}", made.text().await.unwrap());

    let mut f = Factory::new(7);
    let send = |req: hookplane::demo::factories::SignedRequest| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let mut r = client.post(format!("{base}{}", req.path)).body(req.body.clone());
            for (k, v) in &req.headers {
                r = r.header(k, v);
            }
            r.send().await.unwrap().status().as_u16()
        }
    };
    for n in 0..2 {
        let req = shopify_request(
            "orders/create",
            SHOP,
            f.shopify_order(n, now()),
            SHOPIFY_SECRET.as_bytes(),
            &format!("m-{n}"),
            now(),
        );
        assert_eq!(send(req).await, 200);
    }
    let again =
        shopify_request("orders/create", SHOP, f.shopify_order(0, now()), SHOPIFY_SECRET.as_bytes(), "m-0", now());
    assert_eq!(send(again).await, 200, "a repeat is acknowledged");
    let forged = shopify_request("orders/create", SHOP, f.shopify_order(9, now()), b"not-the-secret", "m-9", now());
    assert_eq!(send(forged).await, 401);

    // The worker counts an attempt after the destination answers: wait for both to be counted.
    destination.wait_for(2).await;
    let mut after = String::new();
    for _ in 0..200 {
        after = scrape(&base, Some(ADMIN_TOKEN)).await.1;
        if value(&after, "hookplane_attempt_seconds_count") >= 2.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let moved = |series: &str| value(&after, series) - value(&before, series);
    assert_eq!(moved(&ingest("accepted", "")), 2.0, "{after}");
    assert_eq!(moved(&ingest("duplicate", "")), 1.0);
    assert_eq!(moved(&ingest("refused", "signature_invalid")), 1.0);
    assert_eq!(moved(r#"hookplane_ingest_acknowledgement_seconds_count{source="shopify"}"#), 4.0);
    assert_eq!(moved(r#"hookplane_attempts_total{outcome="delivered"}"#), 1.0);
    assert_eq!(moved(r#"hookplane_attempts_total{outcome="http"}"#), 1.0);
    assert!(moved("hookplane_commit_deliveries_sum") >= 2.0);
    assert!(moved("hookplane_commit_fsync_seconds_count") >= 1.0);
    // The failed delivery waits an hour for its retry.
    assert_eq!(value(&after, r#"hookplane_queue_jobs{state="scheduled"}"#), 1.0, "{after}");
    assert_eq!(value(&after, r#"hookplane_queue_jobs{state="due"}"#), 0.0);
    assert!(after.contains(r#"hookplane_incidents_open{rule="consecutive_failures"} 0"#), "{after}");
    assert!(after.contains("hookplane_search_lag_deliveries "), "{after}");
    assert!(value(&after, "hookplane_search_index_size_bytes") > 0.0);
    assert!(after.contains(r#"hookplane_build_info{version=""#));
    proc.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grafana_dashboard_asks_only_for_metrics_that_exist() {
    let dir = tempfile::tempdir().unwrap();
    let proc = Proc::start_env(dir.path(), None, &[("HOOKPLANE_METRICS_TOKEN", METRICS_TOKEN)]);
    let (_, exposed) = scrape(&proc.base, Some(METRICS_TOKEN)).await;
    let families: Vec<&str> =
        exposed.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split_whitespace().next()).collect();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/grafana-dashboard.json");
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut asked = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for (at, _) in expr.match_indices("hookplane_") {
                let name: String = expr[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                // A family's samples add `_total`, `_bucket`, `_sum` and `_count` to its name.
                let known = families.iter().any(|f| {
                    name == *f || ["_total", "_bucket", "_sum", "_count"].iter().any(|s| name == format!("{f}{s}"))
                });
                assert!(known, "the dashboard's `{expr}` asks for {name}, which /metrics does not expose");
                asked += 1;
            }
        }
    }
    assert!(asked >= 12, "{asked}");
    proc.kill9();
}
