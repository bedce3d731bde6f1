//! The per-peer push queue: bounded, oldest first, at most one pending change per key.
//!
//! Coalescing by key matters for discovery: a node renews every 8 s, so while a peer is
//! slow or down, its queue holds one item per announcing node rather than one per renewal.
//! When the queue is full the oldest change is dropped and counted; anti-entropy brings
//! the peer up to date later.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use discovery_store::Entry;

/// A change waiting to be pushed.
#[derive(Debug, Clone)]
pub struct PendingChange {
    pub entry: Arc<Entry>,
    pub value_hash: Option<u128>,
    /// Send the value itself. False only for a renewal (same value as the key's previous
    /// write), which travels as a value hash.
    pub full: bool,
    /// When the oldest write this change stands for was queued: a merged change keeps the
    /// earlier time, so the replication lag counts from the first write the peer lacks.
    pub since: Instant,
}

impl PendingChange {
    /// Approximate size in a JSON push (base64 grows bytes by a third).
    pub fn approximate_bytes(&self) -> usize {
        let key = self.entry.key.len() * 4 / 3;
        let value = if self.full {
            self.entry.value.as_ref().map_or(0, |v| v.len() * 4 / 3)
        } else {
            32
        };
        key + value + 120
    }

    /// Combines an older pending change with a newer one for the same key. The greater
    /// entry wins; the value must be sent in full if either needed it (a renewal of a
    /// value the peer never received is useless).
    fn merge(self, other: PendingChange) -> PendingChange {
        let full = self.full || other.full;
        let since = self.since.min(other.since);
        let mut winner = if other.entry.supersedes(&self.entry) {
            other
        } else {
            self
        };
        winner.full = full;
        winner.since = since;
        winner
    }
}

/// Bounded, coalescing FIFO of pending changes.
#[derive(Debug)]
pub struct PushQueue {
    capacity: usize,
    /// Position -> key, oldest first.
    order: BTreeMap<i64, Vec<u8>>,
    items: HashMap<Vec<u8>, (i64, PendingChange)>,
    next_back: i64,
    next_front: i64,
    dropped: u64,
}

