//! Real Trino and Presto clusters (one coordinator, two workers) whose nodes find each
//! other through a `discoveryd` cluster, and a client for their REST statement API.
//!
//! Each node is a JVM started from the jars the Maven tree resolved
//! (`tests/interop/java/{trino-476,trino-483,presto}/target/lib`) with an
//! airlift-style `etc/config.properties` and the `node.properties` values as system
//! properties, the way the engines' own launcher passes them. Nodes listen on port 0 and
//! announce a distinct loopback address (`node.internal-address`), so the suite learns
//! their URIs from discovery itself, and a coordinator can move to another address as it
//! does on YARN.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::Value;
use tempfile::TempDir;

use super::java::{build, classpath, java_tree, JavaProcess, Jdk};

/// How long a JVM may take to start and be listed by discovery on a loaded 2-core
/// machine.
pub const START_DEADLINE: Duration = Duration::from_secs(240);

/// The `node.environment` of every engine node; the discovery nodes use the same.
pub const ENVIRONMENT: &str = discovery_testkit::ENVIRONMENT;

/// The shared secret the engines sign internal requests with.
pub const SHARED_SECRET: &str = "interop-shared-secret";

/// The real programs the suite runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Trino 476: the last release whose default node inventory is airlift discovery.
    Trino476,
    /// Trino 483, the newest whose jars resolve, with `discovery.type=airlift-discovery`.
    Trino483,
    /// Trino 483 in its own default node inventory, `discovery.type=announce`.
    Trino483Announce,
    /// Presto (Java) 0.296, the newest `presto-main` whose parent POM resolves.
    Presto,
}

impl Engine {
    pub fn version(self) -> &'static str {
        match self {
            Engine::Trino476 => "476",
            Engine::Trino483 | Engine::Trino483Announce => "483",
            Engine::Presto => "0.296",
        }
    }

    /// Whether the engine's discovery client speaks cleartext HTTP/2 (prior knowledge):
    /// Trino 483 turns `internal-communication.http2.enabled` on by default (476 has it
    /// off), so it needs nginx's h2c listener.
    pub fn speaks_http2(self) -> bool {
        matches!(self, Engine::Trino483 | Engine::Trino483Announce)
    }

    fn module(self) -> &'static str {
        match self {
            Engine::Trino476 => "trino-476",
            Engine::Trino483 | Engine::Trino483Announce => "trino-483",
            Engine::Presto => "presto",
        }
    }

    fn jdk(self) -> Jdk {
        match self {
            // Trino 476 and later need Java 24 or newer.
            Engine::Trino476 | Engine::Trino483 | Engine::Trino483Announce => Jdk::J25,
            Engine::Presto => Jdk::J17,
        }
    }

    /// The service type the engine announces its nodes under.
    pub fn service_type(self) -> &'static str {
        match self {
            Engine::Trino476 | Engine::Trino483 | Engine::Trino483Announce => "trino",
            Engine::Presto => "presto",
        }
    }

    /// The service type a coordinator announces itself under in addition.
    pub fn coordinator_type(self) -> &'static str {
        match self {
            Engine::Trino476 | Engine::Trino483 | Engine::Trino483Announce => "trino-coordinator",
            Engine::Presto => "presto-coordinator",
        }
    }

    fn user_header(self) -> &'static str {
        match self {
            Engine::Trino476 | Engine::Trino483 | Engine::Trino483Announce => "X-Trino-User",
            Engine::Presto => "X-Presto-User",
        }
    }

    /// What comes after the classpath on the `java` command line.
    fn main(self) -> Vec<String> {
        match self {
            Engine::Trino476 | Engine::Trino483 | Engine::Trino483Announce => vec![
                java_tree()
                    .join("launchers/TrinoMain.java")
                    .display()
                    .to_string(),
                self.version().into(),
            ],
            Engine::Presto => vec!["com.facebook.presto.server.PrestoServer".into()],
        }
    }

    /// JVM flags the engine insists on.
    fn jvm_flags(self) -> &'static [&'static str] {
        match self {
            Engine::Trino476 => &[],
            // Trino 483 refuses to start without the (incubating) Vector API.
            Engine::Trino483 | Engine::Trino483Announce => &["--add-modules=jdk.incubator.vector"],
            Engine::Presto => &[],
        }
    }

    /// `etc/config.properties` of one node, before the test's own overrides.
    fn config(self, coordinator: bool, discovery_uri: &str) -> Vec<(String, String)> {
        let mut config: Vec<(&str, String)> = vec![
            ("coordinator", coordinator.to_string()),
            ("discovery.uri", discovery_uri.into()),
            ("query.max-memory", "256MB".into()),
            ("query.max-memory-per-node", "64MB".into()),
        ];
        if coordinator {
            config.push(("node-scheduler.include-coordinator", "false".into()));
        }
        if coordinator && self != Engine::Trino483Announce {
            // The coordinator must use the discovery cluster, not its embedded server.
            // Trino 483 deprecates the key (with a warning) but still starts an embedded
            // server without it.
            config.push(("discovery-server.enabled", "false".into()));
        }
        match self {
            Engine::Trino476 => {
                config.push(("memory.heap-headroom-per-node", "64MB".into()));
                config.push(("internal-communication.shared-secret", SHARED_SECRET.into()));
            }
            Engine::Trino483 => {
                config.push(("memory.heap-headroom-per-node", "64MB".into()));
                config.push(("internal-communication.shared-secret", SHARED_SECRET.into()));
                // Since 477 the default is Trino's own announce inventory.
                config.push(("discovery.type", "airlift-discovery".into()));
            }
            Engine::Trino483Announce => {
                config.push(("memory.heap-headroom-per-node", "64MB".into()));
                config.push(("internal-communication.shared-secret", SHARED_SECRET.into()));
                config.push(("discovery.type", "announce".into()));
            }
            Engine::Presto => {
                // Presto signs internal requests (X-Presto-Internal-Bearer) only with JWT on.
                config.push(("internal-communication.jwt.enabled", "true".into()));
                config.push(("internal-communication.shared-secret", SHARED_SECRET.into()));
                config.push(("query.max-total-memory-per-node", "96MB".into()));
                config.push(("memory.heap-headroom-per-node", "64MB".into()));
            }
        }
        config.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }
}

