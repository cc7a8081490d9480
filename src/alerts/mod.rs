//! Alerts: the rules are evaluated every `alerts.evaluate_interval_ms` and after every batch of attempt
//! outcomes; incidents open, keep and resolve as `storage::incidents::reconcile` decides; their
//! notifications wait in redb until a sink accepts them, so a restart loses none, and they are sent from
//! their own task, so a sink that is down never slows ingest or delivery.

pub mod evaluate;
pub mod settings;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::domain::audit::{Actor, AuditAction, Change};
use crate::domain::ids::IncidentId;
use crate::domain::incident::{AlertRules, Incident, NotifyAction, SinkAnswer, SinkKind};
use crate::domain::{Clock, Timestamp};
use crate::sinks::{Sinks, Unsent};
use crate::storage::incidents::{self, AckError, Reconciled, Tried};
use crate::storage::{Store, StoreError};
use crate::task::AliveGuard;

/// The shortest time between two evaluations.
const MIN_GAP: Duration = Duration::from_secs(1);

pub struct Alerts {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    rules: Arc<AlertRules>,
    sinks: Sinks,
    /// Fingerprints of Shopify's app secrets, named in signature incidents no subscription matched.
    app_fingerprints: Vec<String>,
    every: Duration,
    evaluate_now: Notify,
    notify_now: Notify,
}

impl Alerts {
    pub fn new(
        store: Arc<Store>,
        clock: Arc<dyn Clock>,
        rules: Arc<AlertRules>,
        sinks: Sinks,
        app_fingerprints: Vec<String>,
        every: Duration,
    ) -> Self {
        Self {
            store,
            clock,
            rules,
            sinks,
            app_fingerprints,
            every,
            evaluate_now: Notify::new(),
            notify_now: Notify::new(),
        }
    }

    /// Asks for an evaluation soon: attempt outcomes were committed.
    pub fn poke(&self) {
        self.evaluate_now.notify_one();
    }

    /// Evaluates every rule once and brings the incidents in line.
    pub async fn evaluate(&self) -> Result<Reconciled, StoreError> {
        let now = self.clock.now();
        let (rules, fingerprints, sinks) =
            (Arc::clone(&self.rules), self.app_fingerprints.clone(), self.sinks.settings().kinds());
        let done = self
            .store
            .read(move |db| {
                let found = evaluate::findings(db, now, &rules, &fingerprints)?;
                incidents::reconcile(db, found, &evaluate::EVALUATED, now, &rules, &sinks)
            })
            .await?;
        for id in &done.opened {
            tracing::warn!(incident = %id, "an incident opened");
        }
        for id in &done.resolved {
            tracing::info!(incident = %id, "an incident resolved");
        }
        if !done.opened.is_empty() || !done.resolved.is_empty() {
            self.notify_now.notify_one();
        }
        Ok(done)
    }

    /// Records that `actor` acknowledged the incident, audited, and tells the sinks.
    pub async fn acknowledge(&self, id: IncidentId, actor: &Actor) -> Result<Incident, AckError> {
        let now = self.clock.now();
        let entry = actor.entry(now, AuditAction::IncidentAcknowledged).target(id).change(Change::changed(
            "state",
            "open",
            "acknowledged",
        ));
        let (by, sinks) = (actor.label.clone(), self.sinks.settings().kinds());
        let store = Arc::clone(&self.store);
        let done = crate::task::blocking(move || {
            let db = store.db()?;
            incidents::acknowledge(&db, id, &by, now, &sinks, &entry)
        })
        .await?;
        self.notify_now.notify_one();
        Ok(done)
    }

    /// Sends every notification due now, once each. Returns how many were tried.
    pub async fn send_due(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let due = self.store.read(move |db| incidents::due(db, now, 64)).await?;
        let mut tried = 0;
        for incident in due {
            for (index, n) in incident.notifications.iter().enumerate() {
                if n.next_at().is_none_or(|at| at > now) {
                    continue;
                }
                let outcome = match self.sinks.send(n.sink, n.action, &incident, index, now).await {
                    Ok(answer) => {
                        log_answer(&incident, n.sink, n.action, &answer);
                        let sent = matches!(answer, crate::domain::notification::SinkAnswer::Accepted { .. });
                        crate::metrics::get().notified(n.sink.as_str(), sent);
                        Tried::Answered(answer)
                    }
                    Err(Unsent::Off) => Tried::Skipped(format!("the {} sink is not configured", n.sink.as_str())),
                    Err(Unsent::NeedsTrigger) => waiting_for_trigger(&incident, n.sink, now),
                };
                tried += 1;
                let id = incident.id;
                self.store.read(move |db| incidents::tried(db, id, index, outcome, now)).await?;
            }
        }
        Ok(tried)
    }

    /// Runs the evaluator and the notifier until the runtime stops; `guard` marks them gone however they end.
    pub fn spawn(self: Arc<Self>, guard: AliveGuard) -> tokio::task::JoinHandle<()> {
        let notifier = Arc::clone(&self);
        tokio::spawn(async move {
            let _alive = guard;
            let sending = tokio::spawn(async move { notifier.notify_loop().await });
            self.evaluate_loop().await;
            sending.abort();
        })
    }

    async fn evaluate_loop(&self) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = self.evaluate_now.notified() => {}
            }
            if let Err(e) = self.evaluate().await {
                tracing::warn!(error = %e, "the alert rules could not be evaluated; they are tried again at the next tick");
            }
            // Under load attempt outcomes are committed all the time: at most one evaluation per gap, whatever
            // the pokes; the permit a poke leaves brings the next one right after.
            tokio::time::sleep(self.every.min(MIN_GAP)).await;
        }
    }

    async fn notify_loop(&self) {
        // Due times are on the clock Hookplane runs on; looking often is one index read.
        let every = self.every.min(Duration::from_secs(5));
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = self.notify_now.notified() => {}
            }
            if let Err(e) = self.send_due().await {
                tracing::warn!(error = %e, "notifications could not be sent; they are tried again shortly");
            }
        }
    }
}

/// A Better Stack acknowledgement or resolution waits for its trigger's answer; it is skipped once the
/// trigger can no longer bring an id (it failed, or was skipped).
fn waiting_for_trigger(incident: &Incident, sink: SinkKind, now: Timestamp) -> Tried {
    let trigger = incident.notifications.iter().find(|n| n.sink == sink && n.action == NotifyAction::Trigger);
    match trigger.and_then(|t| t.next_at()) {
        Some(at) => Tried::Later(at.max(now).plus_millis(1000)),
        None => Tried::Skipped(format!("{} never accepted the incident, so there is nothing to update", sink.as_str())),
    }
}

fn log_answer(incident: &Incident, sink: SinkKind, action: NotifyAction, answer: &SinkAnswer) {
    match answer {
        SinkAnswer::Accepted { .. } => {
            tracing::info!(incident = %incident.id, sink = sink.as_str(), action = action.as_str(), "notification sent")
        }
        SinkAnswer::Retry { answer } | SinkAnswer::Refused { answer } => tracing::warn!(
            incident = %incident.id, sink = sink.as_str(), action = action.as_str(), answer = %answer,
            "a sink did not take a notification"
        ),
    }
}
