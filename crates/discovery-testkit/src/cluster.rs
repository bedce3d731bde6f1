//! Clusters of real `discoveryd` processes replicating over loopback.
//!
//! A [`Cluster`] owns a temporary directory with one data directory per node and the
//! service inventory (`inventory.json`) every node reads. Node `i` (0-based) has node id
//! `n{i+1}` and its own loopback address `127.{block}.{i+1}.1`, where `block` is unique
//! per cluster within a test binary (and varies with the process id across binaries), so
//! parallel tests never share an address and a restarted node can take its old port back.
//!
//! With [`ClusterOptions::with_https`] every node also serves HTTPS with a certificate
//! for its own address from a CA of the cluster, trusts that CA for outgoing requests,
//! and is listed in the inventory with an `https` URL beside its `http` one, so the nodes
//! replicate over TLS; the harness itself keeps talking plain HTTP to them.
//!
//! The nodes start with an empty inventory; once every port is known the harness writes
//! the real inventory and waits until every node lists exactly its peers. Tests then drive
//! the nodes over HTTP with the helpers here and wait with [`Cluster::wait_converged`] or
//! [`crate::eventually`]. When a test panics, dropping the cluster prints every node's log.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{bail, Context};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::task::JoinSet;

use crate::http::http_client_with;
use crate::logs;
use crate::ports;
use crate::process::{DiscoveryProcess, ProcessOptions};
use crate::tls::{write_file, TestCa};
use crate::values::ENVIRONMENT;
use crate::wait::eventually;

/// How long the harness waits for a cluster-wide condition (peers listed, convergence).
pub const CLUSTER_DEADLINE: Duration = Duration::from_secs(30);

/// Log lines per node printed when a test fails.
const LOG_TAIL_LINES: usize = 400;

static NEXT_BLOCK: AtomicU32 = AtomicU32::new(0);

/// A fresh second octet for a cluster's addresses: different for every cluster of this
/// process, and offset by the process id so concurrent test binaries rarely meet.
fn next_block() -> u8 {
    let n = NEXT_BLOCK.fetch_add(1, Ordering::Relaxed);
    let base = std::process::id() % 250;
    u8::try_from((base + n) % 250 + 2).expect("block fits in a byte")
}

/// A version-4-shaped UUID for inventory entries, unique within the process.
fn inventory_uuid(block: u8, slot: u32) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let serial = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:08x}-{:04x}-4000-8000-{:012x}",
        std::process::id(),
        block,
        (u64::from(slot) << 32) | u64::from(serial)
    )
}

/// How to start a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The `discoveryd` binary.
    pub binary: PathBuf,
    /// Number of nodes started by [`Cluster::start_with`].
    pub nodes: usize,
    /// `--set` overrides for every node, applied after the cluster defaults.
    pub settings: Vec<(String, String)>,
    /// The `environment` written into the inventory file (normally [`ENVIRONMENT`]).
    pub inventory_environment: String,
    /// Environment variables of single nodes: (node index, name, value).
    pub node_env: Vec<(usize, String, String)>,
    /// `--set` overrides of single nodes, applied last: (node index, key, value).
    pub node_settings: Vec<(usize, String, String)>,
    /// Every node serves HTTPS too and is listed with an `https` URL (see the module doc).
    pub https: bool,
    /// Headers on every request of the cluster's own client (a bearer token for nodes
    /// that require one for their status and dumps).
    pub client_headers: Vec<(String, String)>,
    /// Command prefixes of single nodes: (node index, program and its arguments). The
    /// node runs as `PROGRAM ARGS... DISCOVERYD DISCOVERYD-ARGS...`.
    pub node_wrappers: Vec<(usize, Vec<String>)>,
}

impl ClusterOptions {
    pub fn new(binary: impl Into<PathBuf>, nodes: usize) -> Self {
        ClusterOptions {
            binary: binary.into(),
            nodes,
            settings: Vec::new(),
            inventory_environment: ENVIRONMENT.into(),
            node_env: Vec::new(),
            node_settings: Vec::new(),
            https: false,
            client_headers: Vec::new(),
            node_wrappers: Vec::new(),
        }
    }

