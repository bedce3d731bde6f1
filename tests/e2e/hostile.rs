//! Attacks an outsider on the same network could send (no credentials, not in the
//! inventory), each against a real `discoveryd`, and what must hold afterwards: a clear
//! 4xx (or a bounded answer), nothing forged stored, the node up and serving.
//! docs/SECURITY.md lists the limits these exercise.

use std::process::Command;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use crate::support::{
    b64, discoveryd, dynamic_entry, new_id, now_ms, run_to_exit, service, storage_node,
    stored_service, Reply, Server, ENV,
};

/// Limits the data segment (heap, including mmap'd allocations) of `server`'s process, so
/// a request that makes it allocate without bound fails the test instead of the machine.
fn limit_memory(server: &Server, bytes: u64) {
    let pid = server.process().pid().to_string();
    let status = Command::new("prlimit")
        .args(["--pid", &pid, &format!("--data={bytes}:{bytes}")])
        .status()
        .expect("prlimit (util-linux) runs");
    assert!(status.success(), "prlimit --pid {pid} failed: {status}");
}

async fn post(server: &Server, path: &str, body: &Value) -> Reply {
    let body = serde_json::to_vec(body).expect("serialises");
    server
        .send(
            Method::POST,
            path,
            &[],
            Some("application/json"),
            Some(body),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_naming_one_large_key_ten_thousand_times_costs_one_entry() {
    let server = Server::start(discoveryd!());
    // About 900 KB of announcement, within the 1 MiB body limit.
    let large = announcement_with_property("x".repeat(900_000));
    server.announce("big", &large).await;
    limit_memory(&server, 1 << 30);

    let keys: Vec<String> = (0..10_000).map(|_| b64("big")).collect();
    let reply = post(
        &server,
        "/v1/replication/dynamic/entries",
        &json!({ "keys": keys }),
    )
    .await;
    server.expect_status(&reply, StatusCode::OK);
    let entries = server.json(&reply);
    server.check_eq(
        entries.as_array().map(Vec::len),
        Some(1),
        "the key is answered once",
    );
    server.check(
        reply.body.len() < 2_000_000,
        format!("a bounded answer, not {} bytes", reply.body.len()),
    );
    let again = server.get("/v1/service/storage").await;
    server.expect_status(&again, StatusCode::OK);
}

fn announcement_with_property(value: String) -> Value {
    json!({
        "environment": ENV,
        "pool": "alpha",
        "location": "/big",
        "services": [service(&new_id(), "storage", json!({ "blob": value }))],
    })
}

/// The raw entries that must be refused, each with a word of the reason.
fn forged_dynamic_entries() -> Vec<(&'static str, Value, &'static str)> {
    let now = now_ms();
    let id = new_id();
    let of = |node: &str| {
        json!([stored_service(
            &id,
            node,
            "trino-coordinator",
            "general",
            "/c"
        )])
    };
    let too_many: Vec<Value> = (0..300)
        .map(|_| stored_service(&new_id(), "n6", "storage", "alpha", "/a"))
        .collect();
    let empty_type = stored_service(&new_id(), "n7", "", "alpha", "/a");
    vec![
        (
            "a key that is not the value's nodeId",
            dynamic_entry("aaa", Some(&of("coordinator-1")), now, now, Some(30_000)),
            "is not the entry's key",
        ),
        (
            "no maxAgeInMs (would never expire)",
            dynamic_entry("n2", Some(&of("n2")), now, now, None),
            "maxAgeInMs",
        ),
        (
            "a max age of i64::MAX",
            dynamic_entry("n3", Some(&of("n3")), now, now, Some(i64::MAX)),
            "longer than",
        ),
        (
            "timestamp 1 (expires never in practice)",
            dynamic_entry("n4", Some(&of("n4")), now, 1, Some(30_000)),
            "wall-clock",
        ),
        (
            "an hour in the future",
            dynamic_entry(
                "n5",
                Some(&of("n5")),
                now + 3_600_000,
                now + 3_600_000,
                Some(30_000),
            ),
            "max-clock-skew",
        ),
        (
            "300 services",
            dynamic_entry("n6", Some(&json!(too_many)), now, now, Some(30_000)),
            "at most 256",
        ),
        (
            "an empty type",
            dynamic_entry("n7", Some(&json!([empty_type])), now, now, Some(30_000)),
            "type",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_entries_obey_exactly_what_the_announcement_api_would_store() {
    let server = Server::start(discoveryd!());
    for (what, entry, reason) in forged_dynamic_entries() {
        let reply = server.post_entries("dynamic", &json!([entry])).await;
        server.expect_status(&reply, StatusCode::BAD_REQUEST);
        server.check(
            reply.text().contains(reason),
            format!("{what}: the answer says why ({reason:?}): {reply}"),
        );
    }
    server.check_eq(server.dump("dynamic").await, vec![], "nothing stored");

    // Static: the key is the service's id, no nodeId, no max age.
    let id = new_id();
    let now = now_ms();
    let service = json!({"id": id, "type": "apple", "pool": "red", "location": "/a",
                         "properties": {}});
    let entry = |key: &str, service: &Value, max_age: Option<i64>| {
        let mut entry = json!({
            "key": b64(key),
            "value": b64(serde_json::to_vec(service).expect("serialises")),
            "version": {"sequence": now},
            "timestamp": now,
        });
        if let Some(max_age) = max_age {
            entry["maxAgeInMs"] = json!(max_age);
        }
        entry
    };
    let mut owned = service.clone();
    owned["nodeId"] = json!("n1");
    for (what, forged) in [
        ("a key that is not the id", entry(&new_id(), &service, None)),
        ("a max age", entry(&id, &service, Some(30_000))),
        ("a nodeId", entry(&id, &owned, None)),
    ] {
        let reply = server.post_entries("static", &json!([forged])).await;
        server.expect_status(&reply, StatusCode::BAD_REQUEST);
        server.check(
            !reply.text().is_empty(),
            format!("{what}: says why: {reply}"),
        );
    }
    server.check_eq(server.dump("static").await, vec![], "nothing stored");
    let good = server
        .post_entries("static", &json!([entry(&id, &service, None)]))
        .await;
    server.expect_status(&good, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_takes_what_obeys_the_rule_and_names_what_it_refused() {
    let server = Server::start(discoveryd!());
    let now = now_ms();
    let good = dynamic_entry(
        "worker-1",
        Some(&json!([stored_service(
            &new_id(),
            "worker-1",
            "trino",
            "general",
            "/w"
        )])),
        now,
        now,
        Some(30_000),
    );
    let mut entries: Vec<Value> = forged_dynamic_entries().into_iter().map(|f| f.1).collect();
    let forged = entries.len();
    entries.push(good);
    let reply = post(
        &server,
        "/v1/replication/dynamic/push",
        &json!({"entries": entries, "renewals": []}),
    )
    .await;
    server.expect_status(&reply, StatusCode::OK);
    let answer = server.json(&reply);
    server.check_eq(
        answer["refused"].as_array().map(Vec::len),
        Some(forged),
        format!("every forged entry is named: {answer}"),
    );
    let keys: Vec<String> = server
        .dump("dynamic")
        .await
        .iter()
        .filter_map(|e| e["key"].as_str().map(str::to_owned))
        .collect();
    server.check_eq(keys, vec![b64("worker-1")], "only the good entry is stored");
    let status = server.lookup("/v1/replication/status").await;
    server.check_eq(
        status["stores"][0]["refusedInvalid"]
            .as_u64()
            .map(|n| n as usize),
        Some(forged - 1),
        format!("refusals counted (the future one apart): {status}"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_still_takes_the_renewals_of_the_workers_it_holds() {
    let server = Server::start_with(discoveryd!(), |o| o.set("dynamic.store.max-entries", "2"));
    for node in ["w1", "w2"] {
        server.announce(node, &storage_node()).await;
    }
    let held = server
        .raw_entry("dynamic", "w1")
        .await
        .expect("w1 is stored");
    let now = now_ms();
    let mut renewed = held.clone();
    renewed["version"]["sequence"] = json!(now + 1);
    renewed["timestamp"] = json!(now + 1);
    let newcomer = dynamic_entry(
        "w3",
        Some(&json!([stored_service(
            &new_id(),
            "w3",
            "storage",
            "alpha",
            "/a"
        )])),
        now,
        now,
        Some(30_000),
    );
    let reply = post(
        &server,
        "/v1/replication/dynamic/push",
        &json!({"entries": [newcomer, renewed], "renewals": []}),
    )
    .await;
    server.expect_status(&reply, StatusCode::OK);
    let answer = server.json(&reply);
    server.check_eq(
        answer["refused"][0]["key"].as_str(),
        Some(b64("w3").as_str()),
        format!("the new key is refused by name: {answer}"),
    );
    let w1 = server.raw_entry("dynamic", "w1").await.expect("w1");
    server.check_eq(
        w1["version"]["sequence"].as_i64(),
        Some(now + 1),
        "w1's renewal was applied behind the refused key",
    );
    let status = server.lookup("/v1/replication/status").await;
    server.check_eq(
        status["stores"][0]["refusedFull"].as_u64(),
        Some(1),
        format!("counted: {status}"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_of_unknown_ids_and_large_values_cannot_fill_the_store_for_announcements() {
    let server = Server::start_with(discoveryd!(), |o| {
        o.set("dynamic.store.max-entries", "3")
            .set("dynamic.store.max-bytes", "4kB")
    });
    // Deletes of ids the store never held have their own budget.
    for _ in 0..3 {
        server.unannounce(&new_id()).await;
    }
    let reply = server
        .delete(&format!("/v1/announcement/{}", new_id()))
        .await;
    server.expect_status(&reply, StatusCode::SERVICE_UNAVAILABLE);
    server.announce("w1", &storage_node()).await;

    // A large announcement takes the byte budget; renewals of what is held still pass.
    let large = announcement_with_property("y".repeat(3_900));
    let reply = server.put_announcement("w2", &large).await;
    server.expect_status(&reply, StatusCode::SERVICE_UNAVAILABLE);
    server.check(
        reply.text().contains("full"),
        format!("says the store is full: {reply}"),
    );
    server.announce("w1", &storage_node()).await;
    server.check_eq(server.services_of_node("w1").await.len(), 1, "w1 renewed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_ids_that_read_as_paths_or_reversed_text_are_refused() {
    let server = Server::start(discoveryd!());
    for id in ["a..b", "evil%E2%80%AEtxt.exe", "a%2Fb"] {
        let reply = server
            .send_json(
                Method::PUT,
                &format!("/v1/announcement/{id}"),
                &storage_node(),
            )
            .await;
        server.expect_status(&reply, StatusCode::BAD_REQUEST);
    }
    server.check_eq(server.dump("dynamic").await, vec![], "nothing stored");
}

#[tokio::test]
async fn a_service_id_announced_by_another_node_or_statically_cannot_hide_the_real_one() {
    let server = Server::start(discoveryd!());
    let id = new_id();
    let real = json!({"http": "http://10.0.0.1:8080", "coordinator": "true"});
    let forged = json!({"http": "http://10.6.6.6:8080", "coordinator": "true"});
    let coordinator = |properties: &Value| {
        json!({
            "environment": ENV,
            "pool": "general",
            "services": [service(&id, "trino-coordinator", properties.clone())],
        })
    };
    server.announce("zz-coordinator", &coordinator(&real)).await;
    // A smaller node id, and a static service: each used to win the id.
    server.announce("aa-intruder", &coordinator(&forged)).await;
    let reply = server
        .post_entries(
            "static",
            &json!([{
                "key": b64(&id),
                "value": b64(serde_json::to_vec(&json!({
                    "id": id, "type": "trino-coordinator", "pool": "general",
                    "location": "/forged", "properties": forged,
                })).expect("serialises")),
                "version": {"sequence": now_ms()},
                "timestamp": now_ms(),
            }]),
        )
        .await;
    server.expect_status(&reply, StatusCode::NO_CONTENT);

    let listed = server
        .services("/v1/service/trino-coordinator/general")
        .await;
    let uris: Vec<&Value> = listed.iter().map(|s| &s["properties"]["http"]).collect();
    server.check(
        uris.contains(&&real["http"]),
        format!("the real coordinator is listed: {listed:?}"),
    );
    server.check_eq(
        listed.len(),
        3,
        "each offer of the id is listed, none hidden",
    );
    server.check(
        listed
            .iter()
            .any(|s| s["nodeId"] == "zz-coordinator" && s["properties"] == real),
        format!("under its own node id: {listed:?}"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_address_cannot_take_every_connection() {
    let server = Server::start_with(discoveryd!(), |o| {
        o.set("http-server.max-connections-per-client", "4")
    });
    let port = server.addr().port();
    let connect_from = |source: &'static str| async move {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(format!("{source}:0").parse().expect("address"))
            .expect("bind the source address");
        socket
            .connect(format!("127.0.0.1:{port}").parse().expect("address"))
            .await
            .expect("connect")
    };
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(connect_from("127.0.0.5").await);
    }
    // The fifth connection of the same address is closed by the server at once.
    let mut fifth = connect_from("127.0.0.5").await;
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(10), fifth.read(&mut byte))
        .await
        .expect("the server closes the connection rather than holding it");
    server.check(
        matches!(read, Ok(0) | Err(_)),
        format!("closed, not served: {read:?}"),
    );
    // Anyone else (the test's client, from 127.0.0.1) is still served.
    let reply = server.get("/v1/announcement/static").await;
    server.expect_status(&reply, StatusCode::OK);
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_node_id_file_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    std::fs::write(data.join("node-id"), "a".repeat(10 << 20)).expect("write node-id");
    let (status, text) = run_to_exit(Some(&data), &[]).await;
    assert!(!status.success(), "started with a 10 MB node id: {text}");
    assert!(
        text.contains("node-id"),
        "the message names the file: {text}"
    );
}
