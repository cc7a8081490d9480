//! `GET /dashboard/webhooks/deliveries/{id}`: one delivery, its headers and its payload.

use maud::{Markup, Render, html};

use super::components::{ActionForm, Banner, Copied, CopyButton, Tone, Unavailable};
use super::webhooks::{source_label, status_badge};
use super::{format, json, layout};
use crate::contract::paths;
use crate::contract::{AttemptOut, DeliveryOut};

/// Bodies up to this size are shown whole; larger ones show their 4 KB preview and a download link, so
/// that one huge payload cannot make the page unusable.
pub const FULL_BODY_LIMIT: usize = 1024 * 1024;

/// What the payload card shows.
pub enum Body {
    /// The whole body, pretty-printed when it is JSON.
    Full { text: String, pretty: bool },
    /// Only the preview: the body is too large, or not text.
    Preview,
}

impl Body {
    pub fn of(bytes: &[u8]) -> Self {
        if bytes.len() > FULL_BODY_LIMIT {
            return Body::Preview;
        }
        if let Some(text) = json::pretty(bytes) {
            return Body::Full { text, pretty: true };
        }
        match std::str::from_utf8(bytes) {
            Ok(text) => Body::Full { text: text.to_owned(), pretty: false },
            Err(_) => Body::Preview,
        }
    }
}

pub struct DeliveryPage<'a> {
    pub delivery: &'a DeliveryOut,
    pub attempts: &'a [AttemptOut],
    pub body: Body,
    /// Its subscription forwards now: a replay has somewhere to go.
    pub forwards: bool,
    pub chrome: &'a super::layout::Chrome,
}

impl Render for DeliveryPage<'_> {
    fn render(&self) -> Markup {
        let d = self.delivery;
        let download = paths::delivery_download(&d.id);
        let view = paths::delivery_view(&d.id);
        let main = html! {
            p.breadcrumb { a href=(paths::DASHBOARD_WEBHOOKS) { "← Webhooks" } }
            div.page-header {
                h1 { code { (d.topic) } " " (status_badge(d)) }
                p.subdued { (d.id) }
                @if self.chrome.operator {
                    @match d.replay_refusal(self.forwards) {
                        Some(reason) => (Unavailable { label: "Replay", reason, key: &d.id }),
                        None => (ActionForm {
                            intent: "replay",
                            field: ("delivery", &d.id),
                            label: "Replay",
                            return_to: &view,
                            csrf: self.chrome.csrf.as_deref(),
                            primary: true,
                        }),
                    }
                }
            }
            @if let Some(e) = &d.error_message {
                (Banner { tone: Tone::Critical, title: "The last attempt failed", body: html! { p { (e) } } })
            }
            @if let Some(e) = &d.erased {
                (Banner { tone: Tone::Info, title: "Payload erased", body: html! {
                    p { "Erasure " code { (e.erasure_id) } " replaced its body of " (format::bytes(e.size_bytes)) " by a tombstone on "
                        time datetime=(e.erased_at) { (format::time(&e.erased_at)) } ". What is shown below is the tombstone." }
                } })
            }
            div.card {
                dl.facts {
                    dt { "Received" } dd { time datetime=(d.received_at) { (format::time(&d.received_at)) } }
                    dt { "Source" } dd { (source_label(d.source.into())) " · " (d.account) }
                    dt { "Status" } dd { (crate::domain::DeliveryStatus::from(d.status).as_str()) " after " (d.attempt_count) " attempt" @if d.attempt_count != 1 { "s" } }
                    dt { "Response" } dd { @if let Some(c) = d.response_code { (c) } @else { "—" } " · " (format::millis(d.latency_ms)) }
                    @if let Some(p) = &d.provider_delivery_id { dt { "Provider delivery ID" } dd { code { (p) } } }
                    @if let Some(e) = &d.event_id {
                        dt { "Event ID" } dd { code { (e) } " " (CopyButton { label: "Copy", what: Copied::Text(e) }) }
                    }
                    dt { "Verified with" } dd { (d.verified_with) " secret" }
                    dt { "Initiated by" } dd { (d.initiated_by) }
                    dt { "Body" } dd { (format::bytes(d.size_bytes)) @if let Some(ct) = &d.content_type { " · " code { (ct) } } }
                    dt { "SHA-256" } dd { code.digest { (d.body_sha256) } }
                }
            }
            section.card.payload aria-labelledby="payload-title" {
                div.card-header {
                    h2 #payload-title { "Payload" }
                    div.actions {
                        // The exact body when it is shown whole; only the preview when that is all there is.
                        @match &self.body {
                            Body::Full { .. } => (CopyButton { label: "Copy", what: Copied::Url(&download) }),
                            Body::Preview => (CopyButton { label: "Copy preview", what: Copied::Element("payload") }),
                        }
                        a.button href=(download) download { "Download" }
                    }
                }
                @match &self.body {
                    Body::Full { text, pretty } => {
                        @if !pretty { p.subdued { "Not JSON: shown as received." } }
                        // Focusable: it scrolls, and a keyboard must be able to scroll it.
                        pre #payload tabindex="0" aria-label="Payload" { code { (text) } }
                    }
                    Body::Preview => {
                        (Banner {
                            tone: Tone::Info,
                            title: "Only the 4 KB preview is shown",
                            body: html! { p { "The body is " (format::bytes(d.size_bytes)) ". " a href=(download) download { "Download it" } " for every byte." } },
                        })
                        pre #payload tabindex="0" aria-label="Payload preview" { code { (d.preview) } }
                    }
                }
            }
            (attempts(self.attempts))
            @if let Some(headers) = &d.headers {
                section.card aria-labelledby="headers-title" {
                    h2 #headers-title { "Headers" }
                    table.index-table.headers-table {
                        thead { tr { th scope="col" { "Name" } th scope="col" { "Value" } } }
                        tbody { @for h in headers { tr { td { code { (h.name) } } td { code { (h.value) } } } } }
                    }
                }
            }
        };
        layout::page(&format!("Delivery {}", d.id), self.chrome, main)
    }
}