    /// Runs node `index` through `prefix` (a program and its arguments, e.g. `unshare
    /// --mount sh -c '... exec "$0" "$@"'`), which is given the `discoveryd` binary and
    /// its arguments after its own: for a node that needs its own namespace or
    /// environment set up by a command. The wrapper must end by exec'ing the binary, so
    /// signals reach it. The last prefix given for a node counts.
    pub fn wrap_of<S: AsRef<str>>(mut self, index: usize, prefix: &[S]) -> Self {
        let prefix = prefix.iter().map(|a| a.as_ref().to_owned()).collect();
        self.node_wrappers.push((index, prefix));
        self
    }

    /// Sends `name: value` on every request of the cluster's client.
    pub fn client_header(mut self, name: &str, value: &str) -> Self {
        self.client_headers.push((name.into(), value.into()));
        self
    }

    /// Nodes serve HTTPS as well and replicate over it (see the module doc).
    pub fn with_https(mut self) -> Self {
        self.https = true;
        self
    }

    /// Adds one `--set` override for node `index` only.
    pub fn set_of(mut self, index: usize, key: &str, value: &str) -> Self {
        self.node_settings.push((index, key.into(), value.into()));
        self
    }

    /// Sets an environment variable of node `index` only.
    pub fn env_of(mut self, index: usize, name: &str, value: &str) -> Self {
        self.node_env.push((index, name.into(), value.into()));
        self
    }

    /// Adds or replaces one `--set` override for every node.
    pub fn set(mut self, key: &str, value: &str) -> Self {
        self.settings.retain(|(k, _)| k != key);
        self.settings.push((key.into(), value.into()));
        self
    }
}

/// A `discovery` entry of the inventory that is not a cluster node (a peer that is down,
/// hung, or a recording stub).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraPeer {
    pub node_id: String,
    /// Base URL, e.g. `http://127.9.200.1:41234`.
    pub url: String,
}

struct Node {
    node_id: String,
    inventory_id: String,
    /// Options of the next start: after the first start the port is pinned to the one
    /// the node got, so a restart keeps its address.
    options: ProcessOptions,
    process: Option<DiscoveryProcess>,
    addr: SocketAddr,
    /// The HTTPS address, in a cluster [`ClusterOptions::with_https`].
    https_addr: Option<SocketAddr>,
    /// Logs of earlier runs of this node (before restarts).
    earlier_logs: String,
}

impl Node {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The URL its peers reach it by: the `https` one when it serves HTTPS.
    fn peer_url(&self) -> String {
        match self.https_addr {
            Some(addr) => format!("https://{addr}"),
            None => self.url(),
        }
    }

    fn logs(&self) -> String {
        let current = self.process.as_ref().map(|p| p.logs()).unwrap_or_default();
        format!("{}{}", self.earlier_logs, current)
    }
}

/// How to stop a node in a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM: a clean shutdown, which must exit 0.
    Term,
    /// SIGKILL: a crash.
    Kill,
}

/// Several `discoveryd` processes that replicate with each other.
pub struct Cluster {
    // Field order matters: processes are killed before the directory is removed.
    nodes: Vec<Node>,
    /// Inventory entries listed before the nodes' own.
    extra: Vec<ExtraPeer>,
    options: ClusterOptions,
    block: u8,
    client: Client,
    /// The CA of the nodes' certificates, in a cluster with HTTPS.
    ca: Option<TestCa>,
    dir: TempDir,
}

impl Cluster {
    /// Starts `nodes` nodes with `settings` on top of the cluster defaults, writes the
    /// inventory and waits until every node lists all the others as peers.
    pub async fn start(
        binary: impl Into<PathBuf>,
        nodes: usize,
        settings: &[(&str, &str)],
    ) -> Self {
        let mut options = ClusterOptions::new(binary, nodes);
        for (key, value) in settings {
            options = options.set(key, value);
        }
        Self::start_with(options).await
    }

