//! Handshakes (run now, one subscription or all) and the provider credentials they sign in with.

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use super::auth::{AdminAuth, OperatorAuth};
use super::body::JsonIn;
use super::error::{ApiError, BodyError};
use crate::contract::{CredentialOut, HandshakeOut, HandshakesOut, ShopifyCredentialIn, ZohoCredentialIn};
use crate::domain::audit::Actor;
use crate::domain::credential::{Provider, ZohoSecret};
use crate::handshakes::HandshakeError;
use crate::handshakes::credentials::CredentialView;
use crate::http::AppState;
use crate::http::problem::{Kind, Problem};
use crate::secrets::SecretBytes;

#[derive(Default)]
pub struct HandshakesApi;

#[derive(ApiResponse)]
pub(crate) enum HandshakeResponse {
    /// The handshake ran; `outcome` says what it found (`failed` with the provider's words included).
    #[oai(status = 200)]
    Ok(Json<HandshakeOut>),
}

#[derive(ApiResponse)]
enum HandshakesResponse {
    #[oai(status = 200)]
    Ok(Json<HandshakesOut>),
}

#[derive(ApiResponse)]
enum CredentialResponse {
    #[oai(status = 200)]
    Ok(Json<CredentialOut>),
}

#[derive(ApiResponse)]
enum CredentialsResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<CredentialOut>>),
}

impl From<HandshakeError> for ApiError {
    fn from(e: HandshakeError) -> Self {
        let (kind, detail) = match e {
            HandshakeError::Store(s) => return s.into(),
            HandshakeError::NotFound(d) => (Kind::NotFound, d),
            HandshakeError::Unsupported(d) => (Kind::HandshakeUnavailable, d),
            HandshakeError::NoPublicUrl(d) => (Kind::PublicUrlMissing, d),
            HandshakeError::NoCredential(d) => (Kind::CredentialMissing, d),
            HandshakeError::Invalid(d) => (Kind::InvalidRequest, d),
            HandshakeError::Internal(d) => {
                tracing::error!("a handshake could not run: {d}");
                (Kind::Internal, d)
            }
        };
        Problem::new(kind, detail).into()
    }
}

pub(crate) fn credential_out(c: CredentialView) -> CredentialOut {
    CredentialOut {
        provider: c.provider.as_str().to_owned(),
        account: c.account,
        fingerprint: c.fingerprint,
        data_centre: c.data_centre,
        set_at: c.set_at.map(crate::contract::time),
        set_by: c.set_by,
    }
}

/// Runs the handshake of the subscription `key` (id or name) now: shared by the API,
/// `POST /webhooks/handshake/{id}` and the dashboard.
pub(crate) async fn handshake(state: &AppState, by: &Actor, key: &str) -> Result<HandshakeOut, ApiError> {
    let run = state.handshakes.run_subscription(key.trim(), by).await?;
    Ok(HandshakeOut::from(&run))
}

/// `POST /webhooks/handshake/{subscription_id}`: the API's handshake at the path the contract names, with
/// the same bearer credential (operator or admin) and the same answers.
#[poem::handler]
pub async fn webhooks_handshake(
    req: &poem::Request,
    poem::web::Path(id): poem::web::Path<String>,
    Data(state): Data<&AppState>,
) -> poem::Response {
    use poem::IntoResponse as _;
    let by = match super::auth::bearer_actor(req, crate::domain::access::Role::Operator).await {
        Ok(by) => by,
        Err(response) => return response,
    };
    match handshake(state, &by, &id).await {
        Ok(run) => HandshakeResponse::Ok(Json(run)).into_response(),
        Err(e) => e.into_response(),
    }
}

#[OpenApi(tag = "ApiTags::Handshakes")]
impl HandshakesApi {
    /// Check the subscription's registration at its provider now, and repair it where it differs: a
    /// Shopify webhook subscription is created when missing and updated when its address or format
    /// differs; a Zoho CRM channel is enabled, updated or refreshed. Audited. 409 when the subscription
    /// has no handshake, `public_url` is not set, or its shop or organisation has no credential.
    #[oai(path = "/v1/subscriptions/:id/handshake", method = "post", operation_id = "runHandshake")]
    async fn run(
        &self,
        auth: OperatorAuth,
        req: &poem::Request,
        Data(state): Data<&AppState>,
        id: Path<String>,
    ) -> Result<HandshakeResponse, ApiError> {
        let by = crate::http::access::actor(&auth.0, req);
        Ok(HandshakeResponse::Ok(Json(handshake(state, &by, &id.0).await?)))
    }

