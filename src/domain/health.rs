//! The health of a subscription, computed from its rolled-up counters: volumes, success rates, latency, and
//! the rules that raise a banner. Pure arithmetic; storage decides which rollups to read.

use serde::{Deserialize, Serialize};

use super::incident::Thresholds;
use super::{SubscriptionStatus, Timestamp};

/// Latency histogram buckets: bucket 0 holds attempts under 1 ms, bucket `i` those under `2^i` ms, the
/// last one everything slower (about 65 s and up). Fixed, so minute rows add up into hours and days.
pub const LATENCY_BUCKETS: usize = 18;

/// What happened to one subscription in one period (a minute or an hour). Fields are added as the features
/// that count them land; rows written before read the new fields as zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    /// Deliveries stored (duplicates excluded).
    pub received: u64,
    /// Repeats of an already stored delivery, answered 200 and not stored again.
    pub duplicates: u64,
    /// Sum of body sizes of the stored deliveries.
    pub bytes: u64,
    /// Deliveries that reached a successful end in this period: kept (destination `store`) or accepted by
    /// their destination.
    pub succeeded: u64,
    /// Deliveries that failed for good in this period (retries exhausted).
    pub failed: u64,
    /// Attempts to hand a delivery to its destination, and how many of them failed.
    pub attempts: u64,
    pub attempt_failures: u64,
    /// Sum of attempt latencies, for the average.
    pub latency_ms_sum: u64,
    /// Attempt latencies by bucket (see [`LATENCY_BUCKETS`]); trailing empty buckets are left out.
    pub latency_buckets: Vec<u64>,
}

impl Counters {
    pub fn add(&mut self, other: &Counters) {
        self.received += other.received;
        self.duplicates += other.duplicates;
        self.bytes += other.bytes;
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.attempts += other.attempts;
        self.attempt_failures += other.attempt_failures;
        self.latency_ms_sum += other.latency_ms_sum;
        if self.latency_buckets.len() < other.latency_buckets.len() {
            self.latency_buckets.resize(other.latency_buckets.len(), 0);
        }
        for (mine, theirs) in self.latency_buckets.iter_mut().zip(&other.latency_buckets) {
            *mine += theirs;
        }
    }

    /// Counts one attempt that took `ms`.
    pub fn record_latency(&mut self, ms: u32) {
        let bucket = latency_bucket(ms);
        if self.latency_buckets.len() <= bucket {
            self.latency_buckets.resize(bucket + 1, 0);
        }
        self.latency_buckets[bucket] += 1;
        self.latency_ms_sum += u64::from(ms);
    }

    fn latency_count(&self) -> u64 {
        self.latency_buckets.iter().sum()
    }

    pub fn avg_latency_ms(&self) -> Option<u32> {
        let n = self.latency_count();
        (n > 0).then(|| u32::try_from(self.latency_ms_sum / n).unwrap_or(u32::MAX))
    }

    /// The `p`-th percentile (0 < p ≤ 1) of attempt latency, as the upper bound of the bucket it falls in:
    /// an overestimate by less than a factor of two.
    pub fn latency_percentile_ms(&self, p: f64) -> Option<u32> {
        let n = self.latency_count();
        if n == 0 {
            return None;
        }
        let rank = ((n as f64) * p).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, count) in self.latency_buckets.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(bucket_upper_ms(i));
            }
        }
        Some(bucket_upper_ms(LATENCY_BUCKETS - 1))
    }

    /// Successful ends over all ends; `None` when nothing ended.
    pub fn success_rate(&self) -> Option<f64> {
        let ended = self.succeeded + self.failed;
        (ended > 0).then(|| self.succeeded as f64 / ended as f64)
    }
}

pub fn latency_bucket(ms: u32) -> usize {
    // 0 → 0, 1 → 1, 2..=3 → 2, 4..=7 → 3, …: the number of bits.
    ((u32::BITS - ms.leading_zeros()) as usize).min(LATENCY_BUCKETS - 1)
}

fn bucket_upper_ms(bucket: usize) -> u32 {
    if bucket == 0 { 1 } else { 1u32 << bucket.min(31) }
}

/// Health figures of one subscription as of `now`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    pub last_delivery_at: Option<Timestamp>,
    pub deliveries_24h: u64,
    pub deliveries_1h: u64,
    pub duplicates_24h: u64,
    pub success_rate_24h: Option<f64>,
    pub success_rate_1h: Option<f64>,
    pub consecutive_failures: u32,
    /// Attempts to hand deliveries to the destination over the last 60 minutes.
    pub attempts_1h: u64,
    pub avg_latency_ms_24h: Option<u32>,
    pub p95_latency_ms_24h: Option<u32>,
    /// Deliveries per hour over the last 24 hours, oldest first; the last is the current hour so far.
    pub hourly_24h: Vec<u64>,
    /// The counters of the last 24 hours together, for figures across subscriptions.
    pub totals_24h: Counters,
    /// The last attempts to hand its deliveries to the destination, oldest first: its failure timeline.
    pub recent_attempts: Vec<AttemptMark>,
    /// Why this subscription needs attention, as [`Health::judge`] decided against its thresholds.
    pub degraded: Vec<Degraded>,
}

