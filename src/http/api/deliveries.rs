use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use super::auth::{OperatorAuth, ViewerAuth};
use super::error::ApiError;
use super::params::{Id, Limit, Time, parse_id};
use crate::contract::{AttemptOut, DeliveryOut, DeliveryPage, DeliveryStatus, ReplayOut, Source};
use crate::domain::audit::Actor;
use crate::domain::filter::DeliveryFilter;
use crate::domain::{self, Delivery, DeliveryId, Payload, SubscriptionId};
use crate::http::AppState;
use crate::loader;
use crate::storage::attempts;
use crate::storage::deliveries;

#[derive(Default)]
pub struct DeliveriesApi;

#[derive(ApiResponse)]
enum ListDeliveriesResponse {
    #[oai(status = 200)]
    Ok(Json<DeliveryPage>),
}

#[derive(ApiResponse)]
pub(crate) enum ReplayResponse {
    /// Queued: the new attempt follows at once (or on resume, when the destination is paused).
    #[oai(status = 202)]
    Accepted(Json<ReplayOut>),
}

/// Replays the delivery `id` for `by`: shared by the API, `POST /webhooks/replay/{id}` and the dashboard.
pub(crate) async fn replay(state: &AppState, by: Actor, id: DeliveryId) -> Result<ReplayOut, ApiError> {
    let (control, ingest) = (Arc::clone(&state.control), Arc::clone(&state.ingest));
    let recheck = move |d: &Delivery, p: &Payload| crate::control::queue::recheck_note(ingest.recheck(d, p));
    let made = crate::task::blocking(move || control.replay_blocking(id, &by, None, recheck)).await?;
    Ok(ReplayOut::from(made))
}

/// `POST /webhooks/replay/{delivery_id}`: the same replay as the API's, at the path the contract names, with
/// the same bearer credential (operator or admin) and the same answers.
#[poem::handler]
pub async fn webhooks_replay(
    req: &poem::Request,
    poem::web::Path(id): poem::web::Path<String>,
    Data(state): Data<&AppState>,
) -> poem::Response {
    use poem::IntoResponse as _;
    let by = match super::auth::bearer_actor(req, crate::domain::access::Role::Operator).await {
        Ok(by) => by,
        Err(response) => return response,
    };
    let id = match parse_id::<DeliveryId>(&id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    match replay(state, by, id).await {
        Ok(made) => ReplayResponse::Accepted(Json(made)).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(ApiResponse)]
enum ListAttemptsResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<AttemptOut>>),
}

#[derive(ApiResponse)]
enum GetDeliveryBodyResponse {
    /// The body, with the content type it arrived with (`application/octet-stream` when it came without one).
    #[oai(status = 200)]
    Ok(
        StoredBody,
        /// The body's SHA-256, hex: the digest taken when it arrived.
        #[oai(header = "X-Content-SHA256")]
        String,
    ),
}

/// A stored body, answered with its own content type: any media type, so the document says `*/*`.
struct StoredBody {
    bytes: Vec<u8>,
    content_type: Option<String>,
}

impl poem_openapi::payload::Payload for StoredBody {
    const CONTENT_TYPE: &'static str = "*/*";

    fn schema_ref() -> MetaSchemaRef {
        // Any bytes at all: a JSON body is an object, not a string, so no `type`.
        MetaSchemaRef::Inline(Box::new(MetaSchema { format: Some("binary"), ..MetaSchema::ANY }))
    }
}

impl poem::IntoResponse for StoredBody {
    fn into_response(self) -> poem::Response {
        let ct = self.content_type.as_deref().unwrap_or("application/octet-stream");
        poem::Response::builder().content_type(ct).body(self.bytes)
    }
}

#[derive(ApiResponse)]
enum GetDeliveryResponse {
    #[oai(status = 200)]
    Ok(Json<DeliveryOut>),
}

