//! RFC 9457 problem documents: the one place where errors become HTTP statuses and stable types.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::RejectCause;
use crate::ingest::IngestError;
use crate::storage::StoreError;

/// Every kind of problem Hookplane answers with. The code is stable: clients match on it (or on `type`,
/// which embeds it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rejected(RejectCause),
    Unauthorized,
    /// A valid credential whose role is below what the operation needs.
    Forbidden,
    NotFound,
    MethodNotAllowed,
    InvalidRequest,
    /// A search query that cannot be parsed.
    InvalidQuery,
    Conflict,
    UnsupportedMediaType,
    Internal,
    /// A replay of this delivery was made less than 5 minutes ago.
    ReplayLimitedPerDelivery,
    /// The operator made 10 replays in the last hour.
    ReplayLimitedPerOperator,
    /// The delivery cannot be replayed: its subscription keeps deliveries, or it no longer exists.
    NotReplayable,
    /// A stored body no longer matches the digest taken when it arrived.
    IntegrityFailed,
    /// A stored delivery no longer verifies under the secret that verified it when it arrived.
    SignatureMismatch,
    /// A part the process needs has stopped (`/healthz`).
    Unhealthy,
    /// The search index was found missing or damaged and is being rebuilt.
    SearchUnavailable,
    /// The subscription has no registration at its provider that Hookplane can check.
    HandshakeUnavailable,
    /// A handshake needs `public_url`: the provider must be told where to send.
    PublicUrlMissing,
    /// A handshake needs the provider credential of the subscription's shop or organisation.
    CredentialMissing,
}

impl Kind {
    pub fn code(self) -> &'static str {
        match self {
            Kind::Rejected(c) => c.as_str(),
            Kind::Unauthorized => "unauthorized",
            Kind::Forbidden => "forbidden",
            Kind::NotFound => "not_found",
            Kind::MethodNotAllowed => "method_not_allowed",
            Kind::InvalidRequest => "invalid_request",
            Kind::InvalidQuery => "invalid_query",
            Kind::Conflict => "conflict",
            Kind::UnsupportedMediaType => "unsupported_media_type",
            Kind::Internal => "internal",
            Kind::ReplayLimitedPerDelivery => "replay_limited_per_delivery",
            Kind::ReplayLimitedPerOperator => "replay_limited_per_operator",
            Kind::NotReplayable => "not_replayable",
            Kind::IntegrityFailed => "integrity_failed",
            Kind::SignatureMismatch => "signature_mismatch",
            Kind::Unhealthy => "unhealthy",
            Kind::SearchUnavailable => "search_unavailable",
            Kind::HandshakeUnavailable => "handshake_unavailable",
            Kind::PublicUrlMissing => "public_url_missing",
            Kind::CredentialMissing => "credential_missing",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Kind::Rejected(c) => match c {
                RejectCause::SignatureMissing
                | RejectCause::SignatureInvalid
                | RejectCause::TimestampOutOfTolerance => StatusCode::UNAUTHORIZED,
                RejectCause::UnknownSubscription => StatusCode::NOT_FOUND,
                RejectCause::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                RejectCause::EmptyBody
                | RejectCause::HeaderMissing
                | RejectCause::HeaderMalformed
                | RejectCause::BodyMalformed => StatusCode::BAD_REQUEST,
                RejectCause::StorageUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            },
            Kind::Unauthorized => StatusCode::UNAUTHORIZED,
            Kind::Forbidden => StatusCode::FORBIDDEN,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Kind::InvalidRequest | Kind::InvalidQuery => StatusCode::BAD_REQUEST,
            Kind::Conflict => StatusCode::CONFLICT,
            Kind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Kind::Internal | Kind::IntegrityFailed => StatusCode::INTERNAL_SERVER_ERROR,
            Kind::ReplayLimitedPerDelivery | Kind::ReplayLimitedPerOperator => StatusCode::TOO_MANY_REQUESTS,
            Kind::NotReplayable | Kind::SignatureMismatch => StatusCode::CONFLICT,
            Kind::Unhealthy | Kind::SearchUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Kind::HandshakeUnavailable | Kind::PublicUrlMissing | Kind::CredentialMissing => StatusCode::CONFLICT,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::Rejected(c) => match c {
                RejectCause::SignatureMissing => "Signature missing",
                RejectCause::SignatureInvalid => "Signature invalid",
                RejectCause::TimestampOutOfTolerance => "Timestamp out of tolerance",
                RejectCause::UnknownSubscription => "Unknown subscription",
                RejectCause::PayloadTooLarge => "Payload too large",
                RejectCause::EmptyBody => "Empty body",
                RejectCause::HeaderMissing => "Required header missing",
                RejectCause::HeaderMalformed => "Header malformed",
                RejectCause::BodyMalformed => "Body malformed",
                RejectCause::StorageUnavailable => "Storage unavailable",
            },
            Kind::Unauthorized => "Unauthorized",
            Kind::Forbidden => "Forbidden",
            Kind::NotFound => "Not found",
            Kind::MethodNotAllowed => "Method not allowed",
            Kind::InvalidRequest => "Invalid request",
            Kind::InvalidQuery => "Invalid search query",
            Kind::Conflict => "Conflict",
            Kind::UnsupportedMediaType => "Unsupported media type",
            Kind::Internal => "Internal error",
            Kind::ReplayLimitedPerDelivery => "Replayed too recently",
            Kind::ReplayLimitedPerOperator => "Too many replays",
            Kind::NotReplayable => "Not replayable",
            Kind::IntegrityFailed => "Stored body failed its integrity check",
            Kind::SignatureMismatch => "Signature no longer verifies",
            Kind::Unhealthy => "A part of Hookplane has stopped",
            Kind::SearchUnavailable => "Search is being rebuilt",
            Kind::HandshakeUnavailable => "No handshake for this subscription",
            Kind::PublicUrlMissing => "public_url is not set",
            Kind::CredentialMissing => "No provider credential",
        }
    }
}