/// One engine node: its directory, address and running JVM.
pub struct EngineNode {
    pub node_id: String,
    pub coordinator: bool,
    /// The address it announces (`node.internal-address`).
    pub address: String,
    /// `http-server.http.port`; 0 lets the JVM pick one, which it then announces.
    pub port: u16,
    dir: PathBuf,
    process: Option<JavaProcess>,
    /// Logs of earlier runs of this node.
    earlier_logs: String,
}

/// A coordinator and its workers.
pub struct EngineCluster {
    pub engine: Engine,
    pub nodes: Vec<EngineNode>,
    discovery_uri: String,
    overrides: Vec<(String, String)>,
    client: reqwest::Client,
    // Last, so the JVMs are killed before their directories go.
    dir: TempDir,
}

impl EngineCluster {
    /// Starts a coordinator (node id `coordinator`) and `workers` workers (`worker-1`, …)
    /// pointed at `discovery_uri`, announcing addresses `127.{block}.{101+n}.1` (the
    /// discovery nodes of the same block use `.1` to `.3`), with
    /// `overrides` on top of the engine's configuration. The coordinator listens on
    /// `coordinator_port` (0: any; announce mode needs a port known in advance, since the
    /// workers' `discovery.uri` names it), the workers on any port.
    pub fn start(
        engine: Engine,
        discovery_uri: &str,
        block: u8,
        workers: usize,
        coordinator_port: u16,
        overrides: &[(&str, &str)],
    ) -> EngineCluster {
        build();
        let dir = tempfile::tempdir().expect("temporary directory for the engine nodes");
        let client = discovery_testkit::http::http_client(Duration::from_secs(30));
        let mut cluster = EngineCluster {
            engine,
            nodes: Vec::new(),
            discovery_uri: discovery_uri.into(),
            overrides: overrides
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            client,
            dir,
        };
        for n in 0..=workers {
            let (node_id, coordinator) = if n == 0 {
                ("coordinator".to_owned(), true)
            } else {
                (format!("worker-{n}"), false)
            };
            let node_dir = cluster.dir.path().join(&node_id);
            cluster.nodes.push(EngineNode {
                node_id,
                coordinator,
                address: format!("127.{block}.{}.1", 101 + n),
                port: if coordinator { coordinator_port } else { 0 },
                dir: node_dir,
                process: None,
                earlier_logs: String::new(),
            });
            cluster.start_node(n);
        }
        cluster
    }