/// The delivery filters as they arrive in a query string, shared by every operation that lists deliveries.
#[derive(Default)]
pub(crate) struct DeliveryParams {
    pub filter: DeliveryFilter,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

pub(crate) fn query(p: DeliveryParams) -> Result<loader::Query, ApiError> {
    let limit = Limit::<1>::check(p.limit)?;
    let before = p
        .cursor
        .as_deref()
        .map(|c| {
            parse_id::<DeliveryId>(c)
                .map_err(|_| ApiError::bad_request(format!("`cursor` is not a cursor from this API: `{c}`")))
        })
        .transpose()?;
    let (filter, text) = p.filter.parse().map_err(ApiError::bad_request)?;
    Ok(loader::Query { text, filter, before, limit })
}

/// A delivery listing's filters as the API's parameters bring them: `q`, `source`, `topic`, `status`,
/// `subscription`, `account`.
pub(crate) type ApiFilters = (
    Option<String>,
    Option<Source>,
    Option<String>,
    Option<DeliveryStatus>,
    Option<Id<SubscriptionId>>,
    Option<String>,
);

/// The query of a delivery listing, from the API's typed parameters.
pub(crate) fn api_query(
    (q, source, topic, status, subscription, account): ApiFilters,
    (from, to): (Option<Time>, Option<Time>),
    cursor: Option<Id<DeliveryId>>,
    limit: Option<Limit>,
) -> Result<loader::Query, ApiError> {
    let filter = DeliveryFilter {
        q,
        source: source_text(source),
        topic,
        status: status_text(status),
        subscription: subscription.map(|s| s.0.to_string()),
        account,
        from: from.map(|t| t.0),
        to: to.map(|t| t.0),
    };
    let cursor = cursor.map(|c| c.0.to_string());
    query(DeliveryParams { filter, cursor, limit: limit.map(Limit::get) })
}

/// The API's own names of a source and a status, as the text filter takes them.
pub(crate) fn source_text(s: Option<Source>) -> Option<String> {
    s.map(|s| domain::Source::from(s).as_str().to_owned())
}

pub(crate) fn status_text(s: Option<DeliveryStatus>) -> Option<String> {
    s.map(|s| domain::DeliveryStatus::from(s).as_str().to_owned())
}

#[OpenApi(tag = "ApiTags::Deliveries")]
impl DeliveriesApi {
    /// List deliveries, newest first, with filters and cursor pagination.
    #[oai(path = "/v1/deliveries", method = "get", operation_id = "listDeliveries")]
    #[allow(clippy::too_many_arguments)] // one argument per documented query parameter
    async fn list(
        &self,
        _auth: ViewerAuth,
        Data(state): Data<&AppState>,
        /// Full-text search of payloads: words (all must match), `"a phrase"`, `field:value` for `topic`,
        /// `source`, `account`, `provider_id`, `event_id`, and JSON paths such as
        /// `customer.email:jon@example.com` (a whole value of up to 64 bytes, any case); `OR`, `-word`, `(…)`.
        /// The words of a JSON body are its values'. Results stay newest first.
        q: Query<Option<String>>,
        /// Only deliveries from this provider.
        source: Query<Option<Source>>,
        /// Only deliveries of subscriptions with this topic.
        topic: Query<Option<String>>,
        status: Query<Option<DeliveryStatus>>,
        /// A subscription id (`sub_…`).
        subscription: Query<Option<Id<SubscriptionId>>>,
        /// Shop domain, Zoho org or sender.
        account: Query<Option<String>>,
        /// Received at or after this instant (RFC 3339).
        from: Query<Option<Time>>,
        /// Received before this instant (RFC 3339).
        to: Query<Option<Time>>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<Id<DeliveryId>>>,
        /// Page size, 1 to 500 (default 50).
        limit: Query<Option<Limit>>,
    ) -> Result<ListDeliveriesResponse, ApiError> {
        let filters = (q.0, source.0, topic.0, status.0, subscription.0, account.0);
        let q = api_query(filters, (from.0, to.0), cursor.0, limit.0)?;
        let search = Arc::clone(&state.search);
        let page = state.store.read(move |db| loader::deliveries_page(db, &search, &q)).await?;
        Ok(ListDeliveriesResponse::Ok(Json(DeliveryPage::from(page))))
    }

    /// One delivery, with the headers it arrived with.
    #[oai(path = "/v1/deliveries/:id", method = "get", operation_id = "getDelivery")]
    async fn get(
        &self,
        _auth: ViewerAuth,
        Data(state): Data<&AppState>,
        id: Path<Id<DeliveryId>>,
    ) -> Result<GetDeliveryResponse, ApiError> {
        let id = id.0.0;
        let found = state.store.read(move |db| deliveries::get(db, id)).await?;
        let (listed, headers) = found.ok_or_else(|| ApiError::not_found(format!("no delivery {id}")))?;
        Ok(GetDeliveryResponse::Ok(Json(DeliveryOut::new(listed, Some(headers)))))
    }

    /// Replay a delivery: a new attempt from its stored body (checked against its digest first), shown
    /// among its attempts with `initiated_by` = you. At most one replay per delivery per 5 minutes and ten
    /// per operator per hour; beyond that, 429 with `Retry-After` and a `code` naming the limit.
    #[oai(path = "/v1/deliveries/:id/replay", method = "post", operation_id = "replayDelivery")]
    async fn replay(
        &self,
        auth: OperatorAuth,
        req: &poem::Request,
        Data(state): Data<&AppState>,
        id: Path<Id<DeliveryId>>,
    ) -> Result<ReplayResponse, ApiError> {
        let by = crate::http::access::actor(&auth.0, req);
        Ok(ReplayResponse::Accepted(Json(replay(state, by, id.0.0).await?)))
    }

    /// Every attempt to hand the delivery to its destination, first first.
    #[oai(path = "/v1/deliveries/:id/attempts", method = "get", operation_id = "listDeliveryAttempts")]
    async fn attempts(
        &self,
        _auth: ViewerAuth,
        Data(state): Data<&AppState>,
        id: Path<Id<DeliveryId>>,
    ) -> Result<ListAttemptsResponse, ApiError> {
        let id = id.0.0;
        let found = state
            .store
            .read(move |db| {
                if deliveries::get(db, id)?.is_none() {
                    return Ok(None);
                }
                attempts::list(db, id).map(Some)
            })
            .await?;
        let list = found.ok_or_else(|| ApiError::not_found(format!("no delivery {id}")))?;
        Ok(ListAttemptsResponse::Ok(Json(list.into_iter().map(AttemptOut::from).collect())))
    }

    /// The exact body bytes as received, with the content type they arrived with.
    #[oai(path = "/v1/deliveries/:id/body", method = "get", operation_id = "getDeliveryBody")]
    async fn body(
        &self,
        _auth: ViewerAuth,
        Data(state): Data<&AppState>,
        id: Path<Id<DeliveryId>>,
    ) -> Result<GetDeliveryBodyResponse, ApiError> {
        let id = id.0.0;
        let found = state.store.read(move |db| deliveries::body(db, id)).await?;
        let (d, payload) = found.ok_or_else(|| ApiError::not_found(format!("no delivery {id}")))?;
        let body = StoredBody { bytes: payload.body, content_type: d.content_type };
        Ok(GetDeliveryBodyResponse::Ok(body, d.body_sha256))
    }
}
