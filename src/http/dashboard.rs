//! The dashboard's HTML routes (handlers are `view_<page>_<verb>`). Until operators can sign in, they answer
//! clients on this machine and anyone presenting the admin token: as a bearer token, or as the password of
//! HTTP Basic authentication so that a browser can ask for it.

use base64::Engine as _;
use maud::{Markup, Render, html};
use poem::http::{StatusCode, header};
use poem::web::{Data, Path, Query};
use poem::{Endpoint, EndpointExt, IntoResponse, Middleware, Request, Response, handler};
use subtle::ConstantTimeEq;

use super::AppState;
use super::api::types::{DeliveryOut, DeliveryPage};
use super::api::{ApiError, DeliveryParams, dashboard_payload, query};
use super::paths;
use crate::domain::{self, DeliveryId, Timestamp};
use crate::storage::deliveries;
use crate::views::components::{Banner, Tone};
use crate::views::delivery::{Body, DeliveryPage as DeliveryView};
use crate::views::layout;
use crate::views::webhooks::{Filters, PageError, RANGES, WebhooksPage};

#[handler]
pub async fn view_root_get() -> Response {
    Response::builder().status(StatusCode::SEE_OTHER).header(header::LOCATION, paths::DASHBOARD_WEBHOOKS).finish()
}

#[handler]
pub async fn view_webhooks_get(Data(state): Data<&AppState>, Query(filters): Query<Filters>) -> Response {
    let filters = filters.normalized();
    let mut status = StatusCode::OK;
    let mut error = None;
    let mut deliveries_shown = true;
    let data = match delivery_query(&filters, state.clock.now()) {
        Ok(q) => dashboard_payload(state, q).await,
        Err(e) => Err(e),
    };
    let data = match data {
        Ok(d) => Some(d),
        Err(e) => {
            let (code, p) = e.problem();
            status = code;
            let title = match code {
                StatusCode::BAD_REQUEST => "These filters cannot be applied",
                StatusCode::SERVICE_UNAVAILABLE => "The store cannot be read right now",
                _ => "The deliveries cannot be shown",
            };
            error = Some(PageError { title: title.to_owned(), detail: p.detail.clone() });
            // A bad filter or search still leaves the figures and subscriptions worth showing; the form
            // stays filled in so that the mistake can be corrected.
            if code == StatusCode::BAD_REQUEST {
                deliveries_shown = false;
                match query(DeliveryParams::default()) {
                    Ok(q) => dashboard_payload(state, q).await.ok(),
                    Err(_) => None,
                }
            } else {
                None
            }
        }
    };
    let data = data.map(|mut d| {
        if !deliveries_shown {
            d.deliveries = DeliveryPage { items: Vec::new(), next_cursor: None };
        }
        d
    });
    let public_url = state.public_url();
    let page =
        WebhooksPage { filters: &filters, data: data.as_ref(), deliveries_shown, error, public_url: &public_url };
    html_response(status, page.render())
}

/// The form's fields as the API's query: blank means any, `range` is a window ending now.
fn delivery_query(f: &Filters, now: Timestamp) -> Result<crate::loader::Query, ApiError> {
    let bad = |name: &str, value: &str, expected: String| {
        ApiError::bad_request(format!("`{name}` cannot be `{value}`: expected {expected}"))
    };
    let source = f.source.as_deref().map(|s| s.parse::<domain::Source>().map_err(ApiError::bad_request)).transpose()?;
    let status =
        f.status.as_deref().map(|s| s.parse::<domain::DeliveryStatus>().map_err(ApiError::bad_request)).transpose()?;
    // The form's time range wins over a `from` carried along from a link, so that changing it works.
    let from = match (&f.from, &f.range) {
        (from, None) => from.clone(),
        (_, Some(range)) => {
            let Some((_, _, ms)) = RANGES.iter().find(|(v, _, _)| v == range) else {
                let known: Vec<&str> = RANGES.iter().map(|(v, _, _)| *v).collect();
                return Err(bad("range", range, format!("one of {}", known.join(", "))));
            };
            Some(now.plus_millis(-ms).to_rfc3339())
        }
    };
    let limit = f
        .limit
        .as_deref()
        .map(|l| l.parse::<u32>().map_err(|_| bad("limit", l, "a whole number".into())))
        .transpose()?;
    query(DeliveryParams {
        q: f.q.clone(),
        source: source.map(Into::into),
        topic: f.topic.clone(),
        status: status.map(Into::into),
        subscription: f.subscription.clone(),
        account: f.account.clone(),
        from,
        to: f.to.clone(),
        cursor: f.cursor.clone(),
        limit,
    })
}

/// The delivery id in a page's path, or what the not-found page says.
fn delivery_id(raw: &str) -> Result<DeliveryId, String> {
    raw.parse().map_err(|_| format!("`{raw}` is not a delivery id"))
}

#[handler]
pub async fn view_delivery_get(Data(state): Data<&AppState>, Path(raw): Path<String>) -> Response {
    let id = match delivery_id(&raw) {
        Ok(id) => id,
        Err(detail) => return not_found(&detail),
    };
    match state.store.read(move |db| deliveries::get_full(db, id)).await {
        Ok(Some((listed, payload))) => {
            let body = Body::of(&payload.body);
            let delivery = DeliveryOut::new(listed, Some(payload.headers));
            html_response(StatusCode::OK, DeliveryView { delivery: &delivery, body }.render())
        }
        Ok(None) => not_found(&format!("No delivery {id} is stored: it may have passed its retention period.")),
        Err(e) => error_page(ApiError::from(e)),
    }
}

