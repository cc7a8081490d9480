//! Typed identifiers. Each is a ULID (so key order is creation order) shown with a prefix that says what it
//! names: `dlv_01J…` is a delivery, `sub_01J…` a subscription.

use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};

use ulid::Ulid;

use super::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {what} id (expected `{prefix}` followed by 26 Crockford base32 characters)")]
pub struct IdParseError {
    pub what: &'static str,
    pub prefix: &'static str,
    pub value: String,
}

/// The next ULID for `ms`. The random part only grows, by a random step, whatever the millisecond: ids made in
/// one millisecond sort in the order they were made even when ids of other milliseconds were made between
/// them (clocks that disagree, requests that read the time in one order and make ids in another), and the
/// step keeps an id from telling how many were made before it. From a random start below 2^79, with steps
/// below 2^16, the part cannot pass 80 bits for 2^63 ids; if it ever would, it starts afresh.
fn monotonic(last: &Mutex<u128>, ms: u64) -> Ulid {
    const RANDOM_MASK: u128 = (1 << 80) - 1;
    let mut guard = last.lock().unwrap_or_else(PoisonError::into_inner);
    let step = 1 + u128::from(rand::random::<u16>());
    let random = match guard.checked_add(step) {
        Some(next) if *guard != 0 && next <= RANDOM_MASK => next,
        _ => rand::random::<u128>() & (RANDOM_MASK >> 1),
    };
    *guard = random;
    Ulid::from_parts(ms, random)
}

/// What every typed id shares: the prefix of its text form, which it parses from.
pub trait TypedId: FromStr<Err = IdParseError> + fmt::Display + Copy + Send + Sync + 'static {
    const PREFIX: &'static str;
}

/// The characters of a ULID's text form as `Ulid::from_string` takes them: Crockford base32, either case.
pub const ULID_CHARS: &str = "[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}";

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Ulid);

        impl $name {
            /// A new id whose time part is `at`, so ids sort by the time they were made; ids made in the
            /// same millisecond still sort in the order they were made.
            pub fn new(at: Timestamp) -> Self {
                static LAST: Mutex<u128> = Mutex::new(0);
                Self(monotonic(&LAST, u64::try_from(at.millis()).unwrap_or(0)))
            }

            pub const fn from_u128(v: u128) -> Self {
                Self(Ulid(v))
            }

            pub const fn as_u128(self) -> u128 {
                self.0.0
            }

            /// The smallest id made at `at`: every id made at `at` or later sorts at or after it, which
            /// turns a time range into a key range.
            pub fn first_at(at: Timestamp) -> Self {
                Self(Ulid::from_parts(u64::try_from(at.millis()).unwrap_or(0), 0))
            }

            /// The instant encoded in the id.
            pub fn timestamp(self) -> Timestamp {
                Timestamp::from_millis(i64::try_from(self.0.timestamp_ms()).unwrap_or(i64::MAX))
            }
        }

        impl TypedId for $name {
            const PREFIX: &'static str = $prefix;
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $prefix, self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        // Stored as the 16 bytes of the ULID: half the size of the text form and no formatting on the
        // ingest path. The API shows the prefixed text form.
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0.0.to_be_bytes())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = u128;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("16 bytes of ULID")
                    }
                    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<u128, E> {
                        <[u8; 16]>::try_from(v).map(u128::from_be_bytes).map_err(|_| E::invalid_length(v.len(), &self))
                    }
                }
                d.deserialize_bytes(V).map(Self::from_u128)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.strip_prefix($prefix)
                    .and_then(|rest| Ulid::from_string(rest).ok())
                    .map(Self)
                    .ok_or_else(|| IdParseError { what: $what, prefix: $prefix, value: s.chars().take(64).collect() })
            }
        }
    };
}

