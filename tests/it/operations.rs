//! Running it for real: the metrics a scraper reads, against the real binary in its own process (the
//! instruments are the process's own, so no other test's traffic moves them).

use hookplane::demo::factories::{Factory, shopify_request};
use serde_json::json;

use crate::process::Proc;
use crate::queue::{Answer, Destination};
use crate::support::{ADMIN_TOKEN, JsonBody as _, SHOPIFY_SECRET, now, signed};

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
        async move { signed(&client, &base, &req).send().await.unwrap().status().as_u16() }
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
        // The attempt is counted before its answer is filed: wait for the queue to show the retry too.
        if value(&after, "hookplane_attempt_seconds_count") >= 2.0
            && value(&after, r#"hookplane_queue_jobs{state="scheduled"}"#) == 1.0
        {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_under_load_restores_every_delivery_acknowledged_before_it() {
    use crate::process::{Ledger, Round, hookplane, load, verify};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let (src, dst, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let proc = Proc::start(src.path(), None);
    let ledger = Arc::new(Ledger::default());
    let round = Arc::new(Round {
        stop: AtomicBool::new(false),
        acks: AtomicUsize::new(0),
        reached: tokio::sync::Notify::new(),
        target: usize::MAX,
    });
    let sending = tokio::spawn(load(proc.base.clone(), Arc::clone(&ledger), 8, 41, Arc::clone(&round)));
    for _ in 0..600 {
        if round.acks.load(Ordering::SeqCst) >= 300 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let before = ledger.acked.lock().unwrap().clone();
    assert!(before.len() >= 300, "{} acknowledged", before.len());

    // The backup is taken while the clients keep sending.
    let file = out.path().join("hookplane-backup.redb");
    let file_arg = file.to_str().unwrap().to_owned();
    let base = proc.base.clone();
    let backed_up = tokio::task::spawn_blocking(move || {
        hookplane(&["backup", "--to", &file_arg, "--url", &base], &[("HOOKPLANE_ADMIN_TOKEN", ADMIN_TOKEN)])
    })
    .await
    .unwrap();
    let during = round.acks.load(Ordering::SeqCst);
    round.stop.store(true, Ordering::SeqCst);
    sending.await.unwrap();
    let stdout = String::from_utf8_lossy(&backed_up.stdout).into_owned();
    assert!(backed_up.status.success(), "{}", String::from_utf8_lossy(&backed_up.stderr));
    assert!(stdout.contains("written to"), "{stdout}");
    assert!(ledger.refused.lock().unwrap().is_empty(), "ingest refused nothing while the backup ran");
    assert!(
        !std::fs::read_dir(src.path()).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".backup-")),
        "the snapshot file is gone once downloaded"
    );
    let again = hookplane(
        &["backup", "--to", file.to_str().unwrap(), "--url", &proc.base],
        &[("HOOKPLANE_ADMIN_TOKEN", ADMIN_TOKEN)],
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    proc.kill9();

    let restored =
        hookplane(&["restore", "--from", file.to_str().unwrap(), "--data-dir", dst.path().to_str().unwrap()], &[]);
    let said = String::from_utf8_lossy(&restored.stdout).into_owned();
    assert!(restored.status.success(), "{}", String::from_utf8_lossy(&restored.stderr));
    assert!(said.contains("restored") && said.contains("search index is rebuilt"), "{said}");

    let back = Proc::start(dst.path(), None);
    let stored = verify(&back.base, &before).await;
    assert!(
        stored >= before.len() && stored <= during + 8,
        "{stored} stored, {} before, {during} by the end",
        before.len()
    );
    let audit = reqwest::Client::new()
        .get(format!("{}/api/v1/audit?action=backup_taken", back.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let audit: serde_json::Value = serde_json::from_str(&audit.text().await.unwrap()).unwrap();
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(1), "the backup holds its own audit entry: {audit}");
    // The index is rebuilt from the restored deliveries (a page of search results holds 100).
    let mut found = 0;
    for _ in 0..600 {
        found = crate::process::orders_found(&reqwest::Client::new(), &back.base).await;
        if found == stored.min(100) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(found, stored.min(100), "the restored deliveries are searchable");

    let busy = hookplane(
        &["restore", "--from", file.to_str().unwrap(), "--data-dir", dst.path().to_str().unwrap(), "--replace"],
        &[],
    );
    assert!(!busy.status.success());
    assert!(
        String::from_utf8_lossy(&busy.stderr).contains("in use by a running Hookplane"),
        "{}",
        String::from_utf8_lossy(&busy.stderr)
    );
    back.kill9();
}

/// `hookplane check` with `env`, on the data directory `dir`: success, and what it printed.
fn check(dir: &std::path::Path, env: &[(&str, &str)]) -> (bool, String) {
    let mut all = vec![("HOOKPLANE_DATA_DIR", dir.to_str().unwrap())];
    all.extend_from_slice(env);
    let out = crate::process::hookplane(&["check"], &all);
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_tells_what_a_start_would_trip_on() {
    use crate::support::MASTER_KEY;
    let dir = tempfile::tempdir().unwrap();
    let key = [("HOOKPLANE_MASTER_KEY", MASTER_KEY)];
    let (ok, said) = check(dir.path(), &key);
    assert!(ok, "{said}");
    assert!(said.contains("store: none yet") && said.contains("writable") && said.contains("free space"), "{said}");
    let fresh = dir.path().join("not-yet");
    let (ok, said) = check(&fresh, &key);
    assert!(ok && said.contains("not made yet"), "{said}");
    assert!(!fresh.exists(), "a check makes nothing");
    assert!(said.contains("alert sinks: none configured"), "{said}");

    // A store holding a sealed secret, checked while its instance runs, then stopped.
    let proc = Proc::start(dir.path(), None);
    let made = reqwest::Client::new()
        .post(format!("{}/api/v1/subscriptions", proc.base))
        .bearer_auth(ADMIN_TOKEN)
        .json_body(&json!({ "source": "standard", "topic": "invoice.paid", "account": "billing", "name": "billing",
            "destination_url": "http://127.0.0.1:9/hooks" }))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    let (ok, said) = check(dir.path(), &key);
    assert!(ok, "{said}");
    assert!(said.contains("warn store:") && said.contains("open in a running Hookplane"), "{said}");
    let (status, _) = proc.terminate();
    assert!(status.success());

    let (ok, said) = check(dir.path(), &key);
    assert!(ok, "{said}");
    assert!(said.contains("master key: opens all 1 sealed"), "{said}");
    assert!(said.contains("subscription `billing`: destination http://127.0.0.1:9/hooks"), "{said}");

    let other = hookplane::secrets::MasterKey::generate().to_hex();
    let (ok, said) = check(dir.path(), &[("HOOKPLANE_MASTER_KEY", other.as_str())]);
    assert!(!ok);
    assert!(said.contains("FAIL master key: does not open 1 of 1"), "{said}");
    assert!(said.contains("1 check(s) failed"), "{said}");

    // A declared destination is held to the rule subscriptions are created with.
    let config = dir.path().join("declared.toml");
    std::fs::write(
        &config,
        "[[subscriptions]]\nname = \"orders\"\nsource = \"shopify\"\ntopic = \"orders/create\"\naccount = \"a.myshopify.com\"\ndestination_url = \"ftp://example.com/x\"\n",
    )
    .unwrap();
    let (ok, said) = check(dir.path(), &[key[0], ("HOOKPLANE_CONFIG", config.to_str().unwrap())]);
    assert!(!ok);
    assert!(
        said.contains("FAIL declared subscription `orders`: `destination_url` must be an http:// or https:// URL"),
        "{said}"
    );

    let file = dir.path().join("hookplane.redb");
    let (ok, said) = check(&file.join("data"), &key);
    assert!(!ok);
    assert!(said.contains("cannot be made") && said.contains("is not a directory"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smoke_test_walks_a_webhook_through_and_stops_at_the_first_failure() {
    let dir = tempfile::tempdir().unwrap();
    let proc = Proc::start(dir.path(), None);
    let env = [("HOOKPLANE_ADMIN_TOKEN", ADMIN_TOKEN), ("SHOPIFY_WEBHOOK_SECRET", SHOPIFY_SECRET)];
    let smoke = |extra: &[&str]| {
        let mut args = vec!["smoke", "--url", proc.base.as_str(), "--timeout-seconds", "20"];
        args.extend_from_slice(extra);
        let out = crate::process::hookplane(&args, &env);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // No subscription yet: the webhook is kept under a discovered one, with nothing to forward or replay.
    let (ok, out, err) = tokio::task::block_in_place(|| smoke(&[]));
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("2/4 stored; its subscription keeps deliveries") && out.contains("3/4 replay skipped"),
        "{out}"
    );

    let destination = Destination::start(&[]).await;
    let made = reqwest::Client::new()
        .post(format!("{}/api/v1/subscriptions", proc.base))
        .bearer_auth(ADMIN_TOKEN)
        .json_body(&json!({ "source": "shopify", "topic": "orders/create", "account": "hookplane-smoke.myshopify.com",
            "destination_url": destination.url }))
        .send()
        .await
        .unwrap();
    assert!(made.status().is_success(), "{}", made.text().await.unwrap());
    let (ok, out, err) = tokio::task::block_in_place(|| smoke(&[]));
    assert!(ok, "{out}{err}");
    for step in [
        "1/4 fired",
        "2/4 stored and delivered",
        "3/4 replayed once: the destination answered 200",
        "4/4 the dashboard counts",
        "ok   the smoke test passed",
    ] {
        assert!(out.contains(step.trim_start_matches("ok   ")), "{step}: {out}");
    }
    assert_eq!(destination.received().len(), 2, "the webhook and its replay reached the destination");

    let (ok, out, err) = tokio::task::block_in_place(|| {
        let mut bad = env.to_vec();
        bad[1] = ("SHOPIFY_WEBHOOK_SECRET", "not-the-secret");
        let out = crate::process::hookplane(&["smoke", "--url", &proc.base], &bad);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    });
    assert!(!ok);
    assert!(!out.contains("1/4"), "{out}");
    assert!(err.contains("1/4 the webhook was refused: 401"), "{err}");
    proc.kill9();
}
