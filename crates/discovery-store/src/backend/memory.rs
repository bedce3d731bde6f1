//! An in-memory backend for tests and simulations.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Backend, KeyValue};
use crate::error::StoreError;

/// Keeps pairs in a shared map. Clones share the map, so a test can "reopen" a store on
/// the same contents the way a restarted node reopens its data directory.
#[derive(Debug, Clone, Default)]
pub struct MemoryBackend {
    pairs: Arc<Mutex<BTreeMap<Vec<u8>, Vec<u8>>>>,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    fn pairs(&self) -> MutexGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>> {
        // A panic elsewhere cannot leave a BTreeMap half-updated, so a poisoned lock
        // still holds consistent data.
        self.pairs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Backend for MemoryBackend {
    fn load(&self) -> Result<Vec<KeyValue>, StoreError> {
        Ok(self
            .pairs()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.pairs().insert(key.to_vec(), value.to_vec());
        Ok(())
    }

    fn remove(&self, key: &[u8]) -> Result<(), StoreError> {
        self.pairs().remove(key);
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
