//! [`Store`]: one named, versioned key-value store with its index and change feed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::broadcast;

use crate::backend::{Backend, StorageHealth, Watched};
use crate::clock::Clock;
use crate::codec;
use crate::entry::{next_local_version, Entry};
use crate::error::StoreError;
use crate::fingerprint::{bucket_of, fingerprint, value_hash, Digest};

/// A derived view of a store's entries (for discovery: services by type and pool),
/// maintained in the same step as every change so reads never see the two disagree.
pub trait Index: Send + Sync + 'static {
    /// The entry stored under `key` changed from `old` to `new` (`None`: absent), at
    /// `now_ms` on the store's clock.
    fn update(&mut self, key: &[u8], old: Option<&Entry>, new: Option<&Entry>, now_ms: i64);
}

/// A store that needs no derived view.
impl Index for () {
    fn update(&mut self, _: &[u8], _: Option<&Entry>, _: Option<&Entry>, _: i64) {}
}

/// Settings of one store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `dynamic` or `static`; also the backend's tree name and the replication path.
    pub name: String,
    /// How long a tombstone is kept (to mask older writes still travelling) before it is
    /// garbage-collected.
    pub tombstone_max_age_ms: i64,
    /// Flush the backend before a local write returns (static announcements promise
    /// durability before their 201).
    pub durable_writes: bool,
    /// Most entries with a value the store holds; new keys beyond it are refused with
    /// [`StoreError::Full`]. Tombstones of keys the store did not hold have a budget of the
    /// same size of their own, so deletes of unknown ids cannot crowd out announcements.
    pub max_entries: usize,
    /// Most bytes of keys and values of the entries with a value; new keys beyond it are
    /// refused like beyond `max_entries`. Keys the store holds can always be replaced.
    pub max_bytes: usize,
    /// How many changes the change feed buffers for a slow subscriber before it reports a
    /// lag (the subscriber then relies on anti-entropy for what it missed).
    pub change_feed_capacity: usize,
    /// Entries from elsewhere whose timestamp or version is further than this in the
    /// future are refused, so one server with a fast clock cannot pin a key (a far-future
    /// version wins every conflict) or keep an entry alive past its time-to-live.
    pub max_clock_skew_ms: i64,
}

impl StoreConfig {
    /// Defaults matching airlift (tombstones kept one day).
    pub fn new(name: impl Into<String>) -> Self {
        StoreConfig {
            name: name.into(),
            tombstone_max_age_ms: 24 * 60 * 60 * 1000,
            durable_writes: false,
            max_entries: 1_000_000,
            max_bytes: usize::MAX,
            change_feed_capacity: 16 * 1024,
            max_clock_skew_ms: 60_000,
        }
    }
}

/// Where a change came from. The replicator pushes local changes to peers; remote ones
/// arrived from a peer already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Local,
    Remote,
}

/// One applied change, as published on the change feed.
#[derive(Debug, Clone)]
pub struct Change {
    pub entry: Arc<Entry>,
    pub origin: Origin,
    /// Hash of the new value (`None` for a tombstone).
    pub value_hash: Option<u128>,
    /// The key held exactly this value before: a renewal, which a peer holding the old
    /// value can apply from the value hash alone.
    pub value_unchanged: bool,
}

/// "The entry under `key` now has this version, timestamp and max age, and the same value
/// as before (`value_hash`)": how a renewal travels without its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renewal {
    pub key: Vec<u8>,
    pub version: i64,
    pub timestamp: i64,
    pub max_age_ms: Option<i64>,
    pub value_hash: u128,
}

/// A key's state in brief, for comparing replicas key by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub key: Vec<u8>,
    pub version: i64,
    pub fingerprint: u64,
}

