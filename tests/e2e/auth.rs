//! Authentication against a real `discoveryd`: the shared secret Trino and Presto sign
//! with, `verify` and `required` announcements, required lookups and operator tokens.
//! Every refusal is checked for its status, its `WWW-Authenticate` challenge and for
//! having stored nothing (read back with an operator token).

use std::time::{Duration, SystemTime};

use discovery_auth::{KeyDerivation, Minter, SharedSecret};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::support::{
    announcement, b64, discoveryd, dynamic_entry, new_id, now_ms, run_to_exit, service,
    static_announcement, Reply, Server, DEADLINE,
};

const SECRET: &str = "e2e-shared-secret-0123456789";
const READER: &str = "reader-token-0123456789abcdef";
const WRITER: &str = "writer-token-0123456789abcdef";

/// A token for `node` signed with `secret` under `derivation`, expiring `lifetime` from
/// `at`.
fn token_at(secret: &str, derivation: KeyDerivation, node: &str, at: SystemTime) -> String {
    let secret = SharedSecret::new(secret).expect("a non-empty secret");
    Minter::new(&secret, derivation, node, Duration::from_secs(300)).token_at(at)
}

/// What a Trino node of release ≤ 480 sends for `node`.
fn trino_token(node: &str) -> String {
    token_at(SECRET, KeyDerivation::Sha256, node, SystemTime::now())
}

struct Secured {
    server: Server,
    /// Holds the tokens file; dropped (removed) with the server.
    _tokens_dir: TempDir,
    tokens_file: std::path::PathBuf,
}

/// A server with the shared secret and an operator tokens file, plus `extra` settings.
fn secured(extra: &[(&str, &str)]) -> Secured {
    let tokens_dir = tempfile::tempdir().expect("temporary directory");
    let tokens_file = tokens_dir.path().join("operator-tokens");
    std::fs::write(
        &tokens_file,
        format!("# e2e\n{READER} read\n{WRITER} write\n"),
    )
    .expect("write the tokens file");
    let path = tokens_file.display().to_string();
    let server = Server::start_with(discoveryd!(), |mut options| {
        options = options
            .set("internal-communication.shared-secret", SECRET)
            .set("discovery.operator-tokens-file", &path);
        for (key, value) in extra {
            options = options.set(key, value);
        }
        options
    });
    Secured {
        server,
        _tokens_dir: tokens_dir,
        tokens_file,
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn send(
    server: &Server,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Reply {
    let body = body.map(|b| serde_json::to_vec(b).expect("serialises"));
    let content_type = body.as_ref().map(|_| "application/json");
    server.send(method, path, headers, content_type, body).await
}

/// Checks a 401: the challenge Jetty clients need and a one-line reason containing
/// `reason`.
fn expect_401(server: &Server, reply: &Reply, reason: &str) {
    server.expect_status(reply, StatusCode::UNAUTHORIZED);
    server.check_eq(
        reply.header("www-authenticate"),
        Some("Bearer realm=\"discovery\""),
        format!("challenge of {}", reply.what),
    );
    let text = reply.text();
    server.check(
        text.contains(reason) && text.trim_end().lines().count() == 1,
        format!(
            "{}: one-line reason with '{reason}', got {text:?}",
            reply.what
        ),
    );
}

/// The dynamic store's keys, read with the read token.
async fn dynamic_keys(server: &Server) -> Vec<String> {
    let auth = bearer(READER);
    let reply = server
        .get_with("/v1/store/dynamic", &[("authorization", &auth)])
        .await;
    server.expect_status(&reply, StatusCode::OK);
    let mut keys: Vec<String> = server
        .json(&reply)
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e.get("value").is_some())
                .filter_map(|e| e["key"].as_str())
                .map(|k| String::from_utf8_lossy(&crate::support::unb64(&json!(k))).into_owned())
                .collect()
        })
        .unwrap_or_default();
    keys.sort();
    keys
}

