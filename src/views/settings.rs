//! The settings page: retention with its confirmation, the overrides, the integrations' credentials by
//! fingerprint, the alert sinks and the version. Admins change the retention here unless the configuration
//! sets it; everyone else reads.

use maud::{Markup, Render, html};

use super::components::{Banner, Tone};
use super::format;
use super::layout::{self, Chrome};
use crate::auth::csrf;
use crate::contract::SettingsOut;
use crate::contract::paths;

pub struct SettingsView<'a> {
    pub settings: &'a SettingsOut,
    pub now: &'a str,
    pub notice: Option<(Tone, String)>,
    pub chrome: &'a Chrome,
}

/// The retention the toggle offers beside the default.
const LONG_DAYS: u32 = 30;
const DEFAULT_DAYS: u32 = crate::domain::retention::DEFAULT_DAYS;

fn bytes(n: u64) -> String {
    let mib = n as f64 / 1_048_576.0;
    if mib >= 1024.0 { format!("{:.1} GiB", mib / 1024.0) } else { format!("{mib:.1} MiB") }
}

impl Render for SettingsView<'_> {
    fn render(&self) -> Markup {
        let s = self.settings;
        let r = &s.retention;
        let editable = self.chrome.admin && r.set_in.is_none();
        let target = if r.days == LONG_DAYS { DEFAULT_DAYS } else { LONG_DAYS };
        let main = html! {
            div.page-header { h1 { "Settings" } }
            @if let Some((tone, text)) = &self.notice {
                (Banner { tone: *tone, title: text, body: html! {} })
            }
            section.card aria-labelledby="retention-title" {
                h2 #retention-title { "Payload retention" }
                p {
                    "Deliveries are kept " strong { (r.days) " days" } " after they arrive, then deleted with their attempts, replays and search entry; counts stay. "
                    @match r.source.as_str() {
                        "configuration" => { "Set by " (r.set_in.as_deref().unwrap_or("the configuration")) ": change it there." },
                        "dashboard" => "Set on this page.",
                        _ => "The default.",
                    }
                }
                p.subdued { "A day of deliveries is " (bytes(r.bytes_per_day)) " of bodies at the current rate (last 24 hours, before compression)." }
                @if editable {
                    form.retention-form method="post" action=(paths::DASHBOARD_SETTINGS) {
                        input type="hidden" name="intent" value="retention";
                        input type="hidden" name="days" value=(target);
                        @if let Some(t) = &self.chrome.csrf { input type="hidden" name=(csrf::FIELD) value=(t); }
                        @if target > r.days {
                            (Banner { tone: Tone::Warning, title: &format!("Keeping payloads {target} days"), body: html! {
                                p { "costs about " (bytes(r.bytes_per_day.saturating_mul(u64::from(target)))) " of bodies at today's rate, against "
                                    (bytes(r.bytes_per_day.saturating_mul(u64::from(r.days)))) " now." }
                                p { "Stored payloads hold customers' personal data. Keeping them longer keeps that data longer: your privacy notice must say so, and requests to erase a customer's data (Shopify's " code { "customers/redact" } ") must still be honoured." }
                            } })
                        }
                        label.confirm {
                            input type="checkbox" name="confirm" value="true" required;
                            " " @if target > r.days { "I understand: keep payloads " (target) " days" } @else { "Keep payloads " (target) " days: older ones are deleted at the next sweep" }
                        }
                        button.button.button-primary type="submit" { "Keep " (target) " days" }
                    }
                } @else if !self.chrome.admin {
                    p.subdued { "Admins can change it." }
                }
                @if !r.overrides.is_empty() {
                    h3 { "Subscriptions with their own retention" }
                    div.table-scroll {
                        table.index-table {
                            thead { tr { th scope="col" { "Subscription" } th scope="col" { "Days" } } }
                            tbody { @for o in &r.overrides { tr { td { (o.name) } td { (o.days) } } } }
                        }
                    }
                }
            }
            section.card aria-labelledby="integrations-title" {
                h2 #integrations-title { "Integrations" }
                p.subdued { "Secrets and credentials are never shown: only their fingerprints." }
                div.table-scroll { table.index-table {
                    thead { tr { th scope="col" { "What" } th scope="col" { "Fingerprint" } th scope="col" { "Set" } } }
                    tbody {
                        @for k in &s.shopify_app_secrets {
                            tr {
                                td { "Shopify app secret" @if k.slot == "app_previous" { " (previous)" } }
                                td { code { (k.fingerprint) } }
                                td { "environment" @if let Some(age) = k.created_at.as_deref().and_then(|c| format::age(c, self.now)) { ", in use here " (age) } }
                            }
                        }
                        @for c in &s.credentials {
                            tr {
                                td { (c.provider) " · " (c.account) @if let Some(dc) = &c.data_centre { " · " (dc) } }
                                td { code { (c.fingerprint) } }
                                td { @match (&c.set_at, &c.set_by) {
                                    (Some(at), Some(by)) => { (format::time(at)) " by " (by) },
                                    _ => "environment (SHOPIFY_ADMIN_ACCESS_TOKEN)",
                                } }
                            }
                        }
                        @if s.shopify_app_secrets.is_empty() && s.credentials.is_empty() {
                            tr { td colspan="3" { span.subdued { "None set." } } }
                        }
                    }
                } }
            }
            section.card aria-labelledby="sinks-title" {
                h2 #sinks-title { "Alert sinks" }
                @if s.alert_sinks.is_empty() {
                    p.subdued { "None: incidents show on the Incidents page only. Set PAGERDUTY_ROUTING_KEY, BETTERSTACK_API_TOKEN, or alerts.webhook_url with HOOKPLANE_ALERTS_WEBHOOK_SECRET." }
                } @else {
                    ul.sinks { @for k in &s.alert_sinks { li { (k.kind) " → " code { (k.target) } } } }
                }
            }
            section.card aria-labelledby="version-title" {
                h2 #version-title { "Versions" }
                p { "Hookplane " (s.version) " (" code { (s.git_sha) } ")" }
                @if s.destinations.is_empty() {
                    p.subdued { "No subscription forwards yet: the processing service's versions show here once one does." }
                } @else {
                    p.subdued {
                        "The processing service's version, as each destination names it in its answers (or a version URL says). "
                        "A deploy pipeline announces versions with POST /api/v1/deploys; a warning holds when a destination answers with two versions, "
                        "or is more than one deploy behind, for longer than " (s.drift_grace_minutes) " minutes (drift.grace_minutes in the configuration)."
                    }
                    @for d in &s.destinations {
                        div.versions data-service=(d.service) {
                            h3 { (d.subscription_name) " → " code { (d.service) } }
                            @for w in &d.drift {
                                (Banner { tone: Tone::Warning, title: "Version drift", body: html! { p { (w) } } })
                            }
                            @if d.versions.is_empty() {
                                p.subdued { "No version seen yet: its answers carry no " code { (d.version_header) } " header"
                                    @if d.version_url.is_some() { ", and its version URL has not answered one" } "." }
                            } @else {
                                div.table-scroll { table.index-table {
                                    thead { tr { th scope="col" { "Version" } th scope="col" { "First seen" } th scope="col" { "Last seen" } } }
                                    tbody {
                                        @for v in &d.versions {
                                            tr {
                                                td { code { (v.version) } }
                                                td { time datetime=(v.first_seen) { (format::time(&v.first_seen)) } }
                                                td { time datetime=(v.last_seen) { (format::time(&v.last_seen)) } }
                                            }
                                        }
                                    }
                                } }
                            }
                            @if let Some(a) = d.announced.first() {
                                p.subdued { "Last deploy announced: " code { (a.version) } " at " (format::time(&a.announced_at)) " by " (a.announced_by) "." }
                            }
                        }
                    }
                }
            }
        };
        layout::page("Settings", self.chrome, main)
    }
}