/// What happened to a batch of entries offered to [`Store::apply`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    /// Entries that replaced what the store had (or were new).
    pub stored: usize,
    /// Entries that lost to what the store already had (older, or equal).
    pub superseded: usize,
    /// Entries already expired on arrival for a key the store does not hold.
    pub expired: usize,
    /// New keys refused because the store is full.
    pub refused_full: usize,
    /// Those keys, so a sender can be told which of its entries did not fit.
    pub refused_full_keys: Vec<Vec<u8>>,
    /// Entries refused because their timestamp or version is too far in the future.
    pub refused_future: usize,
    /// Renewals that could not be applied because this store does not hold the value they
    /// renew; the sender must send these keys in full.
    pub missing: Vec<Vec<u8>>,
}

/// One stored entry with the hashes replication asks for, computed once per write.
struct Slot {
    entry: Arc<Entry>,
    fingerprint: u64,
    value_hash: Option<u128>,
    /// The version and expiry of the copy in the backend. An unchanged renewal is not
    /// always written at once (see [`must_persist`]), so the backend may hold an older
    /// version of this entry; [`Store::flush`] writes it.
    persisted_version: i64,
    persisted_expires_at: Option<i64>,
}

struct State<I> {
    entries: HashMap<Vec<u8>, Slot>,
    index: I,
    usage: Usage,
}

/// What the entries use of the store's budgets.
#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    values: usize,
    value_bytes: usize,
    tombstones: usize,
}

impl Usage {
    fn of<'e>(entries: impl IntoIterator<Item = &'e Entry>) -> Usage {
        let mut usage = Usage::default();
        entries.into_iter().for_each(|e| usage.add(e));
        usage
    }

    fn add(&mut self, entry: &Entry) {
        match &entry.value {
            Some(value) => {
                self.values += 1;
                self.value_bytes += entry.key.len() + value.len();
            }
            None => self.tombstones += 1,
        }
    }

    fn remove(&mut self, entry: &Entry) {
        match &entry.value {
            Some(value) => {
                self.values = self.values.saturating_sub(1);
                self.value_bytes = self
                    .value_bytes
                    .saturating_sub(entry.key.len() + value.len());
            }
            None => self.tombstones = self.tombstones.saturating_sub(1),
        }
    }
}

/// What a store's entries use, as [`Store::usage`] reports it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StoreUsage {
    /// Entries holding a value (expired ones not yet collected included).
    pub values: usize,
    /// Tombstones not yet collected.
    pub tombstones: usize,
    /// Key and value bytes of the entries holding a value: what `max_bytes` limits.
    pub value_bytes: usize,
}

/// A named store: entries in memory for reads, written through to a [`Backend`].
pub struct Store<I: Index = ()> {
    config: StoreConfig,
    backend: Box<dyn Backend>,
    /// Whether `backend` is failing (every call goes through [`Watched`]).
    health: Arc<StorageHealth>,
    clock: Arc<dyn Clock>,
    state: RwLock<State<I>>,
    changes: broadcast::Sender<Change>,
    /// Entries refused since start for being stamped too far in the future.
    refused_future_total: AtomicU64,
    /// New keys from elsewhere refused since start because the store was full.
    refused_full_total: AtomicU64,
    /// Entries from elsewhere a caller's validation refused since start.
    refused_invalid_total: AtomicU64,
}

/// Most expired entries removed under one hold of the write lock.
pub const GC_CHUNK: usize = 1_000;

/// Longest hold of the write lock by one GC chunk (a backend remove takes tens of
/// microseconds, so a chunk is usually cut by time, not by count).
pub const GC_HOLD: Duration = Duration::from_millis(1);

enum Decision {
    Store,
    Superseded,
    Expired,
    Full,
    FromTheFuture,
}

