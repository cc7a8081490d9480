//! `hookplane check`: everything a start needs, checked without starting: the configuration and the
//! environment, the data directory and its free space, the master key against the secrets already sealed,
//! the alert sinks, and the destination URLs. Each check prints one line; any failure exits non-zero.

use std::io::Write as _;

use super::{ConfigArgs, load_settings};
use crate::config::Settings;
use crate::secrets::MasterKey;
use crate::storage::StoreError;

/// Below this much free space a start is refused here: the writer answers 503 on a full disk, and a
/// backup or a compaction needs room for a copy of the data file.
const MIN_FREE_BYTES: u64 = 512 * 1024 * 1024;

#[derive(Default)]
struct Report {
    failed: usize,
}

impl Report {
    fn line(&mut self, mark: &str, text: &str) {
        let _ = writeln!(std::io::stdout(), "{mark:<5}{text}");
    }
    fn ok(&mut self, text: impl AsRef<str>) {
        self.line("ok", text.as_ref());
    }
    fn warn(&mut self, text: impl AsRef<str>) {
        self.line("warn", text.as_ref());
    }
    fn fail(&mut self, text: impl AsRef<str>) {
        self.failed += 1;
        self.line("FAIL", text.as_ref());
    }
}

pub fn run(args: &ConfigArgs) -> anyhow::Result<()> {
    let settings = load_settings(&args.flags())?;
    let mut r = Report::default();
    r.ok(format!(
        "configuration: listen {}, data_dir {}, {} declared subscription(s)",
        settings.listen,
        settings.data_dir.display(),
        settings.subscriptions.len()
    ));
    let key = match crate::config::master_key(&settings) {
        Ok(k) => {
            r.ok("master key: set");
            Some(k)
        }
        Err(e) => {
            r.fail(format!("master key: {e:#}"));
            None
        }
    };
    for d in &settings.subscriptions {
        if let Some(var) = &d.secret_env
            && settings.env.var(var).is_none()
        {
            r.fail(format!("declared subscription `{}`: the environment variable `{var}` is not set", d.name));
        }
        if let Some(url) = &d.destination_url {
            destination(&mut r, &format!("declared subscription `{}`", d.name), url);
        }
    }
    data_dir(&mut r, &settings);
    store(&mut r, &settings, key.as_ref());
    let sinks: Vec<&str> = settings.sink_settings().kinds().iter().map(|k| k.as_str()).collect();
    if sinks.is_empty() {
        r.warn("alert sinks: none configured; incidents show in the dashboard only (set PAGERDUTY_ROUTING_KEY, BETTERSTACK_API_TOKEN or alerts.webhook_url)");
    } else {
        r.ok(format!("alert sinks: {}", sinks.join(", ")));
    }
    if r.failed > 0 {
        anyhow::bail!("{} check(s) failed", r.failed);
    }
    Ok(())
}

