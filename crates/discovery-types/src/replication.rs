//! Messages of the replication protocol between discoveryd servers (ours, not airlift's;
//! `docs/REPLICATION.md` describes the exchange). Keys are base64 like in
//! [`WireEntry`](crate::WireEntry); hashes are lowercase hex.
//!
//! | Request | Body | Answer |
//! |---|---|---|
//! | `POST /v1/replication/{store}/push` | [`PushRequest`] | [`PushResponse`] |
//! | `GET /v1/replication/{store}/digest` with `If-None-Match: "<root>"` | – | 304, or [`DigestResponse`] |
//! | `POST /v1/replication/{store}/summaries` | [`SummariesRequest`] | [`SummariesResponse`] |
//! | `POST /v1/replication/{store}/entries` | [`FetchRequest`] | `[WireEntry]` |
//! | `POST /v1/replication/{store}/ranges` | [`RangesRequest`] | [`RangesResponse`] |
//! | `POST /v1/replication/{store}/diff` | [`DiffRequest`] | [`DiffResponse`] |
//! | `GET /v1/replication/status` | – | [`ReplicationStatus`] |

use serde::{Deserialize, Serialize};

use crate::store_wire::{bytes_serde, WireEntry};

/// A batch pushed to a peer: changed entries in full, renewals by value hash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRequest {
    #[serde(default)]
    pub entries: Vec<WireEntry>,
    #[serde(default)]
    pub renewals: Vec<WireRenewal>,
}

/// "Same value as the one you hold for this key, now with this version, timestamp and
/// max age." About 150 bytes instead of the whole value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireRenewal {
    #[serde(with = "bytes_serde")]
    pub key: Vec<u8>,
    pub version: i64,
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_in_ms: Option<i64>,
    /// 128-bit hash of the value, 32 hex digits.
    pub value_hash: String,
}

/// The keys of renewals the receiver could not apply because it does not hold the value
/// they renew; the sender follows up with those entries in full.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushResponse {
    #[serde(default, with = "key_list")]
    pub missing: Vec<Vec<u8>>,
    /// Entries and renewals the receiver refused, with why. The sender drops them: a
    /// refused entry would be refused again, and what did not fit in a full store is
    /// offered again by anti-entropy. The rest of the batch was applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<WireRefusal>,
}

/// One refused entry of a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireRefusal {
    #[serde(with = "bytes_serde")]
    pub key: Vec<u8>,
    pub reason: String,
}

/// A store's digest: per-bucket hashes (16 hex digits each) and their root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestResponse {
    pub root: String,
    pub buckets: Vec<String>,
}

/// Which digest buckets to list key by key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummariesRequest {
    pub buckets: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummariesResponse {
    pub entries: Vec<WireSummary>,
}

/// One key's version and content fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireSummary {
    #[serde(with = "bytes_serde")]
    pub key: Vec<u8>,
    pub version: i64,
    /// 64-bit fingerprint of the whole entry, 16 hex digits.
    pub fingerprint: String,
}

/// Splits ranges of one level into their 16 sub-ranges (nodes that announce
/// [`RANGES_CAPABILITY`]). A range holds the keys whose 64-bit key hash ends in the `bits`
/// low bits `prefix`: the 256 digest buckets are the ranges of 8 bits, and sub-range `c`
/// of `(bits, prefix)` is `(bits + 4, prefix | c << bits)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangesRequest {
    pub bits: u32,
    pub prefixes: Vec<u64>,
}

/// The hashes of the sub-ranges, 16 per requested prefix in request order, each the XOR
/// of its entries' fingerprints as 8 little-endian bytes, all in one base64 string (a
/// third of the size of hex strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangesResponse {
    #[serde(with = "bytes_serde")]
    pub children: Vec<u8>,
}

/// "These are the entries I hold in these ranges": the ranges (see [`RangesRequest`]),
/// each as `prefix | 1 << bits`, and per entry its key hash and fingerprint; all numbers
/// 8 little-endian bytes, each list in one base64 string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffRequest {
    #[serde(with = "bytes_serde")]
    pub ranges: Vec<u8>,
    #[serde(with = "bytes_serde")]
    pub have: Vec<u8>,
}

/// The answer to a [`DiffRequest`]: the answering node's entries in the ranges that the
/// asker lacks (in full, within the answer's byte budget), summaries of the ones whose
/// content differs on both sides (and of lacked ones beyond the budget), and the key
/// hashes of the asker's entries it lacks (8 little-endian bytes each, base64).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffResponse {
    #[serde(default)]
    pub entries: Vec<WireEntry>,
    #[serde(default)]
    pub summaries: Vec<WireSummary>,
    #[serde(default, with = "bytes_serde")]
    pub wanted: Vec<u8>,
}

/// The header of a digest answer by which a node says it answers `ranges` and `diff`
/// (value [`RANGES_CAPABILITY`]); a peer without it gets the bucket summaries protocol.
pub const ANTI_ENTROPY_HEADER: &str = "x-discovery-anti-entropy";
/// The value of [`ANTI_ENTROPY_HEADER`].
pub const RANGES_CAPABILITY: &str = "ranges";

/// Entries wanted in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchRequest {
    #[serde(with = "key_list")]
    pub keys: Vec<Vec<u8>>,
}

