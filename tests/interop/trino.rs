//! Real Trino in airlift-discovery mode: Trino 476 (the last release that uses airlift
//! discovery by default) and Trino 483 (the newest whose jars resolve, with
//! `discovery.type=airlift-discovery`), each one coordinator plus two workers with
//! `discovery-server.enabled=false` and `discovery.uri` pointing at nginx in front of
//! three `discoveryd` nodes. Every node signs its discovery requests with
//! `internal-communication.shared-secret` set, as production clusters do.
//!
//! Through Trino itself (`system.runtime.nodes`, polled every second) no node may ever be
//! missing while every discovery node is restarted in turn by SIGTERM and by SIGKILL.

use crate::support::engine::Engine;
use crate::support::scenario::Deployment;

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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trino_476_never_loses_a_node_across_rolling_discovery_restarts() {
    never_loses_a_node_across_rolling_restarts(Engine::Trino476).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trino_483_in_airlift_mode_never_loses_a_node_across_rolling_discovery_restarts() {
    never_loses_a_node_across_rolling_restarts(Engine::Trino483).await;
}
