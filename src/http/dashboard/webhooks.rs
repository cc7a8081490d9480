//! `GET` and `POST /dashboard/webhooks`: the delivery history with its filters, and the page's actions
//! (rotate a secret, replay, replay the latest, pause, resume).

use maud::Render;
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{IntoResponse as _, Response, handler};

use super::{Intent, html_response, message_page, see_other};
use crate::contract::RotateSecretIn;
use crate::contract::demo::MockMode;
use crate::contract::paths;
use crate::contract::{Caller, DeliveryPage, HandshakeOutcome, ReplayOut};
use crate::domain::access::Role;
use crate::domain::audit::{AuditAction, Change};
use crate::domain::filter::DeliveryFilter;
use crate::domain::{DeliveryStatus, Timestamp};
use crate::http::AppState;
use crate::http::access;
use crate::http::api::handshakes::HandshakeResponse;
use crate::http::api::{
    ApiError, DeliveryParams, ReplayResponse, dashboard_payload, query, replay, rotate_secret, set_paused,
};
use crate::http::problem::{Kind, Problem};
use crate::views::components::Tone;
use crate::views::layout::Chrome;
use crate::views::notice::Notice;
use crate::views::webhooks::{Filters, PageError, WebhooksPage};
#[handler]
pub async fn view_webhooks_get(
    Data(state): Data<&AppState>,
    Data(caller): Data<&Caller>,
    Query(filters): Query<Filters>,
    Query(notice): Query<Notice>,
) -> Response {
    let filters = filters.normalized();
    let mut status = StatusCode::OK;
    let mut error = None;
    let mut deliveries_shown = true;
    let data = match delivery_query(&filters, state.clock.now()) {
        Ok(q) => dashboard_payload(state, q).await,
        Err(e) => Err(e),
    };
    let data = match data {
        Ok(d) => Some(d),
        Err(e) => {
            let (code, p) = e.problem();
            status = code;
            let title = match code {
                StatusCode::BAD_REQUEST => "These filters cannot be applied",
                StatusCode::SERVICE_UNAVAILABLE => "The store cannot be read right now",
                _ => "The deliveries cannot be shown",
            };
            let logs_url = state.settings.logs_url.clone().filter(|_| code != StatusCode::BAD_REQUEST);
            error = Some(PageError { title: title.to_owned(), detail: p.detail.clone(), logs_url });
            // A bad filter or search still leaves the figures and subscriptions worth showing; the form
            // stays filled in so that the mistake can be corrected.
            if code == StatusCode::BAD_REQUEST {
                deliveries_shown = false;
                match query(DeliveryParams::default()) {
                    Ok(q) => dashboard_payload(state, q).await.ok(),
                    Err(_) => None,
                }
            } else {
                None
            }
        }
    };
    let data = data.map(|mut d| {
        if !deliveries_shown {
            d.deliveries = DeliveryPage { items: Vec::new(), next_cursor: None };
        }
        d
    });
    let public_url = state.public_url();
    let chrome = Chrome { notice, ..Chrome::of(caller) };
    let demo = state.demo.as_ref().map(|d| d.list());
    let page = WebhooksPage {
        filters: &filters,
        data: data.as_ref(),
        deliveries_shown,
        error,
        public_url: &public_url,
        shopify_api_version: &state.settings.shopify_api_version,
        demo: demo.as_deref(),
        chrome: &chrome,
    };
    html_response(status, page.render())
}

/// What the webhooks page's forms ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhooksIntent {
    Rotate,
    Replay,
    ReplayLatest,
    Pause,
    Resume,
    /// Run the subscription's handshake with its provider now.
    Handshake,
    /// Under `serve --demo`: how a destination of the demo's processing service answers.
    DemoDestination,
}

const EXPECTED: &str = "rotate, replay, replay_latest, pause, resume, handshake or demo_destination";

/// What a form on the webhooks page asks for (`intent`) and its fields.
#[derive(Default, serde::Deserialize)]
pub struct WebhooksAction {
    #[serde(default)]
    intent: Intent<WebhooksIntent>,
    subscription: Option<String>,
    delivery: Option<String>,
    /// The page the form was on, to return to with the outcome.
    return_to: Option<String>,
    secret: Option<String>,
    secret_confirmation: Option<String>,
    overlap_hours: Option<String>,
    destination: Option<String>,
    mode: Option<String>,
}

impl std::fmt::Debug for WebhooksAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhooksAction")
            .field("intent", &self.intent)
            .field("subscription", &self.subscription)
            .finish_non_exhaustive()
    }
}