    /// Like [`Cluster::start`] with full options.
    pub async fn start_with(options: ClusterOptions) -> Self {
        let dir = tempfile::tempdir().expect("cannot create a temporary directory");
        let client = http_client_with(Duration::from_secs(20), &options.client_headers);
        let ca = options
            .https
            .then(|| TestCa::new("discovery cluster test CA"));
        let mut cluster = Cluster {
            nodes: Vec::new(),
            extra: Vec::new(),
            options,
            block: next_block(),
            client,
            ca,
            dir,
        };
        if let Some(ca) = &cluster.ca {
            write_file(&cluster.ca_path(), &ca.pem());
        }
        // Until the ports are known, every node reads an inventory without peers.
        cluster
            .write_inventory_text(&format!(
                r#"{{"environment":"{}","services":[]}}"#,
                cluster.options.inventory_environment
            ))
            .expect("cannot write the initial inventory");
        for _ in 0..cluster.options.nodes {
            cluster.spawn_node();
        }
        cluster.write_inventory();
        cluster.wait_for_peers().await;
        cluster
    }

    /// Starts one more node process (not yet in the inventory).
    fn spawn_node(&mut self) -> usize {
        let index = self.nodes.len();
        let node_number = index + 1;
        let node_id = format!("n{node_number}");
        let data_dir = self.dir.path().join(&node_id);
        let mut options = ProcessOptions::new(&self.options.binary, data_dir);
        options.bind_ip = format!("127.{}.{node_number}.1", self.block);
        let defaults = [
            ("node.id", node_id.clone()),
            (
                "service-inventory.uri",
                format!("file:{}", self.inventory_path().display()),
            ),
            ("service-inventory.update-interval", "200ms".into()),
            ("dynamic.store.remote.replication-interval", "1s".into()),
            ("static.store.remote.replication-interval", "1s".into()),
            ("discovery.store-cache-ttl", "0ms".into()),
        ];
        for (key, value) in defaults {
            options = options.set(key, &value);
        }
        if let Some(ca) = &self.ca {
            // A certificate for the node's own address, outside its data directory.
            let keystore = self.dir.path().join(format!("{node_id}-keystore.pem"));
            write_file(
                &keystore,
                &ca.leaf(&[options.bind_ip.as_str()]).keystore_pem(),
            );
            let https = [
                ("http-server.https.enabled", "true".to_owned()),
                ("http-server.https.port", "0".to_owned()),
                (
                    "http-server.https.keystore.path",
                    keystore.display().to_string(),
                ),
                (
                    "internal-communication.https.truststore.path",
                    self.ca_path().display().to_string(),
                ),
            ];
            for (key, value) in https {
                options = options.set(key, &value);
            }
        }
        for (key, value) in &self.options.settings {
            options = options.set(key, value);
        }
        for (_, key, value) in self
            .options
            .node_settings
            .iter()
            .filter(|(n, _, _)| *n == index)
        {
            options = options.set(key, value);
        }
        options.env = self
            .options
            .node_env
            .iter()
            .filter(|(node, _, _)| *node == index)
            .map(|(_, name, value)| (name.clone(), value.clone()))
            .collect();
        let wrapper = self
            .options
            .node_wrappers
            .iter()
            .rev()
            .find(|(n, _)| *n == index)
            .and_then(|(_, prefix)| prefix.split_first());
        if let Some((program, arguments)) = wrapper {
            let mut args = arguments.to_vec();
            args.push(options.binary.display().to_string());
            args.append(&mut options.args);
            options.args = args;
            options.binary = PathBuf::from(program);
        }
        let process = DiscoveryProcess::start(options.clone())
            .unwrap_or_else(|e| panic!("node {node_id} did not start: {e:#}\n{}", self.logs()));
        let addr = process.addr();
        let https_addr = process.https_addr();
        options.port = addr.port();
        if let Some(https) = https_addr {
            options = options.set("http-server.https.port", &https.port().to_string());
        }
        self.nodes.push(Node {
            node_id,
            inventory_id: inventory_uuid(self.block, u32::try_from(node_number).unwrap_or(0)),
            options,
            process: Some(process),
            addr,
            https_addr,
            earlier_logs: String::new(),
        });
        index
    }

    /// Number of nodes (running or stopped).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The second octet of this cluster's loopback addresses.
    pub fn block(&self) -> u8 {
        self.block
    }

    /// A loopback address of this cluster that no node uses (`127.{block}.{200+slot}.1`),
    /// for stubs and closed ports.
    pub fn spare_ip(&self, slot: u8) -> String {
        format!("127.{}.{}.1", self.block, 200u8.saturating_add(slot))
    }

