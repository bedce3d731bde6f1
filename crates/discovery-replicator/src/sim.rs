//! An in-process network for deterministic simulations of a cluster: nodes' stores
//! connected through [`SimTransport`]s, with links that can be cut and healed, messages
//! that can be dropped or delayed, and byte counters.
//!
//! Every request and response is serialised to JSON and parsed back, exactly as over HTTP,
//! and answered by the node's [`Responder`], as the HTTP handlers answer, so a simulation
//! exercises the production receive path (validation included); only the socket is
//! missing.
//! Run simulations on a paused tokio clock (`#[tokio::test(start_paused = true)]`) so
//! intervals, back-off and delays advance deterministically.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use discovery_store::{Index, StoreError};
use discovery_types::replication::{
    DiffRequest, DiffResponse, FetchRequest, PushRequest, PushResponse, RangesRequest,
    RangesResponse, SummariesRequest, SummariesResponse,
};
use discovery_types::WireEntry;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::peers::Peer;
use crate::responder::{RespondError, Responder};
use crate::transport::{DigestAnswer, Exchange, PeerTransport, TransportError, TransportResult};

/// The address of a simulated node.
pub fn sim_url(node_id: &str) -> String {
    format!("sim://{node_id}")
}

/// A peer entry for a simulated node.
pub fn sim_peer(node_id: &str) -> Peer {
    Peer {
        node_id: node_id.to_owned(),
        url: sim_url(node_id),
    }
}

/// Message and byte counts, per request kind.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Traffic {
    pub messages: u64,
    pub bytes: u64,
    pub by_kind: HashMap<&'static str, (u64, u64)>,
}

impl Traffic {
    fn record(&mut self, kind: &'static str, bytes: u64) {
        self.messages += 1;
        self.bytes += bytes;
        let slot = self.by_kind.entry(kind).or_default();
        slot.0 += 1;
        slot.1 += bytes;
    }

    /// Bytes of one request kind (`push`, `digest`, `summaries`, `entries`, `ranges`,
    /// `diff`), both ways.
    pub fn bytes_of(&self, kind: &str) -> u64 {
        self.by_kind.get(kind).map_or(0, |(_, bytes)| *bytes)
    }
}

struct NetState<I: Index> {
    nodes: HashMap<String, Arc<Responder<I>>>,
    down: HashSet<String>,
    not_ready: HashSet<String>,
    cut: HashSet<(String, String)>,
    drop_next: HashMap<(String, String), u32>,
    delay: HashMap<(String, String), Duration>,
    traffic: Traffic,
}

/// The simulated network. Cheap to clone; clones share state.
pub struct SimNetwork<I: Index> {
    state: Arc<Mutex<NetState<I>>>,
}

impl<I: Index> Clone for SimNetwork<I> {
    fn clone(&self) -> Self {
        SimNetwork {
            state: Arc::clone(&self.state),
        }
    }
}

impl<I: Index> Default for SimNetwork<I> {
    fn default() -> Self {
        Self::new()
    }
}

impl<I: Index> SimNetwork<I> {
    pub fn new() -> Self {
        SimNetwork {
            state: Arc::new(Mutex::new(NetState {
                nodes: HashMap::new(),
                down: HashSet::new(),
                not_ready: HashSet::new(),
                cut: HashSet::new(),
                drop_next: HashMap::new(),
                delay: HashMap::new(),
                traffic: Traffic::default(),
            })),
        }
    }

    fn state(&self) -> MutexGuard<'_, NetState<I>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Attaches (or re-attaches, after a restart) a node's answering side.
    pub fn attach(&self, node_id: &str, responder: Arc<Responder<I>>) {
        self.state().nodes.insert(node_id.to_owned(), responder);
    }

    /// A down node neither answers nor reaches anyone.
    pub fn set_down(&self, node_id: &str, down: bool) {
        let mut state = self.state();
        if down {
            state.down.insert(node_id.to_owned());
        } else {
            state.down.remove(node_id);
        }
    }

    /// Whether a node reports itself ready in digest answers (all are, unless told).
    pub fn set_ready(&self, node_id: &str, ready: bool) {
        let mut state = self.state();
        if ready {
            state.not_ready.remove(node_id);
        } else {
            state.not_ready.insert(node_id.to_owned());
        }
    }

