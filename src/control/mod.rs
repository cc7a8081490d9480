//! Control-plane operations that change subscriptions: validating what operators ask for, sealing secrets,
//! writing storage, and keeping the ingest registry in step with what was committed.

pub mod backups;
pub mod bulk;
mod declared;
mod destinations;
pub mod erasures;
pub mod queue;
mod redacts;
mod retention;
mod secrets;
pub mod subscriptions;
mod versions;

pub use declared::DeclaredSubscription;
pub use queue::{DestinationState, ReplayError};
pub use subscriptions::{
    Control, ControlError, ControlOptions, Created, DestinationPatch, Rotated, SubscriptionSpec, validate_url,
};
