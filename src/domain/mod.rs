//! Plain types and pure rules. Nothing in here performs I/O or knows about HTTP, redb or the runtime;
//! `tests::domain_has_no_adapters` keeps it that way.

pub mod access;
pub mod attempt;
pub mod audit;
pub mod clock;
pub mod delivery;
pub mod filter;
pub mod health;
pub mod ids;
pub mod job;
pub mod rejection;
pub mod replay;
pub mod settlement;
pub mod source;
pub mod status;
pub mod subscription;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use delivery::{Delivery, Payload};
pub use ids::{BulkReplayId, DeliveryId, JobId, ReplayId, SubscriptionId};
pub use job::{Job, JobIndex, JobKind, JobState, Lease};
pub use rejection::RejectCause;
pub use source::Source;
pub use status::{DeliveryStatus, SubscriptionStatus};
pub use subscription::Subscription;

#[cfg(test)]
mod tests {
    /// The domain and the connectors must stay pure: no adapter crate may appear in their sources.
    #[test]
    fn domain_has_no_adapters() {
        let forbidden = ["poem", "redb", "tantivy", "apalis", "maud", "reqwest", "hyper", "tokio"];
        for dir in ["src/domain", "src/connectors"] {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
            for entry in std::fs::read_dir(&root).unwrap() {
                let path = entry.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap();
                for line in text.lines().map(str::trim) {
                    if !(line.starts_with("use ") || line.starts_with("pub use ")) {
                        continue;
                    }
                    for name in forbidden {
                        assert!(!line.contains(&format!("{name}::")), "{} imports {name}: `{line}`", path.display());
                    }
                }
            }
        }
    }
}