/// Every attempt to hand the delivery to its destination, first first.
fn attempts(list: &[AttemptOut]) -> Markup {
    html! {
        section.card aria-labelledby="attempts-title" {
            h2 #attempts-title { "Attempts" }
            @if list.is_empty() {
                p.subdued { "None yet: the delivery is kept here, or waits for its first attempt." }
            } @else {
                // Scrolls sideways by itself on a narrow screen, reachable by keyboard, rather than the page.
                div.table-scroll tabindex="0" role="region" aria-label="Attempts" {
                table.index-table {
                    thead { tr {
                        th.numeric scope="col" { "#" }
                        th scope="col" { "Started" }
                        th scope="col" { "By" }
                        th.numeric scope="col" { "Response" }
                        th.numeric scope="col" { "Latency" }
                        th scope="col" { "Outcome" }
                    } }
                    tbody {
                        @for a in list {
                            tr data-attempt=(a.number) {
                                td.numeric { (a.number) }
                                td { time datetime=(a.started_at) { (format::time(&a.started_at)) } }
                                td { (a.initiated_by) }
                                td.numeric { @if let Some(c) = a.response_code { (c) } @else { "—" } }
                                td.numeric { (format::millis(Some(a.latency_ms))) }
                                td {
                                    (outcome(&a.next))
                                    @if let Some(v) = &a.version { br; span.subdued { "Answered by version " code { (v) } } }
                                    @if let Some(e) = &a.error { br; span.subdued { (e) } }
                                    @if !a.excerpt.is_empty() {
                                        details { summary { "Answer" } pre { code { (a.excerpt) } } }
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
}

fn outcome(next: &str) -> &'static str {
    match next {
        "delivered" => "Delivered",
        "retry" => "Failed; retry scheduled",
        "paused" => "Held: the destination is paused",
        _ => "Failed; no more retries",
    }
}
