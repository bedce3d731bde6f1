//! Raw entries in and out of the stores (`/v1/store/{store}`, replication pushes):
//! the domain's rule for everything that arrives from elsewhere.

use discovery_replicator::convert::entry_to_wire;
use discovery_replicator::EntryRules;
use discovery_store::Entry;
use discovery_types::stored::{check_node_services, check_static_service};
use discovery_types::{is_service_id, validate_node_id, WireEntry};

use super::index::{decode_services, ValueFormat};
use super::Registry;
pub use discovery_types::StoreName;

/// The discovery domain's rule for entries that arrive from elsewhere (a peer's push or
/// fetch answer, a `/v1/store` batch), given to the replicator's `Responder`: an entry must
/// be something the announcement API itself could have stored.
///
/// * `dynamic`: key = a valid node id, value = that node's services (each with
///   `nodeId` = the key, within every bound of `PUT /v1/announcement`), and a max age
///   that is present and at most the largest this node gives announcements
///   (`discovery.max-age`, or `trino-announce.max-age` when announce mode is on), so no
///   entry outlives the workers it describes. Tombstones need no max age.
/// * `static`: key = the service's id, no `nodeId`, no max age (static services never
///   expire; a max age would make one silently disappear).
#[derive(Debug, Clone)]
pub struct ServiceRules {
    /// Longest max age a dynamic entry may carry, in ms.
    pub max_dynamic_age_ms: i64,
}

impl EntryRules for ServiceRules {
    fn check_entry(&self, store: &str, entry: &Entry) -> Result<(), String> {
        let name = store_of(store)?;
        let key = key_text(&entry.key)?;
        match (name, &entry.value) {
            (StoreName::Dynamic, None) => validate_node_id(key).map_err(|e| format!("key: {e}")),
            (StoreName::Static, None) => static_key(key),
            (StoreName::Dynamic, Some(value)) => {
                self.check_dynamic_max_age(entry.max_age_ms)?;
                let services = decode_services(ValueFormat::ServiceList, value)?;
                check_node_services(key, &services)
            }
            (StoreName::Static, Some(value)) => {
                if entry.max_age_ms.is_some() {
                    return Err(
                        "a static entry has no maxAgeInMs (static services never expire)".into(),
                    );
                }
                let services = decode_services(ValueFormat::SingleService, value)?;
                services
                    .iter()
                    .try_for_each(|service| check_static_service(key, service))
            }
        }
    }

    fn check_renewal(
        &self,
        store: &str,
        key: &[u8],
        max_age_ms: Option<i64>,
    ) -> Result<(), String> {
        let key = key_text(key)?;
        match store_of(store)? {
            StoreName::Dynamic => {
                validate_node_id(key).map_err(|e| format!("key: {e}"))?;
                self.check_dynamic_max_age(max_age_ms)
            }
            StoreName::Static => Err("static entries are never renewed".into()),
        }
    }
}

impl ServiceRules {
    fn check_dynamic_max_age(&self, max_age_ms: Option<i64>) -> Result<(), String> {
        match max_age_ms {
            None => Err("a dynamic entry needs maxAgeInMs (announcements expire)".into()),
            Some(max_age) if max_age > self.max_dynamic_age_ms => Err(format!(
                "maxAgeInMs {max_age} is longer than this node gives announcements ({} ms)",
                self.max_dynamic_age_ms
            )),
            Some(_) => Ok(()),
        }
    }
}

fn store_of(name: &str) -> Result<StoreName, String> {
    name.parse()
        .map_err(|_| format!("there is no store '{name}'"))
}

fn key_text(key: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(key).map_err(|_| "key is not UTF-8".to_owned())
}

fn static_key(key: &str) -> Result<(), String> {
    if is_service_id(key) {
        Ok(())
    } else {
        Err("key of a static entry must be a service id (UUID)".into())
    }
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
