//! Server-rendered HTML with maud. `layout` is the only place with `<html>`; components implement `Render`;
//! pages take the same answer types the API serves (invariant 7: the HTML never shows what the API cannot).

pub mod audit;
pub mod components;
pub mod delivery;
mod demo;
pub mod erasures;
mod format;
pub mod incidents;
pub mod json;
pub mod layout;
pub mod login;
pub mod notice;
pub mod replays;
pub mod runbook;
pub mod settings;
mod subscriptions;
pub mod tokens;
pub mod webhooks;
