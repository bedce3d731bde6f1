//! [`Fleet`]: simulated workers and coordinators talking to one discovery URI.
//!
//! Every node behaves like an airlift discovery client (`docs/PROTOCOL.md`, "What real
//! clients do"): it announces right away and again at 80 % of the
//! server's announcement `max-age`, backs off 1 ms doubling to 1 s after a failure, and
//! (coordinators, and workers if configured) looks its type up every lookup `max-age`
//! with the last ETag, keeping the last good list on any failure. Coordinators feed every
//! list, and their node-manager tick, to a [`NodeObserver`](crate::detect::NodeObserver).
//!
//! The loops are built from the client library's parts ([`DiscoveryClient`] for requests,
//! [`Backoff`] and [`announce_delay`]/[`refresh_delay`] for timing, exactly what its
//! `Announcer` and `ServiceSelector` use) rather than those two types, because the fleet
//! must account for every single request: when it was sent, when it was answered, and
//! whether it failed. `Announcer` and `ServiceSelector` only publish their latest status,
//! in which a failure followed quickly by a success leaves no trace.
//!
//! Every loop checks its stop signal between requests, so a stopped node never has a
//! request of its own still on the wire afterwards (its last announcement is exactly
//! known), and every loop ends when the fleet shuts down or is dropped.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use discovery_client::backoff::Backoff;
use discovery_client::cache_control::{announce_delay, refresh_delay};
use discovery_client::types::{DynamicAnnouncement, Service, ServiceAnnouncement};
use discovery_client::{new_service_id, DiscoveryClient, Lookup};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};

use crate::config::FleetConfig;
use crate::detect::{self, ListSnapshot, LiveNode, NodeObserver, Observation, SimTime};
use crate::error::SimError;
use crate::report::{
    Change, CoordinatorView, FleetReport, MissingEvent, NodeReport, RequestCounts, RequestFailure,
    RequestKind, RequestSpan, Source, ViewChange,
};

/// How a worker leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// A crash (`kill -9`, OOM, power loss): it stops announcing and sends nothing; the
    /// server drops it when its announcement expires.
    Crash,
    /// A clean shutdown: it stops announcing and sends `DELETE /v1/announcement/{nodeId}`.
    Clean,
}

/// The `DELETE` of a clean shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unannounced {
    pub span: RequestSpan,
    /// Why it failed, if it did (airlift clients only log it).
    pub error: Option<String>,
}

/// A worker that was stopped: its state at the end, and its `DELETE` if it sent one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    pub node: NodeReport,
    pub unannounce: Option<Unannounced>,
}

/// Which coordinators do not see which running nodes yet; see [`Fleet::convergence`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Convergence {
    /// (coordinator, node id) pairs: the node runs, and the coordinator has not yet
    /// listed it in its current incarnation: no list asked for after the node's first
    /// accepted announcement has shown it with its current service id (or it has not been
    /// announced yet, or it is missing now).
    /// The first [`Convergence::LISTED`] of them (a fleet of 100,000 nodes would
    /// otherwise build a list of 200,000 strings on every check).
    pub pending: Vec<(String, String)>,
    /// How many pairs are pending in all.
    pub pending_total: usize,
}

impl Convergence {
    /// Pending pairs kept by name.
    pub const LISTED: usize = 20;

    pub fn is_converged(&self) -> bool {
        self.pending_total == 0
    }
}

impl std::fmt::Display for Convergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.pending_total == 0 {
            return f.write_str("every coordinator sees every running node");
        }
        write!(f, "{} not seen yet:", self.pending_total)?;
        for (coordinator, node_id) in &self.pending {
            write!(f, " {coordinator} lacks {node_id};")?;
        }
        if self.pending_total > self.pending.len() {
            f.write_str(" ...")?;
        }
        Ok(())
    }
}

/// A running simulated cluster; see the module documentation.
///
/// Dropping it stops every loop at once without unannouncing (like pulling the plug);
/// [`Fleet::shutdown`] leaves cleanly.
#[derive(Debug)]
pub struct Fleet {
    shared: Arc<Shared>,
    /// The running incarnation of every node, by slot: workers, then coordinators.
    running: Mutex<Vec<Option<Running>>>,
}

#[derive(Debug)]
struct Running {
    client: DiscoveryClient,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    config: FleetConfig,
    /// The one client of every node when `config.shared_connections` is set.
    client: Option<DiscoveryClient>,
    epoch: Instant,
    started_unix_ms: u64,
    state: Mutex<State>,
    /// Bumped after every change of the state, for waiters.
    changes: watch::Sender<u64>,
}

