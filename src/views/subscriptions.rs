//! The subscription panels of the webhooks page: one per subscription, with its callback URL, secret,
//! health and actions, and the reminder after a rotation.

use maud::{Markup, html};

use super::components::{ActionForm, Ago, Badge, Copied, CopyButton, Sparkline, Toast, Tone};
use super::format;
use super::layout::Chrome;
use super::webhooks::{Filters, source_label};
use crate::contract::paths;
use crate::contract::{AttemptMarkOut, DashboardOut, HandshakeOutcome, SubscriptionOrigin, SubscriptionOut};
use crate::domain;

/// The success message after a rotation, with what to do on the provider's side.
pub(super) fn rotated_toast(s: &SubscriptionOut) -> Markup {
    let until = s.secrets.iter().find(|k| k.slot == "previous").and_then(|k| k.expires_at.as_deref());
    let reminder = until.map(|u| domain::subscription::rotation_reminder(s.source.into(), &format::time(u)));
    html! {
        (Toast { title: &format!("Secret rotated for {}", s.name), body: html! {
            @if let Some(r) = &reminder { p { (r) } }
        } })
    }
}

pub(super) fn subscriptions(d: &DashboardOut, chrome: &Chrome) -> Markup {
    html! {
        section.subscriptions aria-labelledby="subscriptions-title" {
            h2 #subscriptions-title { "Subscriptions" }
            @if d.subscriptions.is_empty() {
                div.card { p.subdued { "No subscriptions. Declare them in the configuration file or create them with " code { "POST /api/v1/subscriptions" } "." } }
            }
            @for s in &d.subscriptions { (subscription_panel(s, &d.generated_at, chrome)) }
        }
    }
}

fn subscription_badge(s: &SubscriptionOut) -> Badge<'static> {
    use domain::SubscriptionStatus::{Active, Discovered, Expiring, Failing, HandshakeFailed, Paused};
    let status = domain::SubscriptionStatus::from(s.status);
    let degraded = s.health.as_ref().is_some_and(|h| !h.degraded.is_empty());
    match status {
        Active if degraded => Badge { tone: Tone::Critical, label: "Degraded" },
        Active => Badge { tone: Tone::Success, label: "Active" },
        Failing => Badge { tone: Tone::Critical, label: "Failing" },
        HandshakeFailed => Badge { tone: Tone::Critical, label: "Handshake failed" },
        Expiring => Badge { tone: Tone::Warning, label: "Expiring" },
        Paused => Badge { tone: Tone::Warning, label: "Paused" },
        Discovered => Badge { tone: Tone::Info, label: "Discovered" },
    }
}

