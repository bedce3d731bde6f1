//! The sled 0.34 backend: one sled tree per named store, in one database per data directory.

use std::path::Path;

use super::{Backend, KeyValue};
use crate::error::StoreError;

/// The sled database of one data directory: the one handle the rest of the program keeps,
/// so sled's own types never leave this crate (the engine can change behind it).
#[derive(Debug, Clone)]
pub struct Database {
    db: sled::Db,
}

impl Database {
    /// Opens (creating if needed) the sled database in `dir`. sled holds an exclusive lock
    /// on the directory, so a second process on the same data directory fails here.
    pub fn open(dir: &Path) -> Result<Database, StoreError> {
        let db = sled::Config::new().path(dir).open().map_err(|e| match e {
            // sled reports the lock held by another process as an I/O error with this text.
            e if e.to_string().contains("could not acquire lock") => StoreError::Backend(format!(
                "{} is in use by another process (is another discoveryd running on this data directory?)",
                dir.display()
            )),
            e => StoreError::Backend(format!("cannot open {}: {e}", dir.display())),
        })?;
        Ok(Database { db })
    }

    /// The backend for the store called `name` inside this database.
    pub fn backend(&self, name: &str) -> Result<SledBackend, StoreError> {
        Ok(SledBackend {
            tree: self.db.open_tree(name)?,
        })
    }

    /// Writes everything buffered to disk (at shutdown).
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }
}

/// One named store inside a sled database (see [`Database::backend`]).
#[derive(Debug, Clone)]
pub struct SledBackend {
    tree: sled::Tree,
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
