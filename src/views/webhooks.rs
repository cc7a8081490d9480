//! `GET /dashboard/webhooks`: figures, banners, subscriptions with their health, and the delivery history
//! with filters and search. Renders `WebhookDashboardPayload` exactly as `GET /api/v1/dashboard` answers it.

use maud::{Markup, Render, html};
use serde::{Deserialize, Serialize};

use super::components::{ActionForm, Ago, Badge, Banner, Copied, CopyButton, Kpi, Tone, Unavailable};
use super::layout::Chrome;
use super::{format, layout};
use crate::contract::demo::MockDestination;
use crate::contract::paths;
use crate::contract::{BannerOut, DashboardOut, DeliveryOut, MatchOut};
use crate::domain::filter::DeliveryFilter;
use crate::domain::{self, Timestamp};

/// The filter form as it arrives in the query string: the API's delivery filters, plus `range`, a time
/// window ending now that the form offers instead of typing RFC 3339 times, and the page's cursor and size.
/// Empty fields mean "any".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Filters {
    #[serde(flatten)]
    pub filter: DeliveryFilter,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// Set by the redirect after a rotation: the subscription whose secret changed, for the reminder.
    #[serde(default, skip_serializing)]
    pub rotated: Option<String>,
}

/// The time windows the form offers, as `(value, label, milliseconds)`.
pub const RANGES: [(&str, &str, i64); 4] = [
    ("1h", "Last hour", 3_600_000),
    ("24h", "Last 24 hours", 86_400_000),
    ("7d", "Last 7 days", 7 * 86_400_000),
    ("30d", "Last 30 days", 30 * 86_400_000),
];

impl Filters {
    /// Blank fields (an untouched form control) become absent.
    pub fn normalized(self) -> Self {
        let blank = |f: Option<String>| f.filter(|v| !v.trim().is_empty());
        Self {
            filter: self.filter.normalized(),
            range: blank(self.range),
            cursor: blank(self.cursor),
            limit: blank(self.limit),
            rotated: self.rotated,
        }
    }

    /// Whether anything narrows the list (the cursor and page size do not).
    pub fn narrows(&self) -> bool {
        !self.filter.is_empty() || self.range.is_some()
    }

    /// A page of deliveries of one subscription, with `status` if given.
    pub fn of_subscription(id: &str, status: Option<&str>) -> Self {
        let filter = DeliveryFilter {
            subscription: Some(id.to_owned()),
            status: status.map(str::to_owned),
            ..DeliveryFilter::default()
        };
        Self { filter, ..Self::default() }
    }

    /// The delivery filter the form asks for at `now`: its time window wins over a `from` carried along from
    /// a link, so that changing it works.
    pub fn delivery_filter(&self, now: Timestamp) -> Result<DeliveryFilter, String> {
        let Some(range) = &self.range else { return Ok(self.filter.clone()) };
        let Some((_, _, ms)) = RANGES.iter().find(|(v, _, _)| v == range) else {
            let known: Vec<&str> = RANGES.iter().map(|(v, _, _)| *v).collect();
            return Err(format!("`range` cannot be `{range}`: expected one of {}", known.join(", ")));
        };
        Ok(DeliveryFilter { from: Some(now.plus_millis(-ms).to_rfc3339()), ..self.filter.clone() })
    }

    /// This page's URL with another cursor (`None`: the newest page).
    pub fn href(&self, cursor: Option<&str>) -> String {
        let with = Self { cursor: cursor.map(str::to_owned), ..self.clone() };
        match serde_urlencoded::to_string(&with) {
            Ok(qs) if !qs.is_empty() => format!("{}?{qs}", paths::DASHBOARD_WEBHOOKS),
            _ => paths::DASHBOARD_WEBHOOKS.to_owned(),
        }
    }
}

/// What could not be shown, for the banner at the top.
pub struct PageError {
    pub title: String,
    pub detail: String,
    /// For a failure (not a mistake in the filters): where the processing service's logs are read.
    pub logs_url: Option<String>,
}

