//! `GET` and `POST /dashboard/replays`: bulk replays, counted, started and cancelled.

use maud::Render;
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{Response, handler};

use super::{Intent, error_page, html_response, message_page, see_other};
use crate::contract::SubscriptionOut;
use crate::contract::paths;
use crate::contract::{BulkReplayOut, Caller};
use crate::http::AppState;
use crate::http::access;
use crate::http::api::{ApiError, StartBulkResponse, start_bulk_filter};
use crate::storage::StoreError;
use crate::views::components::Tone;
use crate::views::layout::Chrome;
use crate::views::notice::Notice;
use crate::views::replays::ReplaysView;
use crate::views::webhooks::Filters;
/// What the replays page's forms ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplaysIntent {
    Count,
    Start,
    Cancel,
}

/// The bulk replay form, and the cancel button's fields.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ReplaysAction {
    #[serde(default)]
    intent: Intent<ReplaysIntent>,
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
    poem::web::Form(mut action): poem::web::Form<ReplaysAction>,
) -> Response {
    let chrome = Chrome::of(caller);
    let by = access::actor(&caller.principal, req);
    let result = match std::mem::take(&mut action.intent).known("count, start or cancel") {
        Err(e) => Err(e),
        Ok(intent @ (ReplaysIntent::Count | ReplaysIntent::Start)) => bulk_action(state, by, intent, action).await,
        Ok(ReplaysIntent::Cancel) => {
            let id = action.id.unwrap_or_default();
            match id.parse() {
                Ok(id) => match state.bulk.cancel(id, by).await {
                    Ok(b) => Ok(Notice::new("bulk_cancelled", &b.id.to_string(), None).on(paths::DASHBOARD_REPLAYS)),
                    Err(e) => Err(ApiError::from(e)),
                },
                Err(_) => Err(ApiError::bad_request(format!("`{id}` is not a bulk replay id"))),
            }
        }
    };
    match result {
        Ok(to) => see_other(&to),
        Err(e) => {
            let (status, p) = e.problem();
            message_page(status, "Nothing was replayed", Tone::Critical, &p.detail, &chrome, None)
        }
    }
}

async fn bulk_action(
    state: &AppState,
    by: crate::domain::audit::Actor,
    intent: ReplaysIntent,
    a: ReplaysAction,
) -> Result<String, ApiError> {
    let f = a.filters.normalized();
    let rate = match a.rate_per_second.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => Some(
            r.parse::<u32>()
                .map_err(|_| ApiError::bad_request(format!("`rate_per_second` must be a whole number, not `{r}`")))?,
        ),
        None => None,
    };
    let filter = f.delivery_filter(state.clock.now()).map_err(ApiError::bad_request)?;
    let back = format!("{}?{}", paths::DASHBOARD_REPLAYS, serde_urlencoded::to_string(&f).unwrap_or_default());
    match start_bulk_filter(state, by, filter, intent == ReplaysIntent::Count, rate).await? {
        StartBulkResponse::Counted(p) => Ok(Notice::new("bulk_counted", "", Some(p.0.matched)).on(&back)),
        StartBulkResponse::Started(b) => {
            Ok(Notice::new("bulk_started", &b.0.id, Some(b.0.matched)).on(paths::DASHBOARD_REPLAYS))
        }
    }
}
