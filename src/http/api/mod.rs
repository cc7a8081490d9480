//! The operator API, described by poem-openapi. One module per resource; each operation has its own
//! response enum and an explicit `operation_id`; every operation takes the least role it
//! needs as a type ([`auth::ViewerAuth`], [`auth::OperatorAuth`], [`auth::AdminAuth`]).

mod audit;
pub mod auth;
mod backups;
mod body;
mod dashboard;
pub(crate) mod deliveries;
mod deploys;
mod document;
mod erasures;
mod error;
pub(crate) mod handshakes;
mod incidents;
mod params;
mod rejections;
mod replays;
pub(crate) mod settings;
mod subscriptions;
mod tokens;

use poem_openapi::{OpenApiService, Tags};

pub(crate) use audit::{audit_export, audit_page, export_disposition};
pub(crate) use dashboard::dashboard_payload;
pub(crate) use deliveries::{DeliveryParams, ReplayResponse, query, replay};
pub(crate) use erasures::{StartErasureResponse, start_erasure};
pub use error::ApiError;
pub(crate) use incidents::{acknowledge, incident, incident_page};
pub(crate) use params::parse_id;
pub(crate) use replays::{StartBulkResponse, start_bulk_filter};
pub(crate) use subscriptions::{rotate_secret, set_paused};
pub(crate) use tokens::{create_token, revoke_token};

#[derive(Tags)]
enum ApiTags {
    /// What the dashboard shows: health, figures, banners and deliveries in one payload.
    Dashboard,
    /// Verified inbound events and their exact bodies.
    Deliveries,
    /// Provider-side registrations that send events, with their secrets (write-only).
    Subscriptions,
    /// Requests that were refused, by cause.
    Rejections,
    /// Who did what, when: every operator action (admins only).
    Audit,
    /// API tokens with their roles (admins only).
    Tokens,
    /// Bulk replays: every delivery matching a filter, replayed in the background.
    Replays,
    /// Privacy erasures: the payloads of every delivery matching a filter, replaced by a tombstone.
    Erasures,
    /// Incidents: an alert rule holding for a subscription, from opening to resolution, with its notifications.
    Incidents,
    /// Handshakes keep subscriptions registered at their providers; credentials are what they sign in with.
    Handshakes,
    /// Retention, integrations, alert sinks and the version.
    Settings,
    /// The processing service's versions: what each destination answers with, and announced deploys.
    Deploys,
    /// Backups of the whole store (admins only).
    Backups,
}

/// Nested because `Default` stops at tuples of twelve.
pub type Apis = (
    (
        dashboard::DashboardApi,
        deliveries::DeliveriesApi,
        subscriptions::SubscriptionsApi,
        rejections::RejectionsApi,
        audit::AuditApi,
        tokens::TokensApi,
        replays::ReplaysApi,
        erasures::ErasuresApi,
        deploys::DeploysApi,
        incidents::IncidentsApi,
        handshakes::HandshakesApi,
        settings::SettingsApi,
    ),
    backups::BackupsApi,
);

pub fn service() -> OpenApiService<Apis, ()> {
    // Every resource's API is a unit struct, so the tuple of them is its own default.
    OpenApiService::new(
        Apis::default(),
        "Hookplane",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "The operator API of Hookplane, a webhooks control plane. Authenticate with `Authorization: Bearer <token>`. \
         Errors are RFC 9457 problem documents whose `code` is stable.",
    )
    .server("/api")
}

/// The OpenAPI document as served (and, from an instance on the default configuration, as committed in
/// `docs/openapi.json`): poem-openapi's, with the rules its derives cannot state. `max_timeout_seconds` is
/// the longest attempt this instance's queue allows a destination. A rule that finds no target is a bug a
/// unit test catches; should one slip through, the unrefined document is served rather than none.
pub fn document(api: &OpenApiService<Apis, ()>, max_timeout_seconds: u32) -> String {
    let spec = api.spec();
    document::refine(&spec, max_timeout_seconds).unwrap_or_else(|e| {
        tracing::error!(error = %e, "the API document could not be refined; serving it as generated");
        spec
    })
}
