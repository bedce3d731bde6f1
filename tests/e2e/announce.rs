//! Dynamic announcements and lookups: conformance cases 1–24 and 26–28.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{announcement, discoveryd, new_id, service, Reply, Server, ENV};

fn storage(id: &str) -> Value {
    service(id, "storage", json!({"http": "http://localhost:1111"}))
}

/// Checks a 400 with a one-line text/plain body mentioning `needle`.
#[track_caller]
fn expect_bad_request(server: &Server, reply: &Reply, needle: &str) {
    server.expect_status(reply, StatusCode::BAD_REQUEST);
    server.check(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        format!("{reply}\n400 bodies are text/plain"),
    );
    let text = reply.text();
    server.check(
        text.trim_end().lines().count() == 1,
        format!("{reply}\n400 body must be one line"),
    );
    server.check(
        text.contains(needle),
        format!("{reply}\n400 body must mention {needle:?}"),
    );
}

// Case 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announce_is_202_with_an_empty_body_and_cache_control() {
    let server = Server::start(discoveryd!());
    let body = announcement("alpha", "/a/b/c", vec![storage(&new_id())]);
    let reply = server.put_announcement("n1", &body).await;
    server.expect_status(&reply, StatusCode::ACCEPTED);
    server.check(
        reply.body.is_empty(),
        format!("{reply}\nbody must be empty"),
    );
    // Java sends no Cache-Control; ours steers the airlift client's re-announce interval.
    server.check_eq(
        reply.header("cache-control"),
        Some("max-age=10"),
        "Cache-Control of the announce",
    );
}

// Case 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_by_type_and_pool_returns_exactly_the_announced_service() {
    let server = Server::start(discoveryd!());
    let u1 = new_id();
    server
        .announce("n1", &announcement("alpha", "/a/b/c", vec![storage(&u1)]))
        .await;
    let body = server.lookup("/v1/service/storage/alpha").await;
    server.check_eq(
        body,
        json!({"environment": ENV, "services": [{"id": u1, "nodeId": "n1", "type": "storage",
            "pool": "alpha", "location": "/a/b/c", "properties": {"http": "http://localhost:1111"}}]}),
        "GET /v1/service/storage/alpha",
    );
}

// Case 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_by_type_and_of_everything_include_the_service() {
    let server = Server::start(discoveryd!());
    let u1 = new_id();
    server
        .announce("n1", &announcement("alpha", "/a/b/c", vec![storage(&u1)]))
        .await;
    let by_pool = server.services("/v1/service/storage/alpha").await;
    server.check_eq(by_pool.len(), 1, "services of storage/alpha");
    server.check_eq(
        server.services("/v1/service/storage").await,
        by_pool.clone(),
        "/v1/service/storage",
    );
    server.check_eq(server.services("/v1/service").await, by_pool, "/v1/service");
}

// Case 4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_type_or_pool_is_200_with_no_services() {
    let server = Server::start(discoveryd!());
    server
        .announce(
            "n1",
            &announcement("alpha", "/a/b/c", vec![storage(&new_id())]),
        )
        .await;
    for path in [
        "/v1/service/unknown",
        "/v1/service/storage/unknown",
        "/v1/service/unknown/alpha",
    ] {
        let body = server.lookup(path).await;
        server.check_eq(body, json!({"environment": ENV, "services": []}), path);
    }
}

// Case 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_announces_several_services_at_once() {
    let server = Server::start(discoveryd!());
    let (u1, u2, u3) = (new_id(), new_id(), new_id());
    let services = vec![
        service(&u1, "storage", json!({})),
        service(&u2, "web", json!({})),
        service(&u3, "monitoring", json!({})),
    ];
    server
        .announce("n1", &announcement("poolA", "/dc/n1", services))
        .await;
    let listed = server.services("/v1/service").await;
    let mut ids: Vec<&str> = listed.iter().filter_map(|s| s["id"].as_str()).collect();
    ids.sort_unstable();
    let mut expected = vec![u1.as_str(), u2.as_str(), u3.as_str()];
    expected.sort_unstable();
    server.check_eq(ids, expected, "ids in /v1/service");
    for s in &listed {
        server.check(
            s["nodeId"] == "n1" && s["pool"] == "poolA" && s["location"] == "/dc/n1",
            format!("every service carries the node's id, pool and location: {s}"),
        );
    }
}

