//! End-to-end tests: real `discoveryd` processes on 127.0.0.1 (port 0), driven over HTTP.
//!
//! "Case N" refers to the numbered conformance cases of `docs/PROTOCOL.md` ("Conformance
//! cases"): the single-node cases 1–58 and 71 are here, the replication cases 59–70 and 72
//! in `tests/cluster`. Where we deliberately differ from the Java server, the tests assert
//! our documented behaviour (`docs/COMPATIBILITY.md`). Each test starts its own server(s);
//! nothing waits a fixed time: conditions are polled with a deadline.

mod announce;
mod announce_mode;
mod auth;
mod bad_input;
mod config;
mod damage;
mod delete;
mod diagnostics;
mod expiry;
mod hostile;
mod http2;
mod lookup;
mod metrics;
mod readiness;
mod readme;
mod restart;
mod static_services;
mod storage;
mod store;
mod support;
mod tls;
mod ui;
mod watch;
