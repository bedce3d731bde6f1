//! Typed helpers over the testkit's [`Cluster`]: replication status, raw entries, lookups,
//! and waits that every running node satisfies a condition. Probes return errors instead
//! of panicking so [`eventually`] can poll them; a final failure panics with the last
//! observation, and dropping the cluster while panicking prints every node's log.
//! Stub peers (hung, or recording what they were sent) are the testkit's [`Stub`].

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use discovery_testkit::announcements::{standard_announcement, static_announcement};
pub use discovery_testkit::stub::{Recorded, Stub};
use discovery_testkit::{discoveryd, eventually, Cluster, ClusterOptions};
pub use discovery_testkit::{new_id, now_ms};
use discovery_types::replication::{PeerStoreStatus, ReplicationStatus};
use discovery_types::WireEntry;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Deadline for replication to reach every node.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Deadline for a restarted or added node to catch up: a few replication intervals (1 s)
/// and push back-offs, with room for a loaded machine.
pub const CATCH_UP: Duration = Duration::from_secs(15);

/// The service type the tests announce.
pub const TYPE: &str = "trino";
pub const POOL: &str = "general";

/// A cluster of `nodes` with the harness defaults (inventory reload 200 ms, anti-entropy
/// every 1 s) plus `settings`.
pub async fn cluster(nodes: usize, settings: &[(&str, &str)]) -> Cluster {
    Cluster::start(discoveryd!(), nodes, settings).await
}

pub fn options(nodes: usize) -> ClusterOptions {
    ClusterOptions::new(discoveryd!(), nodes)
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
        .announce(i, node_id, &standard_announcement(service_id, TYPE))
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
        .add_static(
            i,
            &static_announcement(
                service_type,
                pool,
                None,
                json!({"http": "http://10.0.0.2:8080"}),
            ),
        )
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