// Case 6.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_nodes_are_listed_and_filtered_by_type() {
    let server = Server::start(discoveryd!());
    let (u1, u2, u3) = (new_id(), new_id(), new_id());
    server
        .announce(
            "n1",
            &announcement("poolA", "/n1", vec![service(&u1, "storage", json!({}))]),
        )
        .await;
    server
        .announce(
            "n2",
            &announcement("poolA", "/n2", vec![service(&u2, "web", json!({}))]),
        )
        .await;
    server
        .announce(
            "n3",
            &announcement("poolA", "/n3", vec![service(&u3, "monitoring", json!({}))]),
        )
        .await;
    let mut all = server.service_ids("/v1/service").await;
    all.sort();
    let mut expected = vec![u1.clone(), u2, u3];
    expected.sort();
    server.check_eq(all, expected, "/v1/service");
    let storage = server.services("/v1/service/storage").await;
    server.check_eq(storage.len(), 1, "one storage service");
    server.check_eq(&storage[0]["id"], &json!(u1), "the storage service is n1's");
    server.check_eq(
        &storage[0]["nodeId"],
        &json!("n1"),
        "nodeId of the storage service",
    );
}

// Case 7 (TestServiceResource).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_filter_by_exact_type_and_pool() {
    let server = Server::start(discoveryd!());
    let (red_storage, red_web, green_storage, blue_storage) =
        (new_id(), new_id(), new_id(), new_id());
    server
        .announce(
            "red",
            &announcement(
                "alpha",
                "/red",
                vec![
                    service(&red_storage, "storage", json!({})),
                    service(&red_web, "web", json!({})),
                ],
            ),
        )
        .await;
    server
        .announce(
            "green",
            &announcement(
                "alpha",
                "/green",
                vec![service(&green_storage, "storage", json!({}))],
            ),
        )
        .await;
    server
        .announce(
            "blue",
            &announcement(
                "beta",
                "/blue",
                vec![service(&blue_storage, "storage", json!({}))],
            ),
        )
        .await;

    let sorted = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };
    server.check_eq(
        sorted(server.service_ids("/v1/service/storage/alpha").await),
        sorted(vec![red_storage.clone(), green_storage.clone()]),
        "/storage/alpha",
    );
    server.check_eq(
        server.service_ids("/v1/service/storage/beta").await,
        vec![blue_storage.clone()],
        "/storage/beta",
    );
    server.check_eq(
        server.service_ids("/v1/service/web").await,
        vec![red_web.clone()],
        "/web",
    );
    server.check_eq(
        sorted(server.service_ids("/v1/service/storage").await),
        sorted(vec![
            red_storage.clone(),
            green_storage.clone(),
            blue_storage.clone(),
        ]),
        "/storage",
    );
    server.check_eq(
        sorted(server.service_ids("/v1/service").await),
        sorted(vec![red_storage, red_web, green_storage, blue_storage]),
        "/v1/service",
    );
    // Matching is exact and case-sensitive.
    server.check_eq(
        server.services("/v1/service/Storage").await,
        vec![],
        "/Storage",
    );
    server.check_eq(
        server.services("/v1/service/storage/Alpha").await,
        vec![],
        "/storage/Alpha",
    );
    server.check_eq(server.services("/v1/service/stor").await, vec![], "/stor");
}

// Case 8. No pause between the two PUTs: per-key versions strictly increase.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_announcement_replaces_the_previous_services() {
    let server = Server::start(discoveryd!());
    let (u1, u2) = (new_id(), new_id());
    server
        .announce(
            "n1",
            &announcement(
                "alpha",
                "/n1",
                vec![service(&u1, "storage", json!({"key": "existing"}))],
            ),
        )
        .await;
    server
        .announce(
            "n1",
            &announcement(
                "alpha",
                "/n1",
                vec![service(&u2, "storage", json!({"key": "new"}))],
            ),
        )
        .await;
    let listed = server.services("/v1/service").await;
    server.check_eq(listed.len(), 1, "only the second announcement's service");
    server.check_eq(&listed[0]["id"], &json!(u2), "id");
    server.check_eq(
        &listed[0]["properties"],
        &json!({"key": "new"}),
        "properties",
    );
}

