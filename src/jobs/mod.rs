//! The processing queue: an apalis backend over the jobs in redb, one HTTP attempt, the worker, and the
//! in-memory hand-over of fresh jobs from the ingest writer.

pub mod backend;
pub mod forward;
pub mod handoff;
pub mod worker;
