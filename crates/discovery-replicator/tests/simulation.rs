//! Deterministic cluster simulations: in-process nodes, each with a real `Store` on the
//! memory backend and a real `Replicator`, connected by the simulated network (link cuts,
//! drops, delays, byte counters). Time is tokio's paused clock, which also drives entry
//! timestamps through `TokioClock`, so intervals, back-off, expiry and delays are exact
//! and every run is the same.

// Test code: a failed unwrap is a failed test, which is what we want.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use discovery_replicator::sim::{sim_peer, SimNetwork};
use discovery_replicator::{
    AnyEntry, Peer, Replicator, ReplicatorConfig, ReplicatorHandle, Responder,
};
use discovery_store::{Entry, MemoryBackend, Origin, Store, StoreConfig, TokioClock};
use discovery_testkit::eventually;
use tokio::sync::watch;

const T0: i64 = 1_800_000_000_000;
const STORE: &str = "dynamic";
const TTL_MS: i64 = 30_000;
const INTERVAL: Duration = Duration::from_secs(10);
const PATIENCE: Duration = Duration::from_secs(120);

struct SimNode {
    backend: MemoryBackend,
    store: Arc<Store>,
    replicator: Option<ReplicatorHandle>,
    peers_tx: watch::Sender<Arc<Vec<Peer>>>,
}

struct Cluster {
    net: SimNetwork<()>,
    clock: Arc<TokioClock>,
    config: ReplicatorConfig,
    nodes: BTreeMap<String, SimNode>,
}

impl Cluster {
    fn new(ids: &[&str]) -> Self {
        Self::with_config(
            ids,
            ReplicatorConfig {
                replication_interval: INTERVAL,
                ..ReplicatorConfig::default()
            },
        )
    }

    fn with_config(ids: &[&str], config: ReplicatorConfig) -> Self {
        let mut cluster = Cluster {
            net: SimNetwork::new(),
            clock: Arc::new(TokioClock::new(T0)),
            config,
            nodes: BTreeMap::new(),
        };
        let all: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        for id in ids {
            cluster.add_node(id, &all);
        }
        cluster
    }

    fn open_store(&self, backend: &MemoryBackend) -> Arc<Store> {
        Arc::new(
            Store::open(
                StoreConfig::new(STORE),
                Box::new(backend.clone()),
                self.clock.clone(),
                (),
            )
            .unwrap(),
        )
    }

    /// Adds a node with an empty store, knowing `all` but itself as peers from the start.
    fn add_node(&mut self, id: &str, all: &[String]) {
        let backend = MemoryBackend::new();
        let store = self.open_store(&backend);
        let (peers_tx, _) = watch::channel(Arc::new(peers_of(id, all)));
        let mut node = SimNode {
            backend,
            store,
            replicator: None,
            peers_tx,
        };
        self.start_replicator(id, &mut node);
        self.nodes.insert(id.to_owned(), node);
    }

    fn start_replicator(&self, id: &str, node: &mut SimNode) {
        let responder =
            Arc::new(Responder::new(Arc::new(AnyEntry)).with_store(STORE, Arc::clone(&node.store)));
        self.net.attach(id, Arc::clone(&responder));
        let config = self.config.clone();
        node.replicator = Some(Replicator::spawn(
            responder,
            move |_| config.clone(),
            Arc::new(self.net.transport(id)),
            node.peers_tx.subscribe(),
            self.clock.clone(),
        ));
    }

    /// Tells `id` its peers are `all` minus itself (what the inventory would say).
    fn set_peers(&self, id: &str, all: &[String]) {
        self.nodes[id]
            .peers_tx
            .send_replace(Arc::new(peers_of(id, all)));
    }

    fn store(&self, id: &str) -> &Arc<Store> {
        &self.nodes[id].store
    }

    /// A node crashes: its replicator stops without draining and the network drops it.
    async fn crash(&mut self, id: &str) {
        self.net.set_down(id, true);
        let node = self.nodes.get_mut(id).unwrap();
        if let Some(replicator) = node.replicator.take() {
            replicator.shutdown(Duration::ZERO).await;
        }
    }

    /// The node starts again on the data it had.
    fn restart(&mut self, id: &str) {
        let mut node = self.nodes.remove(id).unwrap();
        node.store = self.open_store(&node.backend);
        self.start_replicator(id, &mut node);
        self.nodes.insert(id.to_owned(), node);
        self.net.set_down(id, false);
    }

    fn announce(&self, id: &str, key: &str, value: &str) {
        self.store(id)
            .put(
                key.as_bytes().to_vec(),
                value.as_bytes().to_vec(),
                Some(TTL_MS),
            )
            .unwrap();
    }

