//! The processing service's versions and deploys, as the API takes and answers them.

use poem_openapi::Object;

use super::time;

/// Where a subscription's destination tells its version. Each absent field is its default.
#[derive(Object, Debug, Clone, Default)]
#[oai(deny_unknown_fields)]
pub struct VersionWatchIn {
    /// The answer's header naming the version; `X-Service-Version` when absent.
    #[oai(nullable)]
    pub header: Option<String>,
    /// A URL to ask for the version every `drift.poll_interval_seconds`: its header, a JSON `version` field,
    /// or its text.
    #[oai(nullable)]
    pub url: Option<String>,
    /// The name deploys are announced under; the destination URL's host (and port) when absent.
    #[oai(nullable)]
    pub service: Option<String>,
}

impl From<VersionWatchIn> for crate::domain::deploy::VersionWatch {
    fn from(w: VersionWatchIn) -> Self {
        let given = |v: Option<String>| v.filter(|v| !v.is_empty());
        Self { header: given(w.header), url: given(w.url), service: given(w.service) }
    }
}

/// A deploy a pipeline announces.
#[derive(Object, Debug, Clone)]
#[oai(deny_unknown_fields)]
pub struct DeployIn {
    /// The service, as its subscriptions name it (by default their destination URL's host and port).
    pub service: String,
    pub version: String,
}

/// A deploy recorded.
#[derive(Object, Debug, Clone)]
pub struct DeployOut {
    pub service: String,
    pub version: String,
    pub announced_at: String,
    pub announced_by: String,
    /// The subscriptions whose destinations belong to this service now; empty when none does (yet).
    pub subscriptions: Vec<String>,
}

impl From<crate::deploys::Recorded> for DeployOut {
    fn from(r: crate::deploys::Recorded) -> Self {
        DeployOut {
            service: r.service,
            version: r.deploy.version,
            announced_at: time(r.deploy.at),
            announced_by: r.deploy.by,
            subscriptions: r.subscriptions,
        }
    }
}

/// One version a destination answered with.
#[derive(Object, Debug, Clone)]
pub struct VersionSeenOut {
    pub version: String,
    pub first_seen: String,
    pub last_seen: String,
}

/// One announced deploy.
#[derive(Object, Debug, Clone)]
pub struct AnnouncedOut {
    pub version: String,
    pub announced_at: String,
    pub announced_by: String,
}

/// A forwarding subscription's destination with its deploy history.
#[derive(Object, Debug, Clone)]
pub struct DestinationVersionsOut {
    pub subscription_id: String,
    pub subscription_name: String,
    pub service: String,
    pub version_header: String,
    #[oai(skip_serializing_if_is_none)]
    pub version_url: Option<String>,
    /// Most recently seen first.
    pub versions: Vec<VersionSeenOut>,
    /// The deploys announced for its service, newest first.
    pub announced: Vec<AnnouncedOut>,
    /// The `version_drift` warnings that hold now.
    pub drift: Vec<String>,
}

impl From<crate::loader::DestinationVersions> for DestinationVersionsOut {
    fn from(d: crate::loader::DestinationVersions) -> Self {
        DestinationVersionsOut {
            subscription_id: d.subscription.id.to_string(),
            subscription_name: d.subscription.name.clone(),
            service: d.service,
            version_header: d.subscription.versions.header().to_owned(),
            version_url: d.subscription.versions.url.clone(),
            versions: d
                .versions
                .into_iter()
                .map(|(version, s)| VersionSeenOut {
                    version,
                    first_seen: time(s.first_seen),
                    last_seen: time(s.last_seen),
                })
                .collect(),
            announced: d
                .announced
                .into_iter()
                .rev()
                .map(|a| AnnouncedOut { version: a.version, announced_at: time(a.at), announced_by: a.by })
                .collect(),
            drift: d.drift,
        }
    }
}
