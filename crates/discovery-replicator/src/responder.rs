//! The answering side of the protocol, one per node: it owns the node's replicated stores
//! by name and the one rule every entry from elsewhere must pass, and answers a peer's
//! push, digest, summaries and fetch requests. The HTTP handlers, the simulated network
//! and the anti-entropy pull (entries fetched from a peer) all go through it, so a
//! simulation runs exactly the production receive path and there is one place that
//! decides what may enter a store.

use std::sync::Arc;

use discovery_store::fingerprint::BUCKETS;
use discovery_store::{ApplyReport, Entry, Index, Origin, Renewal, Store, StoreError};
use discovery_types::replication::{
    DigestResponse, FetchRequest, PushRequest, PushResponse, SummariesRequest, SummariesResponse,
    WireRenewal,
};
use discovery_types::WireEntry;
use thiserror::Error;

use crate::convert::{
    digest_to_wire, entry_from_wire, entry_to_wire, renewal_from_wire, summary_to_wire,
};

/// What may enter a store: the domain's rule, given to the [`Responder`]. The responder
/// checks what does not depend on the domain (a positive max age) itself.
pub trait EntryRules: Send + Sync + 'static {
    /// Whether `key` may name an entry of `store`.
    fn check_key(&self, store: &str, key: &[u8]) -> Result<(), String>;
    /// Whether `value` is something `store` holds.
    fn check_value(&self, store: &str, value: &[u8]) -> Result<(), String>;
}

/// Any key, any value: for simulations of the replication protocol on its own.
pub struct AnyEntry;

impl EntryRules for AnyEntry {
    fn check_key(&self, _: &str, _: &[u8]) -> Result<(), String> {
        Ok(())
    }

