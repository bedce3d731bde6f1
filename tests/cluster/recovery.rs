//! Nodes that were away, and nodes that join: they catch up by themselves, without any
//! re-announcement (cases 65, 66, 68).

use crate::support::*;

/// Cases 65/66: n2 is killed with SIGKILL, n1 takes an announcement and a static service,
/// n2 restarts on its data directory and lists both without anyone re-announcing.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_node_catches_up_after_restart_without_re_announcements() {
    let mut c = cluster(3, &[]).await;
    let before = new_id();
    announce(&c, 0, "w0", &before).await;
    wait_listed_everywhere(&c, TYPE, POOL, &before, DEADLINE).await;

    let status = c.kill(1);
    assert!(!status.success(), "SIGKILL: {status:?}");

    let service = new_id();
    announce(&c, 0, "w1", &service).await;
    let static_id = add_static(&c, 0, "db", "p").await;
    // The writes are taken and served locally while a peer is down.
    let listed = service_ids(&c, 0, TYPE, POOL).await.expect("lookup");
    assert!(listed.contains(&service), "{listed:?}");

    c.restart(1);
    wait_listed_everywhere(&c, TYPE, POOL, &service, CATCH_UP).await;
    wait_listed_everywhere(&c, "db", "p", &static_id, CATCH_UP).await;
    // Written before the kill. n2 may have lost it (dynamic writes reach its disk within
    // about 0.5 s, and SIGKILL came sooner); anti-entropy brings it back either way.
    wait_listed_everywhere(&c, TYPE, POOL, &before, CATCH_UP).await;
    wait_same_entry_everywhere(&c, 0, "dynamic", "w1").await;
    wait_same_entry_everywhere(&c, 0, "static", &static_id).await;
    c.wait_converged().await;
}

/// Case 65/66 with nothing left to push: n2 is down while n1 takes an announcement and a
/// static service; n1 is then stopped (SIGTERM gives up its pushes to the unreachable n2)
/// and started again, so its push queue is empty. n2 still gets both writes when it
/// restarts: only anti-entropy can bring them.
#[tokio::test(flavor = "multi_thread")]
async fn a_returning_node_gets_older_writes_by_anti_entropy() {
    let mut c = cluster(3, &[]).await;
    let doomed = add_static(&c, 2, "db", "p").await;
    wait_listed_everywhere(&c, "db", "p", &doomed, DEADLINE).await;
    c.kill(1);
    let service = new_id();
    announce(&c, 0, "w1", &service).await;
    let static_id = add_static(&c, 0, "db", "p").await;
    assert_eq!(
        c.delete_static(0, &doomed).await.expect("delete").as_u16(),
        204
    );

    let exit = c.terminate(0);
    assert_eq!(exit.code(), Some(0), "SIGTERM exit status: {exit:?}");
    c.restart(0);
    let listed = service_ids(&c, 0, TYPE, POOL).await.expect("lookup");
    assert!(listed.contains(&service), "n1 kept its write: {listed:?}");
    c.restart(1);

    wait_listed_everywhere(&c, TYPE, POOL, &service, CATCH_UP).await;
    wait_listed_everywhere(&c, "db", "p", &static_id, CATCH_UP).await;
    wait_same_entry_everywhere(&c, 0, "dynamic", "w1").await;
    wait_same_entry_everywhere(&c, 0, "static", &static_id).await;
    // The static delete made while n2 was down reaches it too (no resurrection either).
    wait_gone_everywhere(&c, "db", "p", &doomed).await;
    let tombstone = wait_same_entry_everywhere(&c, 0, "static", &doomed).await;
    assert_eq!(tombstone.value, None);
    // Delivered by anti-entropy: fetched by n2, or sent to n2 by a peer's round.
    let mut delivered = 0;
    for i in 0..3 {
        let status = status(&c, i).await.expect("status");
        for peer in &status.peers {
            for store in &peer.stores {
                if i == 1 {
                    delivered += store.sync_fetched;
                } else if peer.node_id == "n2" {
                    delivered += store.sync_pushed;
                }
            }
        }
    }
    assert!(
        delivered >= 2,
        "anti-entropy delivered {delivered} entries to n2"
    );
    c.wait_converged().await;
}

