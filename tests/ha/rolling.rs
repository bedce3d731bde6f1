//! Rolling restarts: every node in turn is stopped, left down for a lookup interval, and
//! started again on its data directory and address; the next one only once the restarted
//! node is ready and nginx routes to it again. No worker may go missing, no request may
//! fail, and a restarting node never answers a lookup with a partial list.
//!
//! That is the documented procedure (deploy/nginx/README.md, "Rolling restarts"): wait for
//! `/v1/health/ready`, then until nginx has the node back in rotation, which takes up to
//! `fail_timeout` (1 s in the shipped snippet) after its last failure
//! (see `Ha::wait_in_rotation`).

use crate::support::*;

async fn rolling_restart(name: &str, how: Stop) {
    let mut ha = Ha::start(name).await;
    for i in 0..NODES {
        ha.stop_node(i, how);
        // Down for a lookup interval: both coordinators look up and every worker renews
        // while it is away, so nginx has to route around it and its copy goes stale.
        ha.wait_lookups_after(ha.fleet.now() + LOOKUP_INTERVAL)
            .await;
        let ready_at = ha.start_node(i).await;
        // As an operator must: the next node only once nginx sends traffic to this one
        // again (see `wait_in_rotation`).
        ha.wait_in_rotation(i, ready_at).await;
        ha.assert_no_flaps(&format!("after restarting node {i} ({how:?})"));
    }
    // Anything a restart broke shows within one TTL: entries it failed to catch up on
    // would have expired, and every coordinator has looked up again since.
    let since = ha.fleet.now() + TTL + LOOKUP_INTERVAL;
    ha.wait_lookups_after(since).await;
    let report = ha.assert_no_flaps(&format!("rolling restart with {how:?}"));
    assert!(
        ha.fleet.convergence().is_converged(),
        "{}",
        ha.fleet.convergence()
    );
    // The scenario did exercise failover: requests sent to a stopped node were retried.
    assert!(ha.retried_requests() > 0, "{}", ha.traffic_summary());
    eprintln!(
        "rolling restart ({how:?}): {} requests, {} node-missing events, {} failed",
        report.requests.total(),
        report.missing_total,
        report.failed_requests()
    );
    eprintln!("{}", ha.traffic_summary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_with_sigterm_loses_no_worker_and_fails_no_request() {
    rolling_restart("term", Stop::Term).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_with_sigkill_loses_no_worker_and_fails_no_request() {
    rolling_restart("kill", Stop::Kill).await;
}
