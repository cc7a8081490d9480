//! `GET /dashboard/audit` and its export.

use maud::Render;
use poem::http::StatusCode;
use poem::http::header;
use poem::web::{Data, Query};
use poem::{Response, handler};

use super::{error_page, html_response};
use crate::contract::{AuditParams, Caller};
use crate::http::AppState;
use crate::http::api::{audit_export, audit_page, export_disposition};
use crate::views::audit::AuditView;
use crate::views::layout::Chrome;
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
