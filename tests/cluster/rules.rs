//! The entry rules hold across servers: tombstones guard against older writes, expiry
//! follows the origin's timestamp, renewals travel as renewals (cases 63, 64).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use discovery_testkit::announcements::standard_announcement;
use discovery_testkit::eventually;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

/// Case 63: after a delete has reached every node, an older write for the same key posted
/// to a node's raw store (as a replicating peer would) is ignored there, and nothing brings
/// it back anywhere over the following anti-entropy rounds.
#[tokio::test(flavor = "multi_thread")]
async fn an_older_write_cannot_resurrect_a_deleted_announcement() {
    let c = cluster(3, &[]).await;
    let service = new_id();
    announce(&c, 0, "w1", &service).await;
    let announced = wait_same_entry_everywhere(&c, 0, "dynamic", "w1").await;
    assert_eq!(
        c.unannounce(1, "w1").await.expect("delete"),
        StatusCode::NO_CONTENT
    );
    wait_gone_everywhere(&c, TYPE, POOL, &service).await;
    let tombstone = wait_same_entry_everywhere(&c, 1, "dynamic", "w1").await;
    assert_eq!(tombstone.value, None);

    // Newer than the announcement, older than the tombstone, and not expired.
    let stale_version = tombstone.version - 1;
    assert!(stale_version >= announced.version);
    let value = announced.value.as_ref().expect("announced value");
    let batch = json!([{
        "key": BASE64.encode("w1"),
        "value": BASE64.encode(value),
        "version": {"sequence": stale_version},
        "timestamp": now_ms(),
        "maxAgeInMs": 30_000,
    }]);
    let (status, body) = c
        .post_json(0, "/v1/store/dynamic", &batch)
        .await
        .expect("POST /v1/store/dynamic");
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let on_target = raw_entry(&c, 0, "dynamic", "w1").await.expect("raw");
    assert_eq!(on_target.as_ref(), Some(&tombstone), "the tombstone stays");

    // Give replication every chance to spread the stale write, then look everywhere.
    wait_sync_rounds(&c, 2).await;
    for i in 0..3 {
        let ids = service_ids(&c, i, TYPE, POOL).await.expect("lookup");
        assert!(
            !ids.contains(&service),
            "{} resurrected it: {ids:?}",
            c.node_id(i)
        );
        let entry = raw_entry(&c, i, "dynamic", "w1").await.expect("raw");
        assert_eq!(entry.as_ref(), Some(&tombstone), "{}", c.node_id(i));
    }
    c.wait_converged().await;
}

/// Case 63 for static services (airlift/discovery#18: the Java static store applies no
/// version check): an older copy of a deleted static service posted to a node's raw store
/// does not bring it back anywhere.
#[tokio::test(flavor = "multi_thread")]
async fn an_older_write_cannot_resurrect_a_deleted_static_service() {
    let c = cluster(3, &[]).await;
    let id = add_static(&c, 0, "db", "p").await;
    let created = wait_same_entry_everywhere(&c, 0, "static", &id).await;
    assert_eq!(
        c.delete_static(1, &id).await.expect("delete"),
        StatusCode::NO_CONTENT
    );
    wait_gone_everywhere(&c, "db", "p", &id).await;
    let tombstone = wait_same_entry_everywhere(&c, 1, "static", &id).await;
    assert_eq!(tombstone.value, None);

    let value = created.value.as_ref().expect("created value");
    let batch = json!([{
        "key": BASE64.encode(&id),
        "value": BASE64.encode(value),
        "version": {"sequence": tombstone.version - 1},
        "timestamp": now_ms(),
    }]);
    let (status, body) = c
        .post_json(2, "/v1/store/static", &batch)
        .await
        .expect("POST /v1/store/static");
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    wait_sync_rounds(&c, 2).await;
    for i in 0..3 {
        let ids = service_ids(&c, i, "db", "p").await.expect("lookup");
        assert!(
            !ids.contains(&id),
            "{} resurrected it: {ids:?}",
            c.node_id(i)
        );
        let entry = raw_entry(&c, i, "static", &id).await.expect("raw");
        assert_eq!(entry.as_ref(), Some(&tombstone), "{}", c.node_id(i));
    }
    c.wait_converged().await;
}

