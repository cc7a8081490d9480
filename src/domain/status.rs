use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a delivery is on its way to the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Stored and waiting for its first attempt.
    Queued,
    Processing,
    Succeeded,
    /// An attempt failed and another is scheduled.
    Retrying,
    /// Every attempt failed.
    Failed,
    /// The destination is `store`: kept for consumers that pull through the API.
    Stored,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 6] = [
        DeliveryStatus::Queued,
        DeliveryStatus::Processing,
        DeliveryStatus::Succeeded,
        DeliveryStatus::Retrying,
        DeliveryStatus::Failed,
        DeliveryStatus::Stored,
    ];

    /// Its own job is live: a replay now would send it twice, side by side.
    pub const fn attempts_under_way(self) -> bool {
        matches!(self, DeliveryStatus::Queued | DeliveryStatus::Processing | DeliveryStatus::Retrying)
    }

    /// Why a replay of a delivery in this status would be refused, if it would, when its subscription
    /// `forwards` now or not: its own attempts are under way, or there is no destination to replay to. The
    /// replay itself decides by the same two facts.
    pub const fn replay_refusal(self, forwards: bool) -> Option<&'static str> {
        if self.attempts_under_way() {
            Some("Its own attempts are under way: replay it once it has succeeded or failed.")
        } else if !forwards {
            Some("Its subscription keeps its deliveries: there is no destination to replay to.")
        } else {
            None
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Queued => "queued",
            DeliveryStatus::Processing => "processing",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Stored => "stored",
        }
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeliveryStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeliveryStatus::ALL.into_iter().find(|v| v.as_str() == s).ok_or_else(|| {
            format!(
                "unknown delivery status `{s}` (expected one of: queued, processing, succeeded, retrying, failed, stored)"
            )
        })
    }
}

/// The state of a subscription as operators see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Active,
    /// An alert rule is breached.
    Failing,
    HandshakeFailed,
    /// The provider-side channel is close to its expiry.
    Expiring,
    /// The destination is paused: deliveries are kept and held until resumed.
    Paused,
    /// Verified traffic arrived for a topic nobody registered; kept for an operator to adopt.
    Discovered,
}

impl SubscriptionStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::Failing => "failing",
            SubscriptionStatus::HandshakeFailed => "handshake_failed",
            SubscriptionStatus::Expiring => "expiring",
            SubscriptionStatus::Paused => "paused",
            SubscriptionStatus::Discovered => "discovered",
        }
    }
}

impl fmt::Display for SubscriptionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
