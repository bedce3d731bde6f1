//! `GET /metrics` and the audit log against a real `discoveryd`: the metric names are a
//! contract (dashboards rely on them), their values must follow what the node did, and
//! nothing a client sends may become a label value. The audit log must name the caller
//! and its address for every operator write, and never the token.

use discovery_testkit::metrics::{parse, select, value, Sample};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{
    announcement, discoveryd, dynamic_entry, new_id, now_ms, service, static_announcement, Server,
    DEADLINE,
};

const ANNOUNCE_ROUTE: &str = "/v1/announcement/{node_id}";

/// Scrapes `/metrics` (with `headers`) and parses it.
async fn scrape(server: &Server, headers: &[(&str, &str)]) -> Vec<Sample> {
    let reply = server.get_with("/metrics", headers).await;
    server.expect_status(&reply, StatusCode::OK);
    server.check(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        format!(
            "the Prometheus text format: {:?}",
            reply.header("content-type")
        ),
    );
    parse(&reply.text()).unwrap_or_else(|e| server.fail(format!("unparsable /metrics: {e}")))
}

fn at_least(server: &Server, samples: &[Sample], name: &str, labels: &[(&str, &str)], min: f64) {
    let got = value(samples, name, labels);
    server.check(
        got.is_some_and(|v| v >= min),
        format!("{name}{labels:?} >= {min}, got {got:?}"),
    );
}

#[tokio::test]
async fn metrics_follow_announcements_lookups_and_refusals() {
    let server = Server::start(discoveryd!());
    // Distinctive raw paths: neither may show up in any label.
    let node = "metrics-raw-node-7f3a";
    let body = announcement(
        "general",
        "/w",
        vec![service(
            &new_id(),
            "trino",
            json!({"http": "http://10.0.0.1:8080"}),
        )],
    );
    server.announce(node, &body).await;
    server.check_eq(
        server.services("/v1/service/trino").await.len(),
        1,
        "listed",
    );
    // Refused: another environment.
    let mut foreign = body.clone();
    foreign["environment"] = json!("elsewhere");
    let refused = server
        .put_announcement("metrics-raw-refused-9c1b", &foreign)
        .await;
    server.expect_status(&refused, StatusCode::BAD_REQUEST);
    let unknown = server.get("/v1/metrics-raw-nowhere-4d2e").await;
    server.expect_status(&unknown, StatusCode::NOT_FOUND);
    let wrong_method = server
        .send(Method::PATCH, "/v1/service", &[], None, None)
        .await;
    server.expect_status(&wrong_method, StatusCode::METHOD_NOT_ALLOWED);

    let samples = discovery_testkit::eventually(DEADLINE, "the node to be ready", || async {
        let samples = scrape(&server, &[]).await;
        match value(&samples, "discovery_ready", &[]) {
            Some(1.0) => Ok(samples),
            other => Err(format!("discovery_ready = {other:?}")),
        }
    })
    .await;

    let put = [("route", ANNOUNCE_ROUTE), ("method", "PUT")];
    at_least(
        &server,
        &samples,
        "discovery_http_requests_total",
        &[put[0], put[1], ("status", "202")],
        1.0,
    );
    at_least(
        &server,
        &samples,
        "discovery_http_requests_total",
        &[put[0], put[1], ("status", "400")],
        1.0,
    );
    at_least(
        &server,
        &samples,
        "discovery_http_requests_total",
        &[
            ("route", "/v1/service/{type}"),
            ("method", "GET"),
            ("status", "200"),
        ],
        1.0,
    );
    at_least(
        &server,
        &samples,
        "discovery_http_requests_total",
        &[("route", "unmatched"), ("method", "GET"), ("status", "404")],
        1.0,
    );
    at_least(
        &server,
        &samples,
        "discovery_http_requests_total",
        &[
            ("route", "/v1/service"),
            ("method", "PATCH"),
            ("status", "405"),
        ],
        1.0,
    );
    at_least(
        &server,
        &samples,
        "discovery_http_request_duration_seconds_count",
        &[("route", ANNOUNCE_ROUTE)],
        2.0,
    );
    at_least(
        &server,
        &samples,
        "discovery_http_request_duration_seconds_bucket",
        &[("route", ANNOUNCE_ROUTE), ("le", "+Inf")],
        2.0,
    );
    server.check_eq(
        value(
            &samples,
            "discovery_store_entries",
            &[("store", "dynamic"), ("state", "live")],
        ),
        Some(1.0),
        "live dynamic entries",
    );
    server.check_eq(
        value(
            &samples,
            "discovery_store_entries",
            &[("store", "static"), ("state", "tombstone")],
        ),
        Some(0.0),
        "static tombstones",
    );
    at_least(
        &server,
        &samples,
        "discovery_store_bytes",
        &[("store", "dynamic")],
        1.0,
    );
    at_least(
        &server,
        &samples,
        "discovery_announcements_total",
        &[("result", "accepted")],
        1.0,
    );
    at_least(
        &server,
        &samples,
        "discovery_announcements_total",
        &[("result", "refused")],
        1.0,
    );
    for reason in ["future", "full", "invalid"] {
        server.check_eq(
            value(
                &samples,
                "discovery_refused_entries_total",
                &[("reason", reason)],
            ),
            Some(0.0),
            format!("refused entries ({reason})"),
        );
    }
    // A single node: no replication series at all.
    server.check(
        select(&samples, "discovery_replication_queue_depth", &[])
            .next()
            .is_none(),
        "no peers, no replication series",
    );
    // Nothing the client chose is a label value.
    for sample in &samples {
        for (label, text) in &sample.labels {
            server.check(
                !text.contains("metrics-raw"),
                format!("raw path in label {label} of {sample:?}"),
            );
        }
    }
    // The scrape counts itself.
    let again = scrape(&server, &[]).await;
    at_least(
        &server,
        &again,
        "discovery_http_requests_total",
        &[("route", "/metrics"), ("method", "GET"), ("status", "200")],
        1.0,
    );
}

