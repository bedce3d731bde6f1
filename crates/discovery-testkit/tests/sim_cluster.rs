//! Partitions of a cluster of whole nodes in process (`SimCluster`): announcements and
//! deletes made on both sides of a cut are seen only on their side while it lasts, and
//! everywhere once it heals. Simulated time, so every run is the same and takes no real
//! waiting.

use std::collections::BTreeSet;
use std::time::Duration;

use discovery_testkit::announcements::standard_announcement;
use discovery_testkit::{new_id, SimCluster};
use reqwest::StatusCode;

/// No worker renews in these scenarios, so announcements live far longer than any of
/// them: expiry never decides an assertion.
const MAX_AGE: Duration = Duration::from_secs(600);

/// Two anti-entropy rounds at the default `replication-interval` (1 min): what would have
/// crossed a cut by push or by anti-entropy has crossed by then.
const TWO_ROUNDS: Duration = Duration::from_secs(120);

async fn three_nodes() -> SimCluster {
    SimCluster::start_with(3, |settings| settings.max_age = MAX_AGE).await
}

async fn announce_worker(cluster: &SimCluster, on: usize, worker: &str) {
    let body = standard_announcement(&new_id(), "trino");
    assert_eq!(
        cluster.announce(on, worker, &body).await,
        StatusCode::ACCEPTED
    );
}

fn workers(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| name.to_string()).collect()
}

#[tokio::test(start_paused = true)]
async fn workers_announced_on_both_sides_of_a_partition_are_listed_everywhere_after_the_heal() {
    let cluster = three_nodes().await;
    // Node 3 (index 2) cut off from nodes 1 and 2.
    cluster.partition(&[&[0, 1], &[2]]);
    announce_worker(&cluster, 0, "worker-1").await;
    announce_worker(&cluster, 2, "worker-3").await;
    cluster.advance(TWO_ROUNDS).await;
    assert_eq!(
        cluster.listed_nodes(0, "trino").await,
        workers(&["worker-1"])
    );
    assert_eq!(
        cluster.listed_nodes(1, "trino").await,
        workers(&["worker-1"])
    );
    assert_eq!(
        cluster.listed_nodes(2, "trino").await,
        workers(&["worker-3"])
    );

    cluster.heal();
    cluster.settle().await;
    for i in 0..cluster.len() {
        assert_eq!(
            cluster.listed_nodes(i, "trino").await,
            workers(&["worker-1", "worker-3"]),
            "node {i}"
        );
    }
    cluster.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_worker_unannounced_on_one_side_of_a_partition_is_gone_everywhere_after_the_heal() {
    let cluster = three_nodes().await;
    announce_worker(&cluster, 0, "worker-1").await;
    cluster.settle().await;
    for i in 0..cluster.len() {
        assert_eq!(
            cluster.listed_nodes(i, "trino").await,
            workers(&["worker-1"])
        );
    }

    cluster.partition(&[&[0, 1], &[2]]);
    assert_eq!(
        cluster.unannounce(2, "worker-1").await,
        StatusCode::NO_CONTENT
    );
    cluster.advance(TWO_ROUNDS).await;
    assert_eq!(cluster.listed_nodes(2, "trino").await, workers(&[]));
    assert_eq!(
        cluster.listed_nodes(0, "trino").await,
        workers(&["worker-1"])
    );
    assert_eq!(
        cluster.listed_nodes(1, "trino").await,
        workers(&["worker-1"])
    );

    cluster.heal();
    cluster.settle().await;
    for i in 0..cluster.len() {
        assert_eq!(
            cluster.listed_nodes(i, "trino").await,
            workers(&[]),
            "node {i}"
        );
    }
    cluster.shutdown().await;
}