    fn put_static(&self, id: &str, key: &str, value: &str) {
        self.store(id)
            .put(key.as_bytes().to_vec(), value.as_bytes().to_vec(), None)
            .unwrap();
    }

    fn delete(&self, id: &str, key: &str) {
        self.store(id).delete(key.as_bytes().to_vec()).unwrap();
    }

    fn visible(&self, id: &str, key: &str) -> Option<String> {
        let store = self.store(id);
        store
            .get(key.as_bytes())
            .filter(|e| e.is_live(store.now_ms()))
            .and_then(|e| e.value.clone())
            .map(|v| String::from_utf8(v).unwrap())
    }

    /// Every node's unexpired entries, by node.
    fn states(&self) -> BTreeMap<String, Vec<Entry>> {
        self.nodes
            .iter()
            .map(|(id, node)| {
                let now = node.store.now_ms();
                let entries = node
                    .store
                    .entries()
                    .iter()
                    .filter(|e| !e.is_expired(now, StoreConfig::new(STORE).tombstone_max_age_ms))
                    .map(|e| (**e).clone())
                    .collect();
                (id.clone(), entries)
            })
            .collect()
    }

    /// Waits until every node holds the same unexpired entries.
    async fn converged(&self) {
        eventually(PATIENCE, "all nodes to hold identical entries", || async {
            let states = self.states();
            let first = states.values().next().unwrap();
            if states.values().all(|s| s == first) {
                Ok(())
            } else {
                Err(states)
            }
        })
        .await;
    }

    async fn visible_everywhere(&self, key: &str, expected: Option<&str>) {
        eventually(
            PATIENCE,
            &format!("{key} = {expected:?} on every node"),
            || async {
                let seen: BTreeMap<&String, Option<String>> = self
                    .nodes
                    .keys()
                    .map(|id| (id, self.visible(id, key)))
                    .collect();
                if seen.values().all(|v| v.as_deref() == expected) {
                    Ok(())
                } else {
                    Err(seen)
                }
            },
        )
        .await;
    }

    async fn shutdown(mut self) {
        for node in self.nodes.values_mut() {
            if let Some(replicator) = node.replicator.take() {
                replicator.shutdown(Duration::from_secs(1)).await;
            }
        }
    }
}

fn peers_of(id: &str, all: &[String]) -> Vec<Peer> {
    all.iter()
        .filter(|p| *p != id)
        .map(|p| sim_peer(p))
        .collect()
}

/// Lets simulated time pass (timers fire, tasks run).
///
/// These tests run on tokio's paused clock, so this takes no real time: the runtime jumps
/// from one timer to the next, running every task in between, which is how a scenario
/// orders its writes in time or lets rounds happen during a partition (to assert that
/// something did *not* cross it). Waiting for a condition is never done this way: that is
/// `eventually`, which polls with a deadline. `tokio::time::advance` is not a substitute:
/// it fires every timer due in the jump at once, in any order.
async fn pass(duration: Duration) {
    tokio::time::sleep(duration).await;
}

