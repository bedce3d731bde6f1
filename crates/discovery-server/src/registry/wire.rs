//! Raw entries in and out of the stores (`/v1/store/{store}`, replication pushes):
//! validation of everything that arrives from elsewhere.

use discovery_replicator::convert::{entry_from_wire, entry_to_wire, renewal_from_wire};
use discovery_replicator::responder::apply_push;
use discovery_store::{ApplyReport, Entry, Origin, StoreError};
use discovery_types::replication::{PushRequest, PushResponse};
use discovery_types::{is_service_id, validate_node_id, WireEntry};
use thiserror::Error;

use super::index::{decode_services, ValueFormat};
use super::Registry;
pub use discovery_types::StoreName;

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
            .map(|entry| entry_to_wire(entry))
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
        let entries = validated_entries(name, batch)?;
        Ok(self.store(name).apply(entries, Origin::Remote)?)
    }

    /// Applies a replication push (full entries and renewals), validated like
    /// [`apply_batch`](Self::apply_batch). Answers which renewals need their value.
    pub fn apply_push(
        &self,
        name: StoreName,
        request: PushRequest,
    ) -> Result<(ApplyReport, PushResponse), BatchError> {
        let entries = validated_entries(name, request.entries)?;
        let renewals = request
            .renewals
            .into_iter()
            .enumerate()
            .map(|(index, wire)| {
                validate_key(name, &wire.key)
                    .and_then(|()| renewal_from_wire(wire))
                    .map_err(|problem| BatchError::Invalid {
                        index,
                        problem: format!("renewal: {problem}"),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(apply_push(self.store(name), entries, renewals)?)
    }
}

fn validated_entries(name: StoreName, batch: Vec<WireEntry>) -> Result<Vec<Entry>, BatchError> {
    batch
        .into_iter()
        .enumerate()
        .map(|(index, wire)| {
            let entry = entry_from_wire(wire);
            validate_entry(name, &entry)
                .map(|()| entry)
                .map_err(|problem| BatchError::Invalid { index, problem })
        })
        .collect()
}

/// Checks that `entry` may be stored in `name`: a key of the right shape, a positive max
/// age, and a value that decodes as the store's service format with UUID ids.
pub fn validate_entry(name: StoreName, entry: &Entry) -> Result<(), String> {
    validate_key(name, &entry.key)?;
    if entry.max_age_ms.is_some_and(|max_age| max_age <= 0) {
        return Err("maxAgeInMs must be positive".into());
    }
    if let Some(value) = &entry.value {
        decode_services(ValueFormat::of(name), value)?;
    }
    Ok(())
}

fn validate_key(name: StoreName, key: &[u8]) -> Result<(), String> {
    let key = std::str::from_utf8(key).map_err(|_| "key is not UTF-8".to_owned())?;
    match name {
        StoreName::Dynamic => validate_node_id(key).map_err(|e| format!("key: {e}")),
        StoreName::Static if is_service_id(key) => Ok(()),
        StoreName::Static => Err("key of a static entry must be a service id (UUID)".into()),
    }
}
