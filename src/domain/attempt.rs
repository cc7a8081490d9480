//! Attempts: one try at handing a delivery to its destination, and the schedule retries follow.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{DeliveryId, Timestamp};

/// How much of a destination's answer is kept with an attempt: enough to read an error message.
pub const EXCERPT_BYTES: usize = 1024;

/// Why an attempt got no answer, or a failing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// No whole answer within the destination's timeout.
    Timeout,
    /// No connection: refused, unreachable, DNS or TLS failure.
    Connect,
    /// An answer that is not 2xx.
    Http,
    /// Hookplane could not make the attempt (its stored body failed its digest, the delivery is gone).
    Internal,
}

impl ErrorClass {
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Timeout => "timeout",
            ErrorClass::Connect => "connect",
            ErrorClass::Http => "http",
            ErrorClass::Internal => "internal",
        }
    }
}

/// What one attempt found, before it is filed under its delivery.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tried {
    pub started_at: Timestamp,
    pub response_code: Option<u16>,
    pub latency_ms: u32,
    pub error: Option<(ErrorClass, String)>,
    /// The start of the answer's body, as text, at most [`EXCERPT_BYTES`].
    pub excerpt: String,
    /// The version the destination named in its answer's version header.
    pub version: Option<String>,
}

/// One attempt as stored: numbered from 1 per delivery, across automatic retries and replays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub delivery_id: DeliveryId,
    pub number: u32,
    pub started_at: Timestamp,
    pub response_code: Option<u16>,
    pub latency_ms: u32,
    pub error_class: Option<ErrorClass>,
    pub error: Option<String>,
    pub excerpt: String,
    /// `provider` for the first run and its retries; the operator's label for a replay.
    pub initiated_by: String,
    /// What the queue did next.
    pub next: FollowUp,
    /// The version the destination named in its answer.
    #[serde(default)]
    pub version: Option<String>,
}

/// What followed an attempt, as its record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUp {
    Delivered,
    Retry,
    Paused,
    GaveUp,
}

impl FollowUp {
    pub const fn as_str(self) -> &'static str {
        match self {
            FollowUp::Delivered => "delivered",
            FollowUp::Retry => "retry",
            FollowUp::Paused => "paused",
            FollowUp::GaveUp => "gave_up",
        }
    }
}

impl Attempt {
    pub fn new(delivery_id: DeliveryId, number: u32, tried: Tried, initiated_by: &str, next: FollowUp) -> Self {
        let (error_class, error) = match tried.error {
            Some((c, e)) => (Some(c), Some(e)),
            None => (None, None),
        };
        Attempt {
            delivery_id,
            number,
            started_at: tried.started_at,
            response_code: tried.response_code,
            latency_ms: tried.latency_ms,
            error_class,
            error,
            excerpt: tried.excerpt,
            initiated_by: initiated_by.to_owned(),
            next,
            version: tried.version,
        }
    }

    pub fn succeeded(&self) -> bool {
        self.response_code.is_some_and(|c| (200..300).contains(&c))
    }
}

/// When retries happen: a wait before each one, each stretched or shortened at random by up to
/// `jitter_percent`, so deliveries that failed together do not retry together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    pub delays: Vec<Duration>,
    pub jitter_percent: u8,
}

impl RetrySchedule {
    /// Attempts in all: the first, then one per wait.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len()).unwrap_or(u32::MAX - 1) + 1
    }

    /// The wait after attempt `made` (1 for the first) failed, or `None` when it was the last. `unit` is a
    /// random number in `[0, 1)`: 0 gives the shortest wait, 1 the longest.
    pub fn after(&self, made: u32, unit: f64) -> Option<Duration> {
        let base = *self.delays.get(usize::try_from(made).ok()?.checked_sub(1)?)?;
        let spread = f64::from(self.jitter_percent) / 100.0;
        let factor = 1.0 - spread + 2.0 * spread * unit.clamp(0.0, 1.0);
        Some(base.mul_f64(factor.max(0.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(secs: &[u64], jitter: u8) -> RetrySchedule {
        RetrySchedule { delays: secs.iter().map(|s| Duration::from_secs(*s)).collect(), jitter_percent: jitter }
    }

    #[test]
    fn the_schedule_runs_out_after_its_waits() {
        let s = schedule(&[60, 300], 0);
        assert_eq!(s.max_attempts(), 3);
        assert_eq!(s.after(1, 0.5), Some(Duration::from_secs(60)));
        assert_eq!(s.after(2, 0.9), Some(Duration::from_secs(300)));
        assert_eq!(s.after(3, 0.5), None, "the third attempt was the last");
        assert_eq!(s.after(0, 0.5), None);
        assert_eq!(schedule(&[], 0).max_attempts(), 1, "no waits: one attempt");
    }

    #[test]
    fn jitter_stays_within_its_share() {
        let s = schedule(&[100], 20);
        assert_eq!(s.after(1, 0.0), Some(Duration::from_secs(80)));
        assert_eq!(s.after(1, 1.0), Some(Duration::from_secs(120)));
        assert_eq!(s.after(1, 0.5), Some(Duration::from_secs(100)));
    }
}
