//! The push worker of one link: sends queued changes to the peer in batches, retries with
//! back-off while the peer is unreachable, and never blocks writers or other peers (it
//! only ever waits on its own queue and its own peer).

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use discovery_types::replication::PushRequest;
use tokio::sync::watch;

use crate::config::{backoff_delay, ReplicatorConfig};
use crate::convert::{entry_to_wire, renewal_to_wire};
use crate::link::Link;
use crate::queue::PendingChange;
use crate::transport::PeerTransport;

/// Where the replicator is in its life, as its push workers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Running,
    /// Shutting down: no new work, push queues empty out.
    Draining,
}

/// Prefix of push errors in a link's `last_error`.
const PUSH_ERROR: &str = "push: ";

pub(crate) async fn run_push_worker<T: PeerTransport>(
    link: Arc<Link>,
    transport: Arc<T>,
    config: ReplicatorConfig,
    clock: Arc<dyn discovery_store::Clock>,
    mut phase: watch::Receiver<Phase>,
) {
    let mut consecutive_failures: u32 = 0;
    loop {
        let draining = *phase.borrow() == Phase::Draining;
        let batch = link
            .queue()
            .take(config.max_batch_size, config.max_batch_bytes);
        if batch.is_empty() {
            if draining {
                return;
            }
            tokio::select! {
                _ = link.wake.notified() => continue,
                changed = phase.changed() => {
                    if changed.is_err() { return; }
                    continue;
                }
            }
        }

        let request = build_request(&batch);
        let peer = link.peer();
        link.set_in_flight(batch.iter().map(|c| c.since).min());
        // Each arm clears it once what is still owed is back in the queue, so the lag
        // never reads low in between.
        match transport.push(&peer, &link.store, &request).await {
            Ok(exchange) => {
                link.record_bytes(exchange.bytes_sent, exchange.bytes_received);
                let stats = &link.stats;
                stats.pushes_ok.fetch_add(1, Ordering::Relaxed);
                stats
                    .pushed_entries
                    .fetch_add(request.entries.len() as u64, Ordering::Relaxed);
                stats
                    .pushed_renewals
                    .fetch_add(request.renewals.len() as u64, Ordering::Relaxed);
                stats
                    .last_push_ok_ms
                    .store(clock.now_ms(), Ordering::Relaxed);
                if consecutive_failures > 0 {
                    tracing::info!(peer = %peer.node_id, store = %link.store, "pushes to peer succeed again");
                    link.clear_error(PUSH_ERROR);
                }
                consecutive_failures = 0;
                // Refused entries are not sent again: the peer would refuse them again, and
                // what did not fit in its store is offered again by anti-entropy.
                if let Some(first) = exchange.body.refused.first() {
                    stats
                        .refused_by_peer
                        .fetch_add(exchange.body.refused.len() as u64, Ordering::Relaxed);
                    tracing::warn!(peer = %peer.node_id, store = %link.store,
                        refused = exchange.body.refused.len(), key = %String::from_utf8_lossy(&first.key),
                        reason = %first.reason, "the peer refused pushed entries");
                }
                // Renewals the peer could not apply go again, this time with their value.
                let missing: HashSet<&[u8]> =
                    exchange.body.missing.iter().map(Vec::as_slice).collect();
                if !missing.is_empty() {
                    let resend: Vec<PendingChange> = batch
                        .iter()
                        .filter(|c| !c.full && missing.contains(c.entry.key.as_slice()))
                        .map(|c| PendingChange {
                            full: true,
                            ..c.clone()
                        })
                        .collect();
                    link.queue().requeue(resend);
                }
                link.set_in_flight(None);
            }
            Err(error) => {
                link.stats.push_failures.fetch_add(1, Ordering::Relaxed);
                link.queue().requeue(batch);
                link.set_in_flight(None);
                consecutive_failures += 1;
                if consecutive_failures == 1 {
                    tracing::warn!(peer = %peer.node_id, url = %peer.url, store = %link.store, %error,
                        "push to peer failed; retrying with back-off");
                }
                link.record_error(format!("{PUSH_ERROR}{error}"));
                if draining {
                    // Shutting down and the peer is not answering: leave the rest to
                    // anti-entropy after restart.
                    return;
                }
                let delay = backoff_delay(
                    config.backoff_initial,
                    config.backoff_max,
                    consecutive_failures,
                );
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    changed = phase.changed() => {
                        if changed.is_err() { return; }
                    }
                }
            }
        }
    }
}

/// Full entries for changed values and tombstones; renewals by value hash otherwise.
fn build_request(batch: &[PendingChange]) -> PushRequest {
    let mut request = PushRequest::default();
    for change in batch {
        match (change.full, change.value_hash) {
            (false, Some(hash)) => request.renewals.push(renewal_to_wire(&change.entry, hash)),
            _ => request.entries.push(entry_to_wire(&change.entry)),
        }
    }
    request
}
