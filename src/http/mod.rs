//! HTTP: the ingest endpoints (authenticated by provider signatures), the operator API (poem-openapi,
//! bearer tokens), the dashboard's pages (maud), and operations endpoints. Every URL is declared in `paths`.

pub mod access;
mod allow;
pub mod api;
mod assets;
mod dashboard;
mod ingest;
mod login;
mod metrics;
mod ops;
pub mod problem;
mod security;

use std::sync::Arc;
use std::time::Instant;

use poem::http::HeaderValue;
use poem::{Endpoint, EndpointExt, IntoEndpoint, Middleware, Request, Response};

use crate::contract::paths;
use crate::control::Control;
use crate::ingest::Ingest;
use crate::secrets::SecretBytes;
use crate::storage::Store;

/// What the handlers need from the configuration.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// The base URL providers reach this instance at, for showing callback URLs; no trailing slash.
    pub public_url: String,
    /// Bodies over this many bytes are refused while reading (413).
    pub max_body_bytes: usize,
    /// Until the first operator exists, browsers on this machine may use the dashboard without signing in.
    pub open_on_loopback: bool,
    /// How long a replaced secret stays accepted when a rotation does not say.
    pub rotation_overlap_hours: u32,
    /// The Shopify Admin API version named in the commands the dashboard offers.
    pub shopify_api_version: String,
    /// Where the processing service's logs are read, linked from the dashboard's error banner.
    pub logs_url: Option<String>,
    /// The thresholds the health of each subscription is judged against.
    pub alert_rules: std::sync::Arc<crate::domain::incident::AlertRules>,
    /// The runbook, without a section: its sections' anchors are the rules' names.
    pub runbook_url: String,
    /// The alert sinks that are on: kind and where it sends.
    pub alert_sinks: Vec<(String, String)>,
}

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<HttpSettings>,
    pub alerts: Arc<crate::alerts::Alerts>,
    /// Provider handshakes and credentials.
    pub handshakes: Arc<crate::handshakes::Handshakes>,
    /// The retention in force, and the sweep.
    pub retention: Arc<crate::retention::Retention>,
    pub store: Arc<Store>,
    pub ingest: Arc<Ingest>,
    pub control: Arc<Control>,
    pub admin_token: Option<SecretBytes>,
    /// `HOOKPLANE_METRICS_TOKEN`: reads `/metrics` and nothing else.
    pub metrics_token: Option<SecretBytes>,
    /// The parts that must keep running; `/healthz` and `/readyz` report them.
    pub vitals: Arc<crate::task::Vitals>,
    /// "Now" for health windows: a manual clock in tests and demos.
    pub clock: Arc<dyn crate::domain::Clock>,
    pub search: Arc<crate::search::SearchIndex>,
    pub gate: Arc<crate::auth::Gate>,
    pub bulk: Arc<crate::control::bulk::BulkReplays>,
    /// Privacy erasures.
    pub erasures: Arc<crate::control::erasures::Erasures>,
    /// Announced deploys.
    pub deploys: Arc<crate::deploys::Deploys>,
    /// The demo's processing service, under `serve --demo`: the dashboard offers to flip its destinations.
    pub demo: Option<Arc<dyn crate::contract::demo::MockDestinations>>,
}

impl AppState {
    /// What keeps the instance from accepting traffic now, part by part; empty when it is ready. Never
    /// waits on storage.
    pub fn not_ready(&self) -> Vec<(&'static str, String)> {
        let mut not = Vec::new();
        if let Some(why) = self.store.failing_writes() {
            let every = crate::ingest::writer::PROBE_EVERY.as_secs();
            not.push((
                "storage",
                format!("writes fail ({why}); webhooks get 503 until a write holds, tried every {every} s"),
            ));
        } else if !self.store.is_open() {
            not.push((
                "storage",
                "the database is not open: it is being reopened after a failed write, or closing".into(),
            ));
        }
        for part in self.vitals.gone_fatal() {
            not.push((part, "stopped".into()));
        }
        not
    }

    /// The base URL providers reach this instance at, for showing callback URLs.
    pub fn public_url(&self) -> String {
        self.settings.public_url.clone()
    }
}