    /// Run the handshake of every subscription whose shop or organisation has a credential, now; the
    /// accounts without one are listed in `skipped`.
    #[oai(path = "/v1/handshakes", method = "post", operation_id = "runAllHandshakes")]
    async fn run_all(
        &self,
        auth: OperatorAuth,
        req: &poem::Request,
        Data(state): Data<&AppState>,
    ) -> Result<HandshakesResponse, ApiError> {
        let by = crate::http::access::actor(&auth.0, req);
        let ran = state.handshakes.run_all(&by).await?;
        let runs = ran.runs.iter().map(HandshakeOut::from).collect();
        Ok(HandshakesResponse::Ok(Json(HandshakesOut { runs, skipped: ran.skipped })))
    }

    /// Provider credentials, by fingerprint only.
    #[oai(path = "/v1/credentials", method = "get", operation_id = "listCredentials")]
    async fn list(&self, _auth: AdminAuth, Data(state): Data<&AppState>) -> Result<CredentialsResponse, ApiError> {
        let all = state.handshakes.credentials().await?;
        Ok(CredentialsResponse::Ok(Json(all.into_iter().map(credential_out).collect())))
    }

    /// Set a shop's Admin API access token (replacing any), sealed at rest; handshakes of the shop run
    /// again soon. Audited by fingerprint.
    #[oai(path = "/v1/credentials/shopify/:shop", method = "put", operation_id = "setShopifyCredential")]
    async fn set_shopify(
        &self,
        auth: AdminAuth,
        req: &poem::Request,
        Data(state): Data<&AppState>,
        shop: Path<String>,
        body: JsonIn<ShopifyCredentialIn>,
    ) -> Result<CredentialResponse, BodyError> {
        let by = crate::http::access::actor(&auth.0, req);
        let token = SecretBytes::new(body.0.access_token.trim().as_bytes().to_vec());
        let view = state.handshakes.set_shopify_credential(&shop.0, token, &by).await?;
        Ok(CredentialResponse::Ok(Json(credential_out(view))))
    }

    /// Set a Zoho organisation's OAuth client and refresh token (replacing any), sealed at rest. Audited by
    /// fingerprint.
    #[oai(path = "/v1/credentials/zoho/:org", method = "put", operation_id = "setZohoCredential")]
    async fn set_zoho(
        &self,
        auth: AdminAuth,
        req: &poem::Request,
        Data(state): Data<&AppState>,
        org: Path<String>,
        body: JsonIn<ZohoCredentialIn>,
    ) -> Result<CredentialResponse, BodyError> {
        let by = crate::http::access::actor(&auth.0, req);
        let b = body.0;
        let secret = ZohoSecret {
            client_id: b.client_id.trim().to_owned(),
            client_secret: b.client_secret.trim().to_owned(),
            refresh_token: b.refresh_token.trim().to_owned(),
        };
        let dc = b.data_centre.as_deref().map(str::trim).filter(|d| !d.is_empty()).unwrap_or("com");
        let view = state.handshakes.set_zoho_credential(&org.0, secret, dc, &by).await?;
        Ok(CredentialResponse::Ok(Json(credential_out(view))))
    }

    /// Remove a shop's Admin API access token; its subscriptions are no longer checked (unless
    /// `SHOPIFY_ADMIN_ACCESS_TOKEN` serves it). Audited.
    #[oai(path = "/v1/credentials/shopify/:shop", method = "delete", operation_id = "removeShopifyCredential")]
    async fn remove_shopify(
        &self,
        auth: AdminAuth,
        req: &poem::Request,
        Data(state): Data<&AppState>,
        shop: Path<String>,
    ) -> Result<CredentialResponse, ApiError> {
        let by = crate::http::access::actor(&auth.0, req);
        let view = state.handshakes.remove_credential(Provider::Shopify, &shop.0, &by).await?;
        Ok(CredentialResponse::Ok(Json(credential_out(view))))
    }

    /// Remove a Zoho organisation's OAuth credential; its channels are no longer checked. Audited.
    #[oai(path = "/v1/credentials/zoho/:org", method = "delete", operation_id = "removeZohoCredential")]
    async fn remove_zoho(
        &self,
        auth: AdminAuth,
        req: &poem::Request,
        Data(state): Data<&AppState>,
        org: Path<String>,
    ) -> Result<CredentialResponse, ApiError> {
        let by = crate::http::access::actor(&auth.0, req);
        let view = state.handshakes.remove_credential(Provider::Zoho, &org.0, &by).await?;
        Ok(CredentialResponse::Ok(Json(credential_out(view))))
    }
}
