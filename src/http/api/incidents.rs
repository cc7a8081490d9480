use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use super::auth::{OperatorAuth, ViewerAuth};
use super::error::ApiError;
use super::params::{Choice, Id, Limit};
use crate::contract::{IncidentOut, IncidentPage, IncidentParams};
use crate::domain::SubscriptionId;
use crate::domain::audit::Actor;
use crate::domain::ids::IncidentId;
use crate::domain::incident::{IncidentState, Rule};
use crate::http::AppState;
use crate::http::problem::{Kind, Problem};
use crate::storage::incidents::{self, AckError, IncidentFilter};

#[derive(Default)]
pub struct IncidentsApi;

#[derive(ApiResponse)]
enum ListIncidentsResponse {
    #[oai(status = 200)]
    Ok(Json<IncidentPage>),
}

#[derive(ApiResponse)]
pub(crate) enum IncidentResponse {
    #[oai(status = 200)]
    Ok(Json<IncidentOut>),
}

/// A filter's value, absent when blank; a value that does not parse is a 400 saying why.
fn parse<T>(what: &str, v: Option<&str>) -> Result<Option<T>, ApiError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    v.map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| v.parse::<T>().map_err(|e| ApiError::bad_request(format!("`{what}`: {e}"))))
        .transpose()
}

/// One page of incidents, newest first: what `listIncidents` answers and the Incidents page renders.
pub(crate) async fn incident_page(state: &AppState, p: IncidentParams) -> Result<IncidentPage, ApiError> {
    let limit = Limit::<1>::check(p.limit)?;
    let state_f = parse::<IncidentState>("state", p.state.as_deref())?;
    let rule = parse::<Rule>("rule", p.rule.as_deref())?;
    let subscription = match p.subscription.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            state
                .ingest
                .registry()
                .snapshot()
                .by_name_or_id(s)
                .map(|e| e.sub.id)
                .or_else(|| s.parse::<SubscriptionId>().ok())
                .ok_or_else(|| ApiError::not_found(format!("no subscription `{s}` (the `subscription` filter)")))?,
        ),
    };
    let before = parse::<IncidentId>("cursor", p.cursor.as_deref())?;
    let filter = IncidentFilter { state: state_f, rule, subscription };
    let (items, next) = state.store.read(move |db| incidents::list(db, &filter, before, limit)).await?;
    let now = state.clock.now();
    Ok(IncidentPage {
        items: items.iter().map(|i| IncidentOut::new(i, now, &state.settings.runbook_url)).collect(),
        next_cursor: next.map(|id| id.to_string()),
    })
}

pub(crate) async fn incident(state: &AppState, id: IncidentId) -> Result<IncidentOut, ApiError> {
    let found = state.store.read(move |db| incidents::get(db, id)).await?;
    let i = found.ok_or_else(|| ApiError::not_found(format!("no incident {id}")))?;
    Ok(IncidentOut::new(&i, state.clock.now(), &state.settings.runbook_url))
}

/// Acknowledges an incident as `actor`, audited; the sinks are told.
pub(crate) async fn acknowledge(state: &AppState, id: IncidentId, actor: &Actor) -> Result<IncidentOut, ApiError> {
    let done = state.alerts.acknowledge(id, actor).await.map_err(|e| match e {
        AckError::NotFound(_) => ApiError::not_found(e.to_string()),
        AckError::Resolved(_) | AckError::Acknowledged { .. } => Problem::new(Kind::Conflict, e.to_string()).into(),
        AckError::Store(s) => s.into(),
    })?;
    Ok(IncidentOut::new(&done, state.clock.now(), &state.settings.runbook_url))
}

#[OpenApi(tag = "ApiTags::Incidents")]
impl IncidentsApi {
    /// Incidents, newest first: open, acknowledged and resolved, each with the figures that opened it and
    /// every notification sent about it.
    #[oai(path = "/v1/incidents", method = "get", operation_id = "listIncidents")]
    #[allow(clippy::too_many_arguments)] // one parameter per documented query filter
    async fn list(
        &self,
        _auth: ViewerAuth,
        Data(state): Data<&AppState>,
        /// `open`, `acknowledged` or `resolved`.
        #[oai(name = "state")]
        state_filter: Query<Option<Choice<IncidentState>>>,
        /// An alert rule, e.g. `consecutive_failures`.
        rule: Query<Option<Choice<Rule>>>,
        /// A subscription's id or name.
        subscription: Query<Option<String>>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<Id<IncidentId>>>,
        /// Page size, 1 to 500 (default 50).
        limit: Query<Option<Limit>>,
    ) -> Result<ListIncidentsResponse, ApiError> {
        let params = IncidentParams {
            state: state_filter.0.map(|c| c.0.as_str().to_owned()),
            rule: rule.0.map(|c| c.0.as_str().to_owned()),
            subscription: subscription.0,
            cursor: cursor.0.map(|c| c.0.to_string()),
            limit: limit.0.map(Limit::get),
        };
        Ok(ListIncidentsResponse::Ok(Json(incident_page(state, params).await?)))
    }

    /// One incident.
    #[oai(path = "/v1/incidents/:id", method = "get", operation_id = "getIncident")]
    async fn get(
        &self,
        _auth: ViewerAuth,
        Data(state): Data<&AppState>,
        id: Path<Id<IncidentId>>,
    ) -> Result<IncidentResponse, ApiError> {
        Ok(IncidentResponse::Ok(Json(incident(state, id.0.0).await?)))
    }

    /// Acknowledge an incident: someone is on it. Audited; PagerDuty and Better Stack are told. 409 when
    /// it is acknowledged or resolved already.
    #[oai(path = "/v1/incidents/:id/acknowledge", method = "post", operation_id = "acknowledgeIncident")]
    async fn acknowledge(
        &self,
        auth: OperatorAuth,
        req: &poem::Request,
        Data(state): Data<&AppState>,
        id: Path<Id<IncidentId>>,
    ) -> Result<IncidentResponse, ApiError> {
        let actor = crate::http::access::actor(&auth.0, req);
        Ok(IncidentResponse::Ok(Json(acknowledge(state, id.0.0, &actor).await?)))
    }
}
