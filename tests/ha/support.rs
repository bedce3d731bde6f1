//! The HA harness: three `discoveryd` processes with readiness on, a real nginx in front
//! of them, and a simulated Trino fleet (50 workers, 2 coordinators) that talks only to
//! nginx. Times are scaled down: a 3 s TTL, announcements every 0.8 s, lookups every 1 s.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, ensure};
use discovery_sim::{Fleet, FleetConfig, FleetReport, SimTime};
use discovery_testkit::logs::tail;
pub use discovery_testkit::nginx::unix_now;
use discovery_testkit::nginx::{access_field as field, Nginx};
pub use discovery_testkit::Stop;
use discovery_testkit::{discoveryd, eventually, Cluster, ClusterOptions, ENVIRONMENT};
use discovery_types::ServiceSet;

/// `discovery.max-age`: an announcement's time-to-live.
pub const TTL: Duration = Duration::from_secs(3);
/// `discovery.announce-max-age`: clients re-announce at 80 % of it (0.8 s).
pub const ANNOUNCE_MAX_AGE: Duration = Duration::from_secs(1);
/// `discovery.lookup-max-age`: clients look up again after it.
pub const LOOKUP_INTERVAL: Duration = Duration::from_secs(1);
/// `readiness.warm-up`: about one announce period.
pub const WARM_UP: Duration = Duration::from_secs(1);
/// `readiness.max-wait`.
pub const MAX_WAIT: Duration = Duration::from_secs(5);

pub const WORKERS: usize = 50;
pub const COORDINATORS: usize = 2;
pub const NODES: usize = 3;

/// Deadline for conditions that need a few rounds of everything (startup, convergence,
/// readiness after a restart); generous for a loaded 2-core machine.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Slack on top of a specified bound, for scheduling delays on a loaded machine.
pub const MARGIN: Duration = Duration::from_secs(3);

fn millis(duration: Duration) -> String {
    format!("{}ms", duration.as_millis())
}

/// Three nodes, nginx, and the fleet.
pub struct Ha {
    // Drop order: the fleet stops first, then nginx, then the nodes.
    pub fleet: Fleet,
    pub nginx: Nginx,
    pub cluster: Cluster,
}

impl Ha {
    /// Starts the cluster, waits until every node is ready, puts nginx in front, starts
    /// the fleet against nginx and waits until every coordinator sees every node.
    pub async fn start(name: &str) -> Ha {
        Self::start_with_workers(name, WORKERS).await
    }

    /// [`Ha::start`] with a fleet of `workers` workers.
    pub async fn start_with_workers(name: &str, workers: usize) -> Ha {
        // Inventory reloads (200 ms) and anti-entropy (every 1 s) are the testkit's cluster
        // defaults; the times of the fleet and of readiness are this harness's.
        let mut options = ClusterOptions::new(discoveryd!(), NODES);
        for (key, value) in [
            ("discovery.max-age", millis(TTL)),
            ("discovery.announce-max-age", millis(ANNOUNCE_MAX_AGE)),
            ("discovery.lookup-max-age", millis(LOOKUP_INTERVAL)),
            ("readiness.warm-up", millis(WARM_UP)),
            ("readiness.max-wait", millis(MAX_WAIT)),
        ] {
            options = options.set(key, &value);
        }
        let cluster = Cluster::start_with(options).await;
        for i in 0..NODES {
            wait_ready(&cluster, i).await;
        }
        let upstreams: Vec<String> = (0..NODES).map(|i| cluster.upstream(i)).collect();
        let nginx = Nginx::start(&cluster.spare_ip(0), &upstreams).await;
        let config = FleetConfig::new(nginx.url(), ENVIRONMENT)
            .workers(workers)
            .coordinators(COORDINATORS)
            .node_id_prefix(name)
            .node_manager_interval(Duration::from_millis(500));
        let fleet = Fleet::start(config).await.expect("the fleet starts");
        let ha = Ha {
            fleet,
            nginx,
            cluster,
        };
        eventually(DEADLINE, "every coordinator to see every node", || async {
            let convergence = ha.fleet.convergence();
            if convergence.is_converged() {
                Ok(())
            } else {
                Err(convergence.to_string())
            }
        })
        .await;
        ha
    }

