//! `POST /v1/store/{store}` with a JSON body (`application/json`): the batch as the HTTP
//! handler decodes it, through the responder's validation into both stores; then the
//! array's decodable entries one by one into one registry (so later entries meet earlier
//! ones: supersede, renew, tombstone).
#![no_main]

use discovery_fuzz::{apply_to_both, read_back, registry, STORES};
use discovery_types::WireEntry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = serde_json::from_slice::<Vec<WireEntry>>(data) {
        apply_to_both(&batch);
    }
    if let Ok(items) = serde_json::from_slice::<Vec<serde_json::Value>>(data) {
        let one_registry = registry();
        for item in items {
            if let Ok(entry) = serde_json::from_value::<WireEntry>(item) {
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
