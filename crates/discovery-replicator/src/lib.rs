//! Replication between discovery servers: every node pushes its own writes to every peer
//! and periodically reconciles with each peer through digests, so the cluster converges
//! the way airlift's DistributedStore intends, without its gaps (lost pushes, a pull that
//! never works, full-state exchanges every minute). `docs/REPLICATION.md` describes the
//! protocol and its guarantees.
//!
//! * [`peers`] / [`inventory`]: who the peers are, from the airlift service inventory.
//! * [`queue`], [`plan`]: pure decisions (what to push next, what to fetch or send).
//! * [`responder`]: the answering side, shared by the HTTP handlers and the simulator.
//! * [`transport`]: how peers are reached — [`HttpTransport`] for real,
//!   [`sim::SimNetwork`] in process with faults.
//! * [`Replicator`]: the driver (push workers, anti-entropy rounds, shutdown).

mod anti_entropy;
mod config;
pub mod convert;
mod http_transport;
pub mod inventory;
mod link;
pub mod peers;
pub mod plan;
mod push;
pub mod queue;
mod replicator;
pub mod responder;
pub mod sim;
pub mod transport;

use std::sync::Arc;

pub use anti_entropy::{reconcile, SyncOutcome};
pub use config::{backoff_delay, ReplicatorConfig};
pub use http_transport::HttpTransport;
pub use peers::Peer;
pub use replicator::{CatchUp, ReplicatedStore, Replicator, ReplicatorHandle, ReplicatorStatus};
pub use transport::{DigestAnswer, PeerTransport, TransportError, READY_HEADER};

/// Checks an entry received from a peer; `Err` says why it is refused.
pub type Validator = Arc<dyn Fn(&discovery_store::Entry) -> Result<(), String> + Send + Sync>;

/// Where the replicator is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Running,
    /// Shutting down: no new work, push queues empty out.
    Draining,
}
