//! The Announcer against a real server: it outlives the time-to-live by re-announcing at
//! 80 % of the server's max-age, retries through an outage, and unannounces on shutdown.

use std::time::{Duration, Instant};

use discovery_client::{Announcer, DiscoveryClient, StoreName};
use discovery_testkit::eventually;

use crate::support::{client_of, node, start_server, start_server_with, within, DEADLINE};

/// Lists the node ids that have `service_type` services right now.
async fn nodes_of(client: &DiscoveryClient, service_type: &str) -> Vec<String> {
    let set = client
        .lookup(service_type, "general")
        .await
        .expect("lookup");
    set.services.into_iter().filter_map(|s| s.node_id).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn announcer_keeps_a_node_listed_beyond_its_ttl_and_removes_it_on_shutdown() {
    // TTL 3 s against a re-announcement every 0.8 s: a margin of over 2 s for a slow CI.
    let ttl = Duration::from_secs(3);
    let server = start_server_with(|o| o.set("discovery.max-age", "3s"));
    let client = client_of(&server);

    let announcer = Announcer::start(
        client.clone(),
        "worker-1",
        node("worker", "http://10.0.0.1:8080"),
    )
    .unwrap();
    within("the first announcement", announcer.announced()).await;

    // The server advertises max-age=1s: the announcer comes back after 800 ms.
    let status = announcer.status().borrow().clone();
    assert_eq!(status.max_age, Some(Duration::from_secs(1)));
    assert_eq!(status.next_in, Some(Duration::from_millis(800)));

    // Poll for well over two TTLs; the node must be listed at every single poll.
    let since = Instant::now();
    eventually(
        DEADLINE,
        "two and a half TTLs of continuous listing",
        || async {
            let nodes = nodes_of(&client, "worker").await;
            assert_eq!(
                nodes,
                ["worker-1"],
                "the node dropped out after {:?}",
                since.elapsed()
            );
            if since.elapsed() > ttl * 2 {
                Ok(())
            } else {
                Err(since.elapsed())
            }
        },
    )
    .await;
    let announcements = announcer.status().borrow().announcements;
    assert!(
        announcements >= 3,
        "only {announcements} announcements in {:?}",
        since.elapsed()
    );

    announcer.shutdown().await.expect("unannounce");
    // The DELETE was awaited: the node is gone now, not after the TTL.
    assert!(
        nodes_of(&client, "worker").await.is_empty(),
        "still listed after shutdown"
    );
    let entries = client.store_entries(StoreName::Dynamic).await.unwrap();
    let entry = entries.iter().find(|e| e.key == "worker-1").expect("entry");
    assert!(
        entry.tombstone,
        "shutdown must leave a tombstone: {entry:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn announcer_retries_through_an_outage_and_announces_again_after_restart() {
    let mut server = start_server_with(|o| o.set("discovery.max-age", "3s"));
    let client = client_of(&server);
    let announcer = Announcer::start(
        client.clone(),
        "worker-2",
        node("worker", "http://10.0.0.2:8080"),
    )
    .unwrap();
    within("the first announcement", announcer.announced()).await;
    let mut status = announcer.status();

    server.kill();
    let failing = within(
        "failed announcements while the server is down",
        status.wait_for(|s| s.consecutive_failures >= 3),
    )
    .await
    .expect("announcer running")
    .clone();
    assert!(
        failing
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("cannot reach"),
        "{failing:?}"
    );
    // Back-off, not the regular period: retries come within a second.
    assert!(
        failing.next_in.unwrap() <= Duration::from_secs(1),
        "{failing:?}"
    );

    server.restart_in_place(|o| o);
    let before = failing.announcements;
    within(
        "an accepted announcement after the restart",
        status.wait_for(|s| s.consecutive_failures == 0 && s.announcements > before),
    )
    .await
    .expect("announcer running");
    assert_eq!(nodes_of(&client, "worker").await, ["worker-2"]);
    announcer.shutdown().await.expect("unannounce");
    assert!(nodes_of(&client, "worker").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn announcer_reports_the_servers_reason_for_a_rejection() {
    let server = start_server();
    let wrong = DiscoveryClient::builder([server.uri()])
        .environment("production")
        .build()
        .unwrap();
    let mut announcement = node("worker", "http://10.0.0.3:8080");
    announcement.environment = "production".into();
    let announcer = Announcer::start(wrong, "worker-3", announcement).unwrap();
    let mut status = announcer.status();
    let rejected = within(
        "a rejected announcement",
        status.wait_for(|s| s.consecutive_failures >= 2),
    )
    .await
    .expect("announcer running")
    .clone();
    assert_eq!(
        rejected.last_error.as_deref(),
        Some("Environment mismatch. Expected: testing, Provided: production")
    );
    assert_eq!(rejected.announcements, 0);
    drop(announcer);
    assert!(nodes_of(&client_of(&server), "worker").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn replacing_the_announcement_takes_effect_at_once() {
    let server = start_server_with(|o| o.set("discovery.announce-max-age", "60s"));
    let client = client_of(&server);
    let announcer = Announcer::start(
        client.clone(),
        "gateway-1",
        node("gateway", "http://old:8080"),
    )
    .unwrap();
    within("the first announcement", announcer.announced()).await;

    // The next scheduled announcement is 48 s away; the replacement must not wait for it.
    announcer.replace(node("gateway", "http://new:8080"));
    eventually(DEADLINE, "the replaced address", || async {
        let set = client.lookup("gateway", "general").await.expect("lookup");
        match set.services.as_slice() {
            [only] if only.properties["http"] == "http://new:8080" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    announcer.shutdown().await.unwrap();
}