// Case 9.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacing_announcement_can_move_the_location() {
    let server = Server::start(discoveryd!());
    let u1 = new_id();
    server
        .announce(
            "n1",
            &announcement("alpha", "/old/place", vec![storage(&u1)]),
        )
        .await;
    server
        .announce(
            "n1",
            &announcement("alpha", "/new/place", vec![storage(&u1)]),
        )
        .await;
    let listed = server.services("/v1/service/storage/alpha").await;
    server.check_eq(listed.len(), 1, "one service");
    server.check_eq(&listed[0]["location"], &json!("/new/place"), "location");
}

// Case 10.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_location_defaults_to_somewhere_slash_node_id() {
    let server = Server::start(discoveryd!());
    let body = json!({"environment": ENV, "pool": "alpha", "services": [storage(&new_id())]});
    server.announce("test123", &body).await;
    let listed = server.services("/v1/service/storage/alpha").await;
    server.check_eq(
        &listed[0]["location"],
        &json!("/somewhere/test123"),
        "default location",
    );
}

// Case 11, plus: an empty location is kept as is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_null_location_defaults_like_a_missing_one_and_an_empty_one_is_kept() {
    let server = Server::start(discoveryd!());
    let body = json!({"environment": ENV, "pool": "alpha", "location": null, "services": [storage(&new_id())]});
    server.announce("test123", &body).await;
    let listed = server.services("/v1/service/storage/alpha").await;
    server.check_eq(
        &listed[0]["location"],
        &json!("/somewhere/test123"),
        "location for null",
    );

    server
        .announce("n2", &announcement("beta", "", vec![storage(&new_id())]))
        .await;
    let listed = server.services("/v1/service/storage/beta").await;
    server.check_eq(
        &listed[0]["location"],
        &json!(""),
        "an empty location is kept",
    );
}

// Case 12.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_mismatch_is_400_with_the_java_message_and_stores_nothing() {
    let server = Server::start(discoveryd!());
    let mut body = announcement("alpha", "/a", vec![storage(&new_id())]);
    body["environment"] = json!("production");
    let reply = server.put_announcement("n1", &body).await;
    expect_bad_request(
        &server,
        &reply,
        "Environment mismatch. Expected: testing, Provided: production",
    );
    server.check_eq(
        server.services("/v1/service").await,
        vec![],
        "nothing listed",
    );
    server.check_eq(
        server.dump("dynamic").await,
        vec![],
        "nothing in the dynamic store",
    );
}

// Case 13.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_mismatch_is_400_and_keeps_the_previous_announcement() {
    let server = Server::start(discoveryd!());
    let u1 = new_id();
    server
        .announce("n1", &announcement("alpha", "/a", vec![storage(&u1)]))
        .await;
    let before = server.services("/v1/service").await;
    let mut body = announcement("alpha", "/b", vec![storage(&new_id())]);
    body["environment"] = json!("Testing");
    let reply = server.put_announcement("n1", &body).await;
    expect_bad_request(&server, &reply, "Environment mismatch");
    server.check_eq(
        server.services("/v1/service").await,
        before,
        "n1 keeps its services",
    );
}

// Case 14.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_environment_is_400_provided_null() {
    let server = Server::start(discoveryd!());
    let without = json!({"pool": "alpha", "services": [storage(&new_id())]});
    let null = json!({"environment": null, "pool": "alpha", "services": [storage(&new_id())]});
    for body in [json!({}), without, null] {
        let reply = server.put_announcement("n1", &body).await;
        expect_bad_request(
            &server,
            &reply,
            "Environment mismatch. Expected: testing, Provided: null",
        );
    }
    server.check_eq(server.dump("dynamic").await, vec![], "nothing stored");
}

