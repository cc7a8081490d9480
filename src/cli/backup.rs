//! `hookplane backup` and `hookplane restore`: a running instance's store copied to a file, checked, and put
//! back in place on a stopped one.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;

use super::subscriptions::{Target, connection};
use super::{load_settings, problem_detail, runtime};
use crate::config::Flags;
use crate::storage::backup;

#[derive(clap::Args, Debug)]
pub struct BackupArgs {
    /// The file to write; it must not exist.
    #[arg(long, value_name = "FILE")]
    to: PathBuf,
    /// Copy the store of a stopped instance in this directory instead of asking a running one.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The running instance (HOOKPLANE_ADMIN_TOKEN authenticates).
    #[command(flatten)]
    target: Target,
}

#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// A file written by `hookplane backup`.
    #[arg(long, value_name = "FILE")]
    from: PathBuf,
    /// The data directory of the stopped instance (default: data_dir of the configuration).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Configuration file (default: HOOKPLANE_CONFIG, else the built-in defaults).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Put the backup in place of an existing store, which is kept beside it under a new name.
    #[arg(long)]
    replace: bool,
}

pub fn run_backup(args: BackupArgs) -> anyhow::Result<()> {
    if args.to.exists() {
        anyhow::bail!("{} exists already; choose a new file name", args.to.display());
    }
    let started = Instant::now();
    let part = part_of(&args.to);
    let _ = std::fs::remove_file(&part);
    let written = match &args.data_dir {
        Some(dir) => local(dir, &part),
        None => download(&args.target, &part),
    };
    let (schema, deliveries) = match written.and_then(|expected| check(&part, expected)) {
        Ok(found) => found,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    std::fs::rename(&part, &args.to).with_context(|| format!("cannot name the backup {}", args.to.display()))?;
    if let Some(dir) = args.to.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    let size = std::fs::metadata(&args.to).map(|m| m.len()).unwrap_or(0);
    let _ = writeln!(
        std::io::stdout(),
        "backup of {deliveries} deliveries (storage schema {schema}, {:.1} MiB) written to {} in {:.1} s",
        size as f64 / 1_048_576.0,
        args.to.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn part_of(to: &Path) -> PathBuf {
    let mut name = to.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".part");
    to.with_file_name(name)
}

/// What the file must hold, as the server announced it: its size and deliveries.
type Expected = Option<(u64, u64)>;

fn local(dir: &Path, part: &Path) -> anyhow::Result<Expected> {
    // Read-only: a backup taken before an upgrade must not be upgraded by the binary that takes it.
    let db = match crate::storage::open_read_only(dir) {
        Ok(db) => db,
        Err(crate::storage::StoreError::Locked(path)) => {
            anyhow::bail!("{} is in use by a running Hookplane: leave out --data-dir to ask it instead", path.display())
        }
        Err(e) => return Err(e).with_context(|| format!("cannot open the store in {}", dir.display())),
    };
    backup::snapshot(&db, part, &mut |_| true).with_context(|| format!("cannot write {}", part.display()))?;
    Ok(None)
}

fn download(target: &Target, part: &Path) -> anyhow::Result<Expected> {
    let (base, token) = connection(target)?;
    let url = super::handshake::api_url(&base, &["backup"])?;
    runtime()?.block_on(async {
        let mut resp = reqwest::Client::new()
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = resp.status();
        if !status.is_success() {
            anyhow::bail!("{url} answered {status}: {}", problem_detail(resp.text().await.unwrap_or_default()));
        }
        let header = |name: &str| -> anyhow::Result<u64> {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .with_context(|| format!("{url} answered without a valid {name} header: is it a Hookplane?"))
        };
        let expected = (header("x-hookplane-backup-size")?, header("x-hookplane-backup-deliveries")?);
        // Every payload is in it: readable by its owner only.
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(part)
            .with_context(|| format!("cannot create {}", part.display()))?;
        while let Some(chunk) = resp.chunk().await.with_context(|| format!("the download from {url} broke off"))? {
            file.write_all(&chunk).with_context(|| format!("cannot write {}", part.display()))?;
        }
        file.sync_all().with_context(|| format!("cannot flush {}", part.display()))?;
        Ok(Some(expected))
    })
}

/// Checks the written file as a restore would; against what the server announced, when it did.
fn check(part: &Path, expected: Expected) -> anyhow::Result<(u64, u64)> {
    if let Some((size, _)) = expected {
        let got = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
        if got != size {
            anyhow::bail!("the backup is incomplete: {got} of {size} bytes arrived");
        }
    }
    let (schema, deliveries) = backup::verify(part)?;
    if let Some((_, announced)) = expected
        && announced != deliveries
    {
        anyhow::bail!("the backup holds {deliveries} deliveries, but the server announced {announced}");
    }
    Ok((schema, deliveries))
}

pub fn run_restore(args: RestoreArgs) -> anyhow::Result<()> {
    let settings = load_settings(&Flags { config: args.config, data_dir: args.data_dir, ..Flags::default() })?;
    use crate::domain::Clock as _;
    // A name part without colons: 20261207T031500Z.
    let suffix: String =
        crate::domain::SystemClock.now().to_rfc3339().chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let restored = backup::restore(&args.from, &settings.data_dir, args.replace, &suffix)?;
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "restored {} deliveries (storage schema {}) into {}",
        restored.deliveries,
        restored.schema,
        settings.data_dir.display()
    );
    if let Some(aside) = &restored.replaced {
        let _ = writeln!(out, "the store that was there is kept as {}", aside.display());
    }
    let latest = crate::storage::migrations::latest();
    if restored.schema < latest {
        let _ = writeln!(out, "the next start upgrades it from storage schema {} to {latest}", restored.schema);
    }
    let _ = writeln!(out, "the search index is rebuilt from the restored deliveries at the next start");
    Ok(())
}
