//! How the replicator reaches a peer. The replicator knows nothing about HTTP routes:
//! [`HttpTransport`](crate::HttpTransport) maps these calls to `/v1/replication/...`
//! requests; [`SimNetwork`](crate::sim::SimNetwork) delivers them in process, with link
//! cuts, drops and delays, for deterministic simulations.

use std::future::Future;

use discovery_types::replication::{
    DiffRequest, DiffResponse, DigestResponse, FetchRequest, PushRequest, PushResponse,
    RangesRequest, RangesResponse, SummariesRequest, SummariesResponse,
};
use discovery_types::WireEntry;
use thiserror::Error;

use crate::peers::Peer;

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum TransportError {
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("timed out")]
    Timeout,
    #[error("answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("unreadable answer: {0}")]
    Decode(String),
}

/// An answer and what it cost on the wire (request and response bodies).
#[derive(Debug, Clone)]
pub struct Exchange<T> {
    pub body: T,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

pub type TransportResult<T> = Result<Exchange<T>, TransportError>;

/// A peer's answer to a digest request.
#[derive(Debug, Clone)]
pub struct DigestAnswer {
    /// `None` when the peer's root equals ours: the replicas agree.
    pub digest: Option<DigestResponse>,
    /// Whether the peer considers its own state complete (it is ready to answer lookups).
    /// A round with a ready peer makes this node complete too.
    pub peer_ready: bool,
    /// The peer's wall clock (ms since the epoch) when it answered, if it said.
    pub peer_clock_ms: Option<i64>,
    /// Whether the peer answers [`PeerTransport::ranges`] and [`PeerTransport::diff`]
    /// (it said so in the digest answer). Older nodes do not: they get the bucket
    /// summaries protocol, which every node keeps answering.
    pub ranges: bool,
}

/// The header in which a digest answer carries the answering node's readiness.
pub const READY_HEADER: &str = "x-discovery-ready";

/// The header in which a digest answer carries the answering node's wall clock, in ms
/// since the epoch, so every anti-entropy round also measures the clock offset.
pub const CLOCK_HEADER: &str = "x-discovery-clock";

/// On lookups of a node that requires every announcement to be signed
/// (`discovery.announcement.authentication=required`), value [`AUTHENTICATED`]: every
/// dynamic entry it lists came through a valid token. An inventory read from a lookup
/// trusts only such a node's answer (anyone could announce a `discovery` service on
/// another and become a peer that receives every entry).
pub const ANNOUNCEMENTS_HEADER: &str = "x-discovery-announcements";
/// The value of [`ANNOUNCEMENTS_HEADER`].
pub const AUTHENTICATED: &str = "authenticated";

/// One request kind per protocol step; see `docs/REPLICATION.md`.
pub trait PeerTransport: Send + Sync + 'static {
    /// Delivers changed entries and renewals; answers which renewals need their value.
    fn push(
        &self,
        peer: &Peer,
        store: &str,
        request: &PushRequest,
    ) -> impl Future<Output = TransportResult<PushResponse>> + Send;

    /// The peer's digest (none when its root equals `local_root`) and its readiness.
    fn digest(
        &self,
        peer: &Peer,
        store: &str,
        local_root: &str,
    ) -> impl Future<Output = TransportResult<DigestAnswer>> + Send;

    fn summaries(
        &self,
        peer: &Peer,
        store: &str,
        request: &SummariesRequest,
    ) -> impl Future<Output = TransportResult<SummariesResponse>> + Send;

    fn fetch(
        &self,
        peer: &Peer,
        store: &str,
        request: &FetchRequest,
    ) -> impl Future<Output = TransportResult<Vec<WireEntry>>> + Send;

    /// The hashes of the sub-ranges of differing ranges (only to a peer whose digest
    /// answer said [`DigestAnswer::ranges`]).
    fn ranges(
        &self,
        peer: &Peer,
        store: &str,
        request: &RangesRequest,
    ) -> impl Future<Output = TransportResult<RangesResponse>> + Send;

    /// Reconciles leaf ranges: what each side lacks or holds differently there (only to a
    /// peer whose digest answer said [`DigestAnswer::ranges`]).
    fn diff(
        &self,
        peer: &Peer,
        store: &str,
        request: &DiffRequest,
    ) -> impl Future<Output = TransportResult<DiffResponse>> + Send;
}
