//! One anti-entropy round with one peer for one store (`docs/REPLICATION.md`):
//!
//! 1. Ask for the peer's digest, sending our root. Equal roots: done, one small exchange.
//! 2. Otherwise compare bucket hashes. With a peer that answers ranges (this build and
//!    later): split the differing buckets that hold many of our entries into sub-ranges,
//!    level by level, following only the differing ones ([`crate::plan::descend`]), then
//!    send our key hashes and fingerprints of the differing leaves; the peer answers the
//!    entries we lack, summaries of those that differ, and which of ours it lacks. With an
//!    older peer: ask for its key summaries of the differing buckets.
//! 3. Fetch the entries the peer has newer; send it the entries we have newer.
//!
//! Both directions are repaired in one round, and the conflict rule on each side makes the
//! outcome independent of which peer started.

use std::sync::Arc;

use std::collections::{HashMap, HashSet};

use discovery_store::fingerprint::{bucket_of, key_hash};
use discovery_store::{Clock, Index, Store, Summary};
use discovery_types::replication::{
    DiffRequest, FetchRequest, PushRequest, RangesRequest, SummariesRequest, WireSummary,
};
use discovery_types::WireEntry;

use crate::config::ReplicatorConfig;
use crate::convert::{digest_from_wire, entry_to_wire, pack_u64s, summary_from_wire, unpack_u64s};
use crate::peers::Peer;
use crate::plan::{descend, plan, sort_out, Held, LocalRange, SyncPlan, FANOUT, MAX_RANGES};
use crate::responder::Responder;
use crate::transport::{Exchange, PeerTransport, TransportError};

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
    let store = responder.store(name).map_err(local_error)?;
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
    count(&mut outcome, &exchange);
    outcome.peer_ready = exchange.body.peer_ready;
    let peer_ranges = exchange.body.ranges;
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

    let plan = if peer_ranges {
        let (plan, fetched) =
            descend_and_diff(store, &buckets, name, transport, peer, &mut outcome).await?;
        accept(responder, name, peer, fetched, &mut outcome).await?;
        plan
    } else {
        let exchange = transport
            .summaries(
                peer,
                name,
                &SummariesRequest {
                    buckets: buckets.clone(),
                },
            )
            .await?;
        count(&mut outcome, &exchange);
        let remote_summaries = summaries_from_wire(exchange.body.entries)?;
        plan(&store.summaries(&buckets), &remote_summaries)
    };

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
        count(&mut outcome, &exchange);
        accept(responder, name, peer, exchange.body, &mut outcome).await?;
    }

    for keys in plan.push.chunks(config.max_batch_size.max(1)) {
        let entries = store.get_many(keys.iter().map(Vec::as_slice));
        let request = PushRequest {
            entries: entries.iter().map(|e| entry_to_wire(e)).collect(),
            renewals: Vec::new(),
        };
        let exchange = transport.push(peer, name, &request).await?;
        count(&mut outcome, &exchange);
        outcome.pushed += request.entries.len();
    }
    Ok(outcome)
}

fn count<T>(outcome: &mut SyncOutcome, exchange: &Exchange<T>) {
    outcome.bytes_sent += exchange.bytes_sent;
    outcome.bytes_received += exchange.bytes_received;
}

fn local_error(e: crate::RespondError) -> TransportError {
    TransportError::Decode(format!("local store: {e}"))
}

fn summaries_from_wire(wire: Vec<WireSummary>) -> Result<Vec<Summary>, TransportError> {
    wire.into_iter()
        .map(summary_from_wire)
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| TransportError::Decode("malformed summary".into()))
}

/// Entries from the peer enter through the responder's rule, off the async threads.
async fn accept<I: Index>(
    responder: &Arc<Responder<I>>,
    name: &str,
    peer: &Peer,
    fetched: Vec<WireEntry>,
    outcome: &mut SyncOutcome,
) -> Result<(), TransportError> {
    if fetched.is_empty() {
        return Ok(());
    }
    let count = fetched.len();
    let (responder, store_name, peer_id) =
        (Arc::clone(responder), name.to_owned(), peer.node_id.clone());
    let (_, refused) = tokio::task::spawn_blocking(move || {
        responder.accept_fetched(&store_name, &peer_id, fetched)
    })
    .await
    .map_err(|e| TransportError::Decode(format!("apply task failed: {e}")))?
    .map_err(local_error)?;
    outcome.invalid += refused;
    outcome.fetched += count - refused;
    Ok(())
}