pub fn routes(state: AppState) -> impl Endpoint<Output = Response> {
    use access::PageGuard;
    use allow::Methods;
    let api = api::service();
    let document = api::document(&api, state.control.max_timeout_seconds());
    // The page embeds the document it is given verbatim: it shows the refined one.
    let docs = api.swagger_ui_html().replacen(&api.spec(), &document, 1);
    let (route, allow) = allow::Routes::default()
        .at(paths::ROOT, Methods::get(PageGuard::viewer(dashboard::view_root_get)))
        .at(paths::LOGIN, Methods::get(login::view_login_get).and_post(login::view_login_post))
        .at(paths::LOGOUT, Methods::post(PageGuard::viewer(login::view_logout_post)))
        .at(paths::SETUP, Methods::get(login::view_setup_get))
        .at(
            paths::DASHBOARD_WEBHOOKS,
            Methods::get(PageGuard::viewer(dashboard::view_webhooks_get))
                .and_post(PageGuard::operator(dashboard::view_webhooks_post)),
        )
        .at(paths::DASHBOARD_DELIVERY, Methods::get(PageGuard::viewer(dashboard::view_delivery_get)))
        .at(paths::DASHBOARD_DELIVERY_BODY, Methods::get(PageGuard::viewer(dashboard::view_delivery_body_get)))
        .at(paths::DASHBOARD_AUDIT, Methods::get(PageGuard::admin(dashboard::view_audit_get)))
        .at(
            paths::DASHBOARD_TOKENS,
            Methods::get(PageGuard::admin(dashboard::view_tokens_get))
                .and_post(PageGuard::admin(dashboard::view_tokens_post)),
        )
        .at(
            paths::DASHBOARD_REPLAYS,
            Methods::get(PageGuard::viewer(dashboard::view_replays_get))
                .and_post(PageGuard::admin(dashboard::view_replays_post)),
        )
        .at(
            paths::DASHBOARD_ERASURES,
            Methods::get(PageGuard::admin(dashboard::view_erasures_get))
                .and_post(PageGuard::admin(dashboard::view_erasures_post)),
        )
        .at(paths::DASHBOARD_INCIDENTS, Methods::get(PageGuard::viewer(dashboard::view_incidents_get)))
        .at(
            paths::DASHBOARD_SETTINGS,
            Methods::get(PageGuard::viewer(dashboard::view_settings_get))
                .and_post(PageGuard::admin(dashboard::view_settings_post)),
        )
        .at(
            paths::DASHBOARD_INCIDENT,
            Methods::get(PageGuard::viewer(dashboard::view_incident_get))
                .and_post(PageGuard::operator(dashboard::view_incident_post)),
        )
        .at(paths::RUNBOOK, Methods::get(dashboard::view_runbook_get))
        .at(paths::DASHBOARD_AUDIT_EXPORT, Methods::get(PageGuard::admin(dashboard::view_audit_export_get)))
        .at(paths::SHOPIFY_WEBHOOK, Methods::post(ingest::shopify))
        .at(paths::ZOHO_INCOMING, Methods::post(ingest::zoho_channel))
        .at(paths::ZOHO_INCOMING_SUBSCRIPTION, Methods::post(ingest::zoho_subscription))
        .at(paths::INGEST_SUBSCRIPTION, Methods::post(ingest::standard))
        .at(paths::WEBHOOKS_REPLAY, Methods::post(api::deliveries::webhooks_replay))
        .at(paths::WEBHOOKS_HANDSHAKE, Methods::post(api::handshakes::webhooks_handshake))
        .at(paths::HEALTHZ, Methods::get(ops::healthz))
        .at(paths::READYZ, Methods::get(ops::readyz))
        .at(paths::VERSION, Methods::get(ops::version))
        .at(paths::METRICS, Methods::get(metrics::metrics))
        .at(paths::ASSET, Methods::get(assets::asset))
        .at(paths::FAVICON, Methods::get(assets::favicon))
        .at(paths::OPENAPI_JSON, Methods::get(json_document(document.clone())))
        .at(paths::API_DOCS, Methods::get(docs_page(security::InlinePage::new(docs))))
        .api(paths::API, api.into_endpoint(), &document)
        .finish();
    route
        .catch_all_error(problem::from_poem_error)
        .with(allow)
        .with(poem::middleware::CatchPanic::new().with_handler(problem::from_panic))
        .with(security::SecurityHeaders)
        .with(RequestLog)
        .data(state)
}

/// The API document, as `application/json`.
fn json_document(document: String) -> impl Endpoint<Output = Response> {
    poem::endpoint::make_sync(move |_| {
        Response::builder().content_type("application/json; charset=utf-8").body(document.clone())
    })
}

/// The browsable API docs (Swagger UI, all of it inline in one page).
fn docs_page(page: security::InlinePage) -> impl Endpoint<Output = Response> {
    poem::endpoint::make_sync(move |_| page.response())
}

/// Gives every response an `X-Request-Id` (the caller's, or a new one) and logs each request at debug
/// level, server errors at warn.
struct RequestLog;

impl<E: Endpoint> Middleware<E> for RequestLog {
    type Output = RequestLogEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        RequestLogEndpoint(ep)
    }
}

struct RequestLogEndpoint<E>(E);

impl<E: Endpoint> Endpoint for RequestLogEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let started = Instant::now();
        let id = req
            .header("x-request-id")
            .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
            .map_or_else(|| format!("{:016x}", rand::random::<u64>()), str::to_owned);
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let mut resp = problem::REQUEST_ID.scope(id.clone(), self.0.get_response(req)).await;
        let status = resp.status();
        let elapsed_us = started.elapsed().as_micros();
        if status.is_server_error() {
            tracing::warn!(request_id = %id, %method, %path, status = status.as_u16(), elapsed_us, "request failed");
        } else {
            tracing::debug!(request_id = %id, %method, %path, status = status.as_u16(), elapsed_us, "request");
        }
        if let Ok(v) = HeaderValue::from_str(&id) {
            resp.headers_mut().insert("x-request-id", v);
        }
        Ok(resp)
    }
}
