//! Trino 483 in its own default node inventory (`discovery.type=announce`), bridged into
//! the discovery cluster: a coordinator and two workers whose `discovery.uri` lists the
//! coordinator beside our nginx (h2c, since Trino 483 speaks HTTP/2). Every node POSTs its
//! URI to `/v1/announce` of both; discoveryd learns each node's facts from its
//! `/v1/info` and lists it as a `trino` service, replicated to every discovery node, next
//! to an airlift-mode node announced the classic way.

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::{ensure, Context};
use discovery_testkit::eventually;
use discovery_testkit::ports::free_port;
use serde_json::Value;

use crate::support::engine::{Engine, EngineCluster, SHARED_SECRET, START_DEADLINE};
use crate::support::front::Front;
use crate::support::scenario::{all_active, engine_slot};

/// The `trino` services node `i` lists, by node id.
async fn trino_services(front: &Front, i: usize) -> anyhow::Result<BTreeMap<String, Value>> {
    let set = front.cluster.get_json(i, "/v1/service/trino").await?;
    let services = set["services"].as_array().context("services")?;
    Ok(services
        .iter()
        .filter_map(|s| Some((s["nodeId"].as_str()?.to_owned(), s.clone())))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announce_mode_trino_nodes_are_listed_beside_airlift_mode_nodes_on_every_node() {
    let _slot = engine_slot().await;
    // Announce mode signs its POSTs too; the nodes insist on it.
    let front = Front::start(&[]).await;
    let block = front.cluster.block();
    // Free on every address: Trino binds the wildcard address.
    let port = free_port("0.0.0.0");
    let coordinator = format!("http://127.{block}.101.1:{port}");
    let discovery_uri = format!("{coordinator},{}", front.nginx.h2c_url());
    let mut engine = EngineCluster::start(
        Engine::Trino483Announce,
        &discovery_uri,
        block,
        2,
        port,
        &[],
    );
    let node_ids = engine.node_ids();

    // Every discovery node lists every Trino node with the facts of its /v1/info.
    let services = eventually(
        START_DEADLINE,
        "every discovery node to list the announce-mode nodes",
        || {
            engine.assert_running();
            let node_ids = node_ids.clone();
            let front = &front;
            async move {
                let mut last = BTreeMap::new();
                for i in front.cluster.running() {
                    let listed = trino_services(front, i).await?;
                    let missing: Vec<&String> = node_ids
                        .iter()
                        .filter(|id| !listed.contains_key(*id))
                        .collect();
                    ensure!(missing.is_empty(), "node {i} lacks {missing:?}: {listed:?}");
                    last = listed;
                }
                anyhow::Ok(last)
            }
        },
    )
    .await;
    for (n, node) in engine.nodes.iter().enumerate() {
        let properties = &services[&node.node_id]["properties"];
        assert_eq!(properties["discovery_type"], "announce", "{properties}");
        assert_eq!(properties["node_version"], "483", "{properties}");
        assert_eq!(
            properties["coordinator"],
            if n == 0 { "true" } else { "false" },
            "{properties}"
        );
        let uri = properties["http"].as_str().unwrap_or_default();
        assert!(
            uri.contains(&format!("{}:", node.address)),
            "{} announced {uri}, expected an address of {}",
            node.node_id,
            node.address
        );
    }

    // GET /v1/announce answers the live URIs, as Trino's coordinator does.
    let uris = front
        .cluster
        .get_json(0, "/v1/announce")
        .await
        .expect("GET /v1/announce");
    let uris = uris.as_array().cloned().unwrap_or_default();
    assert_eq!(uris.len(), 3, "GET /v1/announce: {uris:?}");

    // Trino's coordinator sees its workers through its own inventory meanwhile.
    let nodes = engine
        .runtime_nodes(&coordinator)
        .await
        .expect("system.runtime.nodes");
    assert!(all_active(&nodes, &node_ids), "{nodes:?}");

    // An airlift-mode node is listed beside them, and lookups of `trino` show both kinds.
    // The nodes require signed announcements: the CLI signs with the cluster's secret.
    let secret_dir = tempfile::tempdir().expect("temporary directory");
    let secret_file = secret_dir.path().join("shared-secret");
    std::fs::write(&secret_file, SHARED_SECRET).expect("write the secret file");
    let output = Command::new(env!("CARGO_BIN_EXE_discovery"))
        .args([
            "--uri",
            &front.uri(),
            "--shared-secret-file",
            &secret_file.display().to_string(),
            "announce",
            "--node-id",
            "airlift-worker",
        ])
        .args(["--type", "trino", "--property", "http=http://127.0.0.1:1"])
        .output()
        .expect("discovery announce");
    assert!(output.status.success(), "{output:?}");
    eventually(
        START_DEADLINE,
        "every discovery node to list both kinds",
        || async {
            for i in front.cluster.running() {
                let listed = trino_services(&front, i).await?;
                ensure!(
                    listed.contains_key("airlift-worker")
                        && node_ids.iter().all(|id| listed.contains_key(id)),
                    "node {i}: {:?}",
                    listed.keys().collect::<Vec<_>>()
                );
            }
            anyhow::Ok(())
        },
    )
    .await;
}
