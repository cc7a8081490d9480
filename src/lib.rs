//! Hookplane: a webhooks control plane in one binary.
//!
//! The layers, inside out: `domain` (plain types and rules) and `connectors` (provider verification) do no
//! I/O; `storage` (redb), `ingest` (the write path) and `control` (subscription changes) are built on them;
//! `loader` is the read model the API and the dashboard share; `views` renders it as HTML; `http` and
//! `cli` are the edges; `app` wires everything together.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod connectors;
pub mod contract;
pub mod control;
pub mod demo;
pub mod domain;
pub mod hex;
pub mod http;
pub mod ingest;
pub mod jobs;
pub mod loader;
pub mod search;
pub mod secrets;
pub mod storage;
pub mod task;
pub mod views;
