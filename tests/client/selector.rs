//! The ServiceSelector against a real server: changes arrive on the watch channel, an
//! unchanged list is refreshed with a 304, and the last good list survives a server that
//! is down or answers for another environment.

use std::sync::Arc;

use discovery_client::types::Service;
use discovery_client::{DiscoveryClient, ServiceSelector, Services};
use discovery_testkit::eventually;
use tokio::sync::watch;

use crate::support::{client_of, node, start_server, static_service, within, DEADLINE, ENV};

/// Waits until the watched list holds exactly the services whose `http` property is in
/// `expected` (any order).
async fn wait_for_http(changes: &mut watch::Receiver<Services>, expected: &[&str]) -> Services {
    let mut expected: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
    expected.sort();
    let what = format!("services at {expected:?}");
    let list = within(&what, changes.wait_for(|list| https(list) == expected))
        .await
        .expect("selector running");
    Arc::clone(&list)
}

fn https(list: &[Service]) -> Vec<String> {
    let mut https: Vec<String> = list
        .iter()
        .filter_map(|s| s.properties.get("http").cloned())
        .collect();
    https.sort();
    https
}

#[tokio::test(flavor = "multi_thread")]
async fn selector_sees_additions_and_removals_on_its_watch_channel() {
    let server = start_server();
    let client = client_of(&server);
    let selector = ServiceSelector::start(client.clone(), "coordinator", "general");
    within("the first lookup", selector.ready()).await;
    assert!(selector.services().is_empty());
    let mut changes = selector.subscribe();

    client
        .announce("c1", &node("coordinator", "http://c1:8080"))
        .await
        .unwrap();
    wait_for_http(&mut changes, &["http://c1:8080"]).await;

    client
        .announce("c2", &node("coordinator", "http://c2:8080"))
        .await
        .unwrap();
    let both = wait_for_http(&mut changes, &["http://c1:8080", "http://c2:8080"]).await;
    assert!(both.windows(2).all(|w| w[0].id < w[1].id), "sorted by id");

    // The coordinator moves: c1 goes away, c2 stays.
    client.unannounce("c1").await.unwrap();
    wait_for_http(&mut changes, &["http://c2:8080"]).await;

    // Another type or pool never shows up in this selector.
    client
        .announce("w1", &node("worker", "http://w1:8080"))
        .await
        .unwrap();
    let mut other_pool = node("coordinator", "http://etl:8080");
    other_pool.pool = "etl".into();
    client.announce("e1", &other_pool).await.unwrap();
    let status = selector.status();
    let seen = status.borrow().refreshes;
    within(
        "two more refreshes",
        selector.status().wait_for(|s| s.refreshes >= seen + 2),
    )
    .await
    .unwrap();
    assert_eq!(https(&selector.services()), ["http://c2:8080"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn selector_refreshes_an_unchanged_list_with_a_304() {
    let server = start_server();
    let client = client_of(&server);
    client
        .announce("c1", &node("etagged", "http://c1:8080"))
        .await
        .unwrap();
    let selector = ServiceSelector::start_loaded(client, "etagged", "general")
        .await
        .unwrap();
    eventually(DEADLINE, "a 304 in the request log", || async {
        let logs = server.logs();
        if logs.contains("GET /v1/service/etagged/general 304") {
            Ok(())
        } else {
            Err("no 304 yet")
        }
    })
    .await;
    assert_eq!(https(&selector.services()), ["http://c1:8080"]);
    assert_eq!(selector.status().borrow().consecutive_failures, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn selector_keeps_its_last_good_list_while_the_server_is_down_and_recovers_after_restart() {
    let mut server = start_server();
    let client = client_of(&server);
    client
        .add_static(&static_service("metastore", "http://m1:9083"))
        .await
        .unwrap();
    let selector = ServiceSelector::start_loaded(client.clone(), "metastore", "general")
        .await
        .unwrap();
    assert_eq!(https(&selector.services()), ["http://m1:9083"]);
    let mut changes = selector.subscribe();
    changes.borrow_and_update();

    server.kill();
    let status = within(
        "failed refreshes while the server is down",
        selector.status().wait_for(|s| s.consecutive_failures >= 3),
    )
    .await
    .unwrap()
    .clone();
    assert!(status.loaded);
    assert!(
        status
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("cannot reach"),
        "{status:?}"
    );
    assert_eq!(
        https(&selector.services()),
        ["http://m1:9083"],
        "the last good list is kept"
    );
    assert!(
        !changes.has_changed().unwrap(),
        "a failed refresh must not publish a change"
    );

    server.restart_in_place(|o| o);
    client
        .add_static(&static_service("metastore", "http://m2:9083"))
        .await
        .unwrap();
    wait_for_http(&mut changes, &["http://m1:9083", "http://m2:9083"]).await;
    assert_eq!(selector.status().borrow().consecutive_failures, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_response_for_another_environment_is_a_failed_refresh() {
    let mut server = start_server();
    let configured = client_of(&server);
    configured
        .add_static(&static_service("gateway", "http://g1:8080"))
        .await
        .unwrap();
    // One selector knows its environment; the other learns it from the first answer.
    let pinned_client = DiscoveryClient::builder([server.uri()]).build().unwrap();
    let configured_selector = ServiceSelector::start_loaded(configured, "gateway", "general")
        .await
        .unwrap();
    let pinned_selector = ServiceSelector::start_loaded(pinned_client, "gateway", "general")
        .await
        .unwrap();
    assert_eq!(
        pinned_selector.status().borrow().environment.as_deref(),
        Some(ENV)
    );

    // The same address now serves another cluster (same data, other environment).
    server.kill();
    server.restart_in_place(|o| o.set("node.environment", "staging"));
    for selector in [&configured_selector, &pinned_selector] {
        let status = within(
            "a refused answer from the other environment",
            selector.status().wait_for(|s| {
                s.last_error.as_deref().is_some_and(|e| {
                    e.contains("Expected environment to be testing, but was staging")
                })
            }),
        )
        .await
        .unwrap()
        .clone();
        assert!(status.consecutive_failures >= 1);
        assert_eq!(
            https(&selector.services()),
            ["http://g1:8080"],
            "the last good list is kept"
        );
    }
}
