//! Replication over TLS: nodes listed in the inventory with `https://` URLs replicate
//! over HTTPS, verifying each other against `internal-communication.https.truststore.path`;
//! a node that does not trust its peers' CA cannot send them anything itself.

use anyhow::{ensure, Context};
use discovery_testkit::tls::{https_client, write_file, TestCa};
use discovery_testkit::{eventually, Cluster};

use crate::support::*;

/// Every peer of every node is addressed by its `https://` URL.
async fn assert_peers_use_https(c: &Cluster) {
    for i in 0..c.len() {
        let status = status(c, i).await.expect("status");
        assert_eq!(status.peers.len(), c.len() - 1, "{status:?}");
        for peer in &status.peers {
            assert!(
                peer.url.starts_with("https://"),
                "{} reaches {} by {}",
                c.node_id(i),
                peer.node_id,
                peer.url
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_listed_with_https_urls_replicates_over_tls() {
    let c = Cluster::start_with(options(3).with_https()).await;
    assert_peers_use_https(&c).await;

    let service = new_id();
    announce(&c, 0, "w1", &service).await;
    wait_listed_everywhere(&c, TYPE, POOL, &service, DEADLINE).await;
    // n1 pushed it to both peers itself, so over their https:// URLs.
    let status = status(&c, 0).await.expect("status");
    for peer in ["n2", "n3"] {
        let link = link(&status, peer, "dynamic").expect("link");
        assert!(link.pushed_entries >= 1, "{peer}: {link:?}");
    }
    c.wait_converged().await;

    // And a client trusting the cluster's CA reads it from n2 and n3 over HTTPS.
    let ca = c.ca_pem().expect("the cluster's CA");
    let client = https_client(&ca, DEADLINE);
    for i in [1, 2] {
        let url = c
            .https_url(i, &format!("/v1/service/{TYPE}/{POOL}"))
            .expect("an HTTPS URL");
        let set: serde_json::Value = client
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .unwrap_or_else(|e| panic!("GET {url}: {e:?}"))
            .json()
            .await
            .expect("a JSON service set");
        let ids: Vec<&str> = set["services"]
            .as_array()
            .expect("services")
            .iter()
            .filter_map(|s| s["id"].as_str())
            .collect();
        assert!(ids.contains(&service.as_str()), "{url}: {set}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_that_does_not_trust_its_peers_ca_cannot_push_to_them() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let stranger = dir.path().join("other-ca.pem");
    write_file(&stranger, &TestCa::new("not the cluster's CA").pem());
    let c = Cluster::start_with(options(3).with_https().set_of(
        2,
        "internal-communication.https.truststore.path",
        &stranger.display().to_string(),
    ))
    .await;
    assert_peers_use_https(&c).await;

    // n3's own requests fail the handshake: its pushes are counted as failures.
    let from_n3 = new_id();
    announce(&c, 2, "w3", &from_n3).await;
    eventually(DEADLINE, "n3's pushes to fail", || async {
        let status = status(&c, 2).await?;
        for peer in ["n1", "n2"] {
            let link = link(&status, peer, "dynamic").context("link")?;
            ensure!(link.push_failures >= 1, "{peer}: {link:?}");
            ensure!(link.pushed_entries == 0, "{peer}: {link:?}");
        }
        Ok::<_, anyhow::Error>(())
    })
    .await;
    // The others trust the CA of n3's certificate: their writes reach it, and their
    // anti-entropy rounds with n3 take what n3 holds.
    let from_n1 = new_id();
    announce(&c, 0, "w1", &from_n1).await;
    wait_listed_everywhere(&c, TYPE, POOL, &from_n1, DEADLINE).await;
    wait_listed_everywhere(&c, TYPE, POOL, &from_n3, DEADLINE).await;
    let status = status(&c, 2).await.expect("status");
    for peer in ["n1", "n2"] {
        let link = link(&status, peer, "dynamic").expect("link");
        assert_eq!(link.pushed_entries, 0, "{peer}: {link:?}");
    }
}
