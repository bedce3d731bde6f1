//! `service-inventory.uri=dns:NAME:PORT` against real processes: three nodes whose only
//! inventory is a name resolving to their three addresses find each other by node id,
//! replicate, and follow the name when an address leaves it and comes back.
//!
//! The name is resolved by the system resolver, so the test gives every node a private
//! `/etc/hosts`: each node runs as `unshare --mount sh -c 'mount --bind HOSTS /etc/hosts
//! && exec discoveryd ...'` (root, util-linux). The bind mount shares the file's inode, so
//! rewriting HOSTS in place changes what every node resolves. The test fails, never
//! skips, when that cannot be done here. The cluster has a shared secret, so the probes
//! (`GET /v1/replication/status` of every address) must be signed to be answered.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use anyhow::ensure;
use discovery_testkit::{eventually, ports, Cluster};

use crate::support::*;

const NAME: &str = "discovery-peers.test";
const SECRET: &str = "dns-inventory-shared-secret-0123456789";
/// The harness's own client sends it, so its status polls work with the secret set.
const OPERATOR: &str = "dns-inventory-operator-0123456789abcdef";

/// Three loopback addresses outside the testkit's `127.{2..=251}.x.x` blocks (its
/// clusters run in parallel in this binary), varied by the process id.
fn node_ips() -> [String; 3] {
    let third = std::process::id() % 250 + 1;
    [1, 2, 3].map(|n| format!("127.253.{third}.{n}"))
}

/// One port free on all three addresses: every node listens on it, as `dns:NAME:PORT`
/// has one port for every address.
fn common_port(ips: &[String]) -> u16 {
    for _ in 0..20 {
        let port = ports::free_port(&ips[0]);
        let free = ips
            .iter()
            .all(|ip| std::net::TcpListener::bind((ip.as_str(), port)).is_ok());
        if free {
            return port;
        }
    }
    panic!("no port free on every one of {ips:?}");
}

fn write_hosts(path: &Path, ips: &[&String]) {
    let mut text = String::from("127.0.0.1 localhost\n");
    for ip in ips {
        text.push_str(&format!("{ip} {NAME}\n"));
    }
    // In place (same inode): the nodes' bind mounts see the new content.
    std::fs::write(path, text).expect("write the hosts file");
}

/// The command prefix that gives a node `hosts` as its /etc/hosts.
fn wrapper(hosts: &Path) -> Vec<String> {
    let script = format!(
        "mount --bind '{}' /etc/hosts && exec \"$0\" \"$@\"",
        hosts.display()
    );
    ["unshare", "--mount", "sh", "-c", &script]
        .map(str::to_owned)
        .to_vec()
}