/// The page's actions (post/redirect/get): each answers with a redirect to the page, which shows the outcome.
#[handler]
pub async fn view_webhooks_post(
    req: &poem::Request,
    Data(state): Data<&AppState>,
    Data(caller): Data<&Caller>,
    poem::web::Form(mut action): poem::web::Form<WebhooksAction>,
) -> Response {
    let chrome = Chrome::of(caller);
    let back = access::safe_next(action.return_to.as_deref()).to_owned();
    let wants_json =
        req.headers().get("accept").and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("application/json"));
    let result = match std::mem::take(&mut action.intent).known(EXPECTED) {
        Err(e) => Err(e),
        Ok(WebhooksIntent::Rotate) => rotate(req, state, caller, action).await,
        Ok(intent @ (WebhooksIntent::Replay | WebhooksIntent::ReplayLatest)) => {
            let replayed = replay_action(req, state, caller, intent, &action).await;
            if wants_json {
                // The script's request: the API's own answer, so both share one contract.
                return match replayed {
                    Ok(made) => ReplayResponse::Accepted(poem_openapi::payload::Json(made)).into_response(),
                    Err(e) => e.into_response(),
                };
            }
            match replayed {
                Ok(made) => Ok(Notice::new("replayed", &made.delivery_id, None).on(&back)),
                Err(ApiError::TooManyRequests(p, wait)) => {
                    let target = action.delivery.clone().or(action.subscription.clone()).unwrap_or_default();
                    Ok(Notice::new(&p.0.code, &target, Some(u64::from(wait))).on(&back))
                }
                Err(e) => Err(e),
            }
        }
        Ok(intent @ (WebhooksIntent::Pause | WebhooksIntent::Resume)) => {
            let pause = intent == WebhooksIntent::Pause;
            let sub = action.subscription.clone().unwrap_or_default();
            let by = access::actor(&caller.principal, req);
            match set_paused(state, by, &sub, pause).await {
                Ok(done) => {
                    let (notice, count) = if pause { ("paused", None) } else { ("resumed", Some(done.released)) };
                    Ok(Notice::new(notice, &done.subscription.name, count).on(&back))
                }
                Err(e) => Err(e),
            }
        }
        Ok(WebhooksIntent::Handshake) => {
            let sub = action.subscription.clone().unwrap_or_default();
            let by = access::actor(&caller.principal, req);
            let ran = crate::http::api::handshakes::handshake(state, &by, &sub).await;
            if wants_json {
                return match ran {
                    Ok(run) => HandshakeResponse::Ok(poem_openapi::payload::Json(run)).into_response(),
                    Err(e) => e.into_response(),
                };
            }
            ran.map(|run| {
                let reg = state.ingest.registry().snapshot();
                let name = reg.by_name_or_id(&run.subscription_id).map_or(sub, |e| e.sub.name.clone());
                let notice = match run.outcome {
                    HandshakeOutcome::Verified => "handshake_verified",
                    HandshakeOutcome::Repaired => "handshake_repaired",
                    HandshakeOutcome::Failed => "handshake_failed",
                };
                Notice::new(notice, &name, None).on(&back)
            })
        }
        Ok(WebhooksIntent::DemoDestination) => {
            demo_destination(req, state, caller, &action).await.map(|(name, mode)| {
                let notice = Notice {
                    notice: Some("demo_destination".to_owned()),
                    target: Some(name),
                    count: Some(mode.as_str().to_owned()),
                };
                notice.on(&back)
            })
        }
    };
    match result {
        Ok(to) => see_other(&to),
        Err(e) => {
            let (status, p) = e.problem();
            let title = if status == StatusCode::FORBIDDEN { "Not allowed" } else { "Nothing was changed" };
            message_page(status, title, Tone::Critical, &p.detail, &chrome, None)
        }
    }
}

/// How many of a subscription's newest deliveries `replay_latest` looks through for one it can replay.
const LATEST_LOOKED_AT: u32 = 100;