tokio::task_local! {
    /// The id of the request being answered, set by the request log around each request: problem documents
    /// and error log lines carry it, so an operator can find the one in the other.
    pub static REQUEST_ID: String;
}

/// The id of the request this task answers, if it answers one.
pub fn request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// How long a 503 asks the client to wait before trying again.
pub const RETRY_AFTER_SECONDS: u32 = 5;

/// A problem document. `code` repeats the last part of `type` for clients that prefer a plain string.
#[derive(Debug, Clone, Serialize, poem_openapi::Object)]
pub struct Problem {
    /// `urn:hookplane:problem:<code>`.
    #[serde(rename = "type")]
    #[oai(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: String,
    /// The request's id, as in its `X-Request-Id` header and in the server's log lines about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[oai(skip_serializing_if_is_none)]
    pub request_id: Option<String>,
}

impl Problem {
    pub fn new(kind: Kind, detail: impl Into<String>) -> Self {
        Self {
            type_: format!("urn:hookplane:problem:{}", kind.code()),
            title: kind.title().to_owned(),
            status: kind.status().as_u16(),
            detail: detail.into(),
            code: kind.code().to_owned(),
            request_id: request_id(),
        }
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn response(&self) -> Response {
        let body = serde_json::to_vec(self).unwrap_or_default();
        let mut resp =
            Response::builder().status(self.status_code()).content_type("application/problem+json").body(body);
        if self.status == StatusCode::SERVICE_UNAVAILABLE.as_u16() {
            // Providers and clients that honour it come back after a short pause rather than at once.
            resp.headers_mut().insert("retry-after", poem::http::HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        resp
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        self.response()
    }
}

impl From<&IngestError> for Problem {
    fn from(e: &IngestError) -> Self {
        match e {
            IngestError::Rejected(r) => Problem::new(Kind::Rejected(r.cause), r.detail.clone()),
            IngestError::Unavailable(why) => Problem::new(
                Kind::Rejected(RejectCause::StorageUnavailable),
                format!("the delivery was not stored ({why}); retry it"),
            ),
        }
    }
}

impl From<&StoreError> for Problem {
    fn from(e: &StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => {
                Problem::new(Kind::Rejected(RejectCause::StorageUnavailable), "storage is unavailable; retry shortly")
            }
            StoreError::Conflict(msg) => Problem::new(Kind::Conflict, msg.clone()),
            StoreError::Invalid(msg) => Problem::new(Kind::InvalidRequest, msg.clone()),
            other => {
                tracing::error!(error = %other, request_id = request_id().as_deref(), "storage error while serving a request");
                Problem::new(Kind::Internal, "an internal error occurred; the server log has the details")
            }
        }
    }
}

/// Converts poem's own errors (unknown route, wrong method, unparsable parameter, missing credentials) into
/// problem documents; responses built as problems already pass through untouched.
pub async fn from_poem_error(err: poem::Error) -> Response {
    if err.is_from_response() {
        return err.into_response();
    }
    let status = err.status();
    let kind = match status {
        StatusCode::NOT_FOUND => Kind::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => Kind::MethodNotAllowed,
        StatusCode::UNAUTHORIZED => Kind::Unauthorized,
        StatusCode::FORBIDDEN => Kind::Forbidden,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Kind::UnsupportedMediaType,
        StatusCode::PAYLOAD_TOO_LARGE => Kind::Rejected(RejectCause::PayloadTooLarge),
        s if s.is_client_error() => Kind::InvalidRequest,
        _ => Kind::Internal,
    };
    let detail = match kind {
        Kind::NotFound => "no such resource".to_owned(),
        Kind::Unauthorized => "send `Authorization: Bearer <token>` with a valid API token".to_owned(),
        Kind::Internal => {
            tracing::error!(error = %err, request_id = request_id().as_deref(), "unhandled error");
            "an internal error occurred; the server log has the details".to_owned()
        }
        _ => match err.downcast_ref::<poem_openapi::error::ParseParamError>() {
            Some(p) => format!("`{}`: {}", p.name, parse_reason(&p.reason)),
            None => err.to_string(),
        },
    };
    Problem::new(kind, detail).response()
}

/// The reason a parameter did not parse, without the type names poem-openapi wraps it in
/// (`failed to parse "T": … (occurred while parsing "optional_T")`): they name Rust types, not the API's.
fn parse_reason(reason: &str) -> &str {
    let mut r = reason;
    while let Some(i) = r.rfind(" (occurred while parsing \"").filter(|_| r.ends_with("\")")) {
        r = &r[..i];
    }
    if let Some(rest) = r.strip_prefix("failed to parse \"")
        && let Some(i) = rest.find("\": ")
    {
        r = &rest[i + 3..];
    }
    r
}

/// The answer to a request whose handler panicked: a problem document rather than a closed connection.
pub fn from_panic(payload: Box<dyn std::any::Any + Send>) -> Response {
    tracing::error!(
        panic = %crate::task::panic_message(&*payload),
        request_id = request_id().as_deref(),
        "a request handler panicked"
    );
    Problem::new(Kind::Internal, "an internal error occurred; the server log has the details").response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_parameter_error_says_what_is_wrong_without_type_names() {
        let wrapped = r#"failed to parse "integer(limit)": must be between 1 and 500, not 0 (occurred while parsing "optional_integer(limit)")"#;
        assert_eq!(super::parse_reason(wrapped), "must be between 1 and 500, not 0");
        assert_eq!(super::parse_reason("plain words"), "plain words");
    }
}
