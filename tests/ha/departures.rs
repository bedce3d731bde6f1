//! Workers that leave: a crashed one (no DELETE) disappears from every coordinator once
//! its TTL has passed and within one more lookup interval; an unannounced one within one
//! lookup interval. Nobody else goes missing meanwhile.

use std::time::Duration;

use anyhow::bail;
use discovery_sim::Change;
use discovery_testkit::eventually;

use crate::support::*;

/// A server's clock (ms since the epoch) and the test's monotonic clock may disagree by a
/// millisecond of rounding; nothing correct comes closer to the bound than this.
const CLOCK_SLACK: Duration = Duration::from_millis(50);

/// Waits until no coordinator lists `node_id`, for at most until `deadline` (fleet time).
async fn wait_gone_by(ha: &Ha, node_id: &str, deadline: Duration, what: &str) {
    let left = deadline.saturating_sub(ha.fleet.now());
    eventually(left, what, || async {
        let report = ha.fleet.report();
        for view in &report.coordinators {
            if view.node_ids.contains(node_id) {
                bail!(
                    "{} still lists {node_id} (last lookup {:?}, now {:?})",
                    view.coordinator,
                    view.lookup,
                    ha.fleet.now()
                );
            }
        }
        Ok(())
    })
    .await;
}

/// For each coordinator, when its list first lacked `node_id` after `after` (the answer
/// time of that lookup). Fails if a coordinator's list showed the node again later.
fn departures(ha: &Ha, node_id: &str, after: Duration) -> Vec<(String, Duration)> {
    let report = ha.fleet.report();
    let mut gone: Vec<(String, Duration)> = Vec::new();
    for change in report
        .view_changes
        .iter()
        .filter(|v| v.node_id == node_id && v.lookup.started >= after)
    {
        let left = gone.iter().any(|(c, _)| *c == change.coordinator);
        match change.change {
            Change::Left if !left => {
                gone.push((change.coordinator.clone(), change.lookup.finished))
            }
            Change::Joined if left => panic!(
                "{} listed {node_id} again after it had gone: {change:?}\n{}",
                change.coordinator,
                ha.diagnose(&report)
            ),
            _ => {}
        }
    }
    gone
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_worker_disappears_after_its_ttl_and_within_one_more_lookup() {
    let ha = Ha::start("crash").await;
    let stopped = ha.fleet.stop_worker(7).await.expect("stop worker 7");
    let node_id = stopped.node.node_id.clone();
    let last = stopped.node.last_announce.expect("worker 7 was announced");
    let bound = last.finished + TTL + LOOKUP_INTERVAL;
    wait_gone_by(
        &ha,
        &node_id,
        bound + MARGIN,
        &format!(
            "{node_id} to disappear within TTL + one lookup interval of its last announcement \
             ({last:?})"
        ),
    )
    .await;

    // Not before its TTL: each coordinator's first list without it was answered no
    // sooner than the TTL after its last announcement was sent.
    let gone = departures(&ha, &node_id, last.started);
    assert_eq!(gone.len(), COORDINATORS, "{gone:?}");
    for (coordinator, answered) in &gone {
        assert!(
            *answered + CLOCK_SLACK >= last.started + TTL,
            "{coordinator} lost {node_id} {:?} after its last announcement was sent, before \
             the TTL of {TTL:?}\n{}",
            answered.saturating_sub(last.started),
            ha.diagnose(&ha.fleet.report())
        );
    }

    // It stays gone, and nobody else went missing.
    let since = ha.fleet.now() + LOOKUP_INTERVAL * 2;
    ha.wait_lookups_after(since).await;
    assert_eq!(departures(&ha, &node_id, last.started).len(), COORDINATORS);
    ha.assert_no_flaps("while a worker crashed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unannounced_worker_disappears_within_one_lookup_interval() {
    let ha = Ha::start("leave").await;
    let left = ha.fleet.unannounce_worker(11).await.expect("unannounce");
    let node_id = left.node.node_id.clone();
    let delete = left.unannounce.expect("a clean shutdown unannounces");
    assert_eq!(delete.error, None, "DELETE failed: {delete:?}");
    wait_gone_by(
        &ha,
        &node_id,
        delete.span.finished + LOOKUP_INTERVAL + MARGIN,
        &format!("{node_id} to disappear within one lookup interval of its DELETE"),
    )
    .await;

    let since = ha.fleet.now() + LOOKUP_INTERVAL * 2;
    ha.wait_lookups_after(since).await;
    let gone = departures(&ha, &node_id, delete.span.started);
    assert_eq!(
        gone.len(),
        COORDINATORS,
        "every coordinator dropped it: {gone:?}"
    );
    ha.assert_no_flaps("while a worker left");
}
