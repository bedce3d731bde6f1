//! Multi-node tests: real discoveryd processes replicating over loopback.
//!
//! Every test starts its own [`discovery_testkit::Cluster`]: nodes `n1`, `n2`, … on their
//! own `127.x.y.1` addresses (port 0), one shared inventory file reloaded every 200 ms, and
//! anti-entropy every second. "Case N" refers to the replication cases 59–70 and 72 of
//! `docs/PROTOCOL.md` ("Conformance cases"). Nothing waits a fixed time: conditions are
//! polled with a deadline, and a failure prints every node's log.

mod auth;
mod clocks;
mod convergence;
mod dns_inventory;
mod faults;
mod inventory;
mod lookup_inventory;
mod metrics;
mod pressure;
mod recovery;
mod repair;
mod rules;
mod support;
mod tls;
mod ui;
mod watch;
