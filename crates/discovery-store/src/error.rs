//! Store errors.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    /// The storage engine failed (disk full, I/O error, corrupted database).
    #[error("storage backend failed: {0}")]
    Backend(String),
    /// A new key was refused because the store already holds its maximum number of
    /// entries. Existing keys can still be updated or deleted.
    #[error("store '{store}' is full ({max_entries} entries)")]
    Full { store: String, max_entries: usize },
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}