/// A node stopped with SIGTERM exits 0, keeps what it had, and catches up with what was
/// written while it was down.
#[tokio::test(flavor = "multi_thread")]
async fn a_terminated_node_exits_cleanly_and_catches_up() {
    let mut c = cluster(3, &[]).await;
    let before = new_id();
    announce(&c, 0, "w0", &before).await;
    let static_before = add_static(&c, 2, "db", "p").await;
    wait_listed_everywhere(&c, TYPE, POOL, &before, DEADLINE).await;
    wait_listed_everywhere(&c, "db", "p", &static_before, DEADLINE).await;

    let status = c.terminate(1);
    assert_eq!(status.code(), Some(0), "SIGTERM exit status: {status:?}");

    let during = new_id();
    announce(&c, 0, "w1", &during).await;
    let static_during = add_static(&c, 2, "db", "p").await;
    assert_eq!(c.unannounce(0, "w0").await.expect("delete").as_u16(), 204);

    c.restart(1);
    wait_listed_everywhere(&c, TYPE, POOL, &during, CATCH_UP).await;
    wait_listed_everywhere(&c, "db", "p", &static_during, CATCH_UP).await;
    wait_listed_everywhere(&c, "db", "p", &static_before, CATCH_UP).await;
    wait_gone_everywhere(&c, TYPE, POOL, &before).await;
    c.wait_converged().await;
}

/// Case 68: a fourth node with an empty data directory, added to the inventory while the
/// cluster runs, receives everything written before it joined (dynamic and static) and
/// the writes that follow.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_added_to_the_inventory_converges() {
    let mut c = cluster(3, &[]).await;
    let early = new_id();
    announce(&c, 0, "w1", &early).await;
    let static_id = add_static(&c, 1, "db", "p").await;
    let deleted = new_id();
    announce(&c, 2, "w2", &deleted).await;
    assert_eq!(c.unannounce(2, "w2").await.expect("delete").as_u16(), 204);
    c.wait_converged().await;

    let added = c.add_node().await;
    assert_eq!(c.node_id(added), "n4");
    wait_listed_everywhere(&c, TYPE, POOL, &early, CATCH_UP).await;
    wait_listed_everywhere(&c, "db", "p", &static_id, CATCH_UP).await;
    // The tombstone arrives too, so the newcomer cannot bring w2 back.
    let tombstone = wait_same_entry_everywhere(&c, 2, "dynamic", "w2").await;
    assert_eq!(tombstone.value, None);

    let late = new_id();
    announce(&c, 0, "w3", &late).await;
    wait_listed_everywhere(&c, TYPE, POOL, &late, DEADLINE).await;
    let status = status(&c, 0).await.expect("status");
    let towards_new = link(&status, "n4", "dynamic").expect("n1 replicates to n4");
    assert!(
        towards_new.pushed_entries >= 1,
        "the write was pushed to n4: {towards_new:?}"
    );
    c.wait_converged().await;
}

/// A peer that comes back on another port is followed through the inventory without a
/// restart of the others: writes flow both ways again.
#[tokio::test(flavor = "multi_thread")]
async fn a_peer_re_addressed_in_the_inventory_is_followed() {
    let mut c = cluster(3, &[]).await;
    c.kill(1);
    // Port 0: the node gets some free port (practically never its old one); the harness
    // rewrites the inventory and waits until every node lists the new URL.
    c.restart_on_new_port(1).await;

    let from_first = new_id();
    announce(&c, 0, "w1", &from_first).await;
    let from_moved = new_id();
    announce(&c, 1, "w2", &from_moved).await;
    wait_listed_everywhere(&c, TYPE, POOL, &from_first, DEADLINE).await;
    wait_listed_everywhere(&c, TYPE, POOL, &from_moved, DEADLINE).await;
    c.wait_converged().await;
}

/// With a tiny push queue, most changes for a peer that is down are dropped (and counted);
/// anti-entropy still brings that peer every one of them when it returns.
#[tokio::test(flavor = "multi_thread")]
async fn changes_dropped_from_a_full_push_queue_are_repaired() {
    let mut c = cluster(3, &[("dynamic.store.remote.queue-size", "5")]).await;
    c.kill(1);
    let mut ids = Vec::new();
    for k in 0..100 {
        let id = new_id();
        announce(&c, 0, &format!("w{k}"), &id).await;
        ids.push(id);
    }
    let status = status(&c, 0).await.expect("status");
    let towards_down = link(&status, "n2", "dynamic").expect("link to n2");
    assert!(towards_down.dropped >= 90, "{towards_down:?}");
    assert!(towards_down.queued <= 5, "{towards_down:?}");

    c.restart(1);
    let nodes = c.running();
    discovery_testkit::eventually(CATCH_UP, "all 100 on every node", || async {
        for &i in &nodes {
            let listed = service_ids(&c, i, TYPE, POOL).await?;
            let missing = ids.iter().filter(|id| !listed.contains(id)).count();
            anyhow::ensure!(missing == 0, "{} misses {missing}", c.node_id(i));
        }
        Ok::<_, anyhow::Error>(())
    })
    .await;
    c.wait_converged().await;
}
