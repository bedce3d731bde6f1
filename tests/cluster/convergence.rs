//! Writes on one node reach every node (cases 59–62, 66–67 in part).

use discovery_testkit::announcements::standard_announcement;
use reqwest::StatusCode;

use crate::support::*;

/// Cases 59/60: an announcement on n1 is listed by n2 and n3, pushed in one hop from n1,
/// with the same version in every raw store.
#[tokio::test(flavor = "multi_thread")]
async fn an_announcement_reaches_every_node_with_the_same_version() {
    let c = cluster(3, &[]).await;
    let service = new_id();
    announce(&c, 0, "w1", &service).await;

    wait_listed_everywhere(&c, TYPE, POOL, &service, DEADLINE).await;
    for i in 0..3 {
        let services = services_of_node(&c, i, "w1").await.expect("lookup");
        assert_eq!(services.len(), 1, "{}: {services:?}", c.node_id(i));
        assert_eq!(services[0]["id"], service.as_str());
        assert_eq!(services[0]["nodeId"], "w1");
        assert_eq!(services[0]["location"], "/test");
    }
    let entry = wait_same_entry_everywhere(&c, 0, "dynamic", "w1").await;
    assert!(entry.value.is_some(), "{entry:?}");
    assert_eq!(entry.version, entry.timestamp, "{entry:?}");

    // One hop: n1 pushed the entry to both peers itself.
    let status = status(&c, 0).await.expect("status");
    for peer in ["n2", "n3"] {
        let link = link(&status, peer, "dynamic").expect("link");
        assert!(link.pushed_entries >= 1, "{peer}: {link:?}");
    }
    c.wait_converged().await;
}

/// Case 61: a DELETE on n3 removes the announcement made on n1 everywhere; every raw store
/// holds the same tombstone, newer than the announcement.
#[tokio::test(flavor = "multi_thread")]
async fn a_delete_on_another_node_removes_it_everywhere() {
    let c = cluster(3, &[]).await;
    let service = new_id();
    announce(&c, 0, "w1", &service).await;
    let announced = wait_same_entry_everywhere(&c, 0, "dynamic", "w1").await;

    let status = c.unannounce(2, "w1").await.expect("delete");
    assert_eq!(status, StatusCode::NO_CONTENT);

    wait_gone_everywhere(&c, TYPE, POOL, &service).await;
    let tombstone = wait_same_entry_everywhere(&c, 2, "dynamic", "w1").await;
    assert_eq!(tombstone.value, None, "a tombstone: {tombstone:?}");
    assert_eq!(tombstone.max_age_in_ms, None, "{tombstone:?}");
    assert!(
        tombstone.version > announced.version,
        "tombstone {tombstone:?} must be newer than {announced:?}"
    );
    c.wait_converged().await;

    // Announced again with the very same body, it is back everywhere.
    announce(&c, 1, "w1", &service).await;
    wait_listed_everywhere(&c, TYPE, POOL, &service, DEADLINE).await;
    let again = wait_same_entry_everywhere(&c, 1, "dynamic", "w1").await;
    assert_eq!(again.value, announced.value);
    assert!(again.version > tombstone.version);
    c.wait_converged().await;
}

/// Cases 66–67 (live part): a static service created on n2 is listed everywhere; deleting
/// it on n3 removes it everywhere, leaving the same tombstone in every static store.
#[tokio::test(flavor = "multi_thread")]
async fn a_static_service_is_created_and_deleted_cluster_wide() {
    let c = cluster(3, &[]).await;
    let id = add_static(&c, 1, "db", "p").await;
    wait_listed_everywhere(&c, "db", "p", &id, DEADLINE).await;
    let created = wait_same_entry_everywhere(&c, 1, "static", &id).await;
    assert!(created.value.is_some());
    assert_eq!(created.max_age_in_ms, None, "static entries never expire");

    let status = c.delete_static(2, &id).await.expect("delete");
    assert_eq!(status, StatusCode::NO_CONTENT);

    wait_gone_everywhere(&c, "db", "p", &id).await;
    let tombstone = wait_same_entry_everywhere(&c, 2, "static", &id).await;
    assert_eq!(tombstone.value, None, "{tombstone:?}");
    assert!(tombstone.version > created.version);
    for i in 0..3 {
        let listed = c
            .get_json(i, "/v1/announcement/static")
            .await
            .expect("static list");
        assert!(
            !listed.to_string().contains(&id),
            "{} still lists {id}: {listed}",
            c.node_id(i)
        );
    }
    c.wait_converged().await;
}

/// Case 62: last writer wins across servers. n1's services are announced as [u1] on one
/// server and then as [u2] on another; every server ends with [u2].
#[tokio::test(flavor = "multi_thread")]
async fn the_last_write_wins_across_servers() {
    let c = cluster(3, &[]).await;
    let (u1, u2) = (new_id(), new_id());
    announce(&c, 0, "w1", &u1).await;
    let first = wait_same_entry_everywhere(&c, 0, "dynamic", "w1").await;

    announce(&c, 1, "w1", &u2).await;
    let second = wait_same_entry_everywhere(&c, 1, "dynamic", "w1").await;
    assert!(second.version > first.version);

    wait_gone_everywhere(&c, TYPE, POOL, &u1).await;
    wait_listed_everywhere(&c, TYPE, POOL, &u2, DEADLINE).await;
    for i in 0..3 {
        let services = services_of_node(&c, i, "w1").await.expect("lookup");
        let ids: Vec<&str> = services.iter().filter_map(|s| s["id"].as_str()).collect();
        assert_eq!(ids, [u2.as_str()], "{}", c.node_id(i));
    }
    c.wait_converged().await;
}

/// Concurrent writes of one key on every node (equal versions possible) end with one
/// winner that every node agrees on: the conflict rule is a total order.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_writes_to_one_key_converge_to_one_winner() {
    let c = cluster(3, &[]).await;
    for round in 0..10 {
        let bodies: Vec<_> = (0..3)
            .map(|_| standard_announcement(&new_id(), TYPE))
            .collect();
        let (a, b, d) = tokio::join!(
            c.announce(0, "w1", &bodies[0]),
            c.announce(1, "w1", &bodies[1]),
            c.announce(2, "w1", &bodies[2]),
        );
        for status in [a, b, d] {
            assert_eq!(
                status.expect("announce"),
                StatusCode::ACCEPTED,
                "round {round}"
            );
        }
    }
    c.wait_converged().await;
    let winner = wait_same_entry_everywhere(&c, 0, "dynamic", "w1").await;
    let mut listed = Vec::new();
    for i in 0..3 {
        let services = services_of_node(&c, i, "w1").await.expect("lookup");
        assert_eq!(services.len(), 1, "{}: {services:?}", c.node_id(i));
        listed.push(services[0]["id"].clone());
    }
    assert!(listed.windows(2).all(|w| w[0] == w[1]), "{listed:?}");
    let id = listed[0].as_str().expect("id");
    assert!(
        winner.value.as_deref().unwrap_or_default().contains(id),
        "{winner:?}"
    );
}
