//! The replication endpoints `/v1/store/{store}`: conformance cases 49–58.

use discovery_types::{WireEntry, WireVersion};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{b64, discoveryd, dynamic_entry, new_id, now_ms, stored_service, Server};

const SMILE: &str = "application/x-jackson-smile";

/// Java's Smile push of two entries (`docs/PROTOCOL.md`, "Java peers and Smile"): `node-1`
/// with value `[{"id":"s1"}]` and a tombstone for `node-2`.
const JAVA_FIXTURE_HEX: &str = concat!(
    "3a 29 0a 01 f8 fa 82 6b 65 79 e8 86 37 1b 6c 46 ",
    "29 34 31 84 76 61 6c 75 65 e8 8d 2d 5e 64 26 4b ",
    "10 44 3a 11 1c 66 12 13 75 1d 86 76 65 72 73 69 ",
    "6f 6e fa 87 73 65 71 75 65 6e 63 65 25 01 45 73 ",
    "7c 56 40 80 fb 88 74 69 6d 65 73 74 61 6d 70 25 ",
    "01 45 73 7c 56 40 80 89 6d 61 78 41 67 65 49 6e ",
    "4d 73 24 07 29 a0 fb fa 40 e8 86 37 1b 6c 46 29 ",
    "34 32 41 21 42 fa 43 25 01 45 73 7c 56 40 82 fb ",
    "44 25 01 45 73 7c 56 40 82 45 21 fb f9",
);

fn hex(text: &str) -> Vec<u8> {
    let clean: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    clean
        .chunks(2)
        .map(|pair| {
            let digits = std::str::from_utf8(pair).expect("ASCII");
            u8::from_str_radix(digits, 16).expect("hex digits")
        })
        .collect()
}

async fn post_smile(server: &Server, store: &str, body: Vec<u8>) -> crate::support::Reply {
    server
        .send(
            Method::POST,
            &format!("/v1/store/{store}"),
            &[],
            Some(SMILE),
            Some(body),
        )
        .await
}

// Case 49.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_store_is_404_for_get_and_post() {
    let server = Server::start(discoveryd!());
    let reply = server.get("/v1/store/nosuch").await;
    server.expect_status(&reply, StatusCode::NOT_FOUND);
    let reply = server.post_entries("nosuch", &json!([])).await;
    server.expect_status(&reply, StatusCode::NOT_FOUND);
    let reply = post_smile(&server, "nosuch", hex("3a290a01f8f9")).await;
    server.expect_status(&reply, StatusCode::NOT_FOUND);
}

/// Case 50's entry: `node-x` offering `u9` of type t / pool p.
fn node_x(u9: &str, version: i64, location: &str) -> Value {
    node_entry("node-x", u9, version, location)
}

/// `node` offering `u9` of type t / pool p: a raw entry that obeys the one rule (its
/// services name the entry's key as their node).
fn node_entry(node: &str, u9: &str, version: i64, location: &str) -> Value {
    let services = json!([stored_service(u9, node, "t", "p", location)]);
    dynamic_entry(node, Some(&services), version, version, Some(30000))
}

/// Posts case 50's entry and checks u9 is listed; returns its version.
async fn store_node_x(server: &Server, u9: &str) -> i64 {
    let version = now_ms();
    let reply = server
        .post_entries("dynamic", &json!([node_x(u9, version, "/l")]))
        .await;
    server.expect_status(&reply, StatusCode::NO_CONTENT);
    server.check_eq(
        server.services("/v1/service/t/p").await,
        vec![stored_service(u9, "node-x", "t", "p", "/l")],
        "node-x's service from the posted entry",
    );
    version
}

// Case 50.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posted_entry_is_applied_and_listed() {
    let server = Server::start(discoveryd!());
    let u9 = new_id();
    let version = store_node_x(&server, &u9).await;
    let entry = server.raw_entry("dynamic", "node-x").await;
    server.check_eq(
        entry,
        Some(node_x(&u9, version, "/l")),
        "the raw entry is stored as sent",
    );
}