impl<I: Index> Store<I> {
    /// Opens a store on `backend`, loading what it holds into memory and into `index`.
    ///
    /// Undecodable pairs (a damaged or foreign data file) are logged and removed: the
    /// entry is lost locally and comes back from a peer, as in Java's persistent store.
    pub fn open(
        config: StoreConfig,
        backend: Box<dyn Backend>,
        clock: Arc<dyn Clock>,
        mut index: I,
    ) -> Result<Self, StoreError> {
        let health = Arc::new(StorageHealth::default());
        let backend: Box<dyn Backend> = Box::new(Watched::new(backend, Arc::clone(&health)));
        let mut entries = HashMap::new();
        for (key, bytes) in backend.load()? {
            match codec::decode(&key, &bytes) {
                Some(entry) => {
                    index.update(&key, None, Some(&entry), clock.now_ms());
                    entries.insert(key, Slot::new(entry));
                }
                None => {
                    tracing::warn!(store = %config.name, key = %String::from_utf8_lossy(&key),
                        "removing an undecodable entry from the data directory");
                    backend.remove(&key)?;
                }
            }
        }
        tracing::debug!(store = %config.name, entries = entries.len(), "store opened");
        let (changes, _) = broadcast::channel(config.change_feed_capacity.max(1));
        let usage = Usage::of(entries.values().map(|slot| &*slot.entry));
        Ok(Store {
            config,
            backend,
            health,
            clock,
            state: RwLock::new(State {
                entries,
                index,
                usage,
            }),
            changes,
            refused_future_total: AtomicU64::new(0),
            refused_full_total: AtomicU64::new(0),
            refused_invalid_total: AtomicU64::new(0),
        })
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The store's notion of now, in ms since the epoch.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// A local write of `value` under `key`, stamped with the clock and a version past the
    /// key's last one. Returns the stored entry.
    pub fn put(
        &self,
        key: Vec<u8>,
        value: Vec<u8>,
        max_age_ms: Option<i64>,
    ) -> Result<Arc<Entry>, StoreError> {
        self.write_local(key, Some(value), max_age_ms)
    }

    /// A local delete: a tombstone under `key`, whether or not the key exists (a write
    /// for it may still be on its way from a peer, and the tombstone must win over it).
    pub fn delete(&self, key: Vec<u8>) -> Result<Arc<Entry>, StoreError> {
        self.write_local(key, None, None)
    }

    fn write_local(
        &self,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
        max_age_ms: Option<i64>,
    ) -> Result<Arc<Entry>, StoreError> {
        let now = self.clock.now_ms();
        let entry = {
            let mut state = self.write_state();
            let last_version = state.entries.get(&key).map(|slot| slot.entry.version);
            let entry = Entry {
                key,
                value,
                version: next_local_version(now, last_version),
                timestamp: now,
                max_age_ms,
            };
            // A fresh local write is never expired, never from the future and always beats
            // the key's last version: only a full store can refuse it.
            if let Decision::Full = self.decide(&state, &entry, now, Origin::Local) {
                return Err(self.full_error());
            }
            self.store_locked(&mut state, entry, Origin::Local)?
        };
        if self.config.durable_writes {
            self.backend.flush()?;
        }
        Ok(entry)
    }

    /// Applies entries that came from elsewhere (a peer's push, a pull, a restore) with the
    /// conflict rule; the report says what happened to each. A full store still applies
    /// every entry of a key it holds (renewals and deletes of live workers must never wait
    /// behind a new key) and refuses only the new keys that do not fit, listed in
    /// [`ApplyReport::refused_full_keys`].
    pub fn apply(
        &self,
        entries: impl IntoIterator<Item = Entry>,
        origin: Origin,
    ) -> Result<ApplyReport, StoreError> {
        let now = self.clock.now_ms();
        let mut report = ApplyReport::default();
        {
            let mut state = self.write_state();
            for entry in entries {
                self.apply_locked(&mut state, entry, now, origin, &mut report)?;
            }
        }
        self.finish_apply(&report)?;
        Ok(report)
    }

    /// Applies renewals: each takes the value this store already holds for its key, when
    /// that value has the renewal's hash, and goes through the conflict rule like any
    /// entry. Keys whose value this store does not hold are reported in `missing`.
    pub fn apply_renewals(
        &self,
        renewals: impl IntoIterator<Item = Renewal>,
        origin: Origin,
    ) -> Result<ApplyReport, StoreError> {
        let now = self.clock.now_ms();
        let mut report = ApplyReport::default();
        {
            let mut state = self.write_state();
            for renewal in renewals {
                let value = match state.entries.get(&renewal.key) {
                    Some(slot) if slot.value_hash == Some(renewal.value_hash) => {
                        slot.entry.value.clone()
                    }
                    // Already newer here: nothing to do, nothing to ask for.
                    Some(slot) if slot.entry.version >= renewal.version => {
                        report.superseded += 1;
                        continue;
                    }
                    _ => {
                        report.missing.push(renewal.key);
                        continue;
                    }
                };
                let entry = Entry {
                    key: renewal.key,
                    value,
                    version: renewal.version,
                    timestamp: renewal.timestamp,
                    max_age_ms: renewal.max_age_ms,
                };
                self.apply_locked(&mut state, entry, now, origin, &mut report)?;
            }
        }
        self.finish_apply(&report)?;
        Ok(report)
    }

    fn apply_locked(
        &self,
        state: &mut State<I>,
        entry: Entry,
        now: i64,
        origin: Origin,
        report: &mut ApplyReport,
    ) -> Result<(), StoreError> {
        match self.decide(state, &entry, now, origin) {
            Decision::Store => {
                self.store_locked(state, entry, origin)?;
                report.stored += 1;
            }
            Decision::Superseded => report.superseded += 1,
            Decision::Expired => report.expired += 1,
            Decision::Full => {
                report.refused_full += 1;
                report.refused_full_keys.push(entry.key);
            }
            Decision::FromTheFuture => report.refused_future += 1,
        }
        Ok(())
    }

    fn finish_apply(&self, report: &ApplyReport) -> Result<(), StoreError> {
        if report.refused_full > 0 {
            self.refused_full_total
                .fetch_add(report.refused_full as u64, Ordering::Relaxed);
            tracing::warn!(store = %self.config.name, refused = report.refused_full,
                max_entries = self.config.max_entries, "store full: refused new keys");
        }
        if report.refused_future > 0 {
            self.refused_future_total
                .fetch_add(report.refused_future as u64, Ordering::Relaxed);
            tracing::warn!(store = %self.config.name, refused = report.refused_future,
                max_clock_skew_ms = self.config.max_clock_skew_ms,
                "refused entries stamped too far in the future (a peer's clock is ahead?)");
        }
        if self.config.durable_writes && report.stored > 0 {
            self.backend.flush()?;
        }
        Ok(())
    }

    /// The conflict rule, plus two guards: an entry that is already expired is not worth
    /// storing unless it supersedes what we hold (an old tombstone must still delete an
    /// older value), and a full store takes no new keys.
    fn decide(&self, state: &State<I>, entry: &Entry, now: i64, origin: Origin) -> Decision {
        let horizon = now.saturating_add(self.config.max_clock_skew_ms);
        if origin == Origin::Remote && (entry.timestamp > horizon || entry.version > horizon) {
            return Decision::FromTheFuture;
        }
        let current = state.entries.get(&entry.key).map(|slot| &*slot.entry);
        match current {
            Some(current) if !entry.supersedes(current) => Decision::Superseded,
            None if entry.is_expired(now, self.config.tombstone_max_age_ms) => Decision::Expired,
            _ if !self.fits(&state.usage, current, entry) => Decision::Full,
            _ => Decision::Store,
        }
    }

    /// The budgets: an entry that replaces a value of the same key always fits (renewals
    /// and deletes of what the store holds must never be refused), and so does a tombstone
    /// replacing a tombstone. A value for a key that holds none needs room in the value
    /// budgets; a tombstone for a key the store does not hold needs room in the tombstone
    /// budget.
    fn fits(&self, usage: &Usage, current: Option<&Entry>, entry: &Entry) -> bool {
        let holds_value = current.is_some_and(|c| c.value.is_some());
        match &entry.value {
            _ if holds_value => true,
            Some(value) => {
                usage.values < self.config.max_entries
                    && usage.value_bytes + entry.key.len() + value.len() <= self.config.max_bytes
            }
            None if current.is_some() => true,
            None => usage.tombstones < self.config.max_entries,
        }
    }

    /// The single place an entry enters the store: backend first (so a failed write
    /// changes nothing), then memory and index together, then the change feed.
    fn store_locked(
        &self,
        state: &mut State<I>,
        entry: Entry,
        origin: Origin,
    ) -> Result<Arc<Entry>, StoreError> {
        let mut slot = Slot::new(entry);
        let previous = state.entries.get(&slot.entry.key);
        if must_persist(previous, &slot, self.clock.now_ms()) {
            self.backend
                .put(&slot.entry.key, &codec::encode(&slot.entry))?;
        } else if let Some(previous) = previous {
            slot.persisted_version = previous.persisted_version;
            slot.persisted_expires_at = previous.persisted_expires_at;
        }
        let entry = Arc::clone(&slot.entry);
        let value_hash = slot.value_hash;
        let old = state.entries.insert(entry.key.clone(), slot);
        if let Some(old) = &old {
            state.usage.remove(&old.entry);
        }
        state.usage.add(&entry);
        let value_unchanged =
            value_hash.is_some() && old.as_ref().is_some_and(|old| old.value_hash == value_hash);
        state.index.update(
            &entry.key,
            old.as_ref().map(|o| &*o.entry),
            Some(&entry),
            self.clock.now_ms(),
        );
        // No subscriber is fine: the replicator may not be running (single node).
        let _ = self.changes.send(Change {
            entry: Arc::clone(&entry),
            origin,
            value_hash,
            value_unchanged,
        });
        Ok(entry)
    }

    /// Removes every expired entry (expired values and old tombstones). Not a change: it is
    /// not published and not replicated, since every replica expires entries by the same
    /// rule. Returns how many entries were removed.
    ///
    /// The scan runs under the read lock and the removal in chunks of at most [`GC_CHUNK`]
    /// keys or [`GC_HOLD`], each under its own hold of the write lock, handed fairly to
    /// whoever waits for it afterwards, so 240,000 entries expiring together never stall
    /// a request for more than about one hold. (With the lock released unfairly, the
    /// sweep took it back before a waiting writer woke: one PUT waited the whole 5 s
    /// sweep.) A key renewed between the scan and its chunk is re-checked under the lock
    /// and kept.
    pub fn collect_garbage(&self) -> Result<usize, StoreError> {
        let now = self.clock.now_ms();
        let tombstone_max_age = self.config.tombstone_max_age_ms;
        let expired: Vec<Vec<u8>> = self
            .read_state()
            .entries
            .values()
            .filter(|slot| slot.entry.is_expired(now, tombstone_max_age))
            .map(|slot| slot.entry.key.clone())
            .collect();
        let mut removed = 0;
        let mut keys = expired.iter().peekable();
        while keys.peek().is_some() {
            let mut state = self.write_state();
            let held = Instant::now();
            for key in keys.by_ref().take(GC_CHUNK) {
                let still_expired = state
                    .entries
                    .get(key)
                    .is_some_and(|slot| slot.entry.is_expired(now, tombstone_max_age));
                if still_expired {
                    self.backend.remove(key)?;
                    if let Some(old) = state.entries.remove(key) {
                        state.usage.remove(&old.entry);
                        state.index.update(key, Some(&old.entry), None, now);
                        removed += 1;
                    }
                }
                if held.elapsed() >= GC_HOLD {
                    break;
                }
            }
            // Waiting writers and readers go before the next chunk.
            RwLockWriteGuard::unlock_fair(state);
        }
        Ok(removed)
    }

    /// The entry stored under `key`, whatever its state (tombstone, expired).
    pub fn get(&self, key: &[u8]) -> Option<Arc<Entry>> {
        self.read_state()
            .entries
            .get(key)
            .map(|slot| Arc::clone(&slot.entry))
    }

    /// The entries stored under `keys` (absent keys are skipped).
    pub fn get_many<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>) -> Vec<Arc<Entry>> {
        let state = self.read_state();
        keys.into_iter()
            .filter_map(|key| state.entries.get(key).map(|slot| Arc::clone(&slot.entry)))
            .collect()
    }

