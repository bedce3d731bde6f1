//! The replicator's driver: keeps one link per (peer, store) in step with the peer set,
//! feeds local changes into the links' queues, runs the push workers and the periodic
//! anti-entropy rounds, and shuts all of it down in order.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;

use discovery_store::{Clock, Index, Origin, Store};
use discovery_types::replication::PeerStatus;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::anti_entropy::reconcile;
use crate::config::{backoff_delay, ReplicatorConfig};
use crate::link::Link;
use crate::peers::Peer;
use crate::push::{run_push_worker, Phase};
use crate::queue::PendingChange;
use crate::responder::Responder;
use crate::transport::PeerTransport;

/// A store to replicate, with its settings.
struct ReplicatedStore<I: Index> {
    name: String,
    store: Arc<Store<I>>,
    config: ReplicatorConfig,
}

struct PeerLinks {
    address: watch::Sender<Peer>,
    /// One link per replicated store, in the order of `Replicator::spawn`'s `stores`.
    links: Vec<Arc<Link>>,
    /// Push workers: drained on shutdown.
    workers: Vec<JoinHandle<()>>,
    /// Anti-entropy loops: stopped at once on shutdown.
    sync_tasks: Vec<JoinHandle<()>>,
}

/// Prefix of anti-entropy errors in a link's `last_error`.
const SYNC_ERROR: &str = "anti-entropy: ";

#[derive(Default)]
struct Shared {
    peers: RwLock<BTreeMap<String, PeerLinks>>,
}

impl Shared {
    fn peers(&self) -> RwLockReadGuard<'_, BTreeMap<String, PeerLinks>> {
        self.peers.read().unwrap_or_else(|e| e.into_inner())
    }

    fn links_of_store(&self, index: usize) -> Vec<Arc<Link>> {
        self.peers()
            .values()
            .filter_map(|p| p.links.get(index).cloned())
            .collect()
    }
}

/// Starts replication.
pub struct Replicator;

impl Replicator {
    /// Replicates every store of `responder`, each with `config(name)`, with the peers
    /// published on `peers`, over `transport`. Entries fetched from peers enter the stores
    /// through `responder`, by the same rule as pushed ones.
    pub fn spawn<I: Index, T: PeerTransport>(
        responder: Arc<Responder<I>>,
        config: impl Fn(&str) -> ReplicatorConfig,
        transport: Arc<T>,
        mut peers: watch::Receiver<Arc<Vec<Peer>>>,
        clock: Arc<dyn Clock>,
    ) -> ReplicatorHandle {
        let shared = Arc::new(Shared::default());
        let (phase_tx, phase_rx) = watch::channel(Phase::Running);
        let stores: Vec<ReplicatedStore<I>> = responder
            .stores()
            .map(|(name, store)| ReplicatedStore {
                name: name.to_owned(),
                store: Arc::clone(store),
                config: config(name),
            })
            .collect();
        let stores = Arc::new(stores);
        let mut tasks = Vec::new();

        let context = Context {
            shared: Arc::clone(&shared),
            responder,
            stores: Arc::clone(&stores),
            transport: Arc::clone(&transport),
            clock: Arc::clone(&clock),
            phase: phase_rx.clone(),
        };
        // Subscribe before anything else runs, so no local change is missed.
        for (index, replicated) in stores.iter().enumerate() {
            let feed = replicated.store.subscribe();
            tasks.push(tokio::spawn(fan_out(
                index,
                feed,
                Arc::clone(&shared),
                phase_rx.clone(),
            )));
        }
        let initial = peers.borrow_and_update().clone();
        context.apply_peer_set(&initial);
        tasks.push(tokio::spawn(context.clone().follow_peer_set(peers)));

        ReplicatorHandle {
            shared,
            phase_tx,
            tasks,
        }
    }
}

struct Context<I: Index, T: PeerTransport> {
    shared: Arc<Shared>,
    responder: Arc<Responder<I>>,
    stores: Arc<Vec<ReplicatedStore<I>>>,
    transport: Arc<T>,
    clock: Arc<dyn Clock>,
    phase: watch::Receiver<Phase>,
}

impl<I: Index, T: PeerTransport> Clone for Context<I, T> {
    fn clone(&self) -> Self {
        Context {
            shared: Arc::clone(&self.shared),
            responder: Arc::clone(&self.responder),
            stores: Arc::clone(&self.stores),
            transport: Arc::clone(&self.transport),
            clock: Arc::clone(&self.clock),
            phase: self.phase.clone(),
        }
    }
}

impl<I: Index, T: PeerTransport> Context<I, T> {
    async fn follow_peer_set(self, mut peers: watch::Receiver<Arc<Vec<Peer>>>) {
        let mut phase = self.phase.clone();
        loop {
            tokio::select! {
                changed = peers.changed() => {
                    if changed.is_err() { return; }
                    let set = peers.borrow_and_update().clone();
                    self.apply_peer_set(&set);
                }
                _ = phase.changed() => return,
            }
        }
    }

