use std::fmt;

use serde::{Deserialize, Serialize};

/// Why an inbound request was not accepted as a delivery. The names are stable: they appear in the API,
/// in the rejection counters and in problem documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCause {
    /// No signature or token was sent.
    SignatureMissing,
    /// A signature or token was sent and does not match any secret held for the subscription.
    SignatureInvalid,
    /// The signed timestamp is outside the allowed tolerance (replayed or clock-skewed request).
    TimestampOutOfTolerance,
    /// No subscription matches the request.
    UnknownSubscription,
    /// The body is larger than the configured limit.
    PayloadTooLarge,
    EmptyBody,
    /// A header the provider always sends is absent.
    HeaderMissing,
    /// A header is present but cannot be read.
    HeaderMalformed,
    /// The body cannot be read where the provider's format requires it (Zoho channel notifications).
    BodyMalformed,
    /// The request was verified but storage could not commit it; the provider will retry.
    StorageUnavailable,
}

impl RejectCause {
    pub const ALL: [RejectCause; 10] = [
        RejectCause::SignatureMissing,
        RejectCause::SignatureInvalid,
        RejectCause::TimestampOutOfTolerance,
        RejectCause::UnknownSubscription,
        RejectCause::PayloadTooLarge,
        RejectCause::EmptyBody,
        RejectCause::HeaderMissing,
        RejectCause::HeaderMalformed,
        RejectCause::BodyMalformed,
        RejectCause::StorageUnavailable,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            RejectCause::SignatureMissing => "signature_missing",
            RejectCause::SignatureInvalid => "signature_invalid",
            RejectCause::TimestampOutOfTolerance => "timestamp_out_of_tolerance",
            RejectCause::UnknownSubscription => "unknown_subscription",
            RejectCause::PayloadTooLarge => "payload_too_large",
            RejectCause::EmptyBody => "empty_body",
            RejectCause::HeaderMissing => "header_missing",
            RejectCause::HeaderMalformed => "header_malformed",
            RejectCause::BodyMalformed => "body_malformed",
            RejectCause::StorageUnavailable => "storage_unavailable",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for RejectCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
