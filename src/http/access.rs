//! Who is calling, and whether they may: the credentials the HTTP layer accepts, resolved in one place.
//!
//! - The API takes bearer tokens only (API tokens and `HOOKPLANE_ADMIN_TOKEN`), through poem-openapi's
//!   security schemes in `api::auth`, which call [`bearer`].
//! - Dashboard pages take a session cookie, a bearer token, or, until the first operator exists, a browser
//!   on this machine. [`PageGuard`] resolves the caller, checks the route's least role, checks the CSRF
//!   token of every unsafe request that rode on a cookie or on being local, and hands the page a [`Caller`].

use std::net::IpAddr;

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, EndpointExt, IntoResponse, Middleware, Request, Response};
use subtle::ConstantTimeEq;

use super::AppState;
use crate::auth::sessions::{COOKIE, COOKIE_SECURE};
use crate::auth::{Gate, Principal, csrf, setup};
use crate::contract::{Caller, paths};
use crate::domain::access::Role;
use crate::storage::StoreError;

/// Largest form the CSRF check reads: dashboard forms are a few fields.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// The principal a bearer value names: the admin token or a live API token.
pub async fn bearer(state: &AppState, presented: &[u8]) -> Result<Option<Principal>, StoreError> {
    if let Some(admin) = &state.admin_token
        && bool::from(admin.expose().ct_eq(presented))
    {
        return Ok(Some(Principal::AdminToken));
    }
    let presented = presented.to_vec();
    let found = state.store.read(move |db| crate::storage::tokens::find(db, &presented)).await?;
    Ok(found.map(|t| Principal::Token { id: t.id, name: t.name, role: t.role }))
}

/// The signed-in operator a session cookie names, with the session's digest.
pub async fn session(state: &AppState, req: &Request) -> Result<Option<(Principal, [u8; 32])>, StoreError> {
    let Some(digest) = session_digest(req, &state.gate) else { return Ok(None) };
    let (policy, now) = (state.gate.sessions, state.clock.now());
    let found = state.store.read(move |db| crate::storage::sessions::resolve(db, &digest, policy, now)).await?;
    Ok(found.map(|(_, op)| (Principal::Operator { id: op.id, username: op.username, role: op.role }, digest)))
}

/// The digest of the session id in the request's cookie, if it has the shape of one.
pub fn session_digest(req: &Request, gate: &Gate) -> Option<[u8; 32]> {
    let value = cookie(req, session_cookie(gate))?;
    let well_formed = value.len() == 43 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then(|| crate::secrets::sha256(value.as_bytes()))
}

pub fn session_cookie(gate: &Gate) -> &'static str {
    if gate.secure_cookies { COOKIE_SECURE } else { COOKIE }
}

pub fn local_cookie(gate: &Gate) -> &'static str {
    if gate.secure_cookies { setup::COOKIE_SECURE } else { setup::COOKIE }
}

fn pre_session_cookie(gate: &Gate) -> &'static str {
    if gate.secure_cookies { csrf::PRE_SESSION_COOKIE_SECURE } else { csrf::PRE_SESSION_COOKIE }
}

/// What the CSRF token of a signed-in operator's forms is bound to.
pub fn session_binding(digest: &[u8; 32]) -> Vec<u8> {
    [b"session:".as_slice(), digest].concat()
}

/// The binding for forms shown before sign-in: the pre-session cookie, and the `Set-Cookie` that makes
/// one when the browser has none yet.
pub fn pre_session(req: &Request, gate: &Gate) -> (Vec<u8>, Option<HeaderValue>) {
    let name = pre_session_cookie(gate);
    match cookie(req, name).filter(|v| v.len() == 43) {
        Some(v) => ([b"pre:".as_slice(), v.as_bytes()].concat(), None),
        None => {
            let (value, _) = crate::secrets::random_credential("");
            let value = String::from_utf8_lossy(value.expose()).into_owned();
            let set = set_cookie(gate, name, &value, None);
            ([b"pre:".as_slice(), value.as_bytes()].concat(), Some(set))
        }
    }
}

