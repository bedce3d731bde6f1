//! A whole node in process: the production `Node` (HTTP server, registry, responder,
//! readiness) on memory storage and a bound port 0, driven over real HTTP. Faster than a
//! process and with the node's internals at hand (`NodeHandle::registry`), for the cases
//! that need no signal, restart or disk; the black-box suites under `tests/` cover those.

use std::sync::Arc;

use discovery_server::node::{Node, NodeHandle, Storage};
use discovery_server::registry::{Selector, StoreName};
use discovery_server::Settings;
use discovery_store::SystemClock;
use reqwest::StatusCode;
use serde_json::json;

const SERVICE_ID: &str = "0b6c6a2e-3f5e-4a43-9d2e-6f3a3f0f6a01";

async fn node() -> NodeHandle {
    let settings = Settings::for_test("unused: memory storage");
    Node::start_with(settings, Storage::Memory, Arc::new(SystemClock))
        .await
        .expect("a node on memory storage starts")
}

fn url(node: &NodeHandle, path: &str) -> String {
    format!("http://{}{path}", node.local_addr())
}

fn announcement() -> serde_json::Value {
    json!({"environment": "testing", "pool": "general", "location": "/w1",
           "services": [{"id": SERVICE_ID, "type": "trino", "properties": {"http": "http://10.0.0.1:8080"}}]})
}

#[tokio::test]
async fn an_announcement_is_stored_listed_and_tagged_in_one_node_in_process() {
    let node = node().await;
    let client = reqwest::Client::new();
    let put = client
        .put(url(&node, "/v1/announcement/w1"))
        .json(&announcement())
        .send()
        .await
        .expect("PUT");
    assert_eq!(put.status(), StatusCode::ACCEPTED);

    // The registry behind the HTTP server holds what the PUT wrote.
    let registry = node.registry();
    assert_eq!(registry.store(StoreName::Dynamic).len(), 1);
    let lookup = registry.lookup(Selector::TypeAndPool("trino", "general"));
    assert_eq!(lookup.services, 1);

    let get = client
        .get(url(&node, "/v1/service/trino/general"))
        .send()
        .await
        .expect("GET");
    assert_eq!(get.status(), StatusCode::OK);
    let etag = get
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("an ETag");
    assert_eq!(etag, lookup.etag, "the HTTP answer is the registry's");
    let again = client
        .get(url(&node, "/v1/service/trino/general"))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("GET");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    let dump: Vec<serde_json::Value> = client
        .get(url(&node, "/v1/store/dynamic"))
        .send()
        .await
        .expect("dump")
        .json()
        .await
        .expect("a JSON array");
    assert_eq!(dump.len(), 1);
    node.shutdown().await.expect("a clean shutdown");
}

#[tokio::test]
async fn a_forged_raw_entry_is_refused_by_the_same_rule_in_process() {
    let node = node().await;
    let services = json!([{"id": SERVICE_ID, "nodeId": "coordinator-1", "type": "trino-coordinator",
                           "pool": "general", "properties": {}}]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    use base64::Engine;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let forged = json!([{
        "key": b64(b"attacker"),
        "value": b64(&serde_json::to_vec(&services).expect("JSON")),
        "version": {"sequence": now},
        "timestamp": now,
        "maxAgeInMs": 30_000,
    }]);
    let reply = reqwest::Client::new()
        .post(url(&node, "/v1/store/dynamic"))
        .json(&forged)
        .send()
        .await
        .expect("POST");
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
    assert!(reply
        .text()
        .await
        .expect("text")
        .contains("is not the entry's key"));
    assert!(node.registry().store(StoreName::Dynamic).is_empty());
    node.shutdown().await.expect("a clean shutdown");
}
