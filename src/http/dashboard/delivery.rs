//! `GET /dashboard/webhooks/deliveries/{id}` and its body as a download.

use maud::Render;
use poem::http::StatusCode;
use poem::http::header;
use poem::web::{Data, Path, Query};
use poem::{Response, handler};

use super::{error_page, html_response, not_found};
use crate::contract::{AttemptOut, Caller, DeliveryOut};
use crate::domain::DeliveryId;
use crate::domain::subscription::Destination;
use crate::http::AppState;
use crate::http::api::ApiError;
use crate::storage::{StoreError, attempts, deliveries};
use crate::views::delivery::{Body, DeliveryPage as DeliveryView};
use crate::views::layout::Chrome;
use crate::views::notice::Notice;
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
        .read(move |db| {
            let Some(full) = deliveries::get_full(db, id)? else { return Ok::<_, StoreError>(None) };
            let sub = crate::storage::subscriptions::get(db, full.0.delivery.subscription_id)?;
            let forwards = sub.is_some_and(|s| matches!(s.destination, Destination::Http { .. }));
            Ok(Some((full, attempts::list(db, id), forwards)))
        })
        .await;
    match found {
        Ok(Some(((listed, payload), tried, forwards))) => {
            let body = Body::of(&payload.body);
            let delivery = DeliveryOut::new(listed, Some(payload.headers));
            let attempts: Vec<AttemptOut> = match tried {
                Ok(list) => list.into_iter().map(AttemptOut::from).collect(),
                Err(e) => return error_page(ApiError::from(e), &chrome),
            };
            let page = DeliveryView { delivery: &delivery, attempts: &attempts, body, forwards, chrome: &chrome };
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
