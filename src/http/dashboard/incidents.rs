//! `GET /dashboard/incidents`, `GET` and `POST /dashboard/incidents/{id}` (acknowledge), and the runbook.

use maud::Render;
use poem::http::StatusCode;
use poem::web::{Data, Path, Query};
use poem::{Response, handler};

use super::{Intent, error_page, html_response, message_page, see_other};
use crate::contract::paths;
use crate::contract::{Caller, IncidentParams};
use crate::http::AppState;
use crate::http::access;
use crate::http::api::{acknowledge, incident, incident_page};
use crate::views::components::Tone;
use crate::views::incidents::{IncidentView, IncidentsView};
use crate::views::layout::Chrome;
use crate::views::notice::Notice;

#[handler]
pub async fn view_incidents_get(
    Data(state): Data<&AppState>,
    Data(caller): Data<&Caller>,
    Query(filters): Query<IncidentParams>,
) -> Response {
    let chrome = Chrome::of(caller);
    let (status, page, error) = match incident_page(state, filters.clone()).await {
        Ok(p) => (StatusCode::OK, Some(p), None),
        Err(e) => {
            let (status, p) = e.problem();
            (status, None, Some(p.detail.clone()))
        }
    };
    let now = state.clock.now().to_rfc3339();
    let view = IncidentsView { filters: &filters, page: page.as_ref(), error, now: &now, chrome: &chrome };
    html_response(status, view.render())
}

#[handler]
pub async fn view_incident_get(
    Data(state): Data<&AppState>,
    Data(caller): Data<&Caller>,
    Path(id): Path<String>,
    Query(notice): Query<Notice>,
) -> Response {
    let chrome = Chrome { notice, ..Chrome::of(caller) };
    match async { incident(state, crate::http::api::parse_id(&id)?).await }.await {
        Ok(i) => {
            let now = state.clock.now().to_rfc3339();
            html_response(StatusCode::OK, IncidentView { incident: &i, now: &now, chrome: &chrome }.render())
        }
        Err(e) => error_page(e, &chrome),
    }
}

/// What an incident's page asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentIntent {
    Acknowledge,
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct IncidentAction {
    #[serde(default)]
    intent: Intent<IncidentIntent>,
}

/// Acknowledge (operators), then back to the incident with the outcome.
#[handler]
pub async fn view_incident_post(
    req: &poem::Request,
    Data(state): Data<&AppState>,
    Data(caller): Data<&Caller>,
    Path(id): Path<String>,
    poem::web::Form(action): poem::web::Form<IncidentAction>,
) -> Response {
    let chrome = Chrome::of(caller);
    let by = access::actor(&caller.principal, req);
    let done = match action.intent.known("acknowledge") {
        Ok(IncidentIntent::Acknowledge) => match crate::http::api::parse_id(&id) {
            Ok(id) => acknowledge(state, id, &by).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match done {
        Ok(i) => see_other(&Notice::new("acknowledged", &i.id, None).on(&paths::incident_view(&i.id))),
        Err(e) => {
            let (status, p) = e.problem();
            message_page(status, "Not acknowledged", Tone::Warning, &p.detail, &chrome, None)
        }
    }
}

/// The runbook: public, so whoever is paged can read it before signing in.
#[handler]
pub async fn view_runbook_get() -> Response {
    html_response(StatusCode::OK, crate::views::runbook::page(&Chrome::default()))
}
