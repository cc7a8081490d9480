//! Every URL Hookplane serves, in poem's route syntax.

pub const ROOT: &str = "/";
pub const SHOPIFY_WEBHOOK: &str = crate::domain::handshake::SHOPIFY_CALLBACK_PATH;
pub const ZOHO_INCOMING: &str = crate::domain::handshake::ZOHO_NOTIFY_PATH;
pub const ZOHO_INCOMING_SUBSCRIPTION: &str = "/zoho/incoming/:subscription";
pub const INGEST_SUBSCRIPTION: &str = "/ingest/:subscription";
pub const WEBHOOKS_REPLAY: &str = "/webhooks/replay/:delivery_id";
pub const WEBHOOKS_HANDSHAKE: &str = "/webhooks/handshake/:subscription_id";
const INGEST_PREFIX: &str = "/ingest/";
pub const HEALTHZ: &str = "/healthz";
pub const METRICS: &str = "/metrics";
pub const READYZ: &str = "/readyz";
pub const VERSION: &str = "/version";
pub const API: &str = "/api";
pub const ASSET: &str = "/assets/*path";
pub const FAVICON: &str = "/favicon.ico";
pub const OPENAPI_JSON: &str = "/api/openapi.json";
pub const API_DOCS: &str = "/api/docs";
pub const LOGIN: &str = "/login";
pub const LOGOUT: &str = "/logout";
/// The one-time link that lets a browser on this machine in before any operator exists.
pub const SETUP: &str = "/setup";
pub const DASHBOARD_WEBHOOKS: &str = "/dashboard/webhooks";
pub const DASHBOARD_AUDIT: &str = "/dashboard/audit";
pub const DASHBOARD_AUDIT_EXPORT: &str = "/dashboard/audit/export";
pub const DASHBOARD_TOKENS: &str = "/dashboard/tokens";
pub const DASHBOARD_SETTINGS: &str = "/dashboard/settings";
pub const DASHBOARD_REPLAYS: &str = "/dashboard/replays";
pub const DASHBOARD_ERASURES: &str = "/dashboard/erasures";
pub const DASHBOARD_INCIDENTS: &str = "/dashboard/incidents";
pub const DASHBOARD_INCIDENT: &str = "/dashboard/incidents/:id";
/// The runbook, one section per alert rule (its anchor is the rule's name).
pub const RUNBOOK: &str = "/docs/runbook";
pub const DASHBOARD_DELIVERY: &str = "/dashboard/webhooks/deliveries/:id";
pub const DASHBOARD_DELIVERY_BODY: &str = "/dashboard/webhooks/deliveries/:id/body";
const ASSET_PREFIX: &str = "/assets/";

/// The URL of an embedded asset, e.g. `dashboard.css`.
pub fn asset(name: &str) -> String {
    format!("{ASSET_PREFIX}{name}")
}

/// The payload view of a delivery.
pub fn delivery_view(id: &str) -> String {
    format!("{DASHBOARD_WEBHOOKS}/deliveries/{id}")
}

/// An incident's page.
pub fn incident_view(id: &str) -> String {
    format!("{DASHBOARD_INCIDENTS}/{id}")
}

/// The exact body of a delivery, as a download.
pub fn delivery_download(id: &str) -> String {
    format!("{DASHBOARD_WEBHOOKS}/deliveries/{id}/body")
}

/// The ingest endpoint a path names, e.g. `/ingest/billing`.
pub fn ingest_endpoint(path: &str) -> Option<crate::ingest::Endpoint<'_>> {
    use crate::ingest::Endpoint;
    match path {
        SHOPIFY_WEBHOOK => Some(Endpoint::Shopify),
        ZOHO_INCOMING => Some(Endpoint::ZohoChannel),
        _ => path
            .strip_prefix(ZOHO_INCOMING)
            .and_then(|rest| rest.strip_prefix('/'))
            .map(Endpoint::Zoho)
            .or_else(|| path.strip_prefix(INGEST_PREFIX).map(Endpoint::Standard)),
    }
}

/// The URL a provider should send a subscription's webhooks to, relative to the public base URL.
pub fn callback_path(sub: &crate::domain::Subscription) -> String {
    use crate::domain::Source;
    use crate::domain::subscription::ZohoAuth;
    match (sub.source, &sub.zoho) {
        (Source::Shopify, _) => SHOPIFY_WEBHOOK.to_owned(),
        (Source::Zoho, Some(ZohoAuth::Channel { .. })) => ZOHO_INCOMING.to_owned(),
        (Source::Zoho, _) => format!("{ZOHO_INCOMING}/{}", sub.name),
        (Source::Standard, _) => format!("{INGEST_PREFIX}{}", sub.name),
    }
}