typed_id!(
    /// One verified inbound event.
    DeliveryId,
    "dlv_",
    "delivery"
);
typed_id!(
    /// One provider-side registration that sends us events.
    SubscriptionId,
    "sub_",
    "subscription"
);
typed_id!(
    /// One unit of work for the processing queue.
    JobId,
    "job_",
    "job"
);
typed_id!(
    /// One operator's request to replay a delivery.
    ReplayId,
    "rpl_",
    "replay"
);
typed_id!(
    /// One bulk replay: every delivery matching a filter, replayed in the background.
    BulkReplayId,
    "blk_",
    "bulk replay"
);
typed_id!(
    /// One privacy erasure: the payloads of every delivery matching a filter, replaced by a tombstone.
    ErasureId,
    "ers_",
    "erasure"
);
typed_id!(
    /// One API token (its id, never the token).
    TokenId,
    "tok_",
    "API token"
);

typed_id!(
    /// One person who signs in to the dashboard.
    OperatorId,
    "op_",
    "operator"
);
typed_id!(
    /// One entry of the audit log.
    AuditId,
    "aud_",
    "audit entry"
);
typed_id!(
    /// One incident: a rule holding for a subscription, from when it opened until it resolved.
    IncidentId,
    "inc_",
    "incident"
);
typed_id!(
    /// One handshake of one subscription with its provider.
    HandshakeRunId,
    "hsk_",
    "handshake"
);
typed_id!(
    /// One kept sample of a rejected request.
    RejectionId,
    "rej_",
    "rejection"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_characters_are_the_ones_an_id_parses_with() {
        let class = ULID_CHARS.trim_start_matches('[').split(']').next().unwrap_or_default().as_bytes();
        let mut ranges = Vec::new();
        let mut i = 0;
        while i < class.len() {
            if class.get(i + 1) == Some(&b'-') {
                ranges.push((class[i], class[i + 2]));
                i += 3;
            } else {
                ranges.push((class[i], class[i]));
                i += 1;
            }
        }
        let in_class = |c: u8| ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
        for c in 0u8..=127 {
            let text = format!("dlv_0{}", String::from(char::from(c)).repeat(25));
            assert_eq!(text.parse::<DeliveryId>().is_ok(), in_class(c), "{:?}", char::from(c));
        }
    }

    #[test]
    fn ids_round_trip_and_sort_by_time() {
        let a = DeliveryId::new(Timestamp(1_000));
        let b = DeliveryId::new(Timestamp(2_000));
        assert!(a < b);
        assert_eq!(a.timestamp(), Timestamp(1_000));
        let text = a.to_string();
        assert!(text.starts_with("dlv_") && text.len() == 30, "{text}");
        assert_eq!(text.parse::<DeliveryId>(), Ok(a));
        assert_eq!(DeliveryId::from_u128(a.as_u128()), a);
    }

    #[test]
    fn ids_of_one_millisecond_keep_their_order() {
        let ids: Vec<RejectionId> = (0..1000).map(|_| RejectionId::new(Timestamp(7))).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert!(ids.iter().all(|id| id.timestamp() == Timestamp(7)));
    }

    #[test]
    fn ids_of_one_millisecond_keep_their_order_with_other_milliseconds_between() {
        // Two clocks that disagree, as two servers in one test process or two requests reading the time.
        let ids: Vec<(ReplayId, ReplayId)> =
            (0..1000).map(|i| (ReplayId::new(Timestamp(7)), ReplayId::new(Timestamp(9_000 + i)))).collect();
        assert!(ids.windows(2).all(|w| w[0].0 < w[1].0), "the millisecond-7 ids in the order they were made");
    }

    #[test]
    fn ids_serialize_as_their_sixteen_bytes() {
        let id = DeliveryId::new(Timestamp(42));
        let bytes = rmp_serde::to_vec(&id).unwrap();
        assert_eq!(bytes.len(), 18, "bin8 header and 16 bytes");
        assert_eq!(rmp_serde::from_slice::<DeliveryId>(&bytes).unwrap(), id);
        assert!(rmp_serde::from_slice::<DeliveryId>(&rmp_serde::to_vec(&[1u8; 3][..]).unwrap()).is_err());
    }

    #[test]
    fn wrong_prefix_or_garbage_is_rejected() {
        let s = SubscriptionId::new(Timestamp(5)).to_string();
        let err = s.parse::<DeliveryId>().unwrap_err();
        assert_eq!(err.what, "delivery");
        assert!("dlv_not-a-ulid".parse::<DeliveryId>().is_err());
        assert!("".parse::<SubscriptionId>().is_err());
    }
}