/// The exact body as a download. Never with the content type it arrived with: a body sent as HTML must
/// not run as a page of this origin.
#[handler]
pub async fn view_delivery_body_get(Data(state): Data<&AppState>, Path(raw): Path<String>) -> Response {
    let id = match delivery_id(&raw) {
        Ok(id) => id,
        Err(detail) => return not_found(&detail),
    };
    match state.store.read(move |db| deliveries::body(db, id)).await {
        Ok(Some((d, payload))) => {
            let json = d.content_type.as_deref().is_some_and(|c| c.contains("json"));
            let name = format!("{id}.{}", if json { "json" } else { "bin" });
            Response::builder()
                .content_type("application/octet-stream")
                .header(header::CACHE_CONTROL, "no-store")
                .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\""))
                .header("x-content-sha256", d.body_sha256)
                .body(payload.body)
        }
        Ok(None) => not_found(&format!("No delivery {id} is stored.")),
        Err(e) => error_page(ApiError::from(e)),
    }
}

fn html_response(status: StatusCode, markup: Markup) -> Response {
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        // Figures change with every delivery: never show a stale page from the cache.
        .header(header::CACHE_CONTROL, "no-store")
        .body(markup.into_string())
}

fn message_page(status: StatusCode, title: &str, tone: Tone, detail: &str) -> Response {
    let main = html! {
        p.breadcrumb { a href=(paths::DASHBOARD_WEBHOOKS) { "← Webhooks" } }
        (Banner { tone, title, body: html! { p { (detail) } } })
    };
    html_response(status, layout::page(title, main))
}

fn not_found(detail: &str) -> Response {
    message_page(StatusCode::NOT_FOUND, "Not found", Tone::Warning, detail)
}

fn error_page(e: ApiError) -> Response {
    let (status, p) = e.problem();
    message_page(status, &p.title, Tone::Critical, &p.detail)
}

/// Lets a request through when it comes from this machine (and not through a proxy on it), or carries the
/// admin token.
pub struct DashboardAccess;

impl DashboardAccess {
    /// One dashboard route behind the check.
    pub fn guard(ep: impl Endpoint + 'static) -> poem::endpoint::BoxEndpoint<'static, Response> {
        ep.with(DashboardAccess).boxed()
    }
}

impl<E: Endpoint> Middleware<E> for DashboardAccess {
    type Output = DashboardAccessEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        DashboardAccessEndpoint(ep)
    }
}

pub struct DashboardAccessEndpoint<E>(E);

impl<E: Endpoint> Endpoint for DashboardAccessEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let Some(state) = req.data::<AppState>() else {
            return Ok(message_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not ready",
                Tone::Critical,
                "Hookplane is starting.",
            ));
        };
        let resp = match access(&req, state) {
            Access::Allowed => self.0.call(req).await.map(IntoResponse::into_response)?,
            Access::AskForToken => {
                let mut resp = message_page(
                    StatusCode::UNAUTHORIZED,
                    "The admin token is needed",
                    Tone::Warning,
                    "Until operator sign-in is available, the dashboard answers this machine only, or anyone giving \
                     the admin token (HOOKPLANE_ADMIN_TOKEN) as the password when the browser asks, or as a bearer \
                     token.",
                );
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Basic realm=\"Hookplane dashboard\", charset=\"UTF-8\""),
                );
                resp
            }
            Access::Closed => message_page(
                StatusCode::FORBIDDEN,
                "The dashboard answers this machine only",
                Tone::Warning,
                "Until operator sign-in is available, open the dashboard from the machine Hookplane runs on, or start \
                 Hookplane with HOOKPLANE_ADMIN_TOKEN set and give that token when the browser asks.",
            ),
        };
        Ok(resp)
    }
}

enum Access {
    Allowed,
    AskForToken,
    Closed,
}

fn access(req: &Request, state: &AppState) -> Access {
    if state.settings.dashboard.open_on_loopback && local(req) {
        return Access::Allowed;
    }
    let Some(token) = &state.admin_token else { return Access::Closed };
    let presented = req.header(header::AUTHORIZATION).and_then(presented_token);
    match presented {
        Some(p) if bool::from(token.expose().ct_eq(&p)) => Access::Allowed,
        _ => Access::AskForToken,
    }
}

/// Headers a proxy adds: a proxy on this machine makes every client look local.
const PROXY_HEADERS: [&str; 5] = ["forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip", "via"];

/// A client on this machine that asked for this machine by name. The `Host` check keeps a web page the
/// operator visits from reaching the dashboard through a DNS name rebound to 127.0.0.1.
fn local(req: &Request) -> bool {
    let from_loopback = req.remote_addr().as_socket_addr().is_some_and(|a| a.ip().to_canonical().is_loopback());
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

/// The token from `Bearer <token>`, or the password of `Basic base64(user:password)` (the user is ignored).
fn presented_token(authorization: &str) -> Option<Vec<u8>> {
    let (scheme, rest) = authorization.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().as_bytes().to_vec());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
        let colon = decoded.iter().position(|b| *b == b':')?;
        return Some(decoded[colon + 1..].to_vec());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::presented_token;

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
    fn tokens_come_from_bearer_or_the_basic_password() {
        assert_eq!(presented_token("Bearer s3cret").as_deref(), Some(&b"s3cret"[..]));
        // "admin:s3:cret" — the password may itself hold a colon.
        assert_eq!(presented_token("Basic YWRtaW46czM6Y3JldA==").as_deref(), Some(&b"s3:cret"[..]));
        assert_eq!(presented_token("Basic not base64!"), None);
        assert_eq!(presented_token("Digest x"), None);
        assert_eq!(presented_token("Bearer"), None);
    }
}
