//! Plain types and pure rules. Nothing in here performs I/O or knows about HTTP, redb or the runtime;
//! `layers` keeps it that way.

pub mod access;
pub mod attempt;
pub mod audit;
pub mod clock;
pub mod credential;
pub mod delivery;
pub mod deploy;
pub mod erasure;
pub mod filter;
pub mod handshake;
pub mod health;
pub mod ids;
pub mod incident;
pub mod job;
pub mod notification;
pub mod rejection;
pub mod replay;
pub mod retention;
pub mod settlement;
pub mod source;
pub mod status;
pub mod subscription;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use delivery::{Delivery, Payload};
pub use ids::{BulkReplayId, DeliveryId, ErasureId, JobId, ReplayId, SubscriptionId};
pub use job::{Job, JobIndex, JobKind, JobState, Lease};
pub use rejection::RejectCause;
pub use source::Source;
pub use status::{DeliveryStatus, SubscriptionStatus};
pub use subscription::Subscription;