    /// Every stored entry, including tombstones and expired entries not yet collected,
    /// sorted by key (the raw dump of `GET /v1/store/{store}`).
    pub fn entries(&self) -> Vec<Arc<Entry>> {
        let mut entries: Vec<Arc<Entry>> = self
            .read_state()
            .entries
            .values()
            .map(|slot| Arc::clone(&slot.entry))
            .collect();
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        entries
    }

    /// The digest of every entry not expired at the store's now. Expired entries are left
    /// out because replicas collect garbage at different moments; counting them would make
    /// agreeing replicas look different until both had collected.
    pub fn digest(&self) -> Digest {
        let now = self.clock.now_ms();
        let mut digest = Digest::empty();
        for slot in self.read_state().entries.values() {
            if !slot.entry.is_expired(now, self.config.tombstone_max_age_ms) {
                digest.add(&slot.entry.key, slot.fingerprint);
            }
        }
        digest
    }

    /// Summaries of the unexpired entries in the given digest buckets.
    pub fn summaries(&self, buckets: &[usize]) -> Vec<Summary> {
        let now = self.clock.now_ms();
        let mut wanted = [false; crate::fingerprint::BUCKETS];
        for &bucket in buckets {
            if let Some(flag) = wanted.get_mut(bucket) {
                *flag = true;
            }
        }
        let mut summaries: Vec<Summary> = self
            .read_state()
            .entries
            .values()
            .filter(|slot| wanted[bucket_of(&slot.entry.key)])
            .filter(|slot| !slot.entry.is_expired(now, self.config.tombstone_max_age_ms))
            .map(|slot| Summary {
                key: slot.entry.key.clone(),
                version: slot.entry.version,
                fingerprint: slot.fingerprint,
            })
            .collect();
        summaries.sort_by(|a, b| a.key.cmp(&b.key));
        summaries
    }

