//! Typed helpers over the testkit's [`Cluster`]: replication status, raw entries, lookups,
//! and waits that every running node satisfies a condition. Probes return errors instead
//! of panicking so [`eventually`] can poll them; a final failure panics with the last
//! observation, and dropping the cluster while panicking prints every node's log.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use discovery_testkit::cluster::{announcement, static_announcement};
use discovery_testkit::{eventually, Cluster, ClusterOptions};
pub use discovery_testkit::{new_id, now_ms};
use discovery_types::replication::{PeerStoreStatus, ReplicationStatus};
use discovery_types::WireEntry;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Deadline for replication to reach every node.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Deadline for a restarted or added node to catch up: a few replication intervals (1 s)
/// and push back-offs, with room for a loaded machine.
pub const CATCH_UP: Duration = Duration::from_secs(15);

/// The service type the tests announce.
pub const TYPE: &str = "trino";
pub const POOL: &str = "general";

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_discoveryd")
}

/// A cluster of `nodes` with the harness defaults (inventory reload 200 ms, anti-entropy
/// every 1 s) plus `settings`.
pub async fn cluster(nodes: usize, settings: &[(&str, &str)]) -> Cluster {
    Cluster::start(binary(), nodes, settings).await
}

pub fn options(nodes: usize) -> ClusterOptions {
    ClusterOptions::new(binary(), nodes)
}

pub async fn status(c: &Cluster, i: usize) -> anyhow::Result<ReplicationStatus> {
    let value = c.status(i).await?;
    serde_json::from_value(value.clone())
        .with_context(|| format!("not a replication status: {value}"))
}

/// The state of replication from a status's node towards `peer` for `store`.
pub fn link<'a>(
    status: &'a ReplicationStatus,
    peer: &str,
    store: &str,
) -> Option<&'a PeerStoreStatus> {
    status
        .peers
        .iter()
        .find(|p| p.node_id == peer)?
        .stores
        .iter()
        .find(|s| s.store == store)
}

/// A raw store entry with its key and value as text, so failures print readably.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub key: String,
    /// `None` for a tombstone.
    pub value: Option<String>,
    pub version: i64,
    pub timestamp: i64,
    pub max_age_in_ms: Option<i64>,
}

impl From<WireEntry> for RawEntry {
    fn from(e: WireEntry) -> Self {
        RawEntry {
            key: String::from_utf8_lossy(&e.key).into_owned(),
            value: e.value.map(|v| String::from_utf8_lossy(&v).into_owned()),
            version: e.version.sequence,
            timestamp: e.timestamp,
            max_age_in_ms: e.max_age_in_ms,
        }
    }
}

pub async fn raw_entries(c: &Cluster, i: usize, store: &str) -> anyhow::Result<Vec<RawEntry>> {
    let value = c.raw_store(i, store).await?;
    let entries: Vec<WireEntry> = serde_json::from_value(value.clone())
        .with_context(|| format!("not a list of entries: {value}"))?;
    Ok(entries.into_iter().map(RawEntry::from).collect())
}

/// The raw entry of `key` in `store` on node `i`, tombstones included.
pub async fn raw_entry(
    c: &Cluster,
    i: usize,
    store: &str,
    key: &str,
) -> anyhow::Result<Option<RawEntry>> {
    Ok(raw_entries(c, i, store)
        .await?
        .into_iter()
        .find(|e| e.key == key))
}

/// Ids of the services `GET /v1/service/{type}/{pool}` lists on node `i`.
pub async fn service_ids(
    c: &Cluster,
    i: usize,
    service_type: &str,
    pool: &str,
) -> anyhow::Result<Vec<String>> {
    let body = c.lookup(i, service_type, pool).await?;
    let services = body["services"]
        .as_array()
        .with_context(|| format!("no services list: {body}"))?;
    Ok(services
        .iter()
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect())
}

/// The services node `i` lists for `node_id` (dynamic announcements only).
pub async fn services_of_node(c: &Cluster, i: usize, node_id: &str) -> anyhow::Result<Vec<Value>> {
    let body = c.lookup(i, TYPE, POOL).await?;
    let services = body["services"]
        .as_array()
        .with_context(|| format!("no services list: {body}"))?;
    Ok(services
        .iter()
        .filter(|s| s["nodeId"].as_str() == Some(node_id))
        .cloned()
        .collect())
}

/// Announces one `TYPE` service `service_id` for `node_id` on node `i`; expects 202.
pub async fn announce(c: &Cluster, i: usize, node_id: &str, service_id: &str) {
    let status = c
        .announce(i, node_id, &announcement(service_id, TYPE))
        .await
        .expect("announce request failed");
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "PUT /v1/announcement/{node_id} on {}",
        c.node_id(i)
    );
}

/// Creates a static service on node `i`; expects 201 and returns its id.
pub async fn add_static(c: &Cluster, i: usize, service_type: &str, pool: &str) -> String {
    let (status, body) = c
        .add_static(i, &static_announcement(service_type, pool))
        .await
        .expect("static announce request failed");
    assert_eq!(
        status,
        StatusCode::CREATED,
        "POST /v1/announcement/static: {body}"
    );
    body["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {body}"))
        .to_owned()
}