const SECRET: &str = "e2e-metrics-secret-0123456789";
const READER: &str = "metrics-reader-token-0123456789";
const WRITER: &str = "metrics-writer-token-0123456789";

/// A node with the shared secret and an operator tokens file (kept in the returned dir).
fn secured() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let tokens = dir.path().join("operator-tokens");
    std::fs::write(&tokens, format!("{READER} read\n{WRITER} write\n")).expect("tokens file");
    let path = tokens.display().to_string();
    let server = Server::start_with(discoveryd!(), |options| {
        options
            .set("internal-communication.shared-secret", SECRET)
            .set("discovery.operator-tokens-file", &path)
    });
    (server, dir)
}

#[tokio::test]
async fn metrics_are_an_operator_read_endpoint_and_count_auth_failures() {
    let (server, _dir) = secured();
    let anonymous = server.get("/metrics").await;
    server.expect_status(&anonymous, StatusCode::UNAUTHORIZED);
    let wrong = server
        .get_with("/metrics", &[("authorization", "Bearer not-a-token")])
        .await;
    server.expect_status(&wrong, StatusCode::UNAUTHORIZED);
    let auth = format!("Bearer {READER}");
    let samples = scrape(&server, &[("authorization", &auth)]).await;
    at_least(
        &server,
        &samples,
        "discovery_auth_failures_total",
        &[("reason", "missing")],
        1.0,
    );
    at_least(
        &server,
        &samples,
        "discovery_auth_failures_total",
        &[("reason", "unknown_token")],
        1.0,
    );
    at_least(
        &server,
        &samples,
        "discovery_http_requests_total",
        &[("route", "/metrics"), ("method", "GET"), ("status", "401")],
        2.0,
    );
}

/// The audit line of a write whose `what` contains `needle`.
async fn audit_line(server: &Server, method: &str, needle: &str) -> String {
    let marker = format!("method={method}");
    discovery_testkit::eventually(DEADLINE, &format!("an audit line for {needle}"), || async {
        let logs = server.logs();
        logs.lines()
            .find(|l| l.contains("discovery::audit") && l.contains(&marker) && l.contains(needle))
            .map(str::to_owned)
            .ok_or_else(|| format!("no audit line with {marker} and {needle:?} in:\n{logs}"))
    })
    .await
}

