//! Whether a store's backend is failing, so the node can say so (not ready, with the
//! reason) instead of looking healthy to a load balancer while every write fails, and
//! notice when it works again.
//!
//! Every backend call goes through [`Watched`], which remembers the last failure. A
//! failure is forgotten only once a flush succeeds, since a put can succeed in memory
//! while the disk still refuses it: only a completed flush proves writes reach the disk.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::{Backend, KeyValue};
use crate::error::StoreError;

/// The last backend failure not yet followed by a successful flush.
#[derive(Debug, Default)]
pub struct StorageHealth {
    /// Whether `failure` holds an error: readiness asks on every lookup, so the healthy
    /// case is one atomic load.
    failing: AtomicBool,
    failure: Mutex<Option<String>>,
}

impl StorageHealth {
    /// `Some(error)` while the backend is failing.
    pub fn failure(&self) -> Option<String> {
        if !self.failing.load(Ordering::Acquire) {
            return None;
        }
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn record<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(e) = &result {
            let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
            if failure.is_none() {
                tracing::error!(error = %e, "storage is failing: reporting not ready until a flush succeeds");
            }
            *failure = Some(e.to_string());
            self.failing.store(true, Ordering::Release);
        }
        result
    }

    fn recovered(&self) {
        if !self.failing.load(Ordering::Acquire) {
            return;
        }
        let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        self.failing.store(false, Ordering::Release);
        if failure.take().is_some() {
            tracing::info!("storage works again: a flush succeeded");
        }
    }
}

/// A backend whose failures are remembered in a [`StorageHealth`].
pub struct Watched {
    inner: Box<dyn Backend>,
    health: Arc<StorageHealth>,
}

impl Watched {
    pub fn new(inner: Box<dyn Backend>, health: Arc<StorageHealth>) -> Self {
        Watched { inner, health }
    }
}

impl Backend for Watched {
    fn load(&self) -> Result<Vec<KeyValue>, StoreError> {
        self.health.record(self.inner.load())
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.health.record(self.inner.put(key, value))
    }

    fn remove(&self, key: &[u8]) -> Result<(), StoreError> {
        self.health.record(self.inner.remove(key))
    }

    fn flush(&self) -> Result<(), StoreError> {
        let result = self.health.record(self.inner.flush());
        if result.is_ok() {
            self.health.recovered();
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails every call while `failing` is set.
    struct Flaky(std::sync::atomic::AtomicBool);

    impl Flaky {
        fn check(&self) -> Result<(), StoreError> {
            if self.0.load(std::sync::atomic::Ordering::Relaxed) {
                Err(StoreError::Backend("No space left on device".into()))
            } else {
                Ok(())
            }
        }
    }

    impl Backend for Arc<Flaky> {
        fn load(&self) -> Result<Vec<KeyValue>, StoreError> {
            self.check().map(|()| Vec::new())
        }
        fn put(&self, _: &[u8], _: &[u8]) -> Result<(), StoreError> {
            self.check()
        }
        fn remove(&self, _: &[u8]) -> Result<(), StoreError> {
            self.check()
        }
        fn flush(&self) -> Result<(), StoreError> {
            self.check()
        }
    }

    #[test]
    fn a_failure_lasts_until_a_flush_succeeds() {
        let flaky = Arc::new(Flaky(std::sync::atomic::AtomicBool::new(true)));
        let health = Arc::new(StorageHealth::default());
        let watched = Watched::new(Box::new(Arc::clone(&flaky)), Arc::clone(&health));
        assert!(watched.put(b"k", b"v").is_err());
        assert!(health.failure().is_some_and(|f| f.contains("No space")));
        flaky.0.store(false, std::sync::atomic::Ordering::Relaxed);
        watched.put(b"k", b"v").expect("a put succeeds again");
        assert!(health.failure().is_some(), "a put alone proves nothing");
        watched.flush().expect("a flush succeeds");
        assert_eq!(health.failure(), None);
    }
}
