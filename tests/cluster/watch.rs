//! Blocking lookups across replication: a write on one node wakes a lookup held on
//! another once the entry arrives there (case: watch across peers).

use reqwest::StatusCode;

use crate::support::{announce, cluster, new_id, wait_listed_everywhere, DEADLINE, POOL, TYPE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_node_wakes_a_watcher_on_its_peer() {
    let c = cluster(2, &[]).await;
    let first = new_id();
    announce(&c, 0, "w1", &first).await;
    wait_listed_everywhere(&c, TYPE, POOL, &first, DEADLINE).await;

    let path = format!("/v1/service/{TYPE}/{POOL}");
    let current = c.client().get(c.url(1, &path)).send().await.unwrap();
    assert_eq!(current.status(), StatusCode::OK);
    let tag = current.headers()["etag"].to_str().unwrap().to_owned();

    let held = {
        let request = c
            .client()
            .get(c.url(1, &format!("{path}?wait=60s")))
            .header("If-None-Match", &tag);
        tokio::spawn(async move {
            let response = request.send().await.expect("the held lookup");
            let status = response.status();
            let etag = response.headers().get("etag").cloned();
            (status, etag, response.text().await.unwrap_or_default())
        })
    };
    let second = new_id();
    announce(&c, 0, "w2", &second).await;

    let (status, etag, body) = tokio::time::timeout(DEADLINE, held)
        .await
        .unwrap_or_else(|_| panic!("the watcher on {} was not woken", c.node_id(1)))
        .expect("the request task");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains(&second),
        "lists the replicated service: {body}"
    );
    assert!(body.contains(&first), "{body}");
    assert_ne!(
        etag.as_ref().and_then(|t| t.to_str().ok()),
        Some(tag.as_str())
    );
}