// Case 51.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_version_is_ignored() {
    let server = Server::start(discoveryd!());
    let u9 = new_id();
    let version = store_node_x(&server, &u9).await;
    let reply = server
        .post_entries("dynamic", &json!([node_x(&u9, version - 10_000, "/older")]))
        .await;
    server.expect_status(&reply, StatusCode::NO_CONTENT);
    server.check_eq(
        server.services("/v1/service/t/p").await,
        vec![stored_service(&u9, "node-x", "t", "p", "/l")],
        "the original is kept",
    );
}

// Case 52. Java keeps the entry seen first on equal versions, so replicas can diverge;
// ours orders equal versions by content (a tombstone beats a value, then the larger value
// bytes), so the outcome does not depend on arrival order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_versions_are_decided_by_content_not_arrival_order() {
    let server = Server::start(discoveryd!());
    let u9 = new_id();
    let version = now_ms();
    let larger = |a: &Value, b: &Value| {
        let value = |e: &Value| crate::support::unb64(&e["value"]);
        if value(a) >= value(b) {
            a.clone()
        } else {
            b.clone()
        }
    };
    for n in 0..2 {
        let key = format!("node-{n}");
        let first = node_entry(&key, &u9, version, "/l");
        let second = node_entry(&key, &u9, version, "/same-version");
        let winner = larger(&first, &second);
        let order = if n == 0 {
            [&first, &second]
        } else {
            [&second, &first]
        };
        for entry in order {
            let reply = server.post_entries("dynamic", &json!([entry])).await;
            server.expect_status(&reply, StatusCode::NO_CONTENT);
        }
        let stored = server.raw_entry("dynamic", &key).await;
        server.check_eq(
            stored.map(|e| e["value"].clone()),
            Some(winner["value"].clone()),
            format!("{key}: the larger value wins a tie whatever the order"),
        );
    }
    // A tombstone beats a value of the same version, in either order.
    let tombstone = dynamic_entry("node-0", None, version, version, None);
    let reply = server.post_entries("dynamic", &json!([tombstone])).await;
    server.expect_status(&reply, StatusCode::NO_CONTENT);
    server.check_eq(
        server.raw_entry("dynamic", "node-0").await,
        Some(tombstone),
        "node-0 deleted",
    );
    let tombstone = dynamic_entry("node-2", None, version, version, None);
    let value = node_entry("node-2", &u9, version, "/l");
    for entry in [&tombstone, &value] {
        let reply = server.post_entries("dynamic", &json!([entry])).await;
        server.expect_status(&reply, StatusCode::NO_CONTENT);
    }
    server.check_eq(
        server.raw_entry("dynamic", "node-2").await,
        Some(tombstone),
        "node-2 stays deleted",
    );
    // Re-applying the stored entry changes nothing.
    let before = server.dump("dynamic").await;
    let reply = server
        .post_entries("dynamic", &Value::Array(before.clone()))
        .await;
    server.expect_status(&reply, StatusCode::NO_CONTENT);
    server.check_eq(server.dump("dynamic").await, before, "idempotent");
}

// Case 53.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_tombstone_wins() {
    let server = Server::start(discoveryd!());
    let u9 = new_id();
    let version = store_node_x(&server, &u9).await;
    let tombstone = dynamic_entry("node-x", None, version + 1, version + 1, None);
    let reply = server.post_entries("dynamic", &json!([tombstone])).await;
    server.expect_status(&reply, StatusCode::NO_CONTENT);
    server.check_eq(server.services("/v1/service/t/p").await, vec![], "u9 gone");
    server.check_eq(
        server.raw_entry("dynamic", "node-x").await,
        Some(tombstone),
        "the tombstone is stored",
    );
}

