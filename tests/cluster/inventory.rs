//! The service inventory as the source of peers: the own entry is never a peer (case 69),
//! a different environment is used anyway (case 72), a broken file keeps the last good
//! peer set.

use anyhow::ensure;
use discovery_testkit::eventually;

use crate::support::*;

/// Case 69: a node never lists its own inventory entry as a peer, and never contacts it,
/// even when the inventory lists its id a second time at another URL (a request-recording
/// stub, listed before the real entry so the others use the real one).
#[tokio::test(flavor = "multi_thread")]
async fn a_node_never_replicates_with_its_own_entry() {
    let mut c = cluster(3, &[]).await;
    for i in 0..3 {
        let status = status(&c, i).await.expect("status");
        let own = c.node_id(i);
        assert_eq!(status.node_id, own);
        assert!(
            status.peers.iter().all(|p| p.node_id != own),
            "{own} lists itself: {:?}",
            status.peers
        );
        assert_eq!(status.peers.len(), 2, "{own}: {:?}", status.peers);
    }

    let stub = Stub::answering(&c.spare_ip(2), 404, "").await;
    c.add_extra_peer("n1", stub.url());
    // Wait until every node has read the new inventory: n1's stays without the stub, the
    // others keep the last n1 entry, the real one.
    c.wait_for_peers().await;
    eventually(
        DEADLINE,
        "the inventory with the stub read by every node",
        || async {
            for i in 0..3 {
                let logs = c.node_logs(i);
                ensure!(
                    i == 0 || logs.contains("lists node n1 twice"),
                    "{} has not warned about the duplicate",
                    c.node_id(i)
                );
            }
            Ok::<_, anyhow::Error>(())
        },
    )
    .await;

    // Writes on n1, replicated by push, then a few anti-entropy rounds everywhere.
    let service = new_id();
    announce(&c, 0, "w1", &service).await;
    let static_id = add_static(&c, 0, "db", "p").await;
    wait_listed_everywhere(&c, TYPE, POOL, &service, DEADLINE).await;
    wait_listed_everywhere(&c, "db", "p", &static_id, DEADLINE).await;
    wait_sync_rounds(&c, 2).await;

    let recorded = stub.recorded();
    let from_self: Vec<&Recorded> = recorded
        .iter()
        .filter(|r| r.user_agent.as_deref() == Some("n1"))
        .collect();
    assert!(
        from_self.is_empty(),
        "n1 contacted its own entry: {from_self:?}"
    );
    let lines: Vec<String> = recorded
        .iter()
        .map(|r| format!("{} ({:?})", r.request_line, r.user_agent))
        .collect();
    assert!(lines.is_empty(), "the stub was contacted: {lines:?}");
    for i in 0..3 {
        let status = status(&c, i).await.expect("status");
        let own = c.node_id(i);
        assert!(
            status.peers.iter().all(|p| p.node_id != own),
            "{own} lists itself"
        );
    }
}

/// Case 72: an inventory whose `environment` differs from the nodes' is still used (as in
/// airlift, which only logs it); the nodes replicate and warn.
#[tokio::test(flavor = "multi_thread")]
async fn an_inventory_of_another_environment_is_used_with_a_warning() {
    let mut options = options(3);
    options.inventory_environment = "elsewhere".into();
    let c = discovery_testkit::Cluster::start_with(options).await;

    let service = new_id();
    announce(&c, 0, "w1", &service).await;
    let static_id = add_static(&c, 2, "db", "p").await;
    wait_listed_everywhere(&c, TYPE, POOL, &service, DEADLINE).await;
    wait_listed_everywhere(&c, "db", "p", &static_id, DEADLINE).await;
    c.wait_converged().await;

    eventually(DEADLINE, "a warning about the environment", || async {
        for i in 0..3 {
            let logs = c.node_logs(i);
            let warning = logs.lines().find(|l| {
                l.contains("WARN") && l.contains("'elsewhere' differs from node.environment")
            });
            ensure!(warning.is_some(), "{} did not warn", c.node_id(i));
        }
        Ok::<_, anyhow::Error>(())
    })
    .await;
    let status = status(&c, 0).await.expect("status");
    assert_eq!(status.environment, "testing");
    assert_eq!(status.inventory_error, None);
}

/// A broken inventory file keeps the last good peer set: writes still replicate and the
/// status reports the error; a fixed file clears it.
#[tokio::test(flavor = "multi_thread")]
async fn a_broken_inventory_keeps_the_last_good_peers() {
    let c = cluster(3, &[]).await;
    c.write_inventory_text("{ this is not an inventory")
        .expect("write garbage");
    eventually(
        DEADLINE,
        "every node to report the broken inventory",
        || async {
            for i in 0..3 {
                let status = status(&c, i).await?;
                let error = status.inventory_error.unwrap_or_default();
                ensure!(
                    error.contains("not a service inventory"),
                    "{}: inventory error {error:?}",
                    c.node_id(i)
                );
                ensure!(
                    status.peers.len() == 2,
                    "{}: peers {:?}",
                    c.node_id(i),
                    status.peers
                );
            }
            Ok::<_, anyhow::Error>(())
        },
    )
    .await;

    let during = new_id();
    announce(&c, 0, "w1", &during).await;
    let static_id = add_static(&c, 1, "db", "p").await;
    wait_listed_everywhere(&c, TYPE, POOL, &during, DEADLINE).await;
    wait_listed_everywhere(&c, "db", "p", &static_id, DEADLINE).await;

    c.write_inventory();
    eventually(DEADLINE, "the inventory error to clear", || async {
        for i in 0..3 {
            let status = status(&c, i).await?;
            ensure!(
                status.inventory_error.is_none(),
                "{}: {:?}",
                c.node_id(i),
                status.inventory_error
            );
        }
        Ok::<_, anyhow::Error>(())
    })
    .await;
    c.wait_for_peers().await;
    let after = new_id();
    announce(&c, 2, "w2", &after).await;
    wait_listed_everywhere(&c, TYPE, POOL, &after, DEADLINE).await;
    c.wait_converged().await;
}
