//! A link: everything about replicating one store to one peer — its push queue, the
//! peer's current address, and counters for the status page.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use discovery_types::replication::PeerStoreStatus;
use tokio::sync::{watch, Notify};

use crate::peers::Peer;
use crate::queue::{PendingChange, PushQueue};

pub(crate) struct Link {
    pub store: String,
    /// The peer's current address; the inventory can move it without a restart.
    pub peer: watch::Receiver<Peer>,
    queue: Mutex<PushQueue>,
    /// Wakes the push worker when the queue gains a change.
    pub wake: Notify,
    /// The oldest queue time in the batch the push worker has taken and the peer has not
    /// acknowledged yet: those changes are out of the queue but still owed to the peer.
    in_flight_since: Mutex<Option<Instant>>,
    pub stats: LinkStats,
}

#[derive(Default)]
pub(crate) struct LinkStats {
    pub pushed_entries: AtomicU64,
    pub pushed_renewals: AtomicU64,
    pub pushes_ok: AtomicU64,
    pub push_failures: AtomicU64,
    /// Pushed entries the peer refused (invalid there, or its store full).
    pub refused_by_peer: AtomicU64,
    pub last_push_ok_ms: AtomicI64,
    pub syncs_ok: AtomicU64,
    pub syncs_failed: AtomicU64,
    pub last_sync_ok_ms: AtomicI64,
    pub last_sync_in_agreement: AtomicBool,
    /// A round has completed with this peer while it reported itself ready: from then on
    /// this node holds at least everything that peer held.
    pub synced_with_ready_peer: AtomicBool,
    /// What the peer said about its readiness in the last completed round: 0 no round
    /// yet, 1 not ready, 2 ready (the status page shows it).
    pub peer_ready: AtomicU8,
    pub sync_fetched: AtomicU64,
    pub sync_pushed: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    pub sync_bytes_sent: AtomicU64,
    pub sync_bytes_received: AtomicU64,
    pub last_error: Mutex<Option<String>>,
    /// The peer's clock minus ours and when it was measured (0: never).
    clock_offset_ms: AtomicI64,
    clock_measured_at_ms: AtomicI64,
}

impl Link {
    pub fn record_clock_offset(&self, offset_ms: i64, now_ms: i64) {
        self.stats
            .clock_offset_ms
            .store(offset_ms, Ordering::Relaxed);
        self.stats
            .clock_measured_at_ms
            .store(now_ms, Ordering::Relaxed);
    }

    /// The last measured offset and when, if any.
    pub fn clock_offset(&self) -> Option<(i64, i64)> {
        let at = self.stats.clock_measured_at_ms.load(Ordering::Relaxed);
        (at > 0).then(|| (self.stats.clock_offset_ms.load(Ordering::Relaxed), at))
    }

    pub fn new(store: &str, peer: watch::Receiver<Peer>, queue_size: usize) -> Arc<Self> {
        Arc::new(Link {
            store: store.to_owned(),
            peer,
            queue: Mutex::new(PushQueue::new(queue_size)),
            wake: Notify::new(),
            in_flight_since: Mutex::new(None),
            stats: LinkStats::default(),
        })
    }

    pub fn peer(&self) -> Peer {
        self.peer.borrow().clone()
    }

    pub fn queue(&self) -> MutexGuard<'_, PushQueue> {
        // The queue's maps stay consistent even if a holder panicked.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a change and wakes the worker. Logs when the queue starts dropping.
    pub fn enqueue(&self, change: PendingChange) {
        let dropped = {
            let mut queue = self.queue();
            let before = queue.dropped();
            queue.push(change);
            (queue.dropped() > before).then_some(queue.dropped())
        };
        if let Some(total) = dropped {
            if total.is_power_of_two() {
                tracing::warn!(peer = %self.peer().node_id, store = %self.store, dropped = total,
                    "push queue full: dropping the oldest changes; anti-entropy will repair them");
            }
        }
        self.wake.notify_one();
    }

    /// Marks `batch` as sent and not yet acknowledged (`None`: the exchange is over, and
    /// whatever must go again is back in the queue).
    pub fn set_in_flight(&self, since: Option<Instant>) {
        *self
            .in_flight_since
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = since;
    }

    /// How long the oldest write the peer has not acknowledged has waited: queued or in
    /// flight. Zero when nothing is owed. Dropped changes (queue full) are not counted:
    /// anti-entropy owns them from then on.
    pub fn pending_age(&self, now: Instant) -> Duration {
        let queued = self.queue().oldest_since();
        let in_flight = *self
            .in_flight_since
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        queued
            .into_iter()
            .chain(in_flight)
            .min()
            .map_or(Duration::ZERO, |since| now.saturating_duration_since(since))
    }