pub struct WebhooksPage<'a> {
    pub filters: &'a Filters,
    /// Absent when the store could not be read.
    pub data: Option<&'a DashboardOut>,
    /// False when the filters could not be applied: the list is left out rather than shown unfiltered.
    pub deliveries_shown: bool,
    pub error: Option<PageError>,
    /// Where providers reach this instance, for the `send-test` example.
    pub public_url: &'a str,
    /// The Shopify Admin API version for the test-webhook command of the empty state.
    pub shopify_api_version: &'a str,
    /// The demo's processing service's destinations, under `serve --demo`.
    pub demo: Option<&'a [MockDestination]>,
    pub chrome: &'a Chrome,
}

impl Render for WebhooksPage<'_> {
    fn render(&self) -> Markup {
        let main = html! {
            div.page-header {
                h1 { "Webhooks" }
                @if let Some(d) = self.data {
                    p.subdued #as-of data-live { "As of " time datetime=(d.generated_at) { (format::time(&d.generated_at)) } }
                }
            }
            @if let (Some(destinations), Some(d)) = (self.demo, self.data) {
                (super::demo::banner(destinations, d, self.chrome))
            }
            // Outside the live region: a refresh must not bring the message back once it has faded.
            @if let (Some(id), Some(d)) = (&self.filters.rotated, self.data) {
                @if let Some(s) = d.subscriptions.iter().find(|s| &s.id == id) {
                    (super::subscriptions::rotated_toast(s))
                }
            }
            div #live data-live {
                @if let Some(e) = &self.error {
                    (Banner { tone: Tone::Critical, title: &e.title, body: html! {
                        p { (e.detail) }
                        @if let Some(url) = &e.logs_url { p { a href=(url) { "Open the processing service's logs" } } }
                    } })
                }
                @if let Some(d) = self.data {
                    (banners(d))
                    (kpis(d))
                }
            }
            @if let Some(d) = self.data {
                (super::subscriptions::subscriptions(d, self.chrome))
                (filter_bar(self.filters, d))
                @if self.chrome.admin && self.filters.narrows() {
                    @let qs = serde_urlencoded::to_string(Filters { cursor: None, limit: None, ..self.filters.clone() }).unwrap_or_default();
                    p.bulk-link { a href={ (paths::DASHBOARD_REPLAYS) "?" (qs) } { "Replay every delivery matching these filters…" } }
                }
                @if self.deliveries_shown {
                    div #deliveries data-live { (deliveries(self.filters, d, self.public_url, self.shopify_api_version, self.chrome)) }
                }
            }
        };
        layout::page("Webhooks", self.chrome, main)
    }
}

/// One banner per degraded subscription, listing every rule that fires for it; a subscription whose only
/// trouble is its destination's versions gets a warning instead.
fn banners(d: &DashboardOut) -> Markup {
    let mut by_subscription: Vec<(&str, &str, Vec<&BannerOut>)> = Vec::new();
    for b in &d.banners {
        match by_subscription.iter_mut().find(|(id, _, _)| *id == b.subscription_id) {
            Some((_, _, rules)) => rules.push(b),
            None => by_subscription.push((&b.subscription_id, &b.subscription_name, vec![b])),
        }
    }
    html! {
        @for (id, name, rules) in &by_subscription {
            @let drift_only = rules.iter().all(|b| b.rule.is_none());
            (Banner {
                tone: if drift_only { Tone::Warning } else { Tone::Critical },
                title: &if drift_only { format!("{name}: its processing service's versions drift") } else { format!("{name} is degraded") },
                body: html! {
                    ul.banner-rules {
                        @for b in rules {
                            li {
                                (b.message) " · "
                                a href=(b.runbook_url) { "Runbook" }
                                @if let Some(incident) = &b.incident_id {
                                    " · " a href=(paths::incident_view(incident)) { "Its incident" }
                                }
                            }
                        }
                    }
                    p { a href=(Filters::of_subscription(id, None).href(None)) { "Show its deliveries" } }
                },
            })
        }
    }
}

