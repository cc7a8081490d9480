//! The contract the API and the dashboard's pages share: every URL (`paths`), the API's request and
//! answer types (pages render these, so the HTML cannot show what the API does not), and who is calling
//! (`Caller`). Both `http` and `views` build on it; neither imports the other's contract.

/// An API enum mirroring a domain enum variant for variant, with conversions both ways.
macro_rules! mirror_enum {
    ($(#[$doc:meta])* $api:ident <=> $domain:path { $($v:ident),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
        #[oai(rename_all = "snake_case")]
        pub enum $api { $($v),* }

        impl From<$domain> for $api {
            fn from(v: $domain) -> Self {
                match v { $(<$domain>::$v => $api::$v),* }
            }
        }

        impl From<$api> for $domain {
            fn from(v: $api) -> Self {
                match v { $($api::$v => <$domain>::$v),* }
            }
        }
    };
}

mod admin;
mod caller;
mod dashboard;
mod deliveries;
pub mod demo;
mod deploys;
mod erasures;
mod handshakes;
mod incidents;
pub mod paths;
mod replays;
mod settings;
mod subscriptions;

use poem_openapi::Enum;

pub use admin::*;
pub use caller::Caller;
pub use dashboard::*;
pub use deliveries::*;
pub use deploys::*;
pub use erasures::*;
pub use handshakes::*;
pub use incidents::*;
pub use replays::*;
pub use settings::*;
pub use subscriptions::*;

use crate::domain::subscription::Origin;
use crate::domain::{self, RejectCause, Timestamp};

mirror_enum!(
    /// The provider that sent a delivery.
    Source <=> domain::Source { Shopify, Zoho, Standard }
);
mirror_enum!(
    /// `queued` → `processing` → `succeeded` | `retrying` → `failed`; `stored` when the destination is `store`.
    DeliveryStatus <=> domain::DeliveryStatus { Queued, Processing, Succeeded, Retrying, Failed, Stored }
);
mirror_enum!(
    SubscriptionStatus <=> domain::SubscriptionStatus { Active, Failing, HandshakeFailed, Expiring, Paused, Discovered }
);
mirror_enum!(
    /// Why an attempt failed: no whole answer in time, no connection, a non-2xx answer, or Hookplane could
    /// not make the attempt.
    AttemptErrorClass <=> crate::domain::attempt::ErrorClass { Timeout, Connect, Http, Internal }
);
mirror_enum!(
    /// Where a subscription came from: the configuration file, the API or command line, or discovery.
    SubscriptionOrigin <=> Origin { Config, Api, Discovered }
);
mirror_enum!(
    /// What a principal may do: viewers read, operators also replay, admins also manage.
    ApiRole <=> crate::domain::access::Role { Viewer, Operator, Admin }
);
mirror_enum!(
    RejectionCause <=> RejectCause {
        SignatureMissing, SignatureInvalid, TimestampOutOfTolerance, UnknownSubscription, PayloadTooLarge,
        EmptyBody, HeaderMissing, HeaderMalformed, BodyMalformed, StorageUnavailable,
    }
);

pub fn time(t: Timestamp) -> String {
    t.to_rfc3339()
}