/// What `GET /v1/replication/status` reports: this node and every peer it replicates to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationStatus {
    pub node_id: String,
    pub environment: String,
    /// Where peers come from (`service-inventory.uri`), if replication is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<String>,
    /// The last inventory load failure, cleared by the next success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory_error: Option<String>,
    /// Per store: entry count and digest root, so replicas can be compared at a glance.
    pub stores: Vec<StoreStatus>,
    pub peers: Vec<PeerStatus>,
    /// Requests refused by authentication since the start, by reason (`missing`,
    /// `expired`, `bad_signature`, `forbidden`, …).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub auth_failures: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreStatus {
    pub name: String,
    pub entries: usize,
    pub digest_root: String,
    /// Entries refused because they were stamped too far in the future.
    pub refused_future: u64,
    /// Entries from elsewhere refused because the store was full (new keys only).
    #[serde(default)]
    pub refused_full: u64,
    /// Entries from elsewhere refused by the validation rule.
    #[serde(default)]
    pub refused_invalid: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerStatus {
    pub node_id: String,
    pub url: String,
    pub stores: Vec<PeerStoreStatus>,
}

/// Replication towards one peer for one store. Times are ms since the epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerStoreStatus {
    pub store: String,
    /// Changes waiting to be pushed.
    pub queued: usize,
    /// How long the oldest write not yet acknowledged by the peer (queued or in flight)
    /// has waited, in ms; absent when nothing is owed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_pending_ms: Option<u64>,
    pub pushed_entries: u64,
    pub pushed_renewals: u64,
    /// Push requests the peer answered.
    #[serde(default)]
    pub pushes_ok: u64,
    pub push_failures: u64,
    /// Changes dropped because the queue was full (repaired by anti-entropy).
    pub dropped: u64,
    /// Pushed entries the peer refused (invalid there, or its store was full).
    #[serde(default)]
    pub refused_by_peer: u64,
    /// The peer's clock minus ours, in ms, as the last anti-entropy round measured it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_push_ok_ms: Option<i64>,
    pub syncs_ok: u64,
    pub syncs_failed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_ok_ms: Option<i64>,
    /// Whether the last successful anti-entropy round found the replicas identical.
    pub last_sync_in_agreement: bool,
    /// Whether the peer said it was ready in the last successful anti-entropy round;
    /// absent before the first one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_ready: Option<bool>,
    /// Entries taken from this peer by anti-entropy.
    pub sync_fetched: u64,
    /// Entries sent to this peer by anti-entropy.
    pub sync_pushed: u64,
    /// Request and response body bytes exchanged with this peer.
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// The part of `bytes_sent` and `bytes_received` that anti-entropy exchanged.
    #[serde(default)]
    pub sync_bytes_sent: u64,
    #[serde(default)]
    pub sync_bytes_received: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A list of byte strings as base64 text.
mod key_list {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::store_wire::Base64Bytes;

    pub fn serialize<S: Serializer>(keys: &[Vec<u8>], serializer: S) -> Result<S::Ok, S::Error> {
        let wrapped: Vec<Base64Bytes<'_>> = keys.iter().map(|k| Base64Bytes(k)).collect();
        wrapped.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Vec<u8>>, D::Error> {
        let owned: Vec<crate::store_wire::OwnedBytes> = Vec::deserialize(deserializer)?;
        Ok(owned.into_iter().map(|b| b.0).collect())
    }
}

/// Hashes as fixed-width lowercase hex.
pub fn hex64(value: u64) -> String {
    format!("{value:016x}")
}

pub fn hex128(value: u128) -> String {
    format!("{value:032x}")
}

pub fn parse_hex64(text: &str) -> Option<u64> {
    (text.len() == 16)
        .then(|| u64::from_str_radix(text, 16).ok())
        .flatten()
}

pub fn parse_hex128(text: &str) -> Option<u128> {
    (text.len() == 32)
        .then(|| u128::from_str_radix(text, 16).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store_wire::WireVersion;

    #[test]
    fn push_messages_round_trip_with_base64_keys() {
        let request = PushRequest {
            entries: vec![WireEntry {
                key: b"n1".to_vec(),
                value: Some(b"[]".to_vec()),
                version: WireVersion { sequence: 2 },
                timestamp: 2,
                max_age_in_ms: Some(30_000),
            }],
            renewals: vec![WireRenewal {
                key: b"n2".to_vec(),
                version: 3,
                timestamp: 3,
                max_age_in_ms: Some(30_000),
                value_hash: hex128(7),
            }],
        };
        let json = serde_json::to_string(&request).unwrap();
        assert!(json.contains(r#""key":"bjI=""#), "{json}");
        assert!(
            json.contains(r#""valueHash":"00000000000000000000000000000007""#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<PushRequest>(&json).unwrap(), request);

        let response = PushResponse {
            missing: vec![b"n2".to_vec()],
            refused: Vec::new(),
        };
        let json = serde_json::to_string(&response).unwrap();
        assert_eq!(json, r#"{"missing":["bjI="]}"#, "an older peer reads it");
        assert_eq!(
            serde_json::from_str::<PushResponse>(&json).unwrap(),
            response
        );
        let refusing = PushResponse {
            missing: Vec::new(),
            refused: vec![WireRefusal {
                key: b"n3".to_vec(),
                reason: "store 'dynamic' is full".into(),
            }],
        };
        let json = serde_json::to_string(&refusing).unwrap();
        assert_eq!(
            json,
            r#"{"missing":[],"refused":[{"key":"bjM=","reason":"store 'dynamic' is full"}]}"#
        );
        assert_eq!(
            serde_json::from_str::<PushResponse>(&json).unwrap(),
            refusing
        );
    }

    #[test]
    fn hex_helpers_are_strict() {
        assert_eq!(parse_hex64(&hex64(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_hex128(&hex128(5)), Some(5));
        assert_eq!(parse_hex64("abc"), None);
        assert_eq!(parse_hex64("zzzzzzzzzzzzzzzz"), None);
    }
}
