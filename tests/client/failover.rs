//! Several discovery URIs: a down server or a 5xx moves the client on to the next URI; a
//! 4xx does not (every server would say the same).

use discovery_client::{Announcer, DiscoveryError, ServiceSelector, StoreName};

use crate::support::{
    client, client_of, closed_uri, fake_server, node, start_server, static_service, within,
};

#[tokio::test(flavor = "multi_thread")]
async fn every_call_fails_over_to_the_second_uri_when_the_first_is_down() {
    let server = start_server();
    let client = client(&[closed_uri(), server.uri()]);

    let announced = client
        .announce("n1", &node("presto", "http://n1:8080"))
        .await
        .unwrap();
    assert_eq!(announced.uri, server.uri());
    let set = client.lookup("presto", "general").await.unwrap();
    assert_eq!(set.services.len(), 1);
    assert_eq!(
        client.lookup_type("presto").await.unwrap().services.len(),
        1
    );
    let created = client
        .add_static(&static_service("ldap", "ldap://dir:389"))
        .await
        .unwrap();
    assert_eq!(client.list_static().await.unwrap().services.len(), 1);
    assert_eq!(client.lookup_all().await.unwrap().services.len(), 2);
    assert!(!client
        .store_dump(StoreName::Dynamic)
        .await
        .unwrap()
        .is_empty());
    client.delete_static(&created.id).await.unwrap();
    client.unannounce("n1").await.unwrap();
    assert!(client.lookup_all().await.unwrap().services.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn announcer_and_selector_work_through_failover() {
    let server = start_server();
    let client = client(&[closed_uri(), server.uri()]);
    let selector = ServiceSelector::start(client.clone(), "presto-coordinator", "general");
    let announcer = Announcer::start(
        client.clone(),
        "coord",
        node("presto-coordinator", "http://c:8080"),
    )
    .unwrap();
    within("the first announcement", announcer.announced()).await;
    let mut changes = selector.subscribe();
    within(
        "the coordinator in the selector",
        changes.wait_for(|list| list.len() == 1),
    )
    .await
    .unwrap();
    announcer.shutdown().await.unwrap();
    within(
        "the coordinator gone",
        changes.wait_for(|list| list.is_empty()),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_5xx_fails_over_and_a_4xx_does_not() {
    let server = start_server();
    let unavailable = fake_server(503, "storage unavailable, retry later\n").await;
    let client_503 = client(&[unavailable.url().to_owned(), server.uri()]);
    client_503
        .announce("n1", &node("presto", "http://n1:8080"))
        .await
        .unwrap();
    assert_eq!(unavailable.hits(), 1);
    // Sticky: the next call goes straight to the server that answered.
    client_503.lookup("presto", "general").await.unwrap();
    assert_eq!(unavailable.hits(), 1);

    let refusing = fake_server(
        400,
        "Environment mismatch. Expected: other, Provided: testing\n",
    )
    .await;
    let client_400 = client(&[refusing.url().to_owned(), server.uri()]);
    let error = client_400
        .announce("n2", &node("presto", "http://n2:8080"))
        .await
        .unwrap_err();
    match &error {
        DiscoveryError::Rejected {
            uri,
            status,
            message,
        } => {
            assert_eq!(uri, refusing.url());
            assert_eq!(*status, 400);
            assert_eq!(
                message,
                "Environment mismatch. Expected: other, Provided: testing"
            );
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(error.is_environment_mismatch());
    let set = client_of(&server)
        .lookup("presto", "general")
        .await
        .unwrap();
    assert_eq!(
        set.services.len(),
        1,
        "the 400 must not have been retried elsewhere"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn when_every_server_is_down_the_error_names_each_uri() {
    let (first, second) = (closed_uri(), closed_uri());
    let client = client(&[first.clone(), second.clone()]);
    let error = client.lookup("presto", "general").await.unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
    let text = error.to_string();
    assert!(text.contains(&first) && text.contains(&second), "{text}");
    assert!(text.contains("may be down"), "{text}");

    let unavailable = fake_server(503, "storage unavailable, retry later\n").await;
    let only = client_for(unavailable.url());
    match only.lookup("presto", "general").await.unwrap_err() {
        DiscoveryError::ServerError {
            status: 503,
            message,
            ..
        } => {
            assert_eq!(message, "storage unavailable, retry later");
        }
        other => panic!("expected a server error, got {other:?}"),
    }
}

fn client_for(uri: &str) -> discovery_client::DiscoveryClient {
    client(&[uri.to_owned()])
}
