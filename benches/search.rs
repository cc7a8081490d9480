//! Read-side benchmark over a large store: fills a data directory with realistic Shopify deliveries across
//! 50 subscriptions (through the real ingest path, in-process), waits until the search index holds them all,
//! then measures typical searches and dashboard loads, sizes, memory, and how long a new delivery takes to
//! become searchable while ingest runs at a steady rate.
//!
//! `cargo bench --bench search -- [--deliveries 1000000] [--dir PATH] [--queries 200] [--lag-seconds 20]
//! [--lag-rate 1000] [--settle-seconds 0] [--lag-during-catch-up]`
//!
//! `--lag-during-catch-up` starts the steady load as soon as the store is open, while the index catches up
//! (after a fill, or with the store's `search` directory deleted, a rebuild), and skips the queries.
//!
//! With `--dir`, the store is kept and reused: a second run skips filling it when it already holds enough
//! deliveries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookplane::app::Core;
use hookplane::config::{Flags, Settings};
use hookplane::control::subscriptions::SubscriptionSpec;
use hookplane::demo::factories::{Factory, shopify_request};
use hookplane::domain::filter::Filter;
use hookplane::domain::{Clock, DeliveryStatus, ManualClock, Source, SystemClock, Timestamp};
use hookplane::loader::{self, Query};
use hookplane::storage::deliveries;

const SECRET: &str = "bench-shopify-secret";
const SHOPS: usize = 10;
const TOPICS: [&str; 5] = ["orders/create", "orders/paid", "products/update", "customers/create", "customers/update"];
/// The fill's span. Retention is set to 30 days, so a store reused within two days loses none of it to
/// the sweep (which would otherwise delete most of it during the measurement).
const DAYS: i64 = 28;
/// Requests in flight while filling the store: enough for group commits of a few dozen.
const FILL_CONCURRENCY: usize = 256;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    deliveries: u64,
    dir: Option<PathBuf>,
    queries: usize,
    lag_seconds: u64,
    lag_rate: u64,
    /// Idle time before the lag run, for merges after a fill or a catch-up to finish.
    settle_seconds: u64,
    lag_during_catch_up: bool,
}

