//! `/metrics` of a replicating node: per-peer series labelled with the peers' node ids
//! (from the inventory), with live push, queue, lag, anti-entropy and clock values.

use discovery_testkit::eventually;
use discovery_testkit::metrics::{parse, select, value, Sample};

use crate::support::*;

async fn scrape(c: &discovery_testkit::Cluster, i: usize) -> anyhow::Result<Vec<Sample>> {
    let url = c.url(i, "/metrics");
    let response = c.client().get(&url).send().await?;
    anyhow::ensure!(
        response.status().is_success(),
        "GET {url}: {}",
        response.status()
    );
    let text = response.text().await?;
    parse(&text).map_err(|e| anyhow::anyhow!("GET {url}: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_peer_has_its_replication_series_with_live_values() {
    let c = cluster(3, &[]).await;
    announce(&c, 0, "w1", &new_id()).await;
    c.wait_converged().await;

    let peers = ["n2", "n3"];
    let samples = eventually(
        DEADLINE,
        "n1's metrics to show pushes and rounds to both peers",
        || async {
            let samples = scrape(&c, 0).await?;
            for peer in peers {
                let pushes = value(
                    &samples,
                    "discovery_replication_pushes_total",
                    &[("peer", peer), ("result", "ok")],
                );
                anyhow::ensure!(
                    pushes.is_some_and(|v| v >= 1.0),
                    "pushes to {peer}: {pushes:?}"
                );
                let rounds = value(
                    &samples,
                    "discovery_anti_entropy_rounds_total",
                    &[("peer", peer), ("result", "ok")],
                );
                anyhow::ensure!(
                    rounds.is_some_and(|v| v >= 1.0),
                    "rounds with {peer}: {rounds:?}"
                );
                let offset = value(
                    &samples,
                    "discovery_clock_offset_seconds",
                    &[("peer", peer)],
                );
                anyhow::ensure!(offset.is_some(), "clock offset of {peer}: none yet");
            }
            anyhow::Ok(samples)
        },
    )
    .await;

    for peer in peers {
        let entries = value(
            &samples,
            "discovery_replication_changes_total",
            &[("peer", peer), ("result", "entry")],
        );
        assert!(entries.is_some_and(|v| v >= 1.0), "{peer}: {entries:?}");
        for store in ["dynamic", "static"] {
            let depth = value(
                &samples,
                "discovery_replication_queue_depth",
                &[("peer", peer), ("store", store)],
            );
            assert!(depth.is_some(), "queue depth of {peer}/{store}");
        }
        let lag = value(
            &samples,
            "discovery_replication_lag_seconds",
            &[("peer", peer)],
        );
        assert!(lag.is_some_and(|v| v >= 0.0), "lag of {peer}: {lag:?}");
        for direction in ["sent", "received"] {
            let bytes = value(
                &samples,
                "discovery_anti_entropy_bytes_total",
                &[("peer", peer), ("direction", direction)],
            );
            // Agreeing replicas exchange almost nothing (a 304 has no body): present, and
            // counting, is what can be asserted.
            assert!(
                bytes.is_some_and(|v| v >= 0.0),
                "{peer} {direction}: {bytes:?}"
            );
        }
        let offset = value(
            &samples,
            "discovery_clock_offset_seconds",
            &[("peer", peer)],
        )
        .expect("an offset");
        assert!(offset.abs() < 5.0, "one machine, one clock: {offset}");
    }
    // Peers are exactly the inventory's other nodes: never this node, never anything else.
    let labelled: std::collections::BTreeSet<&str> = samples
        .iter()
        .filter(|s| {
            s.name.starts_with("discovery_replication_")
                || s.name.starts_with("discovery_anti_entropy_")
        })
        .filter_map(|s| s.labels.get("peer").map(String::as_str))
        .collect();
    assert_eq!(labelled, peers.into_iter().collect(), "peer labels");
    assert!(
        select(&samples, "discovery_ready", &[]).any(|s| s.value == 1.0),
        "n1 is ready"
    );
    // The announcement is live on n1.
    assert_eq!(
        value(
            &samples,
            "discovery_store_entries",
            &[("store", "dynamic"), ("state", "live")]
        ),
        Some(1.0)
    );
}
