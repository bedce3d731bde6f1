//! Hostile input: every write endpoint answers a 4xx (never a 5xx) and changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{
    announcement, b64, discoveryd, new_id, now_ms, service, static_announcement, Reply, Server, ENV,
};

const JSON: &str = "application/json";
const SMILE: &str = "application/x-jackson-smile";

/// Bodies that are not an acceptable announcement, static announcement or entry batch.
fn hostile_bodies() -> Vec<(&'static str, Vec<u8>)> {
    let deep_arrays = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_objects = format!("{}1{}", "{\"a\":".repeat(50_000), "}".repeat(50_000));
    let deep_services = format!(
        r#"{{"environment":"{ENV}","pool":"p","services":[{{"id":"{}","type":"t","properties":{{"k":{}1{}}}}}]}}"#,
        new_id(),
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let long_digits = format!(
        r#"{{"environment":"{ENV}","pool":{}}}"#,
        "9".repeat(100_000)
    );
    let mut invalid_utf8 = format!(r#"{{"environment":"{ENV}","pool":""#).into_bytes();
    invalid_utf8.extend_from_slice(b"\xff\xfe\xc3\x28");
    invalid_utf8.extend_from_slice(br#"","services":[]}"#);
    let huge_environment = format!(
        r#"{{"environment":"{}","pool":"p","services":[]}}"#,
        "e".repeat(500_000)
    );
    let valid_then_garbage = format!(
        r#"{{"environment":"{ENV}","pool":"p","location":"/x","type":"t","properties":{{}},"services":[]}} trailing"#
    );
    vec![
        ("truncated JSON", br#"{"environment":"#.to_vec()),
        ("empty body", Vec::new()),
        ("whitespace", b"  \n\t ".to_vec()),
        ("null", b"null".to_vec()),
        ("a number", b"0".to_vec()),
        ("a string", br#""testing""#.to_vec()),
        ("true", b"true".to_vec()),
        ("nested arrays", deep_arrays.into_bytes()),
        ("nested objects", deep_objects.into_bytes()),
        ("nested arrays in a property", deep_services.into_bytes()),
        ("a 100000-digit number", long_digits.into_bytes()),
        ("1e999", br#"{"environment":"testing","pool":1e999,"services":[]}"#.to_vec()),
        ("-1e999 as version", br#"[{"key":"bjE=","version":{"sequence":-1e999},"timestamp":1}]"#.to_vec()),
        ("sequence above i64", br#"[{"key":"bjE=","version":{"sequence":99999999999999999999},"timestamp":1}]"#.to_vec()),
        ("fractional maxAgeInMs", br#"[{"key":"bjE=","version":{"sequence":1},"timestamp":1,"maxAgeInMs":1.5}]"#.to_vec()),
        ("non-UTF-8 bytes", b"\xff\xfe\xfd\x00\x01".to_vec()),
        ("non-UTF-8 inside a string", invalid_utf8),
        ("raw control character in a string", b"{\"environment\":\"test\x01ing\"}".to_vec()),
        ("a 500 kB environment", huge_environment.into_bytes()),
        ("trailing garbage", valid_then_garbage.into_bytes()),
        ("wrong types everywhere", br#"{"environment":1,"pool":[],"location":{},"type":false,"services":"x","properties":7}"#.to_vec()),
        ("wrong types in a service", br#"{"environment":"testing","pool":"p","services":[{"id":[],"type":{},"properties":"x"}]}"#.to_vec()),
        ("environment as a list", br#"{"environment":["testing"],"pool":"p","services":[]}"#.to_vec()),
        ("services of nulls", br#"{"environment":"testing","pool":"p","services":[null,null]}"#.to_vec()),
        ("a list of nulls", b"[null]".to_vec()),
        ("a list of numbers", b"[1,2,3]".to_vec()),
        ("an entry as an object", br#"{"key":"bjE=","version":{"sequence":1},"timestamp":1}"#.to_vec()),
        ("entry with wrong types", br#"[{"key":7,"value":[],"version":"1","timestamp":"now"}]"#.to_vec()),
        ("entry key not base64", br#"[{"key":"***","version":{"sequence":1},"timestamp":1}]"#.to_vec()),
        ("Smile header only", b":)\n\x01".to_vec()),
        ("Smile nested arrays", [b":)\n\x01".to_vec(), vec![0xf8; 100_000]].concat()),
        ("Smile garbage", [b":)\n\x01".to_vec(), (0..=255u8).rev().collect()].concat()),
        ("Smile truncated", b":)\n\x01\xf8\xfa\x82key\xe8\x86".to_vec()),
    ]
}

#[track_caller]
fn expect_client_error(server: &Server, reply: &Reply, what: &str) {
    server.check(
        reply.status.is_client_error(),
        format!("{what}: {reply}\nexpected a 4xx"),
    );
}

async fn snapshot(server: &Server) -> (Vec<Value>, Vec<Value>) {
    (server.dump("dynamic").await, server.dump("static").await)
}

/// A server holding one dynamic and one static service, so "unchanged" means something.
async fn seeded() -> Server {
    let server = Server::start_with(discoveryd!(), |o| o.set("discovery.max-age", "10m"));
    server
        .announce(
            "n1",
            &announcement(
                "alpha",
                "/n1",
                vec![service(&new_id(), "storage", json!({}))],
            ),
        )
        .await;
    server
        .create_static(&static_announcement("apple", "red", "/a", json!({})))
        .await;
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_get_a_4xx_on_every_write_endpoint_and_change_nothing() {
    let server = seeded().await;
    let before = snapshot(&server).await;
    let endpoints: [(Method, &str, Option<&str>); 9] = [
        (Method::PUT, "/v1/announcement/n1", Some(JSON)),
        (Method::PUT, "/v1/announcement/n2", None),
        (Method::PUT, "/v1/announcement/static", Some(JSON)),
        (Method::POST, "/v1/announcement/static", Some(JSON)),
        (Method::POST, "/v1/announcement/static", None),
        (Method::POST, "/v1/store/dynamic", Some(JSON)),
        (Method::POST, "/v1/store/static", Some(JSON)),
        (Method::POST, "/v1/store/dynamic", Some(SMILE)),
        (Method::POST, "/v1/store/static", Some(SMILE)),
    ];
    for (method, path, content_type) in endpoints {
        for (name, body) in hostile_bodies() {
            let reply = server
                .send(method.clone(), path, &[], content_type, Some(body))
                .await;
            expect_client_error(&server, &reply, &format!("{name} ({content_type:?})"));
        }
    }
    server.check_eq(snapshot(&server).await, before, "both stores unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_paths_get_a_4xx_and_change_nothing() {
    let server = seeded().await;
    let before = snapshot(&server).await;
    let valid = serde_json::to_vec(&announcement(
        "alpha",
        "/x",
        vec![service(&new_id(), "t", json!({}))],
    ))
    .expect("serialises");
    let static_body = serde_json::to_vec(&static_announcement("apple", "red", "/a", json!({})))
        .expect("serialises");
    let long_id = "n".repeat(300);
    let long_utf8 = "é".repeat(150);
    let node_ids = [
        long_id.as_str(),
        long_utf8.as_str(),
        "%00",
        "a%00b",
        "a%20b",
        "%0a",
        "%09tab",
        "%ff%fe",
        "%c3%28",
        "%e2%80%a8",
    ];
    for node in node_ids {
        let path = format!("/v1/announcement/{node}");
        let reply = server
            .send(Method::PUT, &path, &[], Some(JSON), Some(valid.clone()))
            .await;
        expect_client_error(&server, &reply, "PUT with a hostile node id");
        let reply = server.delete(&path).await;
        expect_client_error(&server, &reply, "DELETE with a hostile node id");
    }
    let static_ids = [
        long_id.as_str(),
        "%ff",
        "%00",
        "..",
        "a%2fb",
        "not-a-uuid",
        "%20",
    ];
    for id in static_ids {
        let reply = server
            .delete(&format!("/v1/announcement/static/{id}"))
            .await;
        expect_client_error(&server, &reply, "DELETE of a hostile static id");
    }
    for path in [
        "/v1/store/%ff",
        "/v1/store/dynamic%00",
        "/v1/store/..%2fstatic",
        "/v1/announcement/static/%ff/x",
    ] {
        let reply = server
            .send(
                Method::POST,
                path,
                &[],
                Some(JSON),
                Some(static_body.clone()),
            )
            .await;
        expect_client_error(&server, &reply, "POST to a hostile path");
    }
    for path in [
        "/v1/service/%ff%fe",
        "/v1/service/a/%ff",
        "/v1/service/%00/%00",
        "/v1/store/%ff",
    ] {
        let reply = server.get(path).await;
        server.check(
            !reply.status.is_server_error(),
            format!("{reply}\nno 5xx for a hostile lookup path"),
        );
    }
    server.check_eq(snapshot(&server).await, before, "both stores unchanged");
}

/// Raw entries with extreme but well-formed numbers are stored or dropped, never a 5xx,
/// and the server keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_numbers_in_raw_entries_never_give_a_5xx() {
    let server = Server::start(discoveryd!());
    let services = |node: &str| {
        let value =
            json!([{"id": new_id(), "nodeId": node, "type": "t", "pool": "p", "properties": {}}]);
        b64(serde_json::to_vec(&value).expect("serialises"))
    };
    let cases = [
        json!({"key": b64("a"), "value": services("a"), "version": {"sequence": i64::MAX}, "timestamp": i64::MAX, "maxAgeInMs": i64::MAX}),
        json!({"key": b64("b"), "value": services("b"), "version": {"sequence": i64::MIN}, "timestamp": i64::MIN, "maxAgeInMs": i64::MAX}),
        json!({"key": b64("c"), "version": {"sequence": i64::MIN}, "timestamp": i64::MIN}),
        json!({"key": b64("d"), "version": {"sequence": i64::MAX}, "timestamp": i64::MAX}),
        json!({"key": b64("e"), "value": services("e"), "version": {"sequence": 0}}),
        json!({"key": b64("f"), "value": services("f"), "version": {"sequence": -1}, "timestamp": -1, "maxAgeInMs": 1}),
        json!({"key": b64("g"), "value": services("g"), "version": {"sequence": now_ms()}, "timestamp": now_ms(), "maxAgeInMs": i64::MAX}),
    ];
    for entry in cases {
        let reply = server.post_entries("dynamic", &json!([entry])).await;
        server.check(
            reply.status == StatusCode::NO_CONTENT || reply.status == StatusCode::BAD_REQUEST,
            format!("{reply}\nentry {entry}: expected 204 or 400"),
        );
    }
    // Local writes to keys holding extreme versions still get a sane answer.
    for node in ["a", "b", "c", "d", "g"] {
        let reply = server
            .put_announcement(
                node,
                &announcement("p", "/x", vec![service(&new_id(), "t", json!({}))]),
            )
            .await;
        server.check(!reply.status.is_server_error(), format!("{reply}\nno 5xx"));
        let reply = server.delete(&format!("/v1/announcement/{node}")).await;
        server.check(!reply.status.is_server_error(), format!("{reply}\nno 5xx"));
    }
    server.lookup("/v1/service").await;
    server.lookup("/v1/service/t/p").await;
    server.dump("dynamic").await;
    let smile = server
        .get_with(
            "/v1/store/dynamic",
            &[("accept", "application/x-jackson-smile")],
        )
        .await;
    server.expect_status(&smile, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_max_request_size_is_413_and_stores_nothing() {
    let server = Server::start_with(discoveryd!(), |o| {
        o.set("http-server.max-request-size", "2kB")
    });
    let padding = |n: usize| "x".repeat(n);
    let big = announcement(
        "alpha",
        "/a",
        vec![service(&new_id(), "storage", json!({"pad": padding(3000)}))],
    );
    let reply = server.put_announcement("n1", &big).await;
    server.expect_status(&reply, StatusCode::PAYLOAD_TOO_LARGE);
    let big_static = static_announcement("apple", "red", "/a", json!({"pad": padding(3000)}));
    let reply = server.post_static(&big_static).await;
    server.expect_status(&reply, StatusCode::PAYLOAD_TOO_LARGE);
    let now = now_ms();
    let big_batch = json!([{"key": b64("n2"), "value": b64(padding(3000)), "version": {"sequence": now}, "timestamp": now}]);
    let reply = server.post_entries("dynamic", &big_batch).await;
    server.expect_status(&reply, StatusCode::PAYLOAD_TOO_LARGE);
    server.check_eq(server.dump("dynamic").await, vec![], "no dynamic entry");
    server.check_eq(server.dump("static").await, vec![], "no static entry");

    // Just under the limit is fine.
    let fits = announcement(
        "alpha",
        "/a",
        vec![service(&new_id(), "storage", json!({"pad": padding(1500)}))],
    );
    server.announce("n3", &fits).await;
    server.check_eq(
        server.services_of_node("n3").await.len(),
        1,
        "the fitting body is stored",
    );
}

/// The documented bounds (docs/COMPATIBILITY.md): the bound itself is accepted, one more
/// is a 400 naming the field, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_limits_accept_the_bound_and_refuse_one_more() {
    let server = Server::start(discoveryd!());
    let one = |properties: Value| vec![service(&new_id(), "t", properties)];
    let many_properties =
        |n: usize| Value::Object((0..n).map(|i| (format!("p{i}"), json!("v"))).collect());
    let many_services = |n: usize| {
        (0..n)
            .map(|_| service(&new_id(), "t", json!({})))
            .collect::<Vec<_>>()
    };
    let name = |n: usize| "n".repeat(n);

    // (node id, body, field named in the 400)
    let cases: Vec<(String, Value, Value, &str)> = vec![
        (
            name(256),
            announcement("p", "/a", one(json!({}))),
            Value::Null,
            "node id",
        ),
        (
            "loc".into(),
            announcement("p", &"l".repeat(4096), one(json!({}))),
            announcement("p", &"l".repeat(4097), one(json!({}))),
            "location",
        ),
        (
            "svcs".into(),
            announcement("p", "/a", many_services(256)),
            announcement("p", "/a", many_services(257)),
            "services",
        ),
        (
            "props".into(),
            announcement("p", "/a", one(many_properties(256))),
            announcement("p", "/a", one(many_properties(257))),
            "properties",
        ),
        (
            "pool".into(),
            announcement(&name(256), "/a", one(json!({}))),
            announcement(&name(257), "/a", one(json!({}))),
            "pool",
        ),
        (
            "type".into(),
            announcement("p", "/a", vec![service(&new_id(), &name(256), json!({}))]),
            announcement("p", "/a", vec![service(&new_id(), &name(257), json!({}))]),
            "type",
        ),
        (
            "propname".into(),
            announcement("p", "/a", one(json!({ name(256): "v" }))),
            announcement("p", "/a", one(json!({ name(257): "v" }))),
            "properties",
        ),
    ];
    for (node, fits, too_big, field) in cases {
        server.announce(&node, &fits).await;
        if too_big.is_null() {
            continue;
        }
        let before = server.raw_entry("dynamic", &node).await;
        let reply = server.put_announcement(&node, &too_big).await;
        server.expect_status(&reply, StatusCode::BAD_REQUEST);
        server.check(
            reply.text().contains(field),
            format!("{reply}\nthe message names {field}"),
        );
        server.check_eq(
            server.raw_entry("dynamic", &node).await,
            before,
            format!("{node} unchanged"),
        );
    }
    let reply = server
        .put_announcement(&name(257), &announcement("p", "/a", one(json!({}))))
        .await;
    server.expect_status(&reply, StatusCode::BAD_REQUEST);
    server.check(
        reply.text().contains("node id"),
        format!("{reply}\nthe message names the node id"),
    );
    server.check_eq(
        server.raw_entry("dynamic", &name(257)).await,
        None,
        "no entry for a 257-byte id",
    );
}