    /// A URL on a port where nothing listens: a listener is bound on a spare address and
    /// closed again.
    pub fn closed_port_url(&self) -> String {
        ports::closed_url(&self.spare_ip(50))
    }

    /// The running process of node `i`.
    pub fn node(&self, i: usize) -> &DiscoveryProcess {
        self.nodes[i]
            .process
            .as_ref()
            .unwrap_or_else(|| panic!("node {} is not running", self.nodes[i].node_id))
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].process.is_some()
    }

    /// Indexes of the running nodes.
    pub fn running(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.is_running(i))
            .collect()
    }

    /// `node.id` of node `i` (`n{i+1}`).
    pub fn node_id(&self, i: usize) -> &str {
        &self.nodes[i].node_id
    }

    /// Base URL of node `i` (also while it is stopped: its last address).
    pub fn base_url(&self, i: usize) -> String {
        self.nodes[i].url()
    }

    /// `host:port` of node `i`, as an nginx upstream names it.
    pub fn upstream(&self, i: usize) -> String {
        self.nodes[i].addr.to_string()
    }

    /// `base_url(i)` + `path`.
    pub fn url(&self, i: usize, path: &str) -> String {
        format!("{}{path}", self.nodes[i].url())
    }

    /// `https://ip:port` + `path` of node `i`, in a cluster with HTTPS.
    pub fn https_url(&self, i: usize, path: &str) -> Option<String> {
        self.nodes[i]
            .https_addr
            .map(|addr| format!("https://{addr}{path}"))
    }

    /// The CA of the nodes' certificates (PEM), in a cluster with HTTPS.
    pub fn ca_pem(&self) -> Option<String> {
        self.ca.as_ref().map(TestCa::pem)
    }

    /// Where the CA of the nodes' certificates is written (the nodes' truststore).
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn inventory_path(&self) -> PathBuf {
        self.dir.path().join("inventory.json")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Every node's log (all runs), for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            out.push_str(&format!(
                "===== log of {} ({}) =====\n{}",
                node.node_id,
                node.url(),
                tail(&node.logs(), LOG_TAIL_LINES)
            ));
        }
        out
    }

    /// The log of node `i` (all runs).
    pub fn node_logs(&self, i: usize) -> String {
        self.nodes[i].logs()
    }

    /// Sends SIGKILL to node `i` and waits until it is gone.
    pub fn kill(&mut self, i: usize) -> ExitStatus {
        self.stop(i, true)
    }

    /// Sends SIGTERM to node `i` and returns its exit status.
    pub fn terminate(&mut self, i: usize) -> ExitStatus {
        self.stop(i, false)
    }

    fn stop(&mut self, i: usize, kill: bool) -> ExitStatus {
        let node = &mut self.nodes[i];
        let mut process = node
            .process
            .take()
            .unwrap_or_else(|| panic!("node {} is not running", node.node_id));
        let status = if kill {
            process.kill()
        } else {
            process.terminate()
        };
        node.earlier_logs.push_str(&process.logs());
        node.earlier_logs.push_str(&format!(
            "----- {} stopped: {status:?} -----\n",
            node.node_id
        ));
        drop(process);
        status.unwrap_or_else(|e| {
            panic!(
                "cannot stop {}: {e:#}\n{}",
                self.nodes[i].node_id,
                self.logs()
            )
        })
    }

    /// Stops node `i` the way `how` says from inside a multi-threaded tokio runtime: the
    /// wait for the process is synchronous, so the runtime thread is handed over to the
    /// other tasks meanwhile. A SIGTERM must end in exit status 0.
    pub fn stop_in_runtime(&mut self, i: usize, how: Stop) {
        let status = tokio::task::block_in_place(|| match how {
            Stop::Term => self.terminate(i),
            Stop::Kill => self.kill(i),
        });
        if how == Stop::Term {
            assert_eq!(status.code(), Some(0), "SIGTERM exit status of node {i}");
        }
    }

    /// Adds or replaces one `--set` override of node `i` for its next start.
    pub fn set_for_next_start(&mut self, i: usize, key: &str, value: &str) {
        let options = self.nodes[i].options.clone();
        self.nodes[i].options = options.set(key, value);
    }

    /// The data directory (`store.data-dir`) of node `i`.
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.nodes[i].options.data_dir.clone()
    }

    /// Starts stopped node `i` again on its data directory, address and port.
    pub fn restart(&mut self, i: usize) {
        assert!(
            self.nodes[i].process.is_none(),
            "node {} is still running",
            self.nodes[i].node_id
        );
        match DiscoveryProcess::start(self.nodes[i].options.clone()) {
            Ok(process) => {
                let node = &mut self.nodes[i];
                node.addr = process.addr();
                node.https_addr = process.https_addr();
                node.process = Some(process);
            }
            Err(e) => panic!(
                "node {} did not restart on {}: {e:#}\n{}",
                self.nodes[i].node_id,
                self.nodes[i].url(),
                self.logs()
            ),
        }
    }

    /// Starts stopped node `i` again on its data directory but on a new port, rewrites
    /// the inventory with its new address and waits until every node follows.
    pub async fn restart_on_new_port(&mut self, i: usize) {
        let https = self.nodes[i].https_addr.is_some();
        self.nodes[i].options.port = 0;
        if https {
            let options = self.nodes[i].options.clone();
            self.nodes[i].options = options.set("http-server.https.port", "0");
        }
        self.restart(i);
        let port = self.nodes[i].addr.port();
        self.nodes[i].options.port = port;
        if let Some(addr) = self.nodes[i].https_addr {
            let options = self.nodes[i].options.clone();
            self.nodes[i].options = options.set("http-server.https.port", &addr.port().to_string());
        }
        self.write_inventory();
        self.wait_for_peers().await;
    }

    /// Starts a new node with an empty data directory, adds it to the inventory and waits
    /// until every node lists its peers. Returns its index.
    pub async fn add_node(&mut self) -> usize {
        let index = self.spawn_node();
        self.write_inventory();
        self.wait_for_peers().await;
        index
    }

    /// Lists `peer` in the inventory (before the nodes) and rewrites it; call
    /// [`Cluster::wait_for_peers`] to wait until the nodes follow.
    pub fn add_extra_peer(&mut self, node_id: &str, url: &str) {
        self.extra.push(ExtraPeer {
            node_id: node_id.into(),
            url: url.trim_end_matches('/').into(),
        });
        self.write_inventory();
    }

    /// Removes the extra peer `node_id` from the inventory and rewrites it; call
    /// [`Cluster::wait_for_peers`] to wait until the nodes follow.
    pub fn remove_extra_peer(&mut self, node_id: &str) {
        self.extra.retain(|p| p.node_id != node_id);
        self.write_inventory();
    }

    /// The inventory as airlift writes it: the extra peers first, then every node (running
    /// or not), each as a `discovery` service with its `http` URL (and its `https` URL in a
    /// cluster with HTTPS).
    pub fn inventory(&self) -> Value {
        let mut services = Vec::new();
        for (slot, peer) in self.extra.iter().enumerate() {
            services.push(json!({
                "id": inventory_uuid(self.block, 1000 + u32::try_from(slot).unwrap_or(0)),
                "nodeId": peer.node_id,
                "type": "discovery",
                "pool": "general",
                "location": format!("/test/{}", peer.node_id),
                "state": "RUNNING",
                "properties": {"http": peer.url},
            }));
        }
        for node in &self.nodes {
            let mut properties = json!({"http": node.url()});
            if node.https_addr.is_some() {
                properties["https"] = json!(node.peer_url());
            }
            services.push(json!({
                "id": node.inventory_id,
                "nodeId": node.node_id,
                "type": "discovery",
                "pool": "general",
                "location": format!("/test/{}", node.node_id),
                "state": "RUNNING",
                "properties": properties,
            }));
        }
        json!({"environment": self.options.inventory_environment, "services": services})
    }

    /// Rewrites the inventory file from the current nodes and extra peers.
    pub fn write_inventory(&self) {
        let text = serde_json::to_string_pretty(&self.inventory()).expect("inventory is JSON");
        self.write_inventory_text(&text)
            .expect("cannot write the inventory");
    }

    /// Replaces the inventory file with `text` (atomically: a reader sees the old or the
    /// new file, never half of it).
    pub fn write_inventory_text(&self, text: &str) -> anyhow::Result<()> {
        let path = self.inventory_path();
        let temporary = self.dir.path().join("inventory.json.tmp");
        std::fs::write(&temporary, text).context("write the temporary inventory")?;
        std::fs::rename(&temporary, &path).context("rename the inventory into place")?;
        Ok(())
    }

    /// The peers node `i` should list according to the current inventory: every
    /// `discovery` entry other than itself (by its `https` URL when it has one), the last
    /// entry winning for a repeated id.
    pub fn expected_peers(&self, i: usize) -> BTreeMap<String, String> {
        let own = &self.nodes[i].node_id;
        let mut peers = BTreeMap::new();
        let listed = self
            .extra
            .iter()
            .map(|p| (p.node_id.clone(), p.url.clone()))
            .chain(self.nodes.iter().map(|n| (n.node_id.clone(), n.peer_url())));
        for (node_id, url) in listed {
            if node_id != *own {
                peers.insert(node_id, url);
            }
        }
        peers
    }

    /// The peers (id → URL) listed by a `/v1/replication/status` document.
    pub fn peers_of(status: &Value) -> BTreeMap<String, String> {
        status["peers"]
            .as_array()
            .map(|peers| {
                peers
                    .iter()
                    .map(|p| {
                        (
                            p["nodeId"].as_str().unwrap_or_default().to_owned(),
                            p["url"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until every running node lists exactly the peers of the inventory.
    pub async fn wait_for_peers(&self) {
        let wanted: Vec<(usize, BTreeMap<String, String>)> = self
            .running()
            .into_iter()
            .map(|i| (i, self.expected_peers(i)))
            .collect();
        eventually(CLUSTER_DEADLINE, "every node to list its peers", || async {
            for (i, expected) in &wanted {
                let status = self.status(*i).await?;
                let listed = Self::peers_of(&status);
                if listed != *expected {
                    bail!(
                        "{} lists peers {listed:?}, expected {expected:?}",
                        self.node_id(*i)
                    );
                }
            }
            Ok(())
        })
        .await
    }

    /// Waits until every running node reports the same digest root for every store, and
    /// returns those roots (store name → root).
    pub async fn wait_converged(&self) -> BTreeMap<String, String> {
        eventually(CLUSTER_DEADLINE, "the cluster to converge", || async {
            let mut first: Option<(usize, BTreeMap<String, String>)> = None;
            for (i, roots) in self.running_digest_roots().await? {
                match &first {
                    None => first = Some((i, roots)),
                    Some((j, expected)) if *expected != roots => bail!(
                        "{} has roots {roots:?}, {} has {expected:?}",
                        self.node_id(i),
                        self.node_id(*j)
                    ),
                    Some(_) => {}
                }
            }
            Ok(first.map(|(_, roots)| roots).unwrap_or_default())
        })
        .await
    }

    /// The digest roots of every running node (node index → store name → root), in node
    /// order. The statuses are read concurrently: under constant renewals the roots
    /// change all the time, and reads one after the other would compare different moments.
    pub async fn running_digest_roots(
        &self,
    ) -> anyhow::Result<Vec<(usize, BTreeMap<String, String>)>> {
        let mut reads = JoinSet::new();
        for i in self.running() {
            let client = self.client.clone();
            let url = self.url(i, "/v1/replication/status");
            reads.spawn(async move {
                let status: Value = client
                    .get(&url)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .with_context(|| format!("GET {url}"))?
                    .json()
                    .await
                    .with_context(|| format!("GET {url}: not JSON"))?;
                anyhow::Ok((i, Self::digest_roots(&status)))
            });
        }
        let mut roots = Vec::new();
        while let Some(read) = reads.join_next().await {
            roots.push(read.context("a status read panicked")??);
        }
        roots.sort();
        Ok(roots)
    }

    /// store name → digest root, from a status document.
    pub fn digest_roots(status: &Value) -> BTreeMap<String, String> {
        status["stores"]
            .as_array()
            .map(|stores| {
                stores
                    .iter()
                    .map(|s| {
                        (
                            s["name"].as_str().unwrap_or_default().to_owned(),
                            s["digestRoot"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    // ---- HTTP helpers. They return errors rather than panic, so they can be polled. ----

    /// GET `path` on node `i`, expecting 200 and a JSON body.
    pub async fn get_json(&self, i: usize, path: &str) -> anyhow::Result<Value> {
        let url = self.url(i, path);
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .with_context(|| format!("GET {url}"))?;
        if status != StatusCode::OK {
            bail!("GET {url}: {status} {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("GET {url}: not JSON: {text}"))
    }

    /// Waits until node `i` answers `GET /v1/health/ready` with a success.
    pub async fn wait_ready(&self, i: usize, timeout: Duration) {
        let url = self.url(i, "/v1/health/ready");
        eventually(timeout, &format!("node {i} to be ready"), || async {
            let response = self.client.get(&url).send().await?;
            let status = response.status();
            let body = response.text().await?;
            if status.is_success() {
                anyhow::Ok(())
            } else {
                bail!("{status}: {body}")
            }
        })
        .await;
    }

    /// `GET /v1/replication/status` of node `i`.
    pub async fn status(&self, i: usize) -> anyhow::Result<Value> {
        self.get_json(i, "/v1/replication/status").await
    }

    /// `GET /v1/service/{type}/{pool}` of node `i`.
    pub async fn lookup(&self, i: usize, service_type: &str, pool: &str) -> anyhow::Result<Value> {
        self.get_json(i, &format!("/v1/service/{service_type}/{pool}"))
            .await
    }

    /// `GET /v1/store/{store}` of node `i`: every raw entry.
    pub async fn raw_store(&self, i: usize, store: &str) -> anyhow::Result<Value> {
        self.get_json(i, &format!("/v1/store/{store}")).await
    }

    /// `PUT /v1/announcement/{node_id}` on node `i` with a JSON body; returns the status.
    pub async fn announce(
        &self,
        i: usize,
        node_id: &str,
        body: &Value,
    ) -> anyhow::Result<StatusCode> {
        let url = self.url(i, &format!("/v1/announcement/{node_id}"));
        let response = self
            .client
            .put(&url)
            .json(body)
            .send()
            .await
            .with_context(|| format!("PUT {url}"))?;
        Ok(response.status())
    }

    /// `DELETE /v1/announcement/{node_id}` on node `i`; returns the status.
    pub async fn unannounce(&self, i: usize, node_id: &str) -> anyhow::Result<StatusCode> {
        self.delete(i, &format!("/v1/announcement/{node_id}")).await
    }

    /// `POST /v1/announcement/static` on node `i`; returns the status and the body.
    pub async fn add_static(&self, i: usize, body: &Value) -> anyhow::Result<(StatusCode, Value)> {
        self.post_json(i, "/v1/announcement/static", body).await
    }

    /// `DELETE /v1/announcement/static/{id}` on node `i`; returns the status.
    pub async fn delete_static(&self, i: usize, id: &str) -> anyhow::Result<StatusCode> {
        self.delete(i, &format!("/v1/announcement/static/{id}"))
            .await
    }

    /// POST a JSON body; returns the status and the body (JSON, or a string if it is not).
    pub async fn post_json(
        &self,
        i: usize,
        path: &str,
        body: &Value,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let url = self.url(i, path);
        let response = self
            .client
            .post(&url)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .with_context(|| format!("POST {url}"))?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    /// DELETE `path` on node `i`; returns the status.
    pub async fn delete(&self, i: usize, path: &str) -> anyhow::Result<StatusCode> {
        let url = self.url(i, path);
        let response = self
            .client
            .delete(&url)
            .send()
            .await
            .with_context(|| format!("DELETE {url}"))?;
        Ok(response.status())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

/// The last `lines` lines of `text`, without the request-log lines of the harness's own
/// status polls (they would crowd out everything else).
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let kept: Vec<&str> = all
        .iter()
        .copied()
        .filter(|l| !l.contains("GET /v1/replication/status"))
        .collect();
    let start = kept.len().saturating_sub(lines);
    format!(
        "({} status-poll lines omitted{})\n{}\n",
        all.len() - kept.len(),
        if start > 0 {
            format!(", {start} earlier lines")
        } else {
            String::new()
        },
        logs::tail(&kept.join("\n"), lines)
    )
}
