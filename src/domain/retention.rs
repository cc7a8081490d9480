//! Retention: how long a delivery is kept, and how long its dedupe key outlives it. A delivery past its
//! retention is deleted whole (payload, attempts, replays, search document); its rollup counts stay. Its
//! dedupe key is kept on, without anything else, while its provider may still send it again, so a late
//! retry is still recognised as a repeat rather than stored a second time.

use serde::{Deserialize, Serialize};

use super::{Delivery, Source, Timestamp};

pub const MIN_DAYS: u32 = 1;
pub const MAX_DAYS: u32 = 30;
pub const DEFAULT_DAYS: u32 = 7;
const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// How long each provider may send a delivery again after it first arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryWindows {
    /// Shopify retries 8 times over 4 hours.
    pub shopify_hours: u32,
    /// Zoho does not document its retries; configurable.
    pub zoho_hours: u32,
    /// The Standard Webhooks example schedule runs about 75.5 hours.
    pub standard_hours: u32,
}

impl RetryWindows {
    pub fn of(&self, source: Source) -> i64 {
        let hours = match source {
            Source::Shopify => self.shopify_hours,
            Source::Zoho => self.zoho_hours,
            Source::Standard => self.standard_hours,
        };
        i64::from(hours) * HOUR_MS
    }

    /// The longest of them: no delivery's dedupe key is kept longer after it arrived.
    pub fn longest(&self) -> i64 {
        [Source::Shopify, Source::Zoho, Source::Standard].into_iter().map(|s| self.of(s)).max().unwrap_or(0)
    }
}

/// The dedupe key of a deleted delivery, kept until its provider can no longer send it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupeStub {
    pub dedupe_key: String,
    pub keep_until: Timestamp,
}

/// When a delivery's retention of `days` ends.
pub fn expires_at(received_at: Timestamp, days: u32) -> Timestamp {
    received_at.plus_millis(i64::from(days) * DAY_MS)
}

/// The newest arrival time a delivery kept `days` may have and be expired at `now`.
pub fn cutoff(now: Timestamp, days: u32) -> Timestamp {
    now.plus_millis(-i64::from(days) * DAY_MS)
}

/// What is kept of `d` when it is deleted at `now`: its dedupe key, while its provider may still send it.
pub fn stub(d: &Delivery, now: Timestamp, windows: &RetryWindows) -> Option<DedupeStub> {
    let keep_until = d.received_at.plus_millis(windows.of(d.source));
    let key = d.dedupe_key.as_ref()?;
    (keep_until > now).then(|| DedupeStub { dedupe_key: key.clone(), keep_until })
}

pub fn check_days(days: u32) -> Result<(), String> {
    if (MIN_DAYS..=MAX_DAYS).contains(&days) {
        Ok(())
    } else {
        Err(format!("retention must be between {MIN_DAYS} and {MAX_DAYS} days, not {days}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOWS: RetryWindows = RetryWindows { shopify_hours: 4, zoho_hours: 24, standard_hours: 76 };

    #[test]
    fn a_dedupe_key_is_kept_only_while_its_provider_may_send_again() {
        let at = Timestamp::from_millis(0);
        let mut d = Delivery {
            id: crate::domain::DeliveryId::new(at),
            subscription_id: crate::domain::SubscriptionId::new(at),
            source: Source::Standard,
            topic: "invoice.paid".to_owned(),
            provider_delivery_id: Some("1".to_owned()),
            dedupe_key: Some("sub/1".to_owned()),
            event_id: None,
            account: "billing".to_owned(),
            status: crate::domain::DeliveryStatus::Stored,
            attempt_count: 0,
            received_at: at,
            last_attempted_at: None,
            response_code: None,
            latency_ms: None,
            size_bytes: 2,
            content_type: None,
            body_sha256: String::new(),
            error_message: None,
            initiated_by: "provider".to_owned(),
            verified_with: "current".to_owned(),
            verified_fingerprint: None,
            erased: None,
        };
        let day = Timestamp::from_millis(DAY_MS);
        assert_eq!(stub(&d, day, &WINDOWS).map(|s| s.keep_until), Some(Timestamp::from_millis(76 * HOUR_MS)));
        d.source = Source::Shopify;
        assert_eq!(stub(&d, day, &WINDOWS), None, "past Shopify's four hours");
        d.dedupe_key = None;
        d.source = Source::Standard;
        assert_eq!(stub(&d, day, &WINDOWS), None, "nothing to recognise it by");
        assert_eq!(WINDOWS.longest(), 76 * HOUR_MS);
    }

    #[test]
    fn days_are_checked_and_cut_off() {
        assert!(check_days(1).is_ok() && check_days(30).is_ok());
        assert!(check_days(0).unwrap_err().contains("between 1 and 30") && check_days(31).is_err());
        assert_eq!(cutoff(Timestamp::from_millis(8 * DAY_MS), 7), Timestamp::from_millis(DAY_MS));
        assert_eq!(expires_at(Timestamp::from_millis(0), 7), Timestamp::from_millis(7 * DAY_MS));
    }
}
