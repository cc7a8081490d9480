use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use super::auth::AdminAuth;
use super::body::JsonIn;
use super::error::{ApiError, BodyError};
use super::params::Id;
use crate::contract::{ErasureIn, ErasureOut, ErasurePreview};
use crate::control::erasures::COUNT_MOST;
use crate::domain::ErasureId;
use crate::domain::audit::Actor;
use crate::domain::filter::DeliveryFilter;
use crate::http::AppState;
use crate::storage::erasures;

/// Longest reason kept with an erasure.
const MAX_REASON_CHARS: usize = 200;

#[derive(Default)]
pub struct ErasuresApi;

#[derive(ApiResponse)]
pub(crate) enum StartErasureResponse {
    /// A dry run: how many payloads would be erased.
    #[oai(status = 200)]
    Counted(Json<ErasurePreview>),
    /// Started: it runs in the background; follow it at `GET /api/v1/erasures/{id}`.
    #[oai(status = 202)]
    Started(Json<Box<ErasureOut>>),
}

#[derive(ApiResponse)]
enum ErasureResponse {
    #[oai(status = 200)]
    Ok(Json<ErasureOut>),
}

#[derive(ApiResponse)]
enum ListErasuresResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<ErasureOut>>),
}

/// Counts (`dry_run`), or starts, an erasure of what `filter` matches: shared by the API and the dashboard.
pub(crate) async fn start_erasure(
    state: &AppState,
    by: Actor,
    filter: DeliveryFilter,
    dry_run: bool,
    confirm: bool,
    reason: Option<String>,
) -> Result<StartErasureResponse, ApiError> {
    if filter.is_empty() {
        return Err(ApiError::bad_request(
            "give at least one filter (`q`, `account`, `subscription`, `topic`, `source`, `status`, `from` or `to`): \
             an erasure of everything is refused",
        ));
    }
    let reason = reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
    if let Some(r) = &reason
        && r.chars().count() > MAX_REASON_CHARS
    {
        return Err(ApiError::bad_request(format!("`reason` is longer than {MAX_REASON_CHARS} characters")));
    }
    if !dry_run && !confirm {
        return Err(ApiError::bad_request(
            "an erased payload cannot be brought back: count first (`dry_run`), then send `confirm: true` to erase",
        ));
    }
    let matched = state.erasures.count(&filter).await?;
    if dry_run {
        return Ok(StartErasureResponse::Counted(Json(ErasurePreview {
            matched: matched.min(COUNT_MOST + 1),
            counted_up_to: COUNT_MOST,
        })));
    }
    let started = state.erasures.start(filter, matched, reason, by).await?;
    Ok(StartErasureResponse::Started(Json(Box::new(started.into()))))
}

#[OpenApi(tag = "ApiTags::Erasures")]
impl ErasuresApi {
    /// Erase the payloads of every delivery matching a filter, to answer a data-subject request: each body
    /// becomes a tombstone and leaves the search index; arrival, topic, status and attempts stay. With
    /// `dry_run`, only count them; otherwise `confirm` must be true. Deliveries whose attempts are under way
    /// are left (counted as `busy`). Admins only; audited.
    #[oai(path = "/v1/erasures", method = "post", operation_id = "startErasure")]
    async fn start(
        &self,
        auth: AdminAuth,
        req: &poem::Request,
        Data(state): Data<&AppState>,
        body: JsonIn<ErasureIn>,
    ) -> Result<StartErasureResponse, BodyError> {
        let input = body.0;
        let by = crate::http::access::actor(&auth.0, req);
        start_erasure(state, by, DeliveryFilter::from(input.filter), input.dry_run, input.confirm, input.reason)
            .await
            .map_err(BodyError::from)
    }

    /// The newest erasures with their progress, newest first (admins only: their filters may name a
    /// person).
    #[oai(path = "/v1/erasures", method = "get", operation_id = "listErasures")]
    async fn list(&self, _auth: AdminAuth, Data(state): Data<&AppState>) -> Result<ListErasuresResponse, ApiError> {
        let found = state.store.read(|db| erasures::list(db, 50)).await?;
        Ok(ListErasuresResponse::Ok(Json(found.into_iter().map(Into::into).collect())))
    }

    /// One erasure and its progress.
    #[oai(path = "/v1/erasures/:id", method = "get", operation_id = "getErasure")]
    async fn get(
        &self,
        _auth: AdminAuth,
        Data(state): Data<&AppState>,
        id: Path<Id<ErasureId>>,
    ) -> Result<ErasureResponse, ApiError> {
        let id = id.0.0;
        let found = state.store.read(move |db| erasures::get(db, id)).await?;
        let e = found.ok_or_else(|| ApiError::not_found(format!("no erasure {id}")))?;
        Ok(ErasureResponse::Ok(Json(e.into())))
    }

    /// Stop a running erasure. What it erased stays erased.
    #[oai(path = "/v1/erasures/:id/cancel", method = "post", operation_id = "cancelErasure")]
    async fn cancel(
        &self,
        auth: AdminAuth,
        req: &poem::Request,
        Data(state): Data<&AppState>,
        id: Path<Id<ErasureId>>,
    ) -> Result<ErasureResponse, ApiError> {
        let id = id.0.0;
        let by = crate::http::access::actor(&auth.0, req);
        Ok(ErasureResponse::Ok(Json(state.erasures.cancel(id, by).await?.into())))
    }
}
