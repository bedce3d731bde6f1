//! [`Store`]: one named, versioned key-value store with its index and change feed.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::broadcast;

use crate::backend::Backend;
use crate::clock::Clock;
use crate::codec;
use crate::entry::{next_local_version, Entry};
use crate::error::StoreError;

/// A derived view of a store's entries (for discovery: services by type and pool),
/// maintained in the same step as every change so reads never see the two disagree.
pub trait Index: Send + Sync + 'static {
    /// The entry stored under `key` changed from `old` to `new` (`None`: absent).
    fn update(&mut self, key: &[u8], old: Option<&Entry>, new: Option<&Entry>);
}

/// A store that needs no derived view.
impl Index for () {
    fn update(&mut self, _: &[u8], _: Option<&Entry>, _: Option<&Entry>) {}
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
    /// Most entries (live, expired or tombstones) the store holds; new keys beyond it are
    /// refused with [`StoreError::Full`].
    pub max_entries: usize,
    /// How many changes the change feed buffers for a slow subscriber before it reports a
    /// lag (the subscriber then relies on anti-entropy for what it missed).
    pub change_feed_capacity: usize,
}

impl StoreConfig {
    /// Defaults matching airlift (tombstones kept one day).
    pub fn new(name: impl Into<String>) -> Self {
        StoreConfig {
            name: name.into(),
            tombstone_max_age_ms: 24 * 60 * 60 * 1000,
            durable_writes: false,
            max_entries: 1_000_000,
            change_feed_capacity: 16 * 1024,
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
}

/// What happened to a batch of entries offered to [`Store::apply`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ApplyReport {
    /// Entries that replaced what the store had (or were new).
    pub stored: usize,
    /// Entries that lost to what the store already had (older, or equal).
    pub superseded: usize,
    /// Entries already expired on arrival for a key the store does not hold.
    pub expired: usize,
    /// New keys refused because the store is full.
    pub refused_full: usize,
}

struct State<I> {
    entries: HashMap<Vec<u8>, Arc<Entry>>,
    index: I,
}

/// A named store: entries in memory for reads, written through to a [`Backend`].
pub struct Store<I: Index = ()> {
    config: StoreConfig,
    backend: Box<dyn Backend>,
    clock: Arc<dyn Clock>,
    state: RwLock<State<I>>,
    changes: broadcast::Sender<Change>,
}

enum Decision {
    Store,
    Superseded,
    Expired,
    Full,
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
        let mut entries = HashMap::new();
        for (key, bytes) in backend.load()? {
            match codec::decode(&key, &bytes) {
                Some(entry) => {
                    index.update(&key, None, Some(&entry));
                    entries.insert(key, Arc::new(entry));
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
        Ok(Store {
            config,
            backend,
            clock,
            state: RwLock::new(State { entries, index }),
            changes,
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
            let last_version = state.entries.get(&key).map(|e| e.version);
            let entry = Entry {
                key,
                value,
                version: next_local_version(now, last_version),
                timestamp: now,
                max_age_ms,
            };
            match self.decide(&state, &entry, now) {
                Decision::Full => return Err(self.full_error()),
                // A fresh local write is never expired and always beats the last version.
                Decision::Store | Decision::Superseded | Decision::Expired => {}
            }
            self.store_locked(&mut state, entry, Origin::Local)?
        };
        if self.config.durable_writes {
            self.backend.flush()?;
        }
        Ok(entry)
    }

    /// Applies entries that came from elsewhere (a peer's push, a pull, a restore) with the
    /// conflict rule. Each entry is applied atomically; the report says what happened.
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
                match self.decide(&state, &entry, now) {
                    Decision::Store => {
                        self.store_locked(&mut state, entry, origin)?;
                        report.stored += 1;
                    }
                    Decision::Superseded => report.superseded += 1,
                    Decision::Expired => report.expired += 1,
                    Decision::Full => report.refused_full += 1,
                }
            }
        }
        if report.refused_full > 0 {
            tracing::warn!(store = %self.config.name, refused = report.refused_full,
                max_entries = self.config.max_entries, "store full: refused new keys");
        }
        if self.config.durable_writes && report.stored > 0 {
            self.backend.flush()?;
        }
        Ok(report)
    }

    /// The conflict rule, plus two guards: an entry that is already expired is not worth
    /// storing unless it supersedes what we hold (an old tombstone must still delete an
    /// older value), and a full store takes no new keys.
    fn decide(&self, state: &State<I>, entry: &Entry, now: i64) -> Decision {
        match state.entries.get(&entry.key) {
            Some(current) if !entry.supersedes(current) => Decision::Superseded,
            Some(_) => Decision::Store,
            None if entry.is_expired(now, self.config.tombstone_max_age_ms) => Decision::Expired,
            None if state.entries.len() >= self.config.max_entries => Decision::Full,
            None => Decision::Store,
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
        self.backend.put(&entry.key, &codec::encode(&entry))?;
        let entry = Arc::new(entry);
        let old = state.entries.insert(entry.key.clone(), Arc::clone(&entry));
        state.index.update(&entry.key, old.as_deref(), Some(&entry));
        // No subscriber is fine: the replicator may not be running (single node).
        let _ = self.changes.send(Change {
            entry: Arc::clone(&entry),
            origin,
        });
        Ok(entry)
    }

    /// Removes every expired entry (expired values and old tombstones). Not a change: it is
    /// not published and not replicated, since every replica expires entries by the same
    /// rule. Returns how many entries were removed.
    pub fn collect_garbage(&self) -> Result<usize, StoreError> {
        let now = self.clock.now_ms();
        let mut state = self.write_state();
        let expired: Vec<Vec<u8>> = state
            .entries
            .values()
            .filter(|e| e.is_expired(now, self.config.tombstone_max_age_ms))
            .map(|e| e.key.clone())
            .collect();
        for key in &expired {
            self.backend.remove(key)?;
            if let Some(old) = state.entries.remove(key) {
                state.index.update(key, Some(&old), None);
            }
        }
        Ok(expired.len())
    }

    /// The entry stored under `key`, whatever its state (tombstone, expired).
    pub fn get(&self, key: &[u8]) -> Option<Arc<Entry>> {
        self.read_state().entries.get(key).cloned()
    }

    /// Every stored entry, including tombstones and expired entries not yet collected,
    /// sorted by key (the raw dump of `GET /v1/store/{store}`).
    pub fn entries(&self) -> Vec<Arc<Entry>> {
        let mut entries: Vec<Arc<Entry>> = self.read_state().entries.values().cloned().collect();
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        entries
    }

    pub fn len(&self) -> usize {
        self.read_state().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
    pub fn flush(&self) -> Result<(), StoreError> {
        self.backend.flush()
    }

    fn full_error(&self) -> StoreError {
        StoreError::Full {
            store: self.config.name.clone(),
            max_entries: self.config.max_entries,
        }
    }

    // A panic while the lock is held (in an index update, say) leaves the map consistent:
    // every mutation is a single insert or remove. Keep serving rather than poisoning
    // every later request.
    fn read_state(&self) -> RwLockReadGuard<'_, State<I>> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_state(&self) -> RwLockWriteGuard<'_, State<I>> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl<I: Index> std::fmt::Debug for Store<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("name", &self.config.name)
            .field("entries", &self.len())
            .finish()
    }
}
