//! Blocking lookups (`GET /v1/service...?wait=` with the current tag), against the real
//! binary: held until the answer changes, a 304 like today at the end of the wait, never
//! held without the current tag, on a bad `wait` or on a node that is not ready.

use std::time::Duration;

use discovery_testkit::http::http_client;
use discovery_testkit::nginx::Nginx;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::support::{announcement, discoveryd, new_id, service, Server, DEADLINE};

/// What a held request came back with.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    etag: Option<String>,
    cache_control: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// Sends `GET path` with `headers` on its own task, so the test can act while it is held.
fn start_lookup(server: &Server, path: &str, headers: &[(&str, &str)]) -> JoinHandle<Answer> {
    start_lookup_at(server.url(path), headers)
}

/// [`start_lookup`] of a whole URL (through nginx).
fn start_lookup_at(url: String, headers: &[(&str, &str)]) -> JoinHandle<Answer> {
    // Longer than any wait below: the server, not the client, ends a held request.
    let client = http_client(Duration::from_secs(120));
    let mut request = client.get(&url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let what = format!("GET {url}");
    tokio::spawn(async move {
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (etag, cache_control, content_type) = (
            header("etag"),
            header("cache-control"),
            header("content-type"),
        );
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map(|b| b.to_vec())
            .unwrap_or_default();
        Answer {
            status,
            etag,
            cache_control,
            content_type,
            body,
        }
    })
}

/// The answer of a held request, which must come within [`DEADLINE`].
async fn answer(server: &Server, held: JoinHandle<Answer>, what: &str) -> Answer {
    match tokio::time::timeout(DEADLINE, held).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => server.fail(format!("{what}: the request task failed: {e}")),
        Err(_) => server.fail(format!("{what}: no answer within {DEADLINE:?}")),
    }
}

fn worker(id: &str, service_type: &str) -> Value {
    announcement("general", "/w", vec![service(id, service_type, json!({}))])
}

/// The current ETag of `path`.
async fn etag(server: &Server, path: &str) -> String {
    let reply = server.get(path).await;
    server.expect_status(&reply, StatusCode::OK);
    match reply.header("etag") {
        Some(tag) => tag.to_owned(),
        None => server.fail(format!("{reply}\nno ETag")),
    }
}

