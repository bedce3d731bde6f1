//! Trino 477+ announce mode against the real binary: `POST /v1/announce` with a node's URI,
//! the server learning the node from a fake `/v1/info` started here (127.0.0.1, port 0),
//! and the result listed under `trino` next to airlift-mode nodes, refused for another
//! environment, expiring without renewals, and replicated to peers.
//!
//! Nothing waits a fixed time: every condition is polled with a deadline.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use axum::Router;
use discovery_testkit::{eventually, Cluster};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{announcement, discoveryd, new_id, service, Reply, Server, DEADLINE, ENV};

/// A stand-in for a Trino node: answers `GET /v1/info` with a document the test can
/// change, and counts the requests.
struct FakeTrino {
    uri: String,
    info: Arc<Mutex<Value>>,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct FakeState {
    info: Arc<Mutex<Value>>,
    hits: Arc<AtomicUsize>,
}

async fn serve_info(
    State(state): State<FakeState>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let info = state.info.lock().expect("the fake's lock").to_string();
    ([(CONTENT_TYPE, "application/json")], info)
}

impl FakeTrino {
    /// A fake node whose `/v1/info` says it is `node_id` in `environment`.
    async fn start(node_id: &str, environment: &str) -> FakeTrino {
        let info = Arc::new(Mutex::new(server_info(node_id, environment)));
        let hits = Arc::new(AtomicUsize::new(0));
        let app = Router::new()
            .route("/v1/info", get(serve_info))
            .with_state(FakeState {
                info: Arc::clone(&info),
                hits: Arc::clone(&hits),
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Trino node");
        let addr = listener.local_addr().expect("the fake's address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeTrino {
            uri: format!("http://{addr}"),
            info,
            hits,
            task,
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn set_info(&self, info: Value) {
        *self.info.lock().expect("the fake's lock") = info;
    }
}

impl Drop for FakeTrino {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Trino's `ServerInfo` JSON, as a 477 worker answers it.
fn server_info(node_id: &str, environment: &str) -> Value {
    json!({
        "nodeId": node_id,
        "state": "ACTIVE",
        "nodeVersion": {"version": "477"},
        "environment": environment,
        "coordinator": false,
        "coordinatorId": null,
        "starting": false,
        "uptime": "12.00s",
        "nodeGroups": [],
    })
}

async fn post_announce(server: &Server, body: &[u8]) -> Reply {
    server
        .send(
            Method::POST,
            "/v1/announce",
            &[],
            Some("text/plain"),
            Some(body.to_vec()),
        )
        .await
}

/// POSTs `uri` and checks the 204 Trino's coordinator answers.
async fn announce(server: &Server, uri: &str) {
    let reply = post_announce(server, uri.as_bytes()).await;
    server.expect_status(&reply, StatusCode::NO_CONTENT);
}

async fn announced_uris(server: &Server) -> Vec<String> {
    let reply = server.get("/v1/announce").await;
    server.expect_status(&reply, StatusCode::OK);
    match serde_json::from_slice::<Vec<String>>(&reply.body) {
        Ok(uris) => uris,
        Err(e) => server.fail(format!("{reply}\nnot a JSON array of strings: {e}")),
    }
}

/// Waits until `node_id` is listed under `trino/general` and returns its service.
async fn wait_listed(server: &Server, node_id: &str) -> Value {
    eventually(DEADLINE, &format!("{node_id} to be listed"), || async {
        let services = server.services("/v1/service/trino/general").await;
        services
            .into_iter()
            .find(|s| s["nodeId"] == node_id)
            .ok_or("not listed yet")
    })
    .await
}

#[tokio::test]
async fn an_announced_node_is_listed_under_trino_with_its_facts_next_to_airlift_nodes() {
    let server = Server::start(discoveryd!());
    let fake = FakeTrino::start("announce-w1", ENV).await;
    let airlift_id = new_id();
    server
        .announce(
            "airlift-w1",
            &announcement(
                "general",
                "/airlift-w1",
                vec![service(
                    &airlift_id,
                    "trino",
                    json!({"http": "http://10.0.0.1:8080", "coordinator": "false"}),
                )],
            ),
        )
        .await;

    announce(&server, &fake.uri).await;
    let listed = wait_listed(&server, "announce-w1").await;

    let id = listed["id"].as_str().unwrap_or_default().to_owned();
    server.check(
        discovery_types::is_service_id(&id),
        format!("service id {id} is a UUID"),
    );
    server.check_eq(
        listed.clone(),
        json!({
            "id": id,
            "nodeId": "announce-w1",
            "type": "trino",
            "pool": "general",
            "location": "/announce-w1",
            "properties": {
                "coordinator": "false",
                "discovery_type": "announce",
                "http": fake.uri,
                "node_version": "477",
                "state": "ACTIVE",
            },
        }),
        "the announce-mode service",
    );
    let of_type: Vec<Value> = server.services("/v1/service/trino").await;
    let nodes: Vec<&str> = of_type
        .iter()
        .filter_map(|s| s["nodeId"].as_str())
        .collect();
    server.check(
        nodes.contains(&"announce-w1") && nodes.contains(&"airlift-w1"),
        format!("both modes side by side in /v1/service/trino: {nodes:?}"),
    );
    server.check_eq(
        announced_uris(&server).await,
        vec![fake.uri.clone()],
        "GET /v1/announce",
    );

    // A dynamic entry keyed by the Trino node id, with the announce max age.
    let entry = match server.raw_entry("dynamic", "announce-w1").await {
        Some(entry) => entry,
        None => server.fail("no dynamic entry under the node id"),
    };
    server.check_eq(
        entry["maxAgeInMs"].as_i64(),
        Some(30_000),
        "max age of the entry",
    );

    // Every POST renews the entry (a new version), and the service id stays the same.
    let version = entry["version"]["sequence"].as_i64().unwrap_or_default();
    announce(&server, &fake.uri).await;
    eventually(DEADLINE, "the POST to renew the entry", || async {
        let renewed = server
            .raw_entry("dynamic", "announce-w1")
            .await
            .and_then(|e| e["version"]["sequence"].as_i64())
            .unwrap_or_default();
        if renewed > version {
            Ok(())
        } else {
            Err(format!("version still {renewed}"))
        }
    })
    .await;
    let again = wait_listed(&server, "announce-w1").await;
    server.check_eq(again["id"].clone(), json!(id), "stable service id");

    // A change of facts shows once the server refreshes them (every 5 s while POSTs come).
    let mut draining = server_info("announce-w1", ENV);
    draining["state"] = json!("DRAINING");
    fake.set_info(draining);
    eventually(DEADLINE, "the new state to be listed", || async {
        announce(&server, &fake.uri).await;
        let service = wait_listed(&server, "announce-w1").await;
        if service["properties"]["state"] == "DRAINING" {
            Ok(())
        } else {
            Err(format!("still {}", service["properties"]["state"]))
        }
    })
    .await;
}

#[tokio::test]
async fn a_node_of_another_environment_is_refused_logged_once_and_never_listed() {
    let server = Server::start(discoveryd!());
    let fake = FakeTrino::start("prod-w1", "production").await;
    // The first POST is accepted before the facts are known; once they are, the POST is
    // refused with the airlift announcement's message.
    let refusal = eventually(DEADLINE, "the POST to be refused", || async {
        let reply = post_announce(&server, fake.uri.as_bytes()).await;
        match reply.status {
            StatusCode::BAD_REQUEST => Ok(reply),
            StatusCode::NO_CONTENT => Err("still accepted".to_owned()),
            _ => Err(format!("unexpected {reply}")),
        }
    })
    .await;
    server.check_eq(
        refusal.text(),
        "Environment mismatch. Expected: testing, Provided: production\n".to_owned(),
        "the refusal",
    );
    for _ in 0..3 {
        let reply = post_announce(&server, fake.uri.as_bytes()).await;
        server.expect_status(&reply, StatusCode::BAD_REQUEST);
    }
    server.log_line("environment mismatch").await;
    let logged = server
        .logs()
        .lines()
        .filter(|line| line.contains("environment mismatch"))
        .count();
    server.check_eq(logged, 1, "mismatch log lines");
    server.check(server.dump("dynamic").await.is_empty(), "nothing stored");
    server.check(
        announced_uris(&server).await.is_empty(),
        "nothing announced",
    );
    server.check(
        server.services("/v1/service/trino").await.is_empty(),
        "nothing listed",
    );
}

#[tokio::test]
async fn bad_bodies_get_a_one_line_400_and_nothing_is_stored_or_fetched() {
    let server = Server::start(discoveryd!());
    let fake = FakeTrino::start("w-bad", ENV).await;
    let authority = fake.uri.trim_start_matches("http://").to_owned();
    let too_long = format!("{}/{}", fake.uri, "a".repeat(3000));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (Vec::new(), "not empty"),
        (
            format!("ftp://{authority}").into_bytes(),
            "http:// or https://",
        ),
        (authority.clone().into_bytes(), "http:// or https://"),
        (
            format!("http://user:secret@{authority}").into_bytes(),
            "user information",
        ),
        (format!("{}/?x=1", fake.uri).into_bytes(), "query"),
        (format!("{}#frag", fake.uri).into_bytes(), "fragment"),
        (
            format!("{} {}", fake.uri, fake.uri).into_bytes(),
            "printable",
        ),
        (b"http://".to_vec(), "host"),
        (b"http://127.0.0.1:99999".to_vec(), "port"),
        (vec![b'h', 0xff, 0xfe], "UTF-8"),
        (too_long.into_bytes(), "at most 2048 bytes"),
    ];
    for (body, reason) in cases {
        let reply = post_announce(&server, &body).await;
        server.expect_status(&reply, StatusCode::BAD_REQUEST);
        let text = reply.text();
        server.check(
            text.contains(reason) && text.ends_with('\n') && text.trim_end().lines().count() == 1,
            format!("{reply}\nexpected one line naming {reason:?}"),
        );
    }
    let json = server
        .send(
            Method::POST,
            "/v1/announce",
            &[],
            Some("application/json"),
            Some(format!("\"{}\"", fake.uri).into_bytes()),
        )
        .await;
    server.expect_status(&json, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    server.check(server.dump("dynamic").await.is_empty(), "nothing stored");
    server.check(
        announced_uris(&server).await.is_empty(),
        "nothing announced",
    );
    server.check_eq(fake.hits(), 0, "/v1/info requests caused by bad bodies");

    // The same node announced properly is fetched, which shows the fake was reachable.
    announce(&server, &fake.uri).await;
    wait_listed(&server, "w-bad").await;
}

#[tokio::test]
async fn an_announce_mode_entry_expires_after_its_max_age_without_posts() {
    let server = Server::start_with(discoveryd!(), |o| o.set("trino-announce.max-age", "2s"));
    let fake = FakeTrino::start("short-w1", ENV).await;
    let sent = Instant::now();
    announce(&server, &fake.uri).await;
    wait_listed(&server, "short-w1").await;
    server.check_eq(
        announced_uris(&server).await,
        vec![fake.uri.clone()],
        "listed URIs",
    );
    let entry = server.raw_entry("dynamic", "short-w1").await;
    server.check_eq(
        entry.and_then(|e| e["maxAgeInMs"].as_i64()),
        Some(2_000),
        "max age of the entry",
    );
    eventually(DEADLINE, "the entry to expire", || async {
        let listed = server.services_of_node("short-w1").await;
        let uris = announced_uris(&server).await;
        if listed.is_empty() && uris.is_empty() {
            Ok(())
        } else {
            Err(format!("still listed: {listed:?} {uris:?}"))
        }
    })
    .await;
    server.check(
        sent.elapsed() >= std::time::Duration::from_secs(2),
        format!(
            "expired {:?} after the POST, before its max age",
            sent.elapsed()
        ),
    );
    // Announcing again brings it back.
    announce(&server, &fake.uri).await;
    wait_listed(&server, "short-w1").await;
}

#[tokio::test]
async fn new_uris_beyond_the_tracking_limit_get_503_and_unreachable_nodes_are_never_listed() {
    let server = Server::start_with(discoveryd!(), |o| o.set("trino-announce.max-nodes", "2"));
    let listed = FakeTrino::start("cap-w1", ENV).await;
    // A port where nothing listens: the announcement is accepted, the fetch fails.
    let closed = discovery_testkit::ports::closed_url("127.0.0.1");
    announce(&server, &listed.uri).await;
    announce(&server, &closed).await;
    let third = post_announce(&server, b"http://127.0.0.1:1").await;
    server.expect_status(&third, StatusCode::SERVICE_UNAVAILABLE);
    server.check(
        third.text().contains("trino-announce.max-nodes"),
        format!("{third}\nthe reason names the limit"),
    );
    // Tracked URIs are still renewed.
    announce(&server, &listed.uri).await;
    wait_listed(&server, "cap-w1").await;
    server.log_line("cannot learn an announce-mode node").await;
    server.check_eq(
        announced_uris(&server).await,
        vec![listed.uri.clone()],
        "only the reachable node is announced",
    );
}

#[tokio::test]
async fn an_announce_mode_node_cannot_take_the_node_id_of_an_airlift_node() {
    let server = Server::start(discoveryd!());
    let airlift_id = new_id();
    server
        .announce(
            "shared-id",
            &announcement(
                "general",
                "/shared-id",
                vec![service(
                    &airlift_id,
                    "trino",
                    json!({"http": "http://10.0.0.5:8080"}),
                )],
            ),
        )
        .await;
    let fake = FakeTrino::start("shared-id", ENV).await;
    eventually(DEADLINE, "the POST to be refused with 409", || async {
        let reply = post_announce(&server, fake.uri.as_bytes()).await;
        match reply.status {
            StatusCode::CONFLICT => Ok(()),
            _ => Err(reply.to_string()),
        }
    })
    .await;
    let services = server.services_of_node("shared-id").await;
    server.check_eq(services.len(), 1, "one service for the node");
    server.check_eq(
        services[0]["properties"]["http"].clone(),
        json!("http://10.0.0.5:8080"),
        "the airlift announcement is untouched",
    );
}

#[tokio::test]
async fn announce_mode_can_be_switched_off() {
    let server = Server::start_with(discoveryd!(), |o| o.set("trino-announce.enabled", "false"));
    let reply = post_announce(&server, b"http://127.0.0.1:1").await;
    server.expect_status(&reply, StatusCode::NOT_FOUND);
    let reply = server.get("/v1/announce").await;
    server.expect_status(&reply, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_announce_mode_node_replicates_to_peers() {
    let cluster = Cluster::start(discoveryd!(), 2, &[]).await;
    let fake = FakeTrino::start("replicated-w1", ENV).await;
    let url = cluster.url(0, "/v1/announce");
    let response = cluster
        .client()
        .post(&url)
        .header("content-type", "text/plain")
        .body(fake.uri.clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    assert_eq!(response.status(), StatusCode::NO_CONTENT, "POST {url}");

    let listed = eventually(DEADLINE, "n2 to list the node announced to n1", || async {
        let lookup = cluster.lookup(1, "trino", "general").await?;
        lookup["services"]
            .as_array()
            .and_then(|services| services.iter().find(|s| s["nodeId"] == "replicated-w1"))
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("not on n2 yet: {lookup}"))
    })
    .await;
    assert_eq!(listed["properties"]["http"], json!(fake.uri));
    assert_eq!(listed["properties"]["discovery_type"], "announce");
    assert_eq!(listed["properties"]["node_version"], "477");
    let on_n1 = cluster
        .lookup(0, "trino", "general")
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        on_n1["services"][0]["id"], listed["id"],
        "same service id on both"
    );
    let uris = cluster
        .get_json(1, "/v1/announce")
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(uris, json!([fake.uri]), "GET /v1/announce on n2");
    assert_eq!(
        fake.hits(),
        1,
        "only n1, which received the POST, fetched /v1/info"
    );
}
