//! A node away for longer than the TTL: every announcement it holds has expired when it
//! comes back, so until it has caught up it must not answer lookups (readiness), and then
//! it must hold exactly what the others hold.

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_away_longer_than_the_ttl_returns_without_flaps_and_converges() {
    let mut ha = Ha::start("away").await;
    let stopped_at = ha.fleet.now();
    ha.stop_node(1, Stop::Term);
    // Away for a TTL and an announce period: everything it holds has expired by now.
    ha.wait_lookups_after(stopped_at + TTL + ANNOUNCE_MAX_AGE)
        .await;
    ha.assert_no_flaps("while node 1 is away");

    ha.start_node(1).await;
    let since = ha.fleet.now() + TTL + LOOKUP_INTERVAL;
    ha.wait_lookups_after(since).await;
    ha.assert_no_flaps("after node 1 returned");
    assert!(
        ha.fleet.convergence().is_converged(),
        "{}",
        ha.fleet.convergence()
    );
    // Under constant renewals the replicas still meet: the same digest on every node.
    let roots = ha.wait_same_digests().await;
    assert!(
        roots.contains_key("dynamic") && roots.contains_key("static"),
        "{roots:?}"
    );
    ha.assert_no_flaps("at the end");
}
