use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use super::auth::AdminAuth;
use super::body::JsonIn;
use super::error::{ApiError, BodyError};
use super::params::Id;
use crate::contract::{TokenCreated, TokenIn, TokenOut};
use crate::domain::audit::Actor;
use crate::domain::ids::TokenId;
use crate::http::AppState;
use crate::storage::tokens::{self, TokenRef};

#[derive(Default)]
pub struct TokensApi;

#[derive(ApiResponse)]
enum ListTokensResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<TokenOut>>),
}

#[derive(ApiResponse)]
enum CreateTokenResponse {
    /// Made; `secret` is shown this once.
    #[oai(status = 201)]
    Created(Json<TokenCreated>),
}

#[derive(ApiResponse)]
enum RevokeTokenResponse {
    /// Revoked: the token is refused from now on.
    #[oai(status = 200)]
    Ok(Json<TokenOut>),
}

/// Makes a token, for the API and the dashboard.
pub(crate) async fn create_token(state: &AppState, by: Actor, input: TokenIn) -> Result<TokenCreated, ApiError> {
    let now = state.clock.now();
    let (token, secret) =
        state.store.read(move |db| tokens::create(db, &input.name, input.role.into(), &by, now)).await?;
    Ok(TokenCreated { token: token.into(), secret: String::from_utf8_lossy(secret.expose()).into_owned() })
}

/// Revokes the live token with id `raw`, for the API and the dashboard.
pub(crate) async fn revoke_token(state: &AppState, by: Actor, id: TokenId) -> Result<TokenOut, ApiError> {
    let now = state.clock.now();
    let revoked = state.store.read(move |db| tokens::revoke(db, TokenRef::Id(id), &by, now)).await?;
    revoked.map(TokenOut::from).ok_or_else(|| ApiError::not_found(format!("no live token `{id}`")))
}

#[OpenApi(tag = "ApiTags::Tokens")]
impl TokensApi {
    /// Every API token, live and revoked, oldest first (never the tokens themselves).
    #[oai(path = "/v1/tokens", method = "get", operation_id = "listTokens")]
    async fn list(&self, _auth: AdminAuth, Data(state): Data<&AppState>) -> Result<ListTokensResponse, ApiError> {
        let all = state.store.read(tokens::list).await?;
        Ok(ListTokensResponse::Ok(Json(all.into_iter().map(TokenOut::from).collect())))
    }

    /// Make an API token with a role. The token is in the answer once; only its SHA-256 is kept.
    #[oai(path = "/v1/tokens", method = "post", operation_id = "createToken")]
    async fn create(
        &self,
        auth: AdminAuth,
        req: &poem::Request,
        Data(state): Data<&AppState>,
        body: JsonIn<TokenIn>,
    ) -> Result<CreateTokenResponse, BodyError> {
        let by = crate::http::access::actor(&auth.0, req);
        Ok(CreateTokenResponse::Created(Json(create_token(state, by, body.0).await?)))
    }

    /// Revoke a live token; it is refused from the next request on.
    #[oai(path = "/v1/tokens/:id/revoke", method = "post", operation_id = "revokeToken")]
    async fn revoke(
        &self,
        auth: AdminAuth,
        req: &poem::Request,
        Data(state): Data<&AppState>,
        id: Path<Id<TokenId>>,
    ) -> Result<RevokeTokenResponse, ApiError> {
        let by = crate::http::access::actor(&auth.0, req);
        Ok(RevokeTokenResponse::Ok(Json(revoke_token(state, by, id.0.0).await?)))
    }
}
