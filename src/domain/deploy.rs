//! Versions of the processing service: which versions each destination answered with and when (from a
//! response header, or a version URL polled), the deploys a pipeline announced, and the drift rules that
//! warn when a destination answers with two versions for too long or lags more than one deploy behind.

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// The response header a destination names its version in, unless its subscription says another.
pub const DEFAULT_VERSION_HEADER: &str = "X-Service-Version";
/// Versions are labels people read: short, printable, one line.
pub const MAX_VERSION_CHARS: usize = 64;
/// A version not seen for this long (or the grace period, if longer) no longer answers.
pub const LIVE_WINDOW_MS: i64 = 5 * 60 * 1000;

/// Where a subscription's destination tells its version, and the service name deploys are announced under.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionWatch {
    /// The response header carrying the version; [`DEFAULT_VERSION_HEADER`] when absent.
    pub header: Option<String>,
    /// A URL answering the version (its header, a JSON `version` field, or its text), polled.
    pub url: Option<String>,
    /// The name `POST /api/v1/deploys` uses; the destination URL's host (and port) when absent.
    pub service: Option<String>,
}

impl VersionWatch {
    pub fn header(&self) -> &str {
        self.header.as_deref().unwrap_or(DEFAULT_VERSION_HEADER)
    }

    /// The service this subscription's destination belongs to, if it forwards.
    pub fn service(&self, destination_url: Option<&str>) -> Option<String> {
        self.service.clone().or_else(|| destination_url.and_then(authority))
    }
}

/// `host[:port]` of a URL, lower-cased.
fn authority(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let auth = rest[..end].rsplit('@').next()?;
    (!auth.is_empty()).then(|| auth.to_ascii_lowercase())
}

/// A version as a destination said it, trimmed; `None` when it says nothing usable.
pub fn clean_version(raw: &str) -> Option<String> {
    let v = raw.trim();
    let ok = !v.is_empty() && v.chars().count() <= MAX_VERSION_CHARS && v.chars().all(|c| !c.is_control());
    ok.then(|| v.to_owned())
}

/// Checks a version or service name given by a person or a pipeline.
pub fn check_label(what: &str, v: &str) -> Result<(), String> {
    match clean_version(v) {
        Some(c) if c == v => Ok(()),
        _ => Err(format!(
            "`{what}` must be 1 to {MAX_VERSION_CHARS} printable characters without surrounding spaces, not `{}`",
            v.chars().take(80).collect::<String>()
        )),
    }
}

/// When a destination first and last answered with one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

impl Seen {
    pub fn at(t: Timestamp) -> Self {
        Self { first_seen: t, last_seen: t }
    }

    pub fn and(self, t: Timestamp) -> Self {
        Self { first_seen: self.first_seen.min(t), last_seen: self.last_seen.max(t) }
    }
}

/// A deploy the pipeline announced for a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announced {
    pub version: String,
    pub at: Timestamp,
    pub by: String,
}

/// What the drift rules found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// Two or more versions answered side by side for longer than the grace period.
    Mixed { versions: Vec<String>, since: Timestamp },
    /// Past the grace period after the newest announced deploy, it still answers with a version older than
    /// the deploy before it (or one never announced).
    Behind { answering: String, latest: String, previous: String },
}

impl Drift {
    pub fn message(&self, service: &str) -> String {
        match self {
            Drift::Mixed { versions, since } => format!(
                "{service} has answered with {} versions at once since {}: a deploy that did not finish, or a stale instance",
                versions.join(" and "),
                since.to_rfc3339()
            ),
            Drift::Behind { answering, latest, previous } => format!(
                "{service} still answers with {answering}, more than one deploy behind: {latest} was announced, and {previous} before it"
            ),
        }
    }
}

