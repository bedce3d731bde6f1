//! The answering side of the protocol: what a server replies to a peer's push, digest,
//! summaries and fetch requests, computed from its local store. Used by the HTTP handlers
//! and by the in-memory transport, so simulations exercise exactly the production logic.

use discovery_store::{ApplyReport, Digest, Entry, Index, Origin, Renewal, Store, StoreError};
use discovery_types::replication::{
    hex64, parse_hex64, DigestResponse, FetchRequest, PushResponse, SummariesRequest,
    SummariesResponse,
};
use discovery_types::WireEntry;

use crate::convert::{entry_to_wire, summary_to_wire};

/// The store's digest in wire form, with its root for `If-None-Match` comparisons.
pub fn digest<I: Index>(store: &Store<I>) -> DigestResponse {
    digest_to_wire(&store.digest())
}

pub fn digest_to_wire(digest: &Digest) -> DigestResponse {
    DigestResponse {
        root: hex64(digest.root()),
        buckets: digest.buckets.iter().map(|b| hex64(*b)).collect(),
    }
}

/// A digest from the wire; `None` if any bucket is malformed.
pub fn digest_from_wire(wire: &DigestResponse) -> Option<Digest> {
    let buckets = wire
        .buckets
        .iter()
        .map(|b| parse_hex64(b))
        .collect::<Option<Vec<u64>>>()?;
    Some(Digest { buckets })
}

pub fn summaries<I: Index>(store: &Store<I>, request: &SummariesRequest) -> SummariesResponse {
    SummariesResponse {
        entries: store
            .summaries(&request.buckets)
            .iter()
            .map(summary_to_wire)
            .collect(),
    }
}

/// The requested entries that this store holds.
pub fn entries<I: Index>(store: &Store<I>, request: &FetchRequest) -> Vec<WireEntry> {
    store
        .get_many(request.keys.iter().map(Vec::as_slice))
        .iter()
        .map(|entry| entry_to_wire(entry))
        .collect()
}

/// Applies a pushed batch: full entries first, so a renewal in the same batch finds the
/// value it renews, then renewals. Returns the renewals that need their value.
pub fn apply_push<I: Index>(
    store: &Store<I>,
    entries: Vec<Entry>,
    renewals: Vec<Renewal>,
) -> Result<(ApplyReport, PushResponse), StoreError> {
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
