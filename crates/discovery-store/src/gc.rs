//! The garbage-collection loop: removes expired entries and old tombstones on a period.
//!
//! Which entries go is decided by the pure [`Entry::is_expired`](crate::Entry::is_expired);
//! this module only schedules [`Store::collect_garbage`].

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::store::{Index, Store};

/// Collects garbage in `store` now and then every `interval`, until `shutdown` turns true
/// (or its sender is dropped). A failing backend is logged and retried next period.
pub async fn run_gc_loop<I: Index>(
    store: Arc<Store<I>>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                // Disk I/O and lock waits: off the async workers, which serve requests.
                let sweeping = Arc::clone(&store);
                match tokio::task::spawn_blocking(move || sweeping.collect_garbage()).await {
                    Ok(Ok(0)) => {}
                    Ok(Ok(removed)) => tracing::debug!(store = %store.name(), removed, "garbage collected"),
                    Ok(Err(e)) => tracing::warn!(store = %store.name(), error = %e, "garbage collection failed"),
                    Err(e) => tracing::warn!(store = %store.name(), error = %e, "garbage collection task failed"),
                }
            }
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    return;
                }
            }
        }
    }
}
