//! The scenario every real engine goes through: a coordinator and two workers find each
//! other through three `discoveryd` nodes behind nginx, and stay all active, as the
//! coordinator itself reports in `system.runtime.nodes` polled every second, while every
//! discovery node is restarted in turn, first with SIGTERM and then with SIGKILL.
//!
//! "No node may ever be missing" is checked two ways: no poll of `system.runtime.nodes`
//! lacks a node or shows one other than `active` (and none fails), and the coordinator
//! never logs "Previously active node is missing", the line Trino and Presto write when
//! a node drops out of their discovery view, while the restarts run.
//!
//! Only lines logged after the restarts begin count: while three JVMs start on two
//! cores, a long GC pause can make the engine's own heartbeat failure detector drop a
//! worker for a moment (it logs the same line), which says nothing about discovery.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context};
use discovery_testkit::eventually;
use tokio::sync::watch;

use super::engine::{Engine, EngineCluster, START_DEADLINE};
use super::front::{now_ms, Front, Stop, NODES};

/// What the coordinator logs when a node drops out of its view.
pub const MISSING_LINE: &str = "Previously active node is missing";

/// How often the poller asks the coordinator for `system.runtime.nodes`.
const POLL_EVERY: Duration = Duration::from_secs(1);

/// One engine cluster at a time: three JVMs already keep both cores of the machine busy
/// while they start, and the tests of this binary run in parallel.
static ENGINE_SLOT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits for the one engine slot; hold the guard while the engine runs.
pub async fn engine_slot() -> tokio::sync::MutexGuard<'static, ()> {
    ENGINE_SLOT.lock().await
}

/// A discovery front and an engine cluster that uses it.
pub struct Deployment {
    // The engine stops first, then nginx and the discovery nodes.
    pub engine: EngineCluster,
    pub front: Front,
    /// `http://host:port` of the coordinator, as discovery lists it.
    pub coordinator: String,
    _slot: tokio::sync::MutexGuard<'static, ()>,
}

impl Deployment {
    /// Starts the discovery front, then the engine, and waits until every discovery node
    /// lists every engine node and the coordinator reports all of them active.
    pub async fn start(engine: Engine, overrides: &[(&str, &str)]) -> Deployment {
        let slot = engine_slot().await;
        // Every engine signs its discovery requests; the nodes insist on it.
        let front = Front::start(&[]).await;
        let uri = if engine.speaks_http2() {
            front.nginx.h2c_url()
        } else {
            front.uri()
        };
        let engine = EngineCluster::start(engine, &uri, front.cluster.block(), 2, 0, overrides);
        let mut deployment = Deployment {
            engine,
            front,
            coordinator: String::new(),
            _slot: slot,
        };
        deployment.coordinator = deployment.wait_listed_everywhere().await;
        deployment.wait_all_active().await;
        deployment
    }

    /// Waits until every running discovery node lists every engine node under the
    /// engine's service type; returns the coordinator's `http` URI.
    pub async fn wait_listed_everywhere(&mut self) -> String {
        let service_type = self.engine.engine.service_type();
        let expected = self.engine.node_ids();
        let what = format!("every discovery node to list {expected:?} as {service_type}");
        let engine = &mut self.engine;
        let front = &self.front;
        eventually(START_DEADLINE, &what, || {
            engine.assert_running();
            let expected = expected.clone();
            async move {
                for i in front.cluster.running() {
                    let listed = front.listed(i, service_type).await?;
                    ensure!(
                        expected.iter().all(|id| listed.contains(id)),
                        "discovery node {i} lists {listed:?}"
                    );
                }
                anyhow::Ok(())
            }
        })
        .await;
        self.coordinator_uri(service_type)
            .await
            .expect("the coordinator's http URI")
    }

    /// The `http` property of the coordinator's service, as discovery node 0 lists it.
    async fn coordinator_uri(&self, service_type: &str) -> anyhow::Result<String> {
        let i = self.front.cluster.running()[0];
        let set = self
            .front
            .cluster
            .get_json(i, &format!("/v1/service/{service_type}"))
            .await?;
        let coordinator_id = &self.engine.nodes[0].node_id;
        let services = set["services"].as_array().context("services")?;
        let service = services
            .iter()
            .find(|s| s["nodeId"].as_str() == Some(coordinator_id))
            .with_context(|| format!("{coordinator_id} is not listed: {set}"))?;
        Ok(service["properties"]["http"]
            .as_str()
            .with_context(|| format!("no http property: {service}"))?
            .trim_end_matches('/')
            .to_owned())
    }

