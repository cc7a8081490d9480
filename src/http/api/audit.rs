use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use super::auth::AdminAuth;
use super::error::ApiError;
use super::params::{Choice, Id, Limit, Time};
use crate::contract::{AuditEntryOut, AuditPage, AuditParams};
use crate::domain::audit::{AuditAction, AuditEntry};
use crate::domain::filter::time_range;
use crate::domain::ids::AuditId;
use crate::http::AppState;
use crate::storage::audit::{self, AuditFilter};

/// Rows read per store call while exporting, so one export never holds a read transaction for long.
const EXPORT_CHUNK: usize = 1_000;

#[derive(Default)]
pub struct AuditApi;

#[derive(ApiResponse)]
enum ListAuditResponse {
    #[oai(status = 200)]
    Ok(Json<AuditPage>),
}

#[derive(ApiResponse)]
enum ExportAuditResponse {
    /// One JSON object per line (the `AuditEntryOut` shape), oldest first.
    #[oai(status = 200, content_type = "application/x-ndjson")]
    Ok(PlainText<String>, #[oai(header = "Content-Disposition")] String),
}

/// One page of the audit log, newest first.
pub(crate) async fn audit_page(state: &AppState, params: AuditParams) -> Result<AuditPage, ApiError> {
    let limit = Limit::<1>::check(params.limit)?;
    let before = params
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.parse::<AuditId>()
                .map_err(|_| ApiError::bad_request(format!("`cursor` is not a cursor from this API: `{c}`")))
        })
        .transpose()?;
    let filter = params.filter()?;
    let (items, next) = state.store.read(move |db| audit::list(db, &filter, before, limit)).await?;
    Ok(AuditPage {
        items: items.into_iter().map(AuditEntryOut::from).collect(),
        next_cursor: next.map(|id| id.to_string()),
    })
}

/// Every entry matching `params` (cursor and limit aside) as JSON lines, oldest first.
pub(crate) async fn audit_export(state: &AppState, params: AuditParams) -> Result<String, ApiError> {
    let filter = params.filter()?;
    let mut entries: Vec<AuditEntry> = Vec::new();
    let mut before = None;
    loop {
        let f = filter.clone();
        let (page, next) = state.store.read(move |db| audit::list(db, &f, before, EXPORT_CHUNK)).await?;
        entries.extend(page);
        match next {
            Some(n) => before = Some(n),
            None => break,
        }
    }
    let mut out = String::new();
    for e in entries.into_iter().rev() {
        // Strings and options only: serialising cannot fail.
        out.push_str(&serde_json::to_string(&AuditEntryOut::from(e)).unwrap_or_default());
        out.push('\n');
    }
    Ok(out)
}

/// The `Content-Disposition` of an export.
pub(crate) fn export_disposition(state: &AppState) -> String {
    format!("attachment; filename=\"hookplane-audit-{}.jsonl\"", state.clock.now().to_rfc3339().replace(':', ""))
}

impl AuditParams {
    fn filter(self) -> Result<AuditFilter, ApiError> {
        let action = self
            .action
            .as_deref()
            .filter(|a| !a.is_empty())
            .map(str::parse::<AuditAction>)
            .transpose()
            .map_err(ApiError::bad_request)?;
        let (from, to) = time_range(self.from.as_deref(), self.to.as_deref()).map_err(ApiError::bad_request)?;
        let blank = |v: Option<String>| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        Ok(AuditFilter { action, performed_by: blank(self.performed_by), target_id: blank(self.target_id), from, to })
    }
}

#[OpenApi(tag = "ApiTags::Audit")]
impl AuditApi {
    /// The audit log, newest first: every sign-in, sign-out, failed sign-in, and change made by an operator,
    /// token or the command line, with the fields it changed (secrets only as digests).
    #[oai(path = "/v1/audit", method = "get", operation_id = "listAudit")]
    #[allow(clippy::too_many_arguments)] // one parameter per documented query filter
    async fn list(
        &self,
        _auth: AdminAuth,
        Data(state): Data<&AppState>,
        /// Only this action, e.g. `sign_in_failed`.
        action: Query<Option<Choice<AuditAction>>>,
        /// Only entries by this principal, e.g. `operator:alice`, `token:deploy`, `cli`.
        performed_by: Query<Option<String>>,
        /// Only entries about this target id.
        target_id: Query<Option<String>>,
        /// Entries at or after this time (RFC 3339).
        from: Query<Option<Time>>,
        /// Entries before this time (RFC 3339).
        to: Query<Option<Time>>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<Id<AuditId>>>,
        /// Page size, 1 to 500 (default 50).
        limit: Query<Option<Limit>>,
    ) -> Result<ListAuditResponse, ApiError> {
        let params = AuditParams {
            action: action.0.map(|a| a.0.as_str().to_owned()),
            performed_by: performed_by.0,
            target_id: target_id.0,
            from: from.0.map(|t| t.0),
            to: to.0.map(|t| t.0),
            cursor: cursor.0.map(|c| c.0.to_string()),
            limit: limit.0.map(Limit::get),
        };
        Ok(ListAuditResponse::Ok(Json(audit_page(state, params).await?)))
    }

    /// Every entry matching the filters as JSON lines, oldest first: for archiving or a SIEM.
    #[oai(path = "/v1/audit/export", method = "get", operation_id = "exportAudit")]
    #[allow(clippy::too_many_arguments)] // one parameter per documented query filter
    async fn export(
        &self,
        _auth: AdminAuth,
        Data(state): Data<&AppState>,
        /// Only this action.
        action: Query<Option<Choice<AuditAction>>>,
        /// Only entries by this principal.
        performed_by: Query<Option<String>>,
        /// Only entries about this target id.
        target_id: Query<Option<String>>,
        /// Entries at or after this time (RFC 3339).
        from: Query<Option<Time>>,
        /// Entries before this time (RFC 3339).
        to: Query<Option<Time>>,
    ) -> Result<ExportAuditResponse, ApiError> {
        let params = AuditParams {
            action: action.0.map(|a| a.0.as_str().to_owned()),
            performed_by: performed_by.0,
            target_id: target_id.0,
            from: from.0.map(|t| t.0),
            to: to.0.map(|t| t.0),
            ..AuditParams::default()
        };
        let out = audit_export(state, params).await?;
        Ok(ExportAuditResponse::Ok(PlainText(out), export_disposition(state)))
    }
}
