//! Polaris-shaped pieces shared by pages: badges, banners, KPI cards, the sparkline, copy buttons.

use maud::{Markup, Render, html};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Success,
    Warning,
    Critical,
    Info,
    Neutral,
}

impl Tone {
    const fn class(self) -> &'static str {
        match self {
            Tone::Success => "success",
            Tone::Warning => "warning",
            Tone::Critical => "critical",
            Tone::Info => "info",
            Tone::Neutral => "neutral",
        }
    }
}

pub struct Badge<'a> {
    pub tone: Tone,
    pub label: &'a str,
}

impl Render for Badge<'_> {
    fn render(&self) -> Markup {
        html! { span class={ "badge badge-" (self.tone.class()) } { (self.label) } }
    }
}

pub struct Banner<'a> {
    pub tone: Tone,
    pub title: &'a str,
    pub body: Markup,
}

impl Render for Banner<'_> {
    fn render(&self) -> Markup {
        let role = if self.tone == Tone::Critical { "alert" } else { "status" };
        html! {
            div class={ "banner banner-" (self.tone.class()) } role=(role) {
                p.banner-title { (self.title) }
                div.banner-body { (self.body) }
            }
        }
    }
}

pub struct Kpi<'a> {
    pub label: &'a str,
    pub value: String,
    pub note: Option<String>,
}

impl Render for Kpi<'_> {
    fn render(&self) -> Markup {
        html! {
            div.card.kpi {
                p.kpi-label { (self.label) }
                p.kpi-value { (self.value) }
                @if let Some(note) = &self.note { p.kpi-note { (note) } }
            }
        }
    }
}

/// Deliveries per hour as an inline SVG line, newest on the right. Drawn with attributes only, so it needs
/// no inline style under a strict Content-Security-Policy.
pub struct Sparkline<'a> {
    pub values: &'a [u64],
    pub label: String,
}

const SPARK_W: f64 = 120.0;
const SPARK_H: f64 = 28.0;

impl Render for Sparkline<'_> {
    fn render(&self) -> Markup {
        let max = self.values.iter().copied().max().unwrap_or(0).max(1) as f64;
        let step = if self.values.len() > 1 { SPARK_W / (self.values.len() - 1) as f64 } else { 0.0 };
        let points: Vec<String> = self
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", i as f64 * step, SPARK_H - 1.0 - (*v as f64 / max) * (SPARK_H - 2.0)))
            .collect();
        html! {
            svg.sparkline viewBox={ "0 0 " (SPARK_W) " " (SPARK_H) } width=(SPARK_W) height=(SPARK_H) role="img" aria-label=(self.label) {
                title { (self.label) }
                polyline points=(points.join(" ")) fill="none" stroke="currentColor" stroke-width="1.5" stroke-linejoin="round" {}
            }
        }
    }
}

/// A button the script reveals and wires to the clipboard; without the script the text stays selectable
/// next to it.
pub struct CopyButton<'a> {
    pub label: &'a str,
    pub what: Copied<'a>,
}

/// What a [`CopyButton`] puts on the clipboard.
pub enum Copied<'a> {
    /// This text.
    Text(&'a str),
    /// The text of the element with this id.
    Element(&'a str),
    /// What this URL of the site answers: a delivery's exact body, not the indented copy on the page.
    Url(&'a str),
}

impl Render for CopyButton<'_> {
    fn render(&self) -> Markup {
        let (text, target, url) = match self.what {
            Copied::Text(t) => (Some(t), None, None),
            Copied::Element(id) => (None, Some(id), None),
            Copied::Url(u) => (None, None, Some(u)),
        };
        html! {
            button.button.button-plain type="button" hidden data-copy=[text] data-copy-target=[target] data-copy-url=[url] { (self.label) }
        }
    }
}

/// A one-button form that posts an action of the webhooks page (`intent`) about one delivery or
/// subscription, and comes back to `return_to`. The script submits replays in place, with a busy button.
pub struct ActionForm<'a> {
    pub intent: &'a str,
    /// `("delivery", id)` or `("subscription", id)`.
    pub field: (&'a str, &'a str),
    pub label: &'a str,
    pub return_to: &'a str,
    pub csrf: Option<&'a str>,
    pub primary: bool,
}

