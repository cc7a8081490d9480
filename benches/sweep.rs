//! Ingest while background work runs over the whole store: does it raise ingest's latency beyond the
//! machine's noise? One Hookplane under a constant load of correctly signed Shopify orders; its store first
//! filled with `--prefill` deliveries. The run alternates one-second slices in which the work runs with
//! slices in which it waits, so both are measured under the same load and the same neighbours. The work is
//! the retention sweep (a one-day retention finds the prefill expired; the service's own batches, with its
//! pause between them) or, with `--during backup`, backups taken one after another as `GET /api/v1/backup`
//! takes them, each read to the end.
//!
//! `--rate N` holds the load to N requests a second once the store is filled (by default, as fast as the
//! connections go).
//!
//! `cargo bench --bench sweep -- [--during sweep|backup] [--prefill 400000] [--rate 0] [--concurrency 64]
//! [--seconds 10] [--rounds 3]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Body, bodies, shopify_request};
use hookplane::domain::{Clock, ManualClock, SystemClock};
use hookplane::retention::{BETWEEN_BATCHES, Totals};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;

const SECRET: &[u8] = b"bench-shopify-secret";
const DAY_MS: i64 = 86_400_000;
const SETTLE: Duration = Duration::from_millis(200);
const SLICE: Duration = Duration::from_secs(1);

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    backup: bool,
    /// Requests per second across all connections once the store is filled; 0: as fast as they go.
    rate: u64,
    prefill: u64,
    concurrency: usize,
    seconds: u64,
    rounds: usize,
}

