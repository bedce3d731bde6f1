//! A service inventory read from a discovery lookup (`service-inventory.uri` =
//! `http://…/v1/service/discovery`): its peers are used only when the node answering the
//! lookup requires every announcement to be signed. Otherwise anyone who reaches that
//! node could announce a `discovery` service and receive every entry as a peer.

use std::time::Duration;

use anyhow::ensure;
use discovery_auth::{KeyDerivation, Minter, SharedSecret};
use discovery_testkit::announcements::{announcement, service};
use discovery_testkit::{discoveryd, eventually, new_id, Server};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::DEADLINE;

const SECRET: &str = "lookup-inventory-secret-0123456789";

fn token(node: &str) -> String {
    let secret = SharedSecret::new(SECRET).expect("a secret");
    Minter::new(
        &secret,
        KeyDerivation::Sha256,
        node,
        Duration::from_secs(300),
    )
    .token()
}

/// A node with the secret whose peers come from `inventory_url`.
fn member(node_id: &str, inventory_url: &str) -> Server {
    Server::start_with(discoveryd!(), |o| {
        o.set("node.id", node_id)
            .set("internal-communication.shared-secret", SECRET)
            .set("service-inventory.uri", inventory_url)
            .set("service-inventory.update-interval", "200ms")
            .set("dynamic.store.remote.replication-interval", "1s")
    })
}

/// Announces `node` on `server` as a `discovery` service at `uri`, signed for `node`.
async fn announce_discovery(server: &Server, node: &str, uri: &str) {
    let body = announcement(
        "general",
        "/discovery",
        vec![service(&new_id(), "discovery", json!({ "http": uri }))],
    );
    let bytes = serde_json::to_vec(&body).expect("serialises");
    let auth = token(node);
    let reply = server
        .send(
            Method::PUT,
            &format!("/v1/announcement/{node}"),
            &[("x-trino-internal-bearer", &auth)],
            Some("application/json"),
            Some(bytes),
        )
        .await;
    server.expect_status(&reply, StatusCode::ACCEPTED);
}

async fn status(server: &Server) -> Value {
    let auth = format!("Bearer {}", token("test"));
    let reply = server
        .get_with("/v1/replication/status", &[("authorization", &auth)])
        .await;
    server.expect_status(&reply, StatusCode::OK);
    server.json(&reply)
}

fn peer_ids(status: &Value) -> Vec<String> {
    status["peers"]
        .as_array()
        .map(|peers| {
            peers
                .iter()
                .filter_map(|p| p["nodeId"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn peers_from_a_lookup_are_used_only_when_that_node_requires_signed_announcements() {
    let registry = Server::start_with(discoveryd!(), |o| {
        o.set("internal-communication.shared-secret", SECRET)
            .set("discovery.announcement.authentication", "required")
    });
    let lookup = registry.url("/v1/service/discovery");
    let a = member("peer-a", &lookup);
    let b = member("peer-b", &lookup);
    announce_discovery(&registry, "peer-a", &a.uri()).await;
    announce_discovery(&registry, "peer-b", &b.uri()).await;

    eventually(
        DEADLINE,
        "each member to list the other as a peer",
        || async {
            let (sa, sb) = (status(&a).await, status(&b).await);
            ensure!(peer_ids(&sa) == ["peer-b"], "peer-a: {sa}");
            ensure!(peer_ids(&sb) == ["peer-a"], "peer-b: {sb}");
            anyhow::Ok(())
        },
    )
    .await;
    // And they replicate, signed, with each other.
    let auth = token("worker-1");
    let body = announcement(
        "general",
        "/w",
        vec![service(&new_id(), "trino", json!({}))],
    );
    let reply = a
        .send(
            Method::PUT,
            "/v1/announcement/worker-1",
            &[("x-trino-internal-bearer", &auth)],
            Some("application/json"),
            Some(serde_json::to_vec(&body).expect("serialises")),
        )
        .await;
    a.expect_status(&reply, StatusCode::ACCEPTED);
    eventually(DEADLINE, "worker-1 listed on peer-b", || async {
        let ids = b.service_ids("/v1/service/trino").await;
        ensure!(ids.len() == 1, "{ids:?}");
        anyhow::Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lookup_of_a_node_that_takes_unsigned_announcements_gives_no_peers() {
    // `verify` takes unsigned announcements: an outsider's `discovery` service would pass.
    let registry = Server::start_with(discoveryd!(), |o| {
        o.set("internal-communication.shared-secret", SECRET)
    });
    let c = member("peer-c", &registry.url("/v1/service/discovery/general"));
    let outsider = "http://127.0.0.1:9";
    let body = announcement(
        "general",
        "/x",
        vec![service(&new_id(), "discovery", json!({ "http": outsider }))],
    );
    registry.announce("outsider", &body).await;

    eventually(
        DEADLINE,
        "peer-c to refuse the lookup inventory",
        || async {
            let s = status(&c).await;
            let error = s["inventoryError"].as_str().unwrap_or_default();
            ensure!(
                error.contains("does not require signed announcements"),
                "{s}"
            );
            anyhow::Ok(())
        },
    )
    .await;
    let s = status(&c).await;
    assert!(peer_ids(&s).is_empty(), "no peers: {s}");
    assert!(
        c.logs().contains("does not require signed announcements"),
        "logged"
    );
}