async fn static_count(server: &Server) -> usize {
    let reply = server.get("/v1/announcement/static").await;
    server.expect_status(&reply, StatusCode::OK);
    server.json(&reply)["services"]
        .as_array()
        .map_or(0, Vec::len)
}

fn worker() -> Value {
    announcement(
        "general",
        "/w",
        vec![service(
            &new_id(),
            "trino",
            json!({"http": "http://10.0.0.1:8080"}),
        )],
    )
}

/// `PUT /v1/announcement/{node}` of a worker announcement with `headers`.
async fn announce_as(server: &Server, node: &str, headers: &[(&str, &str)]) -> Reply {
    send(
        server,
        Method::PUT,
        &format!("/v1/announcement/{node}"),
        headers,
        Some(&worker()),
    )
    .await
}

fn assert_no_secrets_logged(server: &Server) {
    let logs = server.logs();
    for secret in [SECRET, READER, WRITER] {
        server.check(!logs.contains(secret), format!("the log shows '{secret}'"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_secret_every_forged_push_store_write_and_dump_gets_401() {
    let secured = secured(&[]);
    let server = &secured.server;
    let token = trino_token("worker-1");
    let reply = announce_as(server, "worker-1", &[("x-trino-internal-bearer", &token)]).await;
    server.expect_status(&reply, StatusCode::ACCEPTED);

    let tombstone =
        json!({"entries": [dynamic_entry("worker-1", None, now_ms() + 1000, now_ms(), None)]});
    let forged = json!([dynamic_entry(
        "attacker",
        Some(&json!([])),
        now_ms(),
        now_ms(),
        Some(30_000)
    )]);
    let wrong_secret = token_at(
        "not-the-secret",
        KeyDerivation::Sha256,
        "disc-9",
        SystemTime::now(),
    );
    let wrong_auth = bearer(&wrong_secret);
    let attacks: [(Method, &str, Option<Value>); 9] = [
        (
            Method::POST,
            "/v1/replication/dynamic/push",
            Some(tombstone.clone()),
        ),
        (Method::GET, "/v1/replication/dynamic/digest", None),
        (
            Method::POST,
            "/v1/replication/dynamic/summaries",
            Some(json!({"buckets": [0]})),
        ),
        (
            Method::POST,
            "/v1/replication/dynamic/entries",
            Some(json!({"keys": [b64("worker-1")]})),
        ),
        (Method::POST, "/v1/store/dynamic", Some(forged.clone())),
        (Method::GET, "/v1/store/dynamic", None),
        (Method::GET, "/v1/store/static", None),
        (Method::GET, "/v1/replication/status", None),
        (
            Method::POST,
            "/v1/announcement/static",
            Some(static_announcement("apple", "red", "/a", json!({}))),
        ),
    ];
    for (method, path, body) in &attacks {
        let reply = send(server, method.clone(), path, &[], body.as_ref()).await;
        expect_401(server, &reply, "missing credentials");
        for header in ["x-trino-internal-bearer", "x-presto-internal-bearer"] {
            let reply = send(
                server,
                method.clone(),
                path,
                &[(header, &wrong_secret)],
                body.as_ref(),
            )
            .await;
            expect_401(server, &reply, "bad signature");
        }
        let reply = send(
            server,
            method.clone(),
            path,
            &[("authorization", &wrong_auth)],
            body.as_ref(),
        )
        .await;
        expect_401(server, &reply, "bad signature");
        let reply = send(
            server,
            method.clone(),
            path,
            &[("authorization", "Bearer guessed-operator-token")],
            body.as_ref(),
        )
        .await;
        expect_401(server, &reply, "unknown token");
    }
    let reply = send(
        server,
        Method::DELETE,
        &format!("/v1/announcement/static/{}", new_id()),
        &[],
        None,
    )
    .await;
    expect_401(server, &reply, "missing credentials");

    server.check_eq(
        dynamic_keys(server).await,
        vec!["worker-1".to_owned()],
        "dynamic keys after the attacks",
    );
    server.check_eq(
        static_count(server).await,
        0,
        "static services after the attacks",
    );
    server.check_eq(
        server.service_ids("/v1/service/trino").await.len(),
        1,
        "the worker is still listed",
    );

    // The same requests signed by a member of the cluster go through.
    let member = trino_token("disc-2");
    let reply = send(
        server,
        Method::GET,
        "/v1/replication/dynamic/digest",
        &[("x-trino-internal-bearer", &member)],
        None,
    )
    .await;
    server.expect_status(&reply, StatusCode::OK);
    let reply = send(
        server,
        Method::POST,
        "/v1/store/dynamic",
        &[("authorization", &bearer(&member))],
        Some(&forged),
    )
    .await;
    server.check(
        reply.status.is_success(),
        format!("a signed store write: {reply}"),
    );
    assert_no_secrets_logged(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_announcement_is_accepted_and_one_signed_for_another_node_gets_403() {
    let secured = secured(&[]);
    let server = &secured.server;
    // Old Trino and Presto (SHA-256 key) and new Trino (HKDF key), under their headers.
    let signers = [
        (
            "x-trino-internal-bearer",
            KeyDerivation::Sha256,
            "old-trino",
        ),
        (
            "x-trino-internal-bearer",
            KeyDerivation::HkdfSha256,
            "new-trino",
        ),
        ("x-presto-internal-bearer", KeyDerivation::Sha256, "presto"),
    ];
    for (header, derivation, node) in signers {
        let token = token_at(SECRET, derivation, node, SystemTime::now());
        let reply = announce_as(server, node, &[(header, &token)]).await;
        server.expect_status(&reply, StatusCode::ACCEPTED);
    }
    let before = dynamic_keys(server).await;
    server.check_eq(
        before.clone(),
        vec![
            "new-trino".to_owned(),
            "old-trino".to_owned(),
            "presto".to_owned(),
        ],
        "announced nodes",
    );

    let intruder = trino_token("intruder");
    let hijack = announce_as(server, "presto", &[("x-trino-internal-bearer", &intruder)]).await;
    server.expect_status(&hijack, StatusCode::FORBIDDEN);
    server.check(
        hijack.text().contains("intruder"),
        format!("403 names the token's node: {hijack}"),
    );
    let delete = send(
        server,
        Method::DELETE,
        "/v1/announcement/presto",
        &[("x-trino-internal-bearer", &intruder)],
        None,
    )
    .await;
    server.expect_status(&delete, StatusCode::FORBIDDEN);
    let new_node = announce_as(
        server,
        "someone-else",
        &[("x-trino-internal-bearer", &intruder)],
    )
    .await;
    server.expect_status(&new_node, StatusCode::FORBIDDEN);
    server.check_eq(
        dynamic_keys(server).await,
        before,
        "nothing changed by the 403s",
    );

    // The node's own token deletes it.
    let own = trino_token("presto");
    let reply = send(
        server,
        Method::DELETE,
        "/v1/announcement/presto",
        &[("x-presto-internal-bearer", &own)],
        None,
    )
    .await;
    server.expect_status(&reply, StatusCode::NO_CONTENT);
    assert_no_secrets_logged(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_lets_unsigned_announcements_in_and_refuses_invalid_tokens() {
    let secured = secured(&[]);
    let server = &secured.server;
    // Prestissimo's announcer signs nothing.
    let reply = announce_as(server, "prestissimo", &[]).await;
    server.expect_status(&reply, StatusCode::ACCEPTED);

    let now = SystemTime::now();
    // Expired 20 s ago: inside the default 30 s leeway.
    let late = token_at(
        SECRET,
        KeyDerivation::Sha256,
        "late",
        now - Duration::from_secs(320),
    );
    let reply = announce_as(server, "late", &[("x-trino-internal-bearer", &late)]).await;
    server.expect_status(&reply, StatusCode::ACCEPTED);
    // Expired two minutes ago: outside it.
    let expired = token_at(
        SECRET,
        KeyDerivation::Sha256,
        "expired",
        now - Duration::from_secs(420),
    );
    let reply = announce_as(server, "expired", &[("x-trino-internal-bearer", &expired)]).await;
    expect_401(server, &reply, "expired");
    let wrong = token_at("other-secret", KeyDerivation::HkdfSha256, "wrong", now);
    let reply = announce_as(server, "wrong", &[("x-trino-internal-bearer", &wrong)]).await;
    expect_401(server, &reply, "bad signature");
    let reply = announce_as(
        server,
        "garbage",
        &[("x-trino-internal-bearer", "not.a.jwt")],
    )
    .await;
    expect_401(server, &reply, "not a JWT");
    server.check_eq(
        dynamic_keys(server).await,
        vec!["late".to_owned(), "prestissimo".to_owned()],
        "only the accepted announcements",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_refuses_unsigned_announcements_and_lookups() {
    let secured = secured(&[
        ("discovery.announcement.authentication", "required"),
        ("discovery.lookup.authentication", "required"),
    ]);
    let server = &secured.server;
    let reply = announce_as(server, "prestissimo", &[]).await;
    expect_401(server, &reply, "missing credentials");
    let reply = send(server, Method::POST, "/v1/announce", &[], None).await;
    expect_401(server, &reply, "missing credentials");
    let token = trino_token("w1");
    let reply = announce_as(server, "w1", &[("x-trino-internal-bearer", &token)]).await;
    server.expect_status(&reply, StatusCode::ACCEPTED);
    server.check_eq(
        dynamic_keys(server).await,
        vec!["w1".to_owned()],
        "only the signed node",
    );

    for path in [
        "/v1/service",
        "/v1/service/trino",
        "/v1/service/trino/general",
        "/v1/announcement/static",
    ] {
        let reply = server.get(path).await;
        expect_401(server, &reply, "missing credentials");
        let reply = server
            .get_with(path, &[("x-trino-internal-bearer", &token)])
            .await;
        server.expect_status(&reply, StatusCode::OK);
        let reply = server
            .get_with(path, &[("authorization", &bearer(READER))])
            .await;
        server.expect_status(&reply, StatusCode::OK);
    }
    // Health stays open for load balancers.
    let reply = server.get("/v1/health/ready").await;
    server.expect_status(&reply, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_stay_open_by_default_with_the_secret() {
    let secured = secured(&[]);
    let server = &secured.server;
    let reply = server.get("/v1/service").await;
    server.expect_status(&reply, StatusCode::OK);
    // A broken token on an open route is not checked.
    let reply = server
        .get_with("/v1/service", &[("x-trino-internal-bearer", "junk")])
        .await;
    server.expect_status(&reply, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_roles_hold_and_the_tokens_file_is_reread_when_it_changes() {
    let secured = secured(&[]);
    let (server, tokens_file) = (&secured.server, &secured.tokens_file);
    let read = bearer(READER);
    let write = bearer(WRITER);
    for path in [
        "/v1/store/dynamic",
        "/v1/store/static",
        "/v1/replication/status",
    ] {
        let reply = server.get_with(path, &[("authorization", &read)]).await;
        server.expect_status(&reply, StatusCode::OK);
    }
    let apple = static_announcement("apple", "red", "/a", json!({}));
    let reply = send(
        server,
        Method::POST,
        "/v1/announcement/static",
        &[("authorization", &read)],
        Some(&apple),
    )
    .await;
    server.expect_status(&reply, StatusCode::FORBIDDEN);
    server.check(
        reply.text().contains("write"),
        format!("403 names the role: {reply}"),
    );
    let reply = send(
        server,
        Method::POST,
        "/v1/store/static",
        &[("authorization", &read)],
        Some(&json!([])),
    )
    .await;
    server.expect_status(&reply, StatusCode::FORBIDDEN);
    // Operator tokens are not for replication.
    let reply = send(
        server,
        Method::GET,
        "/v1/replication/dynamic/digest",
        &[("authorization", &write)],
        None,
    )
    .await;
    server.expect_status(&reply, StatusCode::FORBIDDEN);
    server.check_eq(static_count(server).await, 0, "nothing stored by the 403s");

    let reply = send(
        server,
        Method::POST,
        "/v1/announcement/static",
        &[("authorization", &write)],
        Some(&apple),
    )
    .await;
    server.expect_status(&reply, StatusCode::CREATED);
    let id = server.json(&reply)["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let reply = send(
        server,
        Method::DELETE,
        &format!("/v1/announcement/static/{id}"),
        &[("authorization", &write)],
        None,
    )
    .await;
    server.expect_status(&reply, StatusCode::NO_CONTENT);

    // Replace the file: the new token starts working and the old ones stop, without a
    // restart.
    let fresh = "fresh-token-0123456789abcdef";
    std::fs::write(tokens_file, format!("{fresh} read\n")).expect("rewrite the tokens file");
    let fresh_auth = bearer(fresh);
    discovery_testkit::wait::eventually(DEADLINE, "the rewritten tokens file is used", || async {
        let new_status = server
            .get_with("/v1/store/static", &[("authorization", &fresh_auth)])
            .await
            .status;
        let old_status = server
            .get_with("/v1/store/static", &[("authorization", &read)])
            .await
            .status;
        if new_status == StatusCode::OK && old_status == StatusCode::UNAUTHORIZED {
            Ok(())
        } else {
            Err(format!("new token {new_status}, old token {old_status}"))
        }
    })
    .await;
    // A broken rewrite keeps the last good file.
    std::fs::write(tokens_file, "broken\n").expect("rewrite the tokens file");
    server
        .log_line("keeping the previous operator tokens")
        .await;
    let reply = server
        .get_with("/v1/store/static", &[("authorization", &bearer(fresh))])
        .await;
    server.expect_status(&reply, StatusCode::OK);
    assert_no_secrets_logged(server);
    server.check(
        !server.logs().contains(fresh),
        "the log shows the new token",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_logged_once_per_client_and_all_counted() {
    let secured = secured(&[]);
    let server = &secured.server;
    for _ in 0..5 {
        let reply = send(
            server,
            Method::GET,
            "/v1/replication/dynamic/digest",
            &[],
            None,
        )
        .await;
        expect_401(server, &reply, "missing credentials");
    }
    server.log_line("request refused").await;
    let logged = server.logs().matches("request refused").count();
    server.check_eq(logged, 1, "refusal log lines from one client");
    let reply = server
        .get_with(
            "/v1/replication/status",
            &[("authorization", &bearer(READER))],
        )
        .await;
    server.expect_status(&reply, StatusCode::OK);
    server.check_eq(
        server.json(&reply)["authFailures"]["missing"].as_u64(),
        Some(5),
        "counted refusals",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_node_says_so_at_startup() {
    let server = Server::start(discoveryd!());
    server
        .log_line("internal-communication.shared-secret is not set")
        .await;
    server
        .log_line("discovery.operator-tokens-file is not set either")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_security_settings_stop_the_start_naming_the_key() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let weak = dir.path().join("weak-tokens");
    std::fs::write(&weak, "short read\n").expect("write");
    let weak_setting = format!("discovery.operator-tokens-file={}", weak.display());
    let missing_setting = format!(
        "discovery.operator-tokens-file={}",
        dir.path().join("absent").display()
    );
    let cases: [(&[&str], &str); 4] = [
        (
            &["--set", "discovery.announcement.authentication=required"],
            "discovery.announcement.authentication",
        ),
        (
            &["--set", "discovery.lookup.authentication=required"],
            "discovery.lookup.authentication",
        ),
        (&["--set", &weak_setting], "line 1"),
        (
            &["--set", &missing_setting],
            "discovery.operator-tokens-file",
        ),
    ];
    for (args, expected) in cases {
        let (status, output) = run_to_exit(None, args).await;
        assert!(!status.success(), "{args:?} started");
        assert!(output.contains(expected), "{args:?}: {output}");
    }
}
