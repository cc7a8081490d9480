//! Operations endpoints: liveness, readiness, version.

use poem::web::{Data, Json};
use poem::{IntoResponse, Response, handler};
use serde_json::json;

use super::AppState;
use super::problem::{Kind, Problem};

/// Every part the process needs runs: the writer, the delivery queue, the search indexer, the secret sweep.
/// 503 as soon as one is gone, naming it, so that a container's health check, systemd or Kubernetes acts
/// (losing the writer or the queue also stops the process; the others restart in place).
#[handler]
pub async fn healthz(Data(state): Data<&AppState>) -> Response {
    let gone = state.vitals.gone();
    if gone.is_empty() {
        return Json(json!({ "status": "ok" })).into_response();
    }
    let detail = format!("not running: {}", gone.join(", "));
    Problem::new(Kind::Unhealthy, detail).response()
}

/// Storage is open and the writer and the queue run: the instance accepts traffic. Answers at once, never
/// waiting on storage, and says which part is not ready.
#[handler]
pub async fn readyz(Data(state): Data<&AppState>) -> Response {
    let not = state.not_ready();
    if not.is_empty() {
        return Json(json!({ "status": "ready" })).into_response();
    }
    let detail = not.iter().map(|(part, why)| format!("{part}: {why}")).collect::<Vec<_>>().join("; ");
    Problem::new(Kind::Rejected(crate::domain::RejectCause::StorageUnavailable), detail).response()
}

#[handler]
pub async fn version() -> Json<serde_json::Value> {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "git_sha": env!("BUILD_GIT_SHA"),
        "build_time": env!("BUILD_TIME"),
    }))
}