    /// The node ids, coordinator first.
    pub fn node_ids(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.node_id.clone()).collect()
    }

    /// Starts node `n` (again) on its directory and current address.
    pub fn start_node(&mut self, n: usize) {
        let engine = self.engine;
        let node = &self.nodes[n];
        let etc = node.dir.join("etc");
        for sub in ["etc/catalog", "plugin", "data"] {
            std::fs::create_dir_all(node.dir.join(sub)).expect("engine node directories");
        }
        let mut config: BTreeMap<String, String> = engine
            .config(node.coordinator, &self.discovery_uri)
            .into_iter()
            .collect();
        config.insert("http-server.http.port".into(), node.port.to_string());
        for (key, value) in &self.overrides {
            config.insert(key.clone(), value.clone());
        }
        let text: String = config.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(etc.join("config.properties"), text).expect("write config.properties");
        let mut args: Vec<String> = [
            // Small and quick to start: C1 only, one collector thread, 1 GB heap.
            "-Xmx1G",
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",
            "-XX:-UsePerfData",
            // Presto attaches to its own JVM at start (and fails without this), as
            // Trino's shipped jvm.config allows too; JOL's probe of the JVM would add
            // seconds to every start.
            "-Djdk.attach.allowAttachSelf=true",
            "-Djol.skipHotspotSAAttach=true",
        ]
        .iter()
        .chain(engine.jvm_flags())
        .map(|s| (*s).to_owned())
        .collect();
        for (key, value) in [
            ("node.environment", ENVIRONMENT.to_owned()),
            ("node.id", node.node_id.clone()),
            ("node.data-dir", node.dir.join("data").display().to_string()),
            ("node.internal-address", node.address.clone()),
            (
                "config",
                etc.join("config.properties").display().to_string(),
            ),
            ("plugin.dir", node.dir.join("plugin").display().to_string()),
        ] {
            args.push(format!("-D{key}={value}"));
        }
        args.push("-cp".into());
        args.push(classpath(engine.module()));
        args.extend(engine.main());
        let process = JavaProcess::start(&node.node_id, engine.jdk(), &node.dir, &args)
            .unwrap_or_else(|e| {
                panic!("cannot start {} {}: {e:#}", engine.version(), node.node_id)
            });
        self.nodes[n].process = Some(process);
    }

    /// Stops node `n` (SIGTERM, then SIGKILL after 30 s; or SIGKILL at once, as YARN
    /// does to a lost container) and keeps its log.
    pub fn stop_node(&mut self, n: usize, kill: bool) {
        let node = &mut self.nodes[n];
        if let Some(mut process) = node.process.take() {
            let status = if kill {
                process.kill()
            } else {
                process.terminate(Duration::from_secs(30))
            };
            node.earlier_logs.push_str(&process.logs());
            node.earlier_logs.push_str(&format!(
                "----- {} stopped: {status:?} -----\n",
                node.node_id
            ));
        }
    }

    /// Kills node `n` and starts it on another announced address with a new node id: a
    /// coordinator container lost and rescheduled on another YARN host.
    pub fn move_node(&mut self, n: usize, address: &str, node_id: &str) {
        self.stop_node(n, true);
        self.nodes[n].address = address.into();
        self.nodes[n].node_id = node_id.into();
        self.start_node(n);
    }

    /// Fails if a JVM has exited.
    pub fn assert_running(&mut self) {
        for node in &mut self.nodes {
            if let Some(process) = node.process.as_mut() {
                if let Some(status) = process.exited() {
                    panic!(
                        "{} exited with {status}:\n{}",
                        node.node_id,
                        discovery_testkit::logs::tail(&process.logs(), 80)
                    );
                }
            }
        }
    }

    /// Everything node `n` has logged, in every run.
    pub fn node_log(&self, n: usize) -> String {
        let node = &self.nodes[n];
        let current = node.process.as_ref().map(|p| p.logs()).unwrap_or_default();
        format!("{}{current}", node.earlier_logs)
    }

    /// The coordinator's log, every run.
    pub fn coordinator_log(&self) -> String {
        self.node_log(0)
    }

    /// The last lines of every node's log, for failure messages.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for (n, node) in self.nodes.iter().enumerate() {
            out.push_str(&format!(
                "===== {} {} log (last {lines} lines) =====\n{}\n",
                self.engine.version(),
                node.node_id,
                discovery_testkit::logs::tail(&self.node_log(n), lines)
            ));
        }
        out
    }

    /// A client for the coordinator's statement API, for tasks of their own.
    pub fn query_handle(&self) -> StatementClient {
        StatementClient {
            engine: self.engine,
            client: self.client.clone(),
        }
    }

    /// Runs `sql` on the coordinator at `coordinator` (see [`StatementClient::query`]).
    pub async fn query(&self, coordinator: &str, sql: &str) -> anyhow::Result<Vec<Vec<Value>>> {
        self.query_handle().query(coordinator, sql).await
    }

    /// `system.runtime.nodes` (see [`StatementClient::runtime_nodes`]).
    pub async fn runtime_nodes(
        &self,
        coordinator: &str,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        self.query_handle().runtime_nodes(coordinator).await
    }
}

