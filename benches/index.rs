//! What indexing one delivery costs: fills a store with Shopify orders (2.8–3.7 KB) through the real ingest
//! path, stops, then indexes them all again as the live indexer does (one tantivy thread, its memory, a
//! commit every `--commit-docs`), and reports the CPU time of the whole process per order: the indexer's
//! thread, tantivy's, and its merges. Reading and decoding the payloads from redb is measured alone too.
//!
//! `cargo bench --bench index -- [--orders 20000] [--commit-docs 500] [--rounds 3] [--dir PATH]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use hookplane::app::Core;
use hookplane::control::subscriptions::SubscriptionSpec;
use hookplane::demo::factories::{Factory, shopify_request};
use hookplane::domain::{Clock, Source, SystemClock};
use hookplane::search::indexer;
use hookplane::storage::{Store, deliveries, payload};

#[allow(dead_code)] // the load generators' parts of it
mod common;

const SECRET: &[u8] = b"bench-shopify-secret";
const SHOP: &str = "bench-shop.myshopify.com";

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    orders: u64,
    commit_docs: usize,
    rounds: usize,
    dir: Option<PathBuf>,
}

fn args() -> Args {
    let mut a = Args { orders: 20_000, commit_docs: 500, rounds: 3, dir: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().expect("a value after the flag");
        match flag.as_str() {
            "--orders" => a.orders = value().parse().unwrap(),
            "--commit-docs" => a.commit_docs = value().parse().unwrap(),
            "--rounds" => a.rounds = value().parse().unwrap(),
            "--dir" => a.dir = Some(PathBuf::from(value())),
            "--bench" => {}
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// CPU time of the whole process so far (every thread, user and system), in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // The fields after the command name, which is in brackets and may hold spaces.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // Linux counts these in USER_HZ, which is 100 on every architecture.
    ticks / 100.0
}

fn fill(dir: &std::path::Path, orders: u64) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let settings = common::settings(dir, SECRET, &[]);
    rt.block_on(async {
        let core = Arc::new(Core::start_without_queue(settings, Arc::new(SystemClock)).await.unwrap());
        let spec = SubscriptionSpec {
            source: Some(Source::Shopify),
            topic: "orders/create".into(),
            account: SHOP.into(),
            name: Some("orders".into()),
            ..SubscriptionSpec::default()
        };
        core.control.create(spec, hookplane::domain::audit::Actor::cli()).await.unwrap();
        let mut f = Factory::new(11);
        let mut sent = 0;
        while sent < orders {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..256.min(orders - sent) {
                let at = SystemClock.now();
                let req = shopify_request("orders/create", SHOP, f.shopify_order(sent, at), SECRET, &f.uuid(), at);
                let core = Arc::clone(&core);
                set.spawn(async move { hookplane::demo::send(&core, &req).await.unwrap() });
                sent += 1;
            }
            set.join_all().await;
        }
        Arc::try_unwrap(core).ok().expect("the core is no longer shared").stop().await.unwrap();
    });
}

fn main() {
    let a = args();
    let tmp = tempfile::tempdir().unwrap();
    let dir = a.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let data = dir.join("data");
    let store = Store::open(&data).ok().filter(|s| deliveries::count(&s.db().unwrap()).unwrap() >= a.orders);
    let store = Arc::new(match store {
        Some(s) => s,
        None => {
            fill(&dir, a.orders);
            Store::open(&data).unwrap()
        }
    });
    let db = store.db().unwrap();
    let total = deliveries::count(&db).unwrap();
    let mut bytes = 0u64;
    let cpu = cpu_seconds();
    let mut after = None;
    loop {
        let batch = deliveries::scan(&db, after, 512).unwrap();
        let Some((last, _)) = batch.last() else { break };
        after = Some(last.id);
        bytes += batch.iter().map(|(_, p)| payload::decode(p).unwrap().body.len() as u64).sum::<u64>();
    }
    let read = (cpu_seconds() - cpu) / total as f64 * 1e6;
    drop(db);
    println!(
        "index benchmark: {} cores, {total} orders of {:.1} KB on average; reading and decoding them: {read:.1} µs of CPU each",
        std::thread::available_parallelism().unwrap().get(),
        bytes as f64 / total as f64 / 1000.0,
    );
    let mut settings = common::settings(&dir, SECRET, &[]).search;
    settings.commit_docs = a.commit_docs;
    let index_dir = dir.join("bench-index");
    let mut per_order = Vec::new();
    for round in 1..=a.rounds {
        let (cpu, wall) = (cpu_seconds(), Instant::now());
        let n = indexer::rebuild(&index_dir, Arc::clone(&store), settings.clone(), 1, &mut |_| {}).unwrap();
        assert_eq!(n as u64, total);
        let us = (cpu_seconds() - cpu) / n as f64 * 1e6;
        let size = std::fs::read_dir(&index_dir).unwrap().flatten().map(|e| e.metadata().unwrap().len()).sum::<u64>();
        println!(
            "  round {round}: {us:.0} µs of CPU per order (reading included), {:.0} orders/s, index {:.1} MiB",
            n as f64 / wall.elapsed().as_secs_f64(),
            size as f64 / (1 << 20) as f64
        );
        per_order.push(us);
    }
    per_order.sort_by(f64::total_cmp);
    println!(
        "median: {:.0} µs of CPU per order, commits every {} orders",
        per_order[per_order.len() / 2],
        a.commit_docs
    );
}