/// The drift rules over one destination's `seen` versions and its service's `announced` deploys (oldest
/// first), at `now`, with `grace_ms` allowed for a deploy to roll out.
pub fn judge(seen: &[(String, Seen)], announced: &[Announced], now: Timestamp, grace_ms: i64) -> Vec<Drift> {
    let live_since = now.plus_millis(-grace_ms.max(LIVE_WINDOW_MS));
    let live: Vec<&(String, Seen)> = seen.iter().filter(|(_, s)| s.last_seen >= live_since).collect();
    let mut found = Vec::new();
    // The newest version to appear, and those that kept answering beside it longer than the grace.
    if let Some((newest, n)) = live.iter().max_by_key(|(_, s)| s.first_seen).copied() {
        let mut versions: Vec<String> = live
            .iter()
            .filter(|(v, s)| v != newest && s.last_seen.millis() - n.first_seen.millis() > grace_ms)
            .map(|(v, _)| v.clone())
            .collect();
        if !versions.is_empty() {
            versions.sort();
            versions.insert(0, newest.clone());
            found.push(Drift::Mixed { versions, since: n.first_seen });
        }
    }
    // A version announced again (a retried pipeline) is one deploy, not two.
    let mut deploys: Vec<&Announced> = Vec::with_capacity(announced.len());
    for a in announced {
        if deploys.last().is_none_or(|l| l.version != a.version) {
            deploys.push(a);
        }
    }
    if let [.., previous, latest] = deploys[..] {
        let settled = latest.at.plus_millis(grace_ms);
        let behind = live
            .iter()
            .filter(|(v, s)| s.last_seen > settled && *v != latest.version && *v != previous.version)
            .max_by_key(|(_, s)| s.last_seen);
        if let Some((answering, _)) = behind {
            found.push(Drift::Behind {
                answering: answering.clone(),
                latest: latest.version.clone(),
                previous: previous.version.clone(),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn seen(v: &str, first: i64, last: i64) -> (String, Seen) {
        (v.to_owned(), Seen { first_seen: Timestamp(first * MIN), last_seen: Timestamp(last * MIN) })
    }

    fn deploy(v: &str, at: i64) -> Announced {
        Announced { version: v.to_owned(), at: Timestamp(at * MIN), by: "ci".to_owned() }
    }

    #[test]
    fn two_versions_side_by_side_past_the_grace_drift_until_the_old_one_stops() {
        let at = |m: i64| Timestamp(m * MIN);
        // A rolling deploy that finished within the grace period: fine.
        let rolled = [seen("v1", 0, 105), seen("v2", 100, 200)];
        assert_eq!(judge(&rolled, &[], at(200), 15 * MIN), vec![]);
        // One instance kept answering v1 for 20 minutes after v2 appeared.
        let stale = [seen("v1", 0, 120), seen("v2", 100, 121)];
        let drift = judge(&stale, &[], at(121), 15 * MIN);
        assert_eq!(drift, vec![Drift::Mixed { versions: vec!["v2".into(), "v1".into()], since: at(100) }]);
        assert!(drift[0].message("orders").contains("v2 and v1 versions at once"), "{}", drift[0].message("orders"));
        // It stopped: once v1 has not answered for the grace period, the warning clears.
        assert_eq!(judge(&stale, &[], at(136), 15 * MIN), vec![]);
        // A clean switch never overlaps, and with no grace any overlap counts.
        assert_eq!(judge(&[seen("v1", 0, 99), seen("v2", 100, 101)], &[], at(101), 0), vec![]);
        assert_eq!(judge(&[seen("v1", 0, 101), seen("v2", 100, 101)], &[], at(101), 0).len(), 1);
    }

    #[test]
    fn answering_more_than_one_deploy_behind_the_announced_drifts() {
        let at = |m: i64| Timestamp(m * MIN);
        let announced = [deploy("v1", 0), deploy("v2", 100), deploy("v3", 200)];
        // One behind is a deploy in progress, not drift.
        assert_eq!(judge(&[seen("v2", 100, 300)], &announced, at(300), 15 * MIN), vec![]);
        // Two behind, past the grace: drift.
        let drift = judge(&[seen("v1", 0, 300)], &announced, at(300), 15 * MIN);
        assert_eq!(drift, vec![Drift::Behind { answering: "v1".into(), latest: "v3".into(), previous: "v2".into() }]);
        // Within the grace of the announcement: not yet.
        assert_eq!(judge(&[seen("v1", 0, 210)], &announced, at(210), 15 * MIN), vec![]);
        // A single announcement cannot say what "more than one behind" is.
        assert_eq!(judge(&[seen("v0", 0, 300)], &announced[..1], at(300), 15 * MIN), vec![]);
        // Announcing v3 twice is still one deploy: v2 is one behind.
        let again = [deploy("v1", 0), deploy("v2", 100), deploy("v3", 200), deploy("v3", 210)];
        assert_eq!(judge(&[seen("v2", 100, 300)], &again, at(300), 15 * MIN), vec![]);
    }

    #[test]
    fn services_default_to_the_destination_host_and_labels_are_checked() {
        let w = VersionWatch::default();
        assert_eq!(w.service(Some("https://user@Orders.internal:8443/hooks?x=1")), Some("orders.internal:8443".into()));
        assert_eq!(w.header(), "X-Service-Version");
        assert_eq!(clean_version("  1.4.2\n"), Some("1.4.2".into()));
        assert_eq!(clean_version(""), None);
        assert_eq!(clean_version(&"9".repeat(65)), None);
        assert!(check_label("version", "1.4.2").is_ok());
        assert!(check_label("version", " 1.4.2").unwrap_err().contains("without surrounding spaces"));
    }
}
