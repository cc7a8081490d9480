//! Integration tests: the real server on 127.0.0.1:0 with a real redb file in a temporary directory,
//! spoken to over HTTP. One binary, one module per area.

// A panic in a test is a failed assertion with a line number; helpers outside #[test] fns count too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod alerts;
mod api;
mod apidoc;
mod auth;
mod bulk;
mod clock;
mod container;
mod dashboard;
mod demo;
mod drift;
mod erasures;
mod faults;
mod full_disk;
mod handshakes;
mod openapi;
mod operations;
mod pages;
mod process;
mod queue;
mod replay_actions;
mod retention;
mod rotation;
mod search;
mod security;
mod settings;
mod shopify;
mod signin;
mod sigterm;
mod standard;
mod storage;
mod support;
mod zoho;