/// Steps 2 and 3 with a peer that answers ranges: descends from the differing `buckets`
/// to small differing ranges, then diffs those. Returns what is left to fetch and push,
/// and the entries the peer already sent.
async fn descend_and_diff<I: Index, T: PeerTransport>(
    store: &Store<I>,
    buckets: &[usize],
    name: &str,
    transport: &T,
    peer: &Peer,
    outcome: &mut SyncOutcome,
) -> Result<(SyncPlan, Vec<WireEntry>), TransportError> {
    let ours = store.summaries(buckets);
    let held: Vec<Held> = ours
        .iter()
        .map(|s| Held {
            key_hash: key_hash(&s.key),
            fingerprint: s.fingerprint,
        })
        .collect();
    let mut members: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, summary) in ours.iter().enumerate() {
        members.entry(bucket_of(&summary.key)).or_default().push(i);
    }
    let mut descent = sort_out(buckets.iter().map(|&bucket| LocalRange {
        range: crate::plan::Range::bucket(bucket),
        members: members.remove(&bucket).unwrap_or_default(),
    }));
    // Each pass goes one level deeper, so this ends by MAX_BITS whatever the peer says.
    while !descent.split.is_empty() {
        let level = std::mem::take(&mut descent.split);
        for chunk in level.chunks(MAX_RANGES) {
            let request = RangesRequest {
                bits: chunk[0].range.bits,
                prefixes: chunk.iter().map(|r| r.range.prefix).collect(),
            };
            let exchange = transport.ranges(peer, name, &request).await?;
            count(outcome, &exchange);
            if exchange.body.children.len() != chunk.len() * FANOUT * 8 {
                return Err(TransportError::Decode(format!(
                    "{} bytes of sub-range hashes for {} ranges",
                    exchange.body.children.len(),
                    chunk.len()
                )));
            }
            let next = descend(chunk, &unpack_u64s(&exchange.body.children), &held);
            descent.split.extend(next.split);
            descent.leaves.extend(next.leaves);
        }
    }

    let mut fetched = Vec::new();
    let mut differing = Vec::new();
    let mut push = Vec::new();
    for chunk in descent.leaves.chunks(MAX_RANGES) {
        let mut have = Vec::new();
        let mut by_hash = HashMap::new();
        for &member in chunk.iter().flat_map(|leaf| &leaf.members) {
            have.extend([held[member].key_hash, held[member].fingerprint]);
            by_hash.insert(held[member].key_hash, member);
        }
        let request = DiffRequest {
            ranges: pack_u64s(
                &chunk
                    .iter()
                    .map(|leaf| leaf.range.tag())
                    .collect::<Vec<_>>(),
            ),
            have: pack_u64s(&have),
        };
        let exchange = transport.diff(peer, name, &request).await?;
        count(outcome, &exchange);
        let answer = exchange.body;
        fetched.extend(answer.entries);
        differing.extend(summaries_from_wire(answer.summaries)?);
        // Only our own key hashes mean anything; anything else the peer names is ignored.
        push.extend(
            unpack_u64s(&answer.wanted)
                .iter()
                .filter_map(|hash| by_hash.get(hash))
                .map(|&member| ours[member].key.clone()),
        );
    }
    // The keys the peer summarised: compared with ours of the same keys, as in the
    // bucket protocol.
    let named: HashSet<&[u8]> = differing.iter().map(|s| s.key.as_slice()).collect();
    let ours_named: Vec<Summary> = ours
        .iter()
        .filter(|s| named.contains(s.key.as_slice()))
        .cloned()
        .collect();
    let mut plan = plan(&ours_named, &differing);
    plan.push.extend(push);
    plan.push.sort();
    plan.push.dedup();
    Ok((plan, fetched))
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
    use super::*;
    use crate::responder::tests::{responder, wire};
    use crate::sim::{sim_peer, SimNetwork, SimTransport};
    use crate::transport::{DigestAnswer, TransportResult};
    use discovery_store::ManualClock;
    use discovery_types::replication::{
        DiffResponse, PushResponse, RangesResponse, SummariesResponse,
    };
    use discovery_types::WireVersion;

    /// A peer of the build before ranges: its digest answer does not offer them and it
    /// has no such routes.
    struct OldPeer(SimTransport<()>);

    fn not_found<T>() -> TransportResult<T> {
        Err(TransportError::Status {
            status: 404,
            message: "no route".into(),
        })
    }

    impl PeerTransport for OldPeer {
        async fn push(
            &self,
            peer: &Peer,
            store: &str,
            request: &PushRequest,
        ) -> TransportResult<PushResponse> {
            self.0.push(peer, store, request).await
        }

        async fn digest(
            &self,
            peer: &Peer,
            store: &str,
            root: &str,
        ) -> TransportResult<DigestAnswer> {
            let mut exchange = self.0.digest(peer, store, root).await?;
            exchange.body.ranges = false;
            Ok(exchange)
        }

        async fn summaries(
            &self,
            peer: &Peer,
            store: &str,
            request: &SummariesRequest,
        ) -> TransportResult<SummariesResponse> {
            self.0.summaries(peer, store, request).await
        }

        async fn fetch(
            &self,
            peer: &Peer,
            store: &str,
            request: &FetchRequest,
        ) -> TransportResult<Vec<WireEntry>> {
            self.0.fetch(peer, store, request).await
        }

        async fn ranges(
            &self,
            _: &Peer,
            _: &str,
            _: &RangesRequest,
        ) -> TransportResult<RangesResponse> {
            not_found()
        }

        async fn diff(&self, _: &Peer, _: &str, _: &DiffRequest) -> TransportResult<DiffResponse> {
            not_found()
        }
    }

    /// Two nodes: `here` holds w0..w59 and w100 at a newer version; `there` holds
    /// w10..w99 and w100. Enough entries that buckets are split.
    fn diverged() -> (Arc<Responder<()>>, Arc<Responder<()>>, SimNetwork<()>) {
        let (here, there) = (Arc::new(responder()), Arc::new(responder()));
        let batch = |range: std::ops::Range<usize>| -> Vec<WireEntry> {
            range.map(|i| wire(&format!("w{i}"), "ok")).collect()
        };
        here.apply_batch("dynamic", batch(0..60)).expect("applied");
        there
            .apply_batch("dynamic", batch(10..101))
            .expect("applied");
        let newer = WireEntry {
            version: WireVersion {
                sequence: wire("w100", "ok").version.sequence + 1,
            },
            ..wire("w100", "ok")
        };
        here.apply_batch("dynamic", vec![newer]).expect("applied");
        let net = SimNetwork::new();
        net.attach("here", Arc::clone(&here));
        net.attach("there", Arc::clone(&there));
        (here, there, net)
    }

    fn roots(a: &Responder<()>, b: &Responder<()>) -> (u64, u64) {
        let root = |r: &Responder<()>| r.store("dynamic").expect("store").digest().root();
        (root(a), root(b))
    }

    #[tokio::test]
    async fn one_round_over_ranges_repairs_both_directions() {
        let (here, there, net) = diverged();
        let clock = ManualClock::new(0);
        let outcome = reconcile(
            &here,
            "dynamic",
            &net.transport("here"),
            &sim_peer("there"),
            &ReplicatorConfig::default(),
            &clock,
        )
        .await
        .expect("a round");
        // w60..w99 only there; w0..w9 only here, and w100 newer here.
        assert_eq!((outcome.fetched, outcome.pushed), (40, 11));
        let (a, b) = roots(&here, &there);
        assert_eq!(a, b, "replicas agree after one round");
        let traffic = net.traffic();
        assert!(traffic.bytes_of("diff") > 0, "{traffic:?}");
        assert_eq!(traffic.bytes_of("summaries"), 0, "{traffic:?}");
    }

    #[tokio::test]
    async fn an_older_peer_gets_the_bucket_protocol() {
        let (here, there, net) = diverged();
        let clock = ManualClock::new(0);
        let old = OldPeer(net.transport("here"));
        let outcome = reconcile(
            &here,
            "dynamic",
            &old,
            &sim_peer("there"),
            &ReplicatorConfig::default(),
            &clock,
        )
        .await
        .expect("a round");
        assert_eq!((outcome.fetched, outcome.pushed), (40, 11));
        let (a, b) = roots(&here, &there);
        assert_eq!(a, b, "replicas agree after one round");
        let traffic = net.traffic();
        assert!(traffic.bytes_of("summaries") > 0, "{traffic:?}");
        assert_eq!(traffic.bytes_of("ranges") + traffic.bytes_of("diff"), 0);
    }

    #[test]
    fn the_offset_is_taken_against_the_middle_of_the_round_trip() {
        assert_eq!(clock_offset(1_000, 990, 1_010), 0);
        assert_eq!(clock_offset(601_000, 990, 1_010), 600_000);
        assert_eq!(clock_offset(0, 990, 1_010), -1_000);
    }
}
