//! A cluster with the shared secret: its nodes sign replication and converge; a node with
//! another secret, though listed in the same inventory, can neither push to them nor pull
//! from them, and they cannot push to it.

use anyhow::ensure;
use discovery_testkit::wait::eventually;
use discovery_testkit::Cluster;

use crate::support::*;

const SECRET: &str = "cluster-shared-secret-0123456789";
/// An operator token with `write`, which the harness's own client sends everywhere, so its
/// status polls and announcements work on every node whatever its secret.
const OPERATOR: &str = "cluster-operator-0123456789abcdef";

#[tokio::test(flavor = "multi_thread")]
async fn nodes_with_the_secret_replicate_and_a_node_with_another_secret_is_shut_out() {
    let tokens = tempfile::tempdir().expect("temporary directory");
    let tokens_file = tokens.path().join("operator-tokens");
    std::fs::write(&tokens_file, format!("{OPERATOR} write\n")).expect("write tokens");
    let c = Cluster::start_with(
        options(4)
            .set("internal-communication.shared-secret", SECRET)
            .set(
                "discovery.operator-tokens-file",
                &tokens_file.display().to_string(),
            )
            .set_of(
                3,
                "internal-communication.shared-secret",
                "some-other-secret-42",
            )
            .client_header("authorization", &format!("Bearer {OPERATOR}")),
    )
    .await;
    let members = [0, 1, 2];
    let outsider = 3;

    let from_member = new_id();
    announce(&c, 0, "w1", &from_member).await;
    let from_outsider = new_id();
    announce(&c, outsider, "w4", &from_outsider).await;

    eventually(DEADLINE, "w1 listed on every member", || async {
        for &i in &members {
            let ids = service_ids(&c, i, TYPE, POOL).await?;
            ensure!(ids.contains(&from_member), "{} lists {ids:?}", c.node_id(i));
        }
        Ok::<_, anyhow::Error>(())
    })
    .await;

    // Every exchange with the outsider fails, in both directions, with a 401.
    eventually(DEADLINE, "refused exchanges with n4", || async {
        let outsider_status = status(&c, outsider).await?;
        for &i in &members {
            let peer = c.node_id(i);
            let towards_member = link(&outsider_status, peer, "dynamic")
                .ok_or_else(|| anyhow::anyhow!("n4 has no link to {peer}"))?;
            ensure!(
                towards_member.push_failures > 0 && towards_member.syncs_failed > 0,
                "n4 -> {peer}: {towards_member:?}"
            );
            let error = towards_member.last_error.clone().unwrap_or_default();
            ensure!(error.contains("401"), "n4 -> {peer}: last error {error:?}");
            let member_status = status(&c, i).await?;
            let towards_outsider = link(&member_status, "n4", "dynamic")
                .ok_or_else(|| anyhow::anyhow!("{peer} has no link to n4"))?;
            ensure!(
                towards_outsider.syncs_failed > 0,
                "{peer} -> n4: {towards_outsider:?}"
            );
            ensure!(
                member_status
                    .auth_failures
                    .get("bad_signature")
                    .is_some_and(|&n| n > 0),
                "{peer} counted no bad signatures: {:?}",
                member_status.auth_failures
            );
        }
        ensure!(
            outsider_status
                .auth_failures
                .get("bad_signature")
                .is_some_and(|&n| n > 0),
            "n4 counted no bad signatures: {:?}",
            outsider_status.auth_failures
        );
        Ok::<_, anyhow::Error>(())
    })
    .await;

    // By now every exchange had its chance: nothing crossed the boundary.
    for &i in &members {
        let ids = service_ids(&c, i, TYPE, POOL).await.expect("lookup");
        assert!(
            !ids.contains(&from_outsider),
            "{} lists n4's {ids:?}",
            c.node_id(i)
        );
    }
    let ids = service_ids(&c, outsider, TYPE, POOL).await.expect("lookup");
    assert_eq!(
        ids,
        vec![from_outsider.clone()],
        "n4 lists only its own announcement"
    );

    // Between members, replication is healthy: pushes acknowledged, no refusals.
    for &i in &members {
        let s = status(&c, i).await.expect("status");
        for &j in members.iter().filter(|&&j| j != i) {
            let peer = c.node_id(j);
            let l = link(&s, peer, "dynamic").expect("link");
            assert!(
                l.last_push_ok_ms.is_some() || l.syncs_ok > 0,
                "{} -> {peer}: {l:?}",
                c.node_id(i)
            );
        }
    }
    let logs = c.logs();
    assert!(
        !logs.contains(SECRET) && !logs.contains(OPERATOR),
        "a secret reached the logs"
    );
}