    /// `Some(error)` while the backend is failing: since its last failure no flush has
    /// succeeded, so writes may not be reaching the disk.
    pub fn storage_failure(&self) -> Option<String> {
        self.health.failure()
    }

    /// Entries refused since start for being stamped too far in the future.
    pub fn refused_future_total(&self) -> u64 {
        self.refused_future_total.load(Ordering::Relaxed)
    }

    /// Counts entries a caller refused before applying them for being stamped too far in
    /// the future (see [`future_horizon_ms`](Self::future_horizon_ms)).
    pub fn count_refused_future(&self, refused: usize) {
        self.refused_future_total
            .fetch_add(refused as u64, Ordering::Relaxed);
    }

    /// Counts entries a caller's validation refused before they reached the store.
    pub fn count_refused_invalid(&self, refused: usize) {
        self.refused_invalid_total
            .fetch_add(refused as u64, Ordering::Relaxed);
    }

    /// Entries from elsewhere a caller's validation refused since start.
    pub fn refused_invalid_total(&self) -> u64 {
        self.refused_invalid_total.load(Ordering::Relaxed)
    }

    /// New keys from elsewhere refused since start because the store was full.
    pub fn refused_full_total(&self) -> u64 {
        self.refused_full_total.load(Ordering::Relaxed)
    }

