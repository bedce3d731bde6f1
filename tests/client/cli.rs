//! The `discovery` binary: output and exit status of every subcommand against a real
//! server.

use std::io::{BufRead, BufReader};
use std::process::{Child, Output, Stdio};
use std::sync::mpsc;

use discovery_client::types::is_service_id;
use discovery_client::StoreName;
use serde_json::Value;

use crate::support::{
    assert_status, client_of, closed_uri, discovery_command, discoveryd, new_id, node,
    start_server, static_service, stderr, stdout, Server, DEADLINE,
};

/// Runs `discovery --uri <server> args...`.
fn run(server: &Server, args: &[&str]) -> Output {
    discovery_command()
        .arg("--uri")
        .arg(server.uri())
        .args(args)
        .output()
        .expect("cannot run discovery")
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(output)))
}

#[tokio::test(flavor = "multi_thread")]
async fn services_lists_dynamic_and_static_services_with_ages() {
    let server = start_server();
    let client = client_of(&server);
    client
        .announce("worker-1", &node("presto", "http://w1:8080"))
        .await
        .unwrap();
    client
        .add_static(&static_service("metastore", "thrift://m:9083"))
        .await
        .unwrap();

    let output = run(&server, &["services"]);
    assert_status(&output, 0);
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["TYPE", "POOL", "NODE", "LOCATION", "HTTP", "AGE"]);
    let metastore: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(metastore[0], "metastore");
    assert_eq!(metastore[2], "-", "static services have no node");
    assert_eq!(metastore[5], "-", "static services have no age");
    let worker: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(
        &worker[..5],
        [
            "presto",
            "general",
            "worker-1",
            "/somewhere/worker-1",
            "http://w1:8080"
        ]
    );
    assert!(
        worker[5].ends_with("ms") || worker[5].ends_with('s'),
        "age: {}",
        worker[5]
    );

    let output = run(
        &server,
        &["services", "presto", "general", "--output", "json"],
    );
    assert_status(&output, 0);
    let json = json_of(&output);
    assert_eq!(json["environment"], "testing");
    let services = json["services"].as_array().unwrap();
    assert_eq!(services.len(), 1);
    assert_eq!(services[0]["nodeId"], "worker-1");
    assert!(services[0]["ageMs"].as_i64().unwrap() >= 0);

    let output = run(&server, &["services", "nothing"]);
    assert_status(&output, 1);
    assert!(
        stderr(&output).contains("no services"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lookup_prints_values_for_scripts_and_exits_1_when_nothing_matches() {
    let server = start_server();
    let client = client_of(&server);
    client
        .announce("coord", &node("presto-coordinator", "http://coord:8080"))
        .await
        .unwrap();
    let mut etl = node("presto", "http://etl-1:8080");
    etl.pool = "etl".into();
    client.announce("etl-1", &etl).await.unwrap();

    let output = run(
        &server,
        &["lookup", "presto-coordinator", "--property", "http"],
    );
    assert_status(&output, 0);
    assert_eq!(stdout(&output), "http://coord:8080\n");

    let output = run(
        &server,
        &["lookup", "presto", "--pool", "etl", "--property", "http"],
    );
    assert_status(&output, 0);
    assert_eq!(stdout(&output), "http://etl-1:8080\n");

    let output = run(&server, &["lookup", "presto", "--property", "http"]);
    assert_status(&output, 1);
    assert_eq!(stdout(&output), "");
    assert!(
        stderr(&output).contains("no presto service in pool general"),
        "{}",
        stderr(&output)
    );

    let output = run(
        &server,
        &["lookup", "presto-coordinator", "--property", "https"],
    );
    assert_status(&output, 1);
    assert!(
        stderr(&output).contains("has the property 'https'"),
        "{}",
        stderr(&output)
    );

    let output = run(
        &server,
        &["lookup", "presto-coordinator", "--output", "json"],
    );
    assert_status(&output, 0);
    assert_eq!(json_of(&output)[0]["nodeId"], "coord");
}

#[tokio::test(flavor = "multi_thread")]
async fn announce_and_unannounce_from_flags() {
    let server = start_server();
    let client = client_of(&server);
    let id = "0b6c6a2e-3f5e-4a43-9d2e-6f3a3f0f6a01";
    let output = run(
        &server,
        &[
            "announce",
            "--node-id",
            "gw-1",
            "--type",
            "presto-gateway",
            "--pool",
            "edge",
            "--location",
            "/rack1/gw-1",
            "--property",
            "http=http://gw:8080",
            "--property",
            "version=2",
            "--id",
            id,
        ],
    );
    assert_status(&output, 0);
    assert_eq!(stdout(&output), format!("{id}\n"));
    let set = client.lookup("presto-gateway", "edge").await.unwrap();
    let service = &set.services[0];
    assert_eq!(service.id, id);
    assert_eq!(service.node_id.as_deref(), Some("gw-1"));
    assert_eq!(service.location.as_deref(), Some("/rack1/gw-1"));
    assert_eq!(service.properties["http"], "http://gw:8080");
    assert_eq!(service.properties["version"], "2");

    // Without --id a UUID derived from node id and type is printed: the same on every
    // re-announce (a loop must not churn ids), different for another node or type.
    let announce_gw = |node_id: &str, service_type: &str| {
        let output = run(
            &server,
            &["announce", "--node-id", node_id, "--type", service_type],
        );
        assert_status(&output, 0);
        let id = stdout(&output).trim().to_owned();
        assert!(is_service_id(&id), "{id}");
        id
    };
    let first = announce_gw("gw-2", "presto-gateway");
    assert_eq!(announce_gw("gw-2", "presto-gateway"), first, "stable id");
    let listed = client.lookup("presto-gateway", "general").await.unwrap();
    assert!(listed.services.iter().any(|s| s.id == first), "{listed:?}");
    assert_ne!(announce_gw("gw-3", "presto-gateway"), first);
    // (Replaces gw-2's presto-gateway announcement.)
    assert_ne!(announce_gw("gw-2", "jmx"), first);

    let output = run(&server, &["unannounce", "--node-id", "gw-1"]);
    assert_status(&output, 0);
    assert!(client
        .lookup("presto-gateway", "edge")
        .await
        .unwrap()
        .services
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn announce_and_unannounce_from_a_put_body_file() {
    let server = start_server();
    let client = client_of(&server);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("node.json");
    let id = new_id();
    let body = serde_json::json!({
        "environment": "testing", "nodeId": "file-node", "pool": "general", "location": "/file",
        "services": [{"id": id, "type": "presto", "properties": {"http": "http://f:8080", "coordinator": false}}]
    });
    std::fs::write(&file, serde_json::to_vec(&body).unwrap()).unwrap();
    let path = file.to_str().unwrap();

    let output = run(&server, &["announce", "--file", path]);
    assert_status(&output, 0);
    assert_eq!(stdout(&output).trim(), id);
    let set = client.lookup("presto", "general").await.unwrap();
    assert_eq!(set.services[0].node_id.as_deref(), Some("file-node"));
    assert_eq!(set.services[0].properties["coordinator"], "false");

    let output = run(&server, &["unannounce", "--file", path]);
    assert_status(&output, 0);
    assert!(client
        .lookup("presto", "general")
        .await
        .unwrap()
        .services
        .is_empty());

    // A file for another environment: the server's own one-line reason, exit 3.
    let other = dir.path().join("other.json");
    let mut body = body;
    body["environment"] = "production".into();
    std::fs::write(&other, serde_json::to_vec(&body).unwrap()).unwrap();
    let output = run(&server, &["announce", "--file", other.to_str().unwrap()]);
    assert_status(&output, 3);
    assert!(
        stderr(&output).contains("Environment mismatch. Expected: testing, Provided: production"),
        "{}",
        stderr(&output)
    );

    // A malformed file is a usage error, caught before anything is sent.
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        br#"{"nodeId":"x","pool":"general","services":[{"id":"nope","type":"t","properties":{}}]}"#,
    )
    .unwrap();
    let output = run(&server, &["announce", "--file", bad.to_str().unwrap()]);
    assert_status(&output, 2);
    assert!(
        stderr(&output).contains("services[0].id must be a UUID"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn static_add_list_and_rm() {
    let server = start_server();
    let client = client_of(&server);
    let output = run(
        &server,
        &[
            "static",
            "add",
            "--type",
            "metastore",
            "--property",
            "thrift=thrift://m:9083",
            "--location",
            "/dc1",
        ],
    );
    assert_status(&output, 0);
    let id = stdout(&output).trim().to_owned();
    assert!(is_service_id(&id), "{id}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ldap.json");
    std::fs::write(
        &file,
        br#"{"type":"ldap","pool":"auth","properties":{"url":"ldap://dir:389"}}"#,
    )
    .unwrap();
    let output = run(
        &server,
        &[
            "static",
            "add",
            "--file",
            file.to_str().unwrap(),
            "--output",
            "json",
        ],
    );
    assert_status(&output, 0);
    let ldap = json_of(&output);
    assert_eq!(ldap["type"], "ldap");
    assert_eq!(ldap["pool"], "auth");
    let ldap_id = ldap["id"].as_str().unwrap().to_owned();

    let output = run(&server, &["static", "list"]);
    assert_status(&output, 0);
    let text = stdout(&output);
    assert!(text.starts_with("ID"), "{text}");
    assert!(
        text.contains(&id) && text.contains("thrift=thrift://m:9083") && text.contains("/dc1"),
        "{text}"
    );
    assert!(text.contains(&ldap_id), "{text}");

    let output = run(&server, &["static", "rm", &id]);
    assert_status(&output, 0);
    assert_eq!(stdout(&output), format!("deleted {id}\n"));
    let left = client.list_static().await.unwrap().services;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, ldap_id);

    // Removing what is not there is reported, with exit 1.
    let output = run(&server, &["static", "rm", &id]);
    assert_status(&output, 1);
    assert!(
        stderr(&output).contains(&format!("no static service {id}")),
        "{}",
        stderr(&output)
    );

    let output = run(&server, &["static", "rm", "not-a-uuid"]);
    assert_status(&output, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn store_dump_decodes_keys_values_and_tombstones() {
    let server = start_server();
    let client = client_of(&server);
    client
        .announce("alive", &node("presto", "http://a:8080"))
        .await
        .unwrap();
    client
        .announce("gone", &node("presto", "http://g:8080"))
        .await
        .unwrap();
    client.unannounce("gone").await.unwrap();
    let created = client
        .add_static(&static_service("metastore", "thrift://m:9083"))
        .await
        .unwrap();

    let output = run(&server, &["store", "dump"]);
    assert_status(&output, 0);
    let text = stdout(&output);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        [
            "STORE",
            "KEY",
            "SERVICES",
            "VERSION",
            "TIMESTAMP",
            "EXPIRES",
            "TOMBSTONE"
        ]
    );
    let row = |key: &str| {
        rows.iter()
            .find(|r| r[1] == key)
            .unwrap_or_else(|| panic!("{key} in\n{text}"))
    };
    let alive = row("alive");
    assert_eq!(alive[0], "dynamic");
    assert_eq!(alive[2], "presto/general");
    assert!(alive[4].ends_with('Z'), "timestamp {}", alive[4]);
    assert!(alive[5].ends_with('s'), "expires {}", alive[5]);
    assert_eq!(alive[6], "no");
    let gone = row("gone");
    assert_eq!((gone[2], gone[5], gone[6]), ("-", "-", "yes"));
    let metastore = row(&created.id);
    assert_eq!(
        (metastore[0], metastore[2], metastore[5]),
        ("static", "metastore/general", "never")
    );

    let output = run(&server, &["store", "dump", "dynamic", "--output", "json"]);
    assert_status(&output, 0);
    let entries = json_of(&output);
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 2, "only the dynamic store: {entries:?}");
    let alive = entries.iter().find(|e| e["key"] == "alive").unwrap();
    assert_eq!(alive["services"][0]["properties"]["http"], "http://a:8080");
    assert_eq!(alive["store"], "dynamic");
    assert!(alive["expiresInMs"].as_i64().unwrap() > 0);
    let raw = client.store_dump(StoreName::Dynamic).await.unwrap();
    let raw_alive = raw.iter().find(|e| e.key == b"alive").unwrap();
    assert_eq!(alive["version"], raw_alive.version.sequence);

    let output = run(&server, &["store", "dump", "elsewhere"]);
    assert_status(&output, 2);
}

/// Reads a child's stdout line by line on a thread, so the test can wait for a line
/// with a deadline.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn next_line(lines: &mpsc::Receiver<String>) -> String {
    lines
        .recv_timeout(DEADLINE)
        .expect("no output line before the deadline")
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_prints_each_change_and_exits_after_count() {
    let server = start_server();
    let client = client_of(&server);
    client
        .announce("c1", &node("presto-coordinator", "http://c1:8080"))
        .await
        .unwrap();

    let mut child = discovery_command()
        .args([
            "--uri",
            &server.uri(),
            "watch",
            "presto-coordinator",
            "--count",
            "2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut child);
    let header = next_line(&lines);
    assert!(
        header.starts_with("# watching presto-coordinator/general"),
        "{header}"
    );
    assert!(header.ends_with("1 service(s)"), "{header}");
    let initial = next_line(&lines);
    assert!(
        initial.starts_with("= ") && initial.contains("node=c1"),
        "{initial}"
    );

    // The coordinator moves: first the new one appears, then the old one goes.
    client
        .announce("c2", &node("presto-coordinator", "http://c2:8080"))
        .await
        .unwrap();
    let added = next_line(&lines);
    assert!(
        added.contains(" + ") && added.contains("http=http://c2:8080"),
        "{added}"
    );
    client.unannounce("c1").await.unwrap();
    let removed = next_line(&lines);
    assert!(
        removed.contains(" - ") && removed.contains("node=c1"),
        "{removed}"
    );

    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "watch must exit after --count changes"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_json_prints_one_object_per_line() {
    let server = start_server();
    let client = client_of(&server);
    let mut child = discovery_command()
        .args([
            "--uri",
            &server.uri(),
            "--output",
            "json",
            "watch",
            "gateway",
            "--count",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut child);
    let initial: Value = serde_json::from_str(&next_line(&lines)).unwrap();
    assert_eq!(initial["event"], "initial");
    assert_eq!(initial["services"].as_array().unwrap().len(), 0);
    client
        .announce("g1", &node("gateway", "http://g1:8080"))
        .await
        .unwrap();
    let change: Value = serde_json::from_str(&next_line(&lines)).unwrap();
    assert_eq!(change["event"], "change");
    assert_eq!(change["added"][0]["nodeId"], "g1");
    assert_eq!(change["services"].as_array().unwrap().len(), 1);
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn an_unreachable_server_is_named_and_exits_3() {
    let uri = closed_uri();
    for args in [
        vec!["services"],
        vec!["lookup", "presto"],
        vec!["announce", "--node-id", "n", "--type", "t"],
        vec!["unannounce", "--node-id", "n"],
        vec!["static", "list"],
        vec!["store", "dump"],
        vec!["watch", "presto", "--count", "1"],
    ] {
        let output = discovery_command()
            .arg("--uri")
            .arg(&uri)
            .args(&args)
            .output()
            .unwrap();
        assert_status(&output, 3);
        let err = stderr(&output);
        assert!(
            err.contains(&uri) && err.contains("may be down"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn the_uri_comes_from_discovery_uri_and_lists_fail_over() {
    let server = start_server();
    let output = discovery_command()
        .env(
            "DISCOVERY_URI",
            format!("{},{}", closed_uri(), server.uri()),
        )
        .args(["services"])
        .output()
        .unwrap();
    assert_status(&output, 0);

    let output = discovery_command()
        .env("DISCOVERY_URI", server.uri())
        .env("DISCOVERY_ENVIRONMENT", "production")
        .args(["lookup", "presto"])
        .output()
        .unwrap();
    assert_status(&output, 3);
    assert!(
        stderr(&output).contains("Expected environment to be production, but was testing"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn usage_errors_exit_2_and_help_has_examples() {
    for args in [
        vec!["lookup"],
        vec![
            "announce",
            "--node-id",
            "n",
            "--type",
            "t",
            "--property",
            "novalue",
        ],
        vec!["announce", "--node-id", "n", "--type", "t", "--id", "123"],
        vec!["static", "rm"],
        vec!["--output", "yaml", "services"],
        vec!["--uri", "localhost:8411", "services"],
        vec!["cluster", "frobnicate"],
    ] {
        let output = discovery_command().args(&args).output().unwrap();
        assert_status(&output, 2);
    }
    for args in [
        vec!["--help"],
        vec!["services", "--help"],
        vec!["lookup", "--help"],
        vec!["announce", "--help"],
        vec!["unannounce", "--help"],
        vec!["static", "--help"],
        vec!["static", "add", "--help"],
        vec!["static", "list", "--help"],
        vec!["static", "rm", "--help"],
        vec!["store", "--help"],
        vec!["store", "dump", "--help"],
        vec!["watch", "--help"],
        vec!["cluster", "--help"],
        vec!["cluster", "status", "--help"],
    ] {
        let output = discovery_command().args(&args).output().unwrap();
        assert_status(&output, 0);
        assert!(
            stdout(&output).contains("Examples:"),
            "{args:?}:\n{}",
            stdout(&output)
        );
    }
}

/// Runs `discovery --uri <uri> args...` against any URI.
fn run_at(uri: &str, args: &[&str]) -> Output {
    discovery_command()
        .arg("--uri")
        .arg(uri)
        .args(args)
        .output()
        .expect("cannot run discovery")
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_status_shows_every_node_and_exits_1_when_one_is_down() {
    let mut cluster = discovery_testkit::Cluster::start(discoveryd!(), 3, &[]).await;
    cluster.wait_converged().await;
    let uri = cluster.base_url(0);

    let output = run_at(&uri, &["cluster", "status"]);
    assert_status(&output, 0);
    let text = stdout(&output);
    assert!(text.contains("cluster: healthy"), "{text}");
    for i in 0..3 {
        assert!(text.contains(cluster.node_id(i)), "{text}");
    }

    let json = json_of(&run_at(&uri, &["cluster", "status", "--output", "json"]));
    let nodes = json["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 3, "{json}");
    assert!(
        nodes
            .iter()
            .all(|n| n["reachable"] == true && n["ready"] == true),
        "{json}"
    );
    assert!(nodes.iter().all(|n| n["staticAgrees"] == true), "{json}");
    assert_eq!(json["degraded"], false);

    cluster.kill(2);
    let output = run_at(&uri, &["cluster", "status"]);
    assert_status(&output, 1);
    let text = stdout(&output);
    assert!(text.contains("cluster: DEGRADED"), "{text}");
    let down = text
        .lines()
        .find(|line| line.starts_with(cluster.node_id(2)))
        .unwrap_or_else(|| panic!("no line for the killed node:\n{text}"));
    assert!(down.split_whitespace().nth(2) == Some("no"), "{down}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_status_of_a_standalone_node_lists_just_it() {
    let server = start_server();
    let output = run(&server, &["cluster", "status"]);
    assert_status(&output, 0);
    let text = stdout(&output);
    assert!(text.contains("inventory: none (standalone node)"), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.contains("http://")).count(),
        1,
        "{text}"
    );
}

#[test]
fn cluster_status_of_an_unreachable_server_exits_3() {
    let output = run_at(&closed_uri(), &["cluster", "status"]);
    assert_status(&output, 3);
    assert!(
        stderr(&output).contains("may be down"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_uri_without_a_scheme_gets_a_hint() {
    let server = start_server();
    let bare = server.uri().trim_start_matches("http://").to_owned();
    let output = run_at(&bare, &["services"]);
    assert_status(&output, 2);
    assert!(
        stderr(&output).contains(&format!("did you mean http://{bare}?")),
        "{}",
        stderr(&output)
    );
    // Followed, the hint works.
    assert_status(&run_at(&format!("http://{bare}"), &["services"]), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_status_counts_live_entries_and_tombstones_apart() {
    let server = start_server();
    let client = client_of(&server);
    for i in 0..6 {
        client
            .announce(&format!("n{i}"), &node("worker", "http://w:8080"))
            .await
            .unwrap();
    }
    for i in 1..6 {
        client.unannounce(&format!("n{i}")).await.unwrap();
    }
    let id = client
        .add_static(&static_service("ldap", "ldap://dir:389"))
        .await
        .unwrap()
        .id;
    client.delete_static(&id).await.unwrap();

    let json = json_of(&run(&server, &["cluster", "status", "--output", "json"]));
    let me = &json["nodes"][0];
    assert_eq!(me["dynamicLive"], 1, "{json}");
    assert_eq!(me["dynamicTombstones"], 5, "{json}");
    assert_eq!(
        me["dynamicEntries"], 6,
        "the status endpoint's total: {json}"
    );
    assert_eq!(me["staticLive"], 0, "{json}");
    assert_eq!(me["staticTombstones"], 1, "{json}");

    let output = run(&server, &["cluster", "status"]);
    assert_status(&output, 0);
    let text = stdout(&output);
    let header: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("NODE"))
        .unwrap_or_else(|| panic!("no header:\n{text}"))
        .split_whitespace()
        .collect();
    let row: Vec<&str> = text
        .lines()
        .find(|l| l.contains(&server.uri()))
        .unwrap_or_else(|| panic!("no row:\n{text}"))
        .split_whitespace()
        .collect();
    let column = |name: &str| {
        let at = header.iter().position(|h| *h == name).unwrap();
        row[at]
    };
    assert_eq!(column("DYNAMIC"), "1", "{text}");
    assert_eq!(column("STATIC"), "0", "{text}");
    assert_eq!(column("TOMBSTONES"), "5+1", "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_count_counts_changed_services_not_refreshes() {
    let server = start_server();
    let client = client_of(&server);
    let mut child = discovery_command()
        .args(["--uri", &server.uri(), "watch", "worker", "--count", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut child);
    let header = next_line(&lines);
    assert!(header.ends_with("0 service(s)"), "{header}");

    // One PUT with two services: one refresh, two changes.
    let mut two = node("worker", "http://a:8080");
    two.services.push(discovery_client::service(
        "worker",
        [("http", "http://b:8080")],
    ));
    client.announce("w1", &two).await.unwrap();
    for _ in 0..2 {
        let line = next_line(&lines);
        assert!(line.contains(" + "), "{line}");
    }
    client
        .announce("w2", &node("worker", "http://c:8080"))
        .await
        .unwrap();
    let third = next_line(&lines);
    assert!(
        third.contains(" + ") && third.contains("http=http://c:8080"),
        "{third}"
    );
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0), "exits after 3 changes");
    assert!(
        lines.recv_timeout(DEADLINE).is_err(),
        "nothing printed after the third change"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_count_stops_within_a_refresh() {
    let server = start_server();
    let client = client_of(&server);
    let mut child = discovery_command()
        .args(["--uri", &server.uri(), "watch", "worker", "--count", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut child);
    next_line(&lines);
    let mut two = node("worker", "http://a:8080");
    two.services.push(discovery_client::service(
        "worker",
        [("http", "http://b:8080")],
    ));
    client.announce("w1", &two).await.unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    // The child has exited: the reader ends at EOF, so this collects every line left.
    let printed: Vec<String> = lines.iter().collect();
    assert_eq!(printed.len(), 1, "exactly one change line: {printed:?}");
    assert!(printed[0].contains(" + "), "{printed:?}");
}
