//! Static announcements: conformance cases 38–47 (48, persistence, is in `restart`).

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::time::MissedTickBehavior;

use crate::support::{
    announcement, discoveryd, new_id, service, static_announcement, unb64, Server, ENV,
};

fn apple() -> Value {
    static_announcement("apple", "red", "/a/b/c", json!({"http": "http://host"}))
}

fn id_of(server: &Server, created: &Value) -> String {
    match created["id"].as_str() {
        Some(id) => id.to_owned(),
        None => server.fail(format!("created service has no id: {created}")),
    }
}

// Case 38.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_post_is_201_with_location_and_the_service_without_node_id() {
    let server = Server::start(discoveryd!());
    let reply = server.post_static(&apple()).await;
    server.expect_status(&reply, StatusCode::CREATED);
    server.check_eq(
        reply.header("content-type"),
        Some("application/json"),
        "content type",
    );
    let created = server.json(&reply);
    let id = id_of(&server, &created);
    server.check(
        uuid::Uuid::parse_str(&id).is_ok(),
        format!("id {id} is a UUID"),
    );
    server.check_eq(
        &created,
        &json!({"id": id, "type": "apple", "pool": "red", "location": "/a/b/c",
                "properties": {"http": "http://host"}}),
        "created service: as given, plus the id, no nodeId",
    );
    // The raw static entry: key = the id, value = the service JSON, no time-to-live.
    let entry = server.raw_entry("static", &id).await;
    let Some(entry) = entry else {
        server.fail(format!("no static entry for {id}"))
    };
    server.check(
        entry.get("maxAgeInMs").is_none(),
        format!("no maxAgeInMs: {entry}"),
    );
    let value: Value = serde_json::from_slice(&unb64(&entry["value"])).unwrap_or_default();
    server.check_eq(&value, &created, "the stored value is the created service");
    server.check_eq(
        entry["version"]["sequence"].as_i64(),
        entry["timestamp"].as_i64(),
        "version == timestamp",
    );

    // Relative: Java builds an absolute URI from the Host header, which is whatever the
    // client says (docs/COMPATIBILITY.md).
    let expected_location = format!("/v1/announcement/static/{id}");
    server.check_eq(
        reply.header("location"),
        Some(expected_location.as_str()),
        "Location",
    );

    // A Host header chosen by the client does not make its way into the answer.
    let reply = server
        .send(
            Method::POST,
            "/v1/announcement/static",
            &[("host", "attacker.example:8411")],
            Some("application/json"),
            Some(serde_json::to_vec(&apple()).expect("serialises")),
        )
        .await;
    server.expect_status(&reply, StatusCode::CREATED);
    let id = id_of(&server, &server.json(&reply));
    let expected = format!("/v1/announcement/static/{id}");
    server.check_eq(
        reply.header("location"),
        Some(expected.as_str()),
        "Location ignores Host",
    );
}

// Case 39.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_service_is_listed_by_type_and_pool_without_node_id() {
    let server = Server::start(discoveryd!());
    let created = server.create_static(&apple()).await;
    for path in ["/v1/service/apple/red", "/v1/service/apple", "/v1/service"] {
        server.check_eq(server.services(path).await, vec![created.clone()], path);
    }
    server.check_eq(
        server.services("/v1/service/apple/green").await,
        vec![],
        "other pool",
    );
}

// Case 40.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_static_listing_holds_only_static_services() {
    let server = Server::start(discoveryd!());
    server
        .announce(
            "n1",
            &announcement("red", "/n1", vec![service(&new_id(), "apple", json!({}))]),
        )
        .await;
    let created = server.create_static(&apple()).await;
    let body = server.lookup("/v1/announcement/static").await;
    server.check_eq(
        body,
        json!({"environment": ENV, "services": [created]}),
        "GET /v1/announcement/static",
    );
}

