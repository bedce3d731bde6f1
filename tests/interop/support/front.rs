//! Three `discoveryd` nodes behind a real nginx configured from `deploy/nginx`: the
//! deployment the real Trino and Presto clusters of this suite talk to through one
//! stable `discovery.uri`, with the shipped readiness defaults (a restarted node answers
//! lookups only once it has caught up).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{ensure, Context};
use discovery_testkit::nginx::{unix_now, Nginx};
pub use discovery_testkit::now_ms;
pub use discovery_testkit::Stop;
use discovery_testkit::{discoveryd, Cluster, ClusterOptions};
use serde_json::Value;

use super::engine::SHARED_SECRET;

/// Deadline for a discovery node to restart and become ready, or for nginx to route to
/// it again, on a 2-core machine that also runs three JVMs.
pub const NODE_DEADLINE: Duration = Duration::from_secs(90);

/// The discovery cluster size.
pub const NODES: usize = 3;

/// The operator token the harness reads secured nodes' stores and status with.
const OPERATOR_TOKEN: &str = "interop-operator-token-0123456789";

/// The cluster and nginx in front of it. nginx is dropped first.
pub struct Front {
    pub nginx: Nginx,
    pub cluster: Cluster,
    /// Holds the operator tokens file.
    _tokens: tempfile::TempDir,
}

impl Front {
    /// Starts three nodes (environment `testing`, as the engines are configured) with the
    /// shipped readiness defaults plus `settings`, waits until they are ready and puts
    /// nginx in front. Every node has the engines' shared secret and requires every
    /// announcement to carry a valid token for its node: what a Trino or Presto node
    /// sends must pass, or it is never listed. The harness reads stores and status with
    /// an operator token.
    pub async fn start(settings: &[(&str, &str)]) -> Front {
        let tokens = tempfile::tempdir().expect("temporary directory");
        let file = tokens.path().join("operator-tokens");
        std::fs::write(&file, format!("{OPERATOR_TOKEN} write\n")).expect("write the tokens file");
        let mut options = ClusterOptions::new(discoveryd!(), NODES)
            // The testkit turns readiness off for speed; here it is what is under test.
            .set("readiness.warm-up", "10s")
            .set("readiness.max-wait", "1m")
            .set("internal-communication.shared-secret", SHARED_SECRET)
            .set("discovery.announcement.authentication", "required")
            .set(
                "discovery.operator-tokens-file",
                &file.display().to_string(),
            )
            .client_header("authorization", &format!("Bearer {OPERATOR_TOKEN}"));
        for (key, value) in settings {
            options = options.set(key, value);
        }
        let cluster = Cluster::start_with(options).await;
        for i in 0..NODES {
            cluster.wait_ready(i, NODE_DEADLINE).await;
        }
        let upstreams: Vec<String> = (0..NODES).map(|i| cluster.upstream(i)).collect();
        let nginx = Nginx::start(&cluster.spare_ip(0), &upstreams).await;
        Front {
            nginx,
            cluster,
            _tokens: tokens,
        }
    }

    /// The stable `discovery.uri` (nginx).
    pub fn uri(&self) -> String {
        self.nginx.url()
    }

    /// Stops node `i` (see [`Cluster::stop_in_runtime`]).
    pub fn stop(&mut self, i: usize, how: Stop) {
        self.cluster.stop_in_runtime(i, how);
    }

    /// Starts node `i` again on its data directory and address, waits until it is ready
    /// and then until nginx routes to it again, as the documented rolling-restart
    /// procedure says (deploy/nginx/README.md).
    pub async fn restart(&mut self, i: usize) {
        let cluster = &mut self.cluster;
        tokio::task::block_in_place(|| cluster.restart(i));
        self.cluster.wait_ready(i, NODE_DEADLINE).await;
        let ready_at = unix_now();
        self.nginx
            .wait_served_by(&self.cluster.upstream(i), ready_at, NODE_DEADLINE)
            .await;
    }

    /// The raw dynamic entries of node `i`, by key (the announcing node's id): the
    /// timestamp of each one's last write.
    pub async fn renewals(&self, i: usize) -> anyhow::Result<BTreeMap<String, i64>> {
        let entries = self.cluster.raw_store(i, "dynamic").await?;
        let entries = entries.as_array().context("store dump is not an array")?;
        let mut out = BTreeMap::new();
        for entry in entries {
            if entry.get("value").is_some_and(|v| !v.is_null()) {
                let key = decode_key(entry)?;
                let timestamp = entry["timestamp"].as_i64().context("entry timestamp")?;
                out.insert(key, timestamp);
            }
        }
        Ok(out)
    }

    /// Waits until every one of `node_ids` has announced, through nginx, at or after
    /// `since_ms` (wall clock), as seen by the running node `observer`. Proves that the
    /// clients went on announcing while a node was down or after it came back.
    pub async fn wait_renewed_after(&self, observer: usize, node_ids: &[String], since_ms: i64) {
        discovery_testkit::eventually(
            NODE_DEADLINE,
            &format!("every engine node to announce again (seen by node {observer})"),
            || async {
                let renewals = self.renewals(observer).await?;
                let stale: Vec<String> = node_ids
                    .iter()
                    .filter(|id| renewals.get(*id).is_none_or(|&t| t < since_ms))
                    .cloned()
                    .collect();
                ensure!(stale.is_empty(), "not renewed since {since_ms}: {stale:?}");
                anyhow::Ok(())
            },
        )
        .await;
    }

    /// The node ids listed under `service_type` by node `i`.
    pub async fn listed(&self, i: usize, service_type: &str) -> anyhow::Result<BTreeSet<String>> {
        let set = self
            .cluster
            .get_json(i, &format!("/v1/service/{service_type}"))
            .await?;
        Ok(node_ids(&set))
    }
}

/// The `nodeId`s of a service-set answer.
pub fn node_ids(set: &Value) -> BTreeSet<String> {
    set["services"]
        .as_array()
        .map(|services| {
            services
                .iter()
                .filter_map(|s| s["nodeId"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The key of a raw store entry as text. The dump shows keys the way the store holds
/// them; airlift's JSON encodes byte arrays as base64.
fn decode_key(entry: &Value) -> anyhow::Result<String> {
    use base64::Engine as _;
    let key = entry["key"].as_str().context("entry key")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key)
        .with_context(|| format!("entry key {key} is not base64"))?;
    String::from_utf8(bytes).context("entry key is not UTF-8")
}
