//! Configuration: defaults (conformance case 71), airlift-style properties files, refused
//! values and the Cache-Control settings.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{
    announcement, discoveryd, dynamic_entry, new_id, now_ms, run_to_exit, service, storage_node,
    Server, DEADLINE,
};

// Case 71: with no overrides, dynamic entries live 30 s; announce and lookup answers say
// max-age=10; tombstones are kept for a day; bodies up to 1 MB are read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_give_a_30_second_max_age_and_one_day_tombstones() {
    let server = Server::start(discoveryd!());
    let reply = server.put_announcement("n1", &storage_node()).await;
    server.expect_status(&reply, StatusCode::ACCEPTED);
    server.check_eq(
        reply.header("cache-control"),
        Some("max-age=10"),
        "announce Cache-Control",
    );
    let entry = server.raw_entry("dynamic", "n1").await;
    server.check_eq(
        entry.as_ref().and_then(|e| e["maxAgeInMs"].as_i64()),
        Some(30000),
        format!("maxAgeInMs of {entry:?}"),
    );
    let lookup = server.get("/v1/service").await;
    server.check_eq(
        lookup.header("cache-control"),
        Some("max-age=10"),
        "lookup Cache-Control",
    );

    // tombstone-max-age 1d: a 23 h old tombstone is kept, a 25 h old one dropped on arrival.
    let hour = 3_600_000;
    let recent = now_ms() - 23 * hour;
    let old = now_ms() - 25 * hour;
    let batch = json!([
        dynamic_entry("recent-delete", None, recent, recent, None),
        dynamic_entry("old-delete", None, old, old, None),
    ]);
    let reply = server.post_entries("dynamic", &batch).await;
    server.expect_status(&reply, StatusCode::NO_CONTENT);
    server.check(
        server.raw_entry("dynamic", "recent-delete").await.is_some(),
        "23 h old tombstone kept",
    );
    server.check(
        server.raw_entry("dynamic", "old-delete").await.is_none(),
        "25 h old tombstone dropped",
    );

    // http-server.max-request-size 1MB (1048576 bytes): a body declaring more is refused
    // before it is sent (the head alone gets the 413), one just under it is read.
    let status = server
        .status_line_for_head(
            "PUT",
            "/v1/announcement/n2",
            &[
                ("Content-Type", "application/json"),
                ("Content-Length", "1048577"),
            ],
        )
        .await;
    server.check(
        status.starts_with("HTTP/1.1 413"),
        format!("status line for a 1048577-byte body: {status}"),
    );
    let mut body = announcement(
        "alpha",
        "/a",
        vec![service(&new_id(), "big", json!({"pad": ""}))],
    );
    let overhead = serde_json::to_vec(&body).expect("serialises").len();
    body["services"][0]["properties"]["pad"] = json!("x".repeat(1_048_576 - overhead));
    server.check_eq(
        serde_json::to_vec(&body).expect("serialises").len(),
        1_048_576,
        "body size",
    );
    server.announce("n2", &body).await;
    server.check_eq(
        server.services("/v1/service/big").await.len(),
        1,
        "the 1 MiB announcement is stored",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_airlift_properties_file_with_node_properties_beside_it_is_read() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let etc = dir.path().join("etc");
    std::fs::create_dir_all(&etc).expect("create etc");
    let config = etc.join("config.properties");
    std::fs::write(
        &config,
        "# airlift discovery server configuration\n\
         node.environment=testing\n\
         discovery.max-age=45s\n\
         discovery.store-cache-ttl=0ms\n\
         static.db.location=var/db/static\n\
         http-server.log.path=var/log/x.log\n",
    )
    .expect("write config.properties");
    std::fs::write(
        etc.join("node.properties"),
        "node.environment=testing\nnode.id=disc-e2e-1\n",
    )
    .expect("write node.properties");
    let config_arg = config.display().to_string();
    let server = Server::start_with(discoveryd!(), |mut options| {
        options.args = vec!["--config".into(), config_arg];
        options
    });

    let warning = server.log_line("http-server.log.path").await;
    server.check(
        warning.contains("WARN"),
        format!("a warning names the unknown key: {warning}"),
    );
    let listening = server.log_line("listening on").await;
    server.check(
        listening.contains("node_id=disc-e2e-1"),
        format!("node.id from node.properties: {listening}"),
    );
    let logs = server.logs();
    server.check(
        !logs
            .lines()
            .any(|line| line.contains("WARN") && line.contains("static.db.location")),
        "static.db.location is a known airlift key, not warned about as unknown",
    );
    // discovery.max-age from the file applies.
    server.announce("n1", &storage_node()).await;
    let entry = server.raw_entry("dynamic", "n1").await;
    server.check_eq(
        entry.as_ref().and_then(|e| e["maxAgeInMs"].as_i64()),
        Some(45000),
        format!("maxAgeInMs from the file: {entry:?}"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_value_of_a_known_key_stops_startup_naming_the_key() {
    let cases = [
        ("discovery.max-age=30", "discovery.max-age"),
        ("discovery.lookup-max-age=soon", "discovery.lookup-max-age"),
        (
            "http-server.max-request-size=lots",
            "http-server.max-request-size",
        ),
        (
            "dynamic.store.tombstone-max-age=1 fortnight",
            "dynamic.store.tombstone-max-age",
        ),
        ("node.environment=Prod", "node.environment"),
        // A bare word is a target name to the log filter: all logging would go quiet.
        ("log.level=inof", "log.level"),
        ("dynamic.store.max-bytes=plenty", "dynamic.store.max-bytes"),
        (
            "http-server.max-connections-per-client=0",
            "http-server.max-connections-per-client",
        ),
    ];
    for (setting, key) in cases {
        let (status, output) = run_to_exit(None, &["--set", setting]).await;
        assert!(
            !status.success(),
            "--set {setting}: exited with {status}; output:\n{output}"
        );
        assert!(
            output.contains(key),
            "--set {setting}: the message must name {key}; output:\n{output}"
        );
        assert!(
            !output.contains("listening on"),
            "--set {setting}: must not start listening; output:\n{output}"
        );
    }
    let (status, output) =
        run_to_exit(None, &["--config", "/nonexistent/etc/config.properties"]).await;
    assert!(
        !status.success(),
        "missing config file: exited with {status}; output:\n{output}"
    );
    assert!(
        output.contains("/nonexistent/etc/config.properties"),
        "missing config file: the message names the file; output:\n{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_and_announce_max_age_are_configurable() {
    let server = Server::start_with(discoveryd!(), |o| {
        o.set("discovery.lookup-max-age", "3s")
            .set("discovery.announce-max-age", "4s")
    });
    let reply = server.put_announcement("n1", &storage_node()).await;
    server.expect_status(&reply, StatusCode::ACCEPTED);
    server.check_eq(
        reply.header("cache-control"),
        Some("max-age=4"),
        "announce Cache-Control",
    );
    let reply = server.get("/v1/service/storage/alpha").await;
    server.check_eq(
        reply.header("cache-control"),
        Some("max-age=3"),
        "lookup Cache-Control",
    );
    let tag = reply.header("etag").unwrap_or_default().to_owned();
    let reply = server
        .send(
            Method::GET,
            "/v1/service/storage/alpha",
            &[("if-none-match", tag.as_str())],
            None,
            None,
        )
        .await;
    server.expect_status(&reply, StatusCode::NOT_MODIFIED);
    server.check_eq(
        reply.header("cache-control"),
        Some("max-age=3"),
        "304 Cache-Control",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_refuses_new_keys_with_503_and_keeps_serving_existing_ones() {
    let server = Server::start_with(discoveryd!(), |o| o.set("dynamic.store.max-entries", "3"));
    let body = || storage_node();
    for node in ["n1", "n2", "n3"] {
        server.announce(node, &body()).await;
    }
    let reply = server.put_announcement("n4", &body()).await;
    server.expect_status(&reply, StatusCode::SERVICE_UNAVAILABLE);
    server.check_eq(
        reply.header("retry-after"),
        Some("1"),
        format!("{reply}\nRetry-After"),
    );
    server.check(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        format!("{reply}\ntext/plain"),
    );
    server.check_eq(
        server.raw_entry("dynamic", "n4").await,
        None,
        "n4 not stored",
    );
    // Keys already held can still be replaced and deleted.
    server.announce("n1", &body()).await;
    server.unannounce("n2").await;
    server.check_eq(server.services_of_node("n2").await, vec![], "n2 deleted");
}

// A batch posted to /v1/store with a new key while the store is full must not be
// acknowledged: a 2xx tells the sender (a Java peer's push, or an operator migrating static
// services with curl) that the entries are applied. docs/COMPATIBILITY.md: "new keys beyond
// it: 503 with Retry-After".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_batch_into_a_full_store_is_not_acknowledged() {
    let server = Server::start_with(discoveryd!(), |o| o.set("dynamic.store.max-entries", "3"));
    let body = || storage_node();
    for node in ["n1", "n2", "n3"] {
        server.announce(node, &body()).await;
    }
    let now = now_ms();
    let services = json!([crate::support::stored_service(
        &new_id(),
        "n5",
        "storage",
        "alpha",
        "/a"
    )]);
    let reply = server
        .post_entries(
            "dynamic",
            &json!([dynamic_entry("n5", Some(&services), now, now, Some(30000))]),
        )
        .await;
    let stored = server.raw_entry("dynamic", "n5").await;
    server.check(
        !reply.status.is_success() || stored.is_some(),
        format!("{reply}\nthe batch was acknowledged but its new key n5 was not stored"),
    );
    server.expect_status(&reply, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collection_removes_expired_entries_and_old_tombstones_from_the_raw_store() {
    let server = Server::start_with(discoveryd!(), |o| {
        o.set("discovery.max-age", "1s")
            .set("dynamic.store.gc-interval", "100ms")
            .set("dynamic.store.tombstone-max-age", "1s")
    });
    let sent = std::time::Instant::now();
    server.announce("expiring", &storage_node()).await;
    server.unannounce("deleted").await;
    for key in ["expiring", "deleted"] {
        let gone_after =
            discovery_testkit::eventually(DEADLINE, &format!("{key} collected"), || async {
                let entry = server.raw_entry("dynamic", key).await;
                let elapsed = sent.elapsed();
                match entry {
                    None => Ok(elapsed),
                    Some(entry) => Err(format!("{entry} still there after {elapsed:?}")),
                }
            })
            .await;
        server.check(
            gone_after >= std::time::Duration::from_secs(1),
            format!("{key} collected {gone_after:?} after it was written, before its 1 s age"),
        );
    }
}

// A key two edits from a known one is a typo: the node refuses to start and suggests the
// key, instead of quietly using the default (issue 18). Its value is never printed.
// --strict-config refuses any unknown key; far-off keys otherwise only warn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistyped_key_stops_startup_and_strict_config_refuses_any_unknown_key() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = dir.path().join("config.properties");
    std::fs::write(
        &config,
        "node.environment=testing\nhttp-server.http.prot=8415\n",
    )
    .expect("write config.properties");
    let config_arg = config.display().to_string();
    let (status, output) = run_to_exit(None, &["--config", &config_arg]).await;
    assert!(!status.success(), "exited with {status}; output:\n{output}");
    assert!(
        output.contains("unknown key http-server.http.prot; did you mean http-server.http.port?"),
        "{output}"
    );
    assert!(!output.contains("listening on"), "{output}");

    let (status, output) = run_to_exit(
        None,
        &["--set", "internal-communication.shared-secrt=hunter2-e2e"],
    )
    .await;
    assert!(!status.success(), "exited with {status}; output:\n{output}");
    assert!(
        output.contains("did you mean internal-communication.shared-secret?"),
        "{output}"
    );
    assert!(
        !output.contains("hunter2-e2e"),
        "the value leaked:\n{output}"
    );

    let (status, output) = run_to_exit(
        None,
        &[
            "--strict-config",
            "--set",
            "http-server.log.path=var/log/x.log",
            "--set",
            "node.pool=general",
        ],
    )
    .await;
    assert!(!status.success(), "exited with {status}; output:\n{output}");
    assert!(
        output.contains("unknown key http-server.log.path (--strict-config"),
        "{output}"
    );
    assert!(
        !output.contains("node.pool"),
        "accepted airlift keys pass --strict-config:\n{output}"
    );

    // Without --strict-config the same foreign key only warns, and the node serves.
    let server = Server::start_with(discoveryd!(), |options| {
        options.set("http-server.log.path", "var/log/x.log")
    });
    let warning = server.log_line("http-server.log.path").await;
    server.check(warning.contains("WARN"), format!("warned: {warning}"));
}

// The bare discoveryd (no --config) listens on loopback only and says how to listen on
// every interface. (With --config, node.bind-ip defaults to 0.0.0.0 as in airlift: a unit
// test of the configuration, since a test must not listen on every interface.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_config_file_the_node_listens_on_loopback_only() {
    // By hand rather than with the test kit, which always passes node.bind-ip.
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    let mut child = tokio::process::Command::new(discoveryd!())
        .arg("--set")
        .arg(format!("store.data-dir={}", data.display()))
        .args(["--set", "http-server.http.port=0"])
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot start discoveryd");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let mut seen = String::new();
    let listening = tokio::time::timeout(DEADLINE, async {
        while let Ok(Some(line)) = lines.next_line().await {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("discoveryd listening on http://") {
                return Some(line);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .unwrap_or_else(|| panic!("no listening line:\n{seen}"));
    assert!(
        listening.contains("listening on http://127.0.0.1:"),
        "{listening}"
    );
    assert!(
        seen.contains("--set node.bind-ip=0.0.0.0 binds all interfaces"),
        "{seen}"
    );
    child.kill().await.expect("kill discoveryd");
}
