//! The `dns:NAME:PORT` inventory source: the peers are the addresses NAME resolves to (A
//! and AAAA records, through the system resolver, so `/etc/hosts` and a Kubernetes
//! headless service both work), each reached at `http://ADDRESS:PORT`.
//!
//! DNS gives addresses, while the replicator identifies peers by node id (a peer's queues,
//! its metrics labels and the clock-majority count are per node id, and an address change
//! must move a peer, not make a new one). So every address is asked who it is
//! (`GET /v1/replication/status`, whose `nodeId` is the node's `node.id`): an answer with
//! this node's own id is this node and is left out, which works whatever address the node
//! binds (a pod binds `0.0.0.0` and does not know which of the answers is its own). An
//! address that has never answered is not a peer yet; one that answered before and does
//! not now keeps its last id while it is still in the DNS answer, so a peer that is
//! briefly down keeps its queue, unless its node id answered from another address since
//! (the node moved).
//!
//! The name is trusted as much as an inventory file: every address it lists is sent this
//! node's internal token (when a shared secret is set) and, once it answers as a node of
//! our environment, every write. Point it at a name only the cluster controls (a
//! headless service of its own namespace).
//!
//! Plain HTTP only: peers are reached at bare addresses, and verifying HTTPS there would
//! need a certificate naming every pod address. A cluster that replicates over TLS lists
//! its peers' `https` URLs in a `file:` or `http(s):` inventory instead.
//!
//! Everything here is pure (parsing, bounding the answer, reading a probe's answer, the
//! address → peer mapping); the resolving and asking happen in [`crate::inventory`].
//! DNS answers and probe answers are network input: their count, size and content are
//! bounded and checked here.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;

use crate::peers::Peer;

/// Most addresses taken from one answer: a DNS answer is network input, and each address
/// costs a probe per reload and, once it answers, a push queue and anti-entropy loops.
pub const MAX_DNS_PEERS: usize = 64;

/// Largest probe answer read: a node's `/v1/replication/status` with [`MAX_DNS_PEERS`]
/// peers is well under it; anything larger is not a discovery node's answer.
pub const MAX_PROBE_ANSWER_BYTES: usize = 1024 * 1024;

/// The path every address is asked who it is at.
pub const PROBE_PATH: &str = "/v1/replication/status";

/// Longest host name DNS can carry, without the trailing dot (RFC 1035).
const MAX_NAME_LENGTH: usize = 253;
/// Longest label of a host name (RFC 1035).
const MAX_LABEL_LENGTH: usize = 63;

/// `NAME:PORT` of a `dns:` inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsTarget {
    /// A host name (letters, digits and `-` in dot-separated labels), as written.
    pub name: String,
    pub port: u16,
}

impl DnsTarget {
    /// Parses what follows `dns:`; the error says what is wrong, for the configuration
    /// error message.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (name, port) = text.rsplit_once(':').ok_or_else(|| {
            "expected dns:NAME:PORT (e.g. dns:discovery-headless:8411)".to_owned()
        })?;
        check_host_name(name)?;
        // Digits only: `u16::from_str` would also take a leading '+'.
        let number = match port.parse::<u16>() {
            Ok(number) if number > 0 && port.chars().all(|c| c.is_ascii_digit()) => number,
            _ => return Err(format!("port '{port}' must be a number from 1 to 65535")),
        };
        Ok(DnsTarget {
            name: name.to_owned(),
            port: number,
        })
    }
}

impl std::fmt::Display for DnsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "dns:{}:{}", self.name, self.port)
    }
}

