//! The fleet against a small in-process discovery server: convergence, departures,
//! restarts, and that the node-missing detector does fire when a server misbehaves.
//! Nothing sleeps: waits are on the fleet's own change notifications, with deadlines.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use discovery_sim::{Change, Fleet, FleetConfig, Shutdown};
use support::{FakeServer, ENVIRONMENT};

const DEADLINE: Duration = Duration::from_secs(20);

fn config(server: &FakeServer, workers: usize) -> FleetConfig {
    FleetConfig::new(server.uri(), ENVIRONMENT)
        .workers(workers)
        .coordinators(2)
        .node_id_prefix("t")
        .node_manager_interval(Duration::from_millis(200))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_converges_revalidates_with_etags_and_leaves_cleanly() {
    let server = FakeServer::start(Duration::from_secs(3)).await;
    let fleet = Fleet::start(config(&server, 5)).await.unwrap();
    fleet.converged(DEADLINE).await.unwrap();
    let expected: BTreeSet<String> = (0..5)
        .map(|i| fleet.worker_id(i))
        .chain((0..2).map(|c| fleet.coordinator_id(c)))
        .collect();
    assert_eq!(server.announced(), expected);
    let view = fleet.coordinator_view(0).unwrap();
    assert_eq!(view.node_ids, expected, "a coordinator lists itself too");

    // Unchanged lists are revalidated with the ETag and answered 304.
    assert!(
        fleet
            .wait_until(DEADLINE, |f| f.report().requests.lookup.not_modified >= 2)
            .await,
        "{}",
        fleet.report()
    );
    let report = fleet.shutdown().await;
    assert_eq!(report.missing_total, 0, "{report}");
    assert_eq!(report.failed_requests(), 0, "{report}");
    assert_eq!(report.requests.unannounce.ok, 7, "{report}");
    assert!(report
        .nodes
        .iter()
        .all(|n| !n.running && n.announcements > 0));
    assert!(server.announced().is_empty(), "every node unannounced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_dropped_from_lookups_is_missing_for_every_coordinator() {
    let server = FakeServer::start(Duration::from_secs(3)).await;
    let fleet = Fleet::start(config(&server, 4)).await.unwrap();
    fleet.converged(DEADLINE).await.unwrap();
    let victim = fleet.worker_id(1);

    // The server "flaps": a live, announcing worker vanishes from lookups.
    server.hide(&victim);
    let both = fleet
        .wait_until(DEADLINE, |f| {
            let report = f.report();
            let coordinators: BTreeSet<&str> = report
                .missing_of(&victim)
                .map(|e| e.coordinator.as_str())
                .collect();
            coordinators.len() == 2
        })
        .await;
    let report = fleet.report();
    assert!(both, "both coordinators report {victim} missing:\n{report}");
    assert_eq!(
        report.missing_total, 2,
        "one event per coordinator:\n{report}"
    );
    for event in &report.missing {
        assert_eq!(event.node_id, victim);
        assert_eq!(event.incarnation, 1);
        assert!(event.last_listed < event.list.started);
        assert_eq!(
            event.list_size, 5,
            "4 workers + 2 coordinators - the victim"
        );
    }

    server.show(&victim);
    fleet.converged(DEADLINE).await.unwrap();
    let report = fleet.shutdown().await;
    assert_eq!(
        report.missing_total, 2,
        "no new events after it returned:\n{report}"
    );
    assert_eq!(report.failed_requests(), 0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn departures_and_restarts_are_not_missing_events() {
    let ttl = Duration::from_secs(2);
    let server = FakeServer::start(ttl).await;
    let fleet = Fleet::start(config(&server, 4)).await.unwrap();
    fleet.converged(DEADLINE).await.unwrap();

    // A crash: nothing is sent, the entry expires after the TTL.
    let crashed = fleet.stop_worker(0).await.unwrap();
    assert!(crashed.unannounce.is_none());
    assert!(!crashed.node.running);
    let last = crashed.node.last_announce.unwrap();
    let id = fleet.worker_id(0);
    let gone = fleet
        .wait_until(DEADLINE, |f| {
            (0..2).all(|c| !f.coordinator_view(c).unwrap().node_ids.contains(&id))
        })
        .await;
    assert!(gone, "{}", fleet.report());
    let report = fleet.report();
    let left: Vec<_> = report
        .view_changes
        .iter()
        .filter(|v| v.node_id == id && v.change == Change::Left)
        .collect();
    assert_eq!(left.len(), 2, "{report}");
    for change in left {
        assert!(
            change.lookup.finished >= last.started + ttl,
            "gone before its TTL: {change:?}, last announcement {last:?}"
        );
    }
    assert!(fleet.stop_worker(0).await.is_err(), "already stopped");

    // A clean shutdown: DELETE, gone at the next lookup.
    let left = fleet.unannounce_worker(1).await.unwrap();
    let delete = left.unannounce.unwrap();
    assert_eq!(delete.error, None);
    let id = fleet.worker_id(1);
    assert!(!server.announced().contains(&id));

    // A restart: new incarnation, new service id, seen again by everyone.
    let before = fleet.worker(2).unwrap();
    fleet.restart_worker(2, Shutdown::Clean).await.unwrap();
    fleet.start_worker(0).await.unwrap();
    assert!(fleet.start_worker(0).await.is_err(), "already running");
    fleet.converged(DEADLINE).await.unwrap();
    let after = fleet.worker(2).unwrap();
    assert_eq!(after.incarnation, before.incarnation + 1);
    assert_ne!(after.service_id, before.service_id);
    for c in 0..2 {
        let view = fleet.coordinator_view(c).unwrap();
        assert!(view.service_ids.contains(&after.service_id));
        assert!(!view.service_ids.contains(&before.service_id));
    }

    let report = fleet.shutdown().await;
    assert_eq!(report.missing_total, 0, "{report}");
    assert_eq!(report.failed_requests(), 0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_lookups_are_counted_and_the_last_list_is_kept() {
    let server = FakeServer::start(Duration::from_secs(3)).await;
    let fleet = Fleet::start(config(&server, 3)).await.unwrap();
    fleet.converged(DEADLINE).await.unwrap();
    let listed = fleet.coordinator_view(0).unwrap().service_ids;

    server.fail_lookups(true);
    // Each coordinator fails a few times in a row (1, 2, 4 ms back-off).
    assert!(
        fleet
            .wait_until(DEADLINE, |f| f
                .report()
                .coordinators
                .iter()
                .all(|c| c.consecutive_failures >= 3))
            .await,
        "{}",
        fleet.report()
    );
    let report = fleet.report();
    assert_eq!(report.coordinators[0].service_ids, listed, "list kept");
    assert!(report.requests.lookup.failed >= 6);
    assert!(report
        .failures
        .iter()
        .all(|f| f.kind == discovery_sim::RequestKind::Lookup && f.error.contains("503")));
    assert_eq!(report.requests.announce.failed, 0);

    server.fail_lookups(false);
    assert!(
        fleet
            .wait_until(DEADLINE, |f| f
                .report()
                .coordinators
                .iter()
                .all(|c| c.consecutive_failures == 0))
            .await
    );
    let report = fleet.shutdown().await;
    assert_eq!(report.missing_total, 0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_retried_with_back_off_and_shutdown_still_ends() {
    // A port where nothing listens.
    let uri = discovery_testkit::ports::closed_url("127.0.0.1");
    let config = FleetConfig::new(uri, ENVIRONMENT)
        .workers(1)
        .coordinators(1);
    let fleet = Fleet::start(config).await.unwrap();
    assert!(
        fleet
            .wait_until(DEADLINE, |f| {
                let r = f.report().requests;
                r.announce.failed >= 10 && r.lookup.failed >= 10
            })
            .await
    );
    let report = fleet.report();
    assert_eq!(report.requests.announce.ok, 0);
    assert!(report.nodes.iter().all(|n| n.consecutive_failures >= 5));
    assert!(!fleet.convergence().is_converged());
    assert!(fleet.converged(Duration::from_millis(50)).await.is_err());
    let report = fleet.shutdown().await;
    assert_eq!(report.requests.unannounce.failed, 2, "{report}");
    assert_eq!(report.missing_total, 0);
}