    fn is_ready(&self, url: &str) -> bool {
        let node = url.strip_prefix("sim://").unwrap_or(url);
        !self.state().not_ready.contains(node)
    }

    /// Cuts the link between `a` and `b`, both directions.
    pub fn cut(&self, a: &str, b: &str) {
        let mut state = self.state();
        state.cut.insert((a.to_owned(), b.to_owned()));
        state.cut.insert((b.to_owned(), a.to_owned()));
    }

    pub fn heal(&self, a: &str, b: &str) {
        let mut state = self.state();
        state.cut.remove(&(a.to_owned(), b.to_owned()));
        state.cut.remove(&(b.to_owned(), a.to_owned()));
    }

    /// Splits the nodes into two sides that cannot reach each other.
    pub fn partition(&self, side_a: &[&str], side_b: &[&str]) {
        for a in side_a {
            for b in side_b {
                self.cut(a, b);
            }
        }
    }

    pub fn heal_all(&self) {
        self.state().cut.clear();
    }

    /// The next `count` requests from `from` to `to` are lost (the sender sees a timeout).
    pub fn drop_next(&self, from: &str, to: &str, count: u32) {
        *self
            .state()
            .drop_next
            .entry((from.to_owned(), to.to_owned()))
            .or_default() += count;
    }

    /// Every request from `from` to `to` takes `delay` before it is answered.
    pub fn set_delay(&self, from: &str, to: &str, delay: Duration) {
        self.state()
            .delay
            .insert((from.to_owned(), to.to_owned()), delay);
    }

    pub fn traffic(&self) -> Traffic {
        self.state().traffic.clone()
    }

    pub fn reset_traffic(&self) {
        self.state().traffic = Traffic::default();
    }

    /// The transport a node uses to reach its peers.
    pub fn transport(&self, node_id: &str) -> SimTransport<I> {
        SimTransport {
            network: self.clone(),
            from: node_id.to_owned(),
        }
    }

    /// Decides a request's fate: the target node, or the error the sender sees.
    fn route(
        &self,
        from: &str,
        peer: &Peer,
    ) -> Result<(Arc<Responder<I>>, Option<Duration>), TransportError> {
        let to = peer
            .url
            .strip_prefix("sim://")
            .ok_or_else(|| TransportError::Unreachable(format!("not a sim url: {}", peer.url)))?
            .to_owned();
        let mut state = self.state();
        let link = (from.to_owned(), to.clone());
        if state.down.contains(from) || state.down.contains(&to) || state.cut.contains(&link) {
            return Err(TransportError::Unreachable(format!(
                "{from} cannot reach {to}"
            )));
        }
        if let Some(remaining) = state.drop_next.get_mut(&link).filter(|n| **n > 0) {
            *remaining -= 1;
            return Err(TransportError::Timeout);
        }
        let delay = state.delay.get(&link).copied();
        let target = state
            .nodes
            .get(&to)
            .cloned()
            .ok_or_else(|| TransportError::Unreachable(format!("nothing listens at {to}")))?;
        Ok((target, delay))
    }

    fn count(&self, kind: &'static str, bytes: u64) {
        self.state().traffic.record(kind, bytes);
    }
}

/// One node's view of the simulated network.
pub struct SimTransport<I: Index> {
    network: SimNetwork<I>,
    from: String,
}