/// Host name rules (RFC 1123): at most 253 characters, labels of 1 to 63 letters, digits
/// and hyphens, no label starting or ending with a hyphen; one trailing dot allowed.
fn check_host_name(name: &str) -> Result<(), String> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    if bare.is_empty() {
        return Err("the host name is empty".into());
    }
    if bare.len() > MAX_NAME_LENGTH {
        return Err(format!(
            "the host name is {} characters long; at most {MAX_NAME_LENGTH}",
            bare.len()
        ));
    }
    for label in bare.split('.') {
        if label.is_empty() {
            return Err(format!("the host name '{name}' has an empty label"));
        }
        if label.len() > MAX_LABEL_LENGTH {
            return Err(format!(
                "the label '{label}' is {} characters long; at most {MAX_LABEL_LENGTH}",
                label.len()
            ));
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(format!(
                "the label '{label}' may hold only letters, digits and '-'"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "the label '{label}' must not start or end with '-'"
            ));
        }
    }
    Ok(())
}

/// The addresses to use from an answer: each address once, in order (so every node that
/// gets the same answer keeps the same ones), at most [`MAX_DNS_PEERS`]. Also returns how
/// many were left out.
pub fn usable_addresses(answer: impl IntoIterator<Item = IpAddr>) -> (Vec<IpAddr>, usize) {
    let all: BTreeSet<IpAddr> = answer.into_iter().collect();
    let left_out = all.len().saturating_sub(MAX_DNS_PEERS);
    (all.into_iter().take(MAX_DNS_PEERS).collect(), left_out)
}

/// Base URL of a peer at `ip:port`. IPv6 addresses go in brackets; a scope id is not
/// part of an `IpAddr`.
pub fn peer_url(ip: IpAddr, port: u16) -> String {
    format!("http://{}", SocketAddr::new(ip, port))
}

/// The part of a `/v1/replication/status` answer a probe reads; everything else is
/// ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusAnswer {
    node_id: String,
    #[serde(default)]
    environment: Option<String>,
}

/// The node id in a probe's answer (`body`, at most [`MAX_PROBE_ANSWER_BYTES`] read),
/// checked like an announced node id (it becomes a peer name, a metrics label and a log
/// field). A node of another `node.environment` is refused: it belongs to another
/// cluster that happens to share the name (or the address).
pub fn node_id_of_answer(body: &[u8], own_environment: &str) -> Result<String, String> {
    let answer: StatusAnswer =
        serde_json::from_slice(body).map_err(|e| format!("not a replication status ({e})"))?;
    discovery_types::announcement::validate_node_id(&answer.node_id)
        .map_err(|e| format!("unusable nodeId: {e}"))?;
    match answer.environment {
        Some(environment) if environment != own_environment => Err(format!(
            "node {} is of environment '{}', not '{own_environment}': not a peer",
            answer.node_id,
            environment.chars().take(64).collect::<String>()
        )),
        _ => Ok(answer.node_id),
    }
}

/// Updates `known` (address → node id, what earlier probes learned) with one reload's
/// probe results: addresses no longer in `addresses` are forgotten; `answered` replaces
/// what was known of the addresses that answered now; an address that did not answer now
/// keeps its last id, unless that id answered now from another address (the node moved
/// and the old address is stale).
pub fn remember_answers(
    known: &mut BTreeMap<IpAddr, String>,
    addresses: &[IpAddr],
    answered: &BTreeMap<IpAddr, String>,
) {
    let current: BTreeSet<IpAddr> = addresses.iter().copied().collect();
    known.retain(|ip, _| current.contains(ip));
    let fresh_ids: BTreeSet<&str> = answered.values().map(String::as_str).collect();
    known.retain(|ip, id| answered.contains_key(ip) || !fresh_ids.contains(id.as_str()));
    for (ip, id) in answered {
        if current.contains(ip) {
            known.insert(*ip, id.clone());
        }
    }
}

