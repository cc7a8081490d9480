//! `hookplane reindex`: rebuild the search index from storage, with a progress bar.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::load_settings;
use crate::config::Flags;
use crate::search::indexer;
use crate::storage::deliveries;

#[derive(clap::Args, Debug)]
pub struct ReindexArgs {
    /// Configuration file (default: HOOKPLANE_CONFIG, else the built-in defaults).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (overrides `data_dir` and HOOKPLANE_DATA_DIR).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

pub fn run(args: ReindexArgs) -> anyhow::Result<()> {
    let settings = load_settings(&Flags { config: args.config, data_dir: args.data_dir, ..Flags::default() })?;
    let data_dir = settings.data_dir.clone();
    let in_use = format!(
        "stop it first (or delete {} and restart it: a missing index is rebuilt at start while the server runs)",
        data_dir.join("search").display()
    );
    let store = Arc::new(super::open_stopped_store(&data_dir, &in_use)?);
    let total = deliveries::count(&*store.db()?)?;
    let mut bar = Progress::new(total);
    let dir = data_dir.join("search");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let n = indexer::rebuild(&dir, store, settings.search.clone(), threads, &mut |done| bar.show(done as u64))?;
    bar.done(n as u64, &dir);
    Ok(())
}

/// A bar on a terminal, a line per tenth otherwise (so a log of the run stays short).
struct Progress {
    total: u64,
    started: Instant,
    tty: bool,
    last_tenth: u64,
}

const WIDTH: u64 = 30;

impl Progress {
    fn new(total: u64) -> Self {
        eprintln!("reindexing {total} deliveries");
        Self { total, started: Instant::now(), tty: std::io::stderr().is_terminal(), last_tenth: 0 }
    }

    fn show(&mut self, done: u64) {
        let total = self.total.max(done).max(1);
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
        let eta = if rate > 0.0 { (total - done) as f64 / rate } else { 0.0 };
        if self.tty {
            let filled = (done * WIDTH / total) as usize;
            eprint!(
                "\r[{}{}] {:>3} %  {done}/{total}  {rate:.0}/s  {eta:.0} s left ",
                "#".repeat(filled),
                ".".repeat(WIDTH as usize - filled),
                done * 100 / total
            );
            let _ = std::io::stderr().flush();
        } else if done * 10 / total > self.last_tenth {
            self.last_tenth = done * 10 / total;
            eprintln!("{:>3} %  {done}/{total}  {rate:.0}/s", done * 100 / total);
        }
    }

    fn done(&self, n: u64, dir: &std::path::Path) {
        if self.tty {
            eprintln!();
        }
        eprintln!("indexed {n} deliveries in {:.1} s into {}", self.started.elapsed().as_secs_f64(), dir.display());
    }
}
