//! The dashboard's HTML routes, one module per page (handlers are `view_<page>_<verb>`). Each is behind
//! `access::PageGuard`, which hands it the [`Caller`](crate::contract::Caller). A page's forms name what
//! they ask for in `intent`, read as the page's own [`Intent`] enum.

mod audit;
mod delivery;
mod erasures;
mod incidents;
mod replays;
mod settings;
mod tokens;
mod webhooks;

use maud::{Markup, html};
use poem::http::{StatusCode, header};
use poem::{Response, handler};

pub use self::audit::{view_audit_export_get, view_audit_get};
pub use self::delivery::{view_delivery_body_get, view_delivery_get};
pub use self::erasures::{view_erasures_get, view_erasures_post};
pub use self::incidents::{view_incident_get, view_incident_post, view_incidents_get, view_runbook_get};
pub use self::replays::{view_replays_get, view_replays_post};
pub use self::settings::{view_settings_get, view_settings_post};
pub use self::tokens::{view_tokens_get, view_tokens_post};
pub use self::webhooks::{view_webhooks_get, view_webhooks_post};
use super::access::{Refusal, refusal_status};
use super::api::ApiError;
use crate::contract::paths;
use crate::views::components::{Banner, Tone};
use crate::views::layout::{self, Chrome};

/// A form's `intent`: one of its page's actions, or whatever else was sent, for the error to name.
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
pub enum Intent<T> {
    Known(T),
    Unknown(String),
}

impl<T> Default for Intent<T> {
    fn default() -> Self {
        Intent::Unknown(String::new())
    }
}

impl<T> Intent<T> {
    /// The page's action, or a 400 naming what was sent and what the page expects.
    pub fn known(self, expected: &str) -> Result<T, ApiError> {
        match self {
            Intent::Known(t) => Ok(t),
            Intent::Unknown(other) => {
                Err(ApiError::bad_request(format!("`{other}` is not an action of this page (expected {expected})")))
            }
        }
    }
}

#[handler]
pub async fn view_root_get() -> Response {
    see_other(paths::DASHBOARD_WEBHOOKS)
}

/// The answer of post/redirect/get, and of a page that lives elsewhere.
pub fn see_other(to: &str) -> Response {
    Response::builder().status(StatusCode::SEE_OTHER).header(header::LOCATION, to).finish()
}

pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        // Figures change with every delivery: never show a stale page from the cache.
        .header(header::CACHE_CONTROL, "no-store")
        .body(markup.into_string())
}

/// A page with one banner; `sign_in` adds a link to the sign-in page.
pub(super) fn message_page(
    status: StatusCode,
    title: &str,
    tone: Tone,
    detail: &str,
    chrome: &Chrome,
    sign_in: Option<&str>,
) -> Response {
    let main = html! {
        p.breadcrumb { a href=(paths::DASHBOARD_WEBHOOKS) { "← Webhooks" } }
        (Banner { tone, title, body: html! {
            p { (detail) }
            @if let Some(href) = sign_in { p { a href=(href) { "Sign in" } } }
        } })
    };
    html_response(status, layout::page(title, chrome, main))
}

fn not_found(detail: &str, chrome: &Chrome) -> Response {
    message_page(StatusCode::NOT_FOUND, "Not found", Tone::Warning, detail, chrome, None)
}

fn error_page(e: ApiError, chrome: &Chrome) -> Response {
    let (status, p) = e.problem();
    message_page(status, &p.title, Tone::Critical, &p.detail, chrome, None)
}

/// The page for a request the guard turned away.
pub fn refused(r: Refusal) -> Response {
    let status = refusal_status(&r);
    let none = Chrome::default();
    match r {
        Refusal::SignIn { next } => {
            let query = serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default();
            see_other(&format!("{}?{query}", paths::LOGIN))
        }
        Refusal::Unauthorized(detail) => {
            message_page(status, "Sign in to continue", Tone::Warning, detail, &none, Some(paths::LOGIN))
        }
        Refusal::Forbidden(detail) => message_page(status, "Not allowed", Tone::Warning, &detail, &none, None),
        Refusal::Csrf => message_page(
            status,
            "This form has expired",
            Tone::Warning,
            "Nothing was changed: the form did not carry a valid token, which happens when it was open across a \
             sign-in or came from another site. Reload the page and try again.",
            &none,
            None,
        ),
        Refusal::Unavailable => message_page(
            status,
            "Not ready",
            Tone::Critical,
            "Hookplane cannot check who you are right now: its store is starting or unavailable. Try again shortly.",
            &none,
            None,
        ),
    }
}