fn kpis(d: &DashboardOut) -> Markup {
    let k = &d.kpis;
    html! {
        section.kpis aria-label="Figures" {
            (Kpi { label: "Active subscriptions", value: format::count(k.active_subscriptions), note: None })
            (Kpi { label: "Deliveries, 24 h", value: format::count(k.deliveries_24h), note: Some(format!("{} succeeded", format::percent(k.success_rate_24h))) })
            (Kpi { label: "Failing topics", value: format::count(k.failing_topics), note: None })
            (Kpi { label: "Average latency, 24 h", value: format::millis(k.avg_latency_ms_24h), note: None })
        }
    }
}

fn filter_bar(f: &Filters, d: &DashboardOut) -> Markup {
    let mut topics: Vec<&str> = d.subscriptions.iter().map(|s| s.topic.as_str()).collect();
    topics.sort_unstable();
    topics.dedup();
    let selected = |current: &Option<String>, value: &str| current.as_deref() == Some(value);
    html! {
        form.card.filters method="get" action=(paths::DASHBOARD_WEBHOOKS) role="search" {
            div.search-field {
                label.visually-hidden for="q" { "Search payloads" }
                input #q type="search" name="q" value=[f.filter.q.as_deref()] placeholder="Search payloads: words, \"a phrase\", customer.email:jon@example.com" maxlength="1024";
            }
            div.filter-row {
                label { span { "Source" }
                    select name="source" {
                        option value="" { "Any source" }
                        @for s in domain::Source::ALL {
                            option value=(s.as_str()) selected[selected(&f.filter.source, s.as_str())] { (source_label(s)) }
                        }
                    }
                }
                label { span { "Topic" }
                    input type="text" name="topic" list="topics" value=[f.filter.topic.as_deref()] placeholder="Any topic";
                    datalist #topics { @for t in &topics { option value=(t) {} } }
                }
                label { span { "Status" }
                    select name="status" {
                        option value="" { "Any status" }
                        @for s in domain::DeliveryStatus::ALL {
                            option value=(s.as_str()) selected[selected(&f.filter.status, s.as_str())] { (s.as_str()) }
                        }
                    }
                }
                label { span { "Received" }
                    select name="range" {
                        option value="" { "Any time" }
                        @for (value, label, _) in RANGES {
                            option value=(value) selected[selected(&f.range, value)] { (label) }
                        }
                    }
                }
                @if let Some(s) = &f.filter.subscription { input type="hidden" name="subscription" value=(s); }
                @if let Some(a) = &f.filter.account { input type="hidden" name="account" value=(a); }
                @if let Some(v) = &f.filter.from { input type="hidden" name="from" value=(v); }
                @if let Some(v) = &f.filter.to { input type="hidden" name="to" value=(v); }
                @if let Some(v) = &f.limit { input type="hidden" name="limit" value=(v); }
                button.button.button-primary type="submit" { "Apply" }
                @if f.narrows() { a.button href=(paths::DASHBOARD_WEBHOOKS) { "Clear" } }
            }
        }
    }
}