fn args() -> Args {
    let mut a = Args { backup: false, rate: 0, prefill: 400_000, concurrency: 64, seconds: 10, rounds: 3 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--during" {
            a.backup = match it.next().as_deref() {
                Some("sweep") => false,
                Some("backup") => true,
                other => panic!("--during sweep or --during backup, not {other:?}"),
            };
            continue;
        }
        let mut value = || it.next().and_then(|v| v.parse::<u64>().ok()).expect("a number after the flag");
        match flag.as_str() {
            "--prefill" => a.prefill = value(),
            "--rate" => a.rate = value(),
            "--concurrency" => a.concurrency = value() as usize,
            "--seconds" => a.seconds = value(),
            "--rounds" => a.rounds = (value() as usize).clamp(1, 63),
            "--bench" => {}
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// What the slice being recorded is: nothing (settling), the sweep deleting, or the sweep waiting.
const NONE: u8 = 0;
const SWEEPING: u8 = 1;
const QUIET: u8 = 2;

/// A slice's tag: its round in the high bits, `SWEEPING` or `QUIET` in the low two.
fn tag(round: usize, which: u8) -> u8 {
    (u8::try_from(round).unwrap() << 2) | which
}

#[derive(Default)]
struct Latencies {
    /// (slice tag, microseconds)
    recorded: Vec<(u8, u32)>,
    failed: u64,
}

/// One keep-alive connection sending back to back until `stop`; each latency goes to the slice it
/// started and ended in (requests straddling a switch are not recorded).
async fn worker(
    addr: SocketAddr,
    bodies: Arc<Vec<Body>>,
    w: usize,
    slice: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    interval: Arc<AtomicU64>,
) -> Latencies {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut out = Latencies::default();
    let mut n = 0usize;
    let mut next = tokio::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        // Paced: each connection sends once per `interval` microseconds, on a schedule, not after a gap.
        let every = interval.load(Ordering::Relaxed);
        if every > 0 {
            next = next.max(tokio::time::Instant::now() - Duration::from_micros(every)) + Duration::from_micros(every);
            tokio::time::sleep_until(next).await;
        }
        let body = &bodies[(w * 7919 + n) % bodies.len()];
        n += 1;
        let req = shopify_request("/shopify/webhook", body, "bench-shop.myshopify.com");
        let at_start = slice.load(Ordering::Relaxed);
        let started = Instant::now();
        sender.ready().await.unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let ok = resp.status().is_success();
        resp.into_body().collect().await.unwrap();
        let us = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
        sent.fetch_add(u64::from(ok), Ordering::Relaxed);
        if !ok {
            out.failed += 1;
        }
        if ok && at_start & 3 != NONE && slice.load(Ordering::Relaxed) == at_start {
            out.recorded.push((at_start, us));
        }
    }
    out
}

fn pct(v: &[u32], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    f64::from(v[((v.len() as f64 * p) as usize).min(v.len() - 1)]) / 1000.0
}

fn main() {
    let a = args();
    let server_rt = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("server").build().unwrap();
    let client_rt = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("loadgen").build().unwrap();
    let bodies = Arc::new(bodies(2026, SECRET));
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings(
        dir.path(),
        SECRET,
        &[("HOOKPLANE_RETENTION__DAYS", "1"), ("HOOKPLANE_RETENTION__SWEEP_INTERVAL_MINUTES", "1440")],
    );
    let batch = settings.retention.batch;
    // The prefill arrives two days ago by the server's clock; then the clock moves to now, and a one-day
    // retention finds all of it expired.
    let clock = Arc::new(ManualClock::new(SystemClock.now().plus_millis(-2 * DAY_MS)));
    let (addr, retention, control, shutdown) = server_rt.block_on(async {
        let core = hookplane::app::Core::start(settings, clock.clone()).await.unwrap();
        let retention = Arc::clone(&core.retention);
        let control = Arc::clone(&core.control);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(hookplane::app::serve_core(core, listener, async move {
            let _ = rx.await;
        }));
        (addr, retention, control, (tx, handle))
    });

    let slice = Arc::new(AtomicU8::new(NONE));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let interval = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..a.concurrency)
        .map(|w| {
            client_rt.spawn(worker(
                addr,
                Arc::clone(&bodies),
                w,
                Arc::clone(&slice),
                Arc::clone(&stop),
                Arc::clone(&sent),
                Arc::clone(&interval),
            ))
        })
        .collect();
    let started = Instant::now();
    while sent.load(Ordering::Relaxed) < a.prefill {
        client_rt.block_on(async { tokio::time::sleep(Duration::from_millis(100)).await });
    }
    println!(
        "{} benchmark: concurrency {}, {} cores, batch {batch}; prefilled {} deliveries in {:.1} s",
        if a.backup { "backup" } else { "sweep" },
        a.concurrency,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        sent.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    clock.set(SystemClock.now());
    if let Some(every) = (a.concurrency as u64 * 1_000_000).checked_div(a.rate) {
        interval.store(every, Ordering::Relaxed);
    }
    let store_file = dir.path().join("data").join("hookplane.redb");
    let mib = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len()) as f64 / 1_048_576.0;
    let size_before = mib(&store_file);

    // The sweep as the service runs it, but only while the slice says so.
    let sweeping = Arc::new(AtomicBool::new(false));
    let deleted = Arc::new(AtomicU64::new(0));
    let sweeper = {
        let (sweeping, deleted) = (Arc::clone(&sweeping), Arc::clone(&deleted));
        server_rt.spawn(async move {
            loop {
                // A batch and the service's own pause after it; between sweeping slices, a short wait.
                let mut t = Totals::default();
                if !sweeping.load(Ordering::Relaxed) || !retention.sweep_batch(1, &mut t).await.unwrap() {
                    tokio::time::sleep(BETWEEN_BATCHES).await;
                }
                deleted.fetch_add(t.deleted as u64, Ordering::Relaxed);
            }
        })
    };
    // A backup as `GET /api/v1/backup` takes it, read to the end; how long it took.
    let backup = || {
        let control = Arc::clone(&control);
        let t0 = Instant::now();
        server_rt
            .block_on(server_rt.spawn(async move {
                let taken = control.backups().take(hookplane::domain::audit::Actor::system()).await.unwrap();
                let mut file = tokio::fs::File::from_std(taken.file);
                tokio::io::copy(&mut file, &mut tokio::io::sink()).await.unwrap();
            }))
            .unwrap();
        t0.elapsed()
    };
    let mut backup_ms = Vec::new();

    let mut rounds = Vec::new();
    for round in 0..a.rounds {
        let (mut in_sweep, mut in_quiet) = (Duration::ZERO, Duration::ZERO);
        let (before_ok, before_deleted) = (sent.load(Ordering::Relaxed), deleted.load(Ordering::Relaxed));
        let mut ok = [0u64; 2];
        for _ in 0..a.seconds {
            // With backups, a slice lasts one backup, and the quiet slice after it as long.
            let mut length = SLICE;
            for (i, which) in [SWEEPING, QUIET].into_iter().enumerate() {
                sweeping.store(which == SWEEPING && !a.backup, Ordering::Relaxed);
                slice.store(NONE, Ordering::Relaxed);
                client_rt.block_on(async { tokio::time::sleep(SETTLE).await });
                let n0 = sent.load(Ordering::Relaxed);
                let t0 = Instant::now();
                slice.store(tag(round, which), Ordering::Relaxed);
                if a.backup && which == SWEEPING {
                    length = backup();
                    backup_ms.push(length.as_millis());
                    deleted.fetch_add(1, Ordering::Relaxed);
                } else {
                    client_rt.block_on(async { tokio::time::sleep(length).await });
                }
                slice.store(NONE, Ordering::Relaxed);
                ok[i] += sent.load(Ordering::Relaxed) - n0;
                if which == SWEEPING { in_sweep += t0.elapsed() } else { in_quiet += t0.elapsed() }
            }
        }
        rounds.push((
            ok,
            in_sweep,
            in_quiet,
            sent.load(Ordering::Relaxed) - before_ok,
            deleted.load(Ordering::Relaxed) - before_deleted,
        ));
    }
    sweeping.store(false, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let per_worker: Vec<Latencies> = client_rt.block_on(async {
        let mut v = Vec::new();
        for w in workers {
            v.push(w.await.unwrap());
        }
        v
    });
    let failed: u64 = per_worker.iter().map(|l| l.failed).sum();
    let of = |t: u8| {
        let mut v: Vec<u32> =
            per_worker.iter().flat_map(|l| l.recorded.iter().filter(|(g, _)| *g == t).map(|(_, us)| *us)).collect();
        v.sort_unstable();
        v
    };
    let line = |name: &str, v: &[u32], rate: f64| {
        println!(
            "  {name:<15} {rate:>6.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  p99.9 {:>6.2} ms  max {:>7.2} ms",
            pct(v, 0.50),
            pct(v, 0.99),
            pct(v, 0.999),
            pct(v, 1.0)
        );
    };
    for (r, (ok, s, q, _, del)) in rounds.iter().enumerate() {
        if a.backup {
            println!("round {}: {del} backups taken", r + 1);
        } else {
            println!("round {}: the sweep deleted {del} ({:.0}/s while it ran)", r + 1, *del as f64 / s.as_secs_f64());
        }
        line(
            if a.backup { "during backups" } else { "while sweeping" },
            &of(tag(r, SWEEPING)),
            ok[0] as f64 / s.as_secs_f64(),
        );
        line("quiet", &of(tag(r, QUIET)), ok[1] as f64 / q.as_secs_f64());
    }
    if a.backup {
        let mut ms = backup_ms;
        ms.sort_unstable();
        println!(
            "backups: {} taken, {} ms each at the median (longest {} ms); the data file grew from {size_before:.1} MiB to {:.1} MiB",
            ms.len(),
            ms.get(ms.len() / 2).copied().unwrap_or(0),
            ms.last().copied().unwrap_or(0),
            mib(&store_file)
        );
    }
    println!("failed requests: {failed}");
    sweeper.abort();
    let (tx, handle) = shutdown;
    let _ = tx.send(());
    server_rt.block_on(handle).unwrap().unwrap();
}
