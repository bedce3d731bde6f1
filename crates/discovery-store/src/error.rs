//! Store errors.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    /// The storage engine failed (disk full, I/O error, corrupted database).
    #[error("storage backend failed: {0}")]
    Backend(String),
    /// A new key was refused because the store is at one of its budgets (entries, bytes,
    /// tombstones of unknown keys). Existing keys can still be updated or deleted.
    #[error("store '{store}' is full (at most {limit})")]
    Full { store: String, limit: String },
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}
