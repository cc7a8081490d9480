//! Replays: an operator asks for a new attempt built from a delivery's stored body. They are rate-limited,
//! because a replay reaches the team's processing service as if the provider had sent the event again.

use serde::{Deserialize, Serialize};

use super::filter::DeliveryFilter;
use super::{BulkReplayId, DeliveryId, ReplayId, Timestamp};

/// At most one replay of a delivery in this window…
pub const PER_DELIVERY_WINDOW_MS: i64 = 5 * 60 * 1000;
/// …and at most [`PER_OPERATOR_LIMIT`] replays by one operator in this one.
pub const PER_OPERATOR_WINDOW_MS: i64 = 60 * 60 * 1000;
pub const PER_OPERATOR_LIMIT: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayStatus {
    /// Waiting for its attempt.
    Queued,
    /// The attempt failed; another is scheduled.
    Retrying,
    Succeeded,
    /// Every attempt failed, or the destination said 410.
    Failed,
    /// The destination is paused; the attempt waits for resume.
    Held,
}

impl ReplayStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            ReplayStatus::Queued => "queued",
            ReplayStatus::Retrying => "retrying",
            ReplayStatus::Succeeded => "succeeded",
            ReplayStatus::Failed => "failed",
            ReplayStatus::Held => "held",
        }
    }
}

/// A `webhook_replay_jobs` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replay {
    pub id: ReplayId,
    pub delivery_id: DeliveryId,
    pub requested_by: String,
    pub requested_at: Timestamp,
    pub status: ReplayStatus,
    /// The bulk replay that made it, if any.
    #[serde(default)]
    pub bulk_id: Option<BulkReplayId>,
}

/// The most deliveries one bulk replay may cover: a wider filter is refused, to be narrowed.
pub const BULK_MAX: u64 = 100_000;
/// Replays per second a bulk replay makes unless asked otherwise: slow enough that live traffic flows.
pub const BULK_DEFAULT_RATE: u32 = 10;
pub const BULK_MAX_RATE: u32 = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkStatus {
    Running,
    Done,
    Cancelled,
    /// Stopped by an error it could not get past; `error` says which.
    Failed,
}

impl BulkStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            BulkStatus::Running => "running",
            BulkStatus::Done => "done",
            BulkStatus::Cancelled => "cancelled",
            BulkStatus::Failed => "failed",
        }
    }
}

/// A bulk replay and its progress. Deliveries are taken newest first; `cursor` is the last one handled, so a
/// restart goes on from there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkReplay {
    pub id: BulkReplayId,
    pub requested_by: String,
    pub requested_at: Timestamp,
    pub filter: DeliveryFilter,
    pub rate_per_second: u32,
    /// How many deliveries matched when it started.
    pub matched: u64,
    pub replayed: u64,
    /// Replayed less than 5 minutes before, or not replayable (a subscription that keeps its deliveries).
    pub skipped: u64,
    /// Refused for another reason (a body failing its digest); the audit log and the log say which.
    pub failed: u64,
    pub status: BulkStatus,
    pub cursor: Option<DeliveryId>,
    pub finished_at: Option<Timestamp>,
    pub error: Option<String>,
}

/// Which limit refused a replay, and when it may be asked for again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    PerDelivery { retry_at: Timestamp },
    PerOperator { retry_at: Timestamp },
}

impl Limited {
    pub fn retry_at(self) -> Timestamp {
        match self {
            Limited::PerDelivery { retry_at } | Limited::PerOperator { retry_at } => retry_at,
        }
    }

    /// Whole seconds from `now` until the limit allows another replay (at least 1).
    pub fn wait_seconds(self, now: Timestamp) -> u64 {
        u64::try_from((self.retry_at().millis() - now.millis() + 999) / 1000).unwrap_or(0).max(1)
    }

    pub fn message(self, now: Timestamp) -> String {
        let wait = self.wait_seconds(now);
        match self {
            Limited::PerDelivery { .. } => {
                format!("this delivery was replayed less than 5 minutes ago; it can be replayed again in {wait} s")
            }
            Limited::PerOperator { .. } => format!(
                "you have made {PER_OPERATOR_LIMIT} replays in the last hour, the most allowed; the next is possible in {wait} s"
            ),
        }
    }
}

/// Whether a replay of a delivery may start now. `last_of_delivery` is when the delivery was last replayed
/// (by anyone); `by_operator` are the times of the operator's replays in the last hour, in any order.
pub fn check(now: Timestamp, last_of_delivery: Option<Timestamp>, by_operator: &[Timestamp]) -> Result<(), Limited> {
    if let Some(last) = last_of_delivery
        && now.millis() - last.millis() < PER_DELIVERY_WINDOW_MS
    {
        return Err(Limited::PerDelivery { retry_at: last.plus_millis(PER_DELIVERY_WINDOW_MS) });
    }
    let mut recent: Vec<i64> =
        by_operator.iter().map(|t| t.millis()).filter(|t| now.millis() - t < PER_OPERATOR_WINDOW_MS).collect();
    if recent.len() >= PER_OPERATOR_LIMIT {
        recent.sort_unstable();
        // The oldest of the last ten leaves the window first.
        let oldest = recent[recent.len() - PER_OPERATOR_LIMIT];
        return Err(Limited::PerOperator { retry_at: Timestamp(oldest + PER_OPERATOR_WINDOW_MS) });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_replay_per_delivery_per_five_minutes() {
        let now = Timestamp(10_000_000);
        assert_eq!(check(now, None, &[]), Ok(()));
        let just = Timestamp(now.millis() - 1_000);
        assert_eq!(check(now, Some(just), &[]), Err(Limited::PerDelivery { retry_at: just.plus_millis(300_000) }));
        assert_eq!(check(now, Some(Timestamp(now.millis() - 300_000)), &[]), Ok(()));
    }

    #[test]
    fn ten_replays_per_operator_per_hour() {
        let now = Timestamp(10_000_000);
        let ten: Vec<Timestamp> = (0..10).map(|i| Timestamp(now.millis() - 3_000_000 + i * 1000)).collect();
        let refused = check(now, None, &ten).unwrap_err();
        assert_eq!(refused, Limited::PerOperator { retry_at: Timestamp(now.millis() - 3_000_000 + 3_600_000) });
        assert!(refused.message(now).contains("600 s"), "{}", refused.message(now));
        assert_eq!(check(now, None, &ten[1..]), Ok(()), "nine is fine");
        let old: Vec<Timestamp> = ten.iter().map(|t| Timestamp(t.millis() - 3_600_000)).collect();
        assert_eq!(check(now, None, &old), Ok(()), "replays more than an hour ago do not count");
    }
}
