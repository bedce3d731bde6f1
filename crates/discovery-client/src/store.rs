//! Raw store entries (`GET /v1/store/{dynamic|static}`), decoded for people.
//!
//! On the wire an entry's key and value are base64 bytes. Decoded, a dynamic entry is one
//! node (key = node id, value = the JSON list of its services, with a time-to-live), and a
//! static entry is one operator-managed service (key = service id, value = its JSON, no
//! time-to-live). A tombstone has no value: the key was deleted and the deletion is kept
//! for a while so replication does not resurrect it.

use discovery_types::{Service, WireEntry};
use serde::Serialize;

pub use discovery_types::StoreName;

/// One store entry with its key and value decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecodedEntry {
    pub store: StoreName,
    /// The node id (dynamic) or service id (static); lossy UTF-8.
    pub key: String,
    /// The services in the value; empty for a tombstone or an undecodable value.
    pub services: Vec<Service>,
    /// Why the value could not be decoded, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decode_error: Option<String>,
    /// Last-writer-wins version (the writing server's clock, ms).
    pub version: i64,
    /// When the entry was written, ms since the epoch (the writing server's clock).
    pub timestamp: i64,
    /// Time-to-live in ms; none for static services and tombstones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age_in_ms: Option<i64>,
    pub tombstone: bool,
}

impl DecodedEntry {
    /// Decodes `entry` of `store`. Never fails: an undecodable value is reported in
    /// [`DecodedEntry::decode_error`], since a dump is exactly where an operator looks for
    /// such entries.
    pub fn decode(store: StoreName, entry: &WireEntry) -> Self {
        let (services, decode_error) = match &entry.value {
            None => (Vec::new(), None),
            Some(value) => match decode_value(store, value) {
                Ok(services) => (services, None),
                Err(e) => (Vec::new(), Some(e)),
            },
        };
        DecodedEntry {
            store,
            key: String::from_utf8_lossy(&entry.key).into_owned(),
            services,
            decode_error,
            version: entry.version.sequence,
            timestamp: entry.timestamp,
            max_age_in_ms: entry.max_age_in_ms,
            tombstone: entry.value.is_none(),
        }
    }

    /// When the entry stops being served (ms since the epoch), if it has a time-to-live.
    pub fn expires_at(&self) -> Option<i64> {
        self.max_age_in_ms
            .map(|max_age| self.timestamp.saturating_add(max_age))
    }

    /// Milliseconds until the entry expires at `now_ms`; negative once it has expired.
    pub fn expires_in(&self, now_ms: i64) -> Option<i64> {
        self.expires_at().map(|at| at.saturating_sub(now_ms))
    }

    /// True when a lookup at `now_ms` would not return this entry's services: a
    /// tombstone, or past its time-to-live (the server's rule: expired once strictly more
    /// than `maxAgeInMs` has passed).
    pub fn is_dead(&self, now_ms: i64) -> bool {
        self.tombstone || self.expires_in(now_ms).is_some_and(|left| left < 0)
    }
}

/// Dynamic values are a JSON list of services, static values a single service. The other
/// shape is accepted too, so a dump of an unexpected store still shows its contents.
fn decode_value(store: StoreName, value: &[u8]) -> Result<Vec<Service>, String> {
    let as_list = || serde_json::from_slice::<Vec<Service>>(value);
    let as_one = || serde_json::from_slice::<Service>(value).map(|s| vec![s]);
    let decoded = match store {
        StoreName::Dynamic => as_list().or_else(|e| as_one().map_err(|_| e)),
        StoreName::Static => as_one().or_else(|e| as_list().map_err(|_| e)),
    };
    decoded.map_err(|e| {
        let preview: String = String::from_utf8_lossy(value).chars().take(80).collect();
        format!("not a service value ({e}): {preview}")
    })
}

#[cfg(test)]
mod tests {
    use discovery_types::WireVersion;

    use super::*;

    const SERVICE: &str = r#"{"id":"0b6c6a2e-3f5e-4a43-9d2e-6f3a3f0f6a01","nodeId":"n1","type":"presto","pool":"general","location":"/n1","properties":{"http":"http://h:8080"}}"#;

    fn entry(key: &str, value: Option<&str>, max_age: Option<i64>) -> WireEntry {
        WireEntry {
            key: key.as_bytes().to_vec(),
            value: value.map(|v| v.as_bytes().to_vec()),
            version: WireVersion { sequence: 1000 },
            timestamp: 1000,
            max_age_in_ms: max_age,
        }
    }

    #[test]
    fn decodes_a_dynamic_node_with_its_ttl() {
        let raw = entry("n1", Some(&format!("[{SERVICE}]")), Some(30_000));
        let decoded = DecodedEntry::decode(StoreName::Dynamic, &raw);
        assert_eq!(decoded.key, "n1");
        assert_eq!(decoded.services.len(), 1);
        assert_eq!(decoded.services[0].service_type, "presto");
        assert!(!decoded.tombstone);
        assert_eq!(decoded.expires_at(), Some(31_000));
        assert_eq!(decoded.expires_in(21_000), Some(10_000));
        assert!(
            !decoded.is_dead(31_000),
            "expiry is strict, as on the server"
        );
        assert!(decoded.is_dead(31_001));
    }

    #[test]
    fn decodes_static_services_and_tombstones() {
        let decoded = DecodedEntry::decode(StoreName::Static, &entry("id", Some(SERVICE), None));
        assert_eq!(decoded.services.len(), 1);
        assert_eq!(decoded.expires_in(5), None);
        assert!(!decoded.is_dead(i64::MAX));

        let tombstone = DecodedEntry::decode(StoreName::Dynamic, &entry("gone", None, None));
        assert!(tombstone.tombstone);
        assert!(tombstone.services.is_empty());
        assert_eq!(tombstone.decode_error, None);
        assert!(tombstone.is_dead(0));
    }

    #[test]
    fn a_garbage_value_is_reported_not_fatal() {
        let decoded = DecodedEntry::decode(StoreName::Dynamic, &entry("n", Some("not json"), None));
        assert!(decoded.services.is_empty());
        assert!(decoded.decode_error.unwrap().contains("not json"));
    }

    #[test]
    fn store_names_round_trip() {
        for name in StoreName::ALL {
            assert_eq!(name.as_str().parse::<StoreName>(), Ok(name));
        }
        assert!("other".parse::<StoreName>().is_err());
    }
}
