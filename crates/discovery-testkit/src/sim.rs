//! A simulated cluster of whole nodes in one process, for partition and convergence tests
//! that read like the scenario: "three nodes, cut node 3, write on both sides, heal,
//! assert".
//!
//! What is real: every node is the production [`Node`] (registry, stores on the memory
//! backend, replicator, responder, GC loops, readiness), and requests go through its
//! production HTTP router, handlers and validation included. What is simulated:
//!
//! * **the network between nodes**: the replicator's [`SimNetwork`], which encodes every
//!   replication request and answer as JSON both ways and answers through the peer's
//!   production `Responder`; only the socket is missing, so link cuts, drops and delays
//!   are exact;
//! * **the client's connection**: requests are handed to the router in process
//!   (`tower::ServiceExt::oneshot`), after the path normalisation and with the client
//!   address the accept loop would add; the accept loop itself, its connection limits and
//!   TLS are not exercised here (the process suites under `tests/` do that);
//! * **time**: tokio's paused clock. All nodes share one [`TokioClock`], so entry
//!   timestamps, expiry, replication intervals, back-off and GC move with simulated time,
//!   and a run is the same every time. Run scenarios under
//!   `#[tokio::test(start_paused = true)]`; the clocks of the nodes never disagree (the
//!   clock check has nothing to measure).
//!
//! Each node also binds a real loopback port (port 0), served by the same router, for
//! anything that wants a socket ([`NodeHandle::local_addr`]); the helpers here do not use
//! it. Peers are given directly (no inventory file), every node knowing all the others.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, Response, StatusCode};
use discovery_replicator::sim::{sim_peer, SimNetwork};
use discovery_replicator::Peer;
use discovery_server::http::{normalize_path, ClientAddr};
use discovery_server::node::{Node, NodeHandle, NodeParts, Storage};
use discovery_server::registry::{ServiceIndex, StoreName};
use discovery_server::Settings;
use discovery_store::{Entry, TokioClock};
use serde_json::Value;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::wait::eventually;

/// The wall clock of a simulation when it starts (2027-01-15), in ms since the epoch.
pub const START_MS: i64 = 1_800_000_000_000;

/// How much simulated time [`SimCluster::settle`] waits for the nodes to agree: two
/// anti-entropy rounds at the default `replication-interval` (1 min).
pub const PATIENCE: Duration = Duration::from_secs(120);

/// Largest response body read, far above any answer of a test-sized cluster.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// N real nodes on the simulated network and the paused clock.
pub struct SimCluster {
    network: SimNetwork<ServiceIndex>,
    nodes: Vec<NodeHandle>,
    /// Each node's peer set, kept so the replicators follow it for the cluster's life.
    _peer_sets: Vec<watch::Sender<Arc<Vec<Peer>>>>,
}

impl SimCluster {
    /// Starts `nodes` nodes with the test settings (`Settings::for_test`).
    pub async fn start(nodes: usize) -> Self {
        Self::start_with(nodes, |_| {}).await
    }

    /// Starts `nodes` nodes, each with the test settings changed by `configure` (node ids
    /// are set afterwards: [`SimCluster::node_id`]).
    pub async fn start_with(nodes: usize, configure: impl Fn(&mut Settings)) -> Self {
        let network = SimNetwork::new();
        let clock = Arc::new(TokioClock::new(START_MS));
        let ids: Vec<String> = (0..nodes).map(node_id).collect();
        let mut handles = Vec::new();
        let mut peer_sets = Vec::new();
        for id in &ids {
            let mut settings = Settings::for_test("unused: memory storage");
            configure(&mut settings);
            settings.node_id = Some(id.clone());
            let peers: Vec<Peer> = ids
                .iter()
                .filter(|p| *p != id)
                .map(|p| sim_peer(p))
                .collect();
            let (peer_set, peers) = watch::channel(Arc::new(peers));
            let parts = NodeParts::new()
                .storage(Storage::Memory)
                .clock(clock.clone())
                .peers(peers)
                .transport(Arc::new(network.transport(id)));
            let node = Node::start_with_parts(settings, parts)
                .await
                .expect("a simulated node starts");
            // Until every node is attached, the first rounds of the earlier ones fail and
            // are retried after a back-off, as with peers that start at different times.
            network.attach(id, Arc::clone(node.registry().responder()));
            handles.push(node);
            peer_sets.push(peer_set);
        }
        SimCluster {
            network,
            nodes: handles,
            _peer_sets: peer_sets,
        }
    }

    /// The node id of node `i`: `discovery-{i}`.
    pub fn node_id(&self, i: usize) -> &str {
        self.nodes[i].node_id()
    }

    pub fn node(&self, i: usize) -> &NodeHandle {
        &self.nodes[i]
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The network, for drops, delays, nodes down and traffic counts.
    pub fn network(&self) -> &SimNetwork<ServiceIndex> {
        &self.network
    }

    /// Sends `request` to node `i`'s router and reads the whole answer.
    pub async fn send(&self, i: usize, request: Request<Body>) -> Response<Vec<u8>> {
        let mut request = normalize_path(request);
        request
            .extensions_mut()
            .insert(ClientAddr(SocketAddr::from(([127, 0, 0, 1], 0))));
        let response = match self.nodes[i].router().clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, MAX_BODY)
            .await
            .expect("the router's answer is readable");
        Response::from_parts(parts, body.to_vec())
    }

