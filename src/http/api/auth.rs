//! Authorization as a type: an operation takes [`ViewerAuth`], [`OperatorAuth`] or [`AdminAuth`], the least
//! role it needs, and cannot run without it, because the only way to obtain one
//! is its checker.
//! Credentials are resolved in one place, [`authorize`].

use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;

use crate::auth::Principal;
use crate::domain::access::Role;
use crate::http::AppState;
use crate::http::problem::{Kind, Problem};

/// Any valid credential: viewers read.
#[derive(SecurityScheme)]
#[oai(rename = "bearer", ty = "bearer", checker = "check_viewer")]
pub struct ViewerAuth(pub Principal);

/// Operators and admins: replays, pausing and resuming destinations.
#[derive(SecurityScheme)]
#[oai(rename = "bearer", ty = "bearer", checker = "check_operator")]
pub struct OperatorAuth(pub Principal);

/// Admins only: secrets, subscriptions, operators, tokens, retention, bulk actions.
#[derive(SecurityScheme)]
#[oai(rename = "bearer", ty = "bearer", checker = "check_admin")]
pub struct AdminAuth(pub Principal);

async fn check_viewer(req: &Request, bearer: Bearer) -> poem::Result<Principal> {
    authorize(req, &bearer, Role::Viewer).await
}

async fn check_operator(req: &Request, bearer: Bearer) -> poem::Result<Principal> {
    authorize(req, &bearer, Role::Operator).await
}

async fn check_admin(req: &Request, bearer: Bearer) -> poem::Result<Principal> {
    authorize(req, &bearer, Role::Admin).await
}

fn refuse(kind: Kind, detail: impl Into<String>) -> poem::Error {
    poem::Error::from_response(Problem::new(kind, detail).response())
}

/// The principal a bearer value names, if its role is at least `least`.
pub(crate) async fn authorize(req: &Request, bearer: &Bearer, least: Role) -> poem::Result<Principal> {
    let state = req.data::<AppState>().ok_or_else(|| refuse(Kind::Unauthorized, "the server is not ready"))?;
    let principal = crate::http::access::bearer(state, bearer.token.as_bytes())
        .await
        .map_err(|e| poem::Error::from_response(Problem::from(&e).response()))?;
    let principal = principal.ok_or_else(|| match state.admin_token {
        Some(_) => refuse(Kind::Unauthorized, "the bearer token is not valid"),
        None => refuse(
            Kind::Unauthorized,
            "the bearer token is not valid: make an API token with `hookplane admin create-token`, or start \
             Hookplane with HOOKPLANE_ADMIN_TOKEN set",
        ),
    })?;
    if principal.role() < least {
        return Err(refuse(
            Kind::Forbidden,
            format!("this needs the {least} role; the token `{}` has the {} role", principal.label(), principal.role()),
        ));
    }
    Ok(principal)
}

/// For plain handlers outside the API document (`/webhooks/replay/…`, `/webhooks/handshake/…`): the actor
/// of the request's `Authorization: Bearer` credential if its role is at least `least`, else the answer
/// refusing it.
pub(crate) async fn bearer_actor(req: &Request, least: Role) -> Result<crate::domain::audit::Actor, poem::Response> {
    let header = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let Some(token) = header.strip_prefix("Bearer ").filter(|t| !t.is_empty()) else {
        let detail = format!("send `Authorization: Bearer <token>` with an API token of the {least} role or above");
        return Err(Problem::new(Kind::Unauthorized, detail).response());
    };
    let bearer = Bearer { token: token.to_owned() };
    match authorize(req, &bearer, least).await {
        Ok(principal) => Ok(crate::http::access::actor(&principal, req)),
        Err(e) => Err(e.into_response()),
    }
}
