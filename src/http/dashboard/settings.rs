//! `GET` and `POST /dashboard/settings`: everyone reads; admins set the retention.

use maud::Render;
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Response, handler};

use super::{Intent, error_page, html_response, see_other};
use crate::contract::paths;
use crate::contract::{Caller, RetentionChangeIn};
use crate::domain::access::Role;
use crate::http::AppState;
use crate::http::access;
use crate::http::api::ApiError;
use crate::http::api::settings::{set_retention, settings};
use crate::views::components::Tone;
use crate::views::layout::Chrome;
use crate::views::settings::SettingsView;

#[derive(Debug, Default, serde::Deserialize)]
pub struct SettingsQuery {
    saved: Option<String>,
}

#[handler]
pub async fn view_settings_get(
    Data(state): Data<&AppState>,
    Data(caller): Data<&Caller>,
    poem::web::Query(q): poem::web::Query<SettingsQuery>,
) -> Response {
    let saved = q.saved.as_deref().and_then(|d| d.parse::<u32>().ok());
    let notice = saved.map(|days| (Tone::Success, format!("Deliveries are now kept {days} days.")));
    settings_page(state, caller, StatusCode::OK, notice).await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettingsIntent {
    Retention,
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct SettingsAction {
    #[serde(default)]
    intent: Intent<SettingsIntent>,
    days: Option<String>,
    confirm: Option<String>,
}

#[handler]
pub async fn view_settings_post(
    req: &poem::Request,
    Data(state): Data<&AppState>,
    Data(caller): Data<&Caller>,
    poem::web::Form(mut action): poem::web::Form<SettingsAction>,
) -> Response {
    if caller.principal.role() < Role::Admin {
        let e = ApiError::forbidden("only admins change settings");
        return failed(state, caller, e).await;
    }
    let by = access::actor(&caller.principal, req);
    let done = match std::mem::take(&mut action.intent).known("retention") {
        Err(e) => Err(e),
        Ok(SettingsIntent::Retention) => match action.days.as_deref().unwrap_or("").trim().parse::<u32>() {
            Ok(days) => {
                let change = RetentionChangeIn { days, confirm: action.confirm.as_deref() == Some("true") };
                set_retention(state, &by, change).await.map(|_| days)
            }
            Err(_) => Err(ApiError::bad_request("`days` must be a whole number of days")),
        },
    };
    match done {
        Ok(days) => see_other(&format!("{}?saved={days}", paths::DASHBOARD_SETTINGS)),
        Err(e) => failed(state, caller, e).await,
    }
}

async fn failed(state: &AppState, caller: &Caller, e: ApiError) -> Response {
    let (status, p) = e.problem();
    settings_page(state, caller, status, Some((Tone::Critical, format!("Nothing was changed: {}", p.detail)))).await
}

async fn settings_page(
    state: &AppState,
    caller: &Caller,
    status: StatusCode,
    notice: Option<(Tone, String)>,
) -> Response {
    let chrome = Chrome::of(caller);
    match settings(state).await {
        Ok(s) => {
            let now = crate::contract::time(state.clock.now());
            html_response(status, SettingsView { settings: &s, now: &now, notice, chrome: &chrome }.render())
        }
        Err(e) => error_page(e, &chrome),
    }
}
