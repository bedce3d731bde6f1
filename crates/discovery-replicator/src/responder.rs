//! The answering side of the protocol, one per node: it owns the node's replicated stores
//! by name and the one rule every entry from elsewhere must pass, and answers a peer's
//! push, digest, summaries and fetch requests. The HTTP handlers, the simulated network
//! and the anti-entropy pull (entries fetched from a peer) all go through it, so a
//! simulation runs exactly the production receive path and there is one place that
//! decides what may enter a store.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use discovery_store::fingerprint::{key_hash, BUCKETS};
use discovery_store::{ApplyReport, Entry, Index, Origin, Renewal, Store, StoreError, Summary};
use discovery_types::replication::{
    DiffRequest, DiffResponse, DigestResponse, FetchRequest, PushRequest, PushResponse,
    RangesRequest, RangesResponse, SummariesRequest, SummariesResponse, WireRefusal, WireRenewal,
};
use discovery_types::WireEntry;
use thiserror::Error;

use crate::convert::{
    digest_to_wire, entry_from_wire, entry_to_wire, pack_u64s, renewal_from_wire, summary_to_wire,
    unpack_u64s,
};
use crate::plan::{diff, Range, FANOUT, MAX_RANGES};

/// Versions and timestamps are wall-clock milliseconds (ours and Java's); anything before
/// 2020-01-01 is not one, and a tiny timestamp with a huge max age would never expire.
pub const EPOCH_FLOOR_MS: i64 = 1_577_836_800_000;

/// What may enter a store: the domain's rule, given to the [`Responder`]. The responder
/// itself checks what does not depend on the domain: versions and timestamps between
/// [`EPOCH_FLOOR_MS`] and the store's clock-skew horizon, and a positive max age.
pub trait EntryRules: Send + Sync + 'static {
    /// Whether `entry` (a value or a tombstone) may be stored in `store`.
    fn check_entry(&self, store: &str, entry: &Entry) -> Result<(), String>;
    /// Whether a renewal of `key` with `max_age_ms` may be applied. Its value is the one
    /// the store already holds, which passed [`check_entry`](Self::check_entry).
    fn check_renewal(&self, store: &str, key: &[u8], max_age_ms: Option<i64>)
        -> Result<(), String>;
}

/// Any key, any value: for simulations of the replication protocol on its own.
pub struct AnyEntry;

impl EntryRules for AnyEntry {
    fn check_entry(&self, _: &str, _: &Entry) -> Result<(), String> {
        Ok(())
    }

    fn check_renewal(&self, _: &str, _: &[u8], _: Option<i64>) -> Result<(), String> {
        Ok(())
    }
}

/// Why a request was not answered, or not answered in full.
#[derive(Debug, Error)]
pub enum RespondError {
    #[error("there is no store '{0}'")]
    UnknownStore(String),
    #[error("{0}")]
    BadRequest(String),
    /// Nothing of the batch was applied.
    #[error("entry {index}: {problem}")]
    Invalid { index: usize, problem: String },
    /// The rest of the batch was applied; these new keys did not fit.
    #[error("store '{store}' is full: {refused} new keys refused")]
    Full { store: String, refused: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why one entry was refused; the two kinds are counted apart in the store's status.
enum Refusal {
    FromTheFuture(String),
    Invalid(String),
}

impl Refusal {
    fn count<I: Index>(&self, store: &Store<I>) {
        match self {
            Refusal::FromTheFuture(_) => store.count_refused_future(1),
            Refusal::Invalid(_) => store.count_refused_invalid(1),
        }
    }

    fn into_reason(self) -> String {
        match self {
            Refusal::FromTheFuture(reason) | Refusal::Invalid(reason) => reason,
        }
    }
}

/// Most distinct keys one fetch request is answered for.
pub const MAX_FETCH_KEYS: usize = 10_000;

/// Default bound on the encoded size of one fetch answer.
pub const DEFAULT_MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// A node's replicated stores and the rule their incoming entries pass.
pub struct Responder<I: Index> {
    stores: Vec<(String, Arc<Store<I>>)>,
    rules: Arc<dyn EntryRules>,
    /// Approximate most bytes of one fetch answer.
    max_answer_bytes: usize,
}

impl<I: Index> std::fmt::Debug for Responder<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.stores().map(|(name, _)| name).collect();
        f.debug_struct("Responder").field("stores", &names).finish()
    }
}