fn ids(server: &Server, body: &[u8]) -> Vec<String> {
    let value: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| server.fail(format!("not JSON ({e}): {body:?}")));
    value["services"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_lookup_answers_when_its_type_changes_and_not_before() {
    let server = Server::start(discoveryd!());
    let first = new_id();
    server.announce("w1", &worker(&first, "trino")).await;
    let path = "/v1/service/trino/general";
    let tag = etag(&server, path).await;
    let held = start_lookup(
        &server,
        &format!("{path}?wait=30s"),
        &[("If-None-Match", &tag)],
    );
    let whole_type = start_lookup(&server, "/v1/service/trino?wait=30s", &[("ETag", &tag)]);

    // Another type changes, and a renewal of the watched one changes nothing: once a
    // plain lookup has made the round trip after them, both writes were applied.
    server.announce("p1", &worker(&new_id(), "presto")).await;
    server.announce("w1", &worker(&first, "trino")).await;
    server.expect_status(&server.get(path).await, StatusCode::OK);
    server.check(!held.is_finished(), "still held after other writes");
    server.check(!whole_type.is_finished(), "the type watcher too");

    let second = new_id();
    server.announce("w2", &worker(&second, "trino")).await;
    let changed = answer(&server, held, "the held lookup").await;
    server.check_eq(changed.status, StatusCode::OK, "status after the change");
    let mut listed = ids(&server, &changed.body);
    listed.sort();
    let mut expected = vec![first.clone(), second.clone()];
    expected.sort();
    server.check_eq(listed, expected, "both trino services");
    server.check(
        changed.etag.as_deref().is_some_and(|t| t != tag),
        format!("a new ETag: {changed:?}"),
    );
    server.check_eq(
        changed.cache_control.as_deref(),
        Some("max-age=10"),
        "Cache-Control as today",
    );
    server.check_eq(
        changed.content_type.as_deref(),
        Some("application/json"),
        "content type as today",
    );
    // The same answer as a plain lookup, byte for byte.
    let plain = server.get(path).await;
    server.check_eq(&plain.body, &changed.body, "the plain lookup's body");

    // The type lookup listed the same services, so the pool's tag was its current tag
    // too (sent in the airlift client's `ETag` header): held, and woken by the same write.
    let whole_type = answer(&server, whole_type, "the type lookup").await;
    server.check_eq(whole_type.status, StatusCode::OK, "type lookup");
    server.check(ids(&server, &whole_type.body).contains(&second), "lists w2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_of_a_type_and_of_everything_wake_on_any_pool_of_it() {
    let server = Server::start(discoveryd!());
    server.announce("w1", &worker(&new_id(), "trino")).await;
    let type_tag = etag(&server, "/v1/service/trino").await;
    let all_tag = etag(&server, "/v1/service").await;
    let of_type = start_lookup(
        &server,
        "/v1/service/trino?wait=30s",
        &[("If-None-Match", &type_tag)],
    );
    let of_all = start_lookup(
        &server,
        "/v1/service?wait=30s",
        &[("If-None-Match", &all_tag)],
    );
    let id = new_id();
    let etl = announcement("etl", "/e", vec![service(&id, "trino", json!({}))]);
    server.announce("e1", &etl).await;
    for (held, what) in [(of_type, "type watcher"), (of_all, "watcher of everything")] {
        let changed = answer(&server, held, what).await;
        server.check_eq(changed.status, StatusCode::OK, what);
        server.check(ids(&server, &changed.body).contains(&id), what);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_end_of_the_wait_a_blocking_lookup_is_the_usual_304() {
    let server = Server::start(discoveryd!());
    server.announce("w1", &worker(&new_id(), "trino")).await;
    let path = "/v1/service/trino/general";
    let tag = etag(&server, path).await;
    for header in ["If-None-Match", "ETag"] {
        let held = start_lookup(&server, &format!("{path}?wait=1s"), &[(header, &tag)]);
        let unchanged = answer(&server, held, header).await;
        server.check_eq(unchanged.status, StatusCode::NOT_MODIFIED, header);
        server.check_eq(unchanged.etag.as_deref(), Some(tag.as_str()), "same ETag");
        server.check_eq(
            unchanged.cache_control.as_deref(),
            Some("max-age=10"),
            "Cache-Control as today",
        );
        server.check(unchanged.body.is_empty(), "a 304 has no body");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_service_ends_the_wait() {
    let server = Server::start_with(discoveryd!(), |o| o.set("discovery.max-age", "1s"));
    server.announce("w1", &worker(&new_id(), "trino")).await;
    let path = "/v1/service/trino/general";
    let tag = etag(&server, path).await;
    let held = start_lookup(
        &server,
        &format!("{path}?wait=60s"),
        &[("If-None-Match", &tag)],
    );
    let expired = answer(&server, held, "the held lookup").await;
    server.check_eq(expired.status, StatusCode::OK, "status after the expiry");
    server.check(
        ids(&server, &expired.body).is_empty(),
        "the service is gone",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_current_tag_the_answer_is_immediate() {
    let server = Server::start(discoveryd!());
    let id = new_id();
    server.announce("w1", &worker(&id, "trino")).await;
    let path = "/v1/service/trino/general?wait=60s";
    for headers in [&[][..], &[("If-None-Match", "\"0000000000000000\"")][..]] {
        let immediate = answer(&server, start_lookup(&server, path, headers), path).await;
        server.check_eq(immediate.status, StatusCode::OK, format!("{headers:?}"));
        server.check_eq(ids(&server, &immediate.body), vec![id.clone()], "listed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_that_is_not_a_duration_is_400() {
    let server = Server::start(discoveryd!());
    for query in ["wait=banana", "wait=30", "wait=1s&wait=2s", "wait=-1s"] {
        let reply = server
            .get_with(
                &format!("/v1/service/trino?{query}"),
                &[("If-None-Match", "*")],
            )
            .await;
        server.expect_status(&reply, StatusCode::BAD_REQUEST);
        server.check(reply.text().contains("wait"), format!("{reply}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_above_the_maximum_is_cut_to_it() {
    let server = Server::start_with(discoveryd!(), |o| o.set("discovery.watch.max-wait", "2s"));
    server.announce("w1", &worker(&new_id(), "trino")).await;
    let path = "/v1/service/trino/general";
    let tag = etag(&server, path).await;
    // Ten minutes asked, two seconds allowed: the answer comes well within DEADLINE.
    let held = start_lookup(
        &server,
        &format!("{path}?wait=10m"),
        &[("If-None-Match", &tag)],
    );
    let unchanged = answer(&server, held, "wait=10m").await;
    server.check_eq(unchanged.status, StatusCode::NOT_MODIFIED, "status");
    server.check_eq(unchanged.etag.as_deref(), Some(tag.as_str()), "same ETag");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_is_not_ready_answers_503_at_once() {
    let server = Server::start_with(discoveryd!(), |o| o.set("readiness.warm-up", "10m"));
    let held = start_lookup(
        &server,
        "/v1/service/trino/general?wait=60s",
        &[("If-None-Match", "*")],
    );
    let refused = answer(&server, held, "lookup on a warming-up node").await;
    server.check_eq(refused.status, StatusCode::SERVICE_UNAVAILABLE, "status");
    server.check(
        String::from_utf8_lossy(&refused.body).starts_with("not ready"),
        format!("{refused:?}"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_shipped_nginx_a_lookup_is_held_past_the_3s_read_timeout() {
    let server = Server::start(discoveryd!());
    server.announce("w1", &worker(&new_id(), "trino")).await;
    let nginx = Nginx::start("127.0.0.1", &[server.authority()]).await;
    let path = "/v1/service/trino/general";
    let tag = etag(&server, path).await;

    // Plain requests get 3 s from nginx: a wait of 4 s would end in a 504 there.
    let url = format!("{}{path}?wait=4s", nginx.url());
    let held = start_lookup_at(url, &[("If-None-Match", &tag)]);
    let unchanged = answer(&server, held, "a 4 s wait through nginx").await;
    server.check_eq(
        unchanged.status,
        StatusCode::NOT_MODIFIED,
        format!("{unchanged:?}\n{}", nginx.error_log()),
    );
    server.check_eq(unchanged.etag.as_deref(), Some(tag.as_str()), "same ETag");

    let url = format!("{}{path}?wait=30s", nginx.url());
    let held = start_lookup_at(url, &[("If-None-Match", &tag)]);
    let id = new_id();
    server.announce("w2", &worker(&id, "trino")).await;
    let changed = answer(&server, held, "a held lookup through nginx").await;
    server.check_eq(changed.status, StatusCode::OK, "status after the change");
    server.check(ids(&server, &changed.body).contains(&id), "lists w2");
}
