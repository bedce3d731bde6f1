//! `discovery cluster status`: every node of a discovery cluster at a glance.
//!
//! The first server of `--uri` that answers is the reference: its
//! `/v1/replication/status` names its peers (from its service inventory) and its pushes
//! towards them. Every node, the reference included, is then asked for its own status and
//! readiness, and its store digests are compared with the reference's. Entry counts come
//! from each node's store dump, split into live entries and tombstones: the status
//! endpoint's count includes tombstones (one node announced and removed five times shows
//! six entries with one live), which reads as a leak.

use discovery_client::types::replication::{PeerStatus, ReplicationStatus};
use discovery_client::{DecodedEntry, DiscoveryClient, DiscoveryError, Readiness, StoreName};
use serde::Serialize;

use crate::cli::Output;
use crate::connect::Connect;
use crate::format::{self, Table};
use crate::outcome::{print, print_json, Failure, Outcome};

/// One node as the command reports it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NodeReport {
    node_id: String,
    url: String,
    reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    ready: Option<bool>,
    /// Every entry the store holds, tombstones and expired ones included (the status
    /// endpoint's count).
    #[serde(skip_serializing_if = "Option::is_none")]
    dynamic_entries: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    static_entries: Option<usize>,
    /// Entries with a value that has not expired.
    #[serde(skip_serializing_if = "Option::is_none")]
    dynamic_live: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dynamic_tombstones: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    static_live: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    static_tombstones: Option<usize>,
    /// Equal dynamic digest roots with the reference node.
    #[serde(skip_serializing_if = "Option::is_none")]
    dynamic_agrees: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    static_agrees: Option<bool>,
    /// The reference node's pushes waiting for this peer (absent for the reference).
    #[serde(skip_serializing_if = "Option::is_none")]
    queued: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    push_failures: Option<u64>,
    /// The reference node's last completed anti-entropy round with this peer (oldest of
    /// the two stores), ms since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_sync_ms: Option<i64>,
    /// Why the node is not ready, why it is unreachable, or the last replication error.
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