/// A cookie value from the request's `Cookie` headers.
pub fn cookie<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` for the whole site, out of reach of scripts, not sent on cross-site subrequests or
/// form posts from other sites. `max_age` `None` lasts until the browser closes; `Some(0)` deletes.
pub fn set_cookie(gate: &Gate, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if gate.secure_cookies {
        c.push_str("; Secure");
    }
    // Names and values here are our own base64url and ASCII, always a valid header value.
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The client's address as this server sees it (a proxy's, behind one).
pub fn client_ip(req: &Request) -> Option<IpAddr> {
    req.remote_addr().as_socket_addr().map(|a| a.ip().to_canonical())
}

/// How the audit log names `principal` acting through `req`.
pub fn actor(principal: &Principal, req: &Request) -> crate::domain::audit::Actor {
    crate::domain::audit::Actor { label: principal.label(), client: client_ip(req).map(|ip| ip.to_string()) }
}

/// Headers a proxy adds: a proxy on this machine makes every client look local.
const PROXY_HEADERS: [&str; 5] = ["forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip", "via"];

/// A client on this machine that asked for this machine by name. The `Host` check keeps a web page the
/// operator visits from reaching the dashboard through a DNS name rebound to 127.0.0.1. A proxy on this
/// machine that adds none of the headers passes too, which is why local access also takes the setup link's
/// cookie.
pub fn local(req: &Request) -> bool {
    let from_loopback = client_ip(req).is_some_and(|ip| ip.is_loopback());
    let proxied = PROXY_HEADERS.iter().any(|h| req.headers().contains_key(*h));
    from_loopback && !proxied && req.header(header::HOST).is_some_and(names_this_machine)
}

/// `localhost`, `127.0.0.1`, any 127.x address or `[::1]`, with or without a port.
fn names_this_machine(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// The token of `Authorization: Bearer <token>`.
fn bearer_value(authorization: &str) -> Option<&str> {
    let (scheme, rest) = authorization.split_once(' ')?;
    let token = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Why a page is not shown.
pub enum Refusal {
    /// No credential: a browser is sent to sign in (`next` is where it was going).
    SignIn {
        next: String,
    },
    /// A credential that is not valid, or a request that cannot be sent to the sign-in page.
    Unauthorized(&'static str),
    Forbidden(String),
    /// An unsafe request without a valid CSRF token.
    Csrf,
    Unavailable,
}

/// Puts dashboard routes behind sign-in, each with the least role it needs.
pub struct PageGuard(pub Role);

impl PageGuard {
    pub fn viewer(ep: impl Endpoint + 'static) -> poem::endpoint::BoxEndpoint<'static, Response> {
        ep.with(PageGuard(Role::Viewer)).boxed()
    }

    /// Operators and admins: the webhooks page's actions (each checks its own role above that).
    pub fn operator(ep: impl Endpoint + 'static) -> poem::endpoint::BoxEndpoint<'static, Response> {
        ep.with(PageGuard(Role::Operator)).boxed()
    }

    pub fn admin(ep: impl Endpoint + 'static) -> poem::endpoint::BoxEndpoint<'static, Response> {
        ep.with(PageGuard(Role::Admin)).boxed()
    }
}

impl<E: Endpoint> Middleware<E> for PageGuard {
    type Output = PageGuardEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        PageGuardEndpoint { ep, least: self.0 }
    }
}

pub struct PageGuardEndpoint<E> {
    ep: E,
    least: Role,
}

impl<E: Endpoint> Endpoint for PageGuardEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let Some(state) = req.data::<AppState>().cloned() else {
            return Ok(super::dashboard::refused(Refusal::Unavailable));
        };
        let caller = match identify(&state, &req).await {
            Ok(found) => found,
            Err(refusal) => return Ok(super::dashboard::refused(refusal)),
        };
        if caller.principal.role() < self.least {
            let detail = format!(
                "This page needs the {} role; {} has the {} role.",
                self.least,
                caller.principal.label(),
                caller.principal.role()
            );
            return Ok(super::dashboard::refused(Refusal::Forbidden(detail)));
        }
        if !matches!(*req.method(), Method::GET | Method::HEAD)
            && let Some(token) = &caller.csrf
        {
            let body = match req.take_body().into_bytes_limit(MAX_FORM_BYTES).await {
                Ok(b) => b,
                Err(_) => return Ok(super::dashboard::refused(Refusal::Csrf)),
            };
            let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
            let presented = fields.iter().find(|(k, _)| k == csrf::FIELD).map_or("", |(_, v)| v.as_str());
            if !bool::from(presented.as_bytes().ct_eq(token.as_bytes())) {
                return Ok(super::dashboard::refused(Refusal::Csrf));
            }
            req.set_body(body);
        }
        req.set_data(caller);
        self.ep.call(req).await.map(IntoResponse::into_response)
    }
}

/// The caller a request's credential names.
async fn identify(state: &AppState, req: &Request) -> Result<Caller, Refusal> {
    let gate = &state.gate;
    if let Some(authorization) = req.header(header::AUTHORIZATION) {
        let token = bearer_value(authorization)
            .ok_or(Refusal::Unauthorized("The Authorization header must be `Bearer <API token>`."))?;
        let principal = bearer(state, token.as_bytes())
            .await
            .map_err(|_| Refusal::Unavailable)?
            .ok_or(Refusal::Unauthorized("The bearer token is not valid: it is unknown, or it was revoked."))?;
        return Ok(Caller { principal, csrf: None, session: None });
    }
    if let Some((principal, digest)) = session(state, req).await.map_err(|_| Refusal::Unavailable)? {
        let csrf = Some(gate.csrf.token(&session_binding(&digest)));
        return Ok(Caller { principal, csrf, session: Some(digest) });
    }
    if state.settings.open_on_loopback
        && !gate.operators_exist
        && local(req)
        && let Some(digest) = cookie(req, local_cookie(gate)).and_then(|v| gate.setup.browser(v))
    {
        let binding = [b"local:".as_slice(), &digest].concat();
        return Ok(Caller { principal: Principal::Local, csrf: Some(gate.csrf.token(&binding)), session: None });
    }
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        let next = req.uri().path_and_query().map_or(paths::DASHBOARD_WEBHOOKS, |p| p.as_str()).to_owned();
        return Err(Refusal::SignIn { next });
    }
    Err(Refusal::Unauthorized("Sign in first: your session has ended, or you have not signed in."))
}

/// Where to go after sign-in: only a path on this site, never another origin. Browsers drop tabs and
/// newlines from URLs and read `\\` as `/`, so a path holding any of them (`/\t/evil.example`) could become
/// `//evil.example`; only visible ASCII without a backslash is let through.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.len() <= 2048
                && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            n
        }
        _ => paths::DASHBOARD_WEBHOOKS,
    }
}