// Case 15.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_400_and_stores_nothing() {
    let server = Server::start(discoveryd!());
    for body in [
        &b"{\"environment\":"[..],
        b"",
        b"{\"environment\":\"testing\",}",
        b"not json",
    ] {
        let reply = server
            .send(
                Method::PUT,
                "/v1/announcement/n1",
                &[],
                Some("application/json"),
                Some(body.to_vec()),
            )
            .await;
        expect_bad_request(&server, &reply, "JSON");
    }
    server.check_eq(server.dump("dynamic").await, vec![], "nothing stored");
}

/// PUTs `body` for n1 (which holds a valid announcement), expects a 400 naming `field`,
/// and checks n1's services are untouched.
async fn refused_and_previous_kept(server: &Server, body: Value, field: &str) {
    let before = server.services_of_node("n1").await;
    let reply = server.put_announcement("n1", &body).await;
    expect_bad_request(server, &reply, field);
    server.check_eq(
        server.services_of_node("n1").await,
        before,
        format!("n1 unchanged after the refused body {body}"),
    );
}

// Case 16: wrong JSON shapes; ours also refuses non-UUID service ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_json_shapes_are_400_naming_the_field_and_keep_the_previous_announcement() {
    let server = Server::start(discoveryd!());
    server
        .announce("n1", &announcement("alpha", "/a", vec![storage(&new_id())]))
        .await;
    let id = new_id();
    let cases = [
        (
            json!({"environment": ENV, "pool": "alpha", "services": {"id": id}}),
            "services",
        ),
        (
            json!({"environment": ENV, "pool": "alpha", "services": [{"id": 42, "type": "t", "properties": {}}]}),
            "services[0].id",
        ),
        (
            json!({"environment": ENV, "pool": "alpha",
                   "services": [{"id": id, "type": "t", "properties": {"nested": {"a": "b"}}}]}),
            "services[0].properties.nested",
        ),
        (
            json!({"environment": ENV, "pool": "alpha",
                   "services": [{"id": id, "type": "t", "properties": {"list": ["a"]}}]}),
            "services[0].properties.list",
        ),
        (
            json!({"environment": ENV, "pool": "alpha", "services": [{"id": "", "type": "t", "properties": {}}]}),
            "services[0].id",
        ),
        (
            json!({"environment": ENV, "pool": "alpha",
                   "services": [{"id": id, "type": "t", "properties": {"k": null}}]}),
            "services[0].properties.k",
        ),
        (
            json!({"environment": ENV, "pool": "alpha", "services": [storage(&new_id()),
                   {"id": "s1", "type": "t", "properties": {}}]}),
            "services[1].id",
        ),
        (
            json!({"environment": ENV, "pool": "alpha",
                   "services": [{"id": "0b6c6a2e3f5e4a439d2e6f3a3f0f6a01", "type": "t", "properties": {}}]}),
            "services[0].id",
        ),
        (
            json!({"environment": ENV, "pool": 7, "services": []}),
            "pool",
        ),
        (
            json!({"environment": ENV, "pool": "alpha", "location": 5, "services": []}),
            "location",
        ),
        (
            json!({"environment": ENV, "pool": "alpha", "services": [7]}),
            "services[0]",
        ),
        (
            json!({"environment": ENV, "pool": "alpha", "services": [{"id": id, "type": 1, "properties": {}}]}),
            "services[0].type",
        ),
        (
            json!({"environment": ENV, "pool": "alpha", "services": [{"id": id, "type": "t", "properties": []}]}),
            "services[0].properties",
        ),
        (
            json!({"environment": 5, "pool": "alpha", "services": []}),
            "environment",
        ),
    ];
    for (body, field) in cases {
        refused_and_previous_kept(&server, body, field).await;
    }
}

