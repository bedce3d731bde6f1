//! Test harness shared by the black-box suites (`tests/*`, the simulator's tests) and the
//! benchmarks: one place for what every suite needs, so the suites cannot drift apart.
//!
//! * [`process`]: real `discoveryd` processes on loopback, with their own data
//!   directories, stopped with SIGTERM or SIGKILL and restarted on the same data; the
//!   [`discoveryd!`] macro names the binary.
//! * [`server`]: one process with its data directory and checked HTTP helpers, for the
//!   single-node suites.
//! * [`cluster`]: several processes replicating over loopback, with a shared service
//!   inventory file, restarts, added nodes and convergence checks.
//! * [`sim`]: a simulated cluster of whole in-process nodes (the production `Node`) on
//!   the replicator's simulated network and tokio's paused clock, with partitions.
//! * [`nginx`]: a real nginx in front of them, configured from `deploy/nginx`.
//! * [`announcements`]: the JSON bodies of the announcement API.
//! * [`browser`]: a real headless Chromium over WebDriver (chromedriver), for the pages
//!   people look at.
//! * [`stub`]: stub HTTP peers (a fixed answer, or none at all) that record what they
//!   were sent; [`raw_http`]: the bit of HTTP/1.1 they speak, shared with other fakes.
//! * [`tls`]: test CAs and certificates (generated per test), keystore and CA files,
//!   and HTTPS clients that trust one CA.
//! * [`wait`]: poll a condition until a deadline instead of sleeping.
//! * [`http`]: the HTTP client to talk to test servers with (no proxy, a timeout).
//! * [`ports`]: free and closed loopback ports, where port 0 cannot be used.
//! * [`logs`]: log tails for failure messages.
//! * [`metrics`]: a parser of the Prometheus text format, for checking `/metrics`.
//! * [`values`]: the test environment, the wall clock in ms and fresh service ids.

pub mod announcements;
pub mod browser;
pub mod cluster;
pub mod http;
pub mod logs;
pub mod metrics;
pub mod nginx;
pub mod ports;
pub mod process;
pub mod raw_http;
pub mod server;
pub mod sim;
pub mod stub;
pub mod tls;
pub mod values;
pub mod wait;

pub use cluster::{Cluster, ClusterOptions, Stop};
pub use process::{DiscoveryProcess, ProcessOptions};
pub use server::{Reply, Server};
pub use sim::SimCluster;
pub use stub::Stub;
pub use values::{new_id, now_ms, ENVIRONMENT};
pub use wait::eventually;
