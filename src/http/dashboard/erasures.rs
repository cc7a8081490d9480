//! `GET` and `POST /dashboard/erasures` (admins): privacy erasures, counted, started and cancelled.

use maud::Render;
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{Response, handler};

use super::{Intent, error_page, html_response, message_page, see_other};
use crate::contract::paths;
use crate::contract::{Caller, ErasureOut, SubscriptionOut};
use crate::http::AppState;
use crate::http::access;
use crate::http::api::{ApiError, StartErasureResponse, start_erasure};
use crate::storage::StoreError;
use crate::views::components::Tone;
use crate::views::erasures::ErasuresView;
use crate::views::layout::Chrome;
use crate::views::notice::Notice;
use crate::views::webhooks::Filters;

/// What the erasures page's forms ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErasuresIntent {
    Count,
    Start,
    Cancel,
}

/// The erasure form, and the cancel button's fields.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ErasuresAction {
    #[serde(default)]
    intent: Intent<ErasuresIntent>,
    id: Option<String>,
    #[serde(flatten)]
    filters: Filters,
    reason: Option<String>,
    confirm: Option<String>,
}

/// The page's query: the filters and reason of a counted erasure, so "Erase them" follows a count.
#[derive(Debug, Default, serde::Deserialize, serde::Serialize)]
pub struct Reason {
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[handler]
pub async fn view_erasures_get(
    Data(state): Data<&AppState>,
    Data(caller): Data<&Caller>,
    Query(filters): Query<Filters>,
    Query(reason): Query<Reason>,
    Query(notice): Query<Notice>,
) -> Response {
    let chrome = Chrome { notice, ..Chrome::of(caller) };
    let loaded = state
        .store
        .read(|db| {
            let found = crate::storage::erasures::list(db, 50)?;
            let subs = crate::storage::subscriptions::list(db)?;
            Ok::<_, StoreError>((found, subs))
        })
        .await;
    match loaded {
        Ok((found, subs)) => {
            let erasures: Vec<ErasureOut> = found.into_iter().map(Into::into).collect();
            let url = state.public_url();
            let subs: Vec<SubscriptionOut> = subs.into_iter().map(|s| SubscriptionOut::new(s, &[], &url)).collect();
            let filters = filters.normalized();
            let view = ErasuresView {
                erasures: &erasures,
                subscriptions: &subs,
                filters: &filters,
                reason: reason.reason.as_deref(),
                honors_redact: state.erasures.honors_redact(),
                chrome: &chrome,
            };
            html_response(StatusCode::OK, view.render())
        }
        Err(e) => error_page(ApiError::from(e), &chrome),
    }
}

/// Count, start or cancel an erasure, then back to the page with the outcome.
#[handler]
pub async fn view_erasures_post(
    req: &poem::Request,
    Data(state): Data<&AppState>,
    Data(caller): Data<&Caller>,
    poem::web::Form(mut action): poem::web::Form<ErasuresAction>,
) -> Response {
    let chrome = Chrome::of(caller);
    let by = access::actor(&caller.principal, req);
    let result = match std::mem::take(&mut action.intent).known("count, start or cancel") {
        Err(e) => Err(e),
        Ok(intent @ (ErasuresIntent::Count | ErasuresIntent::Start)) => erase(state, by, intent, action).await,
        Ok(ErasuresIntent::Cancel) => {
            let id = action.id.unwrap_or_default();
            match id.parse() {
                Ok(id) => match state.erasures.cancel(id, by).await {
                    Ok(e) => {
                        Ok(Notice::new("erasure_cancelled", &e.id.to_string(), None).on(paths::DASHBOARD_ERASURES))
                    }
                    Err(e) => Err(ApiError::from(e)),
                },
                Err(_) => Err(ApiError::bad_request(format!("`{id}` is not an erasure id"))),
            }
        }
    };
    match result {
        Ok(to) => see_other(&to),
        Err(e) => {
            let (status, p) = e.problem();
            message_page(status, "Nothing was erased", Tone::Critical, &p.detail, &chrome, None)
        }
    }
}

async fn erase(
    state: &AppState,
    by: crate::domain::audit::Actor,
    intent: ErasuresIntent,
    a: ErasuresAction,
) -> Result<String, ApiError> {
    let f = a.filters.normalized();
    let filter = f.delivery_filter(state.clock.now()).map_err(ApiError::bad_request)?;
    let confirm = a.confirm.as_deref() == Some("true");
    let dry_run = intent == ErasuresIntent::Count;
    let reason = a.reason.filter(|r| !r.trim().is_empty());
    let query = [serde_urlencoded::to_string(&f), serde_urlencoded::to_string(Reason { reason: reason.clone() })]
        .into_iter()
        .flatten()
        .filter(|q| !q.is_empty())
        .collect::<Vec<_>>()
        .join("&");
    let back = format!("{}?{query}", paths::DASHBOARD_ERASURES);
    match start_erasure(state, by, filter, dry_run, confirm, reason).await? {
        StartErasureResponse::Counted(p) => Ok(Notice::new("erasure_counted", "", Some(p.0.matched)).on(&back)),
        StartErasureResponse::Started(e) => {
            Ok(Notice::new("erasure_started", &e.0.id, Some(e.0.matched)).on(paths::DASHBOARD_ERASURES))
        }
    }
}