// Case 17 (Java: 500).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_pool_is_400_and_keeps_the_previous_announcement() {
    let server = Server::start(discoveryd!());
    server
        .announce("n1", &announcement("alpha", "/a", vec![storage(&new_id())]))
        .await;
    for body in [
        json!({"environment": ENV, "services": [storage(&new_id())]}),
        json!({"environment": ENV, "pool": null, "services": [storage(&new_id())]}),
        json!({"environment": ENV, "pool": "", "services": [storage(&new_id())]}),
    ] {
        refused_and_previous_kept(&server, body, "pool").await;
    }
    // Nothing stored for a node that had nothing.
    let reply = server
        .put_announcement(
            "n2",
            &json!({"environment": ENV, "services": [storage(&new_id())]}),
        )
        .await;
    expect_bad_request(&server, &reply, "pool");
    server.check_eq(
        server.raw_entry("dynamic", "n2").await,
        None,
        "no entry for n2",
    );
}

// Case 18 (Java: 500).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_null_services_is_400_and_keeps_the_previous_announcement() {
    let server = Server::start(discoveryd!());
    server
        .announce("n1", &announcement("alpha", "/a", vec![storage(&new_id())]))
        .await;
    for body in [
        json!({"environment": ENV, "pool": "alpha"}),
        json!({"environment": ENV, "pool": "alpha", "services": null}),
    ] {
        refused_and_previous_kept(&server, body, "services").await;
    }
}

// Case 19 (Java: 500).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_missing_id_type_or_properties_is_400_and_stores_nothing() {
    let server = Server::start(discoveryd!());
    server
        .announce("n1", &announcement("alpha", "/a", vec![storage(&new_id())]))
        .await;
    for missing in ["id", "type", "properties"] {
        let mut broken = service(&new_id(), "web", json!({"a": "b"}));
        broken
            .as_object_mut()
            .expect("a service is an object")
            .remove(missing);
        let body = announcement("alpha", "/a", vec![broken.clone()]);
        refused_and_previous_kept(&server, body, &format!("services[0].{missing}")).await;

        broken[missing] = Value::Null;
        let body = announcement("alpha", "/a", vec![broken]);
        refused_and_previous_kept(&server, body, &format!("services[0].{missing}")).await;
    }
    server.check_eq(
        server.services("/v1/service/web").await,
        vec![],
        "no web service stored",
    );
}

// Case 20.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_are_ignored_and_the_node_id_comes_from_the_path() {
    let server = Server::start(discoveryd!());
    let u1 = new_id();
    let body = json!({"environment": ENV, "nodeId": "other", "foo": 1, "pool": "alpha", "location": "/x",
        "services": [{"id": u1, "type": "storage", "bar": true, "properties": {"http": "h"}}]});
    server.announce("n1", &body).await;
    let listed = server.services("/v1/service/storage/alpha").await;
    server.check_eq(
        listed,
        vec![
            json!({"id": u1, "nodeId": "n1", "type": "storage", "pool": "alpha", "location": "/x",
            "properties": {"http": "h"}}),
        ],
        "the path's node id, no unknown fields echoed",
    );
    server.check_eq(
        server.services_of_node("other").await,
        vec![],
        "nothing under the body's nodeId",
    );
}

// Case 21.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_and_booleans_in_properties_become_strings() {
    let server = Server::start(discoveryd!());
    let body = announcement(
        "alpha",
        "/a",
        vec![service(
            &new_id(),
            "storage",
            json!({"port": 8080, "tls": true, "coordinator": false, "ratio": 0.5}),
        )],
    );
    server.announce("n1", &body).await;
    let listed = server.services("/v1/service/storage/alpha").await;
    server.check_eq(
        &listed[0]["properties"],
        &json!({"port": "8080", "tls": "true", "coordinator": "false", "ratio": "0.5"}),
        "coerced properties",
    );
}

