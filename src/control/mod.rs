//! Control-plane operations that change subscriptions: validating what operators ask for, sealing secrets,
//! writing storage, and keeping the ingest registry in step with what was committed.

pub mod bulk;
pub mod queue;
pub mod subscriptions;

pub use queue::{DestinationState, ReplayError};
pub use subscriptions::{
    Control, ControlError, ControlOptions, Created, DeclaredSubscription, DestinationPatch, Rotated, SubscriptionSpec,
};