/// How many attempts the failure timeline shows.
pub const TIMELINE_ATTEMPTS: usize = 20;

/// One attempt on a failure timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptMark {
    pub started_at: Timestamp,
    pub response_code: Option<u16>,
    pub succeeded: bool,
}

/// Hours of history in [`Health::hourly_24h`].
pub const HOURS: u64 = 24;
/// Minutes in the short window.
pub const MINUTES: u64 = 60;

impl Health {
    /// `hours` are `(hour since the epoch, counters)` rows for the 24 hours ending with `now`'s hour,
    /// `minutes` the `(minute since the epoch, counters)` rows for the 60 minutes ending with `now`'s minute;
    /// rows outside those windows are ignored, missing ones count as zero.
    pub fn from_rollups(
        now: Timestamp,
        hours: &[(u64, Counters)],
        minutes: &[(u64, Counters)],
        last_delivery_at: Option<Timestamp>,
        consecutive_failures: u32,
    ) -> Self {
        let this_hour = now.minute() / 60;
        let first_hour = this_hour.saturating_sub(HOURS - 1);
        let mut hourly_24h = vec![0; HOURS as usize];
        let mut day = Counters::default();
        for (hour, c) in hours.iter().filter(|(h, _)| (first_hour..=this_hour).contains(h)) {
            // Before the first 24 hours since the epoch the window starts at hour 0: align to the end.
            let slot = (HOURS - 1 - (this_hour - hour)) as usize;
            hourly_24h[slot] += c.received;
            day.add(c);
        }
        let this_minute = now.minute();
        let first_minute = this_minute.saturating_sub(MINUTES - 1);
        let mut hour = Counters::default();
        for (_, c) in minutes.iter().filter(|(m, _)| (first_minute..=this_minute).contains(m)) {
            hour.add(c);
        }
        Self {
            last_delivery_at,
            deliveries_24h: day.received,
            deliveries_1h: hour.received,
            duplicates_24h: day.duplicates,
            success_rate_24h: day.success_rate(),
            success_rate_1h: hour.success_rate(),
            consecutive_failures,
            attempts_1h: hour.attempts,
            avg_latency_ms_24h: day.avg_latency_ms(),
            p95_latency_ms_24h: day.latency_percentile_ms(0.95),
            hourly_24h,
            totals_24h: day,
            recent_attempts: Vec::new(),
            degraded: Vec::new(),
        }
    }

    /// Decides, against the subscription's thresholds, which degradation rules hold: more than N consecutive
    /// failed attempts, or a success rate under the threshold over the last hour once that hour holds enough
    /// attempts. The status, the banners and the incidents all read this one decision.
    pub fn judge(&mut self, t: &Thresholds) {
        let mut out = Vec::new();
        if self.consecutive_failures > t.consecutive_failures {
            out.push(Degraded::FailureStreak { count: self.consecutive_failures, limit: t.consecutive_failures });
        }
        if let Some(rate) = self.success_rate_1h
            && rate < t.success_rate
            && self.attempts_1h >= t.min_attempts
        {
            out.push(Degraded::LowSuccessRate { rate, threshold: t.success_rate, attempts: self.attempts_1h });
        }
        self.degraded = out;
    }