/// Case 64: with `discovery.max-age=2s`, the copy of an announcement on another server
/// carries the origin's timestamp and expires by it, without further writes. Checked
/// both ways on every observation: listed only while the origin timestamp + max age has
/// not passed, gone only once it has.
#[tokio::test(flavor = "multi_thread")]
async fn expiry_follows_the_origin_timestamp_on_every_server() {
    let c = cluster(
        2,
        &[
            ("discovery.max-age", "2s"),
            ("dynamic.store.gc-interval", "500ms"),
        ],
    )
    .await;
    let service = new_id();
    announce(&c, 0, "w1", &service).await;
    let origin = raw_entry(&c, 0, "dynamic", "w1")
        .await
        .expect("raw")
        .expect("entry on the origin");
    assert_eq!(origin.max_age_in_ms, Some(2000));
    let copy = wait_same_entry_everywhere(&c, 0, "dynamic", "w1").await;
    assert_eq!(
        copy.timestamp, origin.timestamp,
        "the origin's timestamp travels"
    );
    assert_eq!(copy.max_age_in_ms, Some(2000));
    let expires_at = origin.timestamp + 2000;

    for i in [1, 0] {
        let node = c.node_id(i).to_owned();
        let verdict = eventually(DEADLINE, &format!("w1 expired on {node}"), || async {
            let before = now_ms();
            let ids = service_ids(&c, i, TYPE, POOL).await?;
            let after = now_ms();
            let listed = ids.contains(&service);
            // The server read its clock between `before` and `after`.
            if listed && before > expires_at {
                return Ok(Err(format!(
                    "{node} still lists it at {before}, after its expiry at {expires_at}"
                )));
            }
            if !listed && after <= expires_at {
                return Ok(Err(format!(
                    "{node} dropped it by {after}, before its expiry at {expires_at}"
                )));
            }
            anyhow::ensure!(
                !listed,
                "still listed at {before} (expires at {expires_at})"
            );
            Ok::<_, anyhow::Error>(Ok(()))
        })
        .await;
        verdict.unwrap_or_else(|e| panic!("{e}"));
    }

    // Garbage collection (every 500 ms, on each node's own schedule) removes the expired
    // entry everywhere, and anti-entropy does not bring it back: the replicas agree.
    let nodes = c.running();
    eventually(
        DEADLINE,
        "the expired entry collected everywhere",
        || async {
            for &i in &nodes {
                let entry = raw_entry(&c, i, "dynamic", "w1").await?;
                anyhow::ensure!(entry.is_none(), "{} holds {entry:?}", c.node_id(i));
            }
            Ok::<_, anyhow::Error>(())
        },
    )
    .await;
    c.wait_converged().await;
}

/// Re-announcing an unchanged body travels as renewals (value hashes), not as entries;
/// the peers' raw entries follow each new version.
#[tokio::test(flavor = "multi_thread")]
async fn re_announcements_are_pushed_as_renewals() {
    let c = cluster(3, &[]).await;
    let body = standard_announcement(&new_id(), TYPE);
    assert_eq!(
        c.announce(0, "w1", &body).await.expect("announce"),
        StatusCode::ACCEPTED
    );
    wait_same_entry_everywhere(&c, 0, "dynamic", "w1").await;
    let peers = ["n2", "n3"];
    let baseline = eventually(DEADLINE, "the first push done", || async {
        let status = status(&c, 0).await?;
        let mut counts = Vec::new();
        for peer in peers {
            let l = link(&status, peer, "dynamic").ok_or_else(|| anyhow::anyhow!("no {peer}"))?;
            anyhow::ensure!(l.pushed_entries >= 1 && l.queued == 0, "{peer}: {l:?}");
            counts.push((l.pushed_entries, l.pushed_renewals));
        }
        Ok::<_, anyhow::Error>(counts)
    })
    .await;

    let mut last_version = 0;
    for round in 0..3 {
        assert_eq!(
            c.announce(0, "w1", &body).await.expect("announce"),
            StatusCode::ACCEPTED,
            "re-announce {round}"
        );
        let entry = wait_same_entry_everywhere(&c, 0, "dynamic", "w1").await;
        assert!(entry.version > last_version);
        last_version = entry.version;
    }

    // Wait until the three re-announcements have been pushed (however coalesced), then
    // look at how they travelled.
    let status = eventually(
        DEADLINE,
        "the re-announcements pushed to every peer",
        || async {
            let status = status(&c, 0).await?;
            for (peer, (entries, renewals)) in peers.iter().zip(&baseline) {
                let l =
                    link(&status, peer, "dynamic").ok_or_else(|| anyhow::anyhow!("no {peer}"))?;
                anyhow::ensure!(
                    l.queued == 0 && l.pushed_entries + l.pushed_renewals > entries + renewals,
                    "{peer}: {l:?}, before: {entries} entries, {renewals} renewals"
                );
            }
            Ok::<_, anyhow::Error>(status)
        },
    )
    .await;
    for (peer, (entries, renewals)) in peers.iter().zip(&baseline) {
        let l = link(&status, peer, "dynamic").expect("link");
        assert_eq!(
            l.pushed_entries, *entries,
            "{peer}: a renewal went out as a full entry: {l:?}"
        );
        assert!(l.pushed_renewals > *renewals, "{peer}: {l:?}");
    }
}
