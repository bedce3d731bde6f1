//! HTTPS on airlift's keys (`http-server.https.*`, `http-server.http.enabled`): a real
//! `discoveryd` serving TLS with certificates the test generates. Announcements and
//! lookups over HTTPS, HTTP/2 chosen by ALPN, plain HTTP turned off, a certificate
//! swapped on disk while the node runs, and keystores that cannot be used, at start and
//! while running.

use std::time::Duration;

use discovery_testkit::ports::free_port;
use discovery_testkit::tls::{
    https_client, https_client_builder, replace_file, write_file, TestCa, TlsFiles, LOCAL_NAMES,
};
use discovery_testkit::{eventually, ProcessOptions};
use reqwest::{StatusCode, Version};
use serde_json::{json, Value};

use crate::support::{announcement, discoveryd, new_id, run_to_exit, service, Server, DEADLINE};

const KEYSTORE_KEY: &str = "http-server.https.keystore.path";

/// HTTPS on a free port with the keystore of `files`, plain HTTP left on.
fn with_https(files: &TlsFiles) -> impl FnOnce(ProcessOptions) -> ProcessOptions {
    let keystore = files.keystore_path().display().to_string();
    move |options| {
        options
            .set("http-server.https.enabled", "true")
            .set("http-server.https.port", "0")
            .set(KEYSTORE_KEY, &keystore)
    }
}

fn client_trusting(ca: &TestCa) -> reqwest::Client {
    https_client(&ca.pem(), DEADLINE)
}