/// The data directory takes a write (or, when it does not exist yet, the directory it will be made in
/// does: a check changes nothing), with room to spare.
fn data_dir(r: &mut Report, settings: &Settings) {
    let dir = &settings.data_dir;
    let existing = dir.ancestors().find(|d| d.exists()).unwrap_or(std::path::Path::new("."));
    if !existing.is_dir() {
        r.fail(format!("data directory {}: cannot be made, {} is not a directory", dir.display(), existing.display()));
        return;
    }
    let what = if existing == dir.as_path() {
        format!("data directory {}", dir.display())
    } else {
        format!("data directory {} (not made yet; the first start makes it in {})", dir.display(), existing.display())
    };
    let probe = existing.join(format!(".hookplane-check-{}", std::process::id()));
    match std::fs::write(&probe, b"check").and_then(|()| std::fs::remove_file(&probe)) {
        Ok(()) => r.ok(format!("{what}: writable")),
        Err(e) => {
            let _ = std::fs::remove_file(&probe);
            r.fail(format!("{what}: not writable by this user: {e}"));
            return;
        }
    }
    let stored = std::fs::metadata(dir.join(crate::storage::DB_FILE)).map_or(0, |m| m.len());
    match rustix::fs::statvfs(existing) {
        Ok(fs) => {
            let free = fs.f_bavail.saturating_mul(fs.f_frsize);
            let need = MIN_FREE_BYTES.max(stored);
            let text = format!(
                "free space: {} free where the data file is {}; {}-day retention keeps it about that size, and a backup or compaction needs room for a copy",
                mib(free),
                mib(stored),
                settings.retention.days
            );
            if free >= need { r.ok(text) } else { r.fail(format!("{text}: at least {} is needed", mib(need))) }
        }
        Err(e) => r.warn(format!("free space: cannot tell ({e})")),
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
}

/// The store as it is: its schema, the stored secrets and credentials against the master key, and the
/// stored subscriptions' destinations. Read only: nothing is migrated or repaired.
fn store(r: &mut Report, settings: &Settings, key: Option<&MasterKey>) {
    if !settings.data_dir.join(crate::storage::DB_FILE).exists() {
        r.ok("store: none yet; the first start creates it");
        return;
    }
    let db = match crate::storage::open_read_only(&settings.data_dir) {
        Ok(db) => db,
        Err(StoreError::Locked(path)) => {
            r.warn(format!(
                "store: {} is open in a running Hookplane; the master key is checked against its secrets only while it is stopped",
                path.display()
            ));
            return;
        }
        Err(e) => {
            r.warn(format!(
                "store: {e}; a store that was not closed cleanly is repaired at the next start, and can be checked after that"
            ));
            return;
        }
    };
    let latest = crate::storage::migrations::latest();
    match crate::storage::migrations::current(&db) {
        Ok(v) if v > latest => r.fail(format!(
            "store: storage schema {v} is newer than this build reads ({latest}); run the newer Hookplane"
        )),
        Ok(v) if v < latest => r.ok(format!("store: storage schema {v}; the next start upgrades it to {latest}")),
        Ok(v) => r.ok(format!("store: storage schema {v}")),
        Err(e) => r.fail(format!("store: cannot read its schema: {e}")),
    }
    if let Some(key) = key {
        sealed(r, &db, key);
    }
    match crate::storage::subscriptions::list(&db) {
        Ok(subs) => {
            for s in subs {
                if let Some(url) = s.destination.url() {
                    destination(r, &format!("subscription `{}`", s.name), url);
                }
            }
        }
        Err(e) => r.fail(format!("store: cannot read the subscriptions: {e}")),
    }
}

/// Every sealed secret and provider credential opens with the master key.
fn sealed(r: &mut Report, db: &redb::ReadOnlyDatabase, key: &MasterKey) {
    let mut opened = 0;
    let mut refused = Vec::new();
    match crate::storage::subscriptions::all_secrets(db) {
        Ok(secrets) => {
            for (sub, _, s) in secrets {
                match key.open(&s.sealed, &sub.to_string()) {
                    Ok(_) => opened += 1,
                    Err(_) => refused.push(format!("a secret of {sub}")),
                }
            }
        }
        Err(e) => r.fail(format!("sealed secrets: cannot read them: {e}")),
    }
    match crate::storage::handshakes::credentials(db) {
        Ok(creds) => {
            for c in creds {
                let context = crate::domain::credential::StoredCredential::key(c.provider, &c.account);
                match key.open(&c.sealed, &context) {
                    Ok(_) => opened += 1,
                    Err(_) => refused.push(format!("the {} credential of {}", c.provider, c.account)),
                }
            }
        }
        Err(e) => r.fail(format!("sealed credentials: cannot read them: {e}")),
    }
    if refused.is_empty() {
        r.ok(format!("master key: opens all {opened} sealed secret(s) and credential(s)"));
    } else {
        r.fail(format!(
            "master key: does not open {} of {} sealed secrets and credentials ({}): is it the key they were sealed with?",
            refused.len(),
            opened + refused.len(),
            refused.join(", ")
        ));
    }
}

/// The rule subscriptions are created with, so the check and a start agree.
fn destination(r: &mut Report, what: &str, url: &str) {
    match crate::control::validate_url("destination_url", url) {
        Ok(_) => r.ok(format!("{what}: destination {url}")),
        Err(e) => r.fail(format!("{what}: {e}")),
    }
}