    /// Stops node `i` (see [`Cluster::stop_in_runtime`]).
    pub fn stop_node(&mut self, i: usize, how: Stop) {
        self.cluster.stop_in_runtime(i, how);
    }

    /// Starts node `i` again on its data directory and address and waits until it is
    /// ready. Meanwhile it looks the fleet's type up on that node directly, from the
    /// moment it listens, and fails if any answer is a list lacking a running worker:
    /// before it has caught up a restarted node must answer 503, never a partial list
    /// (nginx would hand that to a coordinator). Returns when it was ready (wall clock,
    /// seconds since the epoch).
    pub async fn start_node(&mut self, i: usize) -> f64 {
        let cluster = &mut self.cluster;
        tokio::task::block_in_place(|| cluster.restart(i));
        let service_type = self.fleet.config().flavor.service_type();
        let lookup_url = self
            .cluster
            .url(i, &format!("/v1/service/{service_type}/general"));
        let ready_url = self.cluster.url(i, "/v1/health/ready");
        let client = self.cluster.client();
        let answers: Mutex<Vec<(u16, Option<BTreeSet<String>>)>> = Mutex::new(Vec::new());
        let (lookup_url, ready_url, answers_ref) = (&lookup_url, &ready_url, &answers);
        eventually(DEADLINE, &format!("node {i} to be ready"), || async move {
            let response = client.get(lookup_url).send().await?;
            let status = response.status().as_u16();
            let listed = if status == 200 {
                let set: ServiceSet = response.json().await?;
                Some(set.services.into_iter().filter_map(|s| s.node_id).collect())
            } else {
                None
            };
            answers_ref.lock().expect("answers").push((status, listed));
            let ready = client.get(ready_url).send().await?;
            ensure!(ready.status().is_success(), "{}", ready.text().await?);
            anyhow::Ok(())
        })
        .await;
        let answers = answers.into_inner().expect("answers");
        let ready_at = unix_now();
        // Every worker has been running and announced throughout.
        let workers: BTreeSet<String> = (0..self.fleet.config().workers)
            .filter(|&w| {
                self.fleet
                    .worker(w)
                    .is_ok_and(|n| n.running && n.announcements > 0)
            })
            .map(|w| self.fleet.worker_id(w))
            .collect();
        let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
        for (n, (_, listed)) in answers.iter().enumerate() {
            if let Some(listed) = listed {
                let lacking: Vec<&String> = workers.difference(listed).collect();
                assert!(
                    lacking.is_empty(),
                    "restarted node {i} answered lookup #{n} with a list lacking {} of {} \
                     running workers ({lacking:?}); statuses of its lookups until ready: \
                     {statuses:?}\n{}",
                    lacking.len(),
                    workers.len(),
                    self.cluster.node_logs(i)
                );
            }
        }
        eprintln!("node {i} restarted: lookup statuses until ready {statuses:?}");
        ready_at
    }

    /// Waits until nginx has node `i` back in rotation (see [`Nginx::wait_served_by`]).
    pub async fn wait_in_rotation(&self, i: usize, since: f64) {
        let node = self.cluster.upstream(i);
        self.nginx.wait_served_by(&node, since, DEADLINE).await;
    }

    /// Waits until every coordinator has a list from a lookup sent at or after `since`,
    /// which proves the time has passed and the fleet has been watching meanwhile.
    pub async fn wait_lookups_after(&self, since: SimTime) {
        let deadline = since.saturating_sub(self.fleet.now()) + DEADLINE;
        eventually(deadline, "coordinators to look up again", || async {
            let report = self.fleet.report();
            for view in &report.coordinators {
                match view.lookup {
                    Some(lookup) if lookup.started >= since => {}
                    other => bail!(
                        "{} last looked up {other:?}, waiting for {since:?} (now {:?})",
                        view.coordinator,
                        self.fleet.now()
                    ),
                }
            }
            Ok(())
        })
        .await;
    }

    /// Fails with a diagnosis if any node went missing or any request failed.
    pub fn assert_no_flaps(&self, what: &str) -> FleetReport {
        let report = self.fleet.report();
        assert!(
            report.missing_total == 0 && report.failed_requests() == 0,
            "{what}: {} node-missing events and {} failed requests\n{}",
            report.missing_total,
            report.failed_requests(),
            self.diagnose(&report)
        );
        report
    }