impl NodeReport {
    fn degraded(&self) -> bool {
        !self.reachable || self.ready == Some(false) || self.static_agrees == Some(false)
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ClusterReport {
    environment: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    inventory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inventory_error: Option<String>,
    degraded: bool,
    nodes: Vec<NodeReport>,
}

fn single(uri: &str, connect: &Connect) -> Result<DiscoveryClient, DiscoveryError> {
    connect.builder([uri]).build()
}

/// What one node says about itself.
struct Probe {
    status: Result<ReplicationStatus, DiscoveryError>,
    readiness: Result<Readiness, DiscoveryError>,
    /// Live entries and tombstones of (dynamic, static); none when a dump failed.
    counts: Option<(Counts, Counts)>,
}

/// One store's entries, split.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    live: usize,
    tombstones: usize,
}

/// Splits a store dump at `now_ms`. An expired entry not yet collected is neither: it
/// is no longer served, and not a delete either.
fn counts(entries: &[DecodedEntry], now_ms: i64) -> Counts {
    let mut counts = Counts::default();
    for entry in entries {
        if entry.tombstone {
            counts.tombstones += 1;
        } else if entry
            .max_age_in_ms
            .is_none_or(|max_age| entry.timestamp.saturating_add(max_age) > now_ms)
        {
            counts.live += 1;
        }
    }
    counts
}

async fn probe(uri: String, connect: Connect) -> Probe {
    match single(&uri, &connect) {
        Ok(client) => {
            let (status, readiness, dynamic, statics) = tokio::join!(
                client.replication_status(),
                client.readiness(),
                client.store_entries(StoreName::Dynamic),
                client.store_entries(StoreName::Static)
            );
            let now = format::now_ms();
            let counts = match (dynamic, statics) {
                (Ok(dynamic), Ok(statics)) => Some((counts(&dynamic, now), counts(&statics, now))),
                _ => None,
            };
            Probe {
                status,
                readiness,
                counts,
            }
        }
        Err(e) => {
            let readiness = Err(DiscoveryError::InvalidArgument(e.to_string()));
            Probe {
                status: Err(e),
                readiness,
                counts: None,
            }
        }
    }
}

fn root(status: &ReplicationStatus, store: &str) -> Option<String> {
    status
        .stores
        .iter()
        .find(|s| s.name == store)
        .map(|s| s.digest_root.clone())
}

fn entries(status: &ReplicationStatus, store: &str) -> Option<usize> {
    status
        .stores
        .iter()
        .find(|s| s.name == store)
        .map(|s| s.entries)
}

fn report(
    node_id: String,
    url: String,
    probe: Probe,
    reference: &ReplicationStatus,
    link: Option<&PeerStatus>,
) -> NodeReport {
    let mut node = NodeReport {
        node_id,
        url,
        reachable: false,
        ready: None,
        dynamic_entries: None,
        static_entries: None,
        dynamic_live: probe.counts.map(|(d, _)| d.live),
        dynamic_tombstones: probe.counts.map(|(d, _)| d.tombstones),
        static_live: probe.counts.map(|(_, s)| s.live),
        static_tombstones: probe.counts.map(|(_, s)| s.tombstones),
        dynamic_agrees: None,
        static_agrees: None,
        queued: link.map(|l| l.stores.iter().map(|s| s.queued).sum()),
        push_failures: link.map(|l| l.stores.iter().map(|s| s.push_failures).sum()),
        last_sync_ms: link.and_then(|l| {
            l.stores
                .iter()
                .map(|s| s.last_sync_ok_ms)
                .collect::<Option<Vec<_>>>()
                .and_then(|times| times.into_iter().min())
        }),
        note: link.and_then(|l| l.stores.iter().find_map(|s| s.last_error.clone())),
    };
    match probe.status {
        Ok(status) => {
            node.reachable = true;
            node.dynamic_entries = entries(&status, "dynamic");
            node.static_entries = entries(&status, "static");
            node.dynamic_agrees = Some(root(&status, "dynamic") == root(reference, "dynamic"));
            node.static_agrees = Some(root(&status, "static") == root(reference, "static"));
        }
        // A refusal (a peer with another tokens file) is no outage: say so.
        Err(e) => {
            node.note = Some(match e.status() {
                Some(status @ (401 | 403)) => format!("refused ({status}): {e}"),
                _ => e.to_string(),
            })
        }
    }
    match probe.readiness {
        Ok(Readiness::Ready) => node.ready = Some(true),
        Ok(Readiness::NotReady(reason)) => {
            node.ready = Some(false);
            node.note = Some(reason);
        }
        Err(_) => {}
    }
    node
}

pub async fn status(
    client: &DiscoveryClient,
    output: Output,
    connect: &Connect,
) -> Result<Outcome, Failure> {
    // The reference: the first --uri that answers.
    let mut errors = Vec::new();
    let mut reference = None;
    for uri in client.uris() {
        match single(&uri, connect)?.replication_status().await {
            Ok(status) => {
                reference = Some((uri, status));
                break;
            }
            Err(e) => errors.push(e),
        }
    }
    let Some((reference_uri, reference)) = reference else {
        return Err(match errors.len() {
            1 => errors.remove(0).into(),
            _ => DiscoveryError::AllFailed(errors).into(),
        });
    };

    let mut probes = tokio::task::JoinSet::new();
    let targets: Vec<(String, String, Option<PeerStatus>)> =
        std::iter::once((reference.node_id.clone(), reference_uri, None))
            .chain(
                reference
                    .peers
                    .iter()
                    .map(|p| (p.node_id.clone(), p.url.clone(), Some(p.clone()))),
            )
            .collect();
    for (index, (_, url, _)) in targets.iter().enumerate() {
        let url = url.clone();
        let connect = connect.clone();
        probes.spawn(async move { (index, probe(url, connect).await) });
    }
    let mut results: Vec<Option<Probe>> = (0..targets.len()).map(|_| None).collect();
    while let Some(joined) = probes.join_next().await {
        if let Ok((index, probe)) = joined {
            results[index] = Some(probe);
        }
    }
    let nodes: Vec<NodeReport> = targets
        .into_iter()
        .zip(results)
        .map(|((node_id, url, link), probe)| {
            let probe = probe.unwrap_or(Probe {
                status: Err(DiscoveryError::InvalidArgument("probe task failed".into())),
                readiness: Err(DiscoveryError::InvalidArgument("probe task failed".into())),
                counts: None,
            });
            report(node_id, url, probe, &reference, link.as_ref())
        })
        .collect();
    let degraded = reference.inventory_error.is_some() || nodes.iter().any(NodeReport::degraded);
    let cluster = ClusterReport {
        environment: reference.environment.clone(),
        inventory: reference.inventory.clone(),
        inventory_error: reference.inventory_error.clone(),
        degraded,
        nodes,
    };

    match output {
        Output::Json => print_json(&serde_json::to_value(&cluster).unwrap_or_default())?,
        Output::Table => print(&render(&cluster))?,
    }
    Ok(if degraded {
        Outcome::Degraded
    } else {
        Outcome::Done
    })
}

fn yes_no(value: Option<bool>) -> String {
    match value {
        Some(true) => "yes".into(),
        Some(false) => "no".into(),
        None => "-".into(),
    }
}

fn count<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".into(), |v| v.to_string())
}

