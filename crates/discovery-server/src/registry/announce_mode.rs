//! Trino 477+ announce-mode nodes as ordinary dynamic entries.
//!
//! A node that announces itself with `POST /v1/announce` is stored exactly like an
//! airlift announcement: one entry in the `dynamic` store keyed by its Trino node id,
//! whose value is the JSON array of its services, with a time-to-live. So it replicates,
//! expires and shows up in `GET /v1/service/trino[/general]` like any airlift-mode node,
//! and nothing downstream needs to know which protocol it used. This module turns the
//! facts learned from the node's `/v1/info` into that entry (pure), and lists the URIs of
//! the announce-mode nodes the store holds. No HTTP, no outbound I/O.

use std::collections::{BTreeMap, BTreeSet};

use discovery_store::StoreError;
use discovery_types::{AnnounceUri, ServerInfo, Service};
use xxhash_rust::xxh3::xxh3_128;

use super::{decode_services, encode, Registry, Selector, ValueFormat};

/// The service type announce-mode nodes are listed under: Trino's airlift-mode type.
pub const TRINO_SERVICE_TYPE: &str = "trino";

/// The pool announce-mode nodes are listed in (Trino has no pools in announce mode).
pub const TRINO_POOL: &str = "general";

/// The property that marks a service as bridged from announce mode, and its value. The
/// name follows Trino's own setting (`discovery.type=announce`); airlift-mode nodes never
/// send it.
pub const MARKER_PROPERTY: &str = "discovery_type";
pub const MARKER_VALUE: &str = "announce";

/// What became of a learned node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnnouncedOutcome {
    /// Stored (or renewed).
    Stored,
    /// The node id is held by a live airlift-mode announcement, which an announce-mode
    /// node must not replace: an unauthenticated POST could otherwise evict any node.
    HeldByAirlift,
}

