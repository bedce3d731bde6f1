//! End-to-end tests: real `discoveryd` processes on 127.0.0.1 (port 0), driven over HTTP.
//!
//! The cases follow section 11 of `airlift-server-protocol.md` (single-node cases 1–58 and
//! 71; replication cases 59–70 wait for the replicator), asserting our documented
//! behaviour where it deliberately differs from the Java server (DESIGN.md,
//! "Compatibility contract"). Each test starts its own server(s); nothing waits a fixed
//! time: conditions are polled with a deadline.

mod announce;
mod announce_mode;
mod bad_input;
mod config;
mod delete;
mod expiry;
mod http2;
mod lookup;
mod readiness;
mod restart;
mod static_services;
mod store;
mod support;
