//! Test harness shared by the end-to-end tests (and, later, simulations and benchmarks).
//!
//! * [`process`]: real `discoveryd` processes on loopback, with their own data
//!   directories, stopped with SIGTERM or SIGKILL and restarted on the same data.
//! * [`wait`]: poll a condition until a deadline instead of sleeping.

pub mod process;
pub mod wait;

pub use process::{DiscoveryProcess, ProcessOptions};
pub use wait::eventually;
