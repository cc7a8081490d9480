//! Operations endpoints: liveness, readiness, version.

use poem::web::{Data, Json};
use poem::{IntoResponse, Response, handler};
use serde_json::json;

use super::AppState;
use super::problem::{Kind, Problem};

/// Every part the process needs runs: the writer, the delivery queue, the search indexer, the secret sweep.
/// 503 naming what is gone, so that a container's health check, systemd or Kubernetes acts: at once for the
/// writer or the queue (whose loss also stops the process), and for a part that restarts in place (the
/// indexer, the sweep) once it has stayed gone past `task::RESTART_GRACE`; until then 200, `degraded`.
#[handler]
pub async fn healthz(Data(state): Data<&AppState>) -> Response {
    let unhealthy = state.vitals.unhealthy(std::time::Instant::now());
    if !unhealthy.is_empty() {
        return Problem::new(Kind::Unhealthy, format!("not running: {}", unhealthy.join(", "))).response();
    }
    match state.vitals.gone().as_slice() {
        [] => Json(json!({ "status": "ok" })).into_response(),
        restarting => Json(json!({ "status": "degraded", "restarting": restarting })).into_response(),
    }
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