    /// Waits until the coordinator reports every engine node active.
    pub async fn wait_all_active(&self) {
        let expected = self.engine.node_ids();
        eventually(
            START_DEADLINE,
            "the coordinator to report every node active",
            || async {
                let nodes = self.engine.runtime_nodes(&self.coordinator).await?;
                ensure!(
                    all_active(&nodes, &expected),
                    "system.runtime.nodes: {nodes:?}"
                );
                anyhow::Ok(())
            },
        )
        .await;
    }

    /// Every discovery node in turn, first by SIGTERM and then by SIGKILL: stopped, left
    /// down until every engine node has announced again through nginx (so clients had to
    /// go around it), started on its data directory, and the next one only once it is
    /// ready and nginx routes to it again (the documented rolling-restart procedure).
    pub async fn rolling_restarts(&mut self) -> Polls {
        let log_start = self.engine.coordinator_log().len();
        let poller = Poller::start(&self.engine, &self.coordinator);
        let node_ids = self.engine.node_ids();
        for how in [Stop::Term, Stop::Kill] {
            for i in 0..NODES {
                let stopped_at = now_ms();
                self.front.stop(i, how);
                let observer = (i + 1) % NODES;
                self.front
                    .wait_renewed_after(observer, &node_ids, stopped_at)
                    .await;
                self.front.restart(i).await;
                self.engine.assert_running();
                eprintln!(
                    "{}: discovery node {i} restarted ({how:?}); {}",
                    self.engine.engine.version(),
                    poller.summary()
                );
            }
        }
        let observations = poller.stop().await;
        Polls {
            observations,
            log_start,
        }
    }

    /// Fails unless every poll saw every node active and the coordinator logged no
    /// missing node while the restarts ran.
    pub fn assert_never_missing(&self, polls: &Polls) {
        let expected = self.engine.node_ids();
        let bad: Vec<String> = polls
            .observations
            .iter()
            .filter(|(_, nodes)| !nodes.as_ref().is_ok_and(|n| all_active(n, &expected)))
            .map(|(at, nodes)| format!("at {at}: {nodes:?}"))
            .collect();
        let log = self.engine.coordinator_log();
        let during = log.get(polls.log_start..).unwrap_or_default();
        let missing: Vec<&str> = during
            .lines()
            .filter(|l| l.contains(MISSING_LINE))
            .collect();
        assert!(
            bad.is_empty() && missing.is_empty(),
            "{} of {} polls of system.runtime.nodes lacked a node or failed: {bad:#?}\n\
             coordinator log lines {MISSING_LINE:?}: {missing:#?}\n{}\n{}",
            bad.len(),
            polls.observations.len(),
            self.engine.log_tails(60),
            self.front.cluster.logs()
        );
        assert!(
            !polls.observations.is_empty(),
            "the poller never observed the coordinator"
        );
    }
}

/// Whether `nodes` holds every one of `expected` and each of them is active.
pub fn all_active(nodes: &BTreeMap<String, String>, expected: &[String]) -> bool {
    expected
        .iter()
        .all(|id| nodes.get(id).is_some_and(|state| state == "active"))
}

/// One poll: wall-clock ms, and `system.runtime.nodes` (node id → state) or the error.
pub type Observation = (i64, Result<BTreeMap<String, String>, String>);

/// What the poller saw, and where the coordinator's log stood when it began.
pub struct Polls {
    pub observations: Vec<Observation>,
    /// Length of the coordinator's log when the restarts began.
    log_start: usize,
}

/// Polls `system.runtime.nodes` every second in the background.
struct Poller {
    observations: Arc<Mutex<Vec<Observation>>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Poller {
    fn start(engine: &EngineCluster, coordinator: &str) -> Poller {
        let observations = Arc::new(Mutex::new(Vec::new()));
        let (stop, mut stopped) = watch::channel(false);
        let query = engine.query_handle();
        let coordinator = coordinator.to_owned();
        let sink = Arc::clone(&observations);
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(POLL_EVERY);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = stopped.changed() => return,
                }
                let at = now_ms();
                let nodes = query
                    .runtime_nodes(&coordinator)
                    .await
                    .map_err(|e| format!("{e:#}"));
                if let Ok(mut sink) = sink.lock() {
                    sink.push((at, nodes));
                }
            }
        });
        Poller {
            observations,
            stop,
            task,
        }
    }

    fn summary(&self) -> String {
        let observations = self.observations.lock().expect("observations");
        let failed = observations.iter().filter(|(_, r)| r.is_err()).count();
        format!("{} polls so far, {failed} failed", observations.len())
    }

    async fn stop(self) -> Vec<Observation> {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        std::mem::take(&mut *self.observations.lock().expect("observations"))
    }
}