fn deliveries(f: &Filters, d: &DashboardOut, public_url: &str, api_version: &str, chrome: &Chrome) -> Markup {
    let page = &d.deliveries;
    let here = f.href(f.cursor.as_deref());
    if page.items.is_empty() {
        return if f.narrows() || f.cursor.is_some() {
            html! {
                div.card.empty-state {
                    h2 { "No deliveries match" }
                    p { "Nothing stored matches these filters" @if f.filter.q.is_some() { " and this search" } "." }
                    a.button href=(paths::DASHBOARD_WEBHOOKS) { "Clear filters" }
                }
            }
        } else {
            empty_state(public_url, api_version)
        };
    }
    html! {
        div.card.table-card {
            table.index-table {
                thead { tr {
                    th scope="col" { "Event time" }
                    th scope="col" { "Topic" }
                    th scope="col" { "Source" }
                    th scope="col" { "Status" }
                    th.numeric scope="col" { "Response" }
                    th.numeric scope="col" { "Latency" }
                    th scope="col" { span.visually-hidden { "Actions" } }
                } }
                tbody {
                    @let forwarding: std::collections::HashSet<&str> =
                        d.subscriptions.iter().filter(|s| s.destination_url.is_some()).map(|s| s.id.as_str()).collect();
                    @for item in &page.items {
                        (delivery_row(item, chrome, &here, forwarding.contains(item.subscription_id.as_str()), &d.generated_at))
                    }
                }
            }
            nav.pagination aria-label="Pages" {
                @if f.cursor.is_some() {
                    a.button href=(f.href(None)) rel="first" { "← Newest" }
                }
                @if let Some(next) = &page.next_cursor {
                    a.button href=(f.href(Some(next))) rel="next" { "Older →" }
                }
            }
        }
    }
}

/// Success: succeeded at the first attempt, or kept; Warning: retrying, or succeeded only after retries;
/// Error: failed for good; Pending: not attempted yet.
pub fn status_badge(d: &DeliveryOut) -> Badge<'static> {
    use domain::DeliveryStatus::{Failed, Processing, Queued, Retrying, Stored, Succeeded};
    match domain::DeliveryStatus::from(d.status) {
        Succeeded if d.attempt_count > 1 => Badge { tone: Tone::Warning, label: "Warning" },
        Succeeded | Stored => Badge { tone: Tone::Success, label: "Success" },
        Retrying => Badge { tone: Tone::Warning, label: "Warning" },
        Failed => Badge { tone: Tone::Critical, label: "Error" },
        Queued | Processing => Badge { tone: Tone::Neutral, label: "Pending" },
    }
}

pub fn source_label(s: domain::Source) -> &'static str {
    match s {
        domain::Source::Shopify => "Shopify",
        domain::Source::Zoho => "Zoho",
        domain::Source::Standard => "Standard Webhooks",
    }
}

/// One row; `forwards` says whether its subscription forwards now (so a replay has somewhere to go).
fn delivery_row(d: &DeliveryOut, chrome: &Chrome, here: &str, forwards: bool, now: &str) -> Markup {
    let status = domain::DeliveryStatus::from(d.status);
    let view = paths::delivery_view(&d.id);
    html! {
        tr data-delivery=(d.id) data-subscription=(d.subscription_id) {
            td.event-time { a href=(view) { (Ago { at: &d.received_at, now }) } }
            td { code { (breakable(&d.topic)) } }
            td { (source_label(d.source.into())) }
            td.status { (status_badge(d)) " " span.subdued { (status.as_str()) } }
            td.numeric { @if let Some(c) = d.response_code { (c) } @else { "—" } }
            td.numeric { (format::millis(d.latency_ms)) }
            td.actions {
                details.menu {
                    summary.button.button-plain aria-label={ "Actions for " (d.id) } { "•••" }
                    div.menu-items {
                        a href=(view) data-payload=(paths::delivery_download(&d.id)) { "View payload" }
                        @let event = d.event_id.as_deref().or(d.provider_delivery_id.as_deref()).unwrap_or(&d.id);
                        (CopyButton { label: "Copy event ID", what: Copied::Text(event) })
                        span.menu-note { "Event ID " code { (event) } }
                    }
                }
                @if chrome.operator {
                    @match d.replay_refusal(forwards) {
                        Some(reason) => (Unavailable { label: "Replay", reason, key: &d.id }),
                        None => (ActionForm {
                            intent: "replay",
                            field: ("delivery", &d.id),
                            label: "Replay",
                            return_to: here,
                            csrf: chrome.csrf.as_deref(),
                            primary: false,
                        }),
                    }
                }
            }
        }
        @if let Some(m) = &d.matched {
            tr.match-row { td colspan="7" { (highlighted(m)) } }
        }
    }
}

