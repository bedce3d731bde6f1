//! Conversions between store types and the replication wire format.

use discovery_store::{Digest, Entry, Renewal, Summary};
use discovery_types::replication::{
    hex128, hex64, parse_hex128, parse_hex64, DigestResponse, WireRenewal, WireSummary,
};
use discovery_types::{WireEntry, WireVersion};

use crate::responder::check_max_age;

pub fn entry_to_wire(entry: &Entry) -> WireEntry {
    WireEntry {
        key: entry.key.clone(),
        value: entry.value.clone(),
        version: WireVersion {
            sequence: entry.version,
        },
        timestamp: entry.timestamp,
        max_age_in_ms: entry.max_age_ms,
    }
}

pub fn entry_from_wire(wire: WireEntry) -> Entry {
    Entry {
        key: wire.key,
        value: wire.value,
        version: wire.version.sequence,
        timestamp: wire.timestamp,
        max_age_ms: wire.max_age_in_ms,
    }
}

pub fn renewal_to_wire(entry: &Entry, value_hash: u128) -> WireRenewal {
    WireRenewal {
        key: entry.key.clone(),
        version: entry.version,
        timestamp: entry.timestamp,
        max_age_in_ms: entry.max_age_ms,
        value_hash: hex128(value_hash),
    }
}

/// A renewal from the wire; `Err` names the problem.
pub fn renewal_from_wire(wire: WireRenewal) -> Result<Renewal, String> {
    let value_hash = parse_hex128(&wire.value_hash)
        .ok_or_else(|| format!("valueHash '{}' is not 32 hex digits", wire.value_hash))?;
    check_max_age(wire.max_age_in_ms)?;
    Ok(Renewal {
        key: wire.key,
        version: wire.version,
        timestamp: wire.timestamp,
        max_age_ms: wire.max_age_in_ms,
        value_hash,
    })
}

pub fn summary_to_wire(summary: &Summary) -> WireSummary {
    WireSummary {
        key: summary.key.clone(),
        version: summary.version,
        fingerprint: hex64(summary.fingerprint),
    }
}

pub fn summary_from_wire(wire: WireSummary) -> Option<Summary> {
    Some(Summary {
        key: wire.key,
        version: wire.version,
        fingerprint: parse_hex64(&wire.fingerprint)?,
    })
}

/// A digest in wire form, with its root for `If-None-Match` comparisons.
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

/// Hashes as consecutive 8-byte little-endian numbers (the `ranges` and `diff` messages).
pub fn pack_u64s(values: &[u64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The numbers of [`pack_u64s`]; trailing bytes short of a number are ignored (callers
/// check the length where it matters).
pub fn unpack_u64s(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|chunk| {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            u64::from_le_bytes(word)
        })
        .collect()
}