    /// The fleet's report, plus nginx's log lines around every missing event and failed
    /// request (which node answered, with what status), and nginx's error log.
    pub fn diagnose(&self, report: &FleetReport) -> String {
        let mut out = format!("{report}\n");
        let access = self.nginx.access_log();
        let lines: Vec<(f64, &str)> = access
            .lines()
            .filter_map(|line| Some((line.split(' ').next()?.parse().ok()?, line)))
            .collect();
        let unix = |t: SimTime| report.started_unix_ms as f64 / 1000.0 + t.as_secs_f64();
        let mut excerpt = |title: String, node_id: &str, from: SimTime, to: SimTime| {
            let _ = writeln!(out, "--- nginx access log: {title}");
            let (from, to) = (unix(from) - 0.5, unix(to) + 0.5);
            for (at, line) in &lines {
                if (from..=to).contains(at) && line.contains(&format!("ua=\"{node_id}\"")) {
                    let _ = writeln!(out, "{line}");
                }
            }
        };
        for event in report.missing.iter().take(10) {
            excerpt(
                format!(
                    "lookups of {} around its list lacking {}",
                    event.coordinator, event.node_id
                ),
                &event.coordinator,
                event.list.started,
                event.list.finished,
            );
        }
        for failure in report.failures.iter().take(10) {
            excerpt(
                format!(
                    "requests of {} around its failed {}",
                    failure.node_id, failure.kind
                ),
                &failure.node_id,
                failure.span.started,
                failure.span.finished,
            );
        }
        let errors: Vec<&str> = lines
            .iter()
            .map(|(_, line)| *line)
            .filter(|line| {
                !line.contains("\" 200 ")
                    && !line.contains("\" 202 ")
                    && !line.contains("\" 204 ")
                    && !line.contains("\" 304 ")
            })
            .collect();
        let _ = writeln!(
            out,
            "--- nginx access log: {} answers other than 200/202/204/304 (last 50)",
            errors.len()
        );
        for line in &errors[errors.len().saturating_sub(50)..] {
            let _ = writeln!(out, "{line}");
        }
        let retried = lines
            .iter()
            .filter(|(_, line)| line.contains("upstream_status=") && line.contains(", "))
            .count();
        let _ = writeln!(out, "--- {retried} requests nginx retried on another node");
        let _ = writeln!(
            out,
            "--- nginx error log (tail)\n{}",
            tail(&self.nginx.error_log(), 40)
        );
        out
    }

    /// Requests nginx tried on more than one node.
    pub fn retried_requests(&self) -> usize {
        self.nginx
            .access_log()
            .lines()
            .filter(|line| field(line, "upstream").contains(','))
            .count()
    }

    /// What nginx saw: answers by node and status, and how many requests it retried on
    /// another node.
    pub fn traffic_summary(&self) -> String {
        let access = self.nginx.access_log();
        let mut answers: BTreeMap<String, usize> = BTreeMap::new();
        let mut retried = 0;
        for line in access.lines() {
            let upstreams = field(line, "upstream");
            let statuses = field(line, "upstream_status");
            if upstreams.contains(',') {
                retried += 1;
            }
            for (upstream, status) in upstreams.split(',').zip(statuses.split(',')) {
                *answers.entry(format!("{upstream} {status}")).or_default() += 1;
            }
        }
        let mut out = format!(
            "nginx: {} requests, {retried} retried on another node; attempts by node and status:",
            access.lines().count()
        );
        for (key, count) in answers {
            let _ = write!(out, " [{key}] {count};");
        }
        out
    }

    /// Waits until every node (all of them running) reports the same digest roots as
    /// every other, and returns them (store → root). The testkit reads the nodes
    /// concurrently, so that nodes under constant renewals are compared at one moment.
    pub async fn wait_same_digests(&self) -> BTreeMap<String, String> {
        assert_eq!(
            self.cluster.running().len(),
            NODES,
            "comparing digests needs every node running"
        );
        self.cluster.wait_converged().await
    }
}

/// Waits until node `i` answers `GET /v1/health/ready` with 200.
pub async fn wait_ready(cluster: &Cluster, i: usize) {
    cluster.wait_ready(i, DEADLINE).await;
}