    /// Adds links for new peers, stops those of removed peers, and moves re-addressed
    /// peers without losing their queues.
    fn apply_peer_set(&self, set: &[Peer]) {
        let mut current = self.shared.peers.write().unwrap_or_else(|e| e.into_inner());
        let wanted: BTreeMap<&str, &Peer> = set.iter().map(|p| (p.node_id.as_str(), p)).collect();
        let removed: Vec<String> = current
            .keys()
            .filter(|id| !wanted.contains_key(id.as_str()))
            .cloned()
            .collect();
        for node_id in removed {
            if let Some(peer) = current.remove(&node_id) {
                tracing::info!(peer = %node_id, "peer left the inventory; replication to it stops");
                peer.workers
                    .iter()
                    .chain(&peer.sync_tasks)
                    .for_each(JoinHandle::abort);
            }
        }
        for (node_id, peer) in wanted {
            match current.get(node_id) {
                Some(existing) if *existing.address.borrow() == *peer => {}
                Some(existing) => {
                    tracing::info!(peer = %node_id, url = %peer.url, "peer moved to a new address");
                    existing.address.send_replace(peer.clone());
                }
                None => {
                    tracing::info!(peer = %node_id, url = %peer.url, "replicating with a new peer");
                    current.insert(node_id.to_owned(), self.start_peer(peer));
                }
            }
        }
    }

    fn start_peer(&self, peer: &Peer) -> PeerLinks {
        let (address, address_rx) = watch::channel(peer.clone());
        let mut links = Vec::new();
        let mut workers = Vec::new();
        let mut sync_tasks = Vec::new();
        for (index, replicated) in self.stores.iter().enumerate() {
            let link = Link::new(
                &replicated.name,
                address_rx.clone(),
                replicated.config.queue_size,
            );
            workers.push(tokio::spawn(run_push_worker(
                Arc::clone(&link),
                Arc::clone(&self.transport),
                replicated.config.clone(),
                Arc::clone(&self.clock),
                self.phase.clone(),
            )));
            sync_tasks.push(tokio::spawn(
                self.clone().anti_entropy_loop(index, Arc::clone(&link)),
            ));
            links.push(link);
        }
        PeerLinks {
            address,
            links,
            workers,
            sync_tasks,
        }
    }

    /// Reconciles one store with one peer now and then every `replication-interval`. A
    /// failed round is retried sooner (back-off capped at the interval), so a peer that
    /// was still starting is caught up within seconds rather than a full interval.
    async fn anti_entropy_loop(self, index: usize, link: Arc<Link>) {
        let config = self.stores[index].config.clone();
        let mut phase = self.phase.clone();
        let mut failures: u32 = 0;
        loop {
            let synced = tokio::select! {
                synced = self.clone().sync_link(index, Arc::clone(&link)) => synced,
                _ = phase.changed() => return,
            };
            failures = if synced {
                0
            } else {
                failures.saturating_add(1)
            };
            let wait = if synced {
                config.replication_interval
            } else {
                backoff_delay(
                    Duration::from_millis(500),
                    config.replication_interval,
                    failures,
                )
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = phase.changed() => return,
            }
        }
    }

    /// One round; true when it completed.
    async fn sync_link(self, index: usize, link: Arc<Link>) -> bool {
        let replicated = &self.stores[index];
        let peer = link.peer();
        let result = reconcile(
            &self.responder,
            &replicated.name,
            &*self.transport,
            &peer,
            &replicated.config,
            &*self.clock,
        )
        .await;
        let stats = &link.stats;
        match result {
            Ok(outcome) => {
                link.record_bytes(outcome.bytes_sent, outcome.bytes_received);
                stats
                    .sync_bytes_sent
                    .fetch_add(outcome.bytes_sent, Ordering::Relaxed);
                stats
                    .sync_bytes_received
                    .fetch_add(outcome.bytes_received, Ordering::Relaxed);
                stats.syncs_ok.fetch_add(1, Ordering::Relaxed);
                stats
                    .last_sync_ok_ms
                    .store(self.clock.now_ms(), Ordering::Relaxed);
                stats
                    .last_sync_in_agreement
                    .store(outcome.in_agreement, Ordering::Relaxed);
                if outcome.peer_ready {
                    stats.synced_with_ready_peer.store(true, Ordering::Relaxed);
                }
                stats
                    .peer_ready
                    .store(if outcome.peer_ready { 2 } else { 1 }, Ordering::Relaxed);
                if let Some(offset) = outcome.clock_offset_ms {
                    link.record_clock_offset(offset, self.clock.now_ms());
                }
                stats
                    .sync_fetched
                    .fetch_add(outcome.fetched as u64, Ordering::Relaxed);
                stats
                    .sync_pushed
                    .fetch_add(outcome.pushed as u64, Ordering::Relaxed);
                if !outcome.in_agreement {
                    tracing::debug!(peer = %peer.node_id, store = %replicated.name, fetched = outcome.fetched,
                        pushed = outcome.pushed, "anti-entropy repaired differences");
                }
                link.clear_error(SYNC_ERROR);
                true
            }
            Err(error) => {
                stats.syncs_failed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(peer = %peer.node_id, store = %replicated.name, %error, "anti-entropy round failed");
                link.record_error(format!("{SYNC_ERROR}{error}"));
                false
            }
        }
    }
}

