//! Hookplane: a webhooks control plane in one binary.
//!
//! The layers, inside out: `secrets` (crypto), `domain` (plain records and pure rules) and `connectors`
//! (provider verification) do no I/O; `storage` (redb) writes what the domain decides; `ingest` (the write
//! path), `jobs` (the delivery queue) and `search` build on storage; `control` carries out operators'
//! changes; `loader` is the read model; `contract` is what the API and the pages share; `views` renders
//! HTML; `http` and `cli` are the edges; `app` wires everything together. The table in
//! `docs/architecture.md` says who may use whom, and `layers` holds the code to it.

pub mod alerts;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod connectors;
pub mod contract;
pub mod control;
pub mod demo;
pub mod deploys;
pub mod domain;
pub mod handshakes;
pub mod hex;
pub mod http;
pub mod ingest;
pub mod jobs;
pub mod loader;
pub mod logging;
pub mod metrics;
pub mod providers;
pub mod retention;
pub mod search;
pub mod secrets;
pub mod sinks;
pub mod storage;
pub mod task;
pub mod views;

#[cfg(test)]
mod layers;
