//! What the fuzz targets share: a registry over in-memory stores on a manual clock, set
//! up as the server's own tests do (`registry::tests::registry`), and the checks run
//! after every input that reached the stores.

use std::sync::Arc;

use discovery_server::registry::{Registry, Selector, ServiceIndex, StoreName, ValueFormat};
use discovery_store::{ManualClock, MemoryBackend, Store, StoreConfig};
use discovery_types::WireEntry;

/// The clock of every registry here: 2027-01-15, well past the responder's epoch floor.
pub const NOW_MS: i64 = 1_800_000_000_000;

/// `discovery.max-age` of the fuzzed registry (airlift's default, 30 s).
pub const MAX_AGE_MS: i64 = 30_000;

/// Both store names, as the replication and `/v1/store` paths spell them.
pub const STORES: [&str; 2] = ["dynamic", "static"];

/// A fresh registry, environment `test`, over in-memory stores at [`NOW_MS`]. One per
/// input, so a reproducer replays exactly.
pub fn registry() -> Registry {
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let open = |name: StoreName| {
        // The change feed has no subscriber here; a small buffer keeps each input cheap
        // (the default 16 Ki slots cost milliseconds per store under ASan).
        let mut config = StoreConfig::new(name.as_str());
        config.change_feed_capacity = 16;
        Arc::new(
            Store::open(
                config,
                Box::new(MemoryBackend::new()),
                clock.clone(),
                ServiceIndex::new(ValueFormat::of(name)),
            )
            .expect("an empty memory store opens"),
        )
    };
    Registry::new(
        "test",
        open(StoreName::Dynamic),
        open(StoreName::Static),
        MAX_AGE_MS,
    )
}

/// Reads back what the stores hold the ways clients and peers do: lookups (the index and
/// the rendered JSON) and `GET /v1/store/{store}` dumps in JSON and Smile, which must
/// decode to the same entries.
pub fn read_back(registry: &Registry) {
    let all = registry.lookup(Selector::All);
    assert!(
        serde_json::from_slice::<serde_json::Value>(&all.body).is_ok(),
        "a lookup answer is JSON"
    );
    let _ = registry.lookup(Selector::Type("trino"));
    let _ = registry.lookup(Selector::TypeAndPool("trino", "general"));
    let _ = registry.static_services();
    for name in [StoreName::Dynamic, StoreName::Static] {
        let dump = registry.dump(name);
        let json = serde_json::to_vec(&dump).expect("a dump serialises to JSON");
        let back: Vec<WireEntry> = serde_json::from_slice(&json).expect("a JSON dump reads back");
        assert_eq!(back, dump, "JSON round trip of a {name:?} dump");
        let smile = serde_smile::to_vec(&dump).expect("a dump serialises to Smile");
        let back: Vec<WireEntry> =
            serde_smile::from_slice(&smile).expect("a Smile dump reads back");
        assert_eq!(back, dump, "Smile round trip of a {name:?} dump");
    }
}

/// Offers `batch` to both stores the way `POST /v1/store/{store}` does, then reads back.
/// Refusals are expected; only a panic is a finding.
pub fn apply_to_both(batch: &[WireEntry]) {
    let registry = registry();
    for store in STORES {
        let _ = registry.responder().apply_batch(store, batch.to_vec());
    }
    read_back(&registry);
}
