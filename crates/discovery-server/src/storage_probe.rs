//! Noticing that storage works again. A failing store reports not ready until a flush
//! succeeds (`discovery_store::StorageHealth`); the dynamic store flushes only at
//! shutdown, so while a store is failing this loop tries a flush every few seconds. One
//! probe at a time: sled's flush can hang for good after the disk ran full, and a hung
//! probe must not be followed by another that hangs too.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::registry::{Registry, StoreName};

/// How often a failing store is probed.
pub const PROBE_EVERY: Duration = Duration::from_secs(2);

/// Probes failing stores every [`PROBE_EVERY`] until `shutdown`.
pub async fn run_storage_probe(registry: Arc<Registry>, shutdown: watch::Receiver<bool>) {
    let mut in_flight: Option<JoinHandle<()>> = None;
    crate::periodic::every(PROBE_EVERY, shutdown, move || {
        if in_flight.as_ref().is_some_and(|probe| !probe.is_finished()) {
            return;
        }
        let failing: Vec<StoreName> = StoreName::ALL
            .into_iter()
            .filter(|&name| registry.store(name).storage_failure().is_some())
            .collect();
        if failing.is_empty() {
            return;
        }
        let registry = Arc::clone(&registry);
        in_flight = Some(tokio::task::spawn_blocking(move || {
            for name in failing {
                // Success clears the failure (and logs it); failure keeps it.
                let _ = registry.store(name).flush();
            }
        }));
    })
    .await;
}

/// Why the node is not ready because of its storage, if it is not.
pub fn storage_problem(registry: &Registry) -> Option<String> {
    StoreName::ALL.into_iter().find_map(|name| {
        registry
            .store(name)
            .storage_failure()
            .map(|failure| format!("storage of the {name} store is failing: {failure}"))
    })
}
