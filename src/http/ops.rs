//! Operations endpoints: liveness, readiness, version.

use poem::web::{Data, Json};
use poem::{IntoResponse, Response, handler};
use serde_json::json;

use super::AppState;
use super::problem::{Kind, Problem};

/// The process is alive.
#[handler]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Storage is open and the writer runs: the instance accepts traffic.
#[handler]
pub async fn readyz(Data(state): Data<&AppState>) -> Response {
    if state.ready() {
        Json(json!({ "status": "ready" })).into_response()
    } else {
        Problem::new(Kind::Rejected(crate::domain::RejectCause::StorageUnavailable), "storage is not accepting writes")
            .response()
    }
}

#[handler]
pub async fn version() -> Json<serde_json::Value> {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "git_sha": env!("BUILD_GIT_SHA"),
        "build_time": env!("BUILD_TIME"),
    }))
}
