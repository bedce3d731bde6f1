//! Dynamic unannouncement: conformance cases 29–32, and per-key versions that strictly
//! increase for back-to-back local writes.

use serde_json::json;

use crate::support::{announcement, b64, discoveryd, new_id, service, storage_node, Server};

// Case 29 (TestDynamicAnnouncementResource.testDelete).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_is_204_and_removes_only_that_nodes_services() {
    let server = Server::start(discoveryd!());
    let (blue_storage, blue_web, red_storage) = (new_id(), new_id(), new_id());
    server
        .announce(
            "blue",
            &announcement(
                "poolA",
                "/blue",
                vec![
                    service(&blue_storage, "storage", json!({})),
                    service(&blue_web, "web", json!({})),
                ],
            ),
        )
        .await;
    server
        .announce(
            "red",
            &announcement(
                "poolA",
                "/red",
                vec![service(&red_storage, "storage", json!({}))],
            ),
        )
        .await;
    server.unannounce("blue").await;
    server.check_eq(
        server.service_ids("/v1/service").await,
        vec![red_storage.clone()],
        "only red remains",
    );
    server.check_eq(
        server.service_ids("/v1/service/storage").await,
        vec![red_storage],
        "/storage",
    );
    server.check_eq(
        server.services("/v1/service/web/poolA").await,
        vec![],
        "/web/poolA",
    );
}

// Case 30.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_unknown_node_is_204_and_changes_nothing_else() {
    let server = Server::start(discoveryd!());
    server.announce("n1", &storage_node()).await;
    let before = server.services("/v1/service").await;
    server.unannounce("never-announced").await;
    server.check_eq(
        server.services("/v1/service").await,
        before,
        "lookups unchanged",
    );
    let n1 = server.raw_entry("dynamic", "n1").await;
    server.check(
        n1.is_some_and(|e| e.get("value").is_some()),
        "n1's entry keeps its value",
    );
}

// Case 31, without Java's ≥1 ms pauses: every local write gets a higher version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_delete_put_back_to_back_ends_visible() {
    let server = Server::start(discoveryd!());
    for round in 0..25 {
        let node = format!("n{round}");
        let id = new_id();
        let body = announcement("alpha", "/a", vec![service(&id, "storage", json!({}))]);
        server.announce(&node, &body).await;
        server.unannounce(&node).await;
        server.announce(&node, &body).await;
        let listed = server.services_of_node(&node).await;
        server.check_eq(
            listed.len(),
            1,
            format!("round {round}: {node} visible after PUT, DELETE, PUT"),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_immediately_followed_by_delete_ends_invisible() {
    let server = Server::start(discoveryd!());
    for round in 0..25 {
        let node = format!("n{round}");
        let body = storage_node();
        server.announce(&node, &body).await;
        server.unannounce(&node).await;
        server.check_eq(
            server.services_of_node(&node).await,
            vec![],
            format!("round {round}: {node} gone"),
        );
    }
    // The versions of one key strictly increase across its writes.
    let mut last = 0;
    for _ in 0..10 {
        server.unannounce("hot").await;
        let entry = server.raw_entry("dynamic", "hot").await;
        let version = entry
            .as_ref()
            .and_then(|e| e["version"]["sequence"].as_i64())
            .unwrap_or(0);
        server.check(
            version > last,
            format!("version {version} after {last}: {entry:?}"),
        );
        last = version;
    }
}

// Case 32.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_leaves_a_tombstone_in_the_raw_store() {
    let server = Server::start(discoveryd!());
    server.announce("n1", &storage_node()).await;
    let announced = server.raw_entry("dynamic", "n1").await;
    let announced_version = announced
        .as_ref()
        .and_then(|e| e["version"]["sequence"].as_i64())
        .unwrap_or_else(|| server.fail(format!("no raw entry for n1: {announced:?}")));
    server.unannounce("n1").await;
    let Some(tombstone) = server.raw_entry("dynamic", "n1").await else {
        server.fail("no tombstone for n1")
    };
    server.check_eq(
        &tombstone["key"],
        &json!(b64("n1")),
        "key is base64(\"n1\")",
    );
    server.check_eq(
        tombstone["key"].as_str(),
        Some("bjE="),
        "standard padded base64",
    );
    server.check(
        tombstone.get("value").is_none(),
        format!("no value: {tombstone}"),
    );
    server.check(
        tombstone.get("maxAgeInMs").is_none(),
        format!("no maxAgeInMs: {tombstone}"),
    );
    let version = tombstone["version"]["sequence"].as_i64().unwrap_or(0);
    server.check(
        version > announced_version,
        format!("tombstone version above the PUT's: {tombstone}"),
    );
}

// Case 31 at full speed: pipelined on one connection, the three writes usually land in the
// same millisecond. Java loses the DELETE (or the second PUT) then; ours must not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_put_delete_put_and_put_delete_keep_every_write() {
    let server = Server::start(discoveryd!());
    for round in 0..20 {
        let visible = format!("visible-{round}");
        let invisible = format!("invisible-{round}");
        let body = storage_node();
        let statuses = server
            .pipeline(&[
                ("PUT", format!("/v1/announcement/{visible}"), Some(&body)),
                ("DELETE", format!("/v1/announcement/{visible}"), None),
                ("PUT", format!("/v1/announcement/{visible}"), Some(&body)),
                ("PUT", format!("/v1/announcement/{invisible}"), Some(&body)),
                ("DELETE", format!("/v1/announcement/{invisible}"), None),
            ])
            .await;
        server.check_eq(statuses, vec![202, 204, 202, 202, 204], "statuses");
        server.check_eq(
            server.services_of_node(&visible).await.len(),
            1,
            format!("{visible} listed"),
        );
        server.check_eq(
            server.services_of_node(&invisible).await,
            vec![],
            format!("{invisible} gone"),
        );
    }
}

// Per-key versions are max(now, last + 1): n writes to one key raise its version by at
// least n, however fast they come.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_of_one_key_strictly_increase_even_within_a_millisecond() {
    const WRITES: i64 = 200;
    let server = Server::start(discoveryd!());
    server.unannounce("hot").await;
    let version = |entry: Option<serde_json::Value>| {
        entry
            .and_then(|e| e["version"]["sequence"].as_i64())
            .unwrap_or_else(|| server.fail("no version for hot"))
    };
    let first = version(server.raw_entry("dynamic", "hot").await);
    let requests: Vec<(&str, String, Option<&serde_json::Value>)> = (0..WRITES)
        .map(|_| ("DELETE", "/v1/announcement/hot".to_owned(), None))
        .collect();
    let statuses = server.pipeline(&requests).await;
    server.check(
        statuses.iter().all(|s| *s == 204),
        format!("statuses {statuses:?}"),
    );
    let last = version(server.raw_entry("dynamic", "hot").await);
    server.check(
        last >= first + WRITES,
        format!("{WRITES} deletes raised the version from {first} to {last} only"),
    );
}
