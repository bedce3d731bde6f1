//! The store's behaviour, run once over the memory backend and once over a real sled
//! database in a temporary directory: both backends must pass the same suite.

// Test code: a failed unwrap is a failed test, which is what we want.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use discovery_store::{
    Backend, Change, Database, Entry, Index, ManualClock, MemoryBackend, Origin, Store,
    StoreConfig, StoreError,
};
use proptest::prelude::*;

const T0: i64 = 1_700_000_000_000;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// An index that mirrors which keys hold which value, to check the store keeps its
/// index in step with its entries.
#[derive(Default)]
struct MirrorIndex {
    values: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Index for MirrorIndex {
    fn update(&mut self, key: &[u8], _old: Option<&Entry>, new: Option<&Entry>, _now: i64) {
        match new {
            Some(entry) => self.values.insert(key.to_vec(), entry.value.clone()),
            None => self.values.remove(key),
        };
    }
}

/// A way to make backends: fresh ones, and reopened ones over the same data.
trait BackendKind {
    fn fresh(&mut self) -> Box<dyn Backend>;
}

struct Memory(MemoryBackend);

impl BackendKind for Memory {
    fn fresh(&mut self) -> Box<dyn Backend> {
        self.0 = MemoryBackend::new();
        Box::new(self.0.clone())
    }
}

struct Sled {
    dirs: Vec<tempfile::TempDir>,
}

impl BackendKind for Sled {
    fn fresh(&mut self) -> Box<dyn Backend> {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path()).unwrap();
        let backend = db.backend("dynamic").unwrap();
        self.dirs.push(dir);
        Box::new(backend)
    }
}

fn kinds() -> Vec<(&'static str, Box<dyn BackendKind>)> {
    vec![
        ("memory", Box::new(Memory(MemoryBackend::new()))),
        ("sled", Box::new(Sled { dirs: Vec::new() })),
    ]
}

fn open(backend: Box<dyn Backend>, clock: &Arc<ManualClock>) -> Store<MirrorIndex> {
    open_with(StoreConfig::new("dynamic"), backend, clock)
}

fn open_with(
    config: StoreConfig,
    backend: Box<dyn Backend>,
    clock: &Arc<ManualClock>,
) -> Store<MirrorIndex> {
    Store::open(config, backend, clock.clone(), MirrorIndex::default()).unwrap()
}

fn entry(key: &str, value: Option<&str>, version: i64) -> Entry {
    Entry {
        key: key.as_bytes().to_vec(),
        value: value.map(|v| v.as_bytes().to_vec()),
        version,
        timestamp: version,
        max_age_ms: None,
    }
}

fn value_of(store: &Store<MirrorIndex>, key: &str) -> Option<Vec<u8>> {
    store.get(key.as_bytes()).and_then(|e| e.value.clone())
}

/// The index must always agree with the entries.
#[track_caller]
fn assert_index_consistent(store: &Store<MirrorIndex>) {
    let from_entries: BTreeMap<Vec<u8>, Option<Vec<u8>>> = store
        .entries()
        .iter()
        .map(|e| (e.key.clone(), e.value.clone()))
        .collect();
    store.read_index(|index| assert_eq!(index.values, from_entries));
}

/// Runs `test` once per backend, naming the backend on failure.
fn for_each_backend(test: impl Fn(&mut dyn BackendKind)) {
    for (name, mut kind) in kinds() {
        eprintln!("backend: {name}");
        test(kind.as_mut());
    }
}

#[test]
fn local_write_is_versioned_by_the_clock() {
    for_each_backend(|kind| {
        let clock = Arc::new(ManualClock::new(T0));
        let store = open(kind.fresh(), &clock);
        let stored = store
            .put(b"n1".to_vec(), b"v".to_vec(), Some(30_000))
            .unwrap();
        assert_eq!(stored.version, T0);
        assert_eq!(stored.timestamp, T0);
        assert_eq!(stored.max_age_ms, Some(30_000));
        assert_index_consistent(&store);
    });
}