/// Feeds the store's local changes to every peer's queue for that store. Changes that
/// came from peers are not relayed: their origin pushes them to everyone, and
/// anti-entropy covers the rest.
async fn fan_out(
    index: usize,
    mut feed: broadcast::Receiver<discovery_store::Change>,
    shared: Arc<Shared>,
    mut phase: watch::Receiver<Phase>,
) {
    loop {
        let change = tokio::select! {
            received = feed.recv() => received,
            _ = phase.changed() => return,
        };
        match change {
            Ok(change) if change.origin == Origin::Local => {
                let pending = PendingChange {
                    since: std::time::Instant::now(),
                    full: !change.value_unchanged,
                    value_hash: change.value_hash,
                    entry: change.entry,
                };
                for link in shared.links_of_store(index) {
                    link.enqueue(pending.clone());
                }
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "replication fell behind the change feed; anti-entropy will repair"
                );
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// A running replicator.
pub struct ReplicatorHandle {
    shared: Arc<Shared>,
    phase_tx: watch::Sender<Phase>,
    tasks: Vec<JoinHandle<()>>,
}

/// Read access to the replicator's state, for status pages; cheap to clone.
#[derive(Clone)]
pub struct ReplicatorStatus {
    shared: Arc<Shared>,
}

impl ReplicatorStatus {
    /// Each peer's clock minus ours, as last measured, for peers measured since
    /// `since_ms` (the ones this node currently reaches).
    pub fn clock_offsets(&self, since_ms: i64) -> Vec<(String, i64)> {
        self.shared
            .peers()
            .iter()
            .filter_map(|(node_id, peer)| {
                peer.links
                    .iter()
                    .filter_map(|link| link.clock_offset())
                    .filter(|&(_, measured_at)| measured_at >= since_ms)
                    .max_by_key(|&(_, measured_at)| measured_at)
                    .map(|(offset, _)| (node_id.clone(), offset))
            })
            .collect()
    }

    /// Replication state towards every peer, for `/v1/replication/status`.
    pub fn peers(&self) -> Vec<PeerStatus> {
        self.shared
            .peers()
            .iter()
            .map(|(node_id, peer)| PeerStatus {
                node_id: node_id.clone(),
                url: peer.address.borrow().url.clone(),
                stores: peer.links.iter().map(|l| l.status()).collect(),
            })
            .collect()
    }
}

/// How far this node has caught up with its peers, store by store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchUp {
    /// Every store has completed an anti-entropy round with some peer.
    pub every_store_synced: bool,
    /// Every store has completed a round with a peer that reported itself ready.
    pub every_store_synced_with_ready_peer: bool,
    /// Peers currently known.
    pub peers: usize,
}

impl ReplicatorStatus {
    /// Whether this node has caught up, for readiness decisions.
    pub fn catch_up(&self) -> CatchUp {
        let peers = self.shared.peers();
        let stores = peers.values().map(|p| p.links.len()).max().unwrap_or(0);
        let every_store = |synced: &dyn Fn(&Link) -> bool| {
            stores > 0
                && (0..stores).all(|i| {
                    peers
                        .values()
                        .filter_map(|p| p.links.get(i))
                        .any(|link| synced(link))
                })
        };
        CatchUp {
            every_store_synced: every_store(&|l| l.stats.syncs_ok.load(Ordering::Relaxed) > 0),
            every_store_synced_with_ready_peer: every_store(&|l| {
                l.stats.synced_with_ready_peer.load(Ordering::Relaxed)
            }),
            peers: peers.len(),
        }
    }
}

impl std::fmt::Debug for ReplicatorStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicatorStatus")
            .field("peers", &self.shared.peers().len())
            .finish()
    }
}

impl ReplicatorHandle {
    /// Replication state towards every peer.
    pub fn peer_statuses(&self) -> Vec<PeerStatus> {
        self.status().peers()
    }

    pub fn status(&self) -> ReplicatorStatus {
        ReplicatorStatus {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Stops anti-entropy and the change feed, then gives the push queues up to
    /// `drain_timeout` to empty (unreachable peers are given up at once), then stops.
    pub async fn shutdown(self, drain_timeout: Duration) {
        let _ = self.phase_tx.send(Phase::Draining);
        for task in self.tasks {
            let _ = task.await;
        }
        let mut workers: Vec<JoinHandle<()>> = Vec::new();
        {
            let mut peers = self.shared.peers.write().unwrap_or_else(|e| e.into_inner());
            for peer in std::mem::take(&mut *peers).into_values() {
                peer.sync_tasks.iter().for_each(JoinHandle::abort);
                workers.extend(peer.workers);
            }
        }
        let aborts: Vec<_> = workers.iter().map(JoinHandle::abort_handle).collect();
        let drained = tokio::time::timeout(drain_timeout, async {
            for worker in workers {
                let _ = worker.await;
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                ?drain_timeout,
                "push queues not drained in time; anti-entropy will catch peers up"
            );
            aborts.iter().for_each(|a| a.abort());
        }
    }
}
