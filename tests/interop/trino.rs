//! Real Trino in airlift-discovery mode: Trino 476 (the last release that uses airlift
//! discovery by default) and Trino 483 (the newest whose jars resolve, with
//! `discovery.type=airlift-discovery`), each one coordinator plus two workers with
//! `discovery-server.enabled=false` and `discovery.uri` pointing at nginx in front of
//! three `discoveryd` nodes. Every node signs its discovery requests with
//! `internal-communication.shared-secret` set, as production clusters do.
//!
//! Through Trino itself (`system.runtime.nodes`, polled every second) no node may ever be
//! missing while every discovery node is restarted in turn by SIGTERM and by SIGKILL.
//! The discovery nodes have the same secret and `discovery.announcement.authentication=required`,
//! so every announcement listed is one Trino signed; a Trino node with another secret,
//! claiming the coordinator's node id, is refused and never listed.

use anyhow::ensure;
use discovery_testkit::eventually;

use crate::support::engine::{Engine, EngineCluster, START_DEADLINE};
use crate::support::scenario::Deployment;

/// A second Trino coordinator with another secret and the real coordinator's node id:
/// every announcement it sends is refused (401, counted as a bad signature on the
/// discovery nodes), and discovery keeps listing only the real coordinator.
async fn an_impostor_with_the_wrong_secret_is_refused(deployment: &mut Deployment) {
    let engine = deployment.engine.engine;
    let baseline = bad_signatures(deployment)
        .await
        .expect("status of the discovery nodes");
    let mut impostor = EngineCluster::start(
        engine,
        &deployment.front.uri(),
        deployment.front.cluster.block(),
        0,
        0,
        &[(
            "internal-communication.shared-secret",
            "not-the-cluster-secret",
        )],
    );
    eventually(
        START_DEADLINE,
        "the impostor's announcements to be refused",
        || {
            impostor.assert_running();
            let deployment = &*deployment;
            async move {
                let refused = bad_signatures(deployment).await?;
                ensure!(
                    refused >= baseline + 3,
                    "bad signatures {baseline} -> {refused}"
                );
                anyhow::Ok(())
            }
        },
    )
    .await;
    let service_type = engine.coordinator_type();
    for i in deployment.front.cluster.running() {
        let set = deployment
            .front
            .cluster
            .get_json(i, &format!("/v1/service/{service_type}"))
            .await
            .expect("lookup");
        let uris: Vec<&str> = set["services"]
            .as_array()
            .map(|s| {
                s.iter()
                    .filter_map(|s| s["properties"]["http"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(
            uris.iter()
                .map(|u| u.trim_end_matches('/'))
                .collect::<Vec<_>>(),
            vec![deployment.coordinator.as_str()],
            "discovery node {i} lists only the real coordinator"
        );
    }
    deployment.wait_all_active().await;
    drop(impostor);
}

/// Announcements refused for a bad signature, summed over the running discovery nodes.
async fn bad_signatures(deployment: &Deployment) -> anyhow::Result<u64> {
    let mut total = 0;
    for i in deployment.front.cluster.running() {
        let status = deployment.front.cluster.status(i).await?;
        total += status["authFailures"]["bad_signature"]
            .as_u64()
            .unwrap_or(0);
    }
    Ok(total)
}

async fn never_loses_a_node_across_rolling_restarts(engine: Engine) {
    let mut deployment = Deployment::start(engine, &[]).await;
    let polls = deployment.rolling_restarts().await;
    deployment.assert_never_missing(&polls);
    eprintln!(
        "Trino {}: {} polls of system.runtime.nodes across 6 discovery restarts, all \
         three nodes active in each",
        engine.version(),
        polls.observations.len()
    );
    if engine == Engine::Trino476 {
        an_impostor_with_the_wrong_secret_is_refused(&mut deployment).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trino_476_never_loses_a_node_across_rolling_discovery_restarts() {
    never_loses_a_node_across_rolling_restarts(Engine::Trino476).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trino_483_in_airlift_mode_never_loses_a_node_across_rolling_discovery_restarts() {
    never_loses_a_node_across_rolling_restarts(Engine::Trino483).await;
}