/// Fails with what is missing unless a private /etc/hosts works here.
fn check_private_hosts_work(hosts: &Path, first_ip: &str) {
    let mut prefix = wrapper(hosts);
    let program = prefix.remove(0);
    let output = Command::new(&program)
        .args(&prefix)
        .args(["getent", "ahosts", NAME])
        .output();
    let hint = "this test runs each node with a private /etc/hosts through `unshare --mount` \
                and `mount --bind`: it needs root (or CAP_SYS_ADMIN) and util-linux's unshare \
                (apt-get install -y util-linux)";
    match output {
        Err(e) => panic!("cannot run {program}: {e}; {hint}"),
        Ok(out) => assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains(first_ip),
            "a private /etc/hosts does not work here ({}): {}{}; {hint}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

async fn peer_ids(c: &Cluster, i: usize) -> anyhow::Result<BTreeSet<String>> {
    Ok(status(c, i)
        .await?
        .peers
        .into_iter()
        .map(|p| p.node_id)
        .collect())
}

/// Waits until each node of `wanted` lists exactly those peers.
async fn wait_peer_ids(c: &Cluster, wanted: &[(usize, &[&str])]) {
    eventually(DEADLINE, &format!("peers {wanted:?}"), || async {
        for (i, expected) in wanted {
            let listed = peer_ids(c, *i).await?;
            let expected: BTreeSet<String> = expected.iter().map(|s| (*s).to_owned()).collect();
            ensure!(
                listed == expected,
                "{} lists {listed:?}, expected {expected:?}",
                c.node_id(*i)
            );
        }
        Ok::<_, anyhow::Error>(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn nodes_found_through_a_dns_name_replicate_and_follow_the_name() {
    let ips = node_ips();
    let dir = tempfile::tempdir().expect("temporary directory");
    let hosts = dir.path().join("hosts");
    write_hosts(&hosts, &ips.iter().collect::<Vec<_>>());
    check_private_hosts_work(&hosts, &ips[0]);
    let tokens_file = dir.path().join("operator-tokens");
    std::fs::write(&tokens_file, format!("{OPERATOR} write\n")).expect("write tokens");

    let port = common_port(&ips);
    let uri = format!("dns:{NAME}:{port}");
    let mut options = options(3)
        .set("service-inventory.uri", &uri)
        .set("http-server.http.port", &port.to_string())
        .set("internal-communication.shared-secret", SECRET)
        .set(
            "discovery.operator-tokens-file",
            &tokens_file.display().to_string(),
        )
        .client_header("authorization", &format!("Bearer {OPERATOR}"));
    for (i, ip) in ips.iter().enumerate() {
        options = options
            .set_of(i, "node.bind-ip", ip)
            .wrap_of(i, &wrapper(&hosts));
    }
    // Waits until every node lists the others at http://IP:PORT, by node id, exactly as
    // an inventory file listing them would make it.
    let c = Cluster::start_with(options).await;
    for (i, ip) in ips.iter().enumerate() {
        assert_eq!(c.base_url(i), format!("http://{ip}:{port}"));
        let status = status(&c, i).await.expect("status");
        assert_eq!(status.inventory.as_deref(), Some(uri.as_str()));
        assert_eq!(status.inventory_error, None);
        assert!(
            status.peers.iter().all(|p| p.node_id != c.node_id(i)),
            "{} lists itself: {:?}",
            c.node_id(i),
            status.peers
        );
    }

    let service = new_id();
    announce(&c, 0, "w1", &service).await;
    wait_listed_everywhere(&c, TYPE, POOL, &service, DEADLINE).await;

    // n3's address leaves the name: n1 and n2 stop replicating with it. (n3 still
    // resolves the other two.)
    write_hosts(&hosts, &[&ips[0], &ips[1]]);
    wait_peer_ids(&c, &[(0, &["n2"]), (1, &["n1"]), (2, &["n1", "n2"])]).await;

    // It comes back: found again, and what it takes is replicated to both.
    write_hosts(&hosts, &ips.iter().collect::<Vec<_>>());
    wait_peer_ids(
        &c,
        &[(0, &["n2", "n3"]), (1, &["n1", "n3"]), (2, &["n1", "n2"])],
    )
    .await;
    let later = new_id();
    announce(&c, 2, "w3", &later).await;
    wait_listed_everywhere(&c, TYPE, POOL, &later, DEADLINE).await;
}

/// A name or port that cannot be used stops the start with an error naming the key.
#[test]
fn a_bad_dns_inventory_stops_the_start_naming_the_key() {
    let dir = tempfile::tempdir().expect("temporary directory");
    for (uri, why) in [
        ("dns:bad_name:8411", "may hold only letters, digits and '-'"),
        (
            "dns:discovery-headless:0",
            "must be a number from 1 to 65535",
        ),
        ("dns:discovery-headless", "expected dns:NAME:PORT"),
    ] {
        let output = Command::new(discovery_testkit::discoveryd!())
            .args(["--set", &format!("store.data-dir={}", dir.path().display())])
            .args(["--set", "http-server.http.port=0"])
            .args(["--set", &format!("service-inventory.uri={uri}")])
            .output()
            .expect("run discoveryd");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{uri}: started");
        assert!(
            stderr.contains("service-inventory.uri") && stderr.contains(why),
            "{uri}: {stderr}"
        );
    }
}