#[test]
fn put_then_delete_in_the_same_millisecond_keeps_both_in_order() {
    for_each_backend(|kind| {
        let clock = Arc::new(ManualClock::new(T0));
        let store = open(kind.fresh(), &clock);
        let put = store.put(b"n1".to_vec(), b"v".to_vec(), None).unwrap();
        let delete = store.delete(b"n1".to_vec()).unwrap();
        assert!(delete.version > put.version);
        assert!(store.get(b"n1").unwrap().is_tombstone());
        let again = store.put(b"n1".to_vec(), b"w".to_vec(), None).unwrap();
        assert!(again.version > delete.version);
        assert_eq!(value_of(&store, "n1"), Some(b"w".to_vec()));
        assert_index_consistent(&store);
    });
}

#[test]
fn older_and_equal_versions_lose_and_newer_tombstones_win() {
    for_each_backend(|kind| {
        let clock = Arc::new(ManualClock::new(T0));
        let store = open(kind.fresh(), &clock);
        let report = store
            .apply([entry("k", Some("b"), T0)], Origin::Remote)
            .unwrap();
        assert_eq!(report.stored, 1);
        let report = store
            .apply([entry("k", Some("z"), T0 - 10_000)], Origin::Remote)
            .unwrap();
        assert_eq!(report.superseded, 1);
        assert_eq!(value_of(&store, "k"), Some(b"b".to_vec()));
        // Equal version: the larger value wins, whichever arrives first.
        store
            .apply([entry("k", Some("a"), T0)], Origin::Remote)
            .unwrap();
        assert_eq!(value_of(&store, "k"), Some(b"b".to_vec()));
        store
            .apply([entry("k", Some("c"), T0)], Origin::Remote)
            .unwrap();
        assert_eq!(value_of(&store, "k"), Some(b"c".to_vec()));
        store
            .apply([entry("k", None, T0 + 1)], Origin::Remote)
            .unwrap();
        assert!(store.get(b"k").unwrap().is_tombstone());
        let report = store
            .apply([entry("k", Some("late"), T0)], Origin::Remote)
            .unwrap();
        assert_eq!(
            report.superseded, 1,
            "an older write must not resurrect a delete"
        );
        assert_index_consistent(&store);
    });
}

#[test]
fn entries_expired_on_arrival_are_dropped_unless_they_supersede() {
    for_each_backend(|kind| {
        let clock = Arc::new(ManualClock::new(T0));
        let store = open(kind.fresh(), &clock);
        let mut stale = entry("gone", Some("v"), T0 - 60_000);
        stale.max_age_ms = Some(30_000);
        let old_tombstone = entry("old-delete", None, T0 - 2 * DAY_MS);
        let report = store.apply([stale, old_tombstone], Origin::Remote).unwrap();
        assert_eq!(report.expired, 2);
        assert!(store.is_empty());

        // An old static value (no TTL) and a tombstone for it that is past the tombstone
        // age: the tombstone must still delete the value rather than be skipped.
        store
            .apply([entry("s", Some("v"), T0 - 3 * DAY_MS)], Origin::Remote)
            .unwrap();
        let report = store
            .apply([entry("s", None, T0 - 2 * DAY_MS)], Origin::Remote)
            .unwrap();
        assert_eq!(report.stored, 1);
        assert!(store.get(b"s").unwrap().is_tombstone());
        assert_index_consistent(&store);
    });
}

