//! Raw entries in and out of the stores (`/v1/store/{store}`): conversion between the wire
//! shape and store entries, and validation of incoming batches.

use std::fmt;
use std::str::FromStr;

use discovery_store::{ApplyReport, Entry, Origin, StoreError};
use discovery_types::{is_service_id, validate_node_id, WireEntry, WireVersion};
use thiserror::Error;

use super::index::{decode_services, ValueFormat};
use super::Registry;

/// The two stores of a discovery server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreName {
    Dynamic,
    Static,
}

impl StoreName {
    pub const ALL: [StoreName; 2] = [StoreName::Dynamic, StoreName::Static];

    pub fn as_str(self) -> &'static str {
        match self {
            StoreName::Dynamic => "dynamic",
            StoreName::Static => "static",
        }
    }

    pub fn value_format(self) -> ValueFormat {
        match self {
            StoreName::Dynamic => ValueFormat::ServiceList,
            StoreName::Static => ValueFormat::SingleService,
        }
    }
}

impl fmt::Display for StoreName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StoreName {
    type Err = ();

    fn from_str(name: &str) -> Result<Self, ()> {
        match name {
            "dynamic" => Ok(StoreName::Dynamic),
            "static" => Ok(StoreName::Static),
            _ => Err(()),
        }
    }
}

/// Why a replicated batch was refused. Nothing of a refused batch is applied.
#[derive(Debug, Error)]
pub enum BatchError {
    #[error("entry {index}: {problem}")]
    Invalid { index: usize, problem: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Registry {
    /// Every raw entry of a store (tombstones and not-yet-collected expired entries too).
    pub fn dump(&self, name: StoreName) -> Vec<WireEntry> {
        self.store(name)
            .entries()
            .iter()
            .map(|entry| WireEntry {
                key: entry.key.clone(),
                value: entry.value.clone(),
                version: WireVersion {
                    sequence: entry.version,
                },
                timestamp: entry.timestamp,
                max_age_in_ms: entry.max_age_ms,
            })
            .collect()
    }

    /// Validates a whole batch, then applies it with the conflict rule. A batch with any
    /// invalid entry is refused whole: a peer (or anyone else) cannot slip a value into
    /// the store that would break lookups.
    pub fn apply_batch(
        &self,
        name: StoreName,
        batch: Vec<WireEntry>,
    ) -> Result<ApplyReport, BatchError> {
        let entries = batch
            .into_iter()
            .enumerate()
            .map(|(index, wire)| {
                to_entry(name, wire).map_err(|problem| BatchError::Invalid { index, problem })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.store(name).apply(entries, Origin::Remote)?)
    }
}

fn to_entry(name: StoreName, wire: WireEntry) -> Result<Entry, String> {
    let key = std::str::from_utf8(&wire.key).map_err(|_| "key is not UTF-8".to_owned())?;
    match name {
        StoreName::Dynamic => validate_node_id(key).map_err(|e| format!("key: {e}"))?,
        StoreName::Static if !is_service_id(key) => {
            return Err("key of a static entry must be a service id (UUID)".into())
        }
        StoreName::Static => {}
    }
    if let Some(max_age) = wire.max_age_in_ms {
        if max_age <= 0 {
            return Err("maxAgeInMs must be positive".into());
        }
    }
    if let Some(value) = &wire.value {
        decode_services(name.value_format(), value)?;
    }
    Ok(Entry {
        key: wire.key,
        value: wire.value,
        version: wire.version.sequence,
        timestamp: wire.timestamp,
        max_age_ms: wire.max_age_in_ms,
    })
}
