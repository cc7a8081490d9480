//! Notifications: what an incident tells a sink, and where each one stands, retried until the sink takes
//! it or its schedule runs out.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// A sink an incident's notifications go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkKind {
    Pagerduty,
    Betterstack,
    Webhook,
}

impl SinkKind {
    pub const ALL: [SinkKind; 3] = [SinkKind::Pagerduty, SinkKind::Betterstack, SinkKind::Webhook];

    pub const fn as_str(self) -> &'static str {
        match self {
            SinkKind::Pagerduty => "pagerduty",
            SinkKind::Betterstack => "betterstack",
            SinkKind::Webhook => "webhook",
        }
    }
}

impl FromStr for SinkKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SinkKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a sink (expected pagerduty, betterstack or webhook)"))
    }
}

/// What a notification tells a sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyAction {
    Trigger,
    Acknowledge,
    Resolve,
}

impl NotifyAction {
    pub const fn as_str(self) -> &'static str {
        match self {
            NotifyAction::Trigger => "trigger",
            NotifyAction::Acknowledge => "acknowledge",
            NotifyAction::Resolve => "resolve",
        }
    }
}

/// Where a notification stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum NotifyState {
    /// Waiting for its next try at `next_at`.
    Pending { next_at: Timestamp },
    /// The sink accepted it.
    Sent { at: Timestamp },
    /// Out of tries, or refused for good (a 4xx other than 408 and 429).
    Failed { at: Timestamp },
    /// Not needed any more (the sink never learned of the incident, so there is nothing to resolve).
    Skipped { at: Timestamp, why: String },
}

/// One notification to one sink, with the sink's last answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub sink: SinkKind,
    pub action: NotifyAction,
    pub queued_at: Timestamp,
    pub tries: u32,
    pub state: NotifyState,
    /// The sink's last answer: `201 Created`, or why no answer came.
    #[serde(default)]
    pub last_answer: Option<String>,
}

impl Notification {
    pub fn due(sink: SinkKind, action: NotifyAction, at: Timestamp) -> Self {
        Self { sink, action, queued_at: at, tries: 0, state: NotifyState::Pending { next_at: at }, last_answer: None }
    }

    pub fn next_at(&self) -> Option<Timestamp> {
        match self.state {
            NotifyState::Pending { next_at } => Some(next_at),
            _ => None,
        }
    }
}

/// How a sink answered one try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkAnswer {
    /// Accepted; for Better Stack, the id of the incident it made.
    Accepted { answer: String, external_id: Option<String> },
    /// Worth another try: no answer, 408, 429 or 5xx.
    Retry { answer: String },
    /// Refused for good: another 4xx, or a sink that is not configured.
    Refused { answer: String },
}

/// Waits between tries of a notification: a sink down for a day is still told once it is back.
pub const NOTIFY_RETRY_SECONDS: [i64; 12] = [10, 30, 60, 300, 900, 1800, 3600, 3600, 3600, 3600, 7200, 43_200];

impl Notification {
    /// What one try's answer does to the notification.
    pub fn answered(&mut self, answer: &SinkAnswer, now: Timestamp) {
        self.tries += 1;
        match answer {
            SinkAnswer::Accepted { answer, .. } => {
                self.last_answer = Some(answer.clone());
                self.state = NotifyState::Sent { at: now };
            }
            SinkAnswer::Refused { answer } => {
                self.last_answer = Some(answer.clone());
                self.state = NotifyState::Failed { at: now };
            }
            SinkAnswer::Retry { answer } => {
                self.last_answer = Some(answer.clone());
                self.state = match NOTIFY_RETRY_SECONDS.get(self.tries as usize - 1) {
                    Some(wait) => NotifyState::Pending { next_at: now.plus_millis(wait * 1000) },
                    None => NotifyState::Failed { at: now },
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_retry_on_the_schedule_then_fail() {
        let now = Timestamp::from_millis(0);
        let mut n = Notification::due(SinkKind::Webhook, NotifyAction::Trigger, now);
        n.answered(&SinkAnswer::Retry { answer: "500".into() }, now);
        assert_eq!(n.next_at(), Some(Timestamp::from_millis(10_000)));
        for _ in 1..NOTIFY_RETRY_SECONDS.len() {
            n.answered(&SinkAnswer::Retry { answer: "500".into() }, now);
        }
        assert!(n.next_at().is_some(), "one wait per entry of the schedule");
        n.answered(&SinkAnswer::Retry { answer: "500".into() }, now);
        assert_eq!(n.state, NotifyState::Failed { at: now });
        let mut r = Notification::due(SinkKind::Webhook, NotifyAction::Trigger, now);
        r.answered(&SinkAnswer::Refused { answer: "400".into() }, now);
        assert!(matches!(r.state, NotifyState::Failed { .. }));
    }
}
