//! Peers: the other discovery servers, as listed in the service inventory.

use std::collections::BTreeMap;

use discovery_types::ServiceSet;

/// Another discovery server this node replicates with.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Peer {
    /// The peer's `node.id`; peers are identified by it, so a changed address is the same
    /// peer moving, not a new one.
    pub node_id: String,
    /// Base URL without a trailing slash, e.g. `http://10.0.0.2:8411`.
    pub url: String,
}

/// Peers in an airlift service inventory: the `discovery` entries other than this node,
/// addressed by their `https` property when they have one (an `https://` URL: the peer
/// serves TLS, and replication must not go around it in plain text), else by their
/// `http` property (airlift uses only `http` for replication). Entries that cannot be
/// used are skipped and described in the returned warnings.
pub fn peers_from_inventory(inventory: &ServiceSet, own_node_id: &str) -> (Vec<Peer>, Vec<String>) {
    let mut peers = BTreeMap::new();
    let mut warnings = Vec::new();
    for service in inventory
        .services
        .iter()
        .filter(|s| s.service_type == "discovery")
    {
        let Some(node_id) = service.node_id.as_deref().filter(|id| !id.is_empty()) else {
            warnings.push(format!(
                "inventory entry {} has no nodeId: skipped",
                service.id
            ));
            continue;
        };
        if node_id == own_node_id {
            continue;
        }
        let https = service.properties.get("https");
        let https_url = https.filter(|u| u.starts_with("https://"));
        if let (Some(bad), None) = (https, https_url) {
            warnings.push(format!(
                "inventory entry for node {node_id} has an 'https' property that is not an \
                 https://... URL ({bad}): ignored"
            ));
        }
        let http_url = || {
            service
                .properties
                .get("http")
                .filter(|u| u.starts_with("http://"))
        };
        let Some(url) = https_url.or_else(http_url) else {
            warnings.push(format!(
                "inventory entry for node {node_id} has neither an https://... 'https' nor an \
                 http://... 'http' property: skipped"
            ));
            continue;
        };
        let peer = Peer {
            node_id: node_id.to_owned(),
            url: url.trim_end_matches('/').to_owned(),
        };
        if let Some(previous) = peers.insert(node_id.to_owned(), peer) {
            warnings.push(format!(
                "inventory lists node {node_id} twice; using the last entry (not {})",
                previous.url
            ));
        }
    }
    (peers.into_values().collect(), warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory(json: &str) -> ServiceSet {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn discovery_entries_other_than_self_become_peers() {
        let set = inventory(
            r#"{"environment":"test","services":[
              {"id":"00000000-0000-4000-8000-000000000001","nodeId":"disc-1","type":"discovery","pool":"general","properties":{"http":"http://127.0.0.1:8411/"}},
              {"id":"00000000-0000-4000-8000-000000000002","nodeId":"disc-2","type":"discovery","pool":"general","state":"STOPPED","properties":{"http":"http://127.0.0.1:8412"}},
              {"id":"00000000-0000-4000-8000-000000000003","nodeId":"disc-3","type":"discovery","pool":"other","properties":{"https":"https://h"}},
              {"id":"00000000-0000-4000-8000-000000000004","type":"discovery","pool":"general","properties":{"http":"http://x"}},
              {"id":"00000000-0000-4000-8000-000000000005","nodeId":"w1","type":"trino","pool":"general","properties":{"http":"http://w"}}
            ]}"#,
        );
        let (peers, warnings) = peers_from_inventory(&set, "disc-1");
        assert_eq!(
            peers,
            vec![
                Peer {
                    node_id: "disc-2".into(),
                    url: "http://127.0.0.1:8412".into()
                },
                Peer {
                    node_id: "disc-3".into(),
                    url: "https://h".into()
                }
            ],
            "any state and pool count, as in airlift"
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("no nodeId"), "{warnings:?}");
    }

    #[test]
    fn an_https_url_is_preferred_over_http() {
        let set = inventory(
            r#"{"environment":"test","services":[
              {"id":"00000000-0000-4000-8000-000000000001","nodeId":"both","type":"discovery","pool":"general","properties":{"http":"http://10.0.0.1:8411","https":"https://10.0.0.1:8443/"}},
              {"id":"00000000-0000-4000-8000-000000000002","nodeId":"plain","type":"discovery","pool":"general","properties":{"http":"http://10.0.0.2:8411"}},
              {"id":"00000000-0000-4000-8000-000000000003","nodeId":"bad-https","type":"discovery","pool":"general","properties":{"http":"http://10.0.0.3:8411","https":"http://10.0.0.3:8443"}},
              {"id":"00000000-0000-4000-8000-000000000004","nodeId":"neither","type":"discovery","pool":"general","properties":{"http":"https://10.0.0.4:8443","https":"10.0.0.4:8443"}}
            ]}"#,
        );
        let (peers, warnings) = peers_from_inventory(&set, "me");
        let urls: Vec<(&str, &str)> = peers
            .iter()
            .map(|p| (p.node_id.as_str(), p.url.as_str()))
            .collect();
        assert_eq!(
            urls,
            vec![
                ("bad-https", "http://10.0.0.3:8411"),
                ("both", "https://10.0.0.1:8443"),
                ("plain", "http://10.0.0.2:8411"),
            ]
        );
        // bad-https: the https property is ignored (and said so); neither: both
        // properties are ignored, and the entry skipped.
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("bad-https") && w.contains("ignored")),
            "{warnings:?}"
        );
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("neither") && w.contains("skipped")),
            "{warnings:?}"
        );
    }
}
