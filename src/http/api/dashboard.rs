use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use super::auth::ViewerAuth;
use super::deliveries::api_query;
use super::error::ApiError;
use super::params::{Id, Limit, Time};
use super::subscriptions::subscription_out;
use crate::contract::{BannerOut, DashboardOut, DeliveryStatus, KpisOut, Source, StatsOut, SubscriptionOut, time};
use crate::domain::{DeliveryId, SubscriptionId};
use crate::http::AppState;
use crate::loader::{self, Overview};

#[derive(Default)]
pub struct DashboardApi;

/// `WebhookDashboardPayload` for one query: what `getDashboard` answers and the dashboard page renders, so
/// the page cannot show what the API does not (invariant 7).
pub(crate) async fn dashboard_payload(state: &AppState, q: loader::Query) -> Result<DashboardOut, ApiError> {
    let now = state.clock.now();
    let (search, rules) = (Arc::clone(&state.search), Arc::clone(&state.settings.alert_rules));
    let payload = state.store.read(move |db| loader::load(db, &search, &q, now, &rules)).await?;
    let o = &payload.overview;
    Ok(DashboardOut {
        generated_at: time(o.generated_at),
        kpis: KpisOut::from(&o.kpis),
        subscriptions: subscriptions(state, o),
        banners: o.banners.iter().map(|b| BannerOut::new(b, &state.settings.runbook_url)).collect(),
        deliveries: payload.deliveries.into(),
    })
}

#[derive(ApiResponse)]
enum DashboardResponse {
    #[oai(status = 200)]
    Ok(Json<DashboardOut>),
}

#[derive(ApiResponse)]
enum StatsResponse {
    #[oai(status = 200)]
    Ok(Json<StatsOut>),
}

fn subscriptions(state: &AppState, o: &Overview) -> Vec<SubscriptionOut> {
    o.subscriptions.iter().map(|s| subscription_out(state, s)).collect()
}

#[OpenApi(tag = "ApiTags::Dashboard")]
impl DashboardApi {
    /// `WebhookDashboardPayload`: subscriptions with their health, the figures, the banners for degraded
    /// subscriptions, and one page of deliveries for the filters. The dashboard page renders exactly this.
    #[oai(path = "/v1/dashboard", method = "get", operation_id = "getDashboard")]
    #[allow(clippy::too_many_arguments)] // one argument per documented query parameter
    async fn dashboard(
        &self,
        _auth: ViewerAuth,
        Data(state): Data<&AppState>,
        /// Full-text search of payloads, as in `listDeliveries`.
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
    ) -> Result<DashboardResponse, ApiError> {
        let filters = (q.0, source.0, topic.0, status.0, subscription.0, account.0);
        let q = api_query(filters, (from.0, to.0), cursor.0, limit.0)?;
        Ok(DashboardResponse::Ok(Json(dashboard_payload(state, q).await?)))
    }

    /// Health of every subscription and the instance's figures, without deliveries.
    #[oai(path = "/v1/stats", method = "get", operation_id = "getStats")]
    async fn stats(&self, _auth: ViewerAuth, Data(state): Data<&AppState>) -> Result<StatsResponse, ApiError> {
        let now = state.clock.now();
        let rules = Arc::clone(&state.settings.alert_rules);
        let o = state.store.read(move |db| loader::overview(db, now, &rules)).await?;
        Ok(StatsResponse::Ok(Json(StatsOut {
            generated_at: time(o.generated_at),
            kpis: KpisOut::from(&o.kpis),
            subscriptions: subscriptions(state, &o),
            banners: o.banners.iter().map(|b| BannerOut::new(b, &state.settings.runbook_url)).collect(),
        })))
    }
}