// Case 54.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_expired_on_arrival_is_dropped() {
    let server = Server::start(discoveryd!());
    let old = now_ms() - 60_000;
    let services = json!([stored_service(&new_id(), "node-old", "t", "p", "/l")]);
    let entry = dynamic_entry("node-old", Some(&services), old, old, Some(30000));
    let reply = server.post_entries("dynamic", &json!([entry])).await;
    server.expect_status(&reply, StatusCode::NO_CONTENT);
    server.check_eq(
        server.services("/v1/service/t/p").await,
        vec![],
        "nothing visible",
    );
    server.check_eq(
        server.raw_entry("dynamic", "node-old").await,
        None,
        "not in the raw store",
    );
}

// Case 55 (tombstone-max-age is 1 day by default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_tombstone_is_dropped() {
    let server = Server::start(discoveryd!());
    let two_days_ago = now_ms() - 2 * 86_400_000;
    let tombstone = dynamic_entry("node-gone", None, two_days_ago, two_days_ago, None);
    let reply = server.post_entries("dynamic", &json!([tombstone])).await;
    server.expect_status(&reply, StatusCode::NO_CONTENT);
    server.check_eq(
        server.raw_entry("dynamic", "node-gone").await,
        None,
        "not stored",
    );
    let static_tombstone = json!({"key": b64(new_id()), "version": {"sequence": two_days_ago},
                                  "timestamp": two_days_ago});
    let reply = server
        .post_entries("static", &json!([static_tombstone]))
        .await;
    server.expect_status(&reply, StatusCode::NO_CONTENT);
    server.check_eq(
        server.dump("static").await,
        vec![],
        "static tombstone not stored",
    );
}

