//! A full peer must never drop the workers it already holds: when a push batch carries a
//! new key the peer has no room for (node 1 of two, with room for two workers), the peer still applies the renewals of the keys it
//! holds and names the refused key, and the sender drops that key instead of resending the
//! batch forever (which, before, let the held workers expire on the full peer).

use std::time::Duration;

use discovery_testkit::eventually;

use crate::support::*;

/// Renewal rounds, one a second: twice `discovery.max-age` (5 s) in all, so a worker
/// whose renewals stopped reaching node 1 would expire there within the loop, while a
/// renewal may take up to 4 s to arrive on a loaded machine without a false alarm.
const ROUNDS: usize = 10;

#[tokio::test(flavor = "multi_thread")]
async fn a_full_peer_keeps_renewing_the_workers_it_holds() {
    // Node 1 has room for two workers; node 0, where they announce, for more.
    let c = discovery_testkit::Cluster::start_with(
        options(2)
            .set("discovery.max-age", "5s")
            .set("discovery.announce-max-age", "1s")
            .set_of(1, "dynamic.store.max-entries", "2"),
    )
    .await;
    let (w1, w2, w3) = (new_id(), new_id(), new_id());
    announce(&c, 0, "w1", &w1).await;
    announce(&c, 0, "w2", &w2).await;
    wait_listed_everywhere(&c, TYPE, POOL, &w1, DEADLINE).await;
    wait_listed_everywhere(&c, TYPE, POOL, &w2, DEADLINE).await;
    // Node 1 is now full: w3 is new to it, and travels in the same batches as the
    // renewals of w1 and w2.
    announce(&c, 0, "w3", &w3).await;

    // The workers keep renewing on node 0 every second, as Trino nodes do.
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    for _ in 0..ROUNDS {
        ticks.tick().await;
        for (node, service) in [("w1", &w1), ("w2", &w2), ("w3", &w3)] {
            announce(&c, 0, node, service).await;
        }
        let listed = service_ids(&c, 1, TYPE, POOL)
            .await
            .expect("lookup on node 1");
        assert!(
            listed.contains(&w1) && listed.contains(&w2),
            "node 1 dropped a worker it held: {listed:?}\n{}",
            c.logs()
        );
    }
    let held = service_ids(&c, 1, TYPE, POOL)
        .await
        .expect("lookup on node 1");
    assert!(!held.contains(&w3), "node 1 had no room for w3: {held:?}");

    // Both sides say what happened.
    let (full_side, sender) = (c.node_id(1).to_owned(), c.node_id(0).to_owned());
    eventually(
        DEADLINE,
        "the refusals to show in both statuses",
        || async {
            let refusing = status(&c, 1).await?;
            let dynamic = refusing
                .stores
                .iter()
                .find(|s| s.name == "dynamic")
                .ok_or_else(|| anyhow::anyhow!("no dynamic store"))?;
            anyhow::ensure!(dynamic.refused_full > 0, "{full_side}: {dynamic:?}");
            let sending = status(&c, 0).await?;
            let towards = link(&sending, &full_side, "dynamic")
                .ok_or_else(|| anyhow::anyhow!("{sender} has no link to {full_side}"))?;
            anyhow::ensure!(towards.refused_by_peer > 0, "{sender}: {towards:?}");
            anyhow::Ok(())
        },
    )
    .await;
}
