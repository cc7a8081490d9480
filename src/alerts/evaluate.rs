//! What holds now: the findings of the rules Hookplane evaluates itself, read from the rollups, the
//! degradation decision the dashboard shows, and the kept samples of refused requests; never from the
//! deliveries themselves.

use std::collections::BTreeMap;

use redb::{Database, ReadableDatabase};

use crate::domain::incident::{
    AlertRules, Figure, Finding, Rule, SIGNATURE_WINDOW_MS, SILENCE_HISTORY_HOURS, Subject, silence_allowance_ms,
};
use crate::domain::{RejectCause, Source, SubscriptionId, SubscriptionStatus, Timestamp};
use crate::loader;
use crate::storage::{StoreError, rejections, stats, subscriptions};

/// The rules evaluated here: every rule.
pub const EVALUATED: [Rule; 5] =
    [Rule::ConsecutiveFailures, Rule::SuccessRate, Rule::SignatureFailures, Rule::Silence, Rule::Handshake];

/// Every finding as of `now`. `app_fingerprints` are those of Shopify's app secrets, tried for requests
/// no subscription of its own matched.
pub fn findings(
    db: &Database,
    now: Timestamp,
    rules: &AlertRules,
    app_fingerprints: &[String],
) -> Result<Vec<Finding>, StoreError> {
    let overview = loader::overview(db, now, rules)?;
    let mut out = Vec::new();
    for s in &overview.subscriptions {
        let sub = &s.subscription;
        for d in &s.health.degraded {
            let figures = match *d {
                crate::domain::health::Degraded::FailureStreak { count, limit } => {
                    vec![Figure::new("consecutive_failures", count), Figure::new("threshold", limit)]
                }
                crate::domain::health::Degraded::LowSuccessRate { rate, threshold, attempts } => vec![
                    Figure::new("success_rate_1h", format!("{:.3}", rate)),
                    Figure::new("threshold", threshold),
                    Figure::new("attempts_1h", attempts),
                ],
            };
            out.push(Finding {
                subject: Subject::Subscription(sub.id),
                subject_name: sub.name.clone(),
                rule: d.rule(),
                summary: d.message(),
                figures,
            });
        }
    }
    out.extend(handshakes(&overview, now));
    out.extend(silence(db, &overview, now, rules)?);
    out.extend(signatures(db, &overview, now, rules, app_fingerprints)?);
    Ok(out)
}

/// Subscriptions whose provider registration failed, or whose channel is about to expire unrefreshed, as
/// the handshake state they show says.
fn handshakes(overview: &loader::Overview, now: Timestamp) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in &overview.subscriptions {
        let (Some(h), Some(problem)) = (&s.handshake, loader::handshake_problem(s, now)) else { continue };
        let mut figures = vec![Figure::new("status", s.subscription.status.as_str())];
        if let Some(f) = &h.failure {
            figures.push(Figure::new("failure", &f.code));
        }
        figures.push(Figure::new("last_run_at", h.last_run_at.to_rfc3339()));
        if let Some(e) = h.registration.expires_at {
            figures.push(Figure::new("expires_at", e.to_rfc3339()));
        }
        out.push(Finding {
            subject: Subject::Subscription(s.subscription.id),
            subject_name: s.subscription.name.clone(),
            rule: Rule::Handshake,
            summary: problem,
            figures,
        });
    }
    out
}

fn silence(
    db: &Database,
    overview: &loader::Overview,
    now: Timestamp,
    rules: &AlertRules,
) -> Result<Vec<Finding>, StoreError> {
    let tx = db.begin_read()?;
    let mut out = Vec::new();
    for s in &overview.subscriptions {
        let sub = &s.subscription;
        let watched = matches!(
            sub.status,
            SubscriptionStatus::Active | SubscriptionStatus::Failing | SubscriptionStatus::Expiring
        );
        if !watched || !rules.for_subscription(&sub.name).silence {
            continue;
        }
        let Some(last) = s.health.last_delivery_at else { continue };
        let hourly = stats::hourly_received(&tx, sub.id, now, SILENCE_HISTORY_HOURS)?;
        let Some(allowed) = silence_allowance_ms(&hourly) else { continue };
        let silent = now.millis() - last.millis();
        if silent > allowed {
            out.push(Finding {
                subject: Subject::Subscription(sub.id),
                subject_name: sub.name.clone(),
                rule: Rule::Silence,
                summary: format!(
                    "nothing received for {} min; its history allows {} min",
                    silent / 60_000,
                    allowed / 60_000
                ),
                figures: vec![
                    Figure::new("last_delivery_at", last.to_rfc3339()),
                    Figure::new("silent_minutes", silent / 60_000),
                    Figure::new("allowed_minutes", allowed / 60_000),
                ],
            });
        }
    }
    Ok(out)
}

/// The source an ingest path belongs to.
fn source_of(path: &str) -> Source {
    if path.starts_with("/shopify") {
        Source::Shopify
    } else if path.starts_with("/zoho") {
        Source::Zoho
    } else {
        Source::Standard
    }
}

fn signatures(
    db: &Database,
    overview: &loader::Overview,
    now: Timestamp,
    rules: &AlertRules,
    app_fingerprints: &[String],
) -> Result<Vec<Finding>, StoreError> {
    let refused = rejections::since(db, now.plus_millis(-SIGNATURE_WINDOW_MS))?;
    let mut by_subject: BTreeMap<Subject, (u64, Option<String>)> = BTreeMap::new();
    for r in refused {
        if !matches!(r.cause, RejectCause::SignatureInvalid | RejectCause::SignatureMissing) || r.at > now {
            continue;
        }
        let subject = r.subscription_id.map_or_else(|| Subject::Source(source_of(&r.path)), Subject::Subscription);
        let entry = by_subject.entry(subject).or_default();
        entry.0 += 1;
        entry.1 = Some(r.detail);
    }
    let names: BTreeMap<SubscriptionId, &str> =
        overview.subscriptions.iter().map(|s| (s.subscription.id, s.subscription.name.as_str())).collect();
    let secrets = subscriptions::all_secrets(db)?;
    let mut out = Vec::new();
    for (subject, (count, detail)) in by_subject {
        let (name, threshold, tried) = match subject {
            Subject::Subscription(id) => {
                let name = names.get(&id).copied().unwrap_or("a removed subscription");
                let tried: Vec<String> =
                    secrets.iter().filter(|(s, _, _)| *s == id).map(|(_, _, st)| st.digest.fingerprint()).collect();
                (name.to_owned(), rules.for_subscription(name).signature_failures, tried)
            }
            Subject::Source(source) => {
                let tried = if source == Source::Shopify { app_fingerprints.to_vec() } else { Vec::new() };
                (source.as_str().to_owned(), rules.defaults.signature_failures, tried)
            }
        };
        if threshold == 0 || count < threshold {
            continue;
        }
        let tried_text = if tried.is_empty() { "none held".to_owned() } else { tried.join(", ") };
        out.push(Finding {
            subject,
            subject_name: name,
            rule: Rule::SignatureFailures,
            summary: format!(
                "{count} requests refused for their signature in 10 min: the sender's secret and the one held here \
                 differ (rotated on one side only?)"
            ),
            figures: vec![
                Figure::new("refused_10m", count),
                Figure::new("threshold", threshold),
                Figure::new("secrets_tried", tried_text),
                Figure::new("last_refusal", detail.unwrap_or_default()),
            ],
        });
    }
    Ok(out)
}
