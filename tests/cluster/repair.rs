//! A node whose data was lost, started with `store.repair`: it refuses to answer lookups
//! for as long as no ready peer can fill it in, however long that is, and once ready it
//! lists everything its peers hold (the data-check part of the hardening issue; the
//! readiness rule itself is unit-tested in `readiness.rs`).

use anyhow::ensure;
use discovery_testkit::{eventually, Stop};
use reqwest::StatusCode;

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_repairing_node_answers_only_once_a_ready_peer_filled_it_in() {
    let mut c = cluster(3, &[]).await;
    let ids: Vec<String> = (0..20).map(|_| new_id()).collect();
    for (n, id) in ids.iter().enumerate() {
        announce(&c, 0, &format!("w{n}"), id).await;
    }
    let static_id = add_static(&c, 0, "db", "p").await;
    wait_listed_everywhere(&c, "db", "p", &static_id, DEADLINE).await;
    for id in &ids {
        wait_listed_everywhere(&c, TYPE, POOL, id, DEADLINE).await;
    }

    // n2 stops cleanly and loses its database; its peers go away too.
    for i in [1, 0, 2] {
        c.stop_in_runtime(i, Stop::Term);
    }
    let db = c.data_dir(1).join("db");
    std::fs::remove_dir_all(&db).expect("remove n2's database");
    c.set_for_next_start(1, "store.repair", "true");
    c.restart(1);
    let logs = c.node_logs(1);
    assert!(
        logs.contains("damaged data"),
        "the loss is reported:\n{logs}"
    );

    // Until a ready peer is reached it stays not ready, whatever the warm-up settings
    // (the harness turns warm-up and max-wait off): wait for two failed rounds with each
    // peer, then look.
    eventually(DEADLINE, "n2 to try both peers twice", || async {
        let status = status(&c, 1).await?;
        for peer in ["n1", "n3"] {
            let l = link(&status, peer, "dynamic")
                .ok_or_else(|| anyhow::anyhow!("no link to {peer}"))?;
            ensure!(l.syncs_failed >= 2, "{peer}: {l:?}");
        }
        anyhow::Ok(())
    })
    .await;
    let ready = c
        .client()
        .get(c.url(1, "/v1/health/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let reason = ready.text().await.unwrap_or_default();
    assert!(reason.contains("repairing"), "{reason}");
    let lookup = c
        .client()
        .get(c.url(1, &format!("/v1/service/{TYPE}")))
        .send()
        .await
        .expect("lookup");
    assert_eq!(
        lookup.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "no partial list served"
    );

    // A ready peer comes back: n2 fills in, and the first time it says ready it already
    // lists everything.
    c.restart(0);
    c.wait_ready(0, DEADLINE).await;
    eventually(CATCH_UP, "n2 ready with every entry", || async {
        let ready = c.client().get(c.url(1, "/v1/health/ready")).send().await?;
        ensure!(
            ready.status() == StatusCode::OK,
            "not ready yet: {}",
            ready.text().await?
        );
        let listed = service_ids(&c, 1, TYPE, POOL).await?;
        let missing: Vec<&String> = ids.iter().filter(|id| !listed.contains(id)).collect();
        assert!(
            missing.is_empty(),
            "n2 said ready while missing {missing:?}"
        );
        let statics = service_ids(&c, 1, "db", "p").await?;
        assert_eq!(
            statics,
            vec![static_id.clone()],
            "n2 said ready without the static service"
        );
        anyhow::Ok(())
    })
    .await;
}
