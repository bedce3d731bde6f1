//! Readiness: whether this node's view is complete enough to answer lookups.
//!
//! A node that has just (re)started may hold a partial list: announcements that expired
//! while it was down are gone, and the nodes that announced them have not re-announced yet.
//! Answering a coordinator's lookup with that list makes it drop live workers ("Previously
//! active node is missing"). So until the node is ready, lookups get 503: airlift clients
//! keep their last good list on any failure, and nginx retries the request on another node.
//!
//! The policy ([`decide`], pure):
//!
//! * **Standalone node**: ready once `readiness.warm-up` has passed since start. Every live
//!   client re-announces within one announce period (80 % of `discovery.announce-max-age`),
//!   so after it the node has heard from everyone.
//! * **Replicated node**: ready as soon as every store has completed an anti-entropy round
//!   with a peer that was itself ready (the node now holds everything that peer held); or
//!   once the warm-up has passed and every store has completed a round with any peer (a
//!   whole cluster starting together); or, if no peer could be reached, once
//!   `readiness.max-wait` has passed (serving what it has beats serving nothing forever).
//!
//! * **Repairing** (started with `--repair` on damaged data): a replicated node is ready
//!   only once every store has caught up with a ready peer, however long that takes; what
//!   it read from disk alone is known to be incomplete.
//!
//! Once ready, a node stays ready until it stops, except while its clock is off from a
//! majority of its peers ([`crate::clock_check`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use discovery_replicator::{CatchUp, ReplicatorStatus};
use tokio::time::Instant;

use crate::clock_check::ClockGuard;

/// Decides readiness from the time since start and, for a replicated node, how far it has
/// caught up. `Ok` says why the node is ready, `Err` why not yet.
pub fn decide(
    elapsed: Duration,
    warm_up: Duration,
    max_wait: Duration,
    catch_up: Option<CatchUp>,
    repairing: bool,
) -> Result<&'static str, String> {
    let warmed_up = elapsed >= warm_up;
    match catch_up {
        Some(c) if repairing && c.peers > 0 && c.every_store_synced_with_ready_peer => {
            return Ok("repaired: caught up with a ready peer");
        }
        Some(c) if repairing && c.peers > 0 => {
            return Err(
                "repairing damaged data: waiting to catch up with a peer that is itself ready"
                    .into(),
            );
        }
        _ => {}
    }
    let left = |limit: Duration| limit.saturating_sub(elapsed).as_secs_f64().ceil() as u64;
    match catch_up {
        None | Some(CatchUp { peers: 0, .. }) if warmed_up => {
            Ok("warm-up over: every live client has re-announced")
        }
        None | Some(CatchUp { peers: 0, .. }) => Err(format!(
            "warming up until every live client has re-announced (ready in {}s)",
            left(warm_up)
        )),
        Some(c) if c.every_store_synced_with_ready_peer => Ok("caught up with a ready peer"),
        Some(c) if warmed_up && c.every_store_synced => {
            Ok("warm-up over and caught up with the peers")
        }
        Some(_) if elapsed >= max_wait => {
            Ok("no ready peer reached within readiness.max-wait: serving this node's own state")
        }
        Some(c) if c.every_store_synced => Err(format!(
            "warming up (ready in {}s): no peer that is itself ready has confirmed this node's state",
            left(warm_up)
        )),
        Some(_) => Err(format!(
            "catching up with peers: no anti-entropy round completed yet (ready in {}s at the latest)",
            left(max_wait)
        )),
    }
}

/// The node's readiness, checked on every lookup (a single atomic load once ready).
pub struct Readiness {
    started: Instant,
    warm_up: Duration,
    max_wait: Duration,
    replicator: Option<ReplicatorStatus>,
    /// Started with `--repair` on damaged data.
    repairing: bool,
    /// A clock off from a majority of the peers makes the node not ready, even after it
    /// was ready (see [`crate::clock_check`]).
    clock: Option<Arc<ClockGuard>>,
    /// Why storage keeps the node from being ready, if it does (checked on every call).
    storage: Option<StorageCheck>,
    ready: AtomicBool,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("ready", &self.ready)
            .field("repairing", &self.repairing)
            .finish_non_exhaustive()
    }
}

/// Says why the node's storage is failing, if it is.
pub type StorageCheck = Box<dyn Fn() -> Option<String> + Send + Sync>;

