//! `GET /v1/diagnostics/node/{nodeId}` against a real `discoveryd`: refused announcements
//! are remembered with their typed reason and client address, an accepted one makes the
//! node listed with who sent it, unknown ids are a legitimate question (200), invalid ids
//! a 400, the memory per id is bounded, and with operator tokens the endpoint needs a read
//! token while authentication refusals of announcements are remembered too. One
//! two-node test lives here rather than in `tests/cluster`, since it is about this
//! endpoint: a replicated entry names the peer that pushed it.

use std::time::Duration;

use discovery_auth::{KeyDerivation, Minter, SharedSecret};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{announcement, discoveryd, new_id, now_ms, service, Server, DEADLINE};

const READER: &str = "diag-reader-token-0123456789";
const SECRET: &str = "diagnostics-shared-secret-0123";

fn worker(id: &str) -> Value {
    announcement(
        "general",
        "/rack-1",
        vec![service(
            id,
            "trino",
            json!({"http": "http://10.0.0.7:8080"}),
        )],
    )
}

async fn diagnose(server: &Server, node: &str, headers: &[(&str, &str)]) -> Value {
    let reply = server
        .get_with(&format!("/v1/diagnostics/node/{node}"), headers)
        .await;
    server.expect_status(&reply, StatusCode::OK);
    server.json(&reply)
}

