//! The background checks' one loop: do something every period until shutdown.

use std::time::Duration;

use tokio::sync::watch;

/// Calls `tick` now and then every `period` until `shutdown` turns true (or its sender
/// goes away). `tick` is quick and does not wait; work that may block goes to a task of
/// its own.
pub async fn every(
    period: Duration,
    mut shutdown: watch::Receiver<bool>,
    mut tick: impl FnMut() + Send,
) {
    let mut ticks = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = ticks.tick() => tick(),
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    return;
                }
            }
        }
    }
}
