//! Clock sanity. Entries carry their origin's wall clock, so a node whose clock is far off
//! serves a wrong view (workers announced elsewhere look expired, deletes never take
//! effect) while its peers refuse its writes. Every anti-entropy round measures each
//! peer's clock against ours (`x-discovery-clock` on the digest answer); from those
//! offsets this module decides, by a strict majority of the nodes this one reaches
//! (itself included), whether the odd one out is this node.
//!
//! * Off from a strict majority by more than `store.max-clock-skew`: logged at ERROR,
//!   the node reports not ready (lookups and `/v1/health/ready` answer 503 with the
//!   measured offset) and refuses local writes with a 503 saying why, until the clocks
//!   agree again.
//! * Some peers off, but no majority against this node (a two-node cluster, or a peer
//!   that is the odd one out): logged at ERROR, the node stays ready.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use discovery_replicator::ReplicatorStatus;
use discovery_store::Clock;
use tokio::sync::watch;

/// What the offsets say about this node's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Within the skew of every node reached.
    Agrees,
    /// Off from a strict majority of the nodes reached: this node's clock is the wrong one.
    Off {
        /// The median offset of the peers that disagree (their clock minus ours).
        offset_ms: i64,
        disagreeing: usize,
        reached: usize,
    },
    /// Some peers disagree, but not a strict majority: nothing says which clock is wrong.
    Split { far: Vec<(String, i64)> },
}

/// Judges from `offsets` (each reached peer's clock minus ours). This node counts as one
/// of the nodes reached and agrees with itself.
pub fn judge(offsets: &[(String, i64)], max_skew_ms: i64) -> Verdict {
    let far: Vec<(String, i64)> = offsets
        .iter()
        .filter(|(_, offset)| offset.unsigned_abs() > max_skew_ms.unsigned_abs())
        .cloned()
        .collect();
    let reached = offsets.len() + 1;
    if far.is_empty() {
        Verdict::Agrees
    } else if far.len() * 2 > reached {
        let mut sorted: Vec<i64> = far.iter().map(|(_, offset)| *offset).collect();
        sorted.sort_unstable();
        Verdict::Off {
            offset_ms: sorted[sorted.len() / 2],
            disagreeing: far.len(),
            reached,
        }
    } else {
        Verdict::Split { far }
    }
}

/// The current verdict, for readiness and the write handlers.
#[derive(Debug, Default)]
pub struct ClockGuard {
    /// Whether `refusal` holds a reason: one atomic load on every lookup while the clock
    /// is fine, the lock only when it is not.
    off: AtomicBool,
    /// Why this node must not serve or write, when its clock is off.
    refusal: RwLock<Option<String>>,
}

impl ClockGuard {
    /// `Some(reason)` while this node's clock is off from a majority.
    pub fn refusal(&self) -> Option<String> {
        if !self.off.load(Ordering::Acquire) {
            return None;
        }
        self.refusal
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set(&self, refusal: Option<String>) {
        let off = refusal.is_some();
        *self.refusal.write().unwrap_or_else(|e| e.into_inner()) = refusal;
        self.off.store(off, Ordering::Release);
    }
}

/// How often the offsets are judged again (they are measured once per anti-entropy round).
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Re-judges every [`CHECK_EVERY`] from the replicator's latest offsets, counting only
/// those measured within `fresh_within` (peers no longer reached drop out), until
/// `shutdown`.
pub async fn run_clock_check(
    guard: Arc<ClockGuard>,
    replicator: ReplicatorStatus,
    clock: Arc<dyn Clock>,
    max_skew_ms: i64,
    fresh_within: Duration,
    shutdown: watch::Receiver<bool>,
) {
    let fresh_ms = i64::try_from(fresh_within.as_millis()).unwrap_or(i64::MAX);
    let mut last = Verdict::Agrees;
    crate::periodic::every(CHECK_EVERY, shutdown, move || {
        let since = clock.now_ms().saturating_sub(fresh_ms);
        let verdict = judge(&replicator.clock_offsets(since), max_skew_ms);
        if verdict != last {
            report(&verdict, max_skew_ms);
        }
        guard.set(match &verdict {
            Verdict::Off {
                offset_ms,
                disagreeing,
                reached,
            } => Some(format!(
                "this node's clock is {} ms {} {disagreeing} of the {reached} nodes it reaches \
                 (more than store.max-clock-skew, {max_skew_ms} ms): fix its clock",
                offset_ms.unsigned_abs(),
                if *offset_ms > 0 { "behind" } else { "ahead of" }
            )),
            _ => None,
        });
        last = verdict;
    })
    .await;
}

fn report(verdict: &Verdict, max_skew_ms: i64) {
    match verdict {
        Verdict::Agrees => tracing::info!("clocks agree with every peer reached again"),
        Verdict::Off {
            offset_ms,
            disagreeing,
            reached,
        } => tracing::error!(
            peers_clock_minus_ours_ms = offset_ms,
            disagreeing,
            reached,
            max_skew_ms,
            "this node's clock is off from a majority of the nodes it reaches: \
             reporting not ready and refusing local writes until it is fixed"
        ),
        Verdict::Split { far } => tracing::error!(
            ?far,
            max_skew_ms,
            "some peers' clocks differ from ours by more than store.max-clock-skew; \
             no majority says which is wrong, so this node stays ready"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SKEW: i64 = 60_000;

    fn peers(offsets: &[i64]) -> Vec<(String, i64)> {
        offsets
            .iter()
            .enumerate()
            .map(|(i, o)| (format!("n{i}"), *o))
            .collect()
    }

    #[test]
    fn the_odd_one_out_of_three_is_off_and_the_others_are_not() {
        // The fast node sees both peers 10 minutes behind it.
        assert!(matches!(
            judge(&peers(&[-600_000, -600_000]), SKEW),
            Verdict::Off {
                offset_ms: -600_000,
                disagreeing: 2,
                reached: 3
            }
        ));
        // A correct node sees one peer far ahead and one near.
        assert!(matches!(
            judge(&peers(&[600_000, 200]), SKEW),
            Verdict::Split { .. }
        ));
        assert_eq!(judge(&peers(&[100, -200]), SKEW), Verdict::Agrees);
    }

    #[test]
    fn in_two_nodes_neither_is_judged_off() {
        assert!(matches!(
            judge(&peers(&[600_000]), SKEW),
            Verdict::Split { .. }
        ));
        assert!(matches!(
            judge(&peers(&[-600_000]), SKEW),
            Verdict::Split { .. }
        ));
        assert_eq!(
            judge(&[], SKEW),
            Verdict::Agrees,
            "alone, nothing to compare"
        );
    }

    #[test]
    fn exactly_the_skew_is_still_within_it() {
        assert_eq!(judge(&peers(&[SKEW, -SKEW]), SKEW), Verdict::Agrees);
        assert!(matches!(
            judge(&peers(&[SKEW + 1, SKEW + 1, 0, SKEW + 1]), SKEW),
            Verdict::Off {
                disagreeing: 3,
                reached: 5,
                ..
            }
        ));
    }
}