#[tokio::test]
async fn operator_writes_are_audited_with_address_and_identity_never_the_token() {
    let (server, _dir) = secured();
    let writer = format!("Bearer {WRITER}");
    let operator = format!(
        "caller=operator:write:{}",
        discovery_server::authenticator::token_id(WRITER)
    );

    // Added with the write token.
    let body = static_announcement("apple", "red", "/a", json!({}));
    let created = server
        .send(
            Method::POST,
            "/v1/announcement/static",
            &[("authorization", &writer)],
            Some("application/json"),
            Some(serde_json::to_vec(&body).expect("serialises")),
        )
        .await;
    server.expect_status(&created, StatusCode::CREATED);
    let id = server.json(&created)["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let line = audit_line(&server, "POST", &id).await;
    for part in [
        "client=127.0.0.1:",
        operator.as_str(),
        "route=/v1/announcement/static",
        "status=201",
        "outcome=ok",
        "apple",
    ] {
        server.check(line.contains(part), format!("{part} in {line}"));
    }

    // Refused by validation: still audited, with the outcome.
    let bad = server
        .send(
            Method::POST,
            "/v1/announcement/static",
            &[("authorization", &writer)],
            Some("application/json"),
            Some(b"{not json".to_vec()),
        )
        .await;
    server.expect_status(&bad, StatusCode::BAD_REQUEST);
    let line = audit_line(&server, "POST", "status=400").await;
    server.check(
        line.contains("outcome=refused") && line.contains(operator.as_str()),
        format!("refused write audited: {line}"),
    );

    // Deleted.
    let deleted = server
        .send(
            Method::DELETE,
            &format!("/v1/announcement/static/{id}"),
            &[("authorization", &writer)],
            None,
            None,
        )
        .await;
    server.expect_status(&deleted, StatusCode::NO_CONTENT);
    let line = audit_line(&server, "DELETE", &id).await;
    server.check(
        line.contains(operator.as_str()) && line.contains("status=204"),
        format!("delete audited: {line}"),
    );

    // Raw entries with an internal token: its `sub`.
    let token = discovery_auth::Minter::new(
        &discovery_auth::SharedSecret::new(SECRET).expect("secret"),
        discovery_auth::KeyDerivation::Sha256,
        "metrics-peer",
        std::time::Duration::from_secs(300),
    )
    .token();
    let entries = json!([dynamic_entry(
        "w-audit",
        Some(&json!([])),
        now_ms(),
        now_ms(),
        Some(30_000)
    )]);
    let applied = server
        .send(
            Method::POST,
            "/v1/store/dynamic",
            &[("x-trino-internal-bearer", &token)],
            Some("application/json"),
            Some(serde_json::to_vec(&entries).expect("serialises")),
        )
        .await;
    server.expect_status(&applied, StatusCode::NO_CONTENT);
    let line = audit_line(&server, "POST", "1 entries into store dynamic").await;
    server.check(
        line.contains("caller=internal:metrics-peer") && line.contains("client=127.0.0.1:"),
        format!("store write audited: {line}"),
    );

    let logs = server.logs();
    server.check(!logs.contains(WRITER), "the write token is never logged");
    server.check(!logs.contains(&token), "the internal token is never logged");
}

#[tokio::test]
async fn writes_on_a_node_without_authentication_are_audited_as_anonymous() {
    let server = Server::start(discoveryd!());
    let service = server
        .create_static(&static_announcement("pear", "green", "/p", json!({})))
        .await;
    let id = service["id"].as_str().expect("an id").to_owned();
    let line = audit_line(&server, "POST", &id).await;
    server.check(
        line.contains("caller=anonymous") && line.contains("client=127.0.0.1:"),
        format!("anonymous write audited: {line}"),
    );
}
