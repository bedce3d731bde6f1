//! Replication between discovery servers: every node pushes its own writes to every peer
//! and periodically reconciles with each peer through digests, so the cluster converges
//! the way airlift's DistributedStore intends, without its gaps (lost pushes, a pull that
//! never works, full-state exchanges every minute). `docs/REPLICATION.md` describes the
//! protocol and its guarantees.
//!
//! * [`peers`] / [`inventory`] / [`dns`]: who the peers are, from the airlift service
//!   inventory or from the addresses a DNS name resolves to.
//! * [`queue`], [`plan`]: pure decisions (what to push next, what to fetch or send).
//! * [`Responder`]: the answering side and the one rule for incoming entries, shared by
//!   the HTTP handlers, the simulator and the anti-entropy pull.
//! * [`transport`]: how peers are reached — [`HttpTransport`] for real,
//!   [`sim::SimNetwork`] in process with faults.
//! * [`Replicator`]: the driver (push workers, anti-entropy rounds, shutdown).
//! * [`tls`]: the TLS trust of every outgoing client (`internal-communication.https.truststore.path`).

mod anti_entropy;
mod config;
pub mod convert;
pub mod dns;
mod http_transport;
pub mod inventory;
mod link;
pub mod peers;
pub mod plan;
mod push;
pub mod queue;
mod replicator;
mod responder;
pub mod sim;
pub mod tls;
pub mod transport;

pub use anti_entropy::{clock_offset, reconcile, SyncOutcome};
pub use config::{backoff_delay, ReplicatorConfig};
pub use http_transport::HttpTransport;
pub use peers::Peer;
pub use replicator::{CatchUp, Replicator, ReplicatorHandle, ReplicatorStatus};
pub use responder::{AnyEntry, EntryRules, RespondError, Responder};
pub use transport::{DigestAnswer, PeerTransport, TransportError, CLOCK_HEADER, READY_HEADER};
