//! Every attack of the hardening work at once, from an outsider sending straight to the
//! discovery nodes (not through nginx), while 200 simulated workers and 2 coordinators
//! announce and look up through nginx. Afterwards no worker ever went missing from any
//! coordinator, no request of the fleet failed, nothing forged is listed anywhere and every
//! node is still ready.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use discovery_testkit::{new_id, now_ms};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::*;

const FLEET: usize = 200;

/// The URL an attacker would like coordinators to use.
const FORGED_URL: &str = "http://203.0.113.66:8080";

fn b64(bytes: impl AsRef<[u8]>) -> String {
    BASE64.encode(bytes)
}

fn entry(key: &str, services: &Value, version: i64, timestamp: i64, max_age: Option<i64>) -> Value {
    let mut entry = json!({
        "key": b64(key),
        "value": b64(serde_json::to_vec(services).expect("serialises")),
        "version": {"sequence": version},
        "timestamp": timestamp,
    });
    if let Some(max_age) = max_age {
        entry["maxAgeInMs"] = json!(max_age);
    }
    entry
}

/// Raw entries the one rule refuses: a coordinator's entry under another key, one that
/// never expires, one with an endless max age, one stamped at 1, one from the future.
fn forged_entries(coordinator: &str) -> Vec<Value> {
    let now = now_ms();
    let forged = |node: &str| {
        json!([{"id": new_id(), "nodeId": node, "type": "trino-coordinator", "pool": "general",
                "location": "/forged", "properties": {"http": FORGED_URL, "coordinator": "true"}}])
    };
    vec![
        entry("aaaa", &forged(coordinator), now, now, Some(3_000)),
        entry("f1", &forged("f1"), now, now, None),
        entry("f2", &forged("f2"), now, now, Some(i64::MAX)),
        entry("f3", &forged("f3"), now, 1, Some(3_000)),
        entry(
            "f4",
            &forged("f4"),
            now + 3_600_000,
            now + 3_600_000,
            Some(3_000),
        ),
    ]
}

async fn send(
    ha: &Ha,
    i: usize,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> StatusCode {
    let mut request = ha.cluster.client().request(method, ha.cluster.url(i, path));
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.expect("the node answers").status()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outsider_sending_every_attack_changes_nothing_for_the_fleet() {
    let ha = Ha::start_with_workers("attacks", FLEET).await;
    let coordinator = ha.fleet.coordinator_id(0);
    let worker = ha.fleet.worker_id(0);
    let started = ha.fleet.now();
    let post = reqwest::Method::POST;

    for i in 0..NODES {
        // Amplification: one key asked for 10,000 times.
        let keys: Vec<String> = (0..10_000).map(|_| b64(&worker)).collect();
        let response = ha
            .cluster
            .client()
            .post(ha.cluster.url(i, "/v1/replication/dynamic/entries"))
            .json(&json!({ "keys": keys }))
            .send()
            .await
            .expect("the node answers");
        assert_eq!(response.status(), StatusCode::OK);
        let answered: Vec<Value> = response.json().await.expect("entries");
        assert!(
            answered.len() <= 1,
            "node {i} answered {} entries",
            answered.len()
        );

        // Forged raw entries and pushes.
        let forged = forged_entries(&coordinator);
        let status = send(
            &ha,
            i,
            post.clone(),
            "/v1/store/dynamic",
            Some(&json!(forged)),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "node {i}: /v1/store");
        let status = send(
            &ha,
            i,
            post.clone(),
            "/v1/replication/dynamic/push",
            Some(&json!({"entries": forged, "renewals": []})),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "node {i}: push (refused entry by entry)"
        );

        // Deletes of ids nobody announced, and node ids that read as something else.
        for _ in 0..20 {
            let status = send(
                &ha,
                i,
                reqwest::Method::DELETE,
                &format!("/v1/announcement/{}", new_id()),
                None,
            )
            .await;
            assert_eq!(status, StatusCode::NO_CONTENT);
        }
        let status = send(
            &ha,
            i,
            reqwest::Method::PUT,
            "/v1/announcement/evil%E2%80%AEtxt",
            Some(&json!({"environment": discovery_testkit::ENVIRONMENT, "pool": "general", "services": []})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    // Two more max ages of the fleet renewing and looking up after the attacks.
    ha.wait_lookups_after(started + TTL * 2).await;
    ha.assert_no_flaps("attacks");
    for i in 0..NODES {
        let body = ha
            .cluster
            .get_json(i, "/v1/service")
            .await
            .expect("a lookup of everything");
        let text = body.to_string();
        assert!(
            !text.contains(FORGED_URL),
            "node {i} lists a forged service: {text}"
        );
        let ready = ha
            .cluster
            .client()
            .get(ha.cluster.url(i, "/v1/health/ready"))
            .send()
            .await
            .expect("ready check");
        assert_eq!(ready.status(), StatusCode::OK, "node {i} is ready");
    }
}