#[tokio::test(start_paused = true)]
async fn writes_on_different_nodes_reach_every_node_by_push() {
    // Anti-entropy far away: only pushes can deliver within the test.
    let config = ReplicatorConfig {
        replication_interval: Duration::from_secs(3600),
        ..ReplicatorConfig::default()
    };
    let cluster = Cluster::with_config(&["a", "b", "c"], config);
    pass(Duration::from_millis(10)).await;
    cluster.announce("a", "n1", "one");
    cluster.announce("b", "n2", "two");
    cluster.put_static("c", "s1", "static");
    cluster.delete("c", "n-gone");
    for (key, value) in [
        ("n1", Some("one")),
        ("n2", Some("two")),
        ("s1", Some("static")),
    ] {
        cluster.visible_everywhere(key, value).await;
    }
    cluster.converged().await;
    let traffic = cluster.net.traffic();
    assert_eq!(
        traffic.bytes_of("summaries") + traffic.bytes_of("entries"),
        0,
        "pushes alone did it"
    );
    cluster.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_delete_and_a_later_reannounce_across_a_partition_heal_to_the_newer() {
    let cluster = Cluster::new(&["a", "b", "c"]);
    cluster.announce("a", "n1", "v1");
    cluster.visible_everywhere("n1", Some("v1")).await;

    cluster.net.partition(&["a"], &["b", "c"]);
    cluster.delete("a", "n1");
    pass(Duration::from_secs(1)).await;
    cluster.announce("b", "n1", "v2");
    pass(INTERVAL).await;
    assert_eq!(cluster.visible("a", "n1"), None, "the partition held");
    assert_eq!(cluster.visible("c", "n1").as_deref(), Some("v2"));

    cluster.net.heal_all();
    cluster.visible_everywhere("n1", Some("v2")).await;
    cluster.converged().await;
    cluster.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_reannounce_and_a_later_delete_across_a_partition_heal_to_deleted_and_stay_deleted() {
    let cluster = Cluster::new(&["a", "b", "c"]);
    cluster.put_static("a", "s1", "v1");
    cluster.visible_everywhere("s1", Some("v1")).await;

    cluster.net.partition(&["a"], &["b", "c"]);
    cluster.put_static("b", "s1", "v2");
    pass(Duration::from_secs(1)).await;
    cluster.delete("a", "s1");
    pass(INTERVAL * 3).await;
    assert_eq!(cluster.visible("c", "s1").as_deref(), Some("v2"));

    cluster.net.heal_all();
    cluster.visible_everywhere("s1", None).await;
    cluster.converged().await;
    // Many more rounds: nothing brings the deleted value back.
    pass(INTERVAL * 10).await;
    for id in ["a", "b", "c"] {
        assert_eq!(
            cluster.visible(id, "s1"),
            None,
            "{id} resurrected a deleted entry"
        );
        assert!(cluster.store(id).get(b"s1").unwrap().is_tombstone());
    }
    cluster.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn equal_version_conflicts_end_identical_on_every_node() {
    let cluster = Cluster::new(&["a", "b", "c"]);
    let now = cluster.store("a").now_ms();
    // Three nodes write the same key in the same millisecond with different values.
    for (id, value) in [("a", "alpha"), ("b", "bravo"), ("c", "charlie")] {
        let entry = Entry {
            key: b"k".to_vec(),
            value: Some(value.as_bytes().to_vec()),
            version: now,
            timestamp: now,
            max_age_ms: None,
        };
        cluster.store(id).apply([entry], Origin::Local).unwrap();
    }
    cluster.converged().await;
    cluster.visible_everywhere("k", Some("charlie")).await;
    cluster.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_node_down_longer_than_the_ttl_comes_back_and_converges() {
    let mut cluster = Cluster::new(&["a", "b", "c"]);
    cluster.announce("a", "worker-1", "old");
    cluster.announce("a", "worker-2", "leaving");
    cluster.converged().await;

    cluster.crash("c").await;
    // While c is down: worker-1 keeps renewing on a, worker-2 stops and expires, a new
    // static service appears on b.
    for _ in 0..8 {
        cluster.announce("a", "worker-1", "old");
        pass(Duration::from_secs(8)).await;
    }
    cluster.put_static("b", "s1", "created-while-c-was-down");
    assert_eq!(cluster.visible("a", "worker-2"), None, "worker-2 expired");

    cluster.restart("c");
    cluster
        .visible_everywhere("s1", Some("created-while-c-was-down"))
        .await;
    cluster.visible_everywhere("worker-1", Some("old")).await;
    cluster.visible_everywhere("worker-2", None).await;
    cluster.converged().await;
    cluster.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_empty_node_receives_the_whole_state_within_one_interval() {
    let mut cluster = Cluster::new(&["a", "b"]);
    for i in 0..500 {
        cluster.put_static("a", &format!("s{i}"), "v");
    }
    cluster.converged().await;

    let all = vec!["a".to_owned(), "b".to_owned(), "d".to_owned()];
    cluster.add_node("d", &all);
    for id in &all {
        cluster.set_peers(id, &all);
    }
    let started = tokio::time::Instant::now();
    cluster.converged().await;
    assert!(
        started.elapsed() <= INTERVAL,
        "converged after {:?}",
        started.elapsed()
    );
    assert_eq!(cluster.store("d").len(), 500);
    cluster.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn dropped_and_delayed_pushes_are_retried_until_delivered() {
    let config = ReplicatorConfig {
        replication_interval: Duration::from_secs(3600),
        ..ReplicatorConfig::default()
    };
    let cluster = Cluster::with_config(&["a", "b"], config);
    pass(Duration::from_millis(10)).await;
    cluster.net.drop_next("a", "b", 5);
    cluster.net.set_delay("a", "b", Duration::from_millis(700));
    cluster.announce("a", "n1", "v1");
    cluster.visible_everywhere("n1", Some("v1")).await;
    let status = cluster.nodes["a"]
        .replicator
        .as_ref()
        .unwrap()
        .peer_statuses();
    assert_eq!(status[0].stores[0].push_failures, 5);
    cluster.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_drops_changes_and_anti_entropy_repairs_them() {
    let config = ReplicatorConfig {
        queue_size: 10,
        replication_interval: INTERVAL,
        ..ReplicatorConfig::default()
    };
    let cluster = Cluster::with_config(&["a", "b"], config);
    cluster.net.set_down("b", true);
    for i in 0..100 {
        cluster.put_static("a", &format!("s{i}"), "v");
    }
    pass(Duration::from_secs(1)).await;
    let status = cluster.nodes["a"]
        .replicator
        .as_ref()
        .unwrap()
        .peer_statuses();
    assert_eq!(status[0].stores[0].dropped, 90);
    cluster.net.set_down("b", false);
    cluster.converged().await;
    assert_eq!(cluster.store("b").len(), 100);
    cluster.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_anti_entropy_round_between_agreeing_replicas_costs_a_few_hundred_bytes() {
    let cluster = Cluster::new(&["a", "b", "c"]);
    for i in 0..1000 {
        cluster.put_static(["a", "b", "c"][i % 3], &format!("s{i}"), &"x".repeat(300));
    }
    cluster.converged().await;
    pass(INTERVAL * 2).await;
    cluster.net.reset_traffic();
    pass(INTERVAL).await; // exactly one round per node and peer
    let traffic = cluster.net.traffic();
    let per_exchange = traffic.bytes / traffic.messages.max(1);
    assert_eq!(
        traffic.messages, 6,
        "3 nodes x 2 peers, one digest request each: {traffic:?}"
    );
    assert_eq!(traffic.bytes, traffic.bytes_of("digest"), "{traffic:?}");
    assert!(
        per_exchange < 64,
        "{per_exchange} bytes per in-sync exchange"
    );
    cluster.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn renewals_travel_without_their_value() {
    let config = ReplicatorConfig {
        replication_interval: Duration::from_secs(3600),
        ..ReplicatorConfig::default()
    };
    let cluster = Cluster::with_config(&["a", "b"], config);
    pass(Duration::from_millis(10)).await;
    let value = "s".repeat(2000);
    cluster.announce("a", "worker-1", &value);
    cluster.visible_everywhere("worker-1", Some(&value)).await;
    let first = cluster.net.traffic().bytes_of("push");
    assert!(
        first > 2000,
        "the first announcement ships its value ({first} bytes)"
    );

    cluster.net.reset_traffic();
    pass(Duration::from_secs(8)).await;
    cluster.announce("a", "worker-1", &value);
    eventually(PATIENCE, "the renewal to arrive", || async {
        let version_a = cluster.store("a").get(b"worker-1").unwrap().version;
        let version_b = cluster.store("b").get(b"worker-1").unwrap().version;
        if version_a == version_b {
            Ok(())
        } else {
            Err((version_a, version_b))
        }
    })
    .await;
    let renewal = cluster.net.traffic().bytes_of("push");
    assert!(renewal < 300, "a renewal costs {renewal} bytes on the wire");
    cluster.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_renewal_for_a_value_the_peer_never_got_is_resent_in_full() {
    let config = ReplicatorConfig {
        replication_interval: Duration::from_secs(3600),
        ..ReplicatorConfig::default()
    };
    let cluster = Cluster::with_config(&["a", "b"], config);
    pass(Duration::from_millis(10)).await;
    cluster.net.set_down("b", true);
    cluster.announce("a", "worker-1", "services");
    pass(Duration::from_millis(50)).await;
    // b comes back empty-handed for worker-1 and only the renewal is pending now.
    let status = cluster.nodes["a"]
        .replicator
        .as_ref()
        .unwrap()
        .peer_statuses();
    assert!(status[0].stores[0].push_failures > 0);
    cluster.net.set_down("b", false);
    cluster.announce("a", "worker-1", "services");
    cluster
        .visible_everywhere("worker-1", Some("services"))
        .await;
    cluster.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn entries_from_a_peer_with_a_clock_far_ahead_are_refused() {
    let cluster = Cluster::new(&["a", "b"]);
    let future = cluster.store("a").now_ms() + 10 * 60_000;
    let entry = Entry {
        key: b"k".to_vec(),
        value: Some(b"v".to_vec()),
        version: future,
        timestamp: future,
        max_age_ms: None,
    };
    cluster.store("a").apply([entry], Origin::Local).unwrap();
    pass(INTERVAL * 2).await;
    assert!(cluster.store("b").get(b"k").is_none());
    cluster.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn catching_up_is_complete_only_after_a_round_with_a_ready_peer() {
    let cluster = Cluster::new(&["a", "b"]);
    cluster.net.set_ready("b", false);
    pass(Duration::from_secs(1)).await;
    let status = cluster.nodes["a"].replicator.as_ref().unwrap().status();
    let catch_up = status.catch_up();
    assert!(catch_up.every_store_synced);
    assert!(
        !catch_up.every_store_synced_with_ready_peer,
        "b said it was not ready"
    );

    cluster.net.set_ready("b", true);
    pass(INTERVAL + Duration::from_secs(1)).await;
    assert!(status.catch_up().every_store_synced_with_ready_peer);
    cluster.shutdown().await;
}
