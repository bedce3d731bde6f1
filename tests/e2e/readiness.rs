//! Readiness of a standalone node after a start: lookups wait (503) until every live
//! client has had an announce period to re-announce, so a coordinator never receives the
//! partial list of a node that is still filling up.

use std::time::{Duration, Instant};

use discovery_testkit::eventually;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{announcement, discoveryd, new_id, service, Server, DEADLINE};

#[tokio::test]
async fn lookups_wait_for_the_warm_up_while_announcements_are_accepted() {
    let started = Instant::now();
    let server = Server::start_with(discoveryd!(), |o| o.set("readiness.warm-up", "2s"));

    let live = server.get("/v1/health/live").await;
    server.expect_status(&live, StatusCode::OK);
    let ready = server.get("/v1/health/ready").await;
    let lookup = server.get("/v1/service/trino/general").await;
    if started.elapsed() < Duration::from_secs(2) {
        // Still inside the warm-up (it cannot have ended before 2 s).
        server.expect_status(&ready, StatusCode::SERVICE_UNAVAILABLE);
        server.expect_status(&lookup, StatusCode::SERVICE_UNAVAILABLE);
        server.check(
            lookup.text().starts_with("not ready: warming up"),
            format!("{lookup}"),
        );
        server.check_eq(
            lookup.header("retry-after"),
            Some("1"),
            "Retry-After on 503",
        );
    }

    // Writes are accepted while warming up: that is how the node fills up.
    let id = new_id();
    let body = announcement(
        "general",
        "/w1",
        vec![service(&id, "trino", json!({"http": "http://w1:8080"}))],
    );
    server.announce("w1", &body).await;

    eventually(DEADLINE, "the node to become ready", || async {
        let reply = server.get("/v1/health/ready").await;
        if reply.status == StatusCode::OK {
            Ok(())
        } else {
            Err(reply.text())
        }
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "ready before the warm-up ended"
    );
    assert_eq!(
        server.service_ids("/v1/service/trino/general").await,
        vec![id]
    );
    let log = server.log_line("ready: warm-up over").await;
    assert!(log.contains("ready"), "{log}");
}

#[tokio::test]
async fn a_warm_up_of_zero_serves_lookups_at_once_and_readiness_never_goes_back() {
    let server = Server::start_with(discoveryd!(), |o| o.set("readiness.warm-up", "0s"));
    server.expect_status(&server.get("/v1/health/ready").await, StatusCode::OK);
    server.expect_status(&server.get("/v1/service").await, StatusCode::OK);
    server.expect_status(&server.get("/v1/health/ready").await, StatusCode::OK);
}