fn refusals(answer: &Value) -> &Vec<Value> {
    answer["recentRefusals"]
        .as_array()
        .expect("recentRefusals is a list")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_environment_is_remembered_and_a_good_announcement_lists_the_node() {
    let server = Server::start_with(discoveryd!(), |o| o.set("discovery.max-age", "30s"));
    let mut wrong = worker(&new_id());
    wrong["environment"] = json!("prod");
    let before = now_ms();
    let reply = server.put_announcement("worker-9", &wrong).await;
    server.expect_status(&reply, StatusCode::BAD_REQUEST);

    let answer = diagnose(&server, "worker-9", &[]).await;
    server.check_eq(&answer["nodeId"], &json!("worker-9"), "nodeId");
    server.check_eq(&answer["listed"], &json!(false), "listed after a refusal");
    server.check_eq(&answer["environment"], &json!("testing"), "environment");
    server.check_eq(
        &answer["environmentMatches"],
        &json!(false),
        "environmentMatches",
    );
    server.check_eq(&answer["services"], &json!([]), "services");
    let refused = refusals(&answer);
    server.check_eq(refused.len(), 1, "one refusal");
    server.check_eq(
        &refused[0]["reason"],
        &json!({"kind": "environmentMismatch", "expected": "testing", "provided": "prod"}),
        "typed reason",
    );
    server.check_eq(
        &refused[0]["message"],
        &json!("Environment mismatch. Expected: testing, Provided: prod"),
        "message as the client got it",
    );
    server.check_eq(
        &refused[0]["clientAddress"],
        &json!("127.0.0.1"),
        "clientAddress",
    );
    let at = refused[0]["at"].as_i64().unwrap_or_default();
    server.check(
        at >= before - 1_000 && at <= now_ms() + 1_000,
        format!("refusal time {at} near now"),
    );

    let id = new_id();
    server.announce("worker-9", &worker(&id)).await;
    let answer = diagnose(&server, "worker-9", &[]).await;
    server.check_eq(&answer["listed"], &json!(true), "listed after announcing");
    server.check_eq(
        &answer["services"],
        &json!([{"type": "trino", "pool": "general", "id": id, "http": "http://10.0.0.7:8080"}]),
        "services",
    );
    server.check_eq(&answer["location"], &json!("/rack-1"), "location");
    server.check_eq(
        &answer["environmentMatches"],
        &json!(true),
        "environmentMatches",
    );
    server.check_eq(
        &answer["lastAccepted"]["clientAddress"],
        &json!("127.0.0.1"),
        "lastAccepted.clientAddress",
    );
    server.check_eq(
        &answer["lastAccepted"]["via"],
        &json!("client"),
        "lastAccepted.via",
    );
    server.check_eq(
        &answer["lastAccepted"]["replicated"],
        &json!(false),
        "replicated",
    );
    let renewed = answer["lastRenewal"].as_i64().unwrap_or_default();
    let expires = answer["expiresAt"].as_i64().unwrap_or_default();
    server.check_eq(
        expires - renewed,
        30_000,
        "expiresAt = lastRenewal + max age",
    );
    server.check_eq(
        refusals(&answer).len(),
        1,
        "the old refusal is still remembered",
    );

    // Unannounced: not listed, and the delete is shown.
    server.unannounce("worker-9").await;
    let answer = diagnose(&server, "worker-9", &[]).await;
    server.check_eq(&answer["listed"], &json!(false), "listed after DELETE");
    server.check(
        answer["unannouncedAt"].as_i64().is_some(),
        format!("unannouncedAt after DELETE: {answer}"),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_ids_are_a_question_and_invalid_ids_a_400() {
    let server = Server::start(discoveryd!());
    let answer = diagnose(&server, "never-announced", &[]).await;
    server.check_eq(&answer["listed"], &json!(false), "listed");
    server.check_eq(&answer["services"], &json!([]), "services");
    server.check_eq(&answer["recentRefusals"], &json!([]), "recentRefusals");
    server.check(
        answer.get("lastAccepted").is_none() && answer.get("expiresAt").is_none(),
        format!("nothing else known: {answer}"),
    );
    let long = "x".repeat(257);
    for bad in ["a..b", "a%20b", "a%0Ab", long.as_str()] {
        let reply = server.get(&format!("/v1/diagnostics/node/{bad}")).await;
        server.expect_status(&reply, StatusCode::BAD_REQUEST);
        server.check(
            reply.text().starts_with("invalid node id: node id "),
            format!("{}: a clear message, got {:?}", reply.what, reply.text()),
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn at_most_eight_refusals_are_kept_per_node_newest_first() {
    let server = Server::start(discoveryd!());
    let mut wrong = worker(&new_id());
    wrong["environment"] = json!("staging");
    for _ in 0..19 {
        let reply = server.put_announcement("flooded", &wrong).await;
        server.expect_status(&reply, StatusCode::BAD_REQUEST);
    }
    let reply = server
        .send(
            Method::PUT,
            "/v1/announcement/flooded",
            &[],
            Some("application/json"),
            Some(b"{not json".to_vec()),
        )
        .await;
    server.expect_status(&reply, StatusCode::BAD_REQUEST);

    let answer = diagnose(&server, "flooded", &[]).await;
    let refused = refusals(&answer);
    server.check_eq(refused.len(), 8, "the ring holds 8 of 20 refusals");
    server.check_eq(
        &refused[0]["reason"]["kind"],
        &json!("invalidBody"),
        "newest first",
    );
    server.check(
        refused[1..]
            .iter()
            .all(|r| r["reason"]["kind"] == "environmentMismatch"),
        format!("older ones are the mismatches: {answer}"),
    );
    let times: Vec<i64> = refused.iter().filter_map(|r| r["at"].as_i64()).collect();
    server.check(
        times.windows(2).all(|pair| pair[0] >= pair[1]),
        format!("newest first: {times:?}"),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_operator_tokens_it_needs_a_read_token_and_remembers_auth_refusals() {
    let tokens = tempfile::tempdir().expect("temporary directory");
    let file = tokens.path().join("operator-tokens");
    std::fs::write(&file, format!("{READER} read\n")).expect("write the tokens file");
    let path = file.display().to_string();
    let server = Server::start_with(discoveryd!(), |o| {
        o.set("internal-communication.shared-secret", SECRET)
            .set("discovery.operator-tokens-file", &path)
            .set("discovery.announcement.authentication", "required")
    });
    let reply = server.get("/v1/diagnostics/node/worker-1").await;
    server.expect_status(&reply, StatusCode::UNAUTHORIZED);
    let auth = format!("Bearer {READER}");
    let read = [("authorization", auth.as_str())];

    // No credentials: 401, remembered with the 401's reason.
    let reply = server
        .send_json(Method::PUT, "/v1/announcement/worker-1", &worker(&new_id()))
        .await;
    server.expect_status(&reply, StatusCode::UNAUTHORIZED);
    // A token for another node: 403.
    let secret = SharedSecret::new(SECRET).expect("a non-empty secret");
    let other = Minter::new(
        &secret,
        KeyDerivation::Sha256,
        "worker-2",
        Duration::from_secs(300),
    )
    .token();
    let body = serde_json::to_vec(&worker(&new_id())).expect("serialises");
    let reply = server
        .send(
            Method::PUT,
            "/v1/announcement/worker-1",
            &[("x-trino-internal-bearer", other.as_str())],
            Some("application/json"),
            Some(body),
        )
        .await;
    server.expect_status(&reply, StatusCode::FORBIDDEN);

    let answer = diagnose(&server, "worker-1", &read).await;
    let refused = refusals(&answer);
    server.check_eq(refused.len(), 2, "both refusals");
    server.check_eq(
        &refused[0]["reason"],
        &json!({"kind": "forbidden",
                "reason": "a token for node 'worker-2' cannot announce or delete node 'worker-1'"}),
        "the 403, newest first",
    );
    server.check_eq(
        &refused[1]["reason"]["kind"],
        &json!("unauthenticated"),
        "the 401",
    );
    server.check(
        refused[1]["reason"]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("missing credentials")),
        format!("the 401's one-line reason: {answer}"),
    );
    server.check_eq(&answer["listed"], &json!(false), "listed");
}

/// Two replicating nodes: the one the worker announced to says `client`, the other names
/// the peer that pushed the entry (the User-Agent its replicator sends, no shared secret).
#[tokio::test(flavor = "multi_thread")]
async fn a_replicated_entry_names_the_peer_that_pushed_it() {
    let cluster = discovery_testkit::Cluster::start(discoveryd!(), 2, &[]).await;
    let status = cluster
        .announce(0, "worker-r", &worker(&new_id()))
        .await
        .expect("PUT on node 0");
    assert_eq!(status, StatusCode::ACCEPTED, "{}", cluster.logs());
    let pusher = cluster.node_id(0).to_owned();
    let answer = discovery_testkit::eventually(DEADLINE, "node 1 to hear of worker-r", || async {
        let answer = cluster.get_json(1, "/v1/diagnostics/node/worker-r").await?;
        if answer["lastAccepted"]["replicated"] == json!(true) {
            anyhow::Ok(answer)
        } else {
            anyhow::bail!("not yet: {answer}")
        }
    })
    .await;
    assert_eq!(answer["listed"], json!(true), "{answer}");
    assert_eq!(answer["lastAccepted"]["via"], json!(pusher), "{answer}");
    assert_eq!(answer["server"], json!(cluster.node_id(1)), "{answer}");
    let direct = cluster
        .get_json(0, "/v1/diagnostics/node/worker-r")
        .await
        .expect("node 0 answers");
    assert_eq!(direct["lastAccepted"]["via"], json!("client"), "{direct}");
    assert_eq!(
        direct["expiresAt"], answer["expiresAt"],
        "same entry on both"
    );
}

/// Trino announce mode: the node id is learned from the node's `/v1/info`, so a node of
/// another environment is remembered as refused under that id (without a client address:
/// the refusal is found by the background fetch, not by the POST).
#[tokio::test(flavor = "multi_thread")]
async fn an_announce_mode_node_of_another_environment_is_remembered_by_its_node_id() {
    let info = json!({"nodeId": "trino-7", "state": "ACTIVE", "nodeVersion": {"version": "477"},
                      "environment": "prod", "coordinator": false});
    let app = axum::Router::new().route(
        "/v1/info",
        axum::routing::get(move || {
            let info = info.to_string();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    info,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the fake Trino node");
    let uri = format!("http://{}", listener.local_addr().expect("its address"));
    let fake = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let server = Server::start(discoveryd!());
    let answer = discovery_testkit::eventually(DEADLINE, "the refusal of trino-7", || async {
        // Every POST renews or retries; the fetch that finds the mismatch runs behind it.
        server
            .send(
                Method::POST,
                "/v1/announce",
                &[],
                Some("text/plain"),
                Some(uri.clone().into_bytes()),
            )
            .await;
        let answer = diagnose(&server, "trino-7", &[]).await;
        if refusals(&answer).is_empty() {
            anyhow::bail!("not yet: {answer}")
        }
        anyhow::Ok(answer)
    })
    .await;
    fake.abort();
    assert_eq!(
        refusals(&answer)[0]["reason"],
        json!({"kind": "environmentMismatch", "expected": "testing", "provided": "prod"}),
        "{answer}"
    );
    assert_eq!(answer["listed"], json!(false), "{answer}");
}