fn args() -> Args {
    let mut a = Args {
        deliveries: 1_000_000,
        dir: None,
        queries: 200,
        lag_seconds: 20,
        lag_rate: 1000,
        settle_seconds: 0,
        lag_during_catch_up: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().expect("a value after the flag");
        match flag.as_str() {
            "--deliveries" => a.deliveries = value().parse().unwrap(),
            "--dir" => a.dir = Some(PathBuf::from(value())),
            "--queries" => a.queries = value().parse().unwrap(),
            "--lag-seconds" => a.lag_seconds = value().parse().unwrap(),
            "--lag-rate" => a.lag_rate = value().parse().unwrap(),
            "--settle-seconds" => a.settle_seconds = value().parse().unwrap(),
            "--lag-during-catch-up" => a.lag_during_catch_up = true,
            "--bench" => {}
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn shop(i: usize) -> String {
    format!("bench-shop-{i}.myshopify.com")
}

fn body(f: &mut Factory, topic: &str, n: u64, at: Timestamp) -> Vec<u8> {
    match topic {
        "orders/create" | "orders/paid" => f.shopify_order(10_000 + n, at),
        "products/update" => f.shopify_product(at),
        _ => f.shopify_customer(at),
    }
}

fn settings(dir: &Path) -> Settings {
    let env: BTreeMap<String, String> = [
        ("HOOKPLANE_MASTER_KEY", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"),
        ("SHOPIFY_WEBHOOK_SECRET", SECRET),
        ("HOOKPLANE_LOG", "warn"),
        ("HOOKPLANE_RETENTION__DAYS", "30"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .chain(std::env::vars().filter(|(k, _)| k.starts_with("HOOKPLANE_")))
    .collect();
    Settings::load(&Flags { data_dir: Some(dir.to_path_buf()), ..Flags::default() }, &env).unwrap()
}

/// Fills the store with `n` deliveries spread over the last 30 days, newest last.
async fn fill(core: &Arc<Core>, clock: &ManualClock, n: u64, end: Timestamp) {
    let existing = hookplane::storage::subscriptions::list(&*core.store.db().unwrap()).unwrap().len();
    if existing == 0 {
        for s in 0..SHOPS {
            for topic in TOPICS {
                let name = format!("shop{s}-{}", topic.replace('/', "-"));
                let spec = SubscriptionSpec {
                    source: Some(Source::Shopify),
                    topic: topic.into(),
                    account: shop(s),
                    name: Some(name),
                    ..SubscriptionSpec::default()
                };
                core.control.create(spec, hookplane::domain::audit::Actor::cli()).await.unwrap();
            }
        }
    }
    let started = Instant::now();
    let chunks = n.div_ceil(FILL_CONCURRENCY as u64);
    let span = DAYS * 86_400_000;
    let mut f = Factory::new(7);
    let mut sent = 0u64;
    for chunk in 0..chunks {
        let at = end.plus_millis(-span + (span as u128 * u128::from(chunk) / u128::from(chunks)) as i64);
        clock.set(at);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..FILL_CONCURRENCY.min((n - sent) as usize) {
            let topic = TOPICS[(sent % 5) as usize];
            let req = shopify_request(
                topic,
                &shop((sent / 5 % SHOPS as u64) as usize),
                body(&mut f, topic, sent, at),
                SECRET.as_bytes(),
                &f.uuid(),
                at,
            );
            let core = Arc::clone(core);
            set.spawn(async move { hookplane::demo::send(&core, &req).await.unwrap() });
            sent += 1;
        }
        set.join_all().await;
        if chunk % 400 == 0 {
            let secs = started.elapsed().as_secs_f64();
            eprintln!("  filled {sent}/{n} ({:.0}/s)", sent as f64 / secs.max(0.001));
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!("filled {sent} deliveries in {secs:.0} s ({:.0}/s)", sent as f64 / secs);
}

fn dir_size(p: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(p) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

fn memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status.lines().find(|l| l.starts_with(name)).map_or("?".into(), |l| l[name.len()..].trim().to_owned())
    };
    format!(
        "RssAnon {}, RssFile {} (the kernel can drop these), VmRSS {}, VmHWM {}; peak RssAnon so far {} kB",
        field("RssAnon:"),
        field("RssFile:"),
        field("VmRSS:"),
        field("VmHWM:"),
        PEAK_ANON_KB.load(std::sync::atomic::Ordering::Relaxed)
    )
}

/// The largest anonymous resident memory seen, sampled every 100 ms: the kernel keeps no peak of it.
static PEAK_ANON_KB: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn sample_anonymous_memory() {
    std::thread::spawn(|| {
        loop {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            let kb = status
                .lines()
                .find_map(|l| l.strip_prefix("RssAnon:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0);
            PEAK_ANON_KB.fetch_max(kb, std::sync::atomic::Ordering::Relaxed);
            #[allow(clippy::disallowed_methods)] // a plain thread of the benchmark's own
            std::thread::sleep(Duration::from_millis(100));
        }
    });
}

fn percentiles(mut v: Vec<Duration>) -> String {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0;
    format!("p50 {:>7.2} ms  p95 {:>7.2} ms  max {:>7.2} ms", at(0.5), at(0.95), at(1.0))
}

fn main() {
    // `RUST_LOG=hookplane=debug` shows what the indexer does during the run.
    if let Ok(filter) = std::env::var("RUST_LOG") {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    let a = args();
    sample_anonymous_memory();
    let keep = a.dir.clone();
    let tmp = tempfile::tempdir().unwrap();
    let dir = keep.unwrap_or_else(|| tmp.path().join("data"));
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let end = SystemClock.now();
    let clock = Arc::new(ManualClock::new(end));
    let core = Arc::new(rt.block_on(Core::start(settings(&dir), clock.clone())).unwrap());
    let db = core.store.db().unwrap();
    let stored = deliveries::count(&db).unwrap();
    println!(
        "search benchmark: {} cores, store {}",
        std::thread::available_parallelism().unwrap().get(),
        dir.display()
    );
    if stored < a.deliveries {
        rt.block_on(fill(&core, &clock, a.deliveries - stored, end));
    } else {
        println!("reusing {stored} stored deliveries");
    }
    clock.set(SystemClock.now());
    let total = deliveries::count(&db).unwrap();

    if !a.lag_during_catch_up {
        let started = Instant::now();
        let indexed = core.search.num_docs();
        // The fill's last order: the end of a burst is what operators look for first.
        let orders = Filter { topic: Some("orders/paid".into()), ..Filter::default() };
        let last = deliveries::list(&db, &orders, None, 1).unwrap().items.remove(0);
        let order: serde_json::Value =
            serde_json::from_slice(&deliveries::get_full(&db, last.delivery.id).unwrap().unwrap().1.body).unwrap();
        let last_order =
            Query { text: Some(order["checkout_token"].as_str().unwrap().to_owned()), limit: 1, ..Query::default() };
        let mut last_found = None;
        rt.block_on(async {
            while core.search.num_docs() < total {
                if last_found.is_none()
                    && !loader::deliveries_page(&db, &core.search, &last_order).unwrap().items.is_empty()
                {
                    last_found = Some(started.elapsed().as_secs_f64());
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        let secs = started.elapsed().as_secs_f64();
        println!(
            "index holds all {total} deliveries {secs:.0} s after the fill ended: it held {indexed} then, and caught up \
         {:.0}/s with ingest idle; the fill's last order was searchable after {:.1} s",
            (total - indexed.min(total)) as f64 / secs.max(0.001),
            last_found.unwrap_or(secs)
        );

        // Words that occur in the data: a city (common), a last name (rarer), an email and a checkout token from
        // a stored order.
        // Older than a day: the lag probes of an earlier run on the same store are newer and carry no order.
        let filled = Filter {
            topic: Some("orders/paid".into()),
            to: Some(SystemClock.now().plus_millis(-86_400_000)),
            ..Filter::default()
        };
        let middle = deliveries::list(&db, &filled, None, 1).unwrap().items.remove(0);
        let probe: serde_json::Value =
            serde_json::from_slice(&deliveries::get_full(&db, middle.delivery.id).unwrap().unwrap().1.body).unwrap();
        let email = probe["customer"]["email"].as_str().unwrap().to_owned();
        let token = probe["checkout_token"].as_str().unwrap().to_owned();
        let last_name = probe["customer"]["last_name"].as_str().unwrap().to_owned();
        let now = clock.now();
        let day = Some(now.plus_millis(-86_400_000));
        let searches: Vec<(&str, Query)> = vec![
            ("common word (Berlin)", Query { text: Some("Berlin".into()), limit: 50, ..Query::default() }),
            ("rare value (checkout token)", Query { text: Some(token), limit: 50, ..Query::default() }),
            (
                "email field query",
                Query { text: Some(format!("customer.email:\"{email}\"")), limit: 50, ..Query::default() },
            ),
            (
                "word + source, topic, last 24 h",
                Query {
                    text: Some(last_name),
                    filter: Filter {
                        source: Some(Source::Shopify),
                        topic: Some("orders/paid".into()),
                        from: day,
                        ..Filter::default()
                    },
                    limit: 50,
                    ..Query::default()
                },
            ),
        ];
        let loads: Vec<(&str, Query)> = vec![
            ("dashboard, no filter", Query { limit: 50, ..Query::default() }),
            (
                "dashboard, topic filter",
                Query {
                    filter: Filter { topic: Some("customers/update".into()), ..Filter::default() },
                    limit: 50,
                    ..Query::default()
                },
            ),
            (
                "dashboard, shop + last 24 h",
                Query {
                    filter: Filter { account: Some(shop(3)), from: day, ..Filter::default() },
                    limit: 50,
                    ..Query::default()
                },
            ),
            (
                "dashboard, status filter",
                Query {
                    filter: Filter { status: Some(DeliveryStatus::Stored), ..Filter::default() },
                    limit: 50,
                    ..Query::default()
                },
            ),
        ];
        println!("\nqueries ({} each, one page of 50, newest first, server-side time):", a.queries);
        for (name, q) in &searches {
            let mut times = Vec::with_capacity(a.queries);
            let mut found = 0;
            for _ in 0..a.queries {
                let t = Instant::now();
                found = loader::deliveries_page(&db, &core.search, q).unwrap().items.len();
                times.push(t.elapsed());
            }
            println!("  search {name:<34} {}  ({found} on the page)", percentiles(times));
        }
        for (name, q) in &loads {
            let mut times = Vec::with_capacity(a.queries);
            for _ in 0..a.queries {
                let t = Instant::now();
                let p = loader::load(&db, &core.search, q, now, &Default::default()).unwrap();
                assert_eq!(p.overview.subscriptions.len(), SHOPS * TOPICS.len());
                times.push(t.elapsed());
            }
            println!("  loader {name:<34} {}", percentiles(times));
        }

        let mut raw = 0u64;
        let mut after = None;
        loop {
            let batch = deliveries::scan(&db, after, 4096).unwrap();
            let Some((last, _)) = batch.last() else { break };
            after = Some(last.id);
            raw += batch.iter().map(|(d, _)| d.size_bytes).sum::<u64>();
        }
        let index = dir_size(&dir.join("search"));
        let store = std::fs::metadata(dir.join(hookplane::storage::DB_FILE)).map_or(0, |m| m.len());
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        println!(
            "\nsizes: raw bodies {:.2} GiB; search index {:.2} GiB ({:.2}× the bodies); redb file {:.2} GiB",
            gib(raw),
            gib(index),
            index as f64 / raw as f64,
            gib(store)
        );
        println!("memory after queries: {}", memory());
    }
    PEAK_ANON_KB.store(0, std::sync::atomic::Ordering::Relaxed);

    // Lag: a steady stream of orders, and every 100 ms a probe with a word of its own, searched for until
    // found. The time from acknowledgement to first found is the lag an operator sees.
    rt.block_on(async { tokio::time::sleep(Duration::from_secs(a.settle_seconds)).await });
    println!("\nlag at a steady {} deliveries/s for {} s:", a.lag_rate, a.lag_seconds);
    clock.set(SystemClock.now());
    // Seeds and probe words of their own: on a reused store, the webhook ids of an earlier run would be
    // answered as duplicates and its probe words would already be found.
    let run = u64::try_from(SystemClock.now().millis()).unwrap();
    let before = deliveries::count(&db).unwrap();
    let behind = core.search.lag(&db, u64::MAX).unwrap();
    let docs_before = core.search.num_docs();
    let lag_started = Instant::now();
    let lags = rt.block_on(async {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let load = {
            let (core, stop) = (Arc::clone(&core), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut f = Factory::new(run);
                let every = Duration::from_secs_f64(1.0 / a.lag_rate as f64);
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    tick.tick().await;
                    let at = SystemClock.now();
                    let req = shopify_request(
                        "orders/create",
                        &shop(0),
                        f.shopify_order(n, at),
                        SECRET.as_bytes(),
                        &f.uuid(),
                        at,
                    );
                    let core = Arc::clone(&core);
                    tokio::spawn(async move { hookplane::demo::send(&core, &req).await.unwrap() });
                    n += 1;
                }
            })
        };
        let mut lags = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(a.lag_seconds);
        let mut f = Factory::new(run + 1);
        let mut i = 0u64;
        while Instant::now() < deadline {
            let word = format!("lagprobe{run}x{i}");
            let at = SystemClock.now();
            let body = serde_json::json!({"note": word, "id": i}).to_string().into_bytes();
            let req = shopify_request("orders/paid", &shop(1), body, SECRET.as_bytes(), &f.uuid(), at);
            hookplane::demo::send(&core, &req).await.unwrap();
            let acked = Instant::now();
            let q = Query { text: Some(word), limit: 1, ..Query::default() };
            loop {
                if !loader::deliveries_page(&db, &core.search, &q).unwrap().items.is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            lags.push(acked.elapsed());
            i += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        load.await.unwrap();
        lags
    });
    let stored = deliveries::count(&db).unwrap().saturating_sub(before);
    println!(
        "  stored {stored} deliveries ({:.0}/s); acknowledged → searchable over {} probes: {}",
        stored as f64 / lag_started.elapsed().as_secs_f64(),
        lags.len(),
        percentiles(lags)
    );
    println!(
        "  the index's last commit was {behind} deliveries behind storage when the load began, {} at its end; \
         it holds {} more documents",
        core.search.lag(&db, u64::MAX).unwrap(),
        core.search.num_docs().saturating_sub(docs_before)
    );
    println!("memory during and after the steady load: {}", memory());
    drop(db);
    // The load's last requests may still hold the core for a moment.
    rt.block_on(async {
        for _ in 0..100 {
            if Arc::strong_count(&core) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    match Arc::try_unwrap(core) {
        Ok(core) => rt.block_on(core.stop()).unwrap(),
        Err(core) => {
            eprintln!("{} references to the core remain; exiting without a clean stop", Arc::strong_count(&core))
        }
    }
}
