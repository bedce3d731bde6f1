//! The sled 0.34 backend: one sled tree per named store, in one database per data directory.

use std::path::Path;

use super::{Backend, KeyValue};
use crate::error::StoreError;

/// One named store inside a sled database.
#[derive(Debug, Clone)]
pub struct SledBackend {
    tree: sled::Tree,
}

impl SledBackend {
    /// Opens (creating if needed) the sled database in `dir`. sled holds an exclusive lock
    /// on the directory, so a second process on the same data directory fails here.
    pub fn open_database(dir: &Path) -> Result<sled::Db, StoreError> {
        sled::Config::new().path(dir).open().map_err(|e| match e {
            // sled reports the lock held by another process as an I/O error with this text.
            e if e.to_string().contains("could not acquire lock") => StoreError::Backend(format!(
                "{} is in use by another process (is another discoveryd running on this data directory?)",
                dir.display()
            )),
            e => StoreError::Backend(format!("cannot open {}: {e}", dir.display())),
        })
    }

    /// The backend for the store called `name` inside `db`.
    pub fn open(db: &sled::Db, name: &str) -> Result<Self, StoreError> {
        Ok(SledBackend {
            tree: db.open_tree(name)?,
        })
    }
}

impl Backend for SledBackend {
    fn load(&self) -> Result<Vec<KeyValue>, StoreError> {
        self.tree
            .iter()
            .map(|pair| {
                let (key, value) = pair?;
                Ok((key.to_vec(), value.to_vec()))
            })
            .collect()
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.tree.insert(key, value)?;
        Ok(())
    }

    fn remove(&self, key: &[u8]) -> Result<(), StoreError> {
        self.tree.remove(key)?;
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.tree.flush()?;
        Ok(())
    }
}
