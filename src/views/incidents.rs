//! The Incidents page and one incident's page: the same records `listIncidents` and `getIncident`
//! answer, with acknowledgement for operators and each rule's runbook section a click away.

use maud::{Markup, Render, html};

use super::components::{Ago, Badge, IndexTable, Pagination, Tone, filter_error};
use super::format;
use super::layout::{self, Chrome};
use crate::contract::paths;
use crate::contract::{IncidentOut, IncidentPage, IncidentParams, IncidentState, NotifyStateOut};
use crate::domain::incident::{self, Rule};

fn state_badge(s: IncidentState) -> Badge<'static> {
    match s {
        IncidentState::Open => Badge { tone: Tone::Critical, label: "Open" },
        IncidentState::Acknowledged => Badge { tone: Tone::Warning, label: "Acknowledged" },
        IncidentState::Resolved => Badge { tone: Tone::Success, label: "Resolved" },
    }
}

fn rule_title(i: &IncidentOut) -> &'static str {
    Rule::from(i.rule).title()
}

pub struct IncidentsView<'a> {
    pub filters: &'a IncidentParams,
    /// Absent when the filters could not be applied; `error` says why.
    pub page: Option<&'a IncidentPage>,
    pub error: Option<String>,
    pub now: &'a str,
    pub chrome: &'a Chrome,
}

fn href(f: &IncidentParams, cursor: Option<&str>) -> String {
    let pairs: Vec<(&str, &str)> = [
        ("state", f.state.as_deref()),
        ("rule", f.rule.as_deref()),
        ("subscription", f.subscription.as_deref()),
        ("cursor", cursor),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k, v)))
    .collect();
    let query = serde_urlencoded::to_string(pairs).unwrap_or_default();
    if query.is_empty() {
        paths::DASHBOARD_INCIDENTS.to_owned()
    } else {
        format!("{}?{query}", paths::DASHBOARD_INCIDENTS)
    }
}

impl Render for IncidentsView<'_> {
    fn render(&self) -> Markup {
        let f = self.filters;
        let main = html! {
            div.page-header { h1 { "Incidents" } }
            form.card.filters method="get" action=(paths::DASHBOARD_INCIDENTS) {
                div.filter-row {
                    label { span { "State" }
                        select name="state" {
                            option value="" { "Any state" }
                            @for s in ["open", "acknowledged", "resolved"] {
                                option value=(s) selected[f.state.as_deref() == Some(s)] { (s) }
                            }
                        }
                    }
                    label { span { "Rule" }
                        select name="rule" {
                            option value="" { "Any rule" }
                            @for r in Rule::ALL {
                                option value=(r.as_str()) selected[f.rule.as_deref() == Some(r.as_str())] { (r.title()) }
                            }
                        }
                    }
                    label { span { "Subscription" }
                        input type="text" name="subscription" value=[f.subscription.as_deref()] placeholder="name or sub_…";
                    }
                    button.button.button-primary type="submit" { "Apply" }
                }
            }
            @if let Some(detail) = &self.error {
                (filter_error(detail))
            }
            @if let Some(page) = self.page {
                div.card.table-card {
                    (IndexTable {
                        class: "incidents-table",
                        headers: &["State", "Rule", "Subscription", "What", "Opened", "Duration"],
                        empty: "No incidents match. An incident opens when an alert rule holds for a subscription; the runbook explains each rule.",
                        rows: page.items.iter().map(|i| self.row(i)).collect(),
                    })
                    (Pagination {
                        first: f.cursor.as_deref().is_some_and(|c| !c.is_empty()).then(|| href(f, None)),
                        next: page.next_cursor.as_deref().map(|next| href(f, Some(next))),
                    })
                }
            }
            p.subdued { "What each rule means and what to do: " a href=(paths::RUNBOOK) { "the runbook" } "." }
        };
        layout::page("Incidents", self.chrome, main)
    }
}

impl IncidentsView<'_> {
    fn row(&self, i: &IncidentOut) -> Markup {
        html! {
            tr data-incident=(i.id) {
                td { (state_badge(i.state)) }
                td { a href=(paths::incident_view(&i.id)) { (rule_title(i)) } }
                td.breakable { (i.subject_name) }
                td { (i.summary) }
                td { (Ago { at: &i.opened_at, now: self.now }) }
                td { (format::span(i.duration_seconds)) @if i.state != IncidentState::Resolved { " so far" } }
            }
        }
    }
}

