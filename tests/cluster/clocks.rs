//! A node whose clock is ten minutes fast (libfaketime, a real process with a wrong wall
//! clock) must not serve its wrong view: the cluster's majority tells it so through the
//! clock offsets measured on every anti-entropy round. It reports not ready and refuses
//! local writes with a 503 that says why; the two correct nodes log the disagreement at
//! ERROR and stay ready.

use std::path::PathBuf;

use discovery_testkit::eventually;
use reqwest::StatusCode;

use crate::support::*;

/// libfaketime's preload library: `FAKETIME_LIB`, or where Debian's `faketime` package
/// puts it. The test fails, rather than skips, without it (`.ci/run` installs it).
fn libfaketime() -> PathBuf {
    let path = std::env::var_os("FAKETIME_LIB")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"));
    assert!(
        path.exists(),
        "libfaketime not found at {}: install it (apt-get install faketime) or set FAKETIME_LIB",
        path.display()
    );
    path
}

async fn get(
    c: &discovery_testkit::Cluster,
    i: usize,
    path: &str,
) -> anyhow::Result<(StatusCode, String)> {
    let response = c.client().get(c.url(i, path)).send().await?;
    Ok((response.status(), response.text().await?))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_with_a_fast_clock_stops_serving_and_the_others_carry_on() {
    let fast = 2;
    let c = discovery_testkit::Cluster::start_with(
        options(3)
            .env_of(fast, "LD_PRELOAD", &libfaketime().display().to_string())
            .env_of(fast, "FAKETIME", "+600")
            // Only the wall clock is wrong; timers and intervals run normally.
            .env_of(fast, "FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    )
    .await;

    eventually(DEADLINE, "the fast node to refuse to serve", || async {
        let (status, body) = get(&c, fast, "/v1/health/ready").await?;
        anyhow::ensure!(
            status == StatusCode::SERVICE_UNAVAILABLE && body.contains("clock"),
            "{status} {body}"
        );
        anyhow::Ok(())
    })
    .await;
    let refused = c
        .announce(
            fast,
            "w1",
            &discovery_testkit::announcements::standard_announcement(&new_id(), TYPE),
        )
        .await
        .expect("announce on the fast node");
    assert_eq!(
        refused,
        StatusCode::SERVICE_UNAVAILABLE,
        "local writes refused"
    );
    let (status, body) = get(&c, fast, &format!("/v1/service/{TYPE}/{POOL}"))
        .await
        .expect("lookup");
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "no wrong view served: {body}"
    );
    assert!(
        body.contains("ms ahead of 2 of the 3 nodes"),
        "says by how much: {body}"
    );

    for i in [0, 1] {
        let (status, body) = get(&c, i, "/v1/health/ready").await.expect("ready check");
        assert_eq!(status, StatusCode::OK, "node {i} stays ready: {body}");
        announce(&c, i, &format!("worker-{i}"), &new_id()).await;
        // Each node judges from its own measurements, which may come a round after the
        // fast node's.
        eventually(
            DEADLINE,
            &format!("node {i} to log the disagreement"),
            || async {
                let logs = c.node_logs(i);
                anyhow::ensure!(
                    logs.contains("ERROR") && logs.contains("no majority says which is wrong"),
                    "node {i}:\n{logs}"
                );
                anyhow::Ok(())
            },
        )
        .await;
    }
    let replication = crate::support::status(&c, 0).await.expect("status");
    let towards = link(&replication, c.node_id(fast), "dynamic").expect("a link to the fast node");
    let offset = towards.clock_offset_ms.expect("an offset was measured");
    assert!(
        (590_000..610_000).contains(&offset),
        "the fast node's clock minus ours: {offset} ms"
    );
}