fn render(cluster: &ClusterReport) -> String {
    let mut text = format!("environment: {}\n", cluster.environment);
    match (&cluster.inventory, &cluster.inventory_error) {
        (None, _) => text.push_str("inventory: none (standalone node)\n"),
        (Some(uri), None) => text.push_str(&format!("inventory: {uri}\n")),
        (Some(uri), Some(error)) => {
            text.push_str(&format!("inventory: {uri} (UNREADABLE: {error})\n"))
        }
    }
    let now = format::now_ms();
    let mut table = Table::new(&[
        "node",
        "url",
        "reachable",
        "ready",
        "dynamic",
        "static",
        "tombstones",
        "agrees",
        "queued",
        "failures",
        "last sync",
        "note",
    ]);
    for node in &cluster.nodes {
        let agrees = match (node.dynamic_agrees, node.static_agrees) {
            (Some(true), Some(true)) => "yes",
            (Some(true), Some(false)) => "static differs",
            (Some(false), Some(true)) => "dynamic differs",
            (Some(false), Some(false)) => "no",
            _ => "-",
        };
        table.row(vec![
            node.node_id.clone(),
            node.url.clone(),
            yes_no(Some(node.reachable)),
            yes_no(node.ready),
            count(node.dynamic_live),
            count(node.static_live),
            match (node.dynamic_tombstones, node.static_tombstones) {
                (Some(d), Some(s)) => format!("{d}+{s}"),
                _ => "-".into(),
            },
            agrees.into(),
            count(node.queued),
            count(node.push_failures),
            node.last_sync_ms.map_or_else(
                || "-".into(),
                |t| format!("{} ago", format::duration_ms(now - t)),
            ),
            node.note.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    text.push_str(&table.render());
    text.push_str(if cluster.degraded {
        "cluster: DEGRADED\n"
    } else {
        "cluster: healthy\n"
    });
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use discovery_client::types::replication::StoreStatus;

    fn status(node: &str, dynamic_root: &str, static_root: &str) -> ReplicationStatus {
        ReplicationStatus {
            auth_failures: Default::default(),
            node_id: node.into(),
            environment: "test".into(),
            inventory: Some("file:inv.json".into()),
            inventory_error: None,
            stores: vec![
                StoreStatus {
                    name: "dynamic".into(),
                    entries: 3,
                    digest_root: dynamic_root.into(),
                    refused_future: 0,
                    refused_full: 0,
                    refused_invalid: 0,
                },
                StoreStatus {
                    name: "static".into(),
                    entries: 1,
                    digest_root: static_root.into(),
                    refused_future: 0,
                    refused_full: 0,
                    refused_invalid: 0,
                },
            ],
            peers: Vec::new(),
        }
    }

    fn entry(tombstone: bool, timestamp: i64, max_age_in_ms: Option<i64>) -> DecodedEntry {
        DecodedEntry {
            store: StoreName::Dynamic,
            key: "k".into(),
            services: Vec::new(),
            decode_error: None,
            version: timestamp,
            timestamp,
            max_age_in_ms,
            tombstone,
        }
    }

    #[test]
    fn live_entries_and_tombstones_are_counted_apart() {
        let now = 1_000_000;
        let entries = [
            entry(false, now - 1000, Some(30_000)),
            entry(false, now - 60_000, Some(30_000)),
            entry(true, now - 5000, None),
            entry(true, now - 6000, None),
            entry(false, now - 90_000_000, None),
        ];
        assert_eq!(
            counts(&entries, now),
            Counts {
                live: 2,
                tombstones: 2
            },
            "one fresh announcement and one static entry are live; the expired one is neither"
        );
    }

    #[test]
    fn agreement_readiness_and_reachability_decide_degradation() {
        let reference = status("a", "d1", "s1");
        let same = report(
            "b".into(),
            "u".into(),
            Probe {
                status: Ok(status("b", "d1", "s1")),
                readiness: Ok(Readiness::Ready),
                counts: None,
            },
            &reference,
            None,
        );
        assert!(!same.degraded());
        let dynamic_only = report(
            "b".into(),
            "u".into(),
            Probe {
                status: Ok(status("b", "d2", "s1")),
                readiness: Ok(Readiness::Ready),
                counts: None,
            },
            &reference,
            None,
        );
        assert!(
            !dynamic_only.degraded(),
            "dynamic digests move with every announcement"
        );
        let static_differs = report(
            "b".into(),
            "u".into(),
            Probe {
                status: Ok(status("b", "d1", "s2")),
                readiness: Ok(Readiness::Ready),
                counts: None,
            },
            &reference,
            None,
        );
        assert!(static_differs.degraded());
        let not_ready = report(
            "b".into(),
            "u".into(),
            Probe {
                status: Ok(status("b", "d1", "s1")),
                readiness: Ok(Readiness::NotReady("warming up".into())),
                counts: None,
            },
            &reference,
            None,
        );
        assert!(not_ready.degraded());
        assert_eq!(not_ready.note.as_deref(), Some("warming up"));
        let gone = || DiscoveryError::Unreachable {
            uri: "u".into(),
            reason: "connection refused".into(),
        };
        let unreachable = report(
            "b".into(),
            "u".into(),
            Probe {
                status: Err(gone()),
                readiness: Err(gone()),
                counts: None,
            },
            &reference,
            None,
        );
        assert!(unreachable.degraded());
        assert!(render(&ClusterReport {
            environment: "test".into(),
            inventory: None,
            inventory_error: None,
            degraded: true,
            nodes: vec![unreachable]
        })
        .contains("DEGRADED"));
    }
}