impl<I: Index> SimTransport<I> {
    /// Delivers one request: encode, route, wait out any delay, decode, answer with the
    /// responder, encode the answer, decode it at the sender.
    async fn exchange<Q, R, W>(
        &self,
        kind: &'static str,
        peer: &Peer,
        store: &str,
        request: &Q,
        answer: impl FnOnce(&Responder<I>, &str, Q) -> Result<W, RespondError>,
    ) -> TransportResult<R>
    where
        Q: Serialize + DeserializeOwned,
        W: Serialize,
        R: DeserializeOwned,
    {
        let sent = encode(request)?;
        let (target, delay) = self.network.route(&self.from, peer)?;
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let received_request: Q = decode(&sent)?;
        let answered = answer(&target, store, received_request).map_err(as_status)?;
        let reply = encode(&answered)?;
        self.network.count(kind, (sent.len() + reply.len()) as u64);
        Ok(Exchange {
            body: decode(&reply)?,
            bytes_sent: sent.len() as u64,
            bytes_received: reply.len() as u64,
        })
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, TransportError> {
    serde_json::to_vec(value).map_err(|e| TransportError::Decode(e.to_string()))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, TransportError> {
    serde_json::from_slice(bytes).map_err(|e| TransportError::Decode(e.to_string()))
}

/// The status the HTTP handlers answer a refusal with.
fn as_status(error: RespondError) -> TransportError {
    let status = match &error {
        RespondError::UnknownStore(_) => 404,
        RespondError::BadRequest(_) | RespondError::Invalid { .. } => 400,
        RespondError::Full { .. }
        | RespondError::Store(StoreError::Full { .. } | StoreError::Backend(_)) => 503,
    };
    TransportError::Status {
        status,
        message: error.to_string(),
    }
}

impl<I: Index> PeerTransport for SimTransport<I> {
    async fn push(
        &self,
        peer: &Peer,
        store: &str,
        request: &PushRequest,
    ) -> TransportResult<PushResponse> {
        self.exchange(
            "push",
            peer,
            store,
            request,
            |target, store, request: PushRequest| {
                target.push(store, request).map(|(_, response)| response)
            },
        )
        .await
    }

    async fn digest(
        &self,
        peer: &Peer,
        store: &str,
        local_root: &str,
    ) -> TransportResult<DigestAnswer> {
        let root = local_root.to_owned();
        let exchange = self
            .exchange(
                "digest",
                peer,
                store,
                &root,
                |target, store, root: String| {
                    let digest = target.digest(store)?;
                    Ok((digest.root != root).then_some(digest))
                },
            )
            .await?;
        Ok(Exchange {
            body: DigestAnswer {
                digest: exchange.body,
                peer_ready: self.network.is_ready(&peer.url),
                // Simulated nodes share one clock.
                peer_clock_ms: None,
                // Every simulated node runs this build.
                ranges: true,
            },
            bytes_sent: exchange.bytes_sent,
            bytes_received: exchange.bytes_received,
        })
    }

    async fn summaries(
        &self,
        peer: &Peer,
        store: &str,
        request: &SummariesRequest,
    ) -> TransportResult<SummariesResponse> {
        self.exchange(
            "summaries",
            peer,
            store,
            request,
            |target, store, request: SummariesRequest| target.summaries(store, &request),
        )
        .await
    }

    async fn fetch(
        &self,
        peer: &Peer,
        store: &str,
        request: &FetchRequest,
    ) -> TransportResult<Vec<WireEntry>> {
        self.exchange(
            "entries",
            peer,
            store,
            request,
            |target, store, request: FetchRequest| target.entries(store, &request),
        )
        .await
    }

    async fn ranges(
        &self,
        peer: &Peer,
        store: &str,
        request: &RangesRequest,
    ) -> TransportResult<RangesResponse> {
        self.exchange(
            "ranges",
            peer,
            store,
            request,
            |target, store, request: RangesRequest| target.ranges(store, &request),
        )
        .await
    }

    async fn diff(
        &self,
        peer: &Peer,
        store: &str,
        request: &DiffRequest,
    ) -> TransportResult<DiffResponse> {
        self.exchange(
            "diff",
            peer,
            store,
            request,
            |target, store, request: DiffRequest| target.diff(store, &request),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::responder::tests::{len, responder, wire};

    #[tokio::test]
    async fn pushes_pass_the_receivers_rule_as_over_http() {
        let net = SimNetwork::new();
        let there = Arc::new(responder());
        net.attach("there", Arc::clone(&there));
        let transport = net.transport("here");
        let request = PushRequest {
            entries: vec![wire("w1", "ok"), wire("x2", "ok")],
            renewals: Vec::new(),
        };
        let answer = transport
            .push(&sim_peer("there"), "dynamic", &request)
            .await
            .expect("answered");
        let refused: Vec<&[u8]> = answer
            .body
            .refused
            .iter()
            .map(|r| r.key.as_slice())
            .collect();
        assert_eq!(refused, vec![&b"x2"[..]], "the receiver's rule ran");
        assert_eq!(len(&there), 1, "the valid entry was applied");

        let unknown = transport
            .push(&sim_peer("there"), "nope", &request)
            .await
            .expect_err("no such store");
        assert!(matches!(
            unknown,
            TransportError::Status { status: 404, .. }
        ));
    }
}
