//! Conversions between store types and the replication wire format.

use discovery_store::{Entry, Renewal, Summary};
use discovery_types::replication::{hex128, hex64, parse_hex128, WireRenewal, WireSummary};
use discovery_types::{WireEntry, WireVersion};

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
    if wire.max_age_in_ms.is_some_and(|m| m <= 0) {
        return Err("maxAgeInMs must be positive".into());
    }
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
        fingerprint: discovery_types::replication::parse_hex64(&wire.fingerprint)?,
    })
}