    /// The status a subscription shows, given the one stored: `failing` exactly while a degradation rule
    /// holds, and `active` again by itself once it no longer does. Paused, discovered, expiring and
    /// handshake-failed subscriptions show what is stored.
    pub fn status(&self, stored: SubscriptionStatus) -> SubscriptionStatus {
        match stored {
            SubscriptionStatus::Active | SubscriptionStatus::Failing if self.degraded.is_empty() => {
                SubscriptionStatus::Active
            }
            SubscriptionStatus::Active | SubscriptionStatus::Failing => SubscriptionStatus::Failing,
            other => other,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Degraded {
    /// More than `limit` attempts in a row failed.
    FailureStreak { count: u32, limit: u32 },
    /// Under `threshold` of the deliveries that ended in the last hour succeeded, over `attempts` attempts.
    LowSuccessRate { rate: f64, threshold: f64, attempts: u64 },
}

impl Degraded {
    /// A stable code for the API.
    pub const fn code(self) -> &'static str {
        match self {
            Self::FailureStreak { .. } => "failure_streak",
            Self::LowSuccessRate { .. } => "low_success_rate",
        }
    }

    /// The alert rule that watches this condition.
    pub const fn rule(self) -> super::incident::Rule {
        match self {
            Self::FailureStreak { .. } => super::incident::Rule::ConsecutiveFailures,
            Self::LowSuccessRate { .. } => super::incident::Rule::SuccessRate,
        }
    }

    pub fn message(self) -> String {
        match self {
            Self::FailureStreak { count, limit } => format!("{count} consecutive failed attempts (more than {limit})"),
            Self::LowSuccessRate { rate, threshold, attempts } => format!(
                "{:.1} % of deliveries succeeded in the last hour (under {:.0} %, over {attempts} attempts)",
                rate * 100.0,
                threshold * 100.0
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hour: u64, minute: u64) -> Timestamp {
        Timestamp::from_millis(((hour * 60 + minute) * 60_000) as i64)
    }

    #[test]
    fn latency_buckets_are_powers_of_two() {
        assert_eq!([0, 1, 2, 3, 4, 7, 8, 1000].map(latency_bucket), [0, 1, 2, 2, 3, 3, 4, 10]);
        assert_eq!(latency_bucket(u32::MAX), LATENCY_BUCKETS - 1);
        let mut c = Counters::default();
        for ms in [10, 20, 30, 40, 50, 60, 70, 80, 90, 1000] {
            c.record_latency(ms);
        }
        assert_eq!(c.avg_latency_ms(), Some(145));
        // Ten attempts: the 95th percentile is the slowest, 1000 ms, in the bucket below 1024 ms.
        assert_eq!(c.latency_percentile_ms(0.95), Some(1024));
        // The median, 50 ms, in the bucket below 64 ms.
        assert_eq!(c.latency_percentile_ms(0.5), Some(64));
        assert_eq!(Counters::default().latency_percentile_ms(0.95), None);
    }

    #[test]
    fn counters_add_up_including_histograms_of_different_lengths() {
        let mut a = Counters { received: 1, succeeded: 1, ..Counters::default() };
        a.record_latency(3);
        let mut b = Counters { received: 2, failed: 1, ..Counters::default() };
        b.record_latency(500);
        a.add(&b);
        assert_eq!((a.received, a.succeeded, a.failed, a.latency_ms_sum), (3, 1, 1, 503));
        assert_eq!(a.latency_buckets.iter().sum::<u64>(), 2);
        assert_eq!(a.success_rate(), Some(0.5));
    }

    #[test]
    fn health_reads_the_right_windows() {
        let now = at(1000, 30);
        let c = |received, succeeded, failed| Counters {
            received,
            succeeded,
            failed,
            attempts: received * 2,
            ..Counters::default()
        };
        let hours = [
            (976, c(99, 99, 0)), // 24 hours before this hour: outside the window
            (977, c(10, 10, 0)),
            (999, c(20, 18, 2)),
            (1000, c(5, 4, 1)),
        ];
        let minutes = [
            (1000 * 60 + 30 - 60, c(7, 7, 0)), // 60 minutes ago: outside
            (1000 * 60 + 30 - 59, c(3, 1, 2)),
            (1000 * 60 + 30, c(2, 2, 0)),
        ];
        let h = Health::from_rollups(now, &hours, &minutes, Some(at(1000, 29)), 0);
        assert_eq!(h.deliveries_24h, 35);
        assert_eq!(h.deliveries_1h, 5);
        assert_eq!(h.success_rate_24h, Some(32.0 / 35.0));
        assert_eq!(h.success_rate_1h, Some(3.0 / 5.0));
        assert_eq!(h.hourly_24h.len(), 24);
        assert_eq!((h.hourly_24h[0], h.hourly_24h[22], h.hourly_24h[23]), (10, 20, 5));
        assert_eq!(h.attempts_1h, 10);
        let judged = |mut h: Health, t: &Thresholds| {
            h.judge(t);
            h.degraded
        };
        let seed = Thresholds::default();
        assert_eq!(
            judged(h.clone(), &seed),
            vec![Degraded::LowSuccessRate { rate: 0.6, threshold: 0.9, attempts: 10 }]
        );
        assert!(
            judged(h, &Thresholds { min_attempts: 11, ..seed }).is_empty(),
            "too few attempts in the hour to judge the rate"
        );

        let streak = Health::from_rollups(now, &[], &[], None, 6);
        assert_eq!(judged(streak.clone(), &seed), vec![Degraded::FailureStreak { count: 6, limit: 5 }]);
        assert!(judged(streak.clone(), &Thresholds { consecutive_failures: 6, ..seed }).is_empty());
        assert_eq!(streak.success_rate_1h, None, "nothing ended: no rate, and no banner for it");
        assert!(judged(Health::from_rollups(now, &[], &[], None, 5), &seed).is_empty());
    }

    #[test]
    fn the_first_day_since_the_epoch_does_not_underflow() {
        let h = Health::from_rollups(at(2, 0), &[(0, Counters { received: 4, ..Counters::default() })], &[], None, 0);
        assert_eq!(h.hourly_24h[21], 4);
    }

    #[test]
    fn failing_is_what_the_rules_say_and_clears_by_itself() {
        use crate::domain::SubscriptionStatus::{Active, Discovered, Failing, Paused};
        let judged = |consecutive_failures, rate| {
            let mut h =
                Health { consecutive_failures, success_rate_1h: Some(rate), attempts_1h: 10, ..Health::default() };
            h.judge(&Thresholds::default());
            h
        };
        let (healthy, streak, rate) = (judged(5, 0.9), judged(6, 0.9), judged(5, 0.89));
        assert_eq!((healthy.status(Active), healthy.status(Failing)), (Active, Active), "clears by itself");
        assert_eq!((streak.status(Active), rate.status(Active)), (Failing, Failing));
        assert_eq!((streak.status(Paused), rate.status(Discovered)), (Paused, Discovered), "kept as stored");
    }
}