/// The peers an answer gives: every address whose node id is known and is not
/// `own_node_id`. A node with several addresses (A and AAAA records of one pod) is one
/// peer, at its first address in order. Returns warnings about addresses whose id is not
/// known yet.
pub fn peers_from_addresses(
    addresses: &[IpAddr],
    node_ids: &BTreeMap<IpAddr, String>,
    own_node_id: &str,
    port: u16,
) -> (Vec<Peer>, Vec<String>) {
    let mut peers: BTreeMap<&str, Peer> = BTreeMap::new();
    let mut warnings = Vec::new();
    for &ip in addresses {
        match node_ids.get(&ip) {
            None => warnings.push(format!(
                "{} has not said which node it is (GET {PROBE_PATH}): not a peer until it answers",
                SocketAddr::new(ip, port)
            )),
            Some(id) if id == own_node_id => {}
            Some(id) => {
                peers.entry(id.as_str()).or_insert_with(|| Peer {
                    node_id: id.clone(),
                    url: peer_url(ip, port),
                });
            }
        }
    }
    (peers.into_values().collect(), warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn names_and_ports_are_checked() {
        assert_eq!(
            DnsTarget::parse("discovery.test:8411").unwrap(),
            DnsTarget {
                name: "discovery.test".into(),
                port: 8411
            }
        );
        let fqdn = DnsTarget::parse("disc-headless.ns.svc.cluster.local.:1").unwrap();
        assert_eq!(fqdn.name, "disc-headless.ns.svc.cluster.local.");
        assert_eq!(
            fqdn.to_string(),
            "dns:disc-headless.ns.svc.cluster.local.:1"
        );
        assert!(DnsTarget::parse(&format!("{}:1", "a".repeat(63))).is_ok());

        for (bad, why) in [
            ("discovery", "expected dns:NAME:PORT"),
            (":8411", "empty"),
            ("host:0", "1 to 65535"),
            ("host:65536", "1 to 65535"),
            ("host:+80", "1 to 65535"),
            ("host:", "1 to 65535"),
            ("host:http", "1 to 65535"),
            ("a..b:80", "empty label"),
            (".:80", "empty"),
            ("-a.b:80", "start or end"),
            ("a-.b:80", "start or end"),
            ("a_b:80", "letters, digits"),
            ("a b:80", "letters, digits"),
            ("[::1]:80", "letters, digits"),
            ("10.0.0.1:80:81", "letters, digits"),
        ] {
            let error = DnsTarget::parse(bad).unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
        let long_label = format!("{}.b:80", "a".repeat(64));
        assert!(DnsTarget::parse(&long_label).unwrap_err().contains("63"));
        let long_name = format!("{}:80", ["abcdefghi"; 26].join("."));
        assert!(DnsTarget::parse(&long_name).unwrap_err().contains("253"));
    }

    #[test]
    fn answers_are_deduplicated_ordered_and_capped() {
        let (kept, left_out) =
            usable_addresses([ip("10.0.0.2"), ip("::1"), ip("10.0.0.1"), ip("10.0.0.2")]);
        assert_eq!(kept, vec![ip("10.0.0.1"), ip("10.0.0.2"), ip("::1")]);
        assert_eq!(left_out, 0);

        let many = (0..200u8).rev().map(|i| IpAddr::from([10, 1, 0, i]));
        let (kept, left_out) = usable_addresses(many);
        assert_eq!(kept.len(), MAX_DNS_PEERS);
        assert_eq!(left_out, 200 - MAX_DNS_PEERS);
        assert_eq!(kept[0], ip("10.1.0.0"), "the lowest addresses are kept");
    }

    #[test]
    fn urls_bracket_ipv6() {
        assert_eq!(peer_url(ip("10.0.0.1"), 8411), "http://10.0.0.1:8411");
        assert_eq!(peer_url(ip("fd00::1"), 8443), "http://[fd00::1]:8443");
    }

    #[test]
    fn known_addresses_other_than_self_become_peers_once() {
        let addresses = [
            ip("10.0.0.1"),
            ip("10.0.0.2"),
            ip("10.0.0.3"),
            ip("10.0.0.4"),
            ip("fd00::2"),
        ];
        let ids: BTreeMap<IpAddr, String> = [
            (ip("10.0.0.1"), "disc-0"),
            (ip("10.0.0.2"), "disc-1"),
            (ip("10.0.0.3"), "disc-2"),
            (ip("fd00::2"), "disc-1"),
        ]
        .into_iter()
        .map(|(ip, id)| (ip, id.to_owned()))
        .collect();
        let (peers, warnings) = peers_from_addresses(&addresses, &ids, "disc-0", 8411);
        assert_eq!(
            peers,
            vec![
                Peer {
                    node_id: "disc-1".into(),
                    url: "http://10.0.0.2:8411".into()
                },
                Peer {
                    node_id: "disc-2".into(),
                    url: "http://10.0.0.3:8411".into()
                },
            ],
            "self left out; disc-1's second address does not make a second peer"
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("10.0.0.4:8411"), "{warnings:?}");
    }

    #[test]
    fn a_probe_answer_names_a_node_of_our_environment() {
        let answer = br#"{"nodeId":"disc-1","environment":"prod","stores":[],"peers":[]}"#;
        assert_eq!(node_id_of_answer(answer, "prod").unwrap(), "disc-1");
        let other = node_id_of_answer(answer, "test").unwrap_err();
        assert!(other.contains("environment 'prod'"), "{other}");
        assert!(node_id_of_answer(br#"{"nodeId":"a"}"#, "test").is_ok());

        for (bad, why) in [
            (&b"<html>"[..], "not a replication status"),
            (br#"{"environment":"test"}"#, "not a replication status"),
            (br#"{"nodeId":7}"#, "not a replication status"),
            (br#"{"nodeId":""}"#, "unusable nodeId"),
            (br#"{"nodeId":"a b"}"#, "unusable nodeId"),
            (br#"{"nodeId":"../x"}"#, "unusable nodeId"),
        ] {
            let error = node_id_of_answer(bad, "test").unwrap_err();
            assert!(
                error.contains(why),
                "{}: {error}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = format!(r#"{{"nodeId":"{}"}}"#, "n".repeat(257));
        assert!(node_id_of_answer(long.as_bytes(), "test").is_err());
    }

    #[test]
    fn what_was_learned_is_kept_while_the_address_is_listed_and_the_node_has_not_moved() {
        let ids = |pairs: &[(&str, &str)]| -> BTreeMap<IpAddr, String> {
            pairs
                .iter()
                .map(|(a, id)| (ip(a), (*id).to_owned()))
                .collect()
        };
        let mut known = BTreeMap::new();
        let listed = [ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.3")];
        remember_answers(
            &mut known,
            &listed,
            &ids(&[("10.0.0.1", "a"), ("10.0.0.2", "b"), ("10.0.0.3", "c")]),
        );
        assert_eq!(known.len(), 3);

        // b is briefly down: it keeps its id. c answers with a new id (the address was
        // reused): the new id wins.
        remember_answers(
            &mut known,
            &listed,
            &ids(&[("10.0.0.1", "a"), ("10.0.0.3", "d")]),
        );
        assert_eq!(
            known,
            ids(&[("10.0.0.1", "a"), ("10.0.0.2", "b"), ("10.0.0.3", "d")])
        );

        // b moved to 10.0.0.4 and 10.0.0.2 no longer answers: the stale address goes.
        // An answer from an address not listed (cannot happen, but) is not kept.
        let moved = [
            ip("10.0.0.1"),
            ip("10.0.0.2"),
            ip("10.0.0.3"),
            ip("10.0.0.4"),
        ];
        remember_answers(
            &mut known,
            &moved,
            &ids(&[("10.0.0.4", "b"), ("10.0.0.9", "z")]),
        );
        assert_eq!(
            known,
            ids(&[("10.0.0.1", "a"), ("10.0.0.3", "d"), ("10.0.0.4", "b")])
        );

        // An address that leaves the DNS answer is forgotten at once.
        remember_answers(&mut known, &[ip("10.0.0.1")], &BTreeMap::new());
        assert_eq!(known, ids(&[("10.0.0.1", "a")]));
    }
}
