//! `GET /dashboard/erasures` (admins): privacy erasures with their progress, and a form to count or start
//! one for a filter, to answer a data-subject request.

use maud::{Markup, Render, html};

use super::components::IndexTable;
use super::format;
use super::layout::{self, Chrome};
use super::replays::badge;
use super::webhooks::{Filters, RANGES};
use crate::auth::csrf;
use crate::contract::paths;
use crate::contract::{BulkStatus, ErasureOut, SubscriptionOut};

pub struct ErasuresView<'a> {
    pub erasures: &'a [ErasureOut],
    pub subscriptions: &'a [SubscriptionOut],
    /// The filter form's values.
    pub filters: &'a Filters,
    pub reason: Option<&'a str>,
    /// Whether stored redact webhooks erase by themselves (`privacy.honor_shopify_redact`).
    pub honors_redact: bool,
    pub chrome: &'a Chrome,
}

impl Render for ErasuresView<'_> {
    fn render(&self) -> Markup {
        let f = self.filters;
        let csrf_field = html! {
            @if let Some(t) = &self.chrome.csrf { input type="hidden" name=(csrf::FIELD) value=(t); }
        };
        let rows = self
            .erasures
            .iter()
            .map(|e| {
                let handled = e.erased + e.skipped + e.busy;
                html! {
                    tr data-erasure=(e.id) {
                        td { time datetime=(e.requested_at) { (format::time(&e.requested_at)) } br; span.subdued { (e.id) } }
                        td { (e.requested_by) @if let Some(r) = &e.reason { br; span.subdued { (r) } } }
                        td { (badge(e.status)) @if let Some(err) = &e.error { br; span.subdued { (err) } } }
                        td {
                            progress max=(e.matched.max(1)) value=(handled.min(e.matched)) { (handled) " of " (e.matched) }
                            " " (format::count(handled)) " of " (format::count(e.matched))
                            br; span.subdued { (e.erased) " erased · " (e.skipped) " already erased · " (e.busy) " being delivered" }
                        }
                        td.actions {
                            @if e.status == BulkStatus::Running {
                                form.action-form method="post" action=(paths::DASHBOARD_ERASURES) {
                                    (csrf_field)
                                    input type="hidden" name="intent" value="cancel";
                                    input type="hidden" name="id" value=(e.id);
                                    button.button type="submit" { "Cancel" }
                                }
                            }
                        }
                    }
                }
            })
            .collect();
        let main = html! {
            div.page-header { h1 { "Erasures" } }
            section.card aria-labelledby="erase-title" {
                h2 #erase-title { "Erase the payloads of every delivery matching a filter" }
                p.subdued {
                    "To answer a data-subject request: each matching body becomes a tombstone and leaves the search index. "
                    "Arrival, topic, status and attempts stay. An erased payload cannot be brought back, and a delivery "
                    "still being delivered is left. Count first."
                }
                p.subdued {
                    @if self.honors_redact {
                        "Shopify's customers/redact and shop/redact webhooks start an erasure by themselves (privacy.honor_shopify_redact)."
                    } @else {
                        "Shopify's redact webhooks are stored but erase nothing: set privacy.honor_shopify_redact in the configuration to honour them."
                    }
                }
                form.filter-row method="post" action=(paths::DASHBOARD_ERASURES) {
                    (csrf_field)
                    label { span { "Payload search" } input type="search" name="q" value=[f.filter.q.as_deref()] maxlength="1024" placeholder="customer.email:\"jon@example.com\""; }
                    label { span { "Account" } input type="text" name="account" value=[f.filter.account.as_deref()] placeholder="Any shop or organisation"; }
                    label { span { "Subscription" }
                        select name="subscription" {
                            option value="" { "Any subscription" }
                            @for s in self.subscriptions {
                                option value=(s.id) selected[f.filter.subscription.as_deref() == Some(s.id.as_str())] { (s.name) }
                            }
                        }
                    }
                    label { span { "Topic" } input type="text" name="topic" value=[f.filter.topic.as_deref()] placeholder="Any topic"; }
                    label { span { "Received" }
                        select name="range" {
                            option value="" { "Any time" }
                            @for (value, label, _) in RANGES { option value=(value) selected[f.range.as_deref() == Some(value)] { (label) } }
                        }
                    }
                    label { span { "Reason" } input type="text" name="reason" value=[self.reason] maxlength="200" placeholder="Request reference"; }
                    label.confirm { input type="checkbox" name="confirm" value="true"; span { "I understand these payloads cannot be brought back" } }
                    button.button type="submit" name="intent" value="count" { "Count" }
                    button.button.button-critical type="submit" name="intent" value="start" { "Erase them" }
                }
            }
            div.card.table-card #erasures data-live {
                (IndexTable {
                    class: "erasures-table",
                    headers: &["Started", "By", "Status", "Progress", ""],
                    empty: "No erasures yet.",
                    rows,
                })
            }
        };
        layout::page("Erasures", self.chrome, main)
    }
}
