//! The page frame: document head, embedded stylesheet and script, the top bar.

use maud::{DOCTYPE, Markup, html};

use crate::auth::Principal;
use crate::contract::Caller;
use crate::contract::paths;

/// What the top bar shows of the caller.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    /// Who is signed in, as the top bar names them.
    pub user: Option<String>,
    /// The CSRF token of this page's forms; absent for bearer callers, whose requests need none.
    pub csrf: Option<String>,
    /// Whether the caller has a session to end (and so a sign-out button).
    pub can_sign_out: bool,
    /// Whether the caller may see the admin pages (tokens, audit log).
    pub admin: bool,
    /// Whether the caller may act on deliveries: replay, pause and resume destinations.
    pub operator: bool,
    /// What the last action did, shown at the top of the page.
    pub notice: super::notice::Notice,
}

impl Chrome {
    pub fn of(caller: &Caller) -> Self {
        let user = match &caller.principal {
            Principal::Operator { username, .. } => username.clone(),
            Principal::Token { name, .. } => format!("API token {name}"),
            Principal::AdminToken => "admin token".to_owned(),
            Principal::Local => "this machine".to_owned(),
        };
        Self {
            user: Some(user),
            csrf: caller.csrf.clone(),
            can_sign_out: caller.session.is_some(),
            admin: caller.principal.role() == crate::domain::access::Role::Admin,
            operator: caller.principal.role() >= crate::domain::access::Role::Operator,
            notice: super::notice::Notice::default(),
        }
    }
}

/// A whole page. Scripts only enhance: every page works without them.
pub fn page(title: &str, chrome: &Chrome, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Hookplane" }
                link rel="icon" href=(paths::FAVICON) type="image/svg+xml";
                link rel="stylesheet" href=(paths::asset("dashboard.css"));
                script src=(paths::asset("dashboard.js")) defer {}
            }
            body {
                header.topbar {
                    a.brand href=(paths::DASHBOARD_WEBHOOKS) { "Hookplane" }
                    nav {
                        a href=(paths::DASHBOARD_WEBHOOKS) { "Webhooks" }
                        a href=(paths::DASHBOARD_REPLAYS) { "Bulk replays" }
                        a href=(paths::DASHBOARD_INCIDENTS) { "Incidents" }
                        a href=(paths::DASHBOARD_SETTINGS) { "Settings" }
                        @if chrome.admin {
                            a href=(paths::DASHBOARD_ERASURES) { "Erasures" }
                            a href=(paths::DASHBOARD_TOKENS) { "API tokens" }
                            a href=(paths::DASHBOARD_AUDIT) { "Audit log" }
                        }
                        a href=(paths::API_DOCS) { "API" }
                    }
                    @if let Some(user) = &chrome.user {
                        div.session {
                            span.session-user { (user) }
                            @if let (true, Some(token)) = (chrome.can_sign_out, &chrome.csrf) {
                                form method="post" action=(paths::LOGOUT) {
                                    input type="hidden" name=(crate::auth::csrf::FIELD) value=(token);
                                    button.button.button-plain type="submit" { "Sign out" }
                                }
                            }
                        }
                    }
                }
                main.page {
                    div #notices { (chrome.notice) }
                    (main)
                }
                footer.footer { "Hookplane " (env!("CARGO_PKG_VERSION")) " · " code { (env!("BUILD_GIT_SHA")) } }
                // Where the script's toasts appear: a live region from the start, so screen readers say them.
                div #toasts .toasts aria-live="polite" {}
            }
        }
    }
}