// Case 56: any invalid entry refuses the whole batch; a valid entry before it is not
// applied either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_any_invalid_entry_is_400_and_applies_nothing() {
    let server = Server::start(discoveryd!());
    let now = now_ms();
    let dynamic_value = |services: Value| b64(serde_json::to_vec(&services).expect("serialises"));
    let good_services = json!([stored_service(&new_id(), "x", "t", "p", "/l")]);
    let static_service =
        json!({"id": new_id(), "type": "t", "pool": "p", "location": "/l", "properties": {}});
    let bad_dynamic = [
        (
            "maxAgeInMs 0",
            json!({"key": b64("bad"), "value": dynamic_value(good_services.clone()),
            "version": {"sequence": now}, "timestamp": now, "maxAgeInMs": 0}),
        ),
        (
            "maxAgeInMs negative",
            json!({"key": b64("bad"), "value": dynamic_value(good_services.clone()),
            "version": {"sequence": now}, "timestamp": now, "maxAgeInMs": -5}),
        ),
        (
            "missing key",
            json!({"value": dynamic_value(good_services.clone()),
            "version": {"sequence": now}, "timestamp": now, "maxAgeInMs": 30000}),
        ),
        (
            "null key",
            json!({"key": null, "version": {"sequence": now}, "timestamp": now}),
        ),
        (
            "missing version",
            json!({"key": b64("bad"), "value": dynamic_value(good_services.clone()),
            "timestamp": now, "maxAgeInMs": 30000}),
        ),
        (
            "null version",
            json!({"key": b64("bad"), "version": null, "timestamp": now}),
        ),
        (
            "version without sequence",
            json!({"key": b64("bad"), "version": {}, "timestamp": now}),
        ),
        (
            "value not JSON",
            json!({"key": b64("bad"), "value": b64("not json"),
            "version": {"sequence": now}, "timestamp": now, "maxAgeInMs": 30000}),
        ),
        (
            "value an object, not a list",
            json!({"key": b64("bad"), "value": dynamic_value(static_service.clone()),
            "version": {"sequence": now}, "timestamp": now, "maxAgeInMs": 30000}),
        ),
        (
            "non-UUID service id",
            json!({"key": b64("bad"),
            "value": dynamic_value(json!([stored_service("s1", "bad", "t", "p", "/l")])),
            "version": {"sequence": now}, "timestamp": now, "maxAgeInMs": 30000}),
        ),
        (
            "service without type",
            json!({"key": b64("bad"),
            "value": dynamic_value(json!([{"id": new_id(), "pool": "p", "properties": {}}])),
            "version": {"sequence": now}, "timestamp": now, "maxAgeInMs": 30000}),
        ),
        (
            "empty key",
            json!({"key": "", "value": dynamic_value(good_services.clone()),
            "version": {"sequence": now}, "timestamp": now, "maxAgeInMs": 30000}),
        ),
        (
            "key not base64",
            json!({"key": "!!!", "version": {"sequence": now}, "timestamp": now}),
        ),
        (
            "value not base64",
            json!({"key": b64("bad"), "value": "%%%", "version": {"sequence": now}, "timestamp": now}),
        ),
        (
            "sequence a string",
            json!({"key": b64("bad"), "version": {"sequence": "1"}, "timestamp": now}),
        ),
        (
            "key with a space",
            json!({"key": b64("a b"), "version": {"sequence": now}, "timestamp": now}),
        ),
        (
            "key of 257 bytes",
            json!({"key": b64("k".repeat(257)), "version": {"sequence": now}, "timestamp": now}),
        ),
        (
            "key not UTF-8",
            json!({"key": b64([0xffu8, 0xfe]), "version": {"sequence": now}, "timestamp": now}),
        ),
    ];
    let bad_static = [
        (
            "key not a UUID",
            json!({"key": b64("not-a-uuid"), "value": dynamic_value(static_service.clone()),
            "version": {"sequence": now}, "timestamp": now}),
        ),
        (
            "value a list",
            json!({"key": b64(new_id()), "value": dynamic_value(json!([static_service.clone()])),
            "version": {"sequence": now}, "timestamp": now}),
        ),
        (
            "non-UUID service id",
            json!({"key": b64(new_id()),
            "value": dynamic_value(json!({"id": "s1", "type": "t", "pool": "p", "properties": {}})),
            "version": {"sequence": now}, "timestamp": now}),
        ),
        (
            "maxAgeInMs 0",
            json!({"key": b64(new_id()), "value": dynamic_value(static_service.clone()),
            "version": {"sequence": now}, "timestamp": now, "maxAgeInMs": 0}),
        ),
    ];

    let cases = bad_dynamic
        .into_iter()
        .map(|(what, bad)| ("dynamic", what, bad))
        .chain(
            bad_static
                .into_iter()
                .map(|(what, bad)| ("static", what, bad)),
        );
    for (n, (store, what, bad)) in cases.enumerate() {
        let (good_key, good) = if store == "dynamic" {
            let node = format!("good-{n}");
            let services = json!([stored_service(&new_id(), &node, "good", "p", "/l")]);
            (
                node.clone(),
                dynamic_entry(&node, Some(&services), now, now, Some(30000)),
            )
        } else {
            let id = new_id();
            let service =
                json!({"id": id, "type": "good", "pool": "p", "location": "/l", "properties": {}});
            let entry = json!({"key": b64(&id), "value": dynamic_value(service), "version": {"sequence": now},
                               "timestamp": now});
            (id, entry)
        };
        let reply = server.post_entries(store, &json!([good, bad])).await;
        if reply.status != StatusCode::BAD_REQUEST {
            server.fail(format!(
                "{store} batch with an entry with {what}: {reply}\nexpected 400"
            ));
        }
        server.check_eq(
            server.raw_entry(store, &good_key).await,
            None,
            format!("the valid entry of the refused batch ({what}) is not stored"),
        );
    }
    server.check_eq(
        server.services("/v1/service").await,
        vec![],
        "nothing listed",
    );
    server.check_eq(server.dump("dynamic").await, vec![], "dynamic store empty");
    server.check_eq(server.dump("static").await, vec![], "static store empty");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_posts_accept_json_and_smile_only() {
    let server = Server::start(discoveryd!());
    for content_type in ["text/plain", "application/octet-stream", "application/xml"] {
        let reply = server
            .send(
                Method::POST,
                "/v1/store/dynamic",
                &[],
                Some(content_type),
                Some(b"[]".to_vec()),
            )
            .await;
        server.expect_status(&reply, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    let reply = server
        .send(
            Method::POST,
            "/v1/store/dynamic",
            &[],
            Some("application/json; charset=utf-8"),
            Some(b"[]".to_vec()),
        )
        .await;
    server.expect_status(&reply, StatusCode::NO_CONTENT);
    let reply = post_smile(&server, "static", hex("3a290a01f8f9")).await;
    server.expect_status(&reply, StatusCode::NO_CONTENT);
    // JSON sent as Smile and Smile sent as JSON are refused, not a 500.
    let reply = post_smile(&server, "dynamic", b"[]".to_vec()).await;
    server.expect_status(&reply, StatusCode::BAD_REQUEST);
    let reply = server
        .send(
            Method::POST,
            "/v1/store/dynamic",
            &[],
            Some("application/json"),
            Some(hex("3a290a01f8f9")),
        )
        .await;
    server.expect_status(&reply, StatusCode::BAD_REQUEST);
}

// Case 57. Java's fixture value `[{"id":"s1"}]` is not a valid service list for us (the
// id is not a UUID), so the applied batch carries valid values with current timestamps;
// Java's exact bytes must be refused with a 400, not a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smile_batch_is_applied_and_java_fixture_bytes_are_400() {
    let server = Server::start(discoveryd!());
    // The fixture is well-formed Smile: it is refused for its content, not its encoding.
    let fixture: Vec<WireEntry> =
        serde_smile::from_slice(&hex(JAVA_FIXTURE_HEX)).expect("the fixture decodes");
    server.check_eq(fixture.len(), 2, "entries in Java's fixture");
    let reply = post_smile(&server, "dynamic", hex(JAVA_FIXTURE_HEX)).await;
    server.expect_status(&reply, StatusCode::BAD_REQUEST);
    server.check_eq(
        server.dump("dynamic").await,
        vec![],
        "nothing of Java's fixture stored",
    );

    let now = now_ms();
    let id = new_id();
    let value = json!([stored_service(&id, "node-1", "smile", "p", "/node-1")]);
    let batch = vec![
        WireEntry {
            key: b"node-1".to_vec(),
            value: Some(serde_json::to_vec(&value).expect("serialises")),
            version: WireVersion { sequence: now },
            timestamp: now,
            max_age_in_ms: Some(30000),
        },
        WireEntry {
            key: b"node-2".to_vec(),
            value: None,
            version: WireVersion { sequence: now + 1 },
            timestamp: now + 1,
            max_age_in_ms: None,
        },
    ];
    let body = serde_smile::to_vec(&batch).expect("Smile encoding");
    server.check(body.starts_with(&[0x3a, 0x29, 0x0a]), "the body is Smile");
    let reply = post_smile(&server, "dynamic", body).await;
    server.expect_status(&reply, StatusCode::NO_CONTENT);
    server.check_eq(
        server.service_ids("/v1/service/smile/p").await,
        vec![id],
        "node-1's service listed",
    );
    let tombstone = server.raw_entry("dynamic", "node-2").await;
    server.check_eq(
        tombstone,
        Some(json!({"key": b64("node-2"), "version": {"sequence": now + 1}, "timestamp": now + 1})),
        "node-2's tombstone in the raw dump",
    );
}

// Case 58, plus: without an Accept header the dump is JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smile_dump_has_the_smile_header_and_the_same_entries_as_json() {
    let server = Server::start(discoveryd!());
    server
        .announce(
            "n1",
            &crate::support::announcement(
                "alpha",
                "/a",
                vec![crate::support::service(&new_id(), "t", json!({}))],
            ),
        )
        .await;
    server.unannounce("n2").await;
    server
        .create_static(&crate::support::static_announcement(
            "apple",
            "red",
            "/a",
            json!({"k": "v"}),
        ))
        .await;

    for store in ["dynamic", "static"] {
        let path = format!("/v1/store/{store}");
        let smile = server.get_with(&path, &[("accept", SMILE)]).await;
        server.expect_status(&smile, StatusCode::OK);
        server.check_eq(
            smile.header("content-type"),
            Some(SMILE),
            format!("{smile}\ncontent type"),
        );
        server.check(
            smile.body.starts_with(&[0x3a, 0x29, 0x0a]),
            format!("{smile}\nSmile header 3A 29 0A"),
        );
        let mut from_smile: Vec<WireEntry> = match serde_smile::from_slice(&smile.body) {
            Ok(entries) => entries,
            Err(e) => server.fail(format!("{smile}\nnot decodable Smile: {e}")),
        };

        let plain = server.get(&path).await;
        server.expect_status(&plain, StatusCode::OK);
        server.check_eq(
            plain.header("content-type"),
            Some("application/json"),
            format!("{plain}\ndefault is JSON"),
        );
        let mut from_json: Vec<WireEntry> = match serde_json::from_slice(&plain.body) {
            Ok(entries) => entries,
            Err(e) => server.fail(format!("{plain}\nnot the JSON entry list: {e}")),
        };
        let keys: Vec<&Vec<u8>> = from_json.iter().map(|e| &e.key).collect();
        server.check(
            keys.windows(2).all(|w| w[0] < w[1]),
            format!("{store} dump sorted by key"),
        );
        from_smile.sort_by(|a, b| a.key.cmp(&b.key));
        from_json.sort_by(|a, b| a.key.cmp(&b.key));
        server.check_eq(
            from_smile.len(),
            if store == "dynamic" { 2 } else { 1 },
            format!("{store} entries"),
        );
        server.check_eq(
            from_smile,
            from_json,
            format!("{store}: Smile and JSON dumps agree"),
        );
    }
}