/// A topic that may wrap after each `/` on a narrow screen (`customers/data_request`), and nowhere else.
fn breakable(topic: &str) -> Markup {
    let mut parts = topic.split('/').peekable();
    html! {
        @while let Some(part) = parts.next() {
            (part) @if parts.peek().is_some() { "/" wbr; }
        }
    }
}

/// The search fragment with its matches marked; the fragment is escaped piece by piece.
fn highlighted(m: &MatchOut) -> Markup {
    let mut pieces = Vec::new();
    let mut at = 0usize;
    for h in &m.highlights {
        let (Some(&a), Some(&b)) = (h.first(), h.get(1)) else { continue };
        let (a, b) = (a as usize, b as usize);
        let (Some(before), Some(hit)) = (m.fragment.get(at..a), m.fragment.get(a..b)) else { continue };
        pieces.push((before, false));
        pieces.push((hit, true));
        at = b;
    }
    pieces.push((m.fragment.get(at..).unwrap_or(""), false));
    html! {
        p.match { "…" @for (text, hit) in pieces { @if hit { mark { (text) } } @else { (text) } } "…" }
    }
}

fn empty_state(public_url: &str, api_version: &str) -> Markup {
    let shopify = shopify_trigger(public_url, api_version);
    html! {
        div.card.empty-state {
            h2 { "No webhooks yet" }
            p { "Point a provider at this instance, or send a signed test delivery from this machine:" }
            pre.command { code { "hookplane send-test --url " (public_url) } }
            p.subdued {
                "It sends a Shopify " code { "orders/create" } " signed with " code { "SHOPIFY_WEBHOOK_SECRET" }
                "; " code { "--source zoho" } " and " code { "--source standard" } " send the others. "
                "Run " code { "hookplane send-test --help" } " for every option."
            }
            p { "Or have Shopify's CLI send its sample, from your app's folder:" }
            pre.command { code #shopify-trigger { (shopify) } }
            (CopyButton { label: "Copy command", what: Copied::Element("shopify-trigger") })
            p.subdued {
                "Shopify's CLI sends to a local address only when its host is " code { "localhost" }
                ", and elsewhere only over HTTPS."
            }
        }
    }
}

/// The Shopify CLI command that sends its sample `orders/create` to this instance's callback URL. The CLI
/// posts to a local address itself only when it is named `localhost`.
fn shopify_trigger(public_url: &str, api_version: &str) -> String {
    let base = ["http://127.0.0.1", "http://[::1]"]
        .iter()
        .find_map(|local| public_url.strip_prefix(local))
        .filter(|rest| rest.is_empty() || rest.starts_with([':', '/']))
        .map_or_else(|| public_url.to_owned(), |rest| format!("http://localhost{rest}"));
    format!(
        "shopify app webhook trigger --topic orders/create --api-version {api_version} --delivery-method http \\\n  \
         --address {base}{} --client-secret \"$SHOPIFY_WEBHOOK_SECRET\"",
        paths::SHOPIFY_WEBHOOK
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_page_links_to_the_processing_services_logs_when_configured() {
        let page = |logs_url: Option<&str>| {
            WebhooksPage {
                filters: &Filters::default(),
                data: None,
                deliveries_shown: false,
                error: Some(PageError {
                    title: "The store cannot be read right now".into(),
                    detail: "storage is unavailable; retry shortly".into(),
                    logs_url: logs_url.map(str::to_owned),
                }),
                public_url: "http://127.0.0.1:8080",
                shopify_api_version: "2026-10",
                demo: None,
                chrome: &Chrome::default(),
            }
            .render()
            .into_string()
        };
        let with = page(Some("https://logs.example/sync?app=\"x\""));
        assert!(with.contains("banner-critical") && with.contains("The store cannot be read right now"), "{with}");
        assert!(
            with.contains(
                "<a href=\"https://logs.example/sync?app=&quot;x&quot;\">Open the processing service's logs</a>"
            ),
            "{with}"
        );
        assert!(!page(None).contains("processing service's logs"));
    }
}
