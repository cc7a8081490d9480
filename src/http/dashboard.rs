//! The dashboard's HTML routes (handlers are `view_<page>_<verb>`). Each is behind `access::PageGuard`,
//! which hands it the [`Caller`].

use maud::{Markup, Render, html};
use poem::http::{StatusCode, header};
use poem::web::{Data, Path, Query};
use poem::{IntoResponse as _, Response, handler};

use super::AppState;
use super::access::{self, Refusal, refusal_status};
use super::api::{
    ApiError, DeliveryParams, ReplayResponse, StartBulkResponse, audit_export, audit_page, create_token,
    dashboard_payload, export_disposition, query, replay, revoke_token, rotate_secret, set_paused, start_bulk_filter,
};
use super::problem::{Kind, Problem};
use crate::contract::paths;
use crate::contract::{AttemptOut, BulkReplayOut, DeliveryOut, DeliveryPage, ReplayOut, SubscriptionOut};
use crate::contract::{AuditParams, Caller};
use crate::contract::{RotateSecretIn, TokenCreated, TokenIn, TokenOut};
use crate::domain::access::Role;
use crate::domain::replay::BulkFilter;
use crate::domain::{self, DeliveryId, Timestamp};
use crate::storage::{StoreError, attempts, deliveries};
use crate::views::audit::AuditView;
use crate::views::components::{Banner, Tone};
use crate::views::delivery::{Body, DeliveryPage as DeliveryView};
use crate::views::layout::{self, Chrome};
use crate::views::notice::Notice;
use crate::views::replays::ReplaysView;
use crate::views::tokens::TokensView;
use crate::views::webhooks::{Filters, PageError, RANGES, WebhooksPage};

#[handler]
pub async fn view_root_get() -> Response {
    see_other(paths::DASHBOARD_WEBHOOKS)
}

/// The answer of post/redirect/get, and of a page that lives elsewhere.
pub fn see_other(to: &str) -> Response {
    Response::builder().status(StatusCode::SEE_OTHER).header(header::LOCATION, to).finish()
}

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
            error = Some(PageError { title: title.to_owned(), detail: p.detail.clone() });
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
    let page = WebhooksPage {
        filters: &filters,
        data: data.as_ref(),
        deliveries_shown,
        error,
        public_url: &public_url,
        chrome: &chrome,
    };
    html_response(status, page.render())
}

