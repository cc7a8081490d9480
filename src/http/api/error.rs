use poem_openapi::ApiResponse;
use poem_openapi::payload::Json;

use crate::control::{ControlError, ReplayError};
use crate::domain::replay::Limited;
use crate::http::problem::{Kind, Problem};
use crate::loader::LoadError;
use crate::search::SearchError;
use crate::storage::StoreError;

/// The errors any operation can answer with, as problem documents.
#[derive(ApiResponse, Debug)]
pub enum ApiError {
    /// The request is malformed or a value is invalid; `detail` says which.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// Missing or invalid bearer token.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// The credential's role is below what the operation needs.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// No such resource.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// The request conflicts with existing state (a name or key already taken).
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// A rate limit was reached; `code` says which, `Retry-After` when to try again.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Json<Problem>, #[oai(header = "Retry-After")] u32),
    /// An internal error; the server log has the details.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// Storage cannot be reached right now; retry after the given number of seconds.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] u32),
}

impl ApiError {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::BadRequest(Json(Problem::new(Kind::InvalidRequest, detail)))
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        ApiError::Forbidden(Json(Problem::new(Kind::Forbidden, detail)))
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        ApiError::NotFound(Json(Problem::new(Kind::NotFound, detail)))
    }

    /// The status and problem document, for answers that are not JSON (the dashboard's pages).
    pub fn problem(&self) -> (poem::http::StatusCode, &Problem) {
        use poem::http::StatusCode;
        match self {
            ApiError::BadRequest(p) => (StatusCode::BAD_REQUEST, &p.0),
            ApiError::Unauthorized(p) => (StatusCode::UNAUTHORIZED, &p.0),
            ApiError::Forbidden(p) => (StatusCode::FORBIDDEN, &p.0),
            ApiError::NotFound(p) => (StatusCode::NOT_FOUND, &p.0),
            ApiError::Conflict(p) => (StatusCode::CONFLICT, &p.0),
            ApiError::TooManyRequests(p, _) => (StatusCode::TOO_MANY_REQUESTS, &p.0),
            ApiError::Internal(p) => (StatusCode::INTERNAL_SERVER_ERROR, &p.0),
            ApiError::Unavailable(p, _) => (StatusCode::SERVICE_UNAVAILABLE, &p.0),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let p = Problem::from(&e);
        match e {
            StoreError::Unavailable(_) => ApiError::Unavailable(Json(p), 5),
            StoreError::Conflict(_) => ApiError::Conflict(Json(p)),
            StoreError::Invalid(_) => ApiError::BadRequest(Json(p)),
            _ => ApiError::Internal(Json(p)),
        }
    }
}

impl From<LoadError> for ApiError {
    fn from(e: LoadError) -> Self {
        match e {
            LoadError::Store(s) => s.into(),
            LoadError::Search(SearchError::Invalid(msg)) => {
                ApiError::BadRequest(Json(Problem::new(Kind::InvalidQuery, msg)))
            }
            LoadError::Search(e @ SearchError::Index(_)) => {
                tracing::error!(error = %e, "search failed");
                ApiError::Internal(Json(Problem::new(Kind::Internal, e.to_string())))
            }
        }
    }
}

impl From<ReplayError> for ApiError {
    fn from(e: ReplayError) -> Self {
        match e {
            ReplayError::NotFound(msg) => ApiError::not_found(msg),
            ReplayError::Refused(msg) => ApiError::Conflict(Json(Problem::new(Kind::NotReplayable, msg))),
            ReplayError::Integrity(msg) => {
                tracing::error!(error = %msg, "a replay found a stored body that fails its digest");
                ApiError::Internal(Json(Problem::new(Kind::IntegrityFailed, msg)))
            }
            ReplayError::SignatureFailed(msg) => ApiError::Conflict(Json(Problem::new(Kind::SignatureMismatch, msg))),
            ReplayError::Limited(limited, now) => {
                let kind = match limited {
                    Limited::PerDelivery { .. } => Kind::ReplayLimitedPerDelivery,
                    Limited::PerOperator { .. } => Kind::ReplayLimitedPerOperator,
                };
                let wait = u32::try_from(limited.wait_seconds(now)).unwrap_or(u32::MAX);
                ApiError::TooManyRequests(Json(Problem::new(kind, limited.message(now))), wait)
            }
            ReplayError::Store(s) => s.into(),
        }
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::Invalid(msg) => ApiError::bad_request(msg),
            ControlError::NotFound(msg) => ApiError::not_found(msg),
            ControlError::Store(s) => s.into(),
        }
    }
}

/// Runs an operation that writes to the store on the blocking pool: it may wait for redb's single write
/// lock, which an ingest commit holds through its fsync.
pub(crate) async fn blocking<T, E>(f: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: Into<ApiError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(done) => done.map_err(Into::into),
        Err(e) => Err(StoreError::Other(format!("task failed: {e}")).into()),
    }
}
