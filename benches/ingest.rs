//! Ingest load generator: correctly signed, unique Shopify deliveries (2–4 KB order bodies) at a fixed
//! concurrency against Hookplane, and, in the same run, against a bare poem endpoint that only reads the
//! body. Prints accepted/s and acknowledgement latency for both, and their ratio.
//!
//! `cargo bench --bench ingest -- [--concurrency 64] [--seconds 10] [--warmup 2] [--rounds 5]`
//!
//! The servers and the load generator share the machine; each gets its own runtime so neither starves the
//! other's scheduler. The machine's other tenants move the figures by a third within seconds, so the two
//! targets are measured in alternating one-second slices: each round's ratio compares them under the same
//! conditions. Bodies come from a pool (HMAC covers only the body, so unique webhook ids over a pool
//! of bodies are still correctly signed deliveries) so the generator spends its CPU on sending.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Body, bodies, shopify_request};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;

const SECRET: &[u8] = b"bench-shopify-secret";

// The allocator the hookplane binary uses, so the server measured here is the server that ships.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    concurrency: usize,
    seconds: u64,
    warmup: u64,
    /// Rounds of `seconds` per target; the ratio reported is the median of the rounds' ratios.
    rounds: usize,
    /// Measure Hookplane only (for profiling).
    only_hookplane: bool,
}

