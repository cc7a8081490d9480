//! `hookplane compact`: gives the space retention freed back to the filesystem, with the server stopped.
//! While it runs, freed pages are reused by new deliveries, so the file stops growing at steady state
//! without this; compaction only shrinks it.

use std::io::Write as _;
use std::path::PathBuf;

use super::load_settings;
use crate::config::Flags;

#[derive(clap::Args, Debug)]
pub struct CompactArgs {
    /// Configuration file (default: HOOKPLANE_CONFIG, else the built-in defaults).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (overrides `data_dir` and HOOKPLANE_DATA_DIR).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

pub fn run(args: CompactArgs) -> anyhow::Result<()> {
    let settings = load_settings(&Flags { config: args.config, data_dir: args.data_dir, ..Flags::default() })?;
    let store = super::open_stopped_store(&settings.data_dir, "stop it first: compaction needs the store to itself")?;
    let (before, after) = store.compact()?;
    store.close();
    let mib = |b: u64| b as f64 / 1_048_576.0;
    let _ = writeln!(
        std::io::stdout(),
        "compacted {}: {:.1} MiB → {:.1} MiB ({:.1} MiB given back)",
        settings.data_dir.join(crate::storage::DB_FILE).display(),
        mib(before),
        mib(after),
        mib(before.saturating_sub(after))
    );
    Ok(())
}
