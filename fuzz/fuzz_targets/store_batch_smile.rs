//! `POST /v1/store/{store}` with a Smile body (`application/x-jackson-smile`, what Java
//! peers push): as `store_batch_json`, with the per-entry pass going through Smile values
//! re-encoded one at a time.
#![no_main]

use discovery_fuzz::{apply_to_both, read_back, registry, STORES};
use discovery_types::WireEntry;
use libfuzzer_sys::fuzz_target;
use serde_smile::value::Value;

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = serde_smile::from_slice::<Vec<WireEntry>>(data) {
        apply_to_both(&batch);
    }
    if let Ok(items) = serde_smile::from_slice::<Vec<Value>>(data) {
        let one_registry = registry();
        for item in items {
            let Ok(bytes) = serde_smile::to_vec(&item) else {
                continue;
            };
            if let Ok(entry) = serde_smile::from_slice::<WireEntry>(&bytes) {
                for store in STORES {
                    let _ = one_registry
                        .responder()
                        .apply_batch(store, vec![entry.clone()]);
                }
            }
        }
        read_back(&one_registry);
    }
});