/// Waits until every running node lists service `id` under `service_type`/`pool`.
pub async fn wait_listed_everywhere(
    c: &Cluster,
    service_type: &str,
    pool: &str,
    id: &str,
    deadline: Duration,
) {
    let nodes = c.running();
    eventually(deadline, &format!("{id} listed on every node"), || async {
        for &i in &nodes {
            let ids = service_ids(c, i, service_type, pool).await?;
            ensure!(
                ids.iter().any(|x| x == id),
                "{} lists {ids:?}",
                c.node_id(i)
            );
        }
        Ok::<_, anyhow::Error>(())
    })
    .await
}

/// Waits until no running node lists service `id` under `service_type`/`pool`.
pub async fn wait_gone_everywhere(c: &Cluster, service_type: &str, pool: &str, id: &str) {
    let nodes = c.running();
    eventually(DEADLINE, &format!("{id} gone on every node"), || async {
        for &i in &nodes {
            let ids = service_ids(c, i, service_type, pool).await?;
            ensure!(
                !ids.iter().any(|x| x == id),
                "{} still lists {ids:?}",
                c.node_id(i)
            );
        }
        Ok::<_, anyhow::Error>(())
    })
    .await
}

/// Waits until every running node holds the same raw entry for `key` as node `origin`,
/// and returns it.
pub async fn wait_same_entry_everywhere(
    c: &Cluster,
    origin: usize,
    store: &str,
    key: &str,
) -> RawEntry {
    let nodes = c.running();
    eventually(
        DEADLINE,
        &format!("the same {store} entry {key} on every node"),
        || async {
            let expected = raw_entry(c, origin, store, key)
                .await?
                .with_context(|| format!("{} has no entry {key}", c.node_id(origin)))?;
            for &i in &nodes {
                let entry = raw_entry(c, i, store, key).await?;
                ensure!(
                    entry.as_ref() == Some(&expected),
                    "{} holds {entry:?}, {} holds {expected:?}",
                    c.node_id(i),
                    c.node_id(origin)
                );
            }
            Ok::<_, anyhow::Error>(expected)
        },
    )
    .await
}

/// `syncs_ok` of node `i` towards each of `peers`, per store.
async fn sync_counts(
    c: &Cluster,
    i: usize,
    peers: &[String],
) -> anyhow::Result<BTreeMap<(String, String), u64>> {
    let status = status(c, i).await?;
    let mut counts = BTreeMap::new();
    for peer in peers {
        for store in ["dynamic", "static"] {
            let Some(link) = link(&status, peer, store) else {
                bail!("{} does not list peer {peer}", c.node_id(i));
            };
            counts.insert((peer.clone(), store.to_owned()), link.syncs_ok);
        }
    }
    Ok(counts)
}

/// Waits until every running node has completed `rounds` more anti-entropy rounds with
/// every other running node, in both stores. Used before asserting that something did
/// *not* spread: by then it had every chance to.
pub async fn wait_sync_rounds(c: &Cluster, rounds: u64) {
    let nodes = c.running();
    let mut baselines = Vec::new();
    for &i in &nodes {
        let peers: Vec<String> = nodes
            .iter()
            .filter(|&&j| j != i)
            .map(|&j| c.node_id(j).to_owned())
            .collect();
        let counts = eventually(DEADLINE, "a status with every peer", || {
            sync_counts(c, i, &peers)
        })
        .await;
        baselines.push((i, peers, counts));
    }
    eventually(
        DEADLINE,
        &format!("{rounds} more anti-entropy rounds"),
        || async {
            for (i, peers, baseline) in &baselines {
                let now = sync_counts(c, *i, peers).await?;
                for (key, before) in baseline {
                    let after = now.get(key).copied().unwrap_or_default();
                    ensure!(
                        after >= before + rounds,
                        "{} -> {:?}: syncs_ok {before} -> {after}",
                        c.node_id(*i),
                        key
                    );
                }
            }
            Ok::<_, anyhow::Error>(())
        },
    )
    .await
}

/// A TCP server that accepts connections and never answers: a hung peer.
pub struct BlackHole {
    pub url: String,
    pub accepted: Arc<AtomicUsize>,
}

impl BlackHole {
    pub async fn start(ip: &str) -> BlackHole {
        let listener = TcpListener::bind((ip, 0))
            .await
            .expect("bind the black hole");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            // Held open, never read nor answered, until the test's runtime ends.
            let mut held: Vec<TcpStream> = Vec::new();
            for _ in 0..10_000 {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                counter.fetch_add(1, Ordering::Relaxed);
                held.push(stream);
            }
        });
        BlackHole { url, accepted }
    }
}

/// One request a [`Recorder`] received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub request_line: String,
    pub user_agent: Option<String>,
}

/// An HTTP stub that records every request's first line and `User-Agent` and answers 404.
pub struct Recorder {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Recorder {
    pub async fn start(ip: &str) -> Recorder {
        let listener = TcpListener::bind((ip, 0)).await.expect("bind the recorder");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        tokio::spawn(async move {
            for _ in 0..10_000 {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(answer_404(stream, Arc::clone(&log)));
            }
        });
        Recorder { url, requests }
    }

    pub fn recorded(&self) -> Vec<Recorded> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

async fn answer_404(mut stream: TcpStream, log: Arc<Mutex<Vec<Recorded>>>) {
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    // Read the request head (bounded); the body, if any, is ignored.
    while head.len() < 64 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.lines();
    let request_line = lines.next().unwrap_or_default().to_owned();
    let user_agent = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("user-agent"))
        .map(|(_, value)| value.trim().to_owned());
    if let Ok(mut log) = log.lock() {
        log.push(Recorded {
            request_line,
            user_agent,
        });
    }
    let _ = stream
        .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        .await;
    let _ = stream.shutdown().await;
}
