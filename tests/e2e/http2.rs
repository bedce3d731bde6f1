//! Cleartext HTTP/2 with prior knowledge on the same port as HTTP/1.1: Trino 483's
//! discovery client speaks it by default (`internal-communication.http2.enabled`), as
//! airlift's Jetty server accepts it. An announcement and a lookup over HTTP/2 behave as
//! over HTTP/1.1, and an HTTP/1.1 client on the same port is unaffected.

use reqwest::{StatusCode, Version};
use serde_json::json;

use crate::support::{announcement, discoveryd, new_id, service, Server};

fn h2c_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .expect("an HTTP/2 client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcements_and_lookups_work_over_cleartext_http2_beside_http1() {
    let server = Server::start(discoveryd!());
    let client = h2c_client();
    let id = new_id();
    let body = announcement(
        "general",
        "/h2",
        vec![service(
            &id,
            "trino",
            json!({"http": "http://10.0.0.9:8080"}),
        )],
    );
    let put = client
        .put(server.url("/v1/announcement/h2-node"))
        .json(&body)
        .send()
        .await
        .expect("PUT over HTTP/2");
    server.check_eq(put.version(), Version::HTTP_2, "protocol of the PUT answer");
    server.check_eq(put.status(), StatusCode::ACCEPTED, "PUT over HTTP/2");

    let lookup = client
        .get(server.url("/v1/service/trino/general"))
        .send()
        .await
        .expect("GET over HTTP/2");
    server.check_eq(lookup.version(), Version::HTTP_2, "protocol of the lookup");
    server.check_eq(lookup.status(), StatusCode::OK, "lookup over HTTP/2");
    server.check(
        lookup.headers().contains_key("etag"),
        "the lookup over HTTP/2 carries an ETag",
    );
    let set: serde_json::Value = lookup.json().await.expect("a JSON service set");
    server.check_eq(
        set["services"][0]["id"].as_str(),
        Some(id.as_str()),
        "the service announced over HTTP/2",
    );

    // HTTP/1.1 on the same port still works.
    assert_eq!(
        server.service_ids("/v1/service/trino/general").await,
        vec![id]
    );
}
