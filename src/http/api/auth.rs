//! Authorization as a type: an operation that takes [`ApiAuth`] cannot run without a valid token, because
//! the only way to obtain one is the checker below.

use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;

use crate::http::AppState;
use crate::http::problem::{Kind, Problem};

/// Who is calling. Until operators and roles exist, the only principal is the admin token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// `HOOKPLANE_ADMIN_TOKEN`.
    AdminToken,
}

/// Bearer token authentication.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_bearer")]
pub struct ApiAuth(pub Principal);

async fn check_bearer(req: &Request, bearer: Bearer) -> poem::Result<Principal> {
    use subtle::ConstantTimeEq;
    let deny = |detail: &str| poem::Error::from_response(Problem::new(Kind::Unauthorized, detail).response());
    let state = req.data::<AppState>().ok_or_else(|| deny("the server is not ready"))?;
    match &state.admin_token {
        None => Err(deny("the API is closed: start Hookplane with HOOKPLANE_ADMIN_TOKEN set to use it")),
        Some(token) if bool::from(token.expose().ct_eq(bearer.token.as_bytes())) => Ok(Principal::AdminToken),
        Some(_) => Err(deny("the bearer token is not valid")),
    }
}
