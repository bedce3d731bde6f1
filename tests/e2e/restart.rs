//! Restarts on the same data directory: graceful (SIGTERM) and `kill -9`. Conformance
//! case 48 (static services persist) and the reliability contract (static writes are on
//! disk before the 2xx).

use serde_json::{json, Value};

use crate::support::{announcement, discoveryd, new_id, service, static_announcement, Server};

fn long_lived() -> Server {
    Server::start_with(discoveryd!(), |o| o.set("discovery.max-age", "60s"))
}

/// The `node_id=` field of a log line.
fn node_id_in(line: &str) -> Option<String> {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix("node_id="))
        .map(str::to_owned)
}

fn id_of(server: &Server, created: &Value) -> String {
    match created["id"].as_str() {
        Some(id) => id.to_owned(),
        None => server.fail(format!("created service has no id: {created}")),
    }
}

// Case 48, plus dynamic announcements (within their max-age) across a graceful restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcements_and_static_services_survive_a_graceful_restart() {
    let mut server = long_lived();
    let u1 = new_id();
    server
        .announce(
            "n1",
            &announcement(
                "alpha",
                "/n1",
                vec![service(&u1, "storage", json!({"http": "h"}))],
            ),
        )
        .await;
    let created = server
        .create_static(&static_announcement(
            "apple",
            "red",
            "/a/b/c",
            json!({"http": "http://host"}),
        ))
        .await;
    let before = server.services("/v1/service").await;

    let status = server.terminate();
    server.check(
        status.success(),
        format!("exit status after SIGTERM: {status}"),
    );
    server.log_line("shutdown complete").await;

    let node_id = node_id_in(&server.log_line("listening on").await);
    let server = server.restart();
    server.check_eq(
        node_id_in(&server.log_line("listening on").await),
        node_id,
        "the node id kept in the data directory",
    );
    server.check_eq(
        server.services("/v1/service").await,
        before,
        "the same services after the restart",
    );
    server.check_eq(
        server.services("/v1/announcement/static").await,
        vec![created],
        "static listing",
    );
    server.check_eq(
        server.service_ids("/v1/service/storage/alpha").await,
        vec![u1],
        "n1's service",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_service_survives_kill_9_right_after_its_201() {
    let mut server = long_lived();
    let created = server
        .create_static(&static_announcement("apple", "red", "/a", json!({})))
        .await;
    server.kill();
    let server = server.restart();
    server.check_eq(
        server.services("/v1/service/apple/red").await,
        vec![created],
        "listed after kill -9",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_static_service_stays_deleted_after_a_restart() {
    let mut server = long_lived();
    let kept = server
        .create_static(&static_announcement("apple", "red", "/kept", json!({})))
        .await;
    let deleted = server
        .create_static(&static_announcement("apple", "red", "/deleted", json!({})))
        .await;
    server.unannounce_static(&id_of(&server, &deleted)).await;
    let status = server.terminate();
    server.check(
        status.success(),
        format!("exit status after SIGTERM: {status}"),
    );
    let server = server.restart();
    server.check_eq(
        server.services("/v1/announcement/static").await,
        vec![kept],
        "only the kept one",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_delete_survives_kill_9_right_after_its_204() {
    let mut server = long_lived();
    let kept = server
        .create_static(&static_announcement("apple", "red", "/kept", json!({})))
        .await;
    let deleted = server
        .create_static(&static_announcement("apple", "red", "/deleted", json!({})))
        .await;
    server.unannounce_static(&id_of(&server, &deleted)).await;
    server.kill();
    let server = server.restart();
    server.check_eq(
        server.services("/v1/announcement/static").await,
        vec![kept],
        "the delete was durable",
    );
}