/// What a form on the webhooks page asks for (`intent`) and its fields.
#[derive(Default, serde::Deserialize)]
pub struct WebhooksAction {
    #[serde(default)]
    intent: String,
    subscription: Option<String>,
    delivery: Option<String>,
    /// The page the form was on, to return to with the outcome.
    return_to: Option<String>,
    secret: Option<String>,
    secret_confirmation: Option<String>,
    overlap_hours: Option<String>,
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
    poem::web::Form(action): poem::web::Form<WebhooksAction>,
) -> Response {
    let chrome = Chrome::of(caller);
    let back = access::safe_next(action.return_to.as_deref()).to_owned();
    let wants_json =
        req.headers().get("accept").and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("application/json"));
    let result = match action.intent.as_str() {
        "rotate" => rotate(req, state, caller, action).await,
        "replay" | "replay_latest" => {
            let replayed = replay_action(req, state, caller, &action).await;
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
        "pause" | "resume" => {
            let pause = action.intent == "pause";
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
        other => Err(ApiError::bad_request(format!(
            "`{other}` is not an action of this page (expected rotate, replay, replay_latest, pause or resume)"
        ))),
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

/// Replays the form's delivery, or for `replay_latest` the newest delivery of the form's subscription.
async fn replay_action(
    req: &poem::Request,
    state: &AppState,
    caller: &Caller,
    a: &WebhooksAction,
) -> Result<ReplayOut, ApiError> {
    let delivery = match (a.intent.as_str(), &a.delivery, &a.subscription) {
        ("replay", Some(d), _) => d.clone(),
        ("replay_latest", _, Some(sub)) => {
            let params =
                DeliveryParams { subscription: Some(sub.clone()), limit: Some(1), ..DeliveryParams::default() };
            let page = dashboard_payload(state, query(params)?).await?;
            page.deliveries.items.into_iter().next().map(|d| d.id).ok_or_else(|| {
                ApiError::Conflict(poem_openapi::payload::Json(Problem::new(
                    Kind::NotReplayable,
                    format!("subscription `{sub}` has no deliveries to replay yet"),
                )))
            })?
        }
        _ => return Err(ApiError::bad_request("a replay needs `delivery` (or `subscription` for `replay_latest`)")),
    };
    replay(state, access::actor(&caller.principal, req), &delivery).await
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

/// The form's fields as the API's query: blank means any, `range` is a window ending now.
fn delivery_query(f: &Filters, now: Timestamp) -> Result<crate::loader::Query, ApiError> {
    let bad = |name: &str, value: &str, expected: String| {
        ApiError::bad_request(format!("`{name}` cannot be `{value}`: expected {expected}"))
    };
    let source = f.source.as_deref().map(|s| s.parse::<domain::Source>().map_err(ApiError::bad_request)).transpose()?;
    let status =
        f.status.as_deref().map(|s| s.parse::<domain::DeliveryStatus>().map_err(ApiError::bad_request)).transpose()?;
    // The form's time range wins over a `from` carried along from a link, so that changing it works.
    let from = match (&f.from, &f.range) {
        (from, None) => from.clone(),
        (_, Some(range)) => {
            let Some((_, _, ms)) = RANGES.iter().find(|(v, _, _)| v == range) else {
                let known: Vec<&str> = RANGES.iter().map(|(v, _, _)| *v).collect();
                return Err(bad("range", range, format!("one of {}", known.join(", "))));
            };
            Some(now.plus_millis(-ms).to_rfc3339())
        }
    };
    let limit = f
        .limit
        .as_deref()
        .map(|l| l.parse::<u32>().map_err(|_| bad("limit", l, "a whole number".into())))
        .transpose()?;
    query(DeliveryParams {
        q: f.q.clone(),
        source: source.map(Into::into),
        topic: f.topic.clone(),
        status: status.map(Into::into),
        subscription: f.subscription.clone(),
        account: f.account.clone(),
        from,
        to: f.to.clone(),
        cursor: f.cursor.clone(),
        limit,
    })
}

/// The delivery id in a page's path, or what the not-found page says.
fn delivery_id(raw: &str) -> Result<DeliveryId, String> {
    raw.parse().map_err(|_| format!("`{raw}` is not a delivery id"))
}

#[handler]
pub async fn view_delivery_get(
    Data(state): Data<&AppState>,
    Data(caller): Data<&Caller>,
    Path(raw): Path<String>,
    Query(notice): Query<Notice>,
) -> Response {
    let chrome = Chrome { notice, ..Chrome::of(caller) };
    let id = match delivery_id(&raw) {
        Ok(id) => id,
        Err(detail) => return not_found(&detail, &chrome),
    };
    let found = state
        .store
        .read(move |db| Ok::<_, StoreError>(deliveries::get_full(db, id)?.map(|f| (f, attempts::list(db, id)))))
        .await;
    match found {
        Ok(Some(((listed, payload), tried))) => {
            let body = Body::of(&payload.body);
            let delivery = DeliveryOut::new(listed, Some(payload.headers));
            let attempts: Vec<AttemptOut> = match tried {
                Ok(list) => list.into_iter().map(AttemptOut::from).collect(),
                Err(e) => return error_page(ApiError::from(e), &chrome),
            };
            let page = DeliveryView { delivery: &delivery, attempts: &attempts, body, chrome: &chrome };
            html_response(StatusCode::OK, page.render())
        }
        Ok(None) => {
            not_found(&format!("No delivery {id} is stored: it may have passed its retention period."), &chrome)
        }
        Err(e) => error_page(ApiError::from(e), &chrome),
    }
}

/// The exact body as a download. Never with the content type it arrived with: a body sent as HTML must
/// not run as a page of this origin.
#[handler]
pub async fn view_delivery_body_get(
    Data(state): Data<&AppState>,
    Data(caller): Data<&Caller>,
    Path(raw): Path<String>,
) -> Response {
    let chrome = Chrome::of(caller);
    let id = match delivery_id(&raw) {
        Ok(id) => id,
        Err(detail) => return not_found(&detail, &chrome),
    };
    match state.store.read(move |db| deliveries::body(db, id)).await {
        Ok(Some((d, payload))) => {
            let json = d.content_type.as_deref().is_some_and(|c| c.contains("json"));
            let name = format!("{id}.{}", if json { "json" } else { "bin" });
            Response::builder()
                .content_type("application/octet-stream")
                .header(header::CACHE_CONTROL, "no-store")
                .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\""))
                .header("x-content-sha256", d.body_sha256)
                .body(payload.body)
        }
        Ok(None) => not_found(&format!("No delivery {id} is stored."), &chrome),
        Err(e) => error_page(ApiError::from(e), &chrome),
    }
}

pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        // Figures change with every delivery: never show a stale page from the cache.
        .header(header::CACHE_CONTROL, "no-store")
        .body(markup.into_string())
}

/// A page with one banner; `sign_in` adds a link to the sign-in page.
fn message_page(
    status: StatusCode,
    title: &str,
    tone: Tone,
    detail: &str,
    chrome: &Chrome,
    sign_in: Option<&str>,
) -> Response {
    let main = html! {
        p.breadcrumb { a href=(paths::DASHBOARD_WEBHOOKS) { "← Webhooks" } }
        (Banner { tone, title, body: html! {
            p { (detail) }
            @if let Some(href) = sign_in { p { a href=(href) { "Sign in" } } }
        } })
    };
    html_response(status, layout::page(title, chrome, main))
}

fn not_found(detail: &str, chrome: &Chrome) -> Response {
    message_page(StatusCode::NOT_FOUND, "Not found", Tone::Warning, detail, chrome, None)
}

fn error_page(e: ApiError, chrome: &Chrome) -> Response {
    let (status, p) = e.problem();
    message_page(status, &p.title, Tone::Critical, &p.detail, chrome, None)
}

#[handler]
pub async fn view_audit_get(
    Data(state): Data<&AppState>,
    Data(caller): Data<&Caller>,
    Query(filters): Query<AuditParams>,
) -> Response {
    let chrome = Chrome::of(caller);
    let (status, page, error) = match audit_page(state, filters.clone()).await {
        Ok(p) => (StatusCode::OK, Some(p), None),
        Err(e) => {
            let (status, p) = e.problem();
            (status, None, Some(p.detail.clone()))
        }
    };
    html_response(status, AuditView { filters: &filters, page: page.as_ref(), error, chrome: &chrome }.render())
}

#[handler]
pub async fn view_audit_export_get(Data(state): Data<&AppState>, Query(filters): Query<AuditParams>) -> Response {
    match audit_export(state, filters).await {
        Ok(lines) => Response::builder()
            .content_type("application/x-ndjson")
            .header(header::CACHE_CONTROL, "no-store")
            .header(header::CONTENT_DISPOSITION, export_disposition(state))
            .body(lines),
        Err(e) => error_page(e, &Chrome::default()),
    }
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct TokensQuery {
    revoked: Option<String>,
}

#[handler]
pub async fn view_tokens_get(
    Data(state): Data<&AppState>,
    Data(caller): Data<&Caller>,
    Query(q): Query<TokensQuery>,
) -> Response {
    let notice = q.revoked.map(|name| (Tone::Success, format!("Revoked token {name}: it is refused from now on.")));
    tokens_page(state, caller, StatusCode::OK, None, notice).await
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct TokensAction {
    #[serde(default)]
    intent: String,
    name: Option<String>,
    role: Option<String>,
    token: Option<String>,
}

#[handler]
pub async fn view_tokens_post(
    req: &poem::Request,
    Data(state): Data<&AppState>,
    Data(caller): Data<&Caller>,
    poem::web::Form(action): poem::web::Form<TokensAction>,
) -> Response {
    let by = access::actor(&caller.principal, req);
    match action.intent.as_str() {
        "create" => {
            let role = action.role.as_deref().unwrap_or("").parse::<Role>();
            let made = match role {
                Ok(role) => {
                    let input = TokenIn { name: action.name.unwrap_or_default(), role: role.into() };
                    create_token(state, by, input).await
                }
                Err(e) => Err(ApiError::bad_request(e.to_string())),
            };
            match made {
                Ok(m) => tokens_page(state, caller, StatusCode::CREATED, Some(&m), None).await,
                Err(e) => tokens_error(state, caller, e).await,
            }
        }
        "revoke" => match revoke_token(state, by, action.token.as_deref().unwrap_or("")).await {
            Ok(t) => {
                let query = serde_urlencoded::to_string([("revoked", t.name.as_str())]).unwrap_or_default();
                let to = format!("{}?{query}", paths::DASHBOARD_TOKENS);
                see_other(&to)
            }
            Err(e) => tokens_error(state, caller, e).await,
        },
        other => {
            let e =
                ApiError::bad_request(format!("`{other}` is not an action of this page (expected create or revoke)"));
            tokens_error(state, caller, e).await
        }
    }
}

async fn tokens_error(state: &AppState, caller: &Caller, e: ApiError) -> Response {
    let (status, p) = e.problem();
    let notice = Some((Tone::Critical, format!("Nothing was changed: {}", p.detail)));
    tokens_page(state, caller, status, None, notice).await
}

async fn tokens_page(
    state: &AppState,
    caller: &Caller,
    status: StatusCode,
    made: Option<&TokenCreated>,
    notice: Option<(Tone, String)>,
) -> Response {
    let chrome = Chrome::of(caller);
    match state.store.read(crate::storage::tokens::list).await {
        Ok(all) => {
            let tokens: Vec<TokenOut> = all.into_iter().map(TokenOut::from).collect();
            html_response(status, TokensView { tokens: &tokens, made, notice, chrome: &chrome }.render())
        }
        Err(e) => error_page(ApiError::from(e), &chrome),
    }
}

/// The page for a request the guard turned away.
pub fn refused(r: Refusal) -> Response {
    let status = refusal_status(&r);
    let none = Chrome::default();
    match r {
        Refusal::SignIn { next } => {
            let query = serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default();
            see_other(&format!("{}?{query}", paths::LOGIN))
        }
        Refusal::Unauthorized(detail) => {
            message_page(status, "Sign in to continue", Tone::Warning, detail, &none, Some(paths::LOGIN))
        }
        Refusal::Forbidden(detail) => message_page(status, "Not allowed", Tone::Warning, &detail, &none, None),
        Refusal::Csrf => message_page(
            status,
            "This form has expired",
            Tone::Warning,
            "Nothing was changed: the form did not carry a valid token, which happens when it was open across a \
             sign-in or came from another site. Reload the page and try again.",
            &none,
            None,
        ),
        Refusal::Unavailable => message_page(
            status,
            "Not ready",
            Tone::Critical,
            "Hookplane cannot check who you are right now: its store is starting or unavailable. Try again shortly.",
            &none,
            None,
        ),
    }
}

/// The bulk replay form, and the cancel button's fields.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ReplaysAction {
    #[serde(default)]
    intent: String,
    id: Option<String>,
    #[serde(flatten)]
    filters: Filters,
    rate_per_second: Option<String>,
}

#[handler]
pub async fn view_replays_get(
    Data(state): Data<&AppState>,
    Data(caller): Data<&Caller>,
    Query(filters): Query<Filters>,
    Query(notice): Query<Notice>,
) -> Response {
    let chrome = Chrome { notice, ..Chrome::of(caller) };
    let loaded = state
        .store
        .read(|db| {
            let bulks = crate::storage::replays::list_bulk(db, 50)?;
            let subs = crate::storage::subscriptions::list(db)?;
            Ok::<_, StoreError>((bulks, subs))
        })
        .await;
    match loaded {
        Ok((bulks, subs)) => {
            let bulks: Vec<BulkReplayOut> = bulks.into_iter().map(Into::into).collect();
            let url = state.public_url();
            let subs: Vec<SubscriptionOut> = subs.into_iter().map(|s| SubscriptionOut::new(s, &[], &url)).collect();
            let filters = filters.normalized();
            let view = ReplaysView { bulks: &bulks, subscriptions: &subs, filters: &filters, chrome: &chrome };
            html_response(StatusCode::OK, view.render())
        }
        Err(e) => error_page(ApiError::from(e), &chrome),
    }
}

/// Count, start or cancel a bulk replay (admins), then back to the page with the outcome.
#[handler]
pub async fn view_replays_post(
    req: &poem::Request,
    Data(state): Data<&AppState>,
    Data(caller): Data<&Caller>,
    poem::web::Form(action): poem::web::Form<ReplaysAction>,
) -> Response {
    let chrome = Chrome::of(caller);
    let by = access::actor(&caller.principal, req);
    let result = match action.intent.as_str() {
        "count" | "start" => bulk_action(state, by, action).await,
        "cancel" => {
            let id = action.id.unwrap_or_default();
            match id.parse() {
                Ok(id) => match state.bulk.cancel(id, by).await {
                    Ok(b) => Ok(Notice::new("bulk_cancelled", &b.id.to_string(), None).on(paths::DASHBOARD_REPLAYS)),
                    Err(e) => Err(ApiError::from(e)),
                },
                Err(_) => Err(ApiError::bad_request(format!("`{id}` is not a bulk replay id"))),
            }
        }
        other => Err(ApiError::bad_request(format!(
            "`{other}` is not an action of this page (expected count, start or cancel)"
        ))),
    };
    match result {
        Ok(to) => see_other(&to),
        Err(e) => {
            let (status, p) = e.problem();
            message_page(status, "Nothing was replayed", Tone::Critical, &p.detail, &chrome, None)
        }
    }
}

async fn bulk_action(state: &AppState, by: crate::domain::audit::Actor, a: ReplaysAction) -> Result<String, ApiError> {
    let f = a.filters.normalized();
    let rate = match a.rate_per_second.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => Some(
            r.parse::<u32>()
                .map_err(|_| ApiError::bad_request(format!("`rate_per_second` must be a whole number, not `{r}`")))?,
        ),
        None => None,
    };
    let from = match f.range.as_deref() {
        Some(r) => {
            let (_, _, ms) = RANGES
                .iter()
                .find(|(v, _, _)| *v == r)
                .ok_or_else(|| ApiError::bad_request(format!("`{r}` is not a time window (1h, 24h, 7d or 30d)")))?;
            Some(state.clock.now().plus_millis(-ms).to_rfc3339())
        }
        None => f.from.clone(),
    };
    let filter = BulkFilter {
        q: f.q.clone(),
        source: f.source.clone(),
        topic: f.topic.clone(),
        status: f.status.clone(),
        subscription: f.subscription.clone(),
        account: f.account.clone(),
        from,
        to: f.to.clone(),
    };
    let back = format!("{}?{}", paths::DASHBOARD_REPLAYS, serde_urlencoded::to_string(&f).unwrap_or_default());
    match start_bulk_filter(state, by, filter, a.intent == "count", rate).await? {
        StartBulkResponse::Counted(p) => Ok(Notice::new("bulk_counted", "", Some(p.0.matched)).on(&back)),
        StartBulkResponse::Started(b) => {
            Ok(Notice::new("bulk_started", &b.0.id, Some(b.0.matched)).on(paths::DASHBOARD_REPLAYS))
        }
    }
}
