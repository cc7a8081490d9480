use poem_openapi::ApiResponse;
use poem_openapi::payload::{Json, Payload};
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, Registry};

use crate::control::{ControlError, ReplayError};
use crate::domain::replay::Limited;
use crate::http::problem::{Kind, Problem, RETRY_AFTER_SECONDS};
use crate::loader::LoadError;
use crate::search::SearchError;
use crate::storage::StoreError;

/// The errors any operation can answer with, as problem documents (boxed: an error travels by value through
/// every `?`, and the problem is most of its size).
#[derive(ApiResponse, Debug)]
pub enum ApiError {
    /// The request is malformed or a value is invalid; `detail` says which.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Box<Problem>>),
    /// Missing or invalid bearer token.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Box<Problem>>),
    /// The credential's role is below what the operation needs.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Box<Problem>>),
    /// No such resource.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Box<Problem>>),
    /// The request conflicts with existing state (a name or key already taken).
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Box<Problem>>),
    /// A rate limit was reached; `code` says which, `Retry-After` when to try again.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Json<Box<Problem>>, #[oai(header = "Retry-After")] u32),
    /// An internal error; the server log has the details.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Box<Problem>>),
    /// Storage cannot be reached right now, or a search finds its index being rebuilt (`code` says which:
    /// `storage_unavailable`, `search_unavailable`); retry after the given number of seconds.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Box<Problem>>, #[oai(header = "Retry-After")] u32),
}

/// The errors of an operation that reads a JSON body: any [`ApiError`], and 415 when the body is not
/// `application/json`. poem-openapi answers that one before the operation runs (through
/// `problem::from_poem_error`), so no operation makes it; this type only declares it where it can happen.
#[derive(Debug)]
pub struct BodyError(ApiError);

impl<E: Into<ApiError>> From<E> for BodyError {
    fn from(e: E) -> Self {
        BodyError(e.into())
    }
}

impl ApiResponse for BodyError {
    fn meta() -> MetaResponses {
        let mut meta = ApiError::meta();
        meta.responses.push(MetaResponse {
            description: "The body is not `application/json`.",
            status: Some(415),
            status_range: None,
            content: vec![MetaMediaType {
                content_type: "application/problem+json",
                schema: <Json<Box<Problem>> as Payload>::schema_ref(),
            }],
            headers: vec![],
        });
        meta
    }

    fn register(registry: &mut Registry) {
        ApiError::register(registry);
    }
}

impl poem::IntoResponse for BodyError {
    fn into_response(self) -> poem::Response {
        self.0.into_response()
    }
}

impl From<BodyError> for poem::Error {
    fn from(e: BodyError) -> Self {
        e.0.into()
    }
}

impl ApiError {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Problem::new(Kind::InvalidRequest, detail).into()
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Problem::new(Kind::Forbidden, detail).into()
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(Kind::NotFound, detail).into()
    }

    /// The status and problem document, for answers that are not JSON (the dashboard's pages).
    pub fn problem(&self) -> (poem::http::StatusCode, &Problem) {
        let p = match self {
            ApiError::BadRequest(p)
            | ApiError::Unauthorized(p)
            | ApiError::Forbidden(p)
            | ApiError::NotFound(p)
            | ApiError::Conflict(p)
            | ApiError::TooManyRequests(p, _)
            | ApiError::Internal(p)
            | ApiError::Unavailable(p, _) => &p.0,
        };
        (p.status_code(), p)
    }
}

/// The variant is the problem's own status (`Kind::status`, the one table of statuses). A rate limit
/// carries its wait and is made where the wait is known. No operation makes a problem of another status
/// (405, 413 and 415 come from poem or ingest, never from here); one would answer 500.
impl From<Problem> for ApiError {
    fn from(p: Problem) -> Self {
        use poem::http::StatusCode;
        match p.status_code() {
            StatusCode::BAD_REQUEST => ApiError::BadRequest(Json(Box::new(p))),
            StatusCode::UNAUTHORIZED => ApiError::Unauthorized(Json(Box::new(p))),
            StatusCode::FORBIDDEN => ApiError::Forbidden(Json(Box::new(p))),
            StatusCode::NOT_FOUND => ApiError::NotFound(Json(Box::new(p))),
            StatusCode::CONFLICT => ApiError::Conflict(Json(Box::new(p))),
            StatusCode::TOO_MANY_REQUESTS => ApiError::TooManyRequests(Json(Box::new(p)), 60),
            StatusCode::SERVICE_UNAVAILABLE => ApiError::Unavailable(Json(Box::new(p)), RETRY_AFTER_SECONDS),
            _ => ApiError::Internal(Json(Box::new(p))),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Problem::from(&e).into()
    }
}

impl From<LoadError> for ApiError {
    fn from(e: LoadError) -> Self {
        match e {
            LoadError::Store(s) => s.into(),
            LoadError::Search(SearchError::Invalid(msg)) => Problem::new(Kind::InvalidQuery, msg).into(),
            LoadError::Search(SearchError::Unavailable(msg)) => Problem::new(Kind::SearchUnavailable, msg).into(),
        }
    }
}

impl From<ReplayError> for ApiError {
    fn from(e: ReplayError) -> Self {
        match e {
            ReplayError::NotFound(msg) => ApiError::not_found(msg),
            ReplayError::Refused(msg) => Problem::new(Kind::NotReplayable, msg).into(),
            ReplayError::Integrity(msg) => {
                tracing::error!(error = %msg, "a replay found a stored body that fails its digest");
                Problem::new(Kind::IntegrityFailed, msg).into()
            }
            ReplayError::SignatureFailed(msg) => Problem::new(Kind::SignatureMismatch, msg).into(),
            ReplayError::Limited(limited, now) => {
                let kind = match limited {
                    Limited::PerDelivery { .. } => Kind::ReplayLimitedPerDelivery,
                    Limited::PerOperator { .. } => Kind::ReplayLimitedPerOperator,
                };
                let wait = u32::try_from(limited.wait_seconds(now)).unwrap_or(u32::MAX);
                ApiError::TooManyRequests(Json(Box::new(Problem::new(kind, limited.message(now)))), wait)
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
            ControlError::Conflict(msg) => Problem::new(Kind::Conflict, msg).into(),
            ControlError::Store(s) => s.into(),
        }
    }
}