    /// The latest timestamp or version an entry from elsewhere may carry now: the store's
    /// clock plus `max_clock_skew_ms`.
    pub fn future_horizon_ms(&self) -> i64 {
        self.clock
            .now_ms()
            .saturating_add(self.config.max_clock_skew_ms)
    }

    pub fn len(&self) -> usize {
        self.read_state().entries.len()
    }

    /// What the entries use: kept up to date by every write, so reading it is one lock
    /// and a copy (the metrics scrape reads it).
    pub fn usage(&self) -> StoreUsage {
        let usage = self.read_state().usage;
        StoreUsage {
            values: usage.values,
            tombstones: usage.tombstones,
            value_bytes: usage.value_bytes,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many entries the store holds, tombstones and expired entries included, and the
    /// XOR of their fingerprints: what a node records at a clean shutdown (right after
    /// [`flush`](Self::flush), when the backend holds exactly this) and compares with what
    /// it reads at the next start, to notice data the storage engine lost.
    pub fn content_record(&self) -> (usize, u64) {
        let state = self.read_state();
        let fingerprints = state
            .entries
            .values()
            .fold(0u64, |acc, slot| acc ^ slot.fingerprint);
        (state.entries.len(), fingerprints)
    }

    /// Runs `read` against the index under the read lock.
    pub fn read_index<R>(&self, read: impl FnOnce(&I) -> R) -> R {
        read(&self.read_state().index)
    }

    /// Every change applied from now on. A subscriber that falls more than
    /// `change_feed_capacity` changes behind is told how many it missed.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Makes every write so far durable.
    /// Writes the renewals not yet persisted and makes every write durable. A clean
    /// shutdown calls it, so a restart finds exactly what the node held.
    pub fn flush(&self) -> Result<(), StoreError> {
        {
            let mut state = self.write_state();
            for slot in state.entries.values_mut() {
                if slot.persisted_version != slot.entry.version {
                    self.backend
                        .put(&slot.entry.key, &codec::encode(&slot.entry))?;
                    slot.persisted_version = slot.entry.version;
                    slot.persisted_expires_at = slot.entry.expires_at();
                }
            }
        }
        self.backend.flush()
    }

    fn full_error(&self) -> StoreError {
        let limit = if self.config.max_bytes == usize::MAX {
            format!("{} entries", self.config.max_entries)
        } else {
            format!(
                "{} entries or {} bytes",
                self.config.max_entries, self.config.max_bytes
            )
        };
        StoreError::Full {
            store: self.config.name.clone(),
            limit,
        }
    }

    // parking_lot's lock does not poison: a panic while it is held (in an index update,
    // say) leaves the map consistent, since every mutation is a single insert or remove,
    // and the store keeps serving.
    fn read_state(&self) -> RwLockReadGuard<'_, State<I>> {
        self.state.read()
    }

    fn write_state(&self) -> RwLockWriteGuard<'_, State<I>> {
        self.state.write()
    }
}