    fn check_value(&self, _: &str, _: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

/// Why a request was not answered. Nothing of a refused request is applied.
#[derive(Debug, Error)]
pub enum RespondError {
    #[error("there is no store '{0}'")]
    UnknownStore(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("entry {index}: {problem}")]
    Invalid { index: usize, problem: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A node's replicated stores and the rule their incoming entries pass.
pub struct Responder<I: Index> {
    stores: Vec<(String, Arc<Store<I>>)>,
    rules: Arc<dyn EntryRules>,
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
        }
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

    /// The one rule for an entry that arrives from elsewhere: a key of the store's shape,
    /// a positive max age, and (unless it is a tombstone) a value the store can hold.
    pub fn check(&self, store: &str, entry: &Entry) -> Result<(), String> {
        self.rules.check_key(store, &entry.key)?;
        check_max_age(entry.max_age_ms)?;
        match &entry.value {
            Some(value) => self.rules.check_value(store, value),
            None => Ok(()),
        }
    }

    /// Applies a batch of entries (`POST /v1/store/{store}`, a Java peer's push): checked
    /// whole first, so one bad entry refuses all of it.
    pub fn apply_batch(
        &self,
        name: &str,
        batch: Vec<WireEntry>,
    ) -> Result<ApplyReport, RespondError> {
        let store = self.store(name)?;
        let entries = self.checked_entries(name, batch)?;
        Ok(store.apply(entries, Origin::Remote)?)
    }

    /// Applies a push: full entries first, so a renewal in the same batch finds the value
    /// it renews, then renewals. Checked whole first. Answers which renewals need their
    /// value.
    pub fn push(
        &self,
        name: &str,
        request: PushRequest,
    ) -> Result<(ApplyReport, PushResponse), RespondError> {
        let store = self.store(name)?;
        let entries = self.checked_entries(name, request.entries)?;
        let renewals = self.checked_renewals(name, request.renewals)?;
        let mut report = store.apply(entries, Origin::Remote)?;
        let renewed = store.apply_renewals(renewals, Origin::Remote)?;
        report.stored += renewed.stored;
        report.superseded += renewed.superseded;
        report.expired += renewed.expired;
        report.refused_full += renewed.refused_full;
        report.refused_future += renewed.refused_future;
        let response = PushResponse {
            missing: renewed.missing.clone(),
        };
        report.missing = renewed.missing;
        Ok((report, response))
    }

    /// Entries fetched from `peer` in an anti-entropy round: each passes the same rule as a
    /// pushed one, but one bad entry does not hold back the others (the peer is not
    /// refusing us anything; we are choosing what to take). Returns what was applied and
    /// how many entries were refused.
    pub fn accept_fetched(
        &self,
        name: &str,
        peer: &str,
        fetched: Vec<WireEntry>,
    ) -> Result<(ApplyReport, usize), RespondError> {
        let store = self.store(name)?;
        let total = fetched.len();
        let entries: Vec<Entry> = fetched
            .into_iter()
            .map(entry_from_wire)
            .filter(|entry| match self.check(name, entry) {
                Ok(()) => true,
                Err(problem) => {
                    tracing::warn!(%peer, store = name, key = %String::from_utf8_lossy(&entry.key),
                        %problem, "refusing an invalid entry from a peer");
                    false
                }
            })
            .collect();
        let refused = total - entries.len();
        Ok((store.apply(entries, Origin::Remote)?, refused))
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

    /// The requested entries that this store holds.
    pub fn entries(
        &self,
        name: &str,
        request: &FetchRequest,
    ) -> Result<Vec<WireEntry>, RespondError> {
        Ok(self
            .store(name)?
            .get_many(request.keys.iter().map(Vec::as_slice))
            .iter()
            .map(|entry| entry_to_wire(entry))
            .collect())
    }

    fn checked_entries(
        &self,
        name: &str,
        batch: Vec<WireEntry>,
    ) -> Result<Vec<Entry>, RespondError> {
        batch
            .into_iter()
            .enumerate()
            .map(|(index, wire)| {
                let entry = entry_from_wire(wire);
                self.check(name, &entry)
                    .map(|()| entry)
                    .map_err(|problem| RespondError::Invalid { index, problem })
            })
            .collect()
    }

    fn checked_renewals(
        &self,
        name: &str,
        renewals: Vec<WireRenewal>,
    ) -> Result<Vec<Renewal>, RespondError> {
        renewals
            .into_iter()
            .enumerate()
            .map(|(index, wire)| {
                self.rules
                    .check_key(name, &wire.key)
                    .and_then(|()| renewal_from_wire(wire))
                    .map_err(|problem| RespondError::Invalid {
                        index,
                        problem: format!("renewal: {problem}"),
                    })
            })
            .collect()
    }
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
        fn check_key(&self, _: &str, key: &[u8]) -> Result<(), String> {
            key.starts_with(b"w")
                .then_some(())
                .ok_or_else(|| "key must start with w".into())
        }

        fn check_value(&self, _: &str, value: &[u8]) -> Result<(), String> {
            (value == b"ok")
                .then_some(())
                .ok_or_else(|| "value must be ok".into())
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

    #[test]
    fn a_push_with_one_bad_entry_applies_nothing() {
        let responder = responder();
        let request = PushRequest {
            entries: vec![wire("w1", "ok"), wire("x2", "ok")],
            renewals: Vec::new(),
        };
        let error = responder.push("dynamic", request).expect_err("refused");
        assert!(
            matches!(&error, RespondError::Invalid { index: 1, problem } if problem.contains("start with w")),
            "{error}"
        );
        assert_eq!(len(&responder), 0);

        let bad_value = PushRequest {
            entries: vec![wire("w1", "ok"), wire("w2", "nope")],
            renewals: Vec::new(),
        };
        assert!(responder.push("dynamic", bad_value).is_err());
        let never_positive = WireEntry {
            max_age_in_ms: Some(0),
            ..wire("w3", "ok")
        };
        assert!(responder
            .apply_batch("dynamic", vec![never_positive])
            .is_err());
        assert_eq!(len(&responder), 0);
    }

    #[test]
    fn a_renewal_passes_the_key_rule_too() {
        let responder = responder();
        let renewal = WireRenewal {
            key: b"x1".to_vec(),
            version: T0,
            timestamp: T0,
            max_age_in_ms: Some(30_000),
            value_hash: hex128(7),
        };
        let request = PushRequest {
            entries: Vec::new(),
            renewals: vec![renewal],
        };
        let error = responder.push("dynamic", request).expect_err("refused");
        assert!(error.to_string().contains("renewal"), "{error}");
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
