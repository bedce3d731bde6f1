//! A discovery node: the airlift-compatible HTTP API over the `dynamic` and `static`
//! stores, its configuration, and the assembly that starts and stops it.
//!
//! * [`config`]: airlift-style properties into typed [`Settings`].
//! * [`registry`]: announcements to store entries and back (the domain; no HTTP).
//! * [`http`]: routes, request validation, response headers.
//! * [`readiness`]: when a (re)started node's view is complete enough to answer lookups.
//! * [`status_page`]: the HTML of `/ui/` from a plain view model (pure).
//! * [`node`]: opens the data directory, starts the GC loops and the HTTP server, and
//!   shuts them down in order; [`NodeParts`] swaps storage, clock, listener, transport
//!   or peer set for tests and simulations.
//! * [`announce_bridge`]: Trino 477+ announce mode: tracks announced URIs and learns
//!   their nodes from `/v1/info` into the dynamic store.
//! * [`access`] and [`authenticator`]: who may call what (shared secret, operator tokens).
//! * [`diagnostics`]: a bounded memory of refused and accepted announcements per node id,
//!   for `GET /v1/diagnostics/node/{nodeId}`.
//! * [`telemetry`]: log setup.
//! * [`metrics`]: what `GET /metrics` reports; [`audit`]: the log of operator writes.

pub mod access;
pub mod announce_bridge;
pub mod audit;
pub mod authenticator;
pub mod clock_check;
pub mod config;
pub mod data_check;
pub mod diagnostics;
mod failure_log;
pub mod http;
pub mod metrics;
pub mod node;
pub mod operator_tokens;
mod periodic;
pub mod readiness;
pub mod registry;
pub mod status_page;
pub mod storage_probe;
pub mod telemetry;

pub use config::{LoadOptions, LoadedSettings, Settings, SettingsError};
pub use node::{Node, NodeError, NodeHandle, NodeParts};

/// An error and its sources on one line ("cannot read …: No such file or directory"):
/// reqwest's and rustls' own messages leave the cause out.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
