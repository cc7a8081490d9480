//! The demo's banner on the webhooks page: what the demo is, and, for operators, how each destination of
//! its processing service answers, with a form to change it.

use maud::{Markup, html};

use super::components::{Banner, Tone};
use super::layout::Chrome;
use crate::contract::DashboardOut;
use crate::contract::demo::{MockDestination, MockMode};
use crate::contract::paths;

pub(super) fn banner(destinations: &[MockDestination], d: &DashboardOut, chrome: &Chrome) -> Markup {
    let users = |m: &MockDestination| -> Vec<&str> {
        d.subscriptions
            .iter()
            .filter(|s| s.destination_url.as_deref() == Some(m.url.as_str()))
            .map(|s| s.name.as_str())
            .collect()
    };
    // The script shows a replay to a healthy destination as delivered at once; the next refresh confirms it.
    let healthy: Vec<&str> = d
        .subscriptions
        .iter()
        .filter(|s| {
            destinations
                .iter()
                .any(|m| m.mode == MockMode::Healthy && s.destination_url.as_deref() == Some(m.url.as_str()))
        })
        .map(|s| s.id.as_str())
        .collect();
    html! {
        div.demo data-demo data-demo-healthy=(healthy.join(" ")) {
            (Banner { tone: Tone::Info, title: "Demo data", body: html! {
                p {
                    "This instance runs on throwaway data, deleted when it stops. Its subscriptions forward to a "
                    "processing service inside Hookplane; choose how each of its destinations answers."
                }
                ul.demo-destinations {
                    @for m in destinations {
                        li {
                            @let field = format!("demo-mode-{}", m.name);
                            @if chrome.operator {
                                form.action-form.demo-form method="post" action=(paths::DASHBOARD_WEBHOOKS) {
                                    input type="hidden" name="intent" value="demo_destination";
                                    input type="hidden" name="destination" value=(m.name);
                                    input type="hidden" name="return_to" value=(paths::DASHBOARD_WEBHOOKS);
                                    @if let Some(t) = &chrome.csrf { input type="hidden" name=(crate::auth::csrf::FIELD) value=(t); }
                                    label for=(field) { code { (m.name) } " (" (users(m).join(", ")) ")" }
                                    select id=(field) name="mode" {
                                        @for mode in MockMode::ALL {
                                            option value=(mode.as_str()) selected[mode == m.mode] { (mode.label()) }
                                        }
                                    }
                                    button.button type="submit" { "Set" }
                                }
                            } @else {
                                code { (m.name) } " (" (users(m).join(", ")) "): " (m.mode.label())
                            }
                        }
                    }
                }
            } })
        }
    }
}