impl PushQueue {
    pub fn new(capacity: usize) -> Self {
        PushQueue {
            capacity: capacity.max(1),
            order: BTreeMap::new(),
            items: HashMap::new(),
            next_back: 0,
            next_front: -1,
            dropped: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// When the oldest change still queued was first queued (see [`PendingChange::since`]).
    /// A scan: merges and requeued batches keep older times away from the front, and the
    /// queue is bounded, so this stays cheap enough for a status page or a scrape.
    pub fn oldest_since(&self) -> Option<Instant> {
        self.items.values().map(|(_, change)| change.since).min()
    }

    /// Changes dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Appends a change (or merges it into the pending change for its key, keeping that
    /// one's place).
    pub fn push(&mut self, change: PendingChange) {
        let position = self.next_back;
        if self.insert(change, position) {
            self.next_back += 1;
        }
    }

    /// Puts a batch that could not be delivered back at the front, in its order, merging
    /// with anything that arrived for the same keys in the meantime.
    pub fn requeue(&mut self, batch: Vec<PendingChange>) {
        for change in batch.into_iter().rev() {
            let position = self.next_front;
            if self.insert(change, position) {
                self.next_front -= 1;
            }
        }
    }

    /// Returns true when a new position was used.
    fn insert(&mut self, change: PendingChange, position: i64) -> bool {
        let key = change.entry.key.clone();
        if let Some((existing_position, existing)) = self.items.remove(&key) {
            self.items
                .insert(key, (existing_position, existing.merge(change)));
            return false;
        }
        if self.items.len() >= self.capacity {
            self.drop_oldest();
        }
        self.order.insert(position, key.clone());
        self.items.insert(key, (position, change));
        true
    }

    fn drop_oldest(&mut self) {
        if let Some((_, key)) = self.order.pop_first() {
            self.items.remove(&key);
            self.dropped += 1;
        }
    }

    /// Takes the oldest changes, at most `max_items` and, beyond the first, at most
    /// `max_bytes` of estimated JSON.
    pub fn take(&mut self, max_items: usize, max_bytes: usize) -> Vec<PendingChange> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while batch.len() < max_items.max(1) {
            let Some((&position, key)) = self.order.first_key_value() else {
                break;
            };
            let size = self
                .items
                .get(key)
                .map_or(0, |(_, c)| c.approximate_bytes());
            if !batch.is_empty() && bytes + size > max_bytes {
                break;
            }
            let key = key.clone();
            self.order.remove(&position);
            if let Some((_, change)) = self.items.remove(&key) {
                bytes += size;
                batch.push(change);
            }
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(key: &str, version: i64, full: bool) -> PendingChange {
        PendingChange {
            entry: Arc::new(Entry {
                key: key.as_bytes().to_vec(),
                value: Some(b"v".to_vec()),
                version,
                timestamp: version,
                max_age_ms: Some(30_000),
            }),
            value_hash: Some(1),
            full,
            since: Instant::now(),
        }
    }

    fn keys(batch: &[PendingChange]) -> Vec<(String, i64, bool)> {
        batch
            .iter()
            .map(|c| {
                (
                    String::from_utf8(c.entry.key.clone()).unwrap(),
                    c.entry.version,
                    c.full,
                )
            })
            .collect()
    }

    #[test]
    fn coalesces_by_key_keeping_the_first_position_and_any_full_flag() {
        let mut queue = PushQueue::new(10);
        queue.push(change("a", 1, true));
        queue.push(change("b", 1, false));
        queue.push(change("a", 2, false));
        assert_eq!(queue.len(), 2);
        assert_eq!(
            keys(&queue.take(10, usize::MAX)),
            [("a".into(), 2, true), ("b".into(), 1, false)]
        );
    }

    #[test]
    fn drops_the_oldest_when_full_and_counts_it() {
        let mut queue = PushQueue::new(2);
        queue.push(change("a", 1, true));
        queue.push(change("b", 1, true));
        queue.push(change("c", 1, true));
        assert_eq!(queue.dropped(), 1);
        assert_eq!(keys(&queue.take(10, usize::MAX)).len(), 2);
    }

    #[test]
    fn requeued_batches_go_back_in_front_and_merge_with_newer_changes() {
        let mut queue = PushQueue::new(10);
        queue.push(change("a", 1, true));
        queue.push(change("b", 1, true));
        let batch = queue.take(2, usize::MAX);
        queue.push(change("c", 1, true));
        queue.push(change("a", 5, false));
        queue.requeue(batch);
        assert_eq!(
            keys(&queue.take(10, usize::MAX)),
            [
                ("b".into(), 1, true),
                ("c".into(), 1, true),
                ("a".into(), 5, true)
            ]
        );
    }

    #[test]
    fn the_oldest_time_survives_merges_and_requeues() {
        let mut queue = PushQueue::new(10);
        assert_eq!(queue.oldest_since(), None);
        let first = change("a", 1, true);
        let oldest = first.since;
        queue.push(first);
        let mut later = change("b", 1, true);
        later.since = oldest + std::time::Duration::from_secs(5);
        queue.push(later);
        let mut renewal = change("a", 2, false);
        renewal.since = oldest + std::time::Duration::from_secs(9);
        queue.push(renewal);
        assert_eq!(
            queue.oldest_since(),
            Some(oldest),
            "merged: the earlier time"
        );
        let batch = queue.take(1, usize::MAX);
        assert_eq!(batch[0].since, oldest);
        assert_eq!(
            queue.oldest_since(),
            Some(oldest + std::time::Duration::from_secs(5))
        );
        queue.requeue(batch);
        assert_eq!(queue.oldest_since(), Some(oldest), "requeued: still owed");
        queue.take(10, usize::MAX);
        assert_eq!(queue.oldest_since(), None);
    }

    #[test]
    fn batches_respect_item_and_byte_limits() {
        let mut queue = PushQueue::new(10);
        for key in ["a", "b", "c"] {
            queue.push(change(key, 1, true));
        }
        assert_eq!(queue.take(2, usize::MAX).len(), 2);
        queue.push(change("d", 1, true));
        assert_eq!(
            queue.take(10, 1).len(),
            1,
            "one item always goes, however large"
        );
        assert_eq!(queue.take(10, 1).len(), 1);
        assert!(queue.is_empty());
    }
}
