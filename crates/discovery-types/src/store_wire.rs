//! The raw replicated-entry shape of `GET`/`POST /v1/store/{store}` (airlift's `Entry`).
//!
//! ```json
//! {"key":"bm9kZS1h","value":"W3siaWQiOi4uLn1d","version":{"sequence":1715090000123},
//!  "timestamp":1715090000123,"maxAgeInMs":30000}
//! ```
//!
//! `key` and `value` are byte arrays: standard base64 in JSON, binary values in Smile (the
//! format Java peers push). Absent `value` means a tombstone; absent `maxAgeInMs` means no
//! time-to-live. Null fields are omitted on output, as airlift's mapper does.

use std::fmt;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// One entry as it travels between servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireEntry {
    #[serde(with = "bytes_serde")]
    pub key: Vec<u8>,
    #[serde(
        default,
        with = "optional_bytes",
        skip_serializing_if = "Option::is_none"
    )]
    pub value: Option<Vec<u8>>,
    pub version: WireVersion,
    /// Java turns a missing timestamp into 0; so do we.
    #[serde(default)]
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_in_ms: Option<i64>,
}

/// airlift's `Version`: a single long wrapped in an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireVersion {
    pub sequence: i64,
}

/// Standard base64 alphabet; padding optional on input, written on output (what Jackson
/// produces and accepts).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub(crate) mod bytes_serde {
    use super::*;

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&BASE64.encode(bytes))
        } else {
            serializer.serialize_bytes(bytes)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        deserializer.deserialize_any(BytesVisitor)
    }
}

mod optional_bytes {
    use super::*;

    pub fn serialize<S: Serializer>(
        bytes: &Option<Vec<u8>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => super::bytes_serde::serialize(bytes, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        deserializer.deserialize_option(OptionalBytesVisitor)
    }

    struct OptionalBytesVisitor;

    impl<'de> Visitor<'de> for OptionalBytesVisitor {
        type Value = Option<Vec<u8>>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("null, base64 text or binary")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(BytesVisitor).map(Some)
        }
    }
}

/// Borrowed bytes that serialise like an entry key (base64 in JSON).
pub(crate) struct Base64Bytes<'a>(pub &'a [u8]);

impl Serialize for Base64Bytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        bytes_serde::serialize(self.0, serializer)
    }
}

/// Owned bytes that deserialise like an entry key.
pub(crate) struct OwnedBytes(pub Vec<u8>);

impl<'de> Deserialize<'de> for OwnedBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        bytes_serde::deserialize(deserializer).map(OwnedBytes)
    }
}

/// Accepts base64 text (JSON, or Smile from a peer that wrote text) and raw binary (Smile).
struct BytesVisitor;

impl Visitor<'_> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("base64 text or binary")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Vec<u8>, E> {
        BASE64
            .decode(text)
            .map_err(|e| E::custom(format!("invalid base64: {e}")))
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
        Ok(bytes.to_vec())
    }

    fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_matches_airlift() {
        let entries = vec![
            WireEntry {
                key: b"node-a".to_vec(),
                value: Some(b"[]".to_vec()),
                version: WireVersion { sequence: 7 },
                timestamp: 7,
                max_age_in_ms: Some(30000),
            },
            WireEntry {
                key: b"node-b".to_vec(),
                value: None,
                version: WireVersion { sequence: 8 },
                timestamp: 8,
                max_age_in_ms: None,
            },
        ];
        let json = serde_json::to_string(&entries).unwrap();
        assert_eq!(
            json,
            r#"[{"key":"bm9kZS1h","value":"W10=","version":{"sequence":7},"timestamp":7,"maxAgeInMs":30000},{"key":"bm9kZS1i","version":{"sequence":8},"timestamp":8}]"#
        );
        let back: Vec<WireEntry> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, entries);
    }

    #[test]
    fn missing_key_or_version_is_an_error_and_missing_timestamp_is_zero() {
        assert!(serde_json::from_str::<WireEntry>(r#"{"version":{"sequence":1}}"#).is_err());
        assert!(serde_json::from_str::<WireEntry>(r#"{"key":"YQ=="}"#).is_err());
        assert!(
            serde_json::from_str::<WireEntry>(r#"{"key":null,"version":{"sequence":1}}"#).is_err()
        );
        let entry: WireEntry =
            serde_json::from_str(r#"{"key":"YQ","value":null,"version":{"sequence":1},"x":1}"#)
                .unwrap();
        assert_eq!(entry.timestamp, 0);
        assert_eq!(entry.key, b"a");
        assert_eq!(entry.value, None);
    }

    /// The Smile bytes Java's push writes (`docs/PROTOCOL.md`, "Java peers and Smile"): two
    /// entries, `node-1` with a value and a TTL, and a tombstone `node-2` with explicit nulls.
    #[test]
    fn decodes_the_smile_batch_a_java_peer_pushes() {
        let hex =
            "3a290a01f8fa826b6579e886371b6c4629343184 76616c7565e88d2d5e64264b10443a111c6612137
                   51d8676657273696f6efa8773657175656e636525014573 7c564080fb8874696d657374616d7025
                   014573 7c564080896d61784167 65496e4d732407 29a0fbfa40e886371b6c4629343241214
                   2fa432501457 37c564082fb442501457 37c56408245 21fbf9";
        let clean: String = hex.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        let bytes: Vec<u8> = (0..clean.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&clean[i..i + 2], 16).unwrap())
            .collect();
        let entries: Vec<WireEntry> = serde_smile::from_slice(&bytes).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].key, b"node-1");
        assert_eq!(entries[0].value.as_deref(), Some(&br#"[{"id":"s1"}]"#[..]));
        assert_eq!(entries[0].version.sequence, 1_700_000_000_000);
        assert_eq!(entries[0].max_age_in_ms, Some(30000));
        assert_eq!(entries[1].key, b"node-2");
        assert_eq!(entries[1].value, None);
        assert_eq!(entries[1].max_age_in_ms, None);
        assert_eq!(entries[1].timestamp, 1_700_000_000_001);

        let reencoded = serde_smile::to_vec(&entries).unwrap();
        let again: Vec<WireEntry> = serde_smile::from_slice(&reencoded).unwrap();
        assert_eq!(again, entries);
    }
}
