//! Real Presto (Java), one coordinator plus two workers, with `discovery.uri` pointing at
//! nginx in front of three `discoveryd` nodes: no node may ever be missing from
//! `system.runtime.nodes` while every discovery node is restarted in turn (SIGTERM, then
//! SIGKILL). Then the Presto-on-YARN flow: the coordinator's container is lost and it
//! comes back on another host with a new node id; scripts that ask discovery where it is
//! (`discovery lookup presto-coordinator --property http`) get the new URI within one
//! `discovery.max-age`, and a query through that URI succeeds.

use std::process::Command;
use std::time::Duration;

use anyhow::ensure;
use discovery_testkit::eventually;

use crate::support::engine::{Engine, START_DEADLINE};
use crate::support::scenario::Deployment;

/// `discovery.max-age` of the discovery nodes (the default).
const MAX_AGE: Duration = Duration::from_secs(30);

/// Slack on top of a bound, for a loaded 2-core machine.
const MARGIN: Duration = Duration::from_secs(5);

/// `discovery lookup {service_type} --property http` against `uri`: the lines it prints.
fn cli_lookup(uri: &str, service_type: &str) -> anyhow::Result<Vec<String>> {
    let output = Command::new(env!("CARGO_BIN_EXE_discovery"))
        .args(["--uri", uri, "lookup", service_type, "--property", "http"])
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "exit {}: {stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(stdout
        .lines()
        .map(|l| l.trim_end_matches('/').to_owned())
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presto_never_loses_a_node_and_follows_a_moving_coordinator() {
    let engine = Engine::Presto;
    let mut deployment = Deployment::start(engine, &[]).await;
    let polls = deployment.rolling_restarts().await;
    deployment.assert_never_missing(&polls);
    eprintln!(
        "Presto {}: {} polls of system.runtime.nodes across 6 discovery restarts",
        engine.version(),
        polls.observations.len()
    );

    let uri = deployment.front.uri();
    let old = cli_lookup(&uri, engine.coordinator_type()).expect("lookup of the coordinator");
    assert_eq!(old, vec![deployment.coordinator.clone()], "before the move");

    // The container is lost (SIGKILL: no unannouncement) and rescheduled elsewhere.
    let new_address = format!("127.{}.110.1", deployment.front.cluster.block());
    deployment
        .engine
        .move_node(0, &new_address, "coordinator-yarn-2");
    let new_uri = eventually(
        START_DEADLINE,
        "the moved coordinator to be listed",
        || async {
            let listed = cli_lookup(&uri, engine.coordinator_type())?;
            let moved: Vec<&String> = listed.iter().filter(|u| u.contains(&new_address)).collect();
            ensure!(moved.len() == 1, "listed: {listed:?}");
            anyhow::Ok(moved[0].clone())
        },
    )
    .await;
    // Its predecessor's entry expires within one max-age of its last renewal, which was
    // before the new one started: from now on scripts see only the new URI.
    eventually(
        MAX_AGE + MARGIN,
        "the lost coordinator's entry to expire",
        || async {
            let listed = cli_lookup(&uri, engine.coordinator_type())?;
            ensure!(listed == vec![new_uri.clone()], "listed: {listed:?}");
            anyhow::Ok(())
        },
    )
    .await;

    // The workers follow it through discovery, and a query through the new URI runs.
    deployment.coordinator = new_uri.clone();
    deployment.wait_all_active().await;
    let rows = deployment
        .engine
        .query(&new_uri, "SELECT count(*) FROM system.runtime.nodes")
        .await
        .expect("a query through the moved coordinator");
    assert_eq!(
        rows,
        vec![vec![serde_json::json!(3)]],
        "nodes seen by the new coordinator"
    );
}