pub struct IncidentView<'a> {
    pub incident: &'a IncidentOut,
    pub now: &'a str,
    pub chrome: &'a Chrome,
}

impl Render for IncidentView<'_> {
    fn render(&self) -> Markup {
        let i = self.incident;
        let title = format!("{} on {}", rule_title(i), i.subject_name);
        let main = html! {
            p.breadcrumb { a href=(paths::DASHBOARD_INCIDENTS) { "← Incidents" } }
            div.page-header {
                h1 { (title) " " (state_badge(i.state)) }
                div.actions {
                    a.button href=(i.runbook_url) { "Runbook: " (rule_title(i)) }
                    @if self.chrome.operator && i.state == IncidentState::Open {
                        form.action-form method="post" action=(paths::incident_view(&i.id)) {
                            input type="hidden" name="intent" value="acknowledge";
                            @if let Some(t) = &self.chrome.csrf { input type="hidden" name=(crate::auth::csrf::FIELD) value=(t); }
                            button.button.button-primary type="submit" { "Acknowledge" }
                        }
                    }
                }
            }
            section.card aria-labelledby="incident-what" {
                h2 #incident-what { "What happened" }
                p { (i.summary) }
                dl.facts {
                    dt { "Opened" } dd { (Ago { at: &i.opened_at, now: self.now }) }
                    @if let (Some(by), Some(at)) = (&i.acknowledged_by, &i.acknowledged_at) {
                        dt { "Acknowledged" } dd { "by " (by) ", " (Ago { at, now: self.now }) }
                    }
                    @if let Some(at) = &i.clear_since {
                        dt { "Clear since" } dd { (Ago { at, now: self.now }) " (it resolves once the rule stays clear long enough)" }
                    }
                    @if let Some(at) = &i.resolved_at {
                        dt { "Resolved" } dd { (Ago { at, now: self.now }) }
                    }
                    dt { "Duration" } dd { (format::span(i.duration_seconds)) }
                    @if let Some(sub) = &i.subscription_id {
                        dt { "Subscription" } dd { a href={ (paths::DASHBOARD_WEBHOOKS) "?subscription=" (sub) } { (i.subject_name) } }
                    }
                }
                h3 { "Figures when it opened" }
                (figures(&i.figures))
                @if i.latest_figures != i.figures && !i.latest_figures.is_empty() {
                    h3 { "Latest figures" }
                    (figures(&i.latest_figures))
                }
            }
            section.card aria-labelledby="incident-notifications" {
                h2 #incident-notifications { "Notifications" }
                @if i.notifications.is_empty() {
                    p.empty { "No sink is configured, so nobody was notified outside this dashboard. See the runbook's section on sinks." }
                } @else {
                    div.table-scroll role="region" aria-label="Notifications" tabindex="0" {
                        table.index-table {
                            thead { tr {
                                th scope="col" { "Sink" } th scope="col" { "Action" } th scope="col" { "State" }
                                th scope="col" { "Tries" } th scope="col" { "When" } th scope="col" { "Answer" }
                            } }
                            tbody {
                                @for n in &i.notifications {
                                    tr {
                                        td { (incident::SinkKind::from(n.sink).as_str()) }
                                        td { (incident::NotifyAction::from(n.action).as_str()) }
                                        td { (notify_badge(n.state)) }
                                        td { (n.tries) }
                                        td { (Ago { at: &n.at, now: self.now }) }
                                        td.breakable { @if let Some(a) = &n.last_answer { code { (a) } } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        };
        layout::page(&title, self.chrome, main)
    }
}

fn notify_badge(s: NotifyStateOut) -> Badge<'static> {
    match s {
        NotifyStateOut::Pending => Badge { tone: Tone::Info, label: "Waiting" },
        NotifyStateOut::Sent => Badge { tone: Tone::Success, label: "Sent" },
        NotifyStateOut::Failed => Badge { tone: Tone::Critical, label: "Failed" },
        NotifyStateOut::Skipped => Badge { tone: Tone::Neutral, label: "Skipped" },
    }
}

fn figures(f: &[crate::contract::FigureOut]) -> Markup {
    html! {
        dl.facts {
            @for fig in f { dt { code { (fig.name) } } dd.breakable { (fig.value) } }
        }
    }
}
