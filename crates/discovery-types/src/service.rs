//! Services as the airlift protocol stores and returns them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One service: what a lookup returns and what the stores hold.
///
/// Field order and names match airlift's `Service` JSON exactly
/// (`id, nodeId, type, pool, location, properties`). `nodeId` is absent for static
/// services, as in Java (airlift's mapper omits nulls). Properties are kept sorted so two
/// servers holding the same service produce byte-identical JSON, which keeps ETags equal
/// across a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// A UUID in its canonical dashed text form; airlift clients parse it as `java.util.UUID`.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    #[serde(rename = "type")]
    pub service_type: String,
    pub pool: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Only service inventories carry a state (`RUNNING` / `STOPPED`); the server never
    /// sends one in lookups, exactly like Java.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    pub properties: BTreeMap<String, String>,
}

/// The envelope of a lookup response and of a service inventory:
/// `{"environment": "...", "services": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSet {
    pub environment: String,
    pub services: Vec<Service>,
}

/// True when `id` is a UUID in the dashed 8-4-4-4-12 hex form that `java.util.UUID`
/// parses. One service id that is not a UUID makes every airlift client's lookup of that
/// type fail, so the server accepts nothing else.
pub fn is_service_id(id: &str) -> bool {
    id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_ids_must_be_dashed_uuids() {
        assert!(is_service_id("0b6c6a2e-3f5e-4a43-9d2e-6f3a3f0f6a01"));
        assert!(is_service_id("0B6C6A2E-3F5E-4A43-9D2E-6F3A3F0F6A01"));
        assert!(!is_service_id("0b6c6a2e3f5e4a439d2e6f3a3f0f6a01"));
        assert!(!is_service_id("{0b6c6a2e-3f5e-4a43-9d2e-6f3a3f0f6a01}"));
        assert!(!is_service_id("0b6c6a2e-3f5e-4a43-9d2e-6f3a3f0f6a0g"));
        assert!(!is_service_id("u1"));
        assert!(!is_service_id(""));
    }

    #[test]
    fn static_services_serialise_without_node_id_like_java() {
        let service = Service {
            id: "5f0f6b8e-2a51-4a0c-a0f7-0a0c9f1c2b11".into(),
            node_id: None,
            service_type: "apple".into(),
            pool: "red".into(),
            location: Some("/a/b/c".into()),
            state: None,
            properties: BTreeMap::from([("http".into(), "http://host".into())]),
        };
        assert_eq!(
            serde_json::to_string(&service).unwrap(),
            r#"{"id":"5f0f6b8e-2a51-4a0c-a0f7-0a0c9f1c2b11","type":"apple","pool":"red","location":"/a/b/c","properties":{"http":"http://host"}}"#
        );
    }

    #[test]
    fn inventory_documents_parse_with_state_and_unknown_fields() {
        let doc = r#"{"environment":"prod","services":[{"id":"c8a9ee64-0476-452c-8638-8e72f3ee3ca6",
            "nodeId":"disc-1","type":"discovery","pool":"general","location":"/dc1/disc-1",
            "state":"RUNNING","extra":1,"properties":{"http":"http://disc-1:8411"}}]}"#;
        let set: ServiceSet = serde_json::from_str(doc).unwrap();
        assert_eq!(set.services[0].state.as_deref(), Some("RUNNING"));
        assert_eq!(set.services[0].node_id.as_deref(), Some("disc-1"));
    }
}
