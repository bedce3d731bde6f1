//! Bodies of the replication protocol between discoveryd servers. Requests a peer sends
//! (push, summaries, entries) go to the responder of a registry that already holds a few
//! services; answers a peer returns (digest, push answer, fetched entries) are decoded as
//! the replicator decodes them.
#![no_main]

use discovery_fuzz::{read_back, registry, STORES};
use discovery_replicator::convert::{digest_from_wire, summary_from_wire};
use discovery_server::registry::Registry;
use discovery_types::replication::{
    DigestResponse, FetchRequest, PushRequest, PushResponse, SummariesRequest, SummariesResponse,
};
use discovery_types::{DynamicAnnouncement, WireEntry};
use libfuzzer_sys::fuzz_target;

const NODES: [(&str, &str); 2] = [
    (
        "n1",
        r#"{"environment":"test","pool":"general","location":"/n1","services":[{"id":"0b6c6a2e-3f5e-4a43-9d2e-6f3a3f0f6a01","type":"trino","properties":{"http":"http://10.0.0.5:8080","node_version":"476","coordinator":"false"}}]}"#,
    ),
    (
        "n2",
        r#"{"environment":"test","pool":"general","services":[{"id":"0b6c6a2e-3f5e-4a43-9d2e-6f3a3f0f6a02","type":"trino","properties":{"http":"http://10.0.0.6:8080","coordinator":"true"}}]}"#,
    ),
];

/// A registry holding two announced nodes, so renewals, fetches and summaries find keys.
fn populated() -> Registry {
    let registry = registry();
    for (node, body) in NODES {
        let announcement =
            DynamicAnnouncement::from_json(body.as_bytes(), "test").expect("a valid seed body");
        registry
            .announce(node, announcement)
            .expect("a seed announcement is stored");
    }
    registry
}

fuzz_target!(|data: &[u8]| {
    let registry = populated();
    let responder = registry.responder();
    if let Ok(push) = serde_json::from_slice::<PushRequest>(data) {
        for store in STORES {
            if let Ok((_, answer)) = responder.push(store, push.clone()) {
                let _ = serde_json::to_vec(&answer);
            }
        }
    }
    if let Ok(fetched) = serde_json::from_slice::<Vec<WireEntry>>(data) {
        for store in STORES {
            let _ = responder.accept_fetched(store, "peer", fetched.clone());
        }
    }
    if let Ok(request) = serde_json::from_slice::<SummariesRequest>(data) {
        for store in STORES {
            let _ = responder.summaries(store, &request);
        }
    }
    if let Ok(request) = serde_json::from_slice::<FetchRequest>(data) {
        for store in STORES {
            if let Ok(entries) = responder.entries(store, &request) {
                let _ = serde_json::to_vec(&entries);
            }
        }
    }
    if let Ok(digest) = serde_json::from_slice::<DigestResponse>(data) {
        let _ = digest_from_wire(&digest);
    }
    if let Ok(answer) = serde_json::from_slice::<SummariesResponse>(data) {
        for summary in answer.entries {
            let _ = summary_from_wire(summary);
        }
    }
    if let Ok(answer) = serde_json::from_slice::<PushResponse>(data) {
        let _ = serde_json::to_vec(&answer);
    }
    for store in STORES {
        let _ = responder.digest(store);
    }
    read_back(&registry);
});
