//! A discovery node: the airlift-compatible HTTP API over the `dynamic` and `static`
//! stores, its configuration, and the assembly that starts and stops it.
//!
//! * [`config`]: airlift-style properties into typed [`Settings`].
//! * [`registry`]: announcements to store entries and back (the domain; no HTTP).
//! * [`http`]: routes, request validation, response headers.
//! * [`readiness`]: when a (re)started node's view is complete enough to answer lookups.
//! * [`node`]: opens the data directory, starts the GC loops and the HTTP server, and
//!   shuts them down in order.
//! * [`announce_bridge`]: Trino 477+ announce mode: tracks announced URIs and learns
//!   their nodes from `/v1/info` into the dynamic store.
//! * [`telemetry`]: log setup.

pub mod announce_bridge;
pub mod clock_check;
pub mod config;
pub mod data_check;
pub mod http;
pub mod node;
mod periodic;
pub mod readiness;
pub mod registry;
pub mod storage_probe;
pub mod telemetry;

pub use config::{LoadedSettings, Settings, SettingsError};
pub use node::{Node, NodeError, NodeHandle};
