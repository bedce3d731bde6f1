//! Peers that cannot be reached never slow writes down nor hold the others back (case 70).

use anyhow::Context;
use discovery_testkit::announcements::standard_announcement;
use discovery_testkit::eventually;
use reqwest::StatusCode;

use crate::support::*;

const WRITES: usize = 200;

/// Announces `WRITES` nodes on node 0, asserting 202 for each, and returns their service ids.
async fn announce_many(c: &discovery_testkit::Cluster) -> Vec<String> {
    let mut ids = Vec::new();
    for k in 0..WRITES {
        let id = new_id();
        let status = c
            .announce(0, &format!("w{k}"), &standard_announcement(&id, TYPE))
            .await
            .expect("announce");
        assert_eq!(status, StatusCode::ACCEPTED, "write {k}");
        ids.push(id);
    }
    ids
}

/// Waits until every running node lists all of `ids`.
async fn wait_all_listed(c: &discovery_testkit::Cluster, ids: &[String]) {
    let nodes = c.running();
    eventually(DEADLINE, "every write on every live node", || async {
        for &i in &nodes {
            let listed = service_ids(c, i, TYPE, POOL).await?;
            let missing = ids.iter().filter(|id| !listed.contains(id)).count();
            anyhow::ensure!(
                missing == 0,
                "{} misses {missing} of {}",
                c.node_id(i),
                ids.len()
            );
        }
        Ok::<_, anyhow::Error>(())
    })
    .await
}

/// Case 70: the inventory lists a peer `ghost` on a closed port. Every write still gets
/// 202, the live peers get all of them, and n1 reports failed pushes towards `ghost`.
#[tokio::test(flavor = "multi_thread")]
async fn a_peer_on_a_closed_port_does_not_hold_writes_back() {
    let mut c = cluster(3, &[]).await;
    let ghost = c.closed_port_url();
    c.add_extra_peer("ghost", &ghost);
    c.wait_for_peers().await;

    let ids = announce_many(&c).await;
    wait_all_listed(&c, &ids).await;
    c.wait_converged().await;

    eventually(DEADLINE, "push failures towards ghost", || async {
        let status = status(&c, 0).await?;
        let towards_ghost = link(&status, "ghost", "dynamic").context("no link to ghost")?;
        anyhow::ensure!(
            towards_ghost.push_failures >= 1 && towards_ghost.last_error.is_some(),
            "{towards_ghost:?}"
        );
        Ok::<_, anyhow::Error>(())
    })
    .await;

    // Taken out of the inventory, the ghost stops being a peer, without a restart.
    c.remove_extra_peer("ghost");
    c.wait_for_peers().await;
}

/// Case 70, hung variant: a peer that accepts connections and never answers, with a
/// one-hour request timeout. Writes still complete and the live peers still converge;
/// a write waiting on replication would run into the deadlines here.
#[tokio::test(flavor = "multi_thread")]
async fn a_hung_peer_does_not_hold_writes_back() {
    let mut c = cluster(3, &[("replication.request-timeout", "1h")]).await;
    let hole = Stub::hanging(&c.spare_ip(1)).await;
    c.add_extra_peer("hole", hole.url());
    c.wait_for_peers().await;

    let ids = announce_many(&c).await;
    let static_id = add_static(&c, 0, "db", "p").await;
    wait_all_listed(&c, &ids).await;
    wait_listed_everywhere(&c, "db", "p", &static_id, DEADLINE).await;
    c.wait_converged().await;

    // The hung peer was really contacted (by pushes or anti-entropy).
    eventually(DEADLINE, "connections to the hung peer", || async {
        let accepted = hole.accepted();
        if accepted >= 1 {
            Ok(accepted)
        } else {
            Err("no connection yet")
        }
    })
    .await;
    // And it did not stop writes on n2 from reaching n1 either.
    let other = new_id();
    announce(&c, 1, "x1", &other).await;
    wait_listed_everywhere(&c, TYPE, POOL, &other, DEADLINE).await;

    // A push to the hung peer is still pending; SIGTERM still ends the node cleanly (the
    // drain gives up after replication.drain-timeout).
    announce(&c, 0, "x2", &new_id()).await;
    let exit = c.terminate(0);
    assert_eq!(exit.code(), Some(0), "SIGTERM with a hung peer: {exit:?}");
}