impl Readiness {
    pub fn new(
        warm_up: Duration,
        max_wait: Duration,
        replicator: Option<ReplicatorStatus>,
    ) -> Self {
        Readiness {
            started: Instant::now(),
            warm_up,
            max_wait,
            replicator,
            repairing: false,
            clock: None,
            storage: None,
            ready: AtomicBool::new(false),
        }
    }

    /// Consults `guard` on every check.
    pub fn with_clock_guard(mut self, guard: Arc<ClockGuard>) -> Self {
        self.clock = Some(guard);
        self
    }

    /// Consults `check` on every check: a failing disk makes the node not ready, so load
    /// balancers send writes elsewhere.
    pub fn with_storage_check(mut self, check: StorageCheck) -> Self {
        self.storage = Some(check);
        self
    }

    /// `Some(reason)` while this node's clock is off: local writes are refused.
    pub fn clock_refusal(&self) -> Option<String> {
        self.clock.as_ref().and_then(|guard| guard.refusal())
    }

    /// Ready only once caught up with a ready peer (see the module documentation).
    pub fn repairing(mut self) -> Self {
        self.repairing = true;
        self
    }

    /// `Ok` when ready; `Err` with the reason otherwise.
    pub fn check(&self) -> Result<(), String> {
        if let Some(reason) = self.clock_refusal() {
            return Err(reason);
        }
        if let Some(reason) = self.storage.as_ref().and_then(|check| check()) {
            return Err(reason);
        }
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let catch_up = self.replicator.as_ref().map(ReplicatorStatus::catch_up);
        let why = decide(
            self.started.elapsed(),
            self.warm_up,
            self.max_wait,
            catch_up,
            self.repairing,
        )?;
        if !self.ready.swap(true, Ordering::AcqRel) {
            tracing::info!(after = ?self.started.elapsed(), "ready: {why}");
        }
        Ok(())
    }

    pub fn is_ready(&self) -> bool {
        self.check().is_ok()
    }

    /// Time since the node started (the status page's uptime).
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn catch_up(synced: bool, with_ready_peer: bool) -> Option<CatchUp> {
        Some(CatchUp {
            every_store_synced: synced,
            every_store_synced_with_ready_peer: with_ready_peer,
            peers: 2,
        })
    }

    #[test]
    fn a_standalone_node_waits_one_warm_up() {
        assert!(decide(S(9), S(10), S(60), None, false).is_err());
        assert!(decide(S(10), S(10), S(60), None, false).is_ok());
        let no_peers = Some(CatchUp {
            every_store_synced: false,
            every_store_synced_with_ready_peer: false,
            peers: 0,
        });
        assert!(
            decide(S(10), S(10), S(60), no_peers, false).is_ok(),
            "an inventory of one is standalone"
        );
        assert!(
            decide(S(0), S(0), S(0), None, false).is_ok(),
            "warm-up 0 disables it"
        );
    }

    #[test]
    fn a_replicated_node_is_ready_after_syncing_with_a_ready_peer_at_once() {
        assert!(decide(S(1), S(10), S(60), catch_up(true, true), false).is_ok());
        let not_yet = decide(S(1), S(10), S(60), catch_up(true, false), false).unwrap_err();
        assert!(
            not_yet.contains("no peer that is itself ready"),
            "{not_yet}"
        );
        let no_round = decide(S(1), S(10), S(60), catch_up(false, false), false).unwrap_err();
        assert!(no_round.contains("no anti-entropy round"), "{no_round}");
    }

    #[test]
    fn a_cluster_starting_together_is_ready_after_warm_up_and_one_round() {
        assert!(decide(S(11), S(10), S(60), catch_up(true, false), false).is_ok());
        assert!(decide(S(11), S(10), S(60), catch_up(false, false), false).is_err());
    }

    #[test]
    fn a_repairing_node_waits_for_a_ready_peer_however_long() {
        assert!(decide(S(600), S(10), S(60), catch_up(true, false), true).is_err());
        assert!(decide(S(1), S(10), S(60), catch_up(true, true), true).is_ok());
        assert!(
            decide(S(10), S(10), S(60), None, true).is_ok(),
            "standalone: the warm-up, as its clients re-announce"
        );
    }

    #[test]
    fn unreachable_peers_delay_readiness_only_until_max_wait() {
        assert!(decide(S(59), S(10), S(60), catch_up(false, false), false).is_err());
        assert!(decide(S(60), S(10), S(60), catch_up(false, false), false).is_ok());
    }
}