impl Slot {
    /// A slot for `entry`, recorded as persisted (the caller writes it, or it came from
    /// the backend).
    fn new(entry: Entry) -> Self {
        Slot {
            fingerprint: fingerprint(&entry),
            value_hash: entry.value.as_deref().map(value_hash),
            persisted_version: entry.version,
            persisted_expires_at: entry.expires_at(),
            entry: Arc::new(entry),
        }
    }
}

/// Whether a write must reach the backend now.
///
/// Nearly every write to the dynamic store is a renewal: a node announcing the same value
/// again every few seconds. Writing each one to disk is the largest cost of an
/// announcement, and buys little: the copy on disk only matters after a crash, and a copy
/// that is still valid is as good as the newest one (the node renews it within seconds,
/// and a peer holds the newest). So a renewal (same value, with a time-to-live) is written
/// only once the copy on disk has less than half of its max age left; with Trino's 8 s
/// renewals and a 30 s max age that is every other renewal. Everything else (a new or
/// changed value, a delete, an entry without time-to-live) is written at once.
fn must_persist(previous: Option<&Slot>, next: &Slot, now_ms: i64) -> bool {
    let (Some(previous), Some(max_age)) = (previous, next.entry.max_age_ms) else {
        return true;
    };
    let renewal = next.value_hash.is_some() && previous.value_hash == next.value_hash;
    let persisted_left = previous
        .persisted_expires_at
        .map(|at| at.saturating_sub(now_ms));
    !renewal || persisted_left.is_none_or(|left| left <= max_age / 2)
}

impl<I: Index> std::fmt::Debug for Store<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("name", &self.config.name)
            .field("entries", &self.len())
            .finish()
    }
}
