//! `GET` and `POST /dashboard/tokens`: API tokens, made and revoked.

use maud::Render;
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{Response, handler};

use super::{Intent, error_page, html_response, see_other};
use crate::contract::Caller;
use crate::contract::paths;
use crate::contract::{TokenCreated, TokenIn, TokenOut};
use crate::domain::access::Role;
use crate::http::AppState;
use crate::http::access;
use crate::http::api::{ApiError, create_token, revoke_token};
use crate::views::components::Tone;
use crate::views::layout::Chrome;
use crate::views::tokens::TokensView;
#[derive(Debug, Default, serde::Deserialize)]
pub struct TokensQuery {
    revoked: Option<String>,
}

#[handler]
pub async fn view_tokens_get(
    Data(state): Data<&AppState>,
    Data(caller): Data<&Caller>,
    Query(q): Query<TokensQuery>,
) -> Response {
    let notice = q.revoked.map(|name| (Tone::Success, format!("Revoked token {name}: it is refused from now on.")));
    tokens_page(state, caller, StatusCode::OK, None, notice).await
}

/// What the tokens page's forms ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokensIntent {
    Create,
    Revoke,
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct TokensAction {
    #[serde(default)]
    intent: Intent<TokensIntent>,
    name: Option<String>,
    role: Option<String>,
    token: Option<String>,
}

#[handler]
pub async fn view_tokens_post(
    req: &poem::Request,
    Data(state): Data<&AppState>,
    Data(caller): Data<&Caller>,
    poem::web::Form(mut action): poem::web::Form<TokensAction>,
) -> Response {
    let by = access::actor(&caller.principal, req);
    match std::mem::take(&mut action.intent).known("create or revoke") {
        Err(e) => tokens_error(state, caller, e).await,
        Ok(TokensIntent::Create) => {
            let role = action.role.as_deref().unwrap_or("").parse::<Role>();
            let made = match role {
                Ok(role) => {
                    let input = TokenIn { name: action.name.unwrap_or_default(), role: role.into() };
                    create_token(state, by, input).await
                }
                Err(e) => Err(ApiError::bad_request(e.to_string())),
            };
            match made {
                Ok(m) => tokens_page(state, caller, StatusCode::CREATED, Some(&m), None).await,
                Err(e) => tokens_error(state, caller, e).await,
            }
        }
        Ok(TokensIntent::Revoke) => {
            let revoked = match crate::http::api::parse_id(action.token.as_deref().unwrap_or("")) {
                Ok(id) => revoke_token(state, by, id).await,
                Err(e) => Err(e),
            };
            match revoked {
                Ok(t) => {
                    let query = serde_urlencoded::to_string([("revoked", t.name.as_str())]).unwrap_or_default();
                    let to = format!("{}?{query}", paths::DASHBOARD_TOKENS);
                    see_other(&to)
                }
                Err(e) => tokens_error(state, caller, e).await,
            }
        }
    }
}

async fn tokens_error(state: &AppState, caller: &Caller, e: ApiError) -> Response {
    let (status, p) = e.problem();
    let notice = Some((Tone::Critical, format!("Nothing was changed: {}", p.detail)));
    tokens_page(state, caller, status, None, notice).await
}

async fn tokens_page(
    state: &AppState,
    caller: &Caller,
    status: StatusCode,
    made: Option<&TokenCreated>,
    notice: Option<(Tone, String)>,
) -> Response {
    let chrome = Chrome::of(caller);
    match state.store.read(crate::storage::tokens::list).await {
        Ok(all) => {
            let tokens: Vec<TokenOut> = all.into_iter().map(TokenOut::from).collect();
            html_response(status, TokensView { tokens: &tokens, made, notice, chrome: &chrome }.render())
        }
        Err(e) => error_page(ApiError::from(e), &chrome),
    }
}