    pub fn record_error(&self, error: String) {
        if let Ok(mut last) = self.stats.last_error.lock() {
            *last = Some(error);
        }
    }

    /// Clears the last error if it is of the kind (`prefix`) that just succeeded.
    pub fn clear_error(&self, prefix: &str) {
        if let Ok(mut last) = self.stats.last_error.lock() {
            if last.as_deref().is_some_and(|e| e.starts_with(prefix)) {
                *last = None;
            }
        }
    }

    pub fn record_bytes(&self, sent: u64, received: u64) {
        self.stats.bytes_sent.fetch_add(sent, Ordering::Relaxed);
        self.stats
            .bytes_received
            .fetch_add(received, Ordering::Relaxed);
    }

    pub fn status(&self) -> PeerStoreStatus {
        let s = &self.stats;
        let time = |v: &AtomicI64| Some(v.load(Ordering::Relaxed)).filter(|&t| t > 0);
        let (queued, dropped) = {
            let queue = self.queue();
            (queue.len(), queue.dropped())
        };
        PeerStoreStatus {
            store: self.store.clone(),
            queued,
            oldest_pending_ms: Some(self.pending_age(Instant::now()))
                .filter(|age| !age.is_zero())
                .map(|age| u64::try_from(age.as_millis()).unwrap_or(u64::MAX)),
            pushed_entries: s.pushed_entries.load(Ordering::Relaxed),
            pushed_renewals: s.pushed_renewals.load(Ordering::Relaxed),
            pushes_ok: s.pushes_ok.load(Ordering::Relaxed),
            push_failures: s.push_failures.load(Ordering::Relaxed),
            dropped,
            refused_by_peer: s.refused_by_peer.load(Ordering::Relaxed),
            clock_offset_ms: self.clock_offset().map(|(offset, _)| offset),
            last_push_ok_ms: time(&s.last_push_ok_ms),
            syncs_ok: s.syncs_ok.load(Ordering::Relaxed),
            syncs_failed: s.syncs_failed.load(Ordering::Relaxed),
            last_sync_ok_ms: time(&s.last_sync_ok_ms),
            last_sync_in_agreement: s.last_sync_in_agreement.load(Ordering::Relaxed),
            peer_ready: match s.peer_ready.load(Ordering::Relaxed) {
                0 => None,
                reported => Some(reported == 2),
            },
            sync_fetched: s.sync_fetched.load(Ordering::Relaxed),
            sync_pushed: s.sync_pushed.load(Ordering::Relaxed),
            bytes_sent: s.bytes_sent.load(Ordering::Relaxed),
            bytes_received: s.bytes_received.load(Ordering::Relaxed),
            sync_bytes_sent: s.sync_bytes_sent.load(Ordering::Relaxed),
            sync_bytes_received: s.sync_bytes_received.load(Ordering::Relaxed),
            last_error: s.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use discovery_store::Entry;

    fn change(since: Instant) -> PendingChange {
        PendingChange {
            entry: Arc::new(Entry {
                key: b"w1".to_vec(),
                value: Some(b"[]".to_vec()),
                version: 1,
                timestamp: 1,
                max_age_ms: Some(30_000),
            }),
            value_hash: None,
            full: true,
            since,
        }
    }

    #[test]
    fn the_lag_counts_queued_and_in_flight_writes_until_acknowledged() {
        let (_tx, rx) = watch::channel(Peer {
            node_id: "n2".into(),
            url: "http://127.0.0.1:1".into(),
        });
        let link = Link::new("dynamic", rx, 10);
        let now = Instant::now();
        assert_eq!(link.pending_age(now), Duration::ZERO, "nothing owed");
        let written = now.checked_sub(Duration::from_secs(5)).unwrap_or(now);
        link.enqueue(change(written));
        assert_eq!(link.pending_age(now), now - written, "queued");
        // The push worker takes the batch: out of the queue, still owed.
        let batch = link.queue().take(10, usize::MAX);
        link.set_in_flight(batch.iter().map(|c| c.since).min());
        assert_eq!(link.pending_age(now), now - written, "in flight");
        let reported = link.status().oldest_pending_ms.unwrap_or(0);
        assert!(reported >= 5_000 || written == now, "status: {reported} ms");
        link.set_in_flight(None);
        assert_eq!(link.pending_age(now), Duration::ZERO, "acknowledged");
        assert_eq!(link.status().oldest_pending_ms, None);
    }
}
