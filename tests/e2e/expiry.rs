//! Expiry of dynamic announcements (conformance cases 33–36, max-age 2 s) and volume
//! (case 37).
//!
//! No upper bound on timing is asserted. The checks are of the form "not gone before
//! max-age has passed since the PUT was sent", which only a wrong server can violate.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use discovery_testkit::eventually;
use serde_json::{json, Value};
use tokio::time::MissedTickBehavior;

use crate::support::{
    announcement, discoveryd, new_id, now_ms, service, storage_node, unb64, Server, DEADLINE,
};

const MAX_AGE: Duration = Duration::from_secs(2);

fn short_lived() -> Server {
    Server::start_with(discoveryd!(), |o| o.set("discovery.max-age", "2s"))
}

/// Polls until `node` has no services; returns the time from `sent` to the first reply
/// that showed it gone, and fails if that is less than max-age (expired too early).
async fn wait_until_expired(server: &Server, node: &str, sent: Instant) -> Duration {
    let gone_after = eventually(DEADLINE, &format!("{node} to expire"), || async {
        let listed = server.services_of_node(node).await;
        let elapsed = sent.elapsed();
        if listed.is_empty() {
            Ok(elapsed)
        } else {
            Err(format!("still listed {elapsed:?} after the PUT"))
        }
    })
    .await;
    server.check(
        gone_after >= MAX_AGE,
        format!(
            "{node} disappeared {gone_after:?} after its PUT was sent, before max-age {MAX_AGE:?}"
        ),
    );
    gone_after
}

// Case 33.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announcement_expires_after_max_age_without_a_delete() {
    let server = short_lived();
    let sent = Instant::now();
    server.announce("n1", &storage_node()).await;
    server.check_eq(
        server.services_of_node("n1").await.len(),
        1,
        "visible right after the PUT",
    );
    wait_until_expired(&server, "n1", sent).await;
    server.check_eq(
        server.services("/v1/service/storage/alpha").await,
        vec![],
        "gone from every lookup",
    );
}

// Case 34: re-announce every second for 6 s with max-age 2 s; the node never disappears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_announcing_keeps_a_node_alive() {
    let server = short_lived();
    let body = storage_node();
    let mut ticks = tokio::time::interval(Duration::from_millis(250));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let started = Instant::now();
    let mut last_put = started;
    let mut tick: u32 = 0;
    let mut verified_beyond_max_age = 0;
    while started.elapsed() < Duration::from_secs(6) {
        ticks.tick().await;
        if tick.is_multiple_of(4) {
            last_put = Instant::now();
            server.announce("n1", &body).await;
        }
        tick += 1;
        let listed = server.services_of_node("n1").await;
        let since_put = last_put.elapsed();
        // Only a reply that came back within max-age of the last PUT must show the node
        // (a starved test task may see it legitimately expired).
        if since_put < MAX_AGE {
            server.check_eq(
                listed.len(),
                1,
                format!(
                    "n1 listed {since_put:?} after its last re-announce, {:?} after the first",
                    started.elapsed()
                ),
            );
            if started.elapsed() > MAX_AGE + Duration::from_millis(500) {
                verified_beyond_max_age += 1;
            }
        }
    }
    server.check(
        verified_beyond_max_age > 0,
        "no check ran after the first announcement's max-age passed",
    );
}

// Case 35.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcing_again_after_expiry_shows_only_the_new_services() {
    let server = short_lived();
    let (old, new) = (new_id(), new_id());
    let sent = Instant::now();
    server
        .announce(
            "n1",
            &announcement("alpha", "/a", vec![service(&old, "storage", json!({}))]),
        )
        .await;
    wait_until_expired(&server, "n1", sent).await;
    server
        .announce(
            "n1",
            &announcement("alpha", "/a", vec![service(&new, "storage", json!({}))]),
        )
        .await;
    server.check_eq(
        server.service_ids("/v1/service").await,
        vec![new],
        "only the new service",
    );
}

// Case 36.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_raw_entry_right_after_a_put_has_max_age_and_sequence_equal_to_timestamp() {
    let server = short_lived();
    let before = now_ms();
    server
        .announce(
            "n1",
            &announcement(
                "alpha",
                "/a",
                vec![service(&new_id(), "storage", json!({"http": "h"}))],
            ),
        )
        .await;
    let after = now_ms();
    let Some(entry) = server.raw_entry("dynamic", "n1").await else {
        server.fail("no raw entry for n1")
    };
    server.check_eq(
        entry["maxAgeInMs"].as_i64(),
        Some(2000),
        format!("maxAgeInMs of {entry}"),
    );
    let timestamp = entry["timestamp"].as_i64().unwrap_or_default();
    server.check_eq(
        entry["version"]["sequence"].as_i64(),
        Some(timestamp),
        format!("sequence == timestamp: {entry}"),
    );
    // Same machine, same wall clock: the stamp lies between our readings (with a little
    // slack for clock granularity).
    server.check(
        (before - 50..=after + 50).contains(&timestamp),
        format!("timestamp {timestamp} not within [{before}, {after}]"),
    );
    // The value is the JSON list of the node's services, as lookups show them.
    let value: Value = serde_json::from_slice(&unb64(&entry["value"])).unwrap_or_default();
    server.check_eq(
        value,
        Value::Array(server.services_of_node("n1").await),
        "stored value is the lookup's services",
    );
}

// Case 37 (testCanHandleLotsOfAnnouncements).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_thousand_nodes_are_all_listed() {
    const NODES: usize = 5000;
    const WORKERS: usize = 50;
    let server = Arc::new(Server::start_with(discoveryd!(), |o| {
        o.set("discovery.max-age", "10m").set("log.level", "info")
    }));
    let ids: Vec<String> = (0..NODES).map(|_| new_id()).collect();
    let mut workers = Vec::new();
    for worker in 0..WORKERS {
        let server = Arc::clone(&server);
        let mine: Vec<(usize, String)> = ids
            .iter()
            .cloned()
            .enumerate()
            .skip(worker)
            .step_by(WORKERS)
            .collect();
        workers.push(tokio::spawn(async move {
            for (n, id) in mine {
                let body = announcement(
                    "poolA",
                    &format!("/node-{n}"),
                    vec![service(&id, "storage", json!({}))],
                );
                server.announce(&format!("node-{n}"), &body).await;
            }
        }));
    }
    for worker in workers {
        if let Err(e) = worker.await {
            server.fail(format!("an announcing task failed: {e}"));
        }
    }
    let listed: BTreeSet<String> = server
        .service_ids("/v1/service/storage/poolA")
        .await
        .into_iter()
        .collect();
    server.check_eq(listed.len(), NODES, "services listed");
    server.check_eq(
        listed,
        ids.into_iter().collect::<BTreeSet<_>>(),
        "every announced id",
    );
}