/// The status a refusal is answered with.
pub fn refusal_status(r: &Refusal) -> StatusCode {
    match r {
        Refusal::SignIn { .. } => StatusCode::SEE_OTHER,
        Refusal::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        Refusal::Forbidden(_) | Refusal::Csrf => StatusCode::FORBIDDEN,
        Refusal::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_names_of_this_machine_count_as_local() {
        for host in ["localhost", "localhost:8080", "LOCALHOST", "127.0.0.1:8080", "127.1.2.3", "[::1]:8080", "[::1]"] {
            assert!(super::names_this_machine(host), "{host}");
        }
        for host in ["evil.example", "evil.example:8080", "127.0.0.1.nip.io", "[::2]:80", ""] {
            assert!(!super::names_this_machine(host), "{host}");
        }
    }

    #[test]
    fn bearer_values_and_next_paths() {
        assert_eq!(super::bearer_value("Bearer s3cret"), Some("s3cret"));
        assert_eq!(super::bearer_value("bearer  s3cret "), Some("s3cret"));
        assert_eq!(super::bearer_value("Basic YWRtaW46czM6Y3JldA=="), None);
        assert_eq!(super::bearer_value("Bearer"), None);
        assert_eq!(super::safe_next(Some("/dashboard/webhooks?q=x")), "/dashboard/webhooks?q=x");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "evil",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\x0b/evil.example",
            "/ /evil.example",
            "/dashboard/\\evil",
            "/é",
        ] {
            assert_eq!(super::safe_next(Some(bad)), crate::contract::paths::DASHBOARD_WEBHOOKS, "{bad}");
        }
    }
}
