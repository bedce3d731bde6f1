//! The shipped nginx TLS examples, run with a real nginx in front of real `discoveryd`
//! nodes: `deploy/nginx/discovery-tls-termination.conf` (HTTPS at nginx, plain HTTP to
//! the node) and `deploy/nginx/discovery-tls-reencrypt.conf` (HTTPS at nginx and to a
//! node that serves only HTTPS, its certificate verified). Only the addresses and the
//! certificate paths are replaced; everything else is the file as shipped.

use discovery_testkit::announcements::standard_announcement;
use discovery_testkit::nginx::{Nginx, TLS_REENCRYPT_CONF, TLS_TERMINATION_CONF};
use discovery_testkit::tls::{https_client, https_client_builder, write_file, TestCa, TlsFiles};
use discovery_testkit::{discoveryd, new_id, Server};
use reqwest::{Client, StatusCode, Version};
use serde_json::Value;

use crate::support::DEADLINE;

/// nginx's own certificate (for 127.0.0.1) as the TLS examples' directives.
fn front_certificate(files: &TlsFiles) -> Vec<(&'static str, String)> {
    let keystore = files.keystore_path().display().to_string();
    vec![
        ("ssl_certificate", keystore.clone()),
        ("ssl_certificate_key", keystore),
    ]
}

/// An announcement through nginx, then a lookup through nginx that lists it; returns the
/// protocol the lookup was answered with.
async fn announce_and_look_up(client: &Client, nginx: &Nginx) -> Version {
    let id = new_id();
    let url = format!("{}/v1/announcement/tls-worker", nginx.https_url());
    let put = client
        .put(&url)
        .json(&standard_announcement(&id, "trino"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {url}: {e:?}\n{}", nginx.error_log()));
    assert_eq!(
        put.status(),
        StatusCode::ACCEPTED,
        "PUT {url}\n{}",
        nginx.error_log()
    );
    let url = format!("{}/v1/service/trino", nginx.https_url());
    let lookup = client
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e:?}\n{}", nginx.error_log()));
    assert_eq!(
        lookup.status(),
        StatusCode::OK,
        "GET {url}\n{}",
        nginx.error_log()
    );
    let version = lookup.version();
    let set: Value = lookup.json().await.expect("a JSON service set");
    let listed = set["services"]
        .as_array()
        .is_some_and(|services| services.iter().any(|s| s["id"] == id.as_str()));
    assert!(listed, "{id} is listed through nginx: {set}");
    version
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_termination_example_serves_https_in_front_of_plain_http_nodes() {
    let node = Server::start(discoveryd!());
    let front = TlsFiles::new();
    let nginx = Nginx::start_tls(
        TLS_TERMINATION_CONF,
        "127.0.0.1",
        &[node.authority()],
        &front_certificate(&front),
    )
    .await;
    let client = https_client(&front.ca().pem(), DEADLINE);
    assert_eq!(
        announce_and_look_up(&client, &nginx).await,
        Version::HTTP_2,
        "HTTP/2 chosen by ALPN at nginx"
    );
    let http1 = https_client_builder(&front.ca().pem())
        .http1_only()
        .timeout(DEADLINE)
        .build()
        .expect("an HTTP/1.1 client");
    assert_eq!(announce_and_look_up(&http1, &nginx).await, Version::HTTP_11);
}

/// The name nginx verifies the nodes' certificates against: the example's
/// `proxy_ssl_name`, which the node certificates must carry.
fn shipped_proxy_ssl_name() -> String {
    let shipped = std::fs::read_to_string(TLS_REENCRYPT_CONF).expect("the re-encryption example");
    shipped
        .lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix("proxy_ssl_name "))
        .map(|name| name.trim_end_matches(';').trim().to_owned())
        .expect("the re-encryption example sets proxy_ssl_name")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reencryption_example_verifies_the_nodes_certificates() {
    // The node: HTTPS only, with a certificate from its own CA for the example's name.
    let dir = tempfile::tempdir().expect("temporary directory");
    let node_ca = TestCa::new("discovery nodes' CA");
    let node_ca_path = dir.path().join("nodes-ca.pem");
    write_file(&node_ca_path, &node_ca.pem());
    let node_keystore = dir.path().join("node-keystore.pem");
    let name = shipped_proxy_ssl_name();
    write_file(
        &node_keystore,
        &node_ca.leaf(&["127.0.0.1", &name]).keystore_pem(),
    );
    let keystore = node_keystore.display().to_string();
    let node = Server::start_with(discoveryd!(), move |options| {
        options
            .set("http-server.https.enabled", "true")
            .set("http-server.https.port", "0")
            .set("http-server.https.keystore.path", &keystore)
            .set("http-server.http.enabled", "false")
    });
    let node_addr = node
        .process()
        .https_addr()
        .expect("the node's HTTPS address")
        .to_string();

    let front = TlsFiles::new();
    let mut directives = front_certificate(&front);
    directives.push((
        "proxy_ssl_trusted_certificate",
        node_ca_path.display().to_string(),
    ));
    let nginx = Nginx::start_tls(
        TLS_REENCRYPT_CONF,
        "127.0.0.1",
        std::slice::from_ref(&node_addr),
        &directives,
    )
    .await;
    let client = https_client(&front.ca().pem(), DEADLINE);
    announce_and_look_up(&client, &nginx).await;

    // nginx trusting another CA refuses the node: proxy_ssl_verify is on.
    let mut directives = front_certificate(&front);
    directives.push((
        "proxy_ssl_trusted_certificate",
        front.ca_path().display().to_string(),
    ));
    let distrustful =
        Nginx::start_tls(TLS_REENCRYPT_CONF, "127.0.0.1", &[node_addr], &directives).await;
    let url = format!("{}/v1/service/trino", distrustful.https_url());
    let refused = client.get(&url).send().await.expect("an answer from nginx");
    assert_eq!(
        refused.status(),
        StatusCode::BAD_GATEWAY,
        "GET {url}\n{}",
        distrustful.error_log()
    );
    let errors = distrustful.error_log();
    assert!(errors.contains("certificate verify"), "{errors}");
}
