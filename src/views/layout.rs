//! The page frame: document head, embedded stylesheet and script, the top bar.

use maud::{DOCTYPE, Markup, html};

use crate::http::paths;

/// A whole page. Scripts only enhance: every page works without them.
pub fn page(title: &str, main: Markup) -> Markup {
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
                    nav { a href=(paths::DASHBOARD_WEBHOOKS) { "Webhooks" } a href=(paths::API_DOCS) { "API" } }
                }
                main.page { (main) }
            }
        }
    }
}
