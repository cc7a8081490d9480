use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, Json, Response as PayloadResponse};
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use super::auth::ApiAuth;
use super::error::ApiError;
use super::types::{DeliveryOut, DeliveryPage, DeliveryStatus, Source};
use crate::domain::{DeliveryId, SubscriptionId};
use crate::http::AppState;
use crate::storage::deliveries::{self, Filter};

/// Page size when `limit` is absent, and the most a page may hold.
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

pub struct DeliveriesApi;

#[derive(ApiResponse)]
enum ListDeliveriesResponse {
    #[oai(status = 200)]
    Ok(Json<DeliveryPage>),
}

#[derive(ApiResponse)]
enum GetDeliveryResponse {
    #[oai(status = 200)]
    Ok(Json<DeliveryOut>),
}

fn parse_delivery_id(raw: &str) -> Result<DeliveryId, ApiError> {
    raw.parse::<DeliveryId>().map_err(|e| ApiError::bad_request(e.to_string()))
}

#[OpenApi(tag = "ApiTags::Deliveries")]
impl DeliveriesApi {
    /// List deliveries, newest first, with filters and cursor pagination.
    #[oai(path = "/v1/deliveries", method = "get", operation_id = "listDeliveries")]
    #[allow(clippy::too_many_arguments)] // one argument per documented query parameter
    async fn list(
        &self,
        _auth: ApiAuth,
        Data(state): Data<&AppState>,
        /// Only deliveries from this provider.
        source: Query<Option<Source>>,
        /// Only deliveries of subscriptions with this topic.
        topic: Query<Option<String>>,
        status: Query<Option<DeliveryStatus>>,
        /// A subscription id (`sub_…`).
        subscription: Query<Option<String>>,
        /// Shop domain, Zoho org or sender.
        account: Query<Option<String>>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1 to 500 (default 50).
        limit: Query<Option<u32>>,
    ) -> Result<ListDeliveriesResponse, ApiError> {
        let limit = limit.0.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::bad_request(format!("`limit` must be between 1 and {MAX_LIMIT}, not {limit}")));
        }
        let before = cursor.0.as_deref().map(|c| {
            parse_delivery_id(c)
                .map_err(|_| ApiError::bad_request(format!("`cursor` is not a cursor from this API: `{c}`")))
        });
        let before = before.transpose()?;
        let subscription = subscription
            .0
            .as_deref()
            .map(|s| s.parse::<SubscriptionId>().map_err(|e| ApiError::bad_request(e.to_string())))
            .transpose()?;
        let filter = Filter {
            source: source.0.map(Into::into),
            topic: topic.0,
            status: status.0.map(Into::into),
            subscription,
            account: account.0,
        };
        let page = state.store.read(move |db| deliveries::list(db, &filter, before, limit as usize)).await?;
        Ok(ListDeliveriesResponse::Ok(Json(DeliveryPage {
            items: page.items.into_iter().map(|l| DeliveryOut::new(l, None)).collect(),
            next_cursor: page.next_cursor.map(|c| c.to_string()),
        })))
    }

    /// One delivery, with the headers it arrived with.
    #[oai(path = "/v1/deliveries/:id", method = "get", operation_id = "getDelivery")]
    async fn get(
        &self,
        _auth: ApiAuth,
        Data(state): Data<&AppState>,
        id: Path<String>,
    ) -> Result<GetDeliveryResponse, ApiError> {
        let id = parse_delivery_id(&id.0)?;
        let found = state.store.read(move |db| deliveries::get(db, id)).await?;
        let (listed, headers) = found.ok_or_else(|| ApiError::not_found(format!("no delivery {id}")))?;
        Ok(GetDeliveryResponse::Ok(Json(DeliveryOut::new(listed, Some(headers)))))
    }

    /// The exact body bytes as received, with the content type they arrived with.
    #[oai(path = "/v1/deliveries/:id/body", method = "get", operation_id = "getDeliveryBody")]
    async fn body(
        &self,
        _auth: ApiAuth,
        Data(state): Data<&AppState>,
        id: Path<String>,
    ) -> Result<PayloadResponse<Binary<Vec<u8>>>, ApiError> {
        let id = parse_delivery_id(&id.0)?;
        let found = state.store.read(move |db| deliveries::body(db, id)).await?;
        let (d, payload) = found.ok_or_else(|| ApiError::not_found(format!("no delivery {id}")))?;
        let mut resp = PayloadResponse::new(Binary(payload.body)).header("x-content-sha256", d.body_sha256);
        if let Some(ct) = d.content_type {
            resp = resp.header("content-type", ct);
        }
        Ok(resp)
    }
}
