//! `GET /dashboard/replays`: bulk replays with their progress, and (admins) a form to count or start one
//! for a filter. The webhooks page links here with its filters filled in.

use maud::{Markup, Render, html};

use super::components::Badge;
use super::components::Tone;
use super::format;
use super::layout::{self, Chrome};
use super::webhooks::{Filters, RANGES};
use crate::auth::csrf;
use crate::contract::paths;
use crate::contract::{BulkReplayOut, BulkStatus, SubscriptionOut};

pub struct ReplaysView<'a> {
    pub bulks: &'a [BulkReplayOut],
    pub subscriptions: &'a [SubscriptionOut],
    /// The filter form's values.
    pub filters: &'a Filters,
    pub chrome: &'a Chrome,
}

/// A bulk operation's status (bulk replays, erasures).
pub fn badge(s: BulkStatus) -> Badge<'static> {
    match s {
        BulkStatus::Running => Badge { tone: Tone::Info, label: "Running" },
        BulkStatus::Done => Badge { tone: Tone::Success, label: "Done" },
        BulkStatus::Cancelled => Badge { tone: Tone::Neutral, label: "Cancelled" },
        BulkStatus::Failed => Badge { tone: Tone::Critical, label: "Failed" },
    }
}

impl Render for ReplaysView<'_> {
    fn render(&self) -> Markup {
        let f = self.filters;
        let csrf_field = html! {
            @if let Some(t) = &self.chrome.csrf { input type="hidden" name=(csrf::FIELD) value=(t); }
        };
        let main = html! {
            div.page-header { h1 { "Bulk replays" } }
            @if self.chrome.admin {
                section.card aria-labelledby="bulk-title" {
                    h2 #bulk-title { "Replay every delivery matching a filter" }
                    p.subdued { "All matching deliveries are replayed, not only one page, at the rate chosen so live traffic keeps flowing. Deliveries replayed in the last 5 minutes are skipped. Count them first." }
                    form.filter-row method="post" action=(paths::DASHBOARD_REPLAYS) {
                        (csrf_field)
                        label { span { "Status" }
                            select name="status" {
                                option value="" { "Any status" }
                                @for s in ["failed", "retrying", "succeeded", "queued"] {
                                    option value=(s) selected[f.filter.status.as_deref() == Some(s)] { (s) }
                                }
                            }
                        }
                        label { span { "Subscription" }
                            select name="subscription" {
                                option value="" { "Any forwarding subscription" }
                                @for s in self.subscriptions.iter().filter(|s| s.destination_url.is_some()) {
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
                        label { span { "Payload search" } input type="search" name="q" value=[f.filter.q.as_deref()] maxlength="1024"; }
                        label { span { "Rate" }
                            select name="rate_per_second" {
                                @for r in [1u32, 10, 50, 200] { option value=(r) selected[r == 10] { (r) " per second" } }
                            }
                        }
                        button.button type="submit" name="intent" value="count" { "Count" }
                        button.button.button-primary type="submit" name="intent" value="start" { "Replay them" }
                    }
                }
            }
            div #bulks data-live {
                @if self.bulks.is_empty() {
                    div.card { p.subdued { "No bulk replays yet." } }
                } @else {
                    div.card.table-card {
                        table.index-table {
                            thead { tr {
                                th scope="col" { "Started" }
                                th scope="col" { "By" }
                                th scope="col" { "Status" }
                                th scope="col" { "Progress" }
                                th.numeric scope="col" { "Rate" }
                                th scope="col" { span.visually-hidden { "Actions" } }
                            } }
                            tbody {
                                @for b in self.bulks {
                                    @let handled = b.replayed + b.skipped + b.failed;
                                    tr data-bulk=(b.id) {
                                        td { time datetime=(b.requested_at) { (format::time(&b.requested_at)) } br; span.subdued { (b.id) } }
                                        td { (b.requested_by) }
                                        td { (badge(b.status)) @if let Some(e) = &b.error { br; span.subdued { (e) } } }
                                        td {
                                            progress max=(b.matched.max(1)) value=(handled.min(b.matched)) { (handled) " of " (b.matched) }
                                            " " (format::count(handled)) " of " (format::count(b.matched))
                                            br; span.subdued { (b.replayed) " replayed · " (b.skipped) " skipped · " (b.failed) " failed" }
                                        }
                                        td.numeric { (b.rate_per_second) "/s" }
                                        td.actions {
                                            @if self.chrome.admin && b.status == BulkStatus::Running {
                                                form.action-form method="post" action=(paths::DASHBOARD_REPLAYS) {
                                                    (csrf_field)
                                                    input type="hidden" name="intent" value="cancel";
                                                    input type="hidden" name="id" value=(b.id);
                                                    button.button type="submit" { "Cancel" }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        };
        layout::page("Bulk replays", self.chrome, main)
    }
}