#[test]
fn garbage_collection_removes_expired_values_and_old_tombstones_only() {
    for_each_backend(|kind| {
        let clock = Arc::new(ManualClock::new(T0));
        let store = open(kind.fresh(), &clock);
        store
            .put(b"ttl".to_vec(), b"v".to_vec(), Some(30_000))
            .unwrap();
        store.put(b"static".to_vec(), b"v".to_vec(), None).unwrap();
        store.delete(b"deleted".to_vec()).unwrap();

        clock.advance(30_000);
        assert_eq!(store.collect_garbage().unwrap(), 0, "expiry is strict");
        assert!(store.get(b"ttl").unwrap().is_live(clock_now(&clock)));

        clock.advance(1);
        assert!(!store.get(b"ttl").unwrap().is_live(clock_now(&clock)));
        assert_eq!(store.collect_garbage().unwrap(), 1);
        assert!(store.get(b"ttl").is_none());

        clock.set(T0 + DAY_MS + 1);
        assert_eq!(store.collect_garbage().unwrap(), 1);
        assert!(store.get(b"deleted").is_none());
        assert!(
            store.get(b"static").is_some(),
            "entries without TTL never expire"
        );
        assert_index_consistent(&store);
    });
}

fn clock_now(clock: &ManualClock) -> i64 {
    use discovery_store::Clock;
    clock.now_ms()
}

#[test]
fn changes_are_published_with_their_origin_and_gc_is_not_a_change() {
    for_each_backend(|kind| {
        let clock = Arc::new(ManualClock::new(T0));
        let store = open(kind.fresh(), &clock);
        let mut feed = store.subscribe();
        store.put(b"a".to_vec(), b"v".to_vec(), Some(10)).unwrap();
        store
            .apply([entry("b", Some("v"), T0)], Origin::Remote)
            .unwrap();
        store
            .apply([entry("b", Some("old"), T0 - 1)], Origin::Remote)
            .unwrap();
        clock.advance(11);
        assert_eq!(store.collect_garbage().unwrap(), 1);

        let first: Change = feed.try_recv().unwrap();
        assert_eq!(
            (first.entry.key.as_slice(), first.origin),
            (&b"a"[..], Origin::Local)
        );
        let second = feed.try_recv().unwrap();
        assert_eq!(
            (second.entry.key.as_slice(), second.origin),
            (&b"b"[..], Origin::Remote)
        );
        assert!(
            feed.try_recv().is_err(),
            "superseded entries and GC publish nothing"
        );
    });
}

#[test]
fn bytes_are_budgeted_and_tombstones_of_unknown_keys_do_not_crowd_out_values() {
    for_each_backend(|kind| {
        let clock = Arc::new(ManualClock::new(T0));
        let mut config = StoreConfig::new("dynamic");
        config.max_entries = 2;
        config.max_bytes = 10;
        let store = open_with(config, kind.fresh(), &clock);
        store.put(b"a".to_vec(), b"12345".to_vec(), None).unwrap();
        assert!(
            matches!(
                store.put(b"b".to_vec(), b"123456".to_vec(), None),
                Err(StoreError::Full { .. })
            ),
            "6 + 1 more bytes do not fit in 10"
        );
        store.put(b"b".to_vec(), b"123".to_vec(), None).unwrap();
        // A held key may grow: renewals and changes of what the store holds never wait.
        store.put(b"a".to_vec(), b"1234567".to_vec(), None).unwrap();

        // Deletes of ids the store never held use a budget of their own: when it is spent,
        // such deletes are refused, and announcements still find room.
        store.delete(b"x1".to_vec()).unwrap();
        store.delete(b"x2".to_vec()).unwrap();
        assert!(matches!(
            store.delete(b"x3".to_vec()),
            Err(StoreError::Full { .. })
        ));
        store.delete(b"b".to_vec()).unwrap();
        store.put(b"c".to_vec(), b"1".to_vec(), None).unwrap();
        assert_eq!(value_of(&store, "c"), Some(b"1".to_vec()));
    });
}

