//! Where a store's entries are persisted. Deliberately narrow: bytes in, bytes out.
//!
//! The store keeps every entry in memory for reads and writes through to a backend, so a
//! backend needs only to load everything at start, put, remove and flush. Keeping sled
//! behind this trait lets tests and simulations run on [`MemoryBackend`] and keeps the
//! storage engine swappable (garage had to migrate away from sled; we can too).

mod health;
mod memory;
mod sled;

pub use self::health::{StorageHealth, Watched};
pub use self::memory::MemoryBackend;
pub use self::sled::{Database, SledBackend};

use crate::error::StoreError;

/// A stored `(key, encoded entry)` pair.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// Persistent storage for one named store. Keys are entry keys; values are opaque bytes
/// (the store's own encoding).
pub trait Backend: Send + Sync {
    /// Every stored pair, for loading the store at start.
    fn load(&self) -> Result<Vec<KeyValue>, StoreError>;
    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError>;
    fn remove(&self, key: &[u8]) -> Result<(), StoreError>;
    /// Makes every earlier put and remove durable before returning.
    fn flush(&self) -> Result<(), StoreError>;
}