/// The REST statement API of Trino and Presto: `POST /v1/statement`, then `nextUri`
/// until the answer has none.
#[derive(Clone)]
pub struct StatementClient {
    engine: Engine,
    client: reqwest::Client,
}

impl StatementClient {
    /// Runs `sql` through the REST statement API of the coordinator at `coordinator`
    /// (`http://host:port`) and returns the rows.
    pub async fn query(&self, coordinator: &str, sql: &str) -> anyhow::Result<Vec<Vec<Value>>> {
        let header = self.engine.user_header();
        let response = self
            .client
            .post(format!("{coordinator}/v1/statement"))
            .header(header, "interop")
            .body(sql.to_owned())
            .send()
            .await
            .with_context(|| format!("POST {coordinator}/v1/statement"))?;
        let mut page: Value = read_page(response).await?;
        let mut rows = Vec::new();
        loop {
            if let Some(error) = page.get("error") {
                bail!("query {sql:?} failed: {}", error["message"]);
            }
            if let Some(data) = page.get("data").and_then(Value::as_array) {
                for row in data {
                    rows.push(row.as_array().cloned().unwrap_or_default());
                }
            }
            let Some(next) = page.get("nextUri").and_then(Value::as_str) else {
                return Ok(rows);
            };
            let response = self
                .client
                .get(next)
                .header(header, "interop")
                .send()
                .await
                .with_context(|| format!("GET {next}"))?;
            page = read_page(response).await?;
        }
    }

    /// `system.runtime.nodes` as the coordinator sees it: node id → state.
    pub async fn runtime_nodes(
        &self,
        coordinator: &str,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let rows = self
            .query(
                coordinator,
                "SELECT node_id, state FROM system.runtime.nodes",
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                Some((
                    row.first()?.as_str()?.to_owned(),
                    row.get(1)?.as_str()?.to_owned(),
                ))
            })
            .collect())
    }
}

async fn read_page(response: reqwest::Response) -> anyhow::Result<Value> {
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("{status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("not JSON: {text}"))
}