// Case 41.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_location_defaults_to_somewhere_slash_id() {
    let server = Server::start(discoveryd!());
    for body in [
        json!({"environment": ENV, "type": "apple", "pool": "red", "properties": {}}),
        json!({"environment": ENV, "type": "apple", "pool": "red", "location": null, "properties": {}}),
    ] {
        let created = server.create_static(&body).await;
        let id = id_of(&server, &created);
        server.check_eq(
            &created["location"],
            &json!(format!("/somewhere/{id}")),
            "default location",
        );
        let listed = server.services("/v1/service/apple/red").await;
        let stored = listed.iter().find(|s| s["id"] == id.as_str());
        server.check_eq(stored, Some(&created), "the stored service");
    }
}

/// Posts `body`, expects a 400 naming `needle`, and checks nothing new is stored.
async fn static_refused(server: &Server, body: &Value, needle: &str) {
    let before = server.dump("static").await;
    let reply = server.post_static(body).await;
    server.expect_status(&reply, StatusCode::BAD_REQUEST);
    server.check(
        reply.text().contains(needle),
        format!("{reply}\nthe message names {needle:?}"),
    );
    server.check(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        format!("{reply}\ntext/plain"),
    );
    server.check_eq(
        server.dump("static").await,
        before,
        format!("static store unchanged by {body}"),
    );
}

// Case 42.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_environment_mismatch_is_400_and_stores_nothing() {
    let server = Server::start(discoveryd!());
    let mut body = apple();
    body["environment"] = json!("production");
    static_refused(
        &server,
        &body,
        "Environment mismatch. Expected: testing, Provided: production",
    )
    .await;
    body.as_object_mut()
        .expect("an object")
        .remove("environment");
    static_refused(&server, &body, "Provided: null").await;
    server.check_eq(
        server.services("/v1/announcement/static").await,
        vec![],
        "nothing listed",
    );
}

// Case 43 (Java: 500).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_with_a_missing_or_wrong_field_is_400_naming_it() {
    let server = Server::start(discoveryd!());
    for field in ["type", "pool", "properties"] {
        let mut body = apple();
        body.as_object_mut().expect("an object").remove(field);
        static_refused(&server, &body, field).await;
        body[field] = Value::Null;
        static_refused(&server, &body, field).await;
        body[field] = json!(["x"]);
        static_refused(&server, &body, field).await;
    }
    let mut body = apple();
    body["properties"] = json!({"k": null});
    static_refused(&server, &body, "properties.k").await;
    body["properties"] = json!({"k": {"nested": 1}});
    static_refused(&server, &body, "properties.k").await;
    body = apple();
    body["location"] = json!(17);
    static_refused(&server, &body, "location").await;

    let reply = server
        .send(
            Method::POST,
            "/v1/announcement/static",
            &[],
            Some("text/plain"),
            Some(serde_json::to_vec(&apple()).expect("serialises")),
        )
        .await;
    server.expect_status(&reply, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    server.check_eq(server.dump("static").await, vec![], "nothing stored");
}

// Case 44 (testDelete: of red and blue, deleting blue leaves exactly red).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_static_service_removes_it_from_every_listing() {
    let server = Server::start(discoveryd!());
    let red = server
        .create_static(&static_announcement("apple", "red", "/r", json!({})))
        .await;
    let blue = server
        .create_static(&static_announcement("apple", "blue", "/b", json!({})))
        .await;
    let blue_id = id_of(&server, &blue);
    let reply = server
        .delete(&format!("/v1/announcement/static/{blue_id}"))
        .await;
    server.expect_status(&reply, StatusCode::NO_CONTENT);
    server.check_eq(
        server.services("/v1/announcement/static").await,
        vec![red.clone()],
        "static listing",
    );
    server.check_eq(
        server.services("/v1/service").await,
        vec![red],
        "/v1/service",
    );
    server.check_eq(
        server.services("/v1/service/apple/blue").await,
        vec![],
        "/apple/blue",
    );
    let tombstone = server.raw_entry("static", &blue_id).await;
    server.check(
        tombstone.as_ref().is_some_and(|t| t.get("value").is_none()),
        format!("a tombstone for blue in the static store: {tombstone:?}"),
    );
}

