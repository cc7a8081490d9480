//! The audit log page (admins): the same entries `listAudit` answers, with its filters.

use maud::{Markup, Render, html};

use super::components::{IndexTable, Pagination, filter_error};
use super::format;
use super::layout::{self, Chrome};
use crate::contract::paths;
use crate::contract::{AuditEntryOut, AuditPage};
use crate::domain::audit::AuditAction;

pub struct AuditView<'a> {
    pub filters: &'a crate::contract::AuditParams,
    /// Absent when the filters could not be applied; `error` says why.
    pub page: Option<&'a AuditPage>,
    pub error: Option<String>,
    pub chrome: &'a Chrome,
}

impl AuditView<'_> {
    /// This page's URL with the same filters and `cursor`.
    fn href(&self, cursor: Option<&str>) -> String {
        with_query(paths::DASHBOARD_AUDIT, self.filters, cursor)
    }
}

/// `base` with the filters of `f` (and `cursor`) as its query.
fn with_query(base: &str, f: &crate::contract::AuditParams, cursor: Option<&str>) -> String {
    let pairs: Vec<(&str, &str)> = [
        ("action", f.action.as_deref()),
        ("performed_by", f.performed_by.as_deref()),
        ("target_id", f.target_id.as_deref()),
        ("cursor", cursor),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k, v)))
    .collect();
    let query = serde_urlencoded::to_string(pairs).unwrap_or_default();
    if query.is_empty() { base.to_owned() } else { format!("{base}?{query}") }
}

impl Render for AuditView<'_> {
    fn render(&self) -> Markup {
        let f = self.filters;
        let main = html! {
            div.page-header { h1 { "Audit log" } a.button href=(with_query(paths::DASHBOARD_AUDIT_EXPORT, f, None)) download { "Export JSON lines" } }
            form.card.filters method="get" action=(paths::DASHBOARD_AUDIT) {
                div.filter-row {
                    label { span { "Action" }
                        select name="action" {
                            option value="" { "Any action" }
                            @for a in AuditAction::ALL {
                                option value=(a.as_str()) selected[f.action.as_deref() == Some(a.as_str())] { (a.as_str()) }
                            }
                        }
                    }
                    label { span { "Performed by" }
                        input type="text" name="performed_by" value=[f.performed_by.as_deref()] placeholder="operator:alice";
                    }
                    label { span { "Target" }
                        input type="text" name="target_id" value=[f.target_id.as_deref()] placeholder="sub_…, tok_…, op_…";
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
                        class: "audit-table",
                        headers: &["Time", "Action", "By", "Target", "From", "Changes"],
                        empty: "No entries match.",
                        rows: page.items.iter().map(row).collect(),
                    })
                    (Pagination {
                        first: f.cursor.as_deref().is_some_and(|c| !c.is_empty()).then(|| self.href(None)),
                        next: page.next_cursor.as_deref().map(|next| self.href(Some(next))),
                    })
                }
            }
        };
        layout::page("Audit log", self.chrome, main)
    }
}

fn row(e: &AuditEntryOut) -> Markup {
    html! {
        tr {
            td { time datetime=(e.at) { (format::time(&e.at)) } }
            td { code { (e.action) } }
            td { (e.performed_by) }
            td { @if let Some(t) = &e.target_id { code { (t) } } }
            td { @if let Some(c) = &e.client { (c) } }
            td {
                @for c in &e.changes {
                    div {
                        code { (c.field) } ": "
                        @if let Some(b) = &c.before { del { (b) } " → " }
                        @if let Some(a) = &c.after { (a) } @else { em { "removed" } }
                    }
                }
            }
        }
    }
}