fn subscription_panel(s: &SubscriptionOut, now: &str, chrome: &Chrome) -> Markup {
    let current = s.secrets.iter().find(|k| k.slot == "current" || k.slot == "app");
    let secret_age = current.and_then(|k| k.created_at.as_deref()).and_then(|c| format::age(c, now));
    // The app secret comes from the environment: its age counts from when this instance first held it.
    let age_words = if current.is_some_and(|k| k.slot == "app") { " in use here" } else { " old" };
    let degraded = s.health.as_ref().is_some_and(|h| !h.degraded.is_empty());
    let previous = s.secrets.iter().find(|k| k.slot == "previous" || k.slot == "app_previous");
    html! {
        details.card.subscription data-subscription=(s.id) open[degraded] {
            summary {
                span.subscription-name { (s.name) }
                (subscription_badge(s))
                span.subdued { (source_label(s.source.into())) " · " code { (s.topic) } }
                @if let Some(h) = &s.health {
                    (Sparkline { values: &h.hourly_24h, label: format!("{} deliveries in the last 24 hours, by hour", h.deliveries_24h) })
                }
            }
            dl.facts {
                dt { "Callback URL" }
                dd { code #{ "cb-" (s.id) } { (s.callback_url) } " " (CopyButton { label: "Copy", what: Copied::Text(&s.callback_url) }) }
                dt { "Account" } dd { (s.account) }
                dt { "Secret" }
                dd {
                    @match current {
                        Some(k) => {
                            code { (k.fingerprint) }
                            @if let Some(age) = &secret_age { " · " (age) (age_words) }
                            @if let Some(p) = previous {
                                " · previous " code { (p.fingerprint) } " still accepted"
                                @if let Some(until) = &p.expires_at { " until " (format::time(until)) }
                            }
                        }
                        None => span.subdued { "none held" },
                    }
                }
                dt { "Last handshake" }
                dd { (handshake(s, now)) }
                @if let Some(h) = &s.health {
                    dt { "Last delivery" }
                    dd { @match &h.last_delivery_at { Some(t) => (Ago { at: t, now }), None => span.subdued { "none yet" } } }
                    dt { "Deliveries" }
                    dd { (format::count(h.deliveries_24h)) " in 24 h · " (format::count(h.deliveries_1h)) " in the last hour" }
                    dt { "Success rate" }
                    dd { (format::percent(h.success_rate_24h)) " over 24 h · " (format::percent(h.success_rate_1h)) " over 1 h" }
                    dt { "Recent failures" }
                    dd {
                        @if h.consecutive_failures == 0 { "none in a row" } @else { (h.consecutive_failures) " in a row" }
                        " · " a href=(Filters::of_subscription(&s.id, Some("failed")).href(None)) { "failed deliveries" }
                        @if !h.recent_attempts.is_empty() { (timeline(&h.recent_attempts)) }
                    }
                    dt { "Latency, 24 h" }
                    dd { (format::millis(h.avg_latency_ms_24h)) " average · " (format::millis(h.p95_latency_ms_24h)) " p95" }
                }
                dt { "Destination" }
                dd { @match &s.destination_url { Some(u) => code { (u) }, None => "kept here (store)" } }
            }
            p { a href=(Filters::of_subscription(&s.id, None).href(None)) { "Show its deliveries" } }
            @let forwards = s.destination_url.is_some();
            @let handshakes = s.handshake_unavailable.is_none();
            @if chrome.operator && (forwards || handshakes) {
                @let paused = s.status == crate::contract::SubscriptionStatus::Paused;
                @if paused {
                    p.subdued { "Paused: deliveries are received and stored, and wait until it is resumed." }
                }
                div.actions {
                    @if forwards {
                        (ActionForm { intent: "replay_latest", field: ("subscription", &s.id), label: "Replay latest", return_to: paths::DASHBOARD_WEBHOOKS, csrf: chrome.csrf.as_deref(), primary: false })
                        @if paused {
                            (ActionForm { intent: "resume", field: ("subscription", &s.id), label: "Resume", return_to: paths::DASHBOARD_WEBHOOKS, csrf: chrome.csrf.as_deref(), primary: true })
                        } @else {
                            (ActionForm { intent: "pause", field: ("subscription", &s.id), label: "Pause", return_to: paths::DASHBOARD_WEBHOOKS, csrf: chrome.csrf.as_deref(), primary: false })
                        }
                    }
                    @if handshakes {
                        (ActionForm { intent: "handshake", field: ("subscription", &s.id), label: "Retry handshake", return_to: paths::DASHBOARD_WEBHOOKS, csrf: chrome.csrf.as_deref(), primary: false })
                    }
                }
            }
            @if chrome.admin && current.is_some_and(|k| k.slot == "current") && s.origin != SubscriptionOrigin::Config {
                (rotate_form(s, chrome))
            }
        }
    }
}

/// Where the subscription's registration at its provider stands: when it was last verified, the channel's
/// expiry, the last failure in the provider's words, and the newest runs.
fn handshake(s: &SubscriptionOut, now: &str) -> Markup {
    html! {
        @match (&s.handshake_unavailable, &s.handshake) {
            (Some(why), _) => span.subdued { "none: " (why) },
            (None, None) => span.subdued { "never: it runs once its shop or organisation has a credential and public_url is set" },
            (None, Some(h)) => {
                @match &s.last_verified_at { Some(t) => { "verified " (Ago { at: t, now }) }, None => span.subdued { "never verified" } }
                @if let Some(e) = &h.expires_at { " · channel expires " (format::time(e)) }
                " · next " (format::time(&h.next_at))
                @if let Some(f) = &h.failure {
                    p.handshake-failure {
                        strong { "The last run failed: " } (f.message)
                        @if let Some(said) = &f.provider_said { " The provider said: " code { (said) } }
                    }
                }
                @if !s.handshake_runs.is_empty() {
                    details.handshakes {
                        summary { "Recent handshakes" }
                        ol {
                            @for r in &s.handshake_runs {
                                li {
                                    (format::time(&r.at)) " · " strong { (outcome_label(r.outcome)) } " · by " (r.by)
                                    @for x in &r.repaired { br; (x) }
                                    @if let Some(f) = &r.failure { br; (f.message) }
                                    @for u in r.unknown.iter().take(UNKNOWN_SHOWN) { br; span.subdued { "Not Hookplane's (left alone): " (u) } }
                                    @if r.unknown.len() > UNKNOWN_SHOWN { br; span.subdued { "and " (r.unknown.len() - UNKNOWN_SHOWN) " more (the API lists them all)" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Registrations nobody here owns, listed per run in the panel; the API has them all.
const UNKNOWN_SHOWN: usize = 5;

fn outcome_label(o: HandshakeOutcome) -> &'static str {
    match o {
        HandshakeOutcome::Verified => "verified",
        HandshakeOutcome::Repaired => "repaired",
        HandshakeOutcome::Failed => "failed",
    }
}

/// Rotation, for admins: the new secret typed twice, and how long the old one stays accepted.
fn rotate_form(s: &SubscriptionOut, chrome: &Chrome) -> Markup {
    html! {
    details.rotate {
        summary { "Rotate secret" }
        form.rotate-form method="post" action=(paths::DASHBOARD_WEBHOOKS) autocomplete="off" {
            input type="hidden" name="intent" value="rotate";
            input type="hidden" name="subscription" value=(s.id);
            @if let Some(t) = &chrome.csrf { input type="hidden" name=(crate::auth::csrf::FIELD) value=(t); }
            label { span { "New secret" } input type="password" name="secret" autocomplete="new-password" required; }
            label { span { "Type it again" } input type="password" name="secret_confirmation" autocomplete="new-password" required; }
            label { span { "Accept the old secret for" }
                select name="overlap_hours" {
                    option value="" selected { "the configured overlap" }
                    option value="1" { "1 hour" }
                    option value="24" { "24 hours" }
                    option value="72" { "3 days" }
                    option value="168" { "7 days" }
                }
            }
            button.button.button-primary type="submit" { "Rotate" }
        }
    }    }
}

/// The last attempts as a strip of outcomes, oldest first, each with its time and answer on hover and, for
/// keyboards and screen readers, on focus.
fn timeline(marks: &[AttemptMarkOut]) -> Markup {
    let failed = marks.iter().filter(|m| !m.succeeded).count();
    html! {
        ol.timeline aria-label={ "The last " (marks.len()) " attempts, oldest first: " (failed) " failed" } {
            @for m in marks {
                @let answer = m.response_code.map_or_else(|| "no answer".to_owned(), |c| c.to_string());
                @let said = format!("{} at {}: {}", if m.succeeded { "Delivered" } else { "Failed" }, format::time(&m.started_at), answer);
                li.tick.tick-ok[m.succeeded].tick-failed[!m.succeeded] tabindex="0" title=(said) aria-label=(said) {}
            }
        }
    }
}
