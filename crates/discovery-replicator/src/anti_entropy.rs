//! One anti-entropy round with one peer for one store (`docs/REPLICATION.md`):
//!
//! 1. Ask for the peer's digest, sending our root. Equal roots: done, one small exchange.
//! 2. Otherwise compare bucket hashes and ask for the peer's key summaries of the buckets
//!    that differ.
//! 3. Fetch the entries the peer has newer; send it the entries we have newer.
//!
//! Both directions are repaired in one round, and the conflict rule on each side makes the
//! outcome independent of which peer started.

use std::sync::Arc;

use discovery_store::{Clock, Index};
use discovery_types::replication::{FetchRequest, PushRequest, SummariesRequest};

use crate::config::ReplicatorConfig;
use crate::convert::{digest_from_wire, entry_to_wire, summary_from_wire};
use crate::peers::Peer;
use crate::plan::plan;
use crate::responder::Responder;
use crate::transport::{PeerTransport, TransportError};

/// What a round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncOutcome {
    /// The digests were equal: nothing to do.
    pub in_agreement: bool,
    /// The peer reported itself ready (its state complete).
    pub peer_ready: bool,
    /// The peer's clock minus ours, from the digest exchange: the peer's stamp against
    /// the middle of our request's round trip.
    pub clock_offset_ms: Option<i64>,
    pub fetched: usize,
    pub pushed: usize,
    /// Fetched entries refused by the responder's rule.
    pub invalid: usize,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

/// Reconciles `responder`'s store `name` with `peer`; what is fetched enters through the
/// responder's rule.
pub async fn reconcile<I: Index, T: PeerTransport>(
    responder: &Arc<Responder<I>>,
    name: &str,
    transport: &T,
    peer: &Peer,
    config: &ReplicatorConfig,
    clock: &dyn Clock,
) -> Result<SyncOutcome, TransportError> {
    let local = |e: crate::RespondError| TransportError::Decode(format!("local store: {e}"));
    let store = responder.store(name).map_err(local)?;
    let mut outcome = SyncOutcome::default();
    let local_digest = store.digest();
    let root = discovery_types::replication::hex64(local_digest.root());
    let sent_at = clock.now_ms();
    let exchange = transport.digest(peer, name, &root).await?;
    let received_at = clock.now_ms();
    outcome.clock_offset_ms = exchange
        .body
        .peer_clock_ms
        .map(|peer_ms| clock_offset(peer_ms, sent_at, received_at));
    outcome.bytes_sent += exchange.bytes_sent;
    outcome.bytes_received += exchange.bytes_received;
    outcome.peer_ready = exchange.body.peer_ready;
    let Some(remote) = exchange.body.digest else {
        outcome.in_agreement = true;
        return Ok(outcome);
    };
    let remote_digest = digest_from_wire(&remote)
        .ok_or_else(|| TransportError::Decode("malformed digest".into()))?;
    let buckets = local_digest.differing_buckets(&remote_digest);
    if buckets.is_empty() {
        // Roots differ only because the stores changed between the two digests.
        return Ok(outcome);
    }

    let exchange = transport
        .summaries(
            peer,
            name,
            &SummariesRequest {
                buckets: buckets.clone(),
            },
        )
        .await?;
    outcome.bytes_sent += exchange.bytes_sent;
    outcome.bytes_received += exchange.bytes_received;
    let remote_summaries = exchange
        .body
        .entries
        .into_iter()
        .map(summary_from_wire)
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| TransportError::Decode("malformed summary".into()))?;
    let local_summaries = store.summaries(&buckets);
    let plan = plan(&local_summaries, &remote_summaries);

    for keys in plan.fetch.chunks(config.max_batch_size.max(1)) {
        let exchange = transport
            .fetch(
                peer,
                name,
                &FetchRequest {
                    keys: keys.to_vec(),
                },
            )
            .await?;
        outcome.bytes_sent += exchange.bytes_sent;
        outcome.bytes_received += exchange.bytes_received;
        let fetched = exchange.body;
        let count = fetched.len();
        let (responder, store_name, peer_id) =
            (Arc::clone(responder), name.to_owned(), peer.node_id.clone());
        let (_, refused) = tokio::task::spawn_blocking(move || {
            responder.accept_fetched(&store_name, &peer_id, fetched)
        })
        .await
        .map_err(|e| TransportError::Decode(format!("apply task failed: {e}")))?
        .map_err(local)?;
        outcome.invalid += refused;
        outcome.fetched += count - refused;
    }

    for keys in plan.push.chunks(config.max_batch_size.max(1)) {
        let entries = store.get_many(keys.iter().map(Vec::as_slice));
        let request = PushRequest {
            entries: entries.iter().map(|e| entry_to_wire(e)).collect(),
            renewals: Vec::new(),
        };
        let exchange = transport.push(peer, name, &request).await?;
        outcome.bytes_sent += exchange.bytes_sent;
        outcome.bytes_received += exchange.bytes_received;
        outcome.pushed += request.entries.len();
    }
    Ok(outcome)
}

/// The peer's clock minus ours: its stamp against the middle of the round trip (the
/// error is at most half the round trip, milliseconds here against a skew guard of a
/// minute).
pub fn clock_offset(peer_ms: i64, sent_at_ms: i64, received_at_ms: i64) -> i64 {
    let middle = sent_at_ms + (received_at_ms - sent_at_ms) / 2;
    peer_ms.saturating_sub(middle)
}

#[cfg(test)]
mod tests {
    use super::clock_offset;

    #[test]
    fn the_offset_is_taken_against_the_middle_of_the_round_trip() {
        assert_eq!(clock_offset(1_000, 990, 1_010), 0);
        assert_eq!(clock_offset(601_000, 990, 1_010), 600_000);
        assert_eq!(clock_offset(0, 990, 1_010), -1_000);
    }
}