/// Replays the form's delivery, or for `replay_latest` the newest delivery of the form's subscription that
/// can be replayed: newer ones whose own attempts are under way are sent anyway, and a replay of them would
/// be refused.
async fn replay_action(
    req: &poem::Request,
    state: &AppState,
    caller: &Caller,
    intent: WebhooksIntent,
    a: &WebhooksAction,
) -> Result<ReplayOut, ApiError> {
    let delivery = match (intent, &a.delivery, &a.subscription) {
        (WebhooksIntent::Replay, Some(d), _) => d.clone(),
        (WebhooksIntent::ReplayLatest, _, Some(sub)) => {
            let filter = DeliveryFilter { subscription: Some(sub.clone()), ..DeliveryFilter::default() };
            let params = DeliveryParams { filter, limit: Some(LATEST_LOOKED_AT), ..DeliveryParams::default() };
            let page = dashboard_payload(state, query(params)?).await?;
            let newest = page.deliveries.items.iter().find(|d| !DeliveryStatus::from(d.status).attempts_under_way());
            match (newest, page.deliveries.items.is_empty()) {
                (Some(d), _) => d.id.clone(),
                (None, empty) => {
                    let detail = if empty {
                        format!("subscription `{sub}` has no deliveries to replay yet")
                    } else {
                        format!(
                            "the newest {} deliveries of subscription `{sub}` are all still being sent on their own; \
                             replay one once it has succeeded or failed",
                            page.deliveries.items.len()
                        )
                    };
                    return Err(Problem::new(Kind::NotReplayable, detail).into());
                }
            }
        }
        _ => return Err(ApiError::bad_request("a replay needs `delivery` (or `subscription` for `replay_latest`)")),
    };
    let delivery = crate::http::api::parse_id(&delivery)?;
    replay(state, access::actor(&caller.principal, req), delivery).await
}

async fn rotate(req: &poem::Request, state: &AppState, caller: &Caller, a: WebhooksAction) -> Result<String, ApiError> {
    if caller.principal.role() < Role::Admin {
        return Err(ApiError::forbidden(format!(
            "Rotating a secret needs the admin role; {} has the {} role.",
            caller.principal.label(),
            caller.principal.role()
        )));
    }
    let sub = a.subscription.unwrap_or_default();
    let overlap_hours = match a.overlap_hours.as_deref().map(str::trim).filter(|h| !h.is_empty()) {
        Some(h) => Some(h.parse::<u32>().map_err(|_| {
            ApiError::bad_request(format!("`overlap_hours` must be a whole number of hours, not `{h}`"))
        })?),
        None => None,
    };
    let input = RotateSecretIn {
        secret: a.secret.unwrap_or_default(),
        secret_confirmation: a.secret_confirmation.unwrap_or_default(),
        overlap_hours,
    };
    let rotated = rotate_secret(state, access::actor(&caller.principal, req), &sub, input).await?;
    let query = serde_urlencoded::to_string([("rotated", rotated.subscription.id.as_str())]).unwrap_or_default();
    Ok(format!("{}?{query}", paths::DASHBOARD_WEBHOOKS))
}

/// Changes how a destination of the demo's processing service answers, audited like any other change:
/// the entry is written first, so a change is never made without it.
async fn demo_destination(
    req: &poem::Request,
    state: &AppState,
    caller: &Caller,
    a: &WebhooksAction,
) -> Result<(String, MockMode), ApiError> {
    let Some(demo) = &state.demo else {
        return Err(Problem::new(
            Kind::Conflict,
            "this instance is not a demo: its destinations are real services, not Hookplane's to change",
        )
        .into());
    };
    let name = a.destination.clone().unwrap_or_default();
    let mode = MockMode::parse(a.mode.as_deref().unwrap_or_default()).map_err(ApiError::bad_request)?;
    let Some(before) = demo.list().into_iter().find(|m| m.name == name).map(|m| m.mode) else {
        return Err(ApiError::bad_request(format!("the demo has no destination `{name}`")));
    };
    if before != mode {
        let entry = access::actor(&caller.principal, req)
            .entry(state.clock.now(), AuditAction::DemoDestinationChanged)
            .target(&name)
            .change(Change::changed("mode", before.as_str(), mode.as_str()));
        state.store.read(move |db| crate::storage::audit::record(db, &entry)).await.map_err(ApiError::from)?;
        demo.set(&name, mode);
    }
    Ok((name, mode))
}

/// The form's fields as the API's query: blank means any, `range` is a window ending now.
fn delivery_query(f: &Filters, now: Timestamp) -> Result<crate::loader::Query, ApiError> {
    let limit = f
        .limit
        .as_deref()
        .map(|l| {
            l.parse::<u32>()
                .map_err(|_| ApiError::bad_request(format!("`limit` cannot be `{l}`: expected a whole number")))
        })
        .transpose()?;
    let filter = f.delivery_filter(now).map_err(ApiError::bad_request)?;
    query(DeliveryParams { filter, cursor: f.cursor.clone(), limit })
}