    /// `PUT /v1/announcement/{node_id}` with `body` on node `i`; the status.
    pub async fn announce(&self, i: usize, node_id: &str, body: &Value) -> StatusCode {
        let request = Request::builder()
            .method(Method::PUT)
            .uri(format!("/v1/announcement/{node_id}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .expect("a valid request");
        self.send(i, request).await.status()
    }

    /// `DELETE /v1/announcement/{node_id}` on node `i`; the status.
    pub async fn unannounce(&self, i: usize, node_id: &str) -> StatusCode {
        let request = Request::builder()
            .method(Method::DELETE)
            .uri(format!("/v1/announcement/{node_id}"))
            .body(Body::empty())
            .expect("a valid request");
        self.send(i, request).await.status()
    }

    /// The services `GET /v1/service/{service_type}` lists on node `i`; panics unless it
    /// answers 200 with a service list.
    pub async fn lookup(&self, i: usize, service_type: &str) -> Vec<Value> {
        let request = Request::builder()
            .uri(format!("/v1/service/{service_type}"))
            .body(Body::empty())
            .expect("a valid request");
        let response = self.send(i, request).await;
        let text = String::from_utf8_lossy(response.body());
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "lookup on node {i}: {text}"
        );
        let answer: Value = serde_json::from_str(&text).expect("a lookup answers JSON");
        match answer.get("services") {
            Some(Value::Array(services)) => services.clone(),
            _ => panic!("lookup on node {i} has no service list: {text}"),
        }
    }

    /// The node ids whose `service_type` services node `i` lists.
    pub async fn listed_nodes(&self, i: usize, service_type: &str) -> BTreeSet<String> {
        self.lookup(i, service_type)
            .await
            .iter()
            .filter_map(|service| service.get("nodeId")?.as_str().map(str::to_owned))
            .collect()
    }

    /// Cuts every link between nodes of different groups (indexes); a node in no group
    /// keeps its links. Replaces no earlier cut: [`SimCluster::heal`] ends them all.
    pub fn partition(&self, groups: &[&[usize]]) {
        for (g, group) in groups.iter().enumerate() {
            for other in &groups[g + 1..] {
                for &a in *group {
                    for &b in *other {
                        self.network.cut(self.node_id(a), self.node_id(b));
                    }
                }
            }
        }
    }

    /// Ends every cut.
    pub fn heal(&self) {
        self.network.heal_all();
    }

    /// Lets `duration` of simulated time pass: the runtime jumps from timer to timer,
    /// running every task in between. For ordering a scenario in time or letting rounds
    /// happen during a partition, never for waiting on a condition ([`SimCluster::settle`]).
    pub async fn advance(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    /// Whether every node holds the same unexpired entries in both stores.
    pub fn converged(&self) -> bool {
        let states: Vec<_> = self.nodes.iter().map(store_state).collect();
        states.windows(2).all(|pair| pair[0] == pair[1])
    }

    /// Waits, at most [`PATIENCE`] of simulated time, until [`SimCluster::converged`];
    /// panics with what each node holds otherwise.
    pub async fn settle(&self) {
        eventually(PATIENCE, "every node to hold the same entries", || async {
            if self.converged() {
                Ok(())
            } else {
                Err(self.nodes.iter().map(describe).collect::<Vec<_>>())
            }
        })
        .await;
    }

    /// Shuts every node down (pushes drained, bounded by `replication.drain-timeout`).
    pub async fn shutdown(self) {
        for node in self.nodes {
            node.shutdown()
                .await
                .expect("a simulated node stops cleanly");
        }
    }
}

fn node_id(i: usize) -> String {
    format!("discovery-{i}")
}

/// A node's unexpired entries, store by store, in key order.
fn store_state(node: &NodeHandle) -> Vec<Vec<Entry>> {
    StoreName::ALL
        .iter()
        .map(|&name| {
            let store = node.registry().store(name);
            let now = store.now_ms();
            let tombstone_max_age = store.config().tombstone_max_age_ms;
            store
                .entries()
                .iter()
                .filter(|entry| !entry.is_expired(now, tombstone_max_age))
                .map(|entry| (**entry).clone())
                .collect()
        })
        .collect()
}

/// What a node holds, one `store/key@version` per entry (`deleted` for a tombstone), for
/// failure messages.
fn describe(node: &NodeHandle) -> (String, Vec<String>) {
    let entries = StoreName::ALL
        .iter()
        .zip(store_state(node))
        .flat_map(|(name, entries)| {
            entries.into_iter().map(move |entry| {
                let deleted = if entry.is_tombstone() { " deleted" } else { "" };
                format!(
                    "{name}/{}@{}{deleted}",
                    String::from_utf8_lossy(&entry.key),
                    entry.version
                )
            })
        })
        .collect();
    (node.node_id().to_owned(), entries)
}