// Case 22, plus the content types we accept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_json_content_type_is_415_and_stores_nothing() {
    let server = Server::start(discoveryd!());
    let body = serde_json::to_vec(&announcement("alpha", "/a", vec![storage(&new_id())]))
        .expect("serialises");
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/x-jackson-smile",
        "application/xml",
        "multipart/form-data; boundary=x",
    ] {
        let reply = server
            .send(
                Method::PUT,
                "/v1/announcement/n1",
                &[],
                Some(content_type),
                Some(body.clone()),
            )
            .await;
        server.expect_status(&reply, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    server.check_eq(server.dump("dynamic").await, vec![], "nothing stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_with_a_charset_or_no_content_type_at_all_is_accepted() {
    let server = Server::start(discoveryd!());
    let (u1, u2, u3) = (new_id(), new_id(), new_id());
    let body = |id: &str| {
        serde_json::to_vec(&announcement("alpha", "/a", vec![storage(id)])).expect("serialises")
    };
    let reply = server
        .send(
            Method::PUT,
            "/v1/announcement/n1",
            &[],
            Some("application/json; charset=utf-8"),
            Some(body(&u1)),
        )
        .await;
    server.expect_status(&reply, StatusCode::ACCEPTED);
    let reply = server
        .send(
            Method::PUT,
            "/v1/announcement/n2",
            &[],
            Some("Application/JSON"),
            Some(body(&u2)),
        )
        .await;
    server.expect_status(&reply, StatusCode::ACCEPTED);
    let reply = server
        .send(
            Method::PUT,
            "/v1/announcement/n3",
            &[],
            None,
            Some(body(&u3)),
        )
        .await;
    server.expect_status(&reply, StatusCode::ACCEPTED);
    let mut ids = server.service_ids("/v1/service/storage/alpha").await;
    ids.sort();
    let mut expected = vec![u1, u2, u3];
    expected.sort();
    server.check_eq(ids, expected, "all three stored");
}

// Case 23.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_services_is_202_and_clears_the_node() {
    let server = Server::start(discoveryd!());
    server
        .announce("n1", &announcement("alpha", "/a", vec![storage(&new_id())]))
        .await;
    server
        .announce("n2", &announcement("alpha", "/b", vec![storage(&new_id())]))
        .await;
    server
        .announce("n1", &announcement("alpha", "/a", vec![]))
        .await;
    server.check_eq(
        server.services_of_node("n1").await,
        vec![],
        "n1 offers nothing",
    );
    server.check_eq(server.services_of_node("n2").await.len(), 1, "n2 untouched");
    let entry = server.raw_entry("dynamic", "n1").await;
    server.check(
        entry
            .as_ref()
            .is_some_and(|e| crate::support::unb64(&e["value"]) == b"[]"),
        format!("n1's entry holds an empty list: {entry:?}"),
    );
}

// Case 24, where we differ from Java on purpose (docs/COMPATIBILITY.md): Java lists the
// id once, so one node could hide the other's service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_service_id_from_two_nodes_is_listed_for_each_node() {
    let server = Server::start(discoveryd!());
    let u1 = new_id();
    server
        .announce("n2", &announcement("alpha", "/n2", vec![storage(&u1)]))
        .await;
    server
        .announce("n1", &announcement("alpha", "/n1", vec![storage(&u1)]))
        .await;
    for path in [
        "/v1/service",
        "/v1/service/storage",
        "/v1/service/storage/alpha",
    ] {
        let listed = server.services(path).await;
        let offers: Vec<(&Value, &Value)> =
            listed.iter().map(|s| (&s["id"], &s["nodeId"])).collect();
        server.check_eq(
            offers,
            vec![(&json!(u1), &json!("n1")), (&json!(u1), &json!("n2"))],
            format!("{path}: u1 once per node, by node id"),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_duplicate_services_in_one_announcement_collapse() {
    let server = Server::start(discoveryd!());
    let u1 = new_id();
    server
        .announce(
            "n1",
            &announcement("alpha", "/a", vec![storage(&u1), storage(&u1)]),
        )
        .await;
    server.check_eq(
        server.service_ids("/v1/service").await,
        vec![u1],
        "one service",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_different_services_with_one_id_in_one_announcement_are_400() {
    let server = Server::start(discoveryd!());
    server
        .announce("n1", &announcement("alpha", "/a", vec![storage(&new_id())]))
        .await;
    let u1 = new_id();
    let body = announcement(
        "alpha",
        "/a",
        vec![storage(&u1), service(&u1, "web", json!({}))],
    );
    refused_and_previous_kept(&server, body, "services[1].id").await;
}

// Case 26, plus: an unknown path is 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_method_is_405_and_an_unknown_path_404() {
    let server = Server::start(discoveryd!());
    let reply = server.get("/v1/announcement/n1").await;
    server.expect_status(&reply, StatusCode::METHOD_NOT_ALLOWED);
    let reply = server
        .send(
            Method::POST,
            "/v1/service",
            &[],
            Some("application/json"),
            Some(b"{}".to_vec()),
        )
        .await;
    server.expect_status(&reply, StatusCode::METHOD_NOT_ALLOWED);
    let reply = server
        .send(
            Method::POST,
            "/v1/announcement/n1",
            &[],
            Some("application/json"),
            Some(b"{}".to_vec()),
        )
        .await;
    server.expect_status(&reply, StatusCode::METHOD_NOT_ALLOWED);
    let reply = server.delete("/v1/service/storage").await;
    server.expect_status(&reply, StatusCode::METHOD_NOT_ALLOWED);
    for path in ["/v2/service", "/v1/nothing", "/", "/v1/service/a/b/c"] {
        let reply = server.get(path).await;
        server.expect_status(&reply, StatusCode::NOT_FOUND);
    }
}

// Case 27: Java answers 405; ours lets the node called `static` announce and unannounce,
// while POST/GET on the path stay the static-announcement endpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_named_static_can_announce_and_unannounce() {
    let server = Server::start(discoveryd!());
    let u1 = new_id();
    server
        .announce("static", &announcement("alpha", "/s", vec![storage(&u1)]))
        .await;
    let listed = server.services("/v1/service/storage/alpha").await;
    server.check_eq(listed.len(), 1, "one service");
    server.check_eq(&listed[0]["nodeId"], &json!("static"), "nodeId");
    server.check_eq(&listed[0]["id"], &json!(u1), "id");

    // The static endpoints still answer on the same path and do not see the node.
    server.check_eq(
        server.services("/v1/announcement/static").await,
        vec![],
        "static listing",
    );
    let created = server
        .create_static(&crate::support::static_announcement(
            "apple",
            "red",
            "/a",
            json!({}),
        ))
        .await;
    server.check(
        created["id"].is_string(),
        "POST still creates a static service",
    );

    server.unannounce("static").await;
    server.check_eq(
        server.services("/v1/service/storage/alpha").await,
        vec![],
        "node `static` gone",
    );
    server.check_eq(
        server.services("/v1/announcement/static").await.len(),
        1,
        "the static service is untouched by the node's DELETE",
    );
}

// Case 28 (TestTestingDiscoveryServer): what an airlift client sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn airlift_client_round_trip() {
    let server = Server::start(discoveryd!());
    let node = "8c1f0d1e-0000-4000-8000-000000000001";
    server.check_eq(
        server.services("/v1/service/taco").await,
        vec![],
        "no taco yet",
    );
    let body = json!({"environment": ENV, "nodeId": node, "location": format!("/{node}"), "pool": "general",
        "services": [{"id": new_id(), "type": "taco", "properties": {"http": "http://127.0.0.1:4444"}}]});
    let reply = server
        .send(
            Method::PUT,
            &format!("/v1/announcement/{node}"),
            &[("user-agent", node)],
            Some("application/json"),
            Some(serde_json::to_vec(&body).expect("serialises")),
        )
        .await;
    server.expect_status(&reply, StatusCode::ACCEPTED);
    let tacos = server.services("/v1/service/taco").await;
    server.check_eq(tacos.len(), 1, "one taco");
    let id = tacos[0]["id"].as_str().unwrap_or_default();
    server.check(
        uuid::Uuid::parse_str(id).is_ok(),
        format!("id {id} parses as a UUID"),
    );
    server.check_eq(
        server.services("/v1/service/taco/general").await,
        tacos,
        "/taco/general",
    );
    server.unannounce(node).await;
    server.check_eq(
        server.services("/v1/service/taco").await,
        vec![],
        "no taco after DELETE",
    );
}