/// `GET /v1/health/live` over HTTPS with `client`: Ok when the handshake and the request
/// succeed.
async fn live(client: &reqwest::Client, server: &Server) -> Result<(), String> {
    let url = server.process().https_url("/v1/health/live");
    match client.get(&url).send().await {
        Ok(response) if response.status() == StatusCode::OK => Ok(()),
        Ok(response) => Err(format!("GET {url}: {}", response.status())),
        Err(e) => Err(format!("GET {url}: {e:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcements_and_lookups_work_over_https_for_clients_that_trust_the_ca() {
    let files = TlsFiles::new();
    let server = Server::start_with(discoveryd!(), with_https(&files));
    let https_addr = server.process().https_addr().expect("an HTTPS address");
    server.check(
        server
            .logs()
            .contains(&format!("discoveryd listening on https://{https_addr}")),
        "the HTTPS listener is logged",
    );
    server.check_eq(
        server.process().http_addr(),
        Some(server.addr()),
        "plain HTTP stays on beside HTTPS",
    );
    let client = client_trusting(files.ca());
    let id = new_id();
    let body = announcement(
        "general",
        "/tls",
        vec![service(
            &id,
            "trino",
            json!({"https": "https://10.0.0.9:8443"}),
        )],
    );
    let put = client
        .put(server.process().https_url("/v1/announcement/tls-node"))
        .json(&body)
        .send()
        .await
        .expect("PUT over HTTPS");
    server.check_eq(put.status(), StatusCode::ACCEPTED, "PUT over HTTPS");

    let lookup = client
        .get(server.process().https_url("/v1/service/trino/general"))
        .send()
        .await
        .expect("GET over HTTPS");
    server.check_eq(lookup.status(), StatusCode::OK, "lookup over HTTPS");
    let set: Value = lookup.json().await.expect("a JSON service set");
    server.check_eq(
        set["services"][0]["id"].as_str(),
        Some(id.as_str()),
        "the service announced over HTTPS",
    );
    // The same node answers plain HTTP on its other port.
    let ids = server.service_ids("/v1/service/trino/general").await;
    server.check_eq(ids, vec![id.clone()], "the lookup over plain HTTP");

    // A client that does not trust the CA gets no answer at all: neither one that trusts
    // another CA, nor one with only the public roots.
    let stranger = client_trusting(&TestCa::new("some other CA"));
    let refused = live(&stranger, &server).await;
    server.check(
        refused.is_err(),
        format!("a client trusting another CA must fail the handshake: {refused:?}"),
    );
    let public_roots = reqwest::Client::builder()
        .use_rustls_tls()
        .no_proxy()
        .timeout(DEADLINE)
        .build()
        .expect("a client with the public roots");
    let refused = live(&public_roots, &server).await;
    server.check(
        refused.is_err(),
        format!("a client with only the public roots must fail the handshake: {refused:?}"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_and_http1_are_negotiated_by_alpn() {
    let files = TlsFiles::new();
    let server = Server::start_with(discoveryd!(), with_https(&files));
    let url = server.process().https_url("/v1/service");
    // reqwest offers h2 and http/1.1 by ALPN, as Trino 483's client does.
    let h2 = client_trusting(files.ca()).get(&url).send().await;
    let h2 = h2.unwrap_or_else(|e| server.fail(format!("GET {url} (h2): {e:?}")));
    server.check_eq(h2.version(), Version::HTTP_2, "protocol chosen by ALPN");
    server.check_eq(h2.status(), StatusCode::OK, "lookup over HTTP/2 and TLS");

    let http1 = https_client_builder(&files.ca().pem())
        .http1_only()
        .timeout(DEADLINE)
        .build()
        .expect("an HTTP/1.1 client");
    let reply = http1.get(&url).send().await;
    let reply = reply.unwrap_or_else(|e| server.fail(format!("GET {url} (http/1.1): {e:?}")));
    server.check_eq(reply.version(), Version::HTTP_11, "HTTP/1.1 over TLS");
    server.check_eq(
        reply.status(),
        StatusCode::OK,
        "lookup over HTTP/1.1 and TLS",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_can_be_turned_off() {
    let files = TlsFiles::new();
    // A port of its own for plain HTTP, to show that nothing takes it.
    let plain_port = free_port("127.0.0.1");
    let configure = with_https(&files);
    let server = Server::start_with(discoveryd!(), move |options| {
        let mut options = configure(options).set("http-server.http.enabled", "false");
        options.port = plain_port;
        options
    });
    let logs = server.logs();
    server.check(
        !logs.contains("listening on http://"),
        "no plain HTTP listener is logged",
    );
    server.check_eq(server.process().http_addr(), None, "no plain HTTP address");
    server.check_eq(
        Some(server.addr()),
        server.process().https_addr(),
        "the node's address is the HTTPS one",
    );
    let refused = tokio::net::TcpStream::connect(("127.0.0.1", plain_port)).await;
    server.check(
        refused.is_err(),
        format!("nothing listens on the plain HTTP port {plain_port}: {refused:?}"),
    );
    let client = client_trusting(files.ca());
    server.check_eq(
        live(&client, &server).await,
        Ok(()),
        "HTTPS serves with plain HTTP off",
    );
    let lookup = client
        .get(server.process().https_url("/v1/service"))
        .send()
        .await
        .expect("lookup over HTTPS");
    server.check_eq(lookup.status(), StatusCode::OK, "lookup over HTTPS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_replaced_on_disk_is_served_without_a_restart() {
    let files = TlsFiles::new();
    let server = Server::start_with(discoveryd!(), with_https(&files));
    server.check_eq(
        live(&client_trusting(files.ca()), &server).await,
        Ok(()),
        "the first certificate",
    );

    let renewed_ca = TestCa::new("renewed CA");
    replace_file(
        &files.keystore_path(),
        &renewed_ca.leaf(LOCAL_NAMES).keystore_pem(),
    );
    // A new client for every try: a client resumes the TLS sessions it had, and a
    // resumed session shows no certificate.
    eventually(DEADLINE, "the renewed certificate to be served", || async {
        live(&client_trusting(&renewed_ca), &server).await
    })
    .await;
    let line = server.log_line("keystore changed").await;
    server.check(
        line.contains("INFO"),
        format!("the reload is logged at INFO: {line}"),
    );
    // New handshakes get the new certificate only.
    let stale = live(&client_trusting(files.ca()), &server).await;
    server.check(
        stale.is_err(),
        format!("a client trusting only the old CA must now fail: {stale:?}"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_keystore_written_while_running_keeps_the_old_certificate() {
    let files = TlsFiles::new();
    let server = Server::start_with(discoveryd!(), with_https(&files));
    server.check_eq(
        live(&client_trusting(files.ca()), &server).await,
        Ok(()),
        "the first certificate",
    );

    // A renewal gone wrong: the new certificate without its key.
    let half = TestCa::new("renewed CA").leaf(LOCAL_NAMES).certificate_pem;
    replace_file(&files.keystore_path(), &half);
    let line = server.log_line("the changed keystore cannot be used").await;
    server.check(line.contains("ERROR"), format!("logged at ERROR: {line}"));
    server.check(
        line.contains(&files.keystore_path().display().to_string()),
        format!("the error names the file: {line}"),
    );
    // A new client, so that the handshake is a full one, with the certificate.
    server.check_eq(
        live(&client_trusting(files.ca()), &server).await,
        Ok(()),
        "the old certificate is still served",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keystore_that_cannot_be_used_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let leaf = TestCa::new("ca").leaf(LOCAL_NAMES);
    let missing = dir.path().join("missing.pem");
    let garbage = dir.path().join("garbage.pem");
    write_file(&garbage, "this is not PEM\n");
    let no_key = dir.path().join("no-key.pem");
    write_file(&no_key, &leaf.certificate_pem);
    let wrong_key = dir.path().join("wrong-key.pem");
    write_file(
        &wrong_key,
        &format!(
            "{}{}",
            leaf.certificate_pem,
            TestCa::new("other").leaf(LOCAL_NAMES).key_pem
        ),
    );
    for path in [&missing, &garbage, &no_key, &wrong_key] {
        let keystore = format!("{KEYSTORE_KEY}={}", path.display());
        let (status, output) = run_to_exit(
            None,
            &[
                "--set",
                "http-server.https.enabled=true",
                "--set",
                "http-server.https.port=0",
                "--set",
                &keystore,
            ],
        )
        .await;
        assert!(
            !status.success(),
            "{keystore}: exited with {status}:\n{output}"
        );
        assert!(
            output.contains(KEYSTORE_KEY) && output.contains(&path.display().to_string()),
            "{keystore}: the message names the key and the file:\n{output}"
        );
        assert!(
            !output.contains("listening on"),
            "{keystore}: must not start listening:\n{output}"
        );
        assert!(
            !output.contains("panicked"),
            "{keystore}: no panic:\n{output}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truststore_that_cannot_be_used_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let empty = dir.path().join("empty.pem");
    write_file(&empty, "");
    for path in [dir.path().join("missing.pem"), empty] {
        let truststore = format!(
            "internal-communication.https.truststore.path={}",
            path.display()
        );
        let (status, output) = run_to_exit(None, &["--set", &truststore]).await;
        assert!(
            !status.success(),
            "{truststore}: exited with {status}:\n{output}"
        );
        assert!(
            output.contains("internal-communication.https.truststore.path")
                && output.contains(&path.display().to_string()),
            "{truststore}: the message names the key and the file:\n{output}"
        );
        assert!(!output.contains("listening on"), "{truststore}:\n{output}");
    }
}

/// A client that connects and never sends a TLS ClientHello holds up nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_does_not_block_handshakes() {
    let files = TlsFiles::new();
    let server = Server::start_with(discoveryd!(), with_https(&files));
    let https_addr = server.process().https_addr().expect("an HTTPS address");
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(
            tokio::net::TcpStream::connect(https_addr)
                .await
                .expect("connect"),
        );
    }
    let client = client_trusting(files.ca());
    let answered = tokio::time::timeout(Duration::from_secs(5), live(&client, &server)).await;
    server.check_eq(
        answered,
        Ok(Ok(())),
        "a handshake while silent connections are open",
    );
    drop(silent);
}
