//! Test harness shared by the end-to-end tests and the benchmarks.
//!
//! * [`process`]: real `discoveryd` processes on loopback, with their own data
//!   directories, stopped with SIGTERM or SIGKILL and restarted on the same data.
//! * [`wait`]: poll a condition until a deadline instead of sleeping.
//! * [`cluster`]: several processes replicating over loopback, with a shared service
//!   inventory file, restarts, added nodes and convergence checks.
//! * [`nginx`]: a real nginx in front of them, configured from `deploy/nginx`.
//! * [`values`]: the wall clock in ms and fresh service ids.

pub mod cluster;
pub mod nginx;
pub mod process;
pub mod values;
pub mod wait;

pub use cluster::{Cluster, ClusterOptions, Stop};
pub use process::{DiscoveryProcess, ProcessOptions};
pub use values::{new_id, now_ms};
pub use wait::eventually;