// Ours (docs/COMPATIBILITY.md): entries stamped more than store.max-clock-skew (1 min) in
// the future are refused, so a fast clock or a forged push cannot pin a key; entries
// within the skew are applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_from_too_far_in_the_future_are_not_stored() {
    let server = Server::start(discoveryd!());
    let soon = now_ms() + 20_000;
    let far = now_ms() + 10 * 60_000;
    let services = |node: &str| json!([stored_service(&new_id(), node, "t", "p", "/l")]);
    let batch = json!([
        dynamic_entry("soon", Some(&services("soon")), soon, soon, Some(30000)),
        dynamic_entry("far", Some(&services("far")), far, far, Some(30000)),
        dynamic_entry(
            "far-version",
            Some(&services("far-version")),
            far,
            now_ms(),
            Some(30000)
        ),
    ]);
    let reply = server.post_entries("dynamic", &batch).await;
    server.check(
        !reply.status.is_server_error(),
        format!("{reply}\nno 5xx for future entries"),
    );
    if reply.status.is_success() {
        server.check(
            server.raw_entry("dynamic", "soon").await.is_some(),
            "an entry within the skew is stored",
        );
    }
    server.check_eq(
        server.raw_entry("dynamic", "far").await,
        None,
        "10 minutes ahead: not stored",
    );
    server.check_eq(
        server.raw_entry("dynamic", "far-version").await,
        None,
        "a version 10 minutes ahead: not stored",
    );
    let listed: Vec<Value> = server.services("/v1/service/t/p").await;
    server.check(
        listed.iter().all(|s| s["nodeId"] == "soon"),
        format!("only the entry within the skew may be listed: {listed:?}"),
    );
}