impl Render for ActionForm<'_> {
    fn render(&self) -> Markup {
        let replay = self.intent.starts_with("replay");
        html! {
            form.action-form method="post" action=(crate::contract::paths::DASHBOARD_WEBHOOKS) data-replay[replay] {
                input type="hidden" name="intent" value=(self.intent);
                input type="hidden" name=(self.field.0) value=(self.field.1);
                input type="hidden" name="return_to" value=(self.return_to);
                @if let Some(t) = self.csrf { input type="hidden" name=(crate::auth::csrf::FIELD) value=(t); }
                button type="submit" class={ "button" @if self.primary { " button-primary" } } { (self.label) }
            }
        }
    }
}

/// A control that cannot be used here, and why, readable by everyone: in its title for the pointer, and
/// through `aria-describedby` for a screen reader.
pub struct Unavailable<'a> {
    pub label: &'a str,
    pub reason: &'a str,
    /// Unique on the page: the reason's element id is made from it.
    pub key: &'a str,
}

impl Render for Unavailable<'_> {
    fn render(&self) -> Markup {
        let id = format!("why-{}", self.key);
        html! {
            span.action-form.unavailable {
                button.button type="button" disabled title=(self.reason) aria-describedby=(id) { (self.label) }
                span.visually-hidden id=(id) { (self.reason) }
            }
        }
    }
}

/// A short success message (`role="status"`, so a screen reader says it without moving focus). The script
/// lets it fade after a few seconds; without the script it stays at the foot of the page.
pub struct Toast<'a> {
    pub title: &'a str,
    pub body: Markup,
}

impl Render for Toast<'_> {
    fn render(&self) -> Markup {
        html! {
            div.toast role="status" aria-live="polite" data-toast {
                p.toast-title { (self.title) }
                div.toast-body { (self.body) }
            }
        }
    }
}

/// A time as "5 min ago" from `now`, with the exact UTC time on hover; the script keeps the words current.
pub struct Ago<'a> {
    pub at: &'a str,
    pub now: &'a str,
}

impl Render for Ago<'_> {
    fn render(&self) -> Markup {
        let exact = super::format::time(self.at);
        html! {
            time datetime=(self.at) title=(exact) data-ago {
                (super::format::ago(self.at, self.now).unwrap_or(exact))
            }
        }
    }
}

/// The links between the pages of a list: back to the newest, when on a later page, and to older entries.
pub struct Pagination {
    /// The first page, when this is not it.
    pub first: Option<String>,
    pub next: Option<String>,
}

impl Render for Pagination {
    fn render(&self) -> Markup {
        html! {
            nav.pagination aria-label="Pages" {
                @if let Some(href) = &self.first { a.button href=(href) rel="first" { "← Newest" } }
                @if let Some(href) = &self.next { a.button href=(href) rel="next" { "Older →" } }
            }
        }
    }
}

/// Why a list's filters could not be applied.
pub fn filter_error(detail: &str) -> Markup {
    html! { (Banner { tone: Tone::Critical, title: "These filters cannot be applied", body: html! { p { (detail) } } }) }
}

/// A list page's table in its card: the column headers and rows, or what to say when there are none.
pub struct IndexTable<'a> {
    /// The table's own class beside `index-table`, for its column styles.
    pub class: &'a str,
    pub headers: &'a [&'a str],
    pub empty: &'a str,
    /// Rendered rows; none means the empty message.
    pub rows: Vec<Markup>,
}

impl Render for IndexTable<'_> {
    fn render(&self) -> Markup {
        html! {
            @if self.rows.is_empty() {
                p.empty { (self.empty) }
            } @else {
                table class={ "index-table " (self.class) } {
                    thead { tr { @for h in self.headers { th scope="col" { (h) } } } }
                    tbody { @for r in &self.rows { (r) } }
                }
            }
        }
    }
}
