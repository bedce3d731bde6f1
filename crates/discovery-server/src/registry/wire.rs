//! Raw entries in and out of the stores (`/v1/store/{store}`, replication pushes):
//! the domain's rule for everything that arrives from elsewhere.

use discovery_replicator::convert::entry_to_wire;
use discovery_replicator::EntryRules;
use discovery_types::{is_service_id, validate_node_id, WireEntry};

use super::index::{decode_services, ValueFormat};
use super::Registry;
pub use discovery_types::StoreName;

/// The discovery domain's rule for entries that arrive from elsewhere (a peer's push or
/// fetch answer, a `/v1/store` batch), given to the replicator's `Responder`.
pub struct ServiceRules;

impl EntryRules for ServiceRules {
    fn check_key(&self, store: &str, key: &[u8]) -> Result<(), String> {
        validate_key(store_of(store)?, key)
    }

    fn check_value(&self, store: &str, value: &[u8]) -> Result<(), String> {
        decode_services(ValueFormat::of(store_of(store)?), value).map(drop)
    }
}

fn store_of(name: &str) -> Result<StoreName, String> {
    name.parse()
        .map_err(|_| format!("there is no store '{name}'"))
}

impl Registry {
    /// Every raw entry of a store (tombstones and not-yet-collected expired entries too).
    pub fn dump(&self, name: StoreName) -> Vec<WireEntry> {
        self.store(name)
            .entries()
            .iter()
            .map(|entry| entry_to_wire(entry))
            .collect()
    }
}

fn validate_key(name: StoreName, key: &[u8]) -> Result<(), String> {
    let key = std::str::from_utf8(key).map_err(|_| "key is not UTF-8".to_owned())?;
    match name {
        StoreName::Dynamic => validate_node_id(key).map_err(|e| format!("key: {e}")),
        StoreName::Static if is_service_id(key) => Ok(()),
        StoreName::Static => Err("key of a static entry must be a service id (UUID)".into()),
    }
}