// Case 45, plus: ids that cannot be service ids are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_unknown_static_id_is_204_and_a_non_uuid_id_400() {
    let server = Server::start(discoveryd!());
    let created = server.create_static(&apple()).await;
    let reply = server
        .delete(&format!("/v1/announcement/static/{}", new_id()))
        .await;
    server.expect_status(&reply, StatusCode::NO_CONTENT);
    let before = server.dump("static").await;
    for bad in [
        "abc",
        "s1",
        "0b6c6a2e3f5e4a439d2e6f3a3f0f6a01",
        "%00",
        "%ff%fe",
    ] {
        let reply = server
            .delete(&format!("/v1/announcement/static/{bad}"))
            .await;
        server.expect_status(&reply, StatusCode::BAD_REQUEST);
    }
    server.check_eq(
        server.dump("static").await,
        before,
        "no tombstone for garbage ids",
    );
    server.check_eq(
        server.services("/v1/announcement/static").await,
        vec![created],
        "the real one stays",
    );
}

// Case 46: with max-age 2 s, a static service is still listed after 5 s, while a dynamic
// announcement made at the same time expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_services_never_expire() {
    let server = Server::start_with(discoveryd!(), |o| o.set("discovery.max-age", "2s"));
    let created = server.create_static(&apple()).await;
    server
        .announce(
            "n1",
            &announcement("red", "/n1", vec![service(&new_id(), "apple", json!({}))]),
        )
        .await;
    let started = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_millis(250));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut dynamic_expired = false;
    while started.elapsed() < Duration::from_secs(5) || !dynamic_expired {
        ticks.tick().await;
        let listed = server.services("/v1/service/apple/red").await;
        server.check(
            listed.contains(&created),
            format!(
                "static service listed {:?} after creation",
                started.elapsed()
            ),
        );
        dynamic_expired = listed.iter().all(|s| s["nodeId"] != "n1");
        server.check(
            started.elapsed() < Duration::from_secs(15),
            "the dynamic announcement never expired",
        );
    }
}

// Case 47.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_and_static_services_of_one_type_and_pool_are_both_listed() {
    let server = Server::start(discoveryd!());
    let u1 = new_id();
    server
        .announce(
            "n1",
            &announcement("red", "/n1", vec![service(&u1, "apple", json!({}))]),
        )
        .await;
    let created = server.create_static(&apple()).await;
    let listed = server.services("/v1/service/apple/red").await;
    server.check_eq(listed.len(), 2, "both listed");
    server.check(listed.contains(&created), "the static one");
    server.check(
        listed
            .iter()
            .any(|s| s["id"] == u1.as_str() && s["nodeId"] == "n1"),
        "the dynamic one",
    );
}

// Unknown fields are ignored; an `id` or `nodeId` in the body does not choose the stored id
// and gives no nodeId (the server generates the id, as in Java).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_unknown_fields_are_ignored_and_the_id_is_generated() {
    let server = Server::start(discoveryd!());
    let given = new_id();
    let mut body = apple();
    body["id"] = json!(given);
    body["nodeId"] = json!("node-a");
    body["state"] = json!("RUNNING");
    body["extra"] = json!({"deep": [1, 2]});
    let created = server.create_static(&body).await;
    let id = id_of(&server, &created);
    server.check(id != given, "the server generates the id");
    server.check_eq(
        &created,
        &json!({"id": id, "type": "apple", "pool": "red", "location": "/a/b/c",
                "properties": {"http": "http://host"}}),
        "no nodeId, no state, no unknown fields",
    );
    server.check_eq(
        server.services("/v1/service/apple/red").await,
        vec![created],
        "listed as created",
    );
    let mut created_ids = std::collections::BTreeSet::new();
    for _ in 0..5 {
        created_ids.insert(id_of(&server, &server.create_static(&apple()).await));
    }
    server.check_eq(
        created_ids.len(),
        5,
        "every POST creates a new service with a fresh id",
    );
    server.check_eq(
        server.services("/v1/service/apple/red").await.len(),
        6,
        "six apples",
    );
}