#[test]
fn a_full_store_refuses_new_keys_but_updates_existing_ones() {
    for_each_backend(|kind| {
        let clock = Arc::new(ManualClock::new(T0));
        let mut config = StoreConfig::new("dynamic");
        config.max_entries = 2;
        let store = open_with(config, kind.fresh(), &clock);
        store.put(b"a".to_vec(), b"v".to_vec(), None).unwrap();
        store.put(b"b".to_vec(), b"v".to_vec(), None).unwrap();
        assert!(matches!(
            store.put(b"c".to_vec(), b"v".to_vec(), None),
            Err(StoreError::Full { .. })
        ));
        // A new key that does not fit never holds back the update of a key the store
        // holds: the update is applied, the new key refused and named.
        let report = store
            .apply(
                [entry("d", Some("v"), T0), entry("a", Some("newer"), T0 + 5)],
                Origin::Remote,
            )
            .unwrap();
        assert_eq!((report.stored, report.refused_full), (1, 1));
        assert_eq!(report.refused_full_keys, vec![b"d".to_vec()]);
        assert_eq!(value_of(&store, "a"), Some(b"newer".to_vec()));
        assert!(store.get(b"d").is_none());
        assert_eq!(store.refused_full_total(), 1);
        store.put(b"a".to_vec(), b"w".to_vec(), None).unwrap();
        store.delete(b"b".to_vec()).unwrap();
        assert_eq!(store.len(), 2);
    });
}

#[test]
fn reopening_a_sled_directory_restores_entries_and_index() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    {
        let db = Database::open(dir.path()).unwrap();
        let store = open(Box::new(db.backend("static").unwrap()), &clock);
        store.put(b"s1".to_vec(), b"one".to_vec(), None).unwrap();
        store.put(b"s2".to_vec(), b"two".to_vec(), None).unwrap();
        store.delete(b"s2".to_vec()).unwrap();
        store.flush().unwrap();
    }
    let db = Database::open(dir.path()).unwrap();
    let store = open(Box::new(db.backend("static").unwrap()), &clock);
    assert_eq!(value_of(&store, "s1"), Some(b"one".to_vec()));
    assert!(store.get(b"s2").unwrap().is_tombstone());
    assert_index_consistent(&store);
    // Versions keep increasing after a restart.
    let next = store.put(b"s2".to_vec(), b"again".to_vec(), None).unwrap();
    assert!(next.version > T0);
}

#[test]
fn a_second_open_of_the_same_sled_directory_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let _db = Database::open(dir.path()).unwrap();
    let second = Database::open(dir.path());
    assert!(matches!(second, Err(StoreError::Backend(_))));
}

#[test]
fn undecodable_pairs_are_dropped_on_open() {
    for_each_backend(|kind| {
        let backend = kind.fresh();
        backend.put(b"bad", b"\x09garbage").unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let store = open(backend, &clock);
        assert!(store.is_empty());
    });
}

// ---------------------------------------------------------------------------------------
// Properties of the conflict rule
// ---------------------------------------------------------------------------------------

fn arb_entry() -> impl Strategy<Value = Entry> {
    (
        prop::sample::select(vec!["a", "b", "c"]),
        prop::option::of(prop::sample::select(vec!["x", "y", "z"])),
        0i64..4,
        0i64..3,
        prop::option::of(prop::sample::select(vec![1_000i64, 60_000])),
    )
        .prop_map(|(key, value, version, skew, max_age_ms)| Entry {
            key: key.as_bytes().to_vec(),
            value: value.map(|v| v.as_bytes().to_vec()),
            version: T0 + version,
            timestamp: T0 + version - skew,
            max_age_ms,
        })
}

fn final_state(backend: Box<dyn Backend>, entries: &[Entry]) -> Vec<Entry> {
    let clock = Arc::new(ManualClock::new(T0));
    let store = open(backend, &clock);
    for e in entries {
        store.apply([e.clone()], Origin::Remote).unwrap();
    }
    assert_index_consistent(&store);
    store.entries().iter().map(|e| (**e).clone()).collect()
}