/// The stable service id of an announce-mode node: a hash of its node id shaped as a
/// version-4 UUID (airlift clients parse service ids as `java.util.UUID`). Stable so every
/// renewal, on every server of the cluster, produces the same value and therefore the
/// same lookup answer and ETag.
pub fn announce_service_id(node_id: &str) -> String {
    // A fixed prefix keeps these ids apart from any other hash of a node id.
    let mut input = b"discoveryd/trino-announce/".to_vec();
    input.extend_from_slice(node_id.as_bytes());
    let bytes = xxh3_128(&input).to_be_bytes();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// The services stored for an announce-mode node reached at `uri`: one `trino` service in
/// pool `general` with the properties an airlift-mode Trino node announces (`http` or
/// `https`, `node_version`, `coordinator`), plus the marker and the node's state.
pub fn announced_services(uri: &AnnounceUri, info: &ServerInfo) -> Vec<Service> {
    let mut properties = BTreeMap::new();
    properties.insert(uri.scheme().as_str().to_owned(), uri.as_str().to_owned());
    properties.insert("node_version".to_owned(), info.version.clone());
    properties.insert("coordinator".to_owned(), info.coordinator.to_string());
    properties.insert(MARKER_PROPERTY.to_owned(), MARKER_VALUE.to_owned());
    if let Some(state) = &info.state {
        properties.insert("state".to_owned(), state.clone());
    }
    vec![Service {
        id: announce_service_id(&info.node_id),
        node_id: Some(info.node_id.clone()),
        service_type: TRINO_SERVICE_TYPE.to_owned(),
        pool: TRINO_POOL.to_owned(),
        // airlift's default location for a node without node.location.
        location: Some(format!("/{}", info.node_id)),
        state: None,
        properties,
    }]
}

/// True when every service of `services` came through announce mode.
fn is_announce_mode(services: &[Service]) -> bool {
    !services.is_empty()
        && services
            .iter()
            .all(|s| s.properties.get(MARKER_PROPERTY).map(String::as_str) == Some(MARKER_VALUE))
}

/// The URI an announce-mode service was announced with.
fn announced_uri(service: &Service) -> Option<&str> {
    if service.properties.get(MARKER_PROPERTY).map(String::as_str) != Some(MARKER_VALUE) {
        return None;
    }
    service
        .properties
        .get("https")
        .or_else(|| service.properties.get("http"))
        .map(String::as_str)
}

impl Registry {
    /// Stores (or renews) the announce-mode node described by `info`, reached at `uri`,
    /// for `max_age_ms`, through the same local-write path as an airlift announcement.
    pub fn announce_trino_node(
        &self,
        uri: &AnnounceUri,
        info: &ServerInfo,
        max_age_ms: i64,
    ) -> Result<AnnouncedOutcome, StoreError> {
        let key = info.node_id.as_bytes();
        let now = self.dynamic.now_ms();
        if let Some(current) = self.dynamic.get(key) {
            let held_by_airlift = current.is_live(now)
                && current
                    .value
                    .as_deref()
                    .and_then(|value| decode_services(ValueFormat::ServiceList, value).ok())
                    .is_some_and(|services| !is_announce_mode(&services));
            if held_by_airlift {
                return Ok(AnnouncedOutcome::HeldByAirlift);
            }
        }
        let value = encode(&announced_services(uri, info));
        self.dynamic.put(key.to_vec(), value, Some(max_age_ms))?;
        Ok(AnnouncedOutcome::Stored)
    }

    /// The URIs of every live announce-mode node in the dynamic store (its own and those
    /// replicated from peers), sorted and without duplicates: `GET /v1/announce`.
    pub fn announced_uris(&self) -> Vec<String> {
        let now = self.dynamic.now_ms();
        let mut indexed = Vec::new();
        self.dynamic.read_index(|index| {
            index.collect(
                Selector::TypeAndPool(TRINO_SERVICE_TYPE, TRINO_POOL),
                now,
                &mut indexed,
            )
        });
        let uris: BTreeSet<String> = indexed
            .iter()
            .filter_map(|service| serde_json::from_str::<Service>(&service.json).ok())
            .filter_map(|service| announced_uri(&service).map(str::to_owned))
            .collect();
        uris.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::registry::tests::registry;
    use discovery_store::ManualClock;
    use discovery_types::{is_service_id, DynamicAnnouncement};

    const T0: i64 = 1_800_000_000_000;

    fn airlift(registry: &Registry, node: &str, http: &str) {
        let body = format!(
            r#"{{"environment":"test","pool":"general","services":[{{"id":"00000000-0000-4000-8000-000000000001","type":"trino","properties":{{"http":"{http}"}}}}]}}"#
        );
        let announcement = DynamicAnnouncement::from_json(body.as_bytes(), "test").expect("valid");
        registry.announce(node, announcement).expect("stored");
    }

    #[test]
    fn announce_mode_nodes_are_listed_with_airlift_ones_and_expire_after_their_max_age() {
        let clock = Arc::new(ManualClock::new(T0));
        let registry = registry(&clock);
        airlift(&registry, "a1", "http://10.0.0.1:8080");
        let outcome = registry
            .announce_trino_node(&uri("http://10.0.0.2:8080"), &info("w2"), 5_000)
            .expect("stored");
        assert_eq!(outcome, AnnouncedOutcome::Stored);
        assert_eq!(
            registry
                .lookup(Selector::TypeAndPool("trino", "general"))
                .services,
            2
        );
        assert_eq!(registry.announced_uris(), vec!["http://10.0.0.2:8080"]);
        let entry = registry
            .dynamic
            .get(b"w2")
            .expect("stored under the node id");
        assert_eq!(entry.max_age_ms, Some(5_000));
        clock.advance(5_001);
        assert!(registry.announced_uris().is_empty(), "expired");
        assert_eq!(registry.lookup(Selector::Type("trino")).services, 1);
    }

    #[test]
    fn an_announce_mode_node_never_replaces_a_live_airlift_announcement() {
        let clock = Arc::new(ManualClock::new(T0));
        let registry = registry(&clock);
        airlift(&registry, "n1", "http://10.0.0.1:8080");
        let outcome = registry
            .announce_trino_node(&uri("http://evil:1"), &info("n1"), 30_000)
            .expect("no store error");
        assert_eq!(outcome, AnnouncedOutcome::HeldByAirlift);
        assert!(registry.announced_uris().is_empty());
        // Once the airlift announcement has expired, the id is free.
        clock.advance(30_001);
        let outcome = registry
            .announce_trino_node(&uri("http://10.0.0.9:8080"), &info("n1"), 30_000)
            .expect("no store error");
        assert_eq!(outcome, AnnouncedOutcome::Stored);
        // Renewals of an announce-mode node replace its own entry.
        let outcome = registry
            .announce_trino_node(&uri("http://10.0.0.9:8080"), &info("n1"), 30_000)
            .expect("no store error");
        assert_eq!(outcome, AnnouncedOutcome::Stored);
        assert_eq!(registry.announced_uris(), vec!["http://10.0.0.9:8080"]);
    }

    fn info(node_id: &str) -> ServerInfo {
        ServerInfo {
            node_id: node_id.into(),
            environment: "test".into(),
            version: "477".into(),
            coordinator: false,
            state: Some("ACTIVE".into()),
        }
    }

    fn uri(text: &str) -> AnnounceUri {
        AnnounceUri::parse(text.as_bytes()).expect("valid URI")
    }

    #[test]
    fn the_service_id_is_a_stable_uuid_per_node_id() {
        let id = announce_service_id("worker-1");
        assert!(is_service_id(&id), "{id}");
        assert_eq!(id.as_bytes()[14], b'4', "version-4 shaped: {id}");
        assert_eq!(id, announce_service_id("worker-1"));
        assert_ne!(id, announce_service_id("worker-2"));
        // Pinned: a change would make servers of different versions list different ids
        // for the same node during a rolling upgrade.
        assert_eq!(id, "e2c759a3-ea52-4d37-acaf-704117caf45e");
    }

    #[test]
    fn the_entry_carries_the_learned_facts_and_the_marker() {
        let services = announced_services(&uri("https://10.0.0.7:8443"), &info("w7"));
        let json = serde_json::to_value(&services).expect("serialises");
        assert_eq!(
            json,
            serde_json::json!([{
                "id": announce_service_id("w7"),
                "nodeId": "w7",
                "type": "trino",
                "pool": "general",
                "location": "/w7",
                "properties": {
                    "coordinator": "false",
                    "discovery_type": "announce",
                    "https": "https://10.0.0.7:8443",
                    "node_version": "477",
                    "state": "ACTIVE",
                },
            }])
        );
        // What a replica accepts: the same decoding the replication validator applies.
        let value = encode(&services);
        assert_eq!(
            decode_services(ValueFormat::ServiceList, &value).expect("valid value"),
            services
        );
        let mut stateless = info("w8");
        stateless.state = None;
        let services = announced_services(&uri("http://h:1"), &stateless);
        assert!(!services[0].properties.contains_key("state"));
        assert_eq!(services[0].properties["http"], "http://h:1");
    }

    #[test]
    fn only_marked_services_count_as_announce_mode() {
        let marked = announced_services(&uri("http://h:1"), &info("a"));
        assert!(is_announce_mode(&marked));
        assert_eq!(announced_uri(&marked[0]), Some("http://h:1"));
        let body = r#"{"environment":"test","pool":"general","services":[{"id":"00000000-0000-4000-8000-000000000001","type":"trino","properties":{"http":"http://h:2"}}]}"#;
        let airlift = DynamicAnnouncement::from_json(body.as_bytes(), "test")
            .expect("valid")
            .into_services("a");
        assert!(!is_announce_mode(&airlift));
        assert_eq!(announced_uri(&airlift[0]), None);
        assert!(!is_announce_mode(&[]));
    }
}
