//! Processing-queue benchmark: signed Shopify deliveries into Hookplane, forwarded to a local destination
//! that answers 200 at once. Two phases on one fresh data directory:
//!
//! 1. **Peak**: `--concurrency` connections send back to back for `--seconds`; reports accepted/s at ingest,
//!    delivered/s at the destination over the same window, and how long the queue took to drain after.
//! 2. **Half of peak**: an open-loop load at half the measured ingest rate for `--seconds`; reports the
//!    latency from each acknowledgement to the first attempt reaching the destination (p50, p99, max).
//!
//! `cargo bench --bench queue -- [--concurrency 64] [--seconds 10] [--rate N]` (`--rate` skips phase 1)
//!
//! Hookplane, the destination and the load generator share the machine, each on its own runtime.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Body, bodies, shopify_request};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SECRET: &[u8] = b"bench-shopify-secret";
const ADMIN: &str = "hp_bench_admin_token";
const SHOP: &str = "bench-shop.myshopify.com";

struct Args {
    concurrency: usize,
    seconds: u64,
    rate: Option<f64>,
}

fn args() -> Args {
    let mut a = Args { concurrency: 64, seconds: 10, rate: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().and_then(|v| v.parse::<f64>().ok()).expect("a number after the flag");
        match flag.as_str() {
            "--concurrency" => a.concurrency = value() as usize,
            "--seconds" => a.seconds = value() as u64,
            "--rate" => a.rate = Some(value()),
            "--bench" => {}
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// When each delivery was acknowledged, and when its first attempt reached the destination.
#[derive(Default)]
struct Times {
    acked: HashMap<String, Instant>,
    arrived: HashMap<String, Instant>,
    /// Each accepted request's time from sending to its acknowledgement, in milliseconds.
    ack_ms: Vec<f64>,
}

type Shared = Arc<Mutex<Times>>;

#[poem::handler]
fn destination(req: &poem::Request, poem::web::Data(times): poem::web::Data<&Shared>) -> &'static str {
    let now = Instant::now();
    if let Some(id) = req.headers().get("x-hookplane-delivery-id").and_then(|v| v.to_str().ok()) {
        times.lock().unwrap().arrived.entry(id.to_owned()).or_insert(now);
    }
    "ok"
}

/// Sends on one keep-alive connection until `until`: back to back, or one request every `every`.
async fn sender(
    addr: SocketAddr,
    bodies: Arc<Vec<Body>>,
    w: usize,
    until: Instant,
    every: Option<Duration>,
    times: Shared,
) -> u64 {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut tick = every.map(|e| {
        let mut i = tokio::time::interval(e);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });
    let mut accepted = 0;
    let mut n = 0;
    while Instant::now() < until {
        if let Some(t) = tick.as_mut() {
            t.tick().await;
        }
        let body = &bodies[(w * 7919 + n) % bodies.len()];
        n += 1;
        let req = shopify_request("/shopify/webhook", body, SHOP);
        tx.ready().await.unwrap();
        let sent = Instant::now();
        let resp = tx.send_request(req).await.unwrap();
        let ok = resp.status().is_success();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let acked = Instant::now();
        if ok {
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            let id = v["delivery_id"].as_str().unwrap().to_owned();
            let mut t = times.lock().unwrap();
            t.acked.insert(id, acked);
            t.ack_ms.push(acked.duration_since(sent).as_secs_f64() * 1e3);
            accepted += 1;
        }
    }
    accepted
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// Waits until every acknowledged delivery reached the destination (or a minute passed); returns how long.
async fn drain(times: &Shared) -> Duration {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let all_arrived = {
            let t = times.lock().unwrap();
            t.acked.keys().all(|k| t.arrived.contains_key(k))
        };
        if all_arrived {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

fn main() {
    let a = args();
    let server_rt = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("server").build().unwrap();
    let dest_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .thread_name("destination")
        .build()
        .unwrap();
    let client_rt = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("loadgen").build().unwrap();
    let times: Shared = Arc::default();

    let dest_addr = dest_rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
        let app = poem::EndpointExt::data(poem::Route::new().at("/hooks", poem::post(destination)), Arc::clone(&times));
        tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
        addr
    });

    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings(dir.path(), SECRET, &[("HOOKPLANE_ADMIN_TOKEN", ADMIN)]);
    let per_destination = settings.delivery.per_destination_concurrency;
    let (hp_addr, shutdown) = common::serve(&server_rt, settings);
    client_rt.block_on(async {
        let client = reqwest::Client::new();
        let made = client
            .post(format!("http://{hp_addr}/api/v1/subscriptions"))
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
            .body(
                serde_json::json!({
                    "source": "shopify", "topic": "orders/create", "account": SHOP,
                    "destination_url": format!("http://{dest_addr}/hooks"),
                })
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(made.status(), 201, "{}", made.text().await.unwrap());
    });
    let bodies = Arc::new(bodies(7, SECRET));
    println!(
        "queue benchmark: {} cores, destination answers 200 at once, {} attempts at a time towards it",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        per_destination
    );

    let peak = match a.rate {
        Some(r) => r * 2.0,
        None => {
            let started = Instant::now();
            let until = started + Duration::from_secs(a.seconds);
            let accepted: u64 = client_rt.block_on(async {
                let tasks: Vec<_> = (0..a.concurrency)
                    .map(|w| tokio::spawn(sender(hp_addr, Arc::clone(&bodies), w, until, None, Arc::clone(&times))))
                    .collect();
                let mut n = 0;
                for t in tasks {
                    n += t.await.unwrap();
                }
                n
            });
            let window = started.elapsed().as_secs_f64();
            let delivered_in_window = times.lock().unwrap().arrived.values().filter(|t| **t <= until).count();
            let drained = client_rt.block_on(drain(&times));
            let total = times.lock().unwrap().arrived.len();
            let end_to_end = total as f64 / (window + drained.as_secs_f64());
            println!(
                "peak, concurrency {}: {:.0} accepted/s at ingest; {:.0} delivered/s at the destination in the same {:.1} s; \
                 the queue drained {:.1} s after the load stopped; end to end {:.0} deliveries/s ({} of {} delivered)",
                a.concurrency,
                accepted as f64 / window,
                delivered_in_window as f64 / window,
                window,
                drained.as_secs_f64(),
                end_to_end,
                total,
                accepted
            );
            accepted as f64 / window
        }
    };

    // Half of peak, open loop: each connection sends on its own clock, whatever the answers' speed. As many
    // connections as the peak phase had, so a slow acknowledgement does not keep the asked rate from arriving.
    let rate = peak / 2.0;
    let conns = a.concurrency;
    let every = Duration::from_secs_f64(conns as f64 / rate);
    *times.lock().unwrap() = Times::default();
    let started = Instant::now();
    let until = started + Duration::from_secs(a.seconds);
    let accepted: u64 = client_rt.block_on(async {
        let tasks: Vec<_> = (0..conns)
            .map(|w| tokio::spawn(sender(hp_addr, Arc::clone(&bodies), w, until, Some(every), Arc::clone(&times))))
            .collect();
        let mut n = 0;
        for t in tasks {
            n += t.await.unwrap();
        }
        n
    });
    let window = started.elapsed().as_secs_f64();
    client_rt.block_on(drain(&times));
    let mut t = times.lock().unwrap();
    let mut lat: Vec<(f64, f64)> = t
        .acked
        .iter()
        .filter_map(|(id, acked)| {
            let at = acked.duration_since(started).as_secs_f64();
            t.arrived.get(id).map(|got| (at, got.saturating_duration_since(*acked).as_secs_f64() * 1e3))
        })
        .collect();
    let mut all: Vec<f64> = lat.iter().map(|(_, l)| *l).collect();
    all.sort_by(f64::total_cmp);
    t.ack_ms.sort_by(f64::total_cmp);
    println!(
        "half of peak ({:.0}/s asked, {:.0}/s accepted over {:.1} s, acknowledged in p50 {:.2} ms, p99 {:.2} ms): \
         acknowledgement to first attempt p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} of {} delivered)",
        rate,
        accepted as f64 / window,
        window,
        pct(&t.ack_ms, 0.50),
        pct(&t.ack_ms, 0.99),
        pct(&all, 0.50),
        pct(&all, 0.99),
        all.last().copied().unwrap_or(f64::NAN),
        all.len(),
        accepted
    );
    // Second by second, so a backlog that formed once and stayed shows apart from one that grows.
    lat.sort_by(|a, b| a.0.total_cmp(&b.0));
    let seconds: Vec<String> = lat
        .chunk_by(|a, b| a.0 as u64 == b.0 as u64)
        .map(|c| {
            let mut l: Vec<f64> = c.iter().map(|(_, l)| *l).collect();
            l.sort_by(f64::total_cmp);
            format!("{}: {} at p99 {:.0} ms", c[0].0 as u64, l.len(), pct(&l, 0.99))
        })
        .collect();
    println!("  each second (acknowledged, then first attempt p99): {}", seconds.join("; "));
    drop(t);

    let (tx, handle) = shutdown;
    let _ = tx.send(());
    server_rt.block_on(handle).unwrap().unwrap();
}
