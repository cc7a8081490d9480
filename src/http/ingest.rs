//! The ingest endpoints: read the body within the limit, then hand headers and bytes to the ingest service.

use std::time::Instant;

use futures_util::StreamExt;
use poem::http::{HeaderMap, StatusCode, header};
use poem::web::{Data, Path};
use poem::{Body, Request, Response, handler};

use super::AppState;
use super::problem::Problem;
use crate::connectors::{Headers, Rejection};
use crate::domain::RejectCause;
use crate::ingest::writer::Stored;
use crate::ingest::{Endpoint, IngestError, RequestMeta};
use crate::metrics::{IngestOutcome, IngestSource};

struct HeaderView<'a>(&'a HeaderMap);

impl Headers for HeaderView<'_> {
    fn get(&self, lower_name: &str) -> Option<&[u8]> {
        self.0.get(lower_name).map(|v| v.as_bytes())
    }

    fn entries(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect()
    }
}

fn meta(req: &Request) -> RequestMeta {
    let h = req.headers();
    RequestMeta {
        path: req.uri().path().to_owned(),
        query: req.uri().query().unwrap_or_default().to_owned(),
        remote_addr: req.remote_addr().as_socket_addr().map(|a| a.ip().to_string()),
        user_agent: h
            .get(header::USER_AGENT)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).chars().take(200).collect()),
        content_length: h.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok()),
    }
}

/// Reads the body, refusing it as soon as it passes `limit` (before buffering the rest).
async fn read_body(body: Body, declared: Option<u64>, limit: usize) -> Result<Vec<u8>, Rejection> {
    let too_large =
        || Rejection::new(RejectCause::PayloadTooLarge, format!("the body is larger than the limit of {limit} bytes"));
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut buf = Vec::with_capacity(declared.map_or(8192, |n| n as usize));
    let mut stream = body.into_bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| Rejection::new(RejectCause::BodyMalformed, format!("the body could not be read: {e}")))?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Reads the body within the limit and hands it to the ingest service, or answers the rejection.
async fn ingest(state: &AppState, req: &Request, body: Body, endpoint: Endpoint<'_>) -> Response {
    let started = Instant::now();
    let meta = meta(req);
    let result = match read_body(body, meta.content_length, state.settings.max_body_bytes).await {
        Ok(bytes) => state.ingest.receive(endpoint, &meta, &HeaderView(req.headers()), &bytes).await,
        Err(rejection) => {
            state.ingest.reject_early(&meta, &rejection);
            Err(IngestError::Rejected(rejection))
        }
    };
    let outcome = match &result {
        Ok(stored) if stored.duplicate => IngestOutcome::Duplicate,
        Ok(_) => IngestOutcome::Accepted,
        Err(IngestError::Rejected(r)) => IngestOutcome::Refused(r.cause.as_str()),
        Err(IngestError::Unavailable(_)) => IngestOutcome::Refused(RejectCause::StorageUnavailable.as_str()),
    };
    let response = respond(result);
    crate::metrics::get().ingested(source(endpoint), outcome, started.elapsed());
    response
}

fn source(endpoint: Endpoint<'_>) -> IngestSource {
    match endpoint {
        Endpoint::Shopify => IngestSource::Shopify,
        Endpoint::ZohoChannel | Endpoint::Zoho(_) => IngestSource::Zoho,
        Endpoint::Standard(_) => IngestSource::Standard,
    }
}

fn respond(result: Result<Stored, IngestError>) -> Response {
    match result {
        Ok(stored) => {
            let body = serde_json::json!({
                "delivery_id": stored.delivery_id.to_string(),
                "subscription_id": stored.subscription_id.to_string(),
                "duplicate": stored.duplicate,
            });
            Response::builder().status(StatusCode::OK).content_type("application/json").body(body.to_string())
        }
        Err(e) => Problem::from(&e).response(),
    }
}

#[handler]
pub async fn shopify(req: &Request, body: Body, Data(state): Data<&AppState>) -> Response {
    ingest(state, req, body, Endpoint::Shopify).await
}

#[handler]
pub async fn zoho_channel(req: &Request, body: Body, Data(state): Data<&AppState>) -> Response {
    ingest(state, req, body, Endpoint::ZohoChannel).await
}

#[handler]
pub async fn zoho_subscription(
    req: &Request,
    Path(subscription): Path<String>,
    body: Body,
    Data(state): Data<&AppState>,
) -> Response {
    ingest(state, req, body, Endpoint::Zoho(&subscription)).await
}

#[handler]
pub async fn standard(
    req: &Request,
    Path(subscription): Path<String>,
    body: Body,
    Data(state): Data<&AppState>,
) -> Response {
    ingest(state, req, body, Endpoint::Standard(&subscription)).await
}