impl<I: Index> Responder<I> {
    pub fn new(rules: Arc<dyn EntryRules>) -> Self {
        Responder {
            stores: Vec::new(),
            rules,
            max_answer_bytes: DEFAULT_MAX_ANSWER_BYTES,
        }
    }

    /// Bounds the approximate encoded size of one fetch answer (one entry larger than the
    /// bound is still answered alone, so every entry can travel).
    pub fn with_answer_limit(mut self, max_answer_bytes: usize) -> Self {
        self.max_answer_bytes = max_answer_bytes;
        self
    }

    /// Adds a store under `name` (the `{store}` of the replication paths).
    pub fn with_store(mut self, name: impl Into<String>, store: Arc<Store<I>>) -> Self {
        self.stores.push((name.into(), store));
        self
    }

    /// The stores, by name, in the order they were added.
    pub fn stores(&self) -> impl Iterator<Item = (&str, &Arc<Store<I>>)> {
        self.stores
            .iter()
            .map(|(name, store)| (name.as_str(), store))
    }

    pub fn store(&self, name: &str) -> Result<&Arc<Store<I>>, RespondError> {
        self.stores
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, store)| store)
            .ok_or_else(|| RespondError::UnknownStore(name.to_owned()))
    }

    /// The one rule for an entry that arrives from elsewhere, whatever the way: stamps
    /// that are wall-clock milliseconds and not beyond the skew guard, a positive max age,
    /// and the domain's rule.
    pub fn check(&self, name: &str, entry: &Entry) -> Result<(), String> {
        let store = self.store(name).map_err(|e| e.to_string())?;
        self.classify(name, store, entry)
            .map_err(Refusal::into_reason)
    }

    fn classify(&self, name: &str, store: &Store<I>, entry: &Entry) -> Result<(), Refusal> {
        check_stamps(store, entry.version, entry.timestamp)?;
        check_max_age(entry.max_age_ms).map_err(Refusal::Invalid)?;
        self.rules
            .check_entry(name, entry)
            .map_err(Refusal::Invalid)
    }

    fn classify_renewal(
        &self,
        name: &str,
        store: &Store<I>,
        renewal: &Renewal,
    ) -> Result<(), Refusal> {
        check_stamps(store, renewal.version, renewal.timestamp)?;
        self.rules
            .check_renewal(name, &renewal.key, renewal.max_age_ms)
            .map_err(Refusal::Invalid)
    }

    /// Applies a batch of entries (`POST /v1/store/{store}`, a Java peer's push): checked
    /// whole first, so one bad entry refuses all of it. In a full store the keys it holds
    /// are still applied and the new keys that do not fit are reported as
    /// [`RespondError::Full`].
    pub fn apply_batch(
        &self,
        name: &str,
        batch: Vec<WireEntry>,
    ) -> Result<ApplyReport, RespondError> {
        let store = self.store(name)?;
        let entries = batch
            .into_iter()
            .enumerate()
            .map(|(index, wire)| {
                let entry = entry_from_wire(wire);
                match self.classify(name, store, &entry) {
                    Ok(()) => Ok(entry),
                    Err(refusal) => {
                        refusal.count(store);
                        Err(RespondError::Invalid {
                            index,
                            problem: refusal.into_reason(),
                        })
                    }
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let report = store.apply(entries, Origin::Remote)?;
        if report.refused_full > 0 {
            return Err(RespondError::Full {
                store: name.to_owned(),
                refused: report.refused_full,
            });
        }
        Ok(report)
    }

    /// Applies a push from a peer: full entries first, so a renewal in the same batch finds
    /// the value it renews, then renewals. Each entry is taken or refused on its own, so
    /// one entry the peer should not have sent, or a new key that does not fit, never
    /// holds back the renewals and deletes of workers behind it. Answers which renewals
    /// need their value and which entries were refused, with why.
    pub fn push(
        &self,
        name: &str,
        request: PushRequest,
    ) -> Result<(ApplyReport, PushResponse), RespondError> {
        let store = self.store(name)?;
        let (entries, mut refused) = self.sort_out(name, store, request.entries);
        let (renewals, refused_renewals) = self.sort_out_renewals(name, store, request.renewals);
        refused.extend(refused_renewals);
        let mut report = store.apply(entries, Origin::Remote)?;
        let renewed = store.apply_renewals(renewals, Origin::Remote)?;
        report.stored += renewed.stored;
        report.superseded += renewed.superseded;
        report.expired += renewed.expired;
        report.refused_full += renewed.refused_full;
        report.refused_future += renewed.refused_future;
        report.refused_full_keys.extend(renewed.refused_full_keys);
        let reason = format!("store '{name}' is full");
        refused.extend(report.refused_full_keys.iter().map(|key| WireRefusal {
            key: key.clone(),
            reason: reason.clone(),
        }));
        if let Some(first) = refused.first() {
            tracing::warn!(store = name, refused = refused.len(), key = %String::from_utf8_lossy(&first.key),
                reason = %first.reason, "refused entries of a push (the rest was applied)");
        }
        let response = PushResponse {
            missing: renewed.missing.clone(),
            refused,
        };
        report.missing = renewed.missing;
        Ok((report, response))
    }

    /// Entries fetched from `peer` in an anti-entropy round: each passes the same rule as a
    /// pushed one, on its own. Returns what was applied and how many entries were refused.
    pub fn accept_fetched(
        &self,
        name: &str,
        peer: &str,
        fetched: Vec<WireEntry>,
    ) -> Result<(ApplyReport, usize), RespondError> {
        let store = self.store(name)?;
        let (entries, refused) = self.sort_out(name, store, fetched);
        if let Some(first) = refused.first() {
            tracing::warn!(%peer, store = name, refused = refused.len(), key = %String::from_utf8_lossy(&first.key),
                reason = %first.reason, "refusing invalid entries from a peer");
        }
        Ok((store.apply(entries, Origin::Remote)?, refused.len()))
    }

    /// The store's digest in wire form, with its root for `If-None-Match` comparisons.
    pub fn digest(&self, name: &str) -> Result<DigestResponse, RespondError> {
        Ok(digest_to_wire(&self.store(name)?.digest()))
    }

    /// Key, version and fingerprint of every entry in the requested buckets.
    pub fn summaries(
        &self,
        name: &str,
        request: &SummariesRequest,
    ) -> Result<SummariesResponse, RespondError> {
        let store = self.store(name)?;
        if let Some(bad) = request.buckets.iter().find(|&&b| b >= BUCKETS) {
            return Err(RespondError::BadRequest(format!(
                "bucket {bad} does not exist (0 to {})",
                BUCKETS - 1
            )));
        }
        Ok(SummariesResponse {
            entries: store
                .summaries(&request.buckets)
                .iter()
                .map(summary_to_wire)
                .collect(),
        })
    }

    /// The hashes of the 16 sub-ranges of each requested range of one level. At most
    /// [`MAX_RANGES`] ranges, each valid ([`Range::is_valid`]): like a summaries request,
    /// it costs one pass over the entries of the buckets involved, whatever it asks.
    pub fn ranges(
        &self,
        name: &str,
        request: &RangesRequest,
    ) -> Result<RangesResponse, RespondError> {
        let store = self.store(name)?;
        let ranges = request
            .prefixes
            .iter()
            .map(|&prefix| Range {
                bits: request.bits,
                prefix,
            })
            .collect::<Vec<_>>();
        check_ranges(&ranges)?;
        let position: HashMap<u64, usize> = ranges
            .iter()
            .enumerate()
            .map(|(i, range)| (range.prefix, i))
            .collect();
        let mut hashes = vec![0u64; ranges.len() * FANOUT];
        for (hash, summary) in summaries_in(store, &ranges) {
            if let Some(&i) = position.get(&Range::of(request.bits, hash).prefix) {
                hashes[i * FANOUT + ranges[i].child_index(hash)] ^= summary.fingerprint;
            }
        }
        // A prefix asked twice is answered twice, from the one computation.
        let children = ranges
            .iter()
            .flat_map(|range| {
                let i = position[&range.prefix];
                hashes[i * FANOUT..(i + 1) * FANOUT].iter().copied()
            })
            .collect::<Vec<_>>();
        Ok(RangesResponse {
            children: pack_u64s(&children),
        })
    }

    /// Compares the asker's entries in the requested ranges (key hash and fingerprint)
    /// with ours: ours it lacks in full (within the answer's byte budget; the rest as
    /// summaries, which the asker fetches), summaries of the ones that differ, and the
    /// key hashes of its entries we lack. At most [`MAX_RANGES`] valid ranges; the asker's
    /// entries are bounded by the request size.
    pub fn diff(&self, name: &str, request: &DiffRequest) -> Result<DiffResponse, RespondError> {
        let store = self.store(name)?;
        if !request.ranges.len().is_multiple_of(8) {
            return Err(RespondError::BadRequest(
                "ranges must be 8-byte numbers".into(),
            ));
        }
        let ranges = unpack_u64s(&request.ranges)
            .into_iter()
            .map(|tag| {
                Range::from_tag(tag)
                    .ok_or_else(|| RespondError::BadRequest(format!("{tag:#x} is not a range")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        check_ranges_any_level(&ranges)?;
        if !request.have.len().is_multiple_of(16) {
            return Err(RespondError::BadRequest(
                "have must be pairs of 8-byte key hashes and fingerprints".into(),
            ));
        }
        let pairs = unpack_u64s(&request.have);
        let inside = RangeSet::new(&ranges);
        let theirs: HashMap<u64, u64> = pairs
            .chunks_exact(2)
            .filter(|pair| inside.contains(pair[0]))
            .map(|pair| (pair[0], pair[1]))
            .collect();
        let ours: Vec<(u64, Summary)> = summaries_in(store, &ranges)
            .filter(|(hash, _)| inside.contains(*hash))
            .collect();
        let by_ref: Vec<(u64, &Summary)> = ours.iter().map(|(h, s)| (*h, s)).collect();
        let found = diff(&by_ref, &theirs);
        let mut budget = self.max_answer_bytes;
        let mut answer = DiffResponse {
            wanted: pack_u64s(&found.wanted),
            summaries: found.differing.iter().map(|s| summary_to_wire(s)).collect(),
            ..DiffResponse::default()
        };
        for summary in found.lacked {
            // Gone since the summaries were read: the next round sees it.
            let Some(entry) = store.get(&summary.key) else {
                continue;
            };
            let size = wire_size(&entry);
            if size > budget && !answer.entries.is_empty() {
                answer.summaries.push(summary_to_wire(summary));
                continue;
            }
            budget = budget.saturating_sub(size);
            answer.entries.push(entry_to_wire(&entry));
        }
        Ok(answer)
    }

    /// The requested entries that this store holds: each key once, at most
    /// [`MAX_FETCH_KEYS`] keys, and no more entries than fit in
    /// [`max_answer_bytes`](Self::with_answer_limit). A shorter answer is not an error: the
    /// asking side fetches what is still missing in its next round. So a small request
    /// (the same large key 10,000 times) costs what a polite one does.
    pub fn entries(
        &self,
        name: &str,
        request: &FetchRequest,
    ) -> Result<Vec<WireEntry>, RespondError> {
        let store = self.store(name)?;
        let mut seen = HashSet::new();
        let keys = request
            .keys
            .iter()
            .filter(|key| seen.insert(key.as_slice()))
            .take(MAX_FETCH_KEYS)
            .map(Vec::as_slice);
        let mut budget = self.max_answer_bytes;
        let mut answer = Vec::new();
        for entry in store.get_many(keys) {
            let size = wire_size(&entry);
            if size > budget && !answer.is_empty() {
                break;
            }
            budget = budget.saturating_sub(size);
            answer.push(entry_to_wire(&entry));
        }
        Ok(answer)
    }

    /// Splits a batch into the entries to apply and the refused ones (counted).
    fn sort_out(
        &self,
        name: &str,
        store: &Store<I>,
        batch: Vec<WireEntry>,
    ) -> (Vec<Entry>, Vec<WireRefusal>) {
        let mut accepted = Vec::with_capacity(batch.len());
        let mut refused = Vec::new();
        for entry in batch.into_iter().map(entry_from_wire) {
            match self.classify(name, store, &entry) {
                Ok(()) => accepted.push(entry),
                Err(refusal) => {
                    refusal.count(store);
                    refused.push(WireRefusal {
                        key: entry.key,
                        reason: refusal.into_reason(),
                    });
                }
            }
        }
        (accepted, refused)
    }

    fn sort_out_renewals(
        &self,
        name: &str,
        store: &Store<I>,
        renewals: Vec<WireRenewal>,
    ) -> (Vec<Renewal>, Vec<WireRefusal>) {
        let mut accepted = Vec::with_capacity(renewals.len());
        let mut refused = Vec::new();
        for wire in renewals {
            let key = wire.key.clone();
            let checked = renewal_from_wire(wire)
                .map_err(Refusal::Invalid)
                .and_then(|renewal| {
                    self.classify_renewal(name, store, &renewal)
                        .map(|()| renewal)
                });
            match checked {
                Ok(renewal) => accepted.push(renewal),
                Err(refusal) => {
                    refusal.count(store);
                    refused.push(WireRefusal {
                        key,
                        reason: format!("renewal: {}", refusal.into_reason()),
                    });
                }
            }
        }
        (accepted, refused)
    }
}

/// Versions and timestamps are wall-clock milliseconds, and none beyond the store's
/// clock-skew horizon (one server with a fast clock must not pin a key or outlive its
/// time-to-live).
fn check_stamps<I: Index>(store: &Store<I>, version: i64, timestamp: i64) -> Result<(), Refusal> {
    if version < EPOCH_FLOOR_MS || timestamp < EPOCH_FLOOR_MS {
        return Err(Refusal::Invalid(format!(
            "version {version} and timestamp {timestamp} must be wall-clock milliseconds \
             (at least {EPOCH_FLOOR_MS}, 2020-01-01)"
        )));
    }
    let horizon = store.future_horizon_ms();
    let latest = version.max(timestamp);
    if latest > horizon {
        return Err(Refusal::FromTheFuture(format!(
            "stamped {} ms beyond this node's clock plus store.max-clock-skew \
             (a clock running ahead?)",
            latest - horizon
        )));
    }
    Ok(())
}

/// Our unexpired entries in the buckets of `ranges` (a superset of the ranges), with
/// their key hashes.
fn summaries_in<'s, I: Index>(
    store: &'s Store<I>,
    ranges: &[Range],
) -> impl Iterator<Item = (u64, Summary)> + 's {
    let buckets: Vec<usize> = ranges
        .iter()
        .map(Range::bucket_index)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    store
        .summaries(&buckets)
        .into_iter()
        .map(|summary| (key_hash(&summary.key), summary))
}

/// A `ranges` request: one level, at most [`MAX_RANGES`] valid ranges.
fn check_ranges(ranges: &[Range]) -> Result<(), RespondError> {
    check_ranges_any_level(ranges)?;
    if ranges.windows(2).any(|w| w[0].bits != w[1].bits) {
        return Err(RespondError::BadRequest("ranges of one level only".into()));
    }
    Ok(())
}

fn check_ranges_any_level(ranges: &[Range]) -> Result<(), RespondError> {
    if ranges.len() > MAX_RANGES {
        return Err(RespondError::BadRequest(format!(
            "{} ranges asked, at most {MAX_RANGES}",
            ranges.len()
        )));
    }
    if let Some(bad) = ranges.iter().find(|r| !r.is_valid()) {
        return Err(RespondError::BadRequest(format!(
            "range of {} bits with prefix {} does not exist",
            bad.bits, bad.prefix
        )));
    }
    Ok(())
}

/// Membership in a set of ranges of any levels: one lookup per distinct level (at most
/// 14, see [`crate::plan::MAX_BITS`]).
struct RangeSet {
    by_bits: Vec<(u32, HashSet<u64>)>,
}

impl RangeSet {
    fn new(ranges: &[Range]) -> Self {
        let mut by_bits: Vec<(u32, HashSet<u64>)> = Vec::new();
        for range in ranges {
            match by_bits.iter_mut().find(|(bits, _)| *bits == range.bits) {
                Some((_, prefixes)) => {
                    prefixes.insert(range.prefix);
                }
                None => by_bits.push((range.bits, HashSet::from([range.prefix]))),
            }
        }
        RangeSet { by_bits }
    }

    fn contains(&self, key_hash: u64) -> bool {
        self.by_bits
            .iter()
            .any(|(bits, prefixes)| prefixes.contains(&Range::of(*bits, key_hash).prefix))
    }
}

/// About what `entry` costs in a JSON answer: base64 key and value plus the fields.
fn wire_size(entry: &Entry) -> usize {
    let encoded = |bytes: usize| bytes.div_ceil(3) * 4;
    encoded(entry.key.len()) + entry.value.as_ref().map_or(0, |v| encoded(v.len())) + 96
}

/// A max age, when there is one, is a positive number of milliseconds.
pub(crate) fn check_max_age(max_age_ms: Option<i64>) -> Result<(), String> {
    match max_age_ms {
        Some(max_age) if max_age <= 0 => Err("maxAgeInMs must be positive".into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use discovery_store::{ManualClock, MemoryBackend, StoreConfig};
    use discovery_types::replication::hex128;
    use discovery_types::WireVersion;

    const T0: i64 = 1_800_000_000_000;

    /// Keys start with `w`, values are `ok`: enough to tell a checked path from one that is
    /// not.
    pub(crate) struct Strict;

    impl EntryRules for Strict {
        fn check_entry(&self, store: &str, entry: &Entry) -> Result<(), String> {
            self.check_renewal(store, &entry.key, entry.max_age_ms)?;
            match entry.value.as_deref() {
                None | Some(b"ok") => Ok(()),
                Some(_) => Err("value must be ok".into()),
            }
        }

        fn check_renewal(&self, _: &str, key: &[u8], _: Option<i64>) -> Result<(), String> {
            key.starts_with(b"w")
                .then_some(())
                .ok_or_else(|| "key must start with w".into())
        }
    }

    pub(crate) fn responder() -> Responder<()> {
        let clock = Arc::new(ManualClock::new(T0));
        let store = Store::open(
            StoreConfig::new("dynamic"),
            Box::new(MemoryBackend::new()),
            clock,
            (),
        )
        .expect("a memory store opens");
        Responder::new(Arc::new(Strict)).with_store("dynamic", Arc::new(store))
    }

    pub(crate) fn wire(key: &str, value: &str) -> WireEntry {
        WireEntry {
            key: key.as_bytes().to_vec(),
            value: Some(value.as_bytes().to_vec()),
            version: WireVersion { sequence: T0 },
            timestamp: T0,
            max_age_in_ms: Some(30_000),
        }
    }

    pub(crate) fn len(responder: &Responder<()>) -> usize {
        responder.store("dynamic").expect("the store").len()
    }

    fn refused_keys(response: &PushResponse) -> Vec<&[u8]> {
        response.refused.iter().map(|r| r.key.as_slice()).collect()
    }

    #[test]
    fn a_batch_with_one_bad_entry_applies_nothing() {
        let responder = responder();
        let error = responder
            .apply_batch("dynamic", vec![wire("w1", "ok"), wire("x2", "ok")])
            .expect_err("refused");
        assert!(
            matches!(&error, RespondError::Invalid { index: 1, problem } if problem.contains("start with w")),
            "{error}"
        );
        let never_positive = WireEntry {
            max_age_in_ms: Some(0),
            ..wire("w3", "ok")
        };
        assert!(responder
            .apply_batch("dynamic", vec![wire("w1", "ok"), never_positive])
            .is_err());
        assert_eq!(len(&responder), 0);
        let store = responder.store("dynamic").expect("store");
        assert_eq!(store.refused_invalid_total(), 2);
    }

    #[test]
    fn a_push_takes_each_entry_on_its_own_and_says_what_it_refused() {
        let responder = responder();
        let request = PushRequest {
            entries: vec![wire("x1", "ok"), wire("w2", "nope"), wire("w3", "ok")],
            renewals: vec![WireRenewal {
                key: b"x4".to_vec(),
                version: T0,
                timestamp: T0,
                max_age_in_ms: Some(30_000),
                value_hash: hex128(7),
            }],
        };
        let (report, response) = responder.push("dynamic", request).expect("answered");
        assert_eq!(report.stored, 1, "w3 is applied");
        assert_eq!(
            refused_keys(&response),
            vec![&b"x1"[..], &b"w2"[..], &b"x4"[..]]
        );
        assert!(response.refused[2].reason.starts_with("renewal: "));
        assert_eq!(len(&responder), 1);
    }

    #[test]
    fn stamps_must_be_wall_clock_milliseconds_within_the_skew_guard() {
        let responder = responder();
        let ancient = WireEntry {
            timestamp: 1,
            ..wire("w1", "ok")
        };
        let ahead = WireEntry {
            version: WireVersion {
                sequence: T0 + 3_600_000,
            },
            ..wire("w2", "ok")
        };
        let request = PushRequest {
            entries: vec![ancient, ahead, wire("w3", "ok")],
            renewals: Vec::new(),
        };
        let (_, response) = responder.push("dynamic", request).expect("answered");
        assert_eq!(refused_keys(&response), vec![&b"w1"[..], &b"w2"[..]]);
        assert!(response.refused[0].reason.contains("wall-clock"));
        assert!(response.refused[1].reason.contains("max-clock-skew"));
        let store = responder.store("dynamic").expect("store");
        assert_eq!(
            (store.refused_future_total(), store.refused_invalid_total()),
            (1, 1)
        );
    }

    #[test]
    fn a_full_store_takes_what_it_holds_and_refuses_new_keys_by_name() {
        let clock = Arc::new(ManualClock::new(T0));
        let mut config = StoreConfig::new("dynamic");
        config.max_entries = 1;
        let store = Store::open(config, Box::new(MemoryBackend::new()), clock, ())
            .expect("a memory store opens");
        let responder = Responder::new(Arc::new(Strict)).with_store("dynamic", Arc::new(store));
        responder
            .apply_batch("dynamic", vec![wire("w1", "ok")])
            .expect("fits");
        let newer = WireEntry {
            version: WireVersion { sequence: T0 + 1 },
            ..wire("w1", "ok")
        };
        let request = PushRequest {
            entries: vec![wire("w2", "ok"), newer],
            renewals: Vec::new(),
        };
        let (report, response) = responder.push("dynamic", request).expect("answered");
        assert_eq!(report.stored, 1, "the held key is renewed");
        assert_eq!(refused_keys(&response), vec![&b"w2"[..]]);
        assert!(response.refused[0].reason.contains("full"));
        let full = responder
            .apply_batch("dynamic", vec![wire("w9", "ok")])
            .expect_err("no room");
        assert!(
            matches!(full, RespondError::Full { refused: 1, .. }),
            "{full}"
        );
    }

    #[test]
    fn a_fetch_answers_each_key_once_and_within_its_byte_budget() {
        let responder = responder().with_answer_limit(1_000);
        responder
            .apply_batch("dynamic", vec![wire("w1", "ok"), wire("w2", "ok")])
            .expect("applied");
        let same_key = FetchRequest {
            keys: vec![b"w1".to_vec(); 10_000],
        };
        let answer = responder.entries("dynamic", &same_key).expect("answered");
        assert_eq!(answer, vec![wire("w1", "ok")], "one entry, not 10,000");

        let big = WireEntry {
            value: Some(vec![b'o'; 600]),
            ..wire("w3", "ok")
        };
        let store = responder.store("dynamic").expect("store");
        store
            .apply([entry_from_wire(big.clone())], Origin::Remote)
            .expect("applied");
        let all = FetchRequest {
            keys: vec![b"w3".to_vec(), b"w1".to_vec(), b"w2".to_vec()],
        };
        let answer = responder.entries("dynamic", &all).expect("answered");
        assert_eq!(
            answer.iter().map(|e| e.key.as_slice()).collect::<Vec<_>>(),
            vec![&b"w3"[..]],
            "an entry over the budget travels alone; the rest wait for the next request"
        );
    }

    #[test]
    fn fetched_entries_are_taken_one_by_one() {
        let responder = responder();
        let fetched = vec![wire("w1", "ok"), wire("x2", "ok"), wire("w3", "bad")];
        let (report, refused) = responder
            .accept_fetched("dynamic", "peer", fetched)
            .expect("applied");
        assert_eq!((report.stored, refused), (1, 2));
        assert_eq!(len(&responder), 1);
    }

    #[test]
    fn unknown_stores_and_buckets_are_refused() {
        let responder = responder();
        assert!(matches!(
            responder.digest("nope"),
            Err(RespondError::UnknownStore(_))
        ));
        let request = SummariesRequest {
            buckets: vec![0, BUCKETS],
        };
        assert!(matches!(
            responder.summaries("dynamic", &request),
            Err(RespondError::BadRequest(_))
        ));
    }

    #[test]
    fn sub_range_hashes_refine_the_digest_and_hostile_asks_are_refused() {
        let responder = responder();
        let batch: Vec<WireEntry> = (0..50).map(|i| wire(&format!("w{i}"), "ok")).collect();
        responder.apply_batch("dynamic", batch).expect("applied");
        let digest = responder.store("dynamic").expect("store").digest();
        let request = RangesRequest {
            bits: 8,
            prefixes: (0..BUCKETS as u64).collect(),
        };
        let answer = responder.ranges("dynamic", &request).expect("answered");
        let children = unpack_u64s(&answer.children);
        assert_eq!(children.len(), BUCKETS * FANOUT);
        for (bucket, sub) in children.chunks(FANOUT).enumerate() {
            let xor = sub.iter().fold(0, |a, h| a ^ h);
            assert_eq!(xor, digest.buckets[bucket], "bucket {bucket}");
        }

        let refused = [
            RangesRequest {
                bits: 9,
                prefixes: vec![0],
            },
            RangesRequest {
                bits: 8,
                prefixes: vec![256],
            },
            RangesRequest {
                bits: 60,
                prefixes: vec![0; MAX_RANGES + 1],
            },
        ];
        for request in refused {
            assert!(
                matches!(
                    responder.ranges("dynamic", &request),
                    Err(RespondError::BadRequest(_))
                ),
                "{request:?}"
            );
        }
    }

    #[test]
    fn a_diff_sends_what_the_asker_lacks_and_names_what_it_lacks_itself() {
        let responder = responder();
        responder
            .apply_batch("dynamic", vec![wire("w1", "ok"), wire("w2", "ok")])
            .expect("applied");
        let store = responder.store("dynamic").expect("store");
        let w1 = store.get(b"w1").expect("w1");
        let w1_hash = key_hash(b"w1");
        let w2_bucket = Range::bucket(discovery_store::fingerprint::bucket_of(b"w2"));
        let asker_only = key_hash(b"w9");
        let request = DiffRequest {
            ranges: crate::convert::pack_u64s(&[
                Range::bucket(discovery_store::fingerprint::bucket_of(b"w1")).tag(),
                w2_bucket.tag(),
                Range::bucket(discovery_store::fingerprint::bucket_of(b"w9")).tag(),
            ]),
            // The asker holds w1 as we do, and w9; not w2.
            have: crate::convert::pack_u64s(&[
                w1_hash,
                discovery_store::fingerprint::fingerprint(&w1),
                asker_only,
                7,
            ]),
        };
        let answer = responder.diff("dynamic", &request).expect("answered");
        assert_eq!(answer.entries, vec![wire("w2", "ok")]);
        assert!(answer.summaries.is_empty());
        assert_eq!(unpack_u64s(&answer.wanted), [asker_only]);

        let malformed = [
            DiffRequest {
                ranges: vec![1, 2, 3],
                have: Vec::new(),
            },
            DiffRequest {
                ranges: crate::convert::pack_u64s(&[0]),
                have: Vec::new(),
            },
            DiffRequest {
                ranges: crate::convert::pack_u64s(&[w2_bucket.tag()]),
                have: vec![0; 8],
            },
        ];
        for request in malformed {
            assert!(
                matches!(
                    responder.diff("dynamic", &request),
                    Err(RespondError::BadRequest(_))
                ),
                "{request:?}"
            );
        }
    }

    #[test]
    fn a_diff_beyond_the_answer_budget_summarises_the_rest() {
        let responder = responder().with_answer_limit(150);
        responder
            .apply_batch("dynamic", vec![wire("w1", "ok"), wire("w2", "ok")])
            .expect("applied");
        let ranges: Vec<u64> = (0..BUCKETS).map(|b| Range::bucket(b).tag()).collect();
        let request = DiffRequest {
            ranges: crate::convert::pack_u64s(&ranges),
            have: Vec::new(),
        };
        let answer = responder.diff("dynamic", &request).expect("answered");
        assert_eq!((answer.entries.len(), answer.summaries.len()), (1, 1));
        assert_ne!(answer.entries[0].key, answer.summaries[0].key);
    }

    #[test]
    fn what_was_applied_is_answered_back() {
        let responder = responder();
        responder
            .apply_batch("dynamic", vec![wire("w1", "ok")])
            .expect("applied");
        let fetched = responder
            .entries(
                "dynamic",
                &FetchRequest {
                    keys: vec![b"w1".to_vec(), b"w9".to_vec()],
                },
            )
            .expect("answered");
        assert_eq!(fetched, vec![wire("w1", "ok")]);
        let digest = responder.digest("dynamic").expect("answered");
        assert_eq!(
            digest.root,
            discovery_types::replication::hex64(
                responder.store("dynamic").expect("store").digest().root()
            )
        );
    }
}
