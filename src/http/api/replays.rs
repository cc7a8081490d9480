use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use super::auth::{AdminAuth, ViewerAuth};
use super::body::JsonIn;
use super::error::{ApiError, BodyError};
use super::params::Id;
use crate::contract::{BulkReplayIn, BulkReplayOut, BulkReplayPreview};
use crate::control::bulk::{self, BulkError};
use crate::domain::BulkReplayId;
use crate::domain::audit::Actor;
use crate::domain::filter::DeliveryFilter;
use crate::domain::replay::{BULK_DEFAULT_RATE, BULK_MAX, BULK_MAX_RATE};
use crate::http::AppState;
use crate::http::problem::{Kind, Problem};
use crate::storage::replays;

#[derive(Default)]
pub struct ReplaysApi;

#[derive(ApiResponse)]
pub(crate) enum StartBulkResponse {
    /// A dry run: what would be replayed.
    #[oai(status = 200)]
    Counted(Json<BulkReplayPreview>),
    /// Started: it runs in the background; follow it at `GET /api/v1/replays/{id}`.
    #[oai(status = 202)]
    Started(Json<Box<BulkReplayOut>>),
}

#[derive(ApiResponse)]
enum BulkResponse {
    #[oai(status = 200)]
    Ok(Json<BulkReplayOut>),
}

#[derive(ApiResponse)]
enum ListBulkResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<BulkReplayOut>>),
}

impl From<BulkError> for ApiError {
    fn from(e: BulkError) -> Self {
        match e {
            BulkError::Invalid(m) => ApiError::bad_request(m),
            BulkError::NotFound(m) => ApiError::not_found(m),
            BulkError::Ended(m) => Problem::new(Kind::Conflict, m).into(),
            BulkError::Load(l) => l.into(),
        }
    }
}

/// Counts, or starts, a bulk replay for `by`.
async fn start_bulk(state: &AppState, by: Actor, input: BulkReplayIn) -> Result<StartBulkResponse, ApiError> {
    let filter = DeliveryFilter::from(input.filter);
    start_bulk_filter(state, by, filter, input.dry_run, input.rate_per_second).await
}

/// Counts (`dry_run`), or starts, a bulk replay of what `filter` matches: shared by the API and the
/// dashboard.
pub(crate) async fn start_bulk_filter(
    state: &AppState,
    by: Actor,
    filter: DeliveryFilter,
    dry_run: bool,
    rate: Option<u32>,
) -> Result<StartBulkResponse, ApiError> {
    if filter.is_empty() {
        return Err(ApiError::bad_request(
            "give at least one filter (`status`, `subscription`, `topic`, `source`, `account`, `from`, `to` or `q`): \
             a bulk replay of everything is refused",
        ));
    }
    let rate = rate.unwrap_or(BULK_DEFAULT_RATE);
    if !(1..=BULK_MAX_RATE).contains(&rate) {
        return Err(ApiError::bad_request(format!(
            "`rate_per_second` must be between 1 and {BULK_MAX_RATE}, not {rate}"
        )));
    }
    let query = bulk::query_of(&filter)?;
    let matched = state.bulk.count(query).await?;
    if dry_run {
        return Ok(StartBulkResponse::Counted(Json(BulkReplayPreview {
            matched: matched.min(BULK_MAX + 1),
            limit: BULK_MAX,
        })));
    }
    if matched > BULK_MAX {
        return Err(ApiError::bad_request(format!(
            "more than {BULK_MAX} deliveries match: narrow the filter (a time window, a status, a subscription)"
        )));
    }
    if matched == 0 {
        return Err(Problem::new(Kind::NotReplayable, "no delivery matches the filter").into());
    }
    let started = state.bulk.start(filter, matched, rate, by).await?;
    Ok(StartBulkResponse::Started(Json(Box::new(started.into()))))
}

#[OpenApi(tag = "ApiTags::Replays")]
impl ReplaysApi {
    /// Replay every delivery matching a filter (all of them, not one page), in the background at its own
    /// rate. With `dry_run`, only count them. Admins only; each replay is audited and skips deliveries
    /// replayed in the last 5 minutes.
    #[oai(path = "/v1/replays", method = "post", operation_id = "startBulkReplay")]
    async fn start(
        &self,
        auth: AdminAuth,
        req: &poem::Request,
        Data(state): Data<&AppState>,
        body: JsonIn<BulkReplayIn>,
    ) -> Result<StartBulkResponse, BodyError> {
        Ok(start_bulk(state, crate::http::access::actor(&auth.0, req), body.0).await?)
    }

    /// The newest bulk replays with their progress, newest first.
    #[oai(path = "/v1/replays", method = "get", operation_id = "listBulkReplays")]
    async fn list(&self, _auth: ViewerAuth, Data(state): Data<&AppState>) -> Result<ListBulkResponse, ApiError> {
        let found = state.store.read(|db| replays::list_bulk(db, 50)).await?;
        Ok(ListBulkResponse::Ok(Json(found.into_iter().map(Into::into).collect())))
    }

    /// One bulk replay and its progress.
    #[oai(path = "/v1/replays/:id", method = "get", operation_id = "getBulkReplay")]
    async fn get(
        &self,
        _auth: ViewerAuth,
        Data(state): Data<&AppState>,
        id: Path<Id<BulkReplayId>>,
    ) -> Result<BulkResponse, ApiError> {
        let id = id.0.0;
        let found = state.store.read(move |db| replays::get_bulk(db, id)).await?;
        let bulk = found.ok_or_else(|| ApiError::not_found(format!("no bulk replay {id}")))?;
        Ok(BulkResponse::Ok(Json(bulk.into())))
    }

    /// Stop a running bulk replay. What it replayed stays replayed.
    #[oai(path = "/v1/replays/:id/cancel", method = "post", operation_id = "cancelBulkReplay")]
    async fn cancel(
        &self,
        auth: AdminAuth,
        req: &poem::Request,
        Data(state): Data<&AppState>,
        id: Path<Id<BulkReplayId>>,
    ) -> Result<BulkResponse, ApiError> {
        let id = id.0.0;
        let by = crate::http::access::actor(&auth.0, req);
        Ok(BulkResponse::Ok(Json(state.bulk.cancel(id, by).await?.into())))
    }
}