fn args() -> Args {
    let mut a = Args { concurrency: 64, seconds: 10, warmup: 2, rounds: 5, only_hookplane: false };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().and_then(|v| v.parse::<u64>().ok()).expect("a number after the flag");
        match flag.as_str() {
            "--concurrency" => a.concurrency = value() as usize,
            "--seconds" => a.seconds = value(),
            "--warmup" => a.warmup = value(),
            "--rounds" => a.rounds = (value() as usize).max(1),
            "--only-hookplane" => a.only_hookplane = true,
            "--bench" => {}
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

#[derive(Default)]
struct Outcome {
    /// Accepted while recording.
    ok: u64,
    /// Accepted at any time, warm-up included: what the data file holds.
    accepted: u64,
    failed: u64,
    latencies_us: Vec<u32>,
}

/// Whose workers may send: the load moves between the two servers slice by slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Hookplane,
    Bare,
    Stop,
}

/// One keep-alive connection sending requests back to back while the phase is `mine`, until `Stop`.
async fn worker(
    addr: SocketAddr,
    path: &'static str,
    bodies: Arc<Vec<Body>>,
    w: usize,
    mine: Phase,
    mut phase: tokio::sync::watch::Receiver<Phase>,
    record: Arc<AtomicBool>,
) -> Outcome {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut out = Outcome::default();
    let mut n = 0usize;
    loop {
        if *phase.wait_for(|p| *p == mine || *p == Phase::Stop).await.unwrap() == Phase::Stop {
            break;
        }
        let body = &bodies[(w * 7919 + n) % bodies.len()];
        n += 1;
        let req = shopify_request(path, body, "bench-shop.myshopify.com");
        let started = Instant::now();
        sender.ready().await.unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status();
        resp.into_body().collect().await.unwrap();
        let elapsed = started.elapsed();
        out.accepted += u64::from(status.is_success());
        if record.load(Ordering::Relaxed) && *phase.borrow() == mine {
            if status.is_success() {
                out.ok += 1;
            } else {
                out.failed += 1;
            }
            out.latencies_us.push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
        }
    }
    out
}

struct Report {
    name: &'static str,
    ok: u64,
    failed: u64,
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// CPU time the server's threads used per accepted request, which the machine's other tenants do not
    /// skew the way they skew wall-clock rates.
    server_cpu_us: f64,
    /// The part of it spent on the writer thread.
    writer_cpu_us: f64,
}

/// CPU seconds used so far by this process's threads whose name starts with one of `prefixes`.
fn thread_cpu_seconds(prefixes: &[&str]) -> f64 {
    let mut ticks = 0u64;
    for entry in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let dir = entry.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if !prefixes.iter().any(|p| comm.starts_with(p)) {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state is 3rd, utime the 14th and stime the 15th overall.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        ticks += fields.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        ticks += fields.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    }
    ticks as f64 / 100.0
}

const SERVER_THREADS: &[&str] = &["server", "hookplane-write"];

/// What one target's recorded slices add up to.
#[derive(Default)]
struct Tally {
    seconds: f64,
    server_cpu: f64,
    writer_cpu: f64,
}

impl Tally {
    fn report(&self, name: &'static str, mut out: Outcome) -> Report {
        out.latencies_us.sort_unstable();
        let pct = |p: f64| {
            let v = &out.latencies_us;
            if v.is_empty() { 0.0 } else { f64::from(v[((v.len() as f64 * p) as usize).min(v.len() - 1)]) / 1000.0 }
        };
        let per = |s: f64| s * 1e6 / out.ok.max(1) as f64;
        Report {
            name,
            ok: out.ok,
            failed: out.failed,
            rate: out.ok as f64 / self.seconds,
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
            server_cpu_us: per(self.server_cpu),
            writer_cpu_us: per(self.writer_cpu),
        }
    }
}

/// Time after a switch before recording: the other target's requests in flight finish.
const SETTLE: Duration = Duration::from_millis(200);
const SLICE: Duration = Duration::from_secs(1);

/// One round: `seconds` of recorded load on each target, in alternating slices.
fn run_round(
    client_rt: &tokio::runtime::Runtime,
    targets: &[(Phase, SocketAddr, &'static str)],
    a: &Args,
    bodies: &Arc<Vec<Body>>,
    warmup: u64,
) -> Vec<(Phase, Outcome, Tally)> {
    client_rt.block_on(async {
        let (tx, rx) = tokio::sync::watch::channel(Phase::Idle);
        let record = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        for &(phase, addr, path) in targets {
            let tasks: Vec<_> = (0..a.concurrency)
                .map(|w| {
                    tokio::spawn(worker(addr, path, Arc::clone(bodies), w, phase, rx.clone(), Arc::clone(&record)))
                })
                .collect();
            workers.push((phase, tasks));
        }
        for &(phase, _, _) in targets {
            tx.send_replace(phase);
            tokio::time::sleep(Duration::from_secs(warmup)).await;
        }
        let mut tallies: Vec<Tally> = targets.iter().map(|_| Tally::default()).collect();
        for _ in 0..a.seconds.max(1) {
            for (i, &(phase, _, _)) in targets.iter().enumerate() {
                tx.send_replace(phase);
                tokio::time::sleep(SETTLE).await;
                let cpu_before = thread_cpu_seconds(SERVER_THREADS);
                let writer_before = thread_cpu_seconds(&["hookplane-write"]);
                record.store(true, Ordering::SeqCst);
                let started = Instant::now();
                tokio::time::sleep(SLICE).await;
                record.store(false, Ordering::SeqCst);
                let t = &mut tallies[i];
                t.seconds += started.elapsed().as_secs_f64();
                t.server_cpu += thread_cpu_seconds(SERVER_THREADS) - cpu_before;
                t.writer_cpu += thread_cpu_seconds(&["hookplane-write"]) - writer_before;
            }
        }
        tx.send_replace(Phase::Stop);
        let mut results = Vec::new();
        for ((phase, tasks), tally) in workers.into_iter().zip(tallies) {
            let mut all = Outcome::default();
            for t in tasks {
                let o = t.await.unwrap();
                all.ok += o.ok;
                all.failed += o.failed;
                all.accepted += o.accepted;
                all.latencies_us.extend(o.latencies_us);
            }
            results.push((phase, all, tally));
        }
        results
    })
}

#[poem::handler]
async fn bare_endpoint(body: poem::Body) -> &'static str {
    let _ = body.into_bytes().await;
    "ok"
}

fn main() {
    // `RUST_LOG=hookplane=debug` shows what the server does during the run.
    if let Ok(filter) = std::env::var("RUST_LOG") {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    let a = args();
    let server_rt = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("server").build().unwrap();
    let client_rt = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("loadgen").build().unwrap();
    let bodies = Arc::new(bodies(2026, SECRET));
    let sizes: Vec<usize> = bodies.iter().map(|b| b.bytes.len()).collect();

    // Bare poem endpoint.
    let bare_addr = server_rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
        tokio::spawn(
            poem::Server::new_with_acceptor(acceptor).run(poem::Route::new().at("/", poem::post(bare_endpoint))),
        );
        addr
    });

    // Hookplane on a fresh data directory, with full durability.
    let dir = tempfile::tempdir().unwrap();
    // Settings under study come from the bench's own environment, e.g. HOOKPLANE_SEARCH__COMMIT_INTERVAL_MS.
    let settings = common::settings(dir.path(), SECRET, &[]);
    let (hp_addr, shutdown) = common::serve(&server_rt, settings);

    println!(
        "ingest benchmark: concurrency {}, {} s measured per target and round in alternating 1 s slices after {} s warm-up, {} cores, bodies {}–{} bytes",
        a.concurrency,
        a.seconds,
        a.warmup,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        sizes.iter().min().unwrap(),
        sizes.iter().max().unwrap()
    );
    let mut targets = vec![(Phase::Hookplane, hp_addr, "/shopify/webhook")];
    if !a.only_hookplane {
        targets.push((Phase::Bare, bare_addr, "/"));
    }
    let mut ratios = Vec::new();
    let mut stored = 0u64;
    for round in 1..=a.rounds {
        let warmup = if round == 1 { a.warmup } else { 0 };
        let mut reports = Vec::new();
        for (phase, out, tally) in run_round(&client_rt, &targets, &a, &bodies, warmup) {
            if phase == Phase::Hookplane {
                stored += out.accepted;
            }
            let name = if phase == Phase::Bare { "bare poem (reads body)" } else { "hookplane /shopify/webhook" };
            reports.push(tally.report(name, out));
        }
        println!("round {round}:");
        for r in reports.iter().rev() {
            println!(
                "  {:<28} {:>7.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  server CPU {:>6.1} µs/req ({:.1} writer)  ({} ok, {} failed)",
                r.name, r.rate, r.p50_ms, r.p99_ms, r.server_cpu_us, r.writer_cpu_us, r.ok, r.failed
            );
        }
        let ratio = reports[0].rate / reports.get(1).map_or(f64::NAN, |b| b.rate);
        println!("  ratio hookplane / bare: {ratio:.3}");
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    println!("median ratio over {} rounds: {:.3}", ratios.len(), ratios[ratios.len() / 2]);

    let (tx, handle) = shutdown;
    let _ = tx.send(());
    server_rt.block_on(handle).unwrap().unwrap();
    let db = std::fs::metadata(dir.path().join("data/hookplane.redb")).map(|m| m.len()).unwrap_or(0);
    println!(
        "data file after the run: {:.1} MiB for {stored} deliveries ({:.0} bytes each; redb grows the file by doubling)",
        db as f64 / 1_048_576.0,
        db as f64 / stored.max(1) as f64
    );
}
