use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use super::auth::{AdminAuth, ViewerAuth};
use super::body::JsonIn;
use super::error::{ApiError, BodyError};
use crate::contract::{DeployIn, DeployOut, DestinationVersionsOut};
use crate::deploys::DeployError;
use crate::http::AppState;

#[derive(Default)]
pub struct DeploysApi;

#[derive(ApiResponse)]
enum AnnounceResponse {
    /// Recorded; the drift rules compare the destinations' versions with it once `drift.grace_minutes` pass.
    #[oai(status = 201)]
    Created(Json<DeployOut>),
}

#[derive(ApiResponse)]
enum VersionsResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<DestinationVersionsOut>>),
}

impl From<DeployError> for ApiError {
    fn from(e: DeployError) -> Self {
        match e {
            DeployError::Invalid(m) => ApiError::bad_request(m),
            DeployError::Store(s) => s.into(),
        }
    }
}

#[OpenApi(tag = "ApiTags::Deploys")]
impl DeploysApi {
    /// Announce that a service was deployed at a version (from a deploy pipeline). Past
    /// `drift.grace_minutes`, a destination of that service still answering with a version older than the
    /// deploy before this one raises a `version_drift` banner. Admins only; audited.
    #[oai(path = "/v1/deploys", method = "post", operation_id = "announceDeploy")]
    async fn announce(
        &self,
        auth: AdminAuth,
        req: &poem::Request,
        Data(state): Data<&AppState>,
        body: JsonIn<DeployIn>,
    ) -> Result<AnnounceResponse, BodyError> {
        let by = crate::http::access::actor(&auth.0, req);
        let DeployIn { service, version } = body.0;
        Ok(AnnounceResponse::Created(Json(state.deploys.announce(service, version, by).await?.into())))
    }

    /// Each forwarding subscription's destination: the versions it answered with (first and last seen),
    /// the deploys announced for its service, and the drift warnings that hold now.
    #[oai(path = "/v1/deploys", method = "get", operation_id = "listDestinationVersions")]
    async fn list(&self, _auth: ViewerAuth, Data(state): Data<&AppState>) -> Result<VersionsResponse, ApiError> {
        let (now, grace) = (state.clock.now(), state.settings.alert_rules.drift_grace_ms);
        let found = state.store.read(move |db| crate::loader::destination_versions(db, now, grace)).await?;
        Ok(VersionsResponse::Ok(Json(found.into_iter().map(Into::into).collect())))
    }
}
