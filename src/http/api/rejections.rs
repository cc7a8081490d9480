use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use super::auth::ViewerAuth;
use super::error::ApiError;
use super::params::Limit;
use crate::contract::{RejectionCount, RejectionOut, RejectionsOut};
use crate::http::AppState;
use crate::storage::rejections;

#[derive(Default)]
pub struct RejectionsApi;

#[derive(ApiResponse)]
enum GetRejectionsResponse {
    #[oai(status = 200)]
    Ok(Json<RejectionsOut>),
}

#[OpenApi(tag = "ApiTags::Rejections")]
impl RejectionsApi {
    /// Refused requests: a count per cause, and the most recent ones (metadata only).
    #[oai(path = "/v1/rejections", method = "get", operation_id = "getRejections")]
    async fn get(
        &self,
        _auth: ViewerAuth,
        Data(state): Data<&AppState>,
        /// How many recent rejections to return, 0 to 500 (default 50).
        limit: Query<Option<Limit<0>>>,
    ) -> Result<GetRejectionsResponse, ApiError> {
        let limit = Limit::of(limit.0);
        let summary = state.store.read(move |db| rejections::summary(db, limit)).await?;
        Ok(GetRejectionsResponse::Ok(Json(RejectionsOut {
            counts: summary.counts.into_iter().map(|(c, n)| RejectionCount { cause: c.into(), count: n }).collect(),
            recent: summary.recent.into_iter().map(RejectionOut::from).collect(),
        })))
    }
}
