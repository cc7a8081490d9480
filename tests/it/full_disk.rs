//! A full disk, as an operator running `hookplane serve >> hookplane.log 2>&1` on a small VPS meets it: the
//! data directory and the log share one small filesystem, under load. Every request is answered, `/healthz`
//! and `/readyz` say what is so, and once space is freed Hookplane accepts again by itself, with every
//! acknowledged webhook stored.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookplane::demo::factories::{Factory, SignedRequest, shopify_request};
use serde_json::Value;

use crate::process::{Proc, verify};
use crate::support::{ADMIN_TOKEN, SHOPIFY_SECRET, now, signed};

const SHOP: &str = "full-disk.myshopify.com";
/// Bounds a wait that only a broken build would exceed.
const GENEROUS: Duration = Duration::from_secs(60);

/// What the load saw: the bodies acknowledged by provider id, and every answer that was neither 200 nor
/// 503 `storage_unavailable` with `Retry-After`.
#[derive(Default)]
struct Seen {
    acked: Mutex<HashMap<String, Vec<u8>>>,
    refused: std::sync::atomic::AtomicUsize,
    wrong: Mutex<Vec<String>>,
}

impl Seen {
    fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

/// Sends `req` and files its answer in `seen`; returns the status, 0 for no answer at all.
async fn send(client: &reqwest::Client, base: &str, req: &SignedRequest, id: &str, seen: &Seen) -> u16 {
    let resp = match signed(client, base, req).timeout(GENEROUS).send().await {
        Ok(resp) => resp,
        Err(e) => {
            seen.wrong.lock().unwrap().push(format!("{id}: no answer: {e}"));
            return 0;
        }
    };
    let status = resp.status().as_u16();
    let retry_after = resp.headers().contains_key("retry-after");
    let body: Value = serde_json::from_str(&resp.text().await.unwrap_or_default()).unwrap_or_default();
    match status {
        200 => {
            seen.acked.lock().unwrap().insert(id.to_owned(), req.body.clone());
        }
        503 if retry_after && body["code"] == "storage_unavailable" => {
            seen.refused.fetch_add(1, Ordering::SeqCst);
        }
        other => seen.wrong.lock().unwrap().push(format!("{id}: {other} (Retry-After: {retry_after}) {body}")),
    }
    status
}

fn order(f: &mut Factory, id: &str, n: u64) -> SignedRequest {
    shopify_request("orders/create", SHOP, f.shopify_order(n, now()), SHOPIFY_SECRET.as_bytes(), id, now())
}

/// Sends orders from four clients until `stop` is set.
async fn load(base: &str, round: &str, seen: &Arc<Seen>, stop: &Arc<AtomicBool>) {
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for w in 0..4u64 {
        let (client, base, seen, stop, round) =
            (client.clone(), base.to_owned(), Arc::clone(seen), Arc::clone(stop), round.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut f = Factory::new(w);
            for n in 0.. {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let id = format!("{round}-{w}-{n}");
                send(&client, &base, &order(&mut f, &id, n), &id, &seen).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

async fn get(client: &reqwest::Client, base: &str, path: &str) -> (u16, Value, String) {
    let resp = client.get(format!("{base}{path}")).bearer_auth(ADMIN_TOKEN).timeout(GENEROUS).send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_default(), text)
}

/// Writes zeros to `file` until the filesystem refuses them; returns how many bytes it took.
fn fill(file: &Path) -> u64 {
    let mut out = std::fs::File::create(file).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match out.write(&chunk) {
            Ok(0) => return written,
            Ok(n) => written += n as u64,
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(28), "the filler stopped for another reason: {e}");
                return written;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_is_answered_with_503_told_by_readiness_and_recovered_from_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let proc = Proc::start_on_small_disk(dir.path(), 16);
    let base = proc.base.clone();
    let client = reqwest::Client::new();
    // Space the test frees later: more than the writer needs free before it accepts again.
    let ballast = proc.on_disk(&dir.path().join("ballast"));
    std::fs::write(&ballast, vec![0u8; 8 * 1024 * 1024]).unwrap();

    // Load until the disk is full and webhooks are refused.
    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let running = tokio::spawn({
        let (base, seen, stop) = (base.clone(), Arc::clone(&seen), Arc::clone(&stop));
        async move { load(&base, "filling", &seen, &stop).await }
    });
    let deadline = Instant::now() + GENEROUS * 2;
    while seen.refused() < 50 {
        assert!(Instant::now() < deadline, "the disk never filled: {} acknowledged", seen.acked.lock().unwrap().len());
        assert!(seen.wrong.lock().unwrap().is_empty(), "{:?}", seen.wrong.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    running.await.unwrap();

    // Whatever the load's failures freed (an indexer's unfinished segment) is taken too: the disk stays full.
    let filler = proc.on_disk(&dir.path().join("filler"));
    fill(&filler);
    let mut f = Factory::new(99);
    let refused_before = seen.refused();
    for n in 0..1000 {
        let id = format!("full-{n}");
        if send(&client, &base, &order(&mut f, &id, n), &id, &seen).await != 200 {
            break;
        }
    }
    assert!(seen.refused() > refused_before, "a full disk still accepted 1000 webhooks");
    let (status, ready, text) = get(&client, &base, "/readyz").await;
    assert_eq!(status, 503, "ready while every write fails: {text}");
    assert_eq!(ready["code"], "storage_unavailable", "{text}");
    let detail = ready["detail"].as_str().unwrap();
    assert!(detail.starts_with("storage: writes fail") && detail.contains("No space left on device"), "{detail}");
    let (status, health, text) = get(&client, &base, "/healthz").await;
    assert_eq!(status, 200, "the process is alive and a restart would not free space: {text}");
    assert!(health["status"] == "ok" || health["restarting"] == serde_json::json!(["search indexer"]), "{text}");
    // The log could not be written meanwhile, and nothing died of it.
    let (_, _, metrics) = get(&client, &base, "/metrics").await;
    let dropped = metrics
        .lines()
        .find_map(|l| l.strip_prefix("hookplane_log_lines_dropped_total "))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no dropped-lines counter in {metrics}"));
    assert!(dropped > 0, "the log's disk is full, yet no line was dropped");

    // Space returns: the writer finds out by itself, with no webhook sent to show it.
    std::fs::remove_file(&filler).unwrap();
    std::fs::remove_file(&ballast).unwrap();
    let deadline = Instant::now() + GENEROUS;
    loop {
        let (status, _, text) = get(&client, &base, "/readyz").await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "still not ready once space was freed: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused_then = seen.refused();
    let mut f = Factory::new(100);
    for n in 0..200 {
        let id = format!("after-{n}");
        assert_eq!(send(&client, &base, &order(&mut f, &id, n), &id, &seen).await, 200, "{id}");
    }
    assert_eq!(seen.refused(), refused_then);
    assert!(seen.wrong.lock().unwrap().is_empty(), "{:?}", seen.wrong.lock().unwrap());

    // Search, which failed with the disk, indexes again: a webhook sent now is found.
    let marker = br#"{"id":7,"note":"sent once the disk had room again"}"#.to_vec();
    let req = shopify_request("orders/create", SHOP, marker.clone(), SHOPIFY_SECRET.as_bytes(), "marker", now());
    assert_eq!(send(&client, &base, &req, "marker", &seen).await, 200);
    let deadline = Instant::now() + GENEROUS;
    loop {
        let (status, page, text) = get(&client, &base, "/api/v1/deliveries?q=%22disk+had+room+again%22").await;
        assert_eq!(status, 200, "{text}");
        if page["items"].as_array().is_some_and(|items| items.len() == 1) {
            break;
        }
        assert!(Instant::now() < deadline, "search never indexed again: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let acked = seen.acked.lock().unwrap().clone();
    assert!(acked.len() > 200);
    verify(&base, &acked).await;
    let (status, _) = proc.terminate();
    assert!(status.success(), "{status}");
}