#[derive(Debug)]
struct State {
    nodes: Vec<NodeState>,
    views: Vec<ViewState>,
    counts: RequestCounts,
    missing: Vec<MissingEvent>,
    missing_total: u64,
    failures: Vec<RequestFailure>,
    /// The most recent changes (the oldest are dropped beyond the limit).
    view_changes: VecDeque<ViewChange>,
    view_changes_total: u64,
}

#[derive(Debug)]
struct NodeState {
    node_id: String,
    coordinator: bool,
    running: bool,
    incarnation: u64,
    service_id: String,
    announced_since: Option<SimTime>,
    last_announce: Option<RequestSpan>,
    announcements: u64,
    consecutive_failures: u32,
}

impl NodeState {
    fn report(&self) -> NodeReport {
        NodeReport {
            node_id: self.node_id.clone(),
            coordinator: self.coordinator,
            running: self.running,
            incarnation: self.incarnation,
            service_id: self.service_id.clone(),
            announced_since: self.announced_since,
            last_announce: self.last_announce,
            announcements: self.announcements,
            consecutive_failures: self.consecutive_failures,
        }
    }
}

#[derive(Debug)]
struct ViewState {
    view: CoordinatorView,
    observer: NodeObserver,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The body a simulated node announces: one `trino`/`presto` service with id
/// `service_id` and the properties a Trino node sends (`node_version`, `coordinator`,
/// `http`, `http-external`), plus a `trino-coordinator`/`presto-coordinator` service for a
/// coordinator. The `http` URI is a fake host under `.invalid` that nothing resolves.
pub fn node_announcement(
    config: &FleetConfig,
    node_id: &str,
    coordinator: bool,
    service_id: &str,
) -> DynamicAnnouncement {
    let http = format!("http://{node_id}.sim.invalid:8080");
    let mut services = vec![ServiceAnnouncement {
        id: service_id.to_owned(),
        service_type: config.flavor.service_type().to_owned(),
        properties: [
            ("node_version", config.node_version.as_str()),
            ("coordinator", if coordinator { "true" } else { "false" }),
            ("http", http.as_str()),
            ("http-external", http.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
    }];
    if coordinator {
        services.push(ServiceAnnouncement {
            id: new_service_id(),
            service_type: config.flavor.coordinator_type().to_owned(),
            properties: [("http", http.as_str()), ("http-external", http.as_str())]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        });
    }
    DynamicAnnouncement {
        environment: config.environment.clone(),
        pool: config.pool.clone(),
        location: Some(format!("/{node_id}")),
        services,
    }
}

impl Fleet {
    /// Starts every worker and coordinator on the current Tokio runtime and returns at
    /// once; wait for [`Fleet::converged`] before relying on the coordinators' lists.
    pub async fn start(config: FleetConfig) -> Result<Fleet, SimError> {
        config.validate()?;
        let mut nodes = Vec::with_capacity(config.workers + config.coordinators);
        for i in 0..config.workers {
            nodes.push(NodeState::new(config.worker_id(i), false));
        }
        let mut views = Vec::with_capacity(config.coordinators);
        for c in 0..config.coordinators {
            let node_id = config.coordinator_id(c);
            views.push(ViewState {
                view: CoordinatorView {
                    coordinator: node_id.clone(),
                    ..CoordinatorView::default()
                },
                observer: NodeObserver::new(),
            });
            nodes.push(NodeState::new(node_id, true));
        }
        let slots = nodes.len();
        let started_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let client = match config.shared_connections {
            true => Some(build_client(&config, "discovery-sim")?),
            false => None,
        };
        let shared = Arc::new(Shared {
            client,
            config,
            epoch: Instant::now(),
            started_unix_ms,
            state: Mutex::new(State {
                nodes,
                views,
                counts: RequestCounts::default(),
                missing: Vec::new(),
                missing_total: 0,
                failures: Vec::new(),
                view_changes: VecDeque::new(),
                view_changes_total: 0,
            }),
            changes: watch::channel(0).0,
        });
        let fleet = Fleet {
            shared,
            running: Mutex::new((0..slots).map(|_| None).collect()),
        };
        let workers = fleet.shared.config.workers;
        let spread = fleet.shared.config.start_spread;
        for slot in 0..slots {
            let delay = if slot < workers {
                spread.mul_f64(slot as f64 / workers as f64)
            } else {
                Duration::ZERO
            };
            let running = fleet.launch(slot, delay)?;
            lock(&fleet.running)[slot] = Some(running);
        }
        Ok(fleet)
    }

    pub fn config(&self) -> &FleetConfig {
        &self.shared.config
    }

    /// When the fleet started: [`SimTime`] values count from here.
    pub fn epoch(&self) -> Instant {
        self.shared.epoch
    }

    /// Time since the fleet started.
    pub fn now(&self) -> SimTime {
        self.shared.now()
    }

    /// Node id of worker `index`.
    pub fn worker_id(&self, index: usize) -> String {
        self.shared.config.worker_id(index)
    }

    /// Node id of coordinator `index`.
    pub fn coordinator_id(&self, index: usize) -> String {
        self.shared.config.coordinator_id(index)
    }

    /// The state of worker `index`.
    pub fn worker(&self, index: usize) -> Result<NodeReport, SimError> {
        let slot = self.worker_slot(index)?;
        Ok(lock(&self.shared.state).nodes[slot].report())
    }

    /// The current list of coordinator `index`, if there is one.
    pub fn coordinator_view(&self, index: usize) -> Option<CoordinatorView> {
        lock(&self.shared.state)
            .views
            .get(index)
            .map(|v| v.view.clone())
    }

    /// Every request outcome, event and current list so far.
    pub fn report(&self) -> FleetReport {
        let state = lock(&self.shared.state);
        FleetReport {
            started_unix_ms: self.shared.started_unix_ms,
            elapsed: self.shared.now(),
            requests: state.counts,
            missing: state.missing.clone(),
            missing_total: state.missing_total,
            failures: state.failures.clone(),
            view_changes: state.view_changes.iter().cloned().collect(),
            view_changes_total: state.view_changes_total,
            coordinators: state.views.iter().map(|v| v.view.clone()).collect(),
            nodes: state.nodes.iter().map(NodeState::report).collect(),
        }
    }

    /// Which running nodes each running coordinator does not see yet.
    pub fn convergence(&self) -> Convergence {
        let state = lock(&self.shared.state);
        let workers = self.shared.config.workers;
        let mut pending = Vec::new();
        let mut pending_total = 0;
        for (c, view) in state.views.iter().enumerate() {
            let own = workers + c;
            if !state.nodes[own].running {
                continue;
            }
            for node in state
                .nodes
                .iter()
                .enumerate()
                .filter(|(slot, node)| *slot != own && node.running)
                .map(|(_, node)| node)
            {
                // Seen: a list asked for after the node's first announcement showed it (what
                // makes its later absence a missing event), with its current service.
                let seen = node.announced_since.is_some()
                    && view.observer.is_listed(&node.node_id, node.incarnation)
                    && view.view.service_ids.contains(&node.service_id);
                if !seen {
                    pending_total += 1;
                    if pending.len() < Convergence::LISTED {
                        pending.push((view.view.coordinator.clone(), node.node_id.clone()));
                    }
                }
            }
        }
        Convergence {
            pending,
            pending_total,
        }
    }

    /// Waits until every running coordinator sees every running node in its current
    /// incarnation, or fails after `timeout` saying who still lacks whom.
    pub async fn converged(&self, timeout: Duration) -> Result<(), SimError> {
        let mut last = Convergence::default();
        let done = self
            .wait_until(timeout, |fleet| {
                last = fleet.convergence();
                last.is_converged()
            })
            .await;
        if done {
            Ok(())
        } else {
            Err(SimError::Timeout {
                what: "convergence".into(),
                timeout,
                pending: last.to_string(),
            })
        }
    }

    /// Re-evaluates `condition` after changes of the fleet's state (a request answered, a
    /// list refreshed, a node stopped) until it holds, for at most `timeout`. Returns
    /// whether it held. Changes closer together than [`Self::RECHECK`] are taken together,
    /// so a condition that looks at every node does not run thousands of times a second in
    /// a large fleet.
    pub async fn wait_until<F>(&self, timeout: Duration, mut condition: F) -> bool
    where
        F: FnMut(&Fleet) -> bool,
    {
        let deadline = Instant::now() + timeout;
        let mut changes = self.shared.changes.subscribe();
        loop {
            changes.borrow_and_update();
            if condition(self) {
                return true;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {
                    let pause =
                        Self::RECHECK.min(deadline.saturating_duration_since(Instant::now()));
                    tokio::time::sleep(pause).await;
                }
                // The sender lives as long as `self`; a timeout ends the wait.
                Ok(Err(_)) | Err(_) => return condition(self),
            }
        }
    }

    /// How often [`Self::wait_until`] re-evaluates its condition at most.
    pub const RECHECK: Duration = Duration::from_millis(20);

    /// Crashes worker `index`: it stops announcing and sends nothing else. Returns once
    /// its loops have ended; an announcement in flight is allowed to complete (and is
    /// then the worker's last one).
    pub async fn stop_worker(&self, index: usize) -> Result<Stopped, SimError> {
        let slot = self.worker_slot(index)?;
        self.stop_slot(slot, Shutdown::Crash).await
    }

    /// Shuts worker `index` down cleanly: it stops announcing, then unannounces
    /// (`DELETE`). The fleet counts it as gone before the `DELETE` is sent.
    pub async fn unannounce_worker(&self, index: usize) -> Result<Stopped, SimError> {
        let slot = self.worker_slot(index)?;
        self.stop_slot(slot, Shutdown::Clean).await
    }

    /// Starts stopped worker `index` again: same node id, new service id, new
    /// connections, announcing at once.
    pub async fn start_worker(&self, index: usize) -> Result<(), SimError> {
        let slot = self.worker_slot(index)?;
        let mut running = lock(&self.running);
        if running[slot].is_some() {
            return Err(SimError::AlreadyRunning {
                node_id: self.worker_id(index),
            });
        }
        running[slot] = Some(self.launch(slot, Duration::ZERO)?);
        Ok(())
    }

    /// Stops worker `index` the way `how` says, then starts it again.
    pub async fn restart_worker(&self, index: usize, how: Shutdown) -> Result<Stopped, SimError> {
        let slot = self.worker_slot(index)?;
        let stopped = self.stop_slot(slot, how).await?;
        self.start_worker(index).await?;
        Ok(stopped)
    }

    /// Stops every node: all are counted as gone first (so the shutdown itself causes no
    /// missing events), every loop ends, then every node unannounces. Returns the final
    /// report.
    pub async fn shutdown(self) -> FleetReport {
        let all: Vec<(usize, Running)> = lock(&self.running)
            .iter_mut()
            .enumerate()
            .filter_map(|(slot, r)| r.take().map(|r| (slot, r)))
            .collect();
        {
            let mut state = lock(&self.shared.state);
            for (slot, _) in &all {
                state.nodes[*slot].running = false;
            }
        }
        self.shared.changed();
        for (_, running) in &all {
            running.stop.send_replace(true);
        }
        let mut deletes = JoinSet::new();
        for (slot, running) in all {
            let shared = Arc::clone(&self.shared);
            deletes.spawn(async move {
                for task in running.tasks {
                    let _ = task.await;
                }
                shared.unannounce(slot, &running.client).await;
            });
        }
        while deletes.join_next().await.is_some() {}
        self.report()
    }

    fn worker_slot(&self, index: usize) -> Result<usize, SimError> {
        let workers = self.shared.config.workers;
        if index < workers {
            Ok(index)
        } else {
            Err(SimError::NoSuchWorker { index, workers })
        }
    }

    async fn stop_slot(&self, slot: usize, how: Shutdown) -> Result<Stopped, SimError> {
        let Some(running) = lock(&self.running)[slot].take() else {
            return Err(SimError::NotRunning {
                node_id: lock(&self.shared.state).nodes[slot].node_id.clone(),
            });
        };
        lock(&self.shared.state).nodes[slot].running = false;
        self.shared.changed();
        running.stop.send_replace(true);
        for task in running.tasks {
            let _ = task.await;
        }
        let unannounce = match how {
            Shutdown::Crash => None,
            Shutdown::Clean => Some(self.shared.unannounce(slot, &running.client).await),
        };
        let node = lock(&self.shared.state).nodes[slot].report();
        Ok(Stopped { node, unannounce })
    }

    /// Starts a new incarnation of the node in `slot`.
    fn launch(&self, slot: usize, start_delay: Duration) -> Result<Running, SimError> {
        let config = &self.shared.config;
        let (node_id, coordinator) = {
            let state = lock(&self.shared.state);
            (
                state.nodes[slot].node_id.clone(),
                state.nodes[slot].coordinator,
            )
        };
        let client = match &self.shared.client {
            Some(shared) => shared.clone(),
            None => build_client(config, &node_id)?,
        };
        let service_id = new_service_id();
        let announcement = node_announcement(config, &node_id, coordinator, &service_id);
        let incarnation = {
            let mut state = lock(&self.shared.state);
            let node = &mut state.nodes[slot];
            node.running = true;
            node.incarnation += 1;
            node.service_id = service_id;
            node.announced_since = None;
            node.announcements = 0;
            node.consecutive_failures = 0;
            node.incarnation
        };
        self.shared.changed();
        let (stop, stop_rx) = watch::channel(false);
        let me = Member {
            shared: Arc::clone(&self.shared),
            slot,
            incarnation,
            node_id,
            client: client.clone(),
        };
        let mut tasks = vec![tokio::spawn(me.clone().announce_loop(
            announcement,
            stop_rx.clone(),
            start_delay,
        ))];
        let workers = config.workers;
        if coordinator {
            let index = slot - workers;
            tasks.push(tokio::spawn(me.clone().lookup_loop(
                Some(index),
                stop_rx.clone(),
                start_delay,
            )));
            tasks.push(tokio::spawn(me.node_manager_loop(index, stop_rx)));
        } else if config.workers_look_up {
            tasks.push(tokio::spawn(me.lookup_loop(None, stop_rx, start_delay)));
        }
        Ok(Running {
            client,
            stop,
            tasks,
        })
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for running in lock(&self.running).iter_mut().filter_map(Option::take) {
            running.stop.send_replace(true);
            for task in running.tasks {
                task.abort();
            }
        }
    }
}

impl NodeState {
    fn new(node_id: String, coordinator: bool) -> Self {
        NodeState {
            node_id,
            coordinator,
            running: false,
            incarnation: 0,
            service_id: String::new(),
            announced_since: None,
            last_announce: None,
            announcements: 0,
            consecutive_failures: 0,
        }
    }
}

impl Shared {
    fn now(&self) -> SimTime {
        self.epoch.elapsed()
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn record_failure(
        &self,
        state: &mut State,
        kind: RequestKind,
        node_id: &str,
        span: RequestSpan,
        error: String,
    ) {
        match kind {
            RequestKind::Announce => state.counts.announce.failed += 1,
            RequestKind::Unannounce => state.counts.unannounce.failed += 1,
            RequestKind::Lookup => state.counts.lookup.failed += 1,
        }
        tracing::debug!(%kind, node_id, %error, "simulated node: request failed");
        if state.failures.len() < self.config.max_recorded_events {
            state.failures.push(RequestFailure {
                kind,
                node_id: node_id.to_owned(),
                span,
                error,
            });
        }
    }

    fn announce_done(
        &self,
        slot: usize,
        incarnation: u64,
        span: RequestSpan,
        error: Option<String>,
    ) {
        {
            let mut state = lock(&self.state);
            let state = &mut *state;
            let node = &mut state.nodes[slot];
            let current = node.incarnation == incarnation;
            match error {
                None => {
                    state.counts.announce.ok += 1;
                    if node.last_announce.is_none_or(|l| l.started <= span.started) {
                        node.last_announce = Some(span);
                    }
                    if current {
                        node.announcements += 1;
                        node.consecutive_failures = 0;
                        node.announced_since.get_or_insert(span.finished);
                    }
                }
                Some(error) => {
                    if current {
                        node.consecutive_failures = node.consecutive_failures.saturating_add(1);
                    }
                    let node_id = node.node_id.clone();
                    self.record_failure(state, RequestKind::Announce, &node_id, span, error);
                }
            }
        }
        self.changed();
    }

    /// Sends the `DELETE` of the node in `slot` and records it.
    async fn unannounce(&self, slot: usize, client: &DiscoveryClient) -> Unannounced {
        let node_id = lock(&self.state).nodes[slot].node_id.clone();
        let started = self.now();
        let result = client.unannounce(&node_id).await;
        let span = RequestSpan {
            started,
            finished: self.now(),
        };
        let error = result.err().map(|e| e.to_string());
        {
            let mut state = lock(&self.state);
            match &error {
                None => state.counts.unannounce.ok += 1,
                Some(error) => self.record_failure(
                    &mut state,
                    RequestKind::Unannounce,
                    &node_id,
                    span,
                    error.clone(),
                ),
            }
        }
        self.changed();
        Unannounced { span, error }
    }

    /// Records a lookup by `slot`; for a coordinator (`view` = its index) also updates its
    /// list (`Some` on 200, `None` on 304) and runs the node manager over it.
    fn lookup_done(
        &self,
        slot: usize,
        view: Option<usize>,
        span: RequestSpan,
        outcome: Result<Option<Vec<Service>>, String>,
    ) {
        {
            let mut state = lock(&self.state);
            let state = &mut *state;
            match outcome {
                Err(error) => {
                    if let Some(c) = view {
                        let v = &mut state.views[c].view;
                        v.consecutive_failures = v.consecutive_failures.saturating_add(1);
                    }
                    let node_id = state.nodes[slot].node_id.clone();
                    self.record_failure(state, RequestKind::Lookup, &node_id, span, error);
                }
                Ok(services) => {
                    match services {
                        Some(_) => state.counts.lookup.changed += 1,
                        None => state.counts.lookup.not_modified += 1,
                    }
                    if let Some(c) = view {
                        self.refresh_view(state, c, span, services);
                        self.observe(state, c, Source::Refresh);
                    }
                }
            }
        }
        self.changed();
    }

    fn refresh_view(
        &self,
        state: &mut State,
        c: usize,
        span: RequestSpan,
        services: Option<Vec<Service>>,
    ) {
        let view = &mut state.views[c].view;
        view.lookup = Some(span);
        view.refreshes += 1;
        view.consecutive_failures = 0;
        let Some(services) = services else {
            return;
        };
        let node_ids = services
            .iter()
            .map(|s| s.node_id.clone().unwrap_or_else(|| s.id.clone()))
            .collect();
        view.service_ids = services.into_iter().map(|s| s.id).collect();
        let (joined, left) = detect::diff(&view.node_ids, &node_ids);
        view.node_ids = node_ids;
        let coordinator = view.coordinator.clone();
        let changes = joined
            .into_iter()
            .map(|n| (n, Change::Joined))
            .chain(left.into_iter().map(|n| (n, Change::Left)));
        for (node_id, change) in changes {
            state.view_changes_total += 1;
            if state.view_changes.len() >= self.config.max_recorded_events {
                state.view_changes.pop_front();
            }
            state.view_changes.push_back(ViewChange {
                coordinator: coordinator.clone(),
                node_id,
                change,
                lookup: span,
            });
        }
    }

    /// Coordinator `c`'s node manager looks at its current list.
    fn observe(&self, state: &mut State, c: usize, source: Source) {
        let own = self.config.workers + c;
        let State {
            nodes,
            views,
            missing,
            missing_total,
            ..
        } = state;
        let ViewState { view, observer } = &mut views[c];
        let Some(lookup) = view.lookup else {
            return;
        };
        let live = nodes
            .iter()
            .enumerate()
            .filter(|(slot, node)| *slot != own && node.running)
            .filter_map(|(_, node)| {
                Some(LiveNode {
                    node_id: &node.node_id,
                    incarnation: node.incarnation,
                    announced_since: node.announced_since?,
                })
            });
        let observations = observer.observe(
            ListSnapshot {
                node_ids: &view.node_ids,
                requested_at: lookup.started,
            },
            live,
        );
        let at = self.now();
        for observation in observations {
            match observation {
                Observation::Appeared { .. } => {}
                Observation::Missing {
                    node_id,
                    incarnation,
                    last_listed,
                } => {
                    tracing::warn!(
                        coordinator = %view.coordinator,
                        "Previously active node is missing: {node_id} (incarnation {incarnation}, \
                         last listed by a lookup at {:.3}s, absent from the lookup at {:.3}s)",
                        last_listed.as_secs_f64(),
                        lookup.started.as_secs_f64(),
                    );
                    *missing_total += 1;
                    if missing.len() < self.config.max_recorded_events {
                        missing.push(MissingEvent {
                            at,
                            coordinator: view.coordinator.clone(),
                            node_id,
                            incarnation,
                            list: lookup,
                            last_listed,
                            list_size: view.node_ids.len(),
                            source,
                        });
                    }
                }
                Observation::Returned {
                    node_id,
                    missing_since,
                    ..
                } => {
                    tracing::info!(
                        coordinator = %view.coordinator,
                        "node {node_id} is listed again (missing since the lookup at {:.3}s)",
                        missing_since.as_secs_f64(),
                    );
                }
            }
        }
    }

    fn tick(&self, c: usize) {
        {
            let mut state = lock(&self.state);
            self.observe(&mut state, c, Source::Tick);
        }
        self.changed();
    }
}

/// One incarnation of one node, as its loops see it.
#[derive(Debug, Clone)]
struct Member {
    shared: Arc<Shared>,
    slot: usize,
    incarnation: u64,
    node_id: String,
    client: DiscoveryClient,
}

/// Waits `delay` unless told to stop first; returns whether to carry on.
async fn pause(stop: &mut watch::Receiver<bool>, delay: Duration) -> bool {
    if *stop.borrow_and_update() {
        return false;
    }
    let stopped = tokio::select! {
        () = tokio::time::sleep(delay) => false,
        // Also when the sender is gone: the fleet was dropped.
        _ = stop.wait_for(|stop| *stop) => true,
    };
    !stopped && !*stop.borrow()
}

impl Member {
    /// airlift's announcer: announce, then again at 80 % of `max-age` after a success or
    /// after the back-off after a failure.
    async fn announce_loop(
        self,
        announcement: DynamicAnnouncement,
        mut stop: watch::Receiver<bool>,
        start_delay: Duration,
    ) {
        if !pause(&mut stop, start_delay).await {
            return;
        }
        let mut backoff = Backoff::airlift();
        loop {
            let started = self.shared.now();
            let result = self.client.announce(&self.node_id, &announcement).await;
            let span = RequestSpan {
                started,
                finished: self.shared.now(),
            };
            let delay = match result {
                Ok(announced) => {
                    backoff.success();
                    self.shared
                        .announce_done(self.slot, self.incarnation, span, None);
                    announce_delay(announced.max_age)
                }
                Err(error) => {
                    self.shared.announce_done(
                        self.slot,
                        self.incarnation,
                        span,
                        Some(error.to_string()),
                    );
                    backoff.failure()
                }
            };
            if !pause(&mut stop, delay).await {
                return;
            }
        }
    }

    /// airlift's caching selector for `{type}/{pool}`: look up, then again `max-age` after
    /// a success (sending the last ETag) or after the back-off after a failure, keeping
    /// the last good list.
    async fn lookup_loop(
        self,
        view: Option<usize>,
        mut stop: watch::Receiver<bool>,
        start_delay: Duration,
    ) {
        if !pause(&mut stop, start_delay).await {
            return;
        }
        let config = &self.shared.config;
        let service_type = config.flavor.service_type();
        let mut etag: Option<String> = None;
        let mut backoff = Backoff::airlift();
        loop {
            let started = self.shared.now();
            let result = self
                .client
                .lookup_if_changed(service_type, &config.pool, etag.as_deref())
                .await;
            let span = RequestSpan {
                started,
                finished: self.shared.now(),
            };
            let delay = match result {
                Ok(lookup) => {
                    backoff.success();
                    let max_age = lookup.max_age();
                    etag = lookup.etag().map(str::to_owned);
                    let services = match lookup {
                        Lookup::Changed { services, .. } => Some(services.services),
                        Lookup::Unchanged { .. } => None,
                    };
                    self.shared.lookup_done(self.slot, view, span, Ok(services));
                    refresh_delay(max_age)
                }
                Err(error) => {
                    self.shared
                        .lookup_done(self.slot, view, span, Err(error.to_string()));
                    backoff.failure()
                }
            };
            if !pause(&mut stop, delay).await {
                return;
            }
        }
    }

    /// Trino's node-manager loop: every `node_manager_interval`, look at the cached list
    /// (no I/O).
    async fn node_manager_loop(self, view: usize, mut stop: watch::Receiver<bool>) {
        let mut ticks = tokio::time::interval(self.shared.config.node_manager_interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
            if *stop.borrow() {
                return;
            }
            self.shared.tick(view);
        }
    }
}

/// A client of the discovery URI for `node_id` (its User-Agent, as airlift clients send).
fn build_client(config: &FleetConfig, node_id: &str) -> Result<DiscoveryClient, SimError> {
    DiscoveryClient::builder([config.discovery_uri.as_str()])
        .environment(config.environment.clone())
        .user_agent(node_id.to_owned())
        .connect_timeout(config.connect_timeout)
        .request_timeout(config.request_timeout)
        .build()
        .map_err(|source| SimError::Client {
            node_id: node_id.to_owned(),
            source: Box::new(source),
        })
}