proptest! {
    /// Any order of the same entries, with repeats, yields the same final state.
    #[test]
    fn any_order_of_the_same_entries_converges(
        entries in prop::collection::vec(arb_entry(), 1..12),
        seed in any::<u64>(),
    ) {
        let mut shuffled = entries.clone();
        // A deterministic shuffle from the seed, plus a repeated tail (idempotence).
        let len = shuffled.len();
        for i in (1..len).rev() {
            let j = (seed.wrapping_mul(6364136223846793005).wrapping_add(i as u64) % (i as u64 + 1)) as usize;
            shuffled.swap(i, j);
        }
        shuffled.extend(entries.iter().take(3).cloned());
        let a = final_state(Box::new(MemoryBackend::new()), &entries);
        let b = final_state(Box::new(MemoryBackend::new()), &shuffled);
        prop_assert_eq!(a, b);
    }

    /// A tombstone with a higher version hides every older value, in any order.
    #[test]
    fn a_newer_tombstone_hides_any_older_value(
        older in prop::collection::vec(arb_entry(), 0..8),
        tombstone_first in any::<bool>(),
    ) {
        let tombstone = Entry { key: b"a".to_vec(), value: None, version: T0 + 10, timestamp: T0 + 10, max_age_ms: None };
        let mut entries = older;
        if tombstone_first { entries.insert(0, tombstone.clone()) } else { entries.push(tombstone.clone()) }
        let state = final_state(Box::new(MemoryBackend::new()), &entries);
        let a = state.iter().find(|e| e.key == b"a").unwrap();
        prop_assert_eq!(a, &tombstone);
    }

    /// Equal versions with different content pick the same winner in either order.
    #[test]
    fn equal_versions_resolve_identically(a in arb_entry(), b in arb_entry()) {
        let mut b = b;
        b.key = a.key.clone();
        b.version = a.version;
        let ab = final_state(Box::new(MemoryBackend::new()), &[a.clone(), b.clone()]);
        let ba = final_state(Box::new(MemoryBackend::new()), &[b, a]);
        prop_assert_eq!(ab, ba);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// The sled backend reaches the same state as the memory backend.
    #[test]
    fn sled_and_memory_agree(entries in prop::collection::vec(arb_entry(), 1..12)) {
        let mut sled = Sled { dirs: Vec::new() };
        let on_sled = final_state(sled.fresh(), &entries);
        let in_memory = final_state(Box::new(MemoryBackend::new()), &entries);
        prop_assert_eq!(on_sled, in_memory);
    }
}

// ---------------------------------------------------------------------------------------
// What replication relies on
// ---------------------------------------------------------------------------------------

fn renewal_of(entry: &Entry, version: i64) -> discovery_store::Renewal {
    discovery_store::Renewal {
        key: entry.key.clone(),
        version,
        timestamp: version,
        max_age_ms: Some(30_000),
        value_hash: discovery_store::fingerprint::value_hash(entry.value.as_deref().unwrap()),
    }
}

#[test]
fn renewals_reuse_the_held_value_and_report_what_they_cannot_apply() {
    for_each_backend(|kind| {
        let clock = Arc::new(ManualClock::new(T0));
        let store = open(kind.fresh(), &clock);
        let held = entry("n1", Some("services"), T0);
        store.apply([held.clone()], Origin::Remote).unwrap();

        let report = store
            .apply_renewals([renewal_of(&held, T0 + 10)], Origin::Remote)
            .unwrap();
        assert_eq!(report.stored, 1);
        let renewed = store.get(b"n1").unwrap();
        assert_eq!(
            (renewed.version, renewed.value.as_deref()),
            (T0 + 10, Some(&b"services"[..]))
        );
        assert_eq!(renewed.max_age_ms, Some(30_000));

        let other_value = entry("n1", Some("different"), T0);
        let unknown_key = entry("n2", Some("services"), T0);
        let report = store
            .apply_renewals(
                [
                    renewal_of(&other_value, T0 + 20),
                    renewal_of(&unknown_key, T0 + 20),
                    renewal_of(&held, T0 + 5),
                ],
                Origin::Remote,
            )
            .unwrap();
        assert_eq!(report.missing, vec![b"n1".to_vec(), b"n2".to_vec()]);
        assert_eq!(
            report.superseded, 1,
            "an older renewal of the held value changes nothing"
        );
        assert_eq!(store.get(b"n1").unwrap().version, T0 + 10);
        assert_index_consistent(&store);
    });
}

#[test]
fn entries_from_too_far_in_the_future_are_refused_from_peers_only() {
    for_each_backend(|kind| {
        let clock = Arc::new(ManualClock::new(T0));
        let store = open(kind.fresh(), &clock);
        let skew = StoreConfig::new("x").max_clock_skew_ms;
        let mut future_timestamp = entry("a", Some("v"), T0);
        future_timestamp.timestamp = T0 + skew + 1;
        let future_version = entry("b", Some("v"), T0 + skew + 1);
        let just_inside = entry("c", Some("v"), T0 + skew);
        let report = store
            .apply(
                [future_timestamp, future_version, just_inside],
                Origin::Remote,
            )
            .unwrap();
        assert_eq!((report.refused_future, report.stored), (2, 1));
        assert!(store.get(b"a").is_none() && store.get(b"b").is_none());
    });
}

#[test]
fn changes_say_whether_the_value_changed() {
    for_each_backend(|kind| {
        let clock = Arc::new(ManualClock::new(T0));
        let store = open(kind.fresh(), &clock);
        let mut feed = store.subscribe();
        store
            .put(b"n".to_vec(), b"v1".to_vec(), Some(30_000))
            .unwrap();
        store
            .put(b"n".to_vec(), b"v1".to_vec(), Some(30_000))
            .unwrap();
        store
            .put(b"n".to_vec(), b"v2".to_vec(), Some(30_000))
            .unwrap();
        store.delete(b"n".to_vec()).unwrap();
        let flags: Vec<(bool, bool)> = (0..4)
            .map(|_| {
                let change = feed.try_recv().unwrap();
                (change.value_unchanged, change.value_hash.is_some())
            })
            .collect();
        assert_eq!(
            flags,
            vec![(false, true), (true, true), (false, true), (false, false)]
        );
    });
}

#[test]
fn digests_agree_for_the_same_entries_and_ignore_expired_ones() {
    for_each_backend(|kind| {
        let clock = Arc::new(ManualClock::new(T0));
        let a = open(kind.fresh(), &clock);
        let b = open(kind.fresh(), &clock);
        let entries = vec![
            entry("x", Some("1"), T0),
            entry("y", None, T0),
            entry("z", Some("3"), T0),
        ];
        a.apply(entries.clone(), Origin::Remote).unwrap();
        b.apply(entries.into_iter().rev(), Origin::Remote).unwrap();
        assert_eq!(a.digest(), b.digest());

        let mut short_lived = entry("ttl", Some("v"), T0);
        short_lived.max_age_ms = Some(1_000);
        a.apply([short_lived], Origin::Remote).unwrap();
        let differing = a.digest().differing_buckets(&b.digest());
        assert_eq!(differing.len(), 1);
        let summaries = a.summaries(&differing);
        assert!(summaries.iter().any(|s| s.key == b"ttl"));
        assert!(b.summaries(&differing).iter().all(|s| s.key != b"ttl"));

        clock.advance(1_001);
        assert_eq!(a.digest(), b.digest(), "an expired entry no longer counts");
        assert_eq!(a.get_many([&b"x"[..], b"nope", b"y"]).len(), 2);
    });
}

#[test]
fn unchanged_renewals_reach_the_backend_lazily_and_flush_writes_them() {
    let clock = Arc::new(ManualClock::new(T0));
    let backend = MemoryBackend::new();
    let store = open(Box::new(backend.clone()), &clock);
    // What a restart on the same backend would find right now.
    let on_disk = || {
        let reopened = open(Box::new(backend.clone()), &clock);
        reopened.get(b"n1").map(|e| (e.version, e.value.clone()))
    };
    store
        .put(b"n1".to_vec(), b"v".to_vec(), Some(30_000))
        .unwrap();
    assert_eq!(
        on_disk(),
        Some((T0, Some(b"v".to_vec()))),
        "a new value is written at once"
    );

    clock.advance(8_000);
    store
        .put(b"n1".to_vec(), b"v".to_vec(), Some(30_000))
        .unwrap();
    assert_eq!(
        on_disk().unwrap().0,
        T0,
        "22 s of the copy on disk left: not rewritten"
    );

    clock.advance(8_000);
    store
        .put(b"n1".to_vec(), b"v".to_vec(), Some(30_000))
        .unwrap();
    assert_eq!(
        on_disk().unwrap().0,
        T0 + 16_000,
        "14 s left, under half the max age: rewritten"
    );

    clock.advance(8_000);
    store
        .put(b"n1".to_vec(), b"v".to_vec(), Some(30_000))
        .unwrap();
    assert_eq!(on_disk().unwrap().0, T0 + 16_000);
    store
        .put(b"n1".to_vec(), b"changed".to_vec(), Some(30_000))
        .unwrap();
    assert_eq!(
        on_disk().unwrap().1,
        Some(b"changed".to_vec()),
        "a changed value is written at once"
    );

    clock.advance(1_000);
    store
        .put(b"n1".to_vec(), b"changed".to_vec(), Some(30_000))
        .unwrap();
    let newest = store.get(b"n1").unwrap().version;
    assert_ne!(on_disk().unwrap().0, newest);
    store.flush().unwrap();
    assert_eq!(
        on_disk().unwrap().0,
        newest,
        "flush writes what was pending"
    );
}

#[test]
fn garbage_collection_in_chunks_removes_every_expired_entry_and_keeps_the_rest() {
    let clock = Arc::new(ManualClock::new(T0));
    let store = open_with(
        StoreConfig::new("dynamic"),
        Box::new(MemoryBackend::new()),
        &clock,
    );
    let expiring = 2 * discovery_store::GC_CHUNK + 500;
    for i in 0..expiring {
        store
            .put(format!("old-{i}").into_bytes(), b"v".to_vec(), Some(1_000))
            .unwrap();
    }
    clock.advance(500);
    store
        .put(b"fresh".to_vec(), b"v".to_vec(), Some(1_000))
        .unwrap();
    store.put(b"static".to_vec(), b"v".to_vec(), None).unwrap();
    clock.advance(1_000);
    assert_eq!(store.collect_garbage().unwrap(), expiring);
    assert_eq!(store.len(), 2, "the entries still live stay");
    assert_index_consistent(&store);
}

#[test]
fn the_content_record_after_a_flush_is_what_the_next_open_reads() {
    let clock = Arc::new(ManualClock::new(T0));
    let backend = MemoryBackend::new();
    let store = open_with(
        StoreConfig::new("dynamic"),
        Box::new(backend.clone()),
        &clock,
    );
    store
        .put(b"a".to_vec(), b"1".to_vec(), Some(30_000))
        .unwrap();
    store
        .put(b"a".to_vec(), b"1".to_vec(), Some(30_000))
        .unwrap();
    store.delete(b"b".to_vec()).unwrap();
    store.flush().unwrap();
    let recorded = store.content_record();
    assert_eq!(recorded.0, 2);
    let reopened = open_with(
        StoreConfig::new("dynamic"),
        Box::new(backend.clone()),
        &clock,
    );
    assert_eq!(reopened.content_record(), recorded);
    backend.remove(b"a").unwrap();
    let damaged = open_with(StoreConfig::new("dynamic"), Box::new(backend), &clock);
    assert_ne!(damaged.content_record(), recorded, "a lost entry shows");
}
