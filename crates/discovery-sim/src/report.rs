//! What a fleet reports: request outcomes, node-missing events, failed requests and every
//! change of the coordinators' lists. Times are [`SimTime`] (since the fleet started),
//! serialised as milliseconds; [`FleetReport::started_unix_ms`] maps them to wall-clock
//! time for reading server and proxy logs side by side.

use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::detect::SimTime;

/// The kinds of discovery requests a node makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestKind {
    /// `PUT /v1/announcement/{nodeId}`
    Announce,
    /// `DELETE /v1/announcement/{nodeId}`
    Unannounce,
    /// `GET /v1/service/{type}/{pool}`
    Lookup,
}

impl fmt::Display for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RequestKind::Announce => "announce",
            RequestKind::Unannounce => "unannounce",
            RequestKind::Lookup => "lookup",
        })
    }
}

/// When a request was sent and when its answer (or error) arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RequestSpan {
    #[serde(serialize_with = "millis")]
    pub started: SimTime,
    #[serde(serialize_with = "millis")]
    pub finished: SimTime,
}

/// Outcomes of announcements or unannouncements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Outcomes {
    pub ok: u64,
    pub failed: u64,
}

/// Outcomes of lookups: a new list (200), the same list (304), or a failure (anything
/// else, including an unreachable server; the node keeps its last good list).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LookupOutcomes {
    pub changed: u64,
    pub not_modified: u64,
    pub failed: u64,
}

/// Every request the fleet made, by kind and outcome. A failure is a request whose final
/// answer (after any retry by a proxy in between) was not a success for the client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RequestCounts {
    pub announce: Outcomes,
    pub unannounce: Outcomes,
    pub lookup: LookupOutcomes,
}

impl RequestCounts {
    /// Failed requests of every kind.
    pub fn failed(&self) -> u64 {
        self.announce.failed + self.unannounce.failed + self.lookup.failed
    }

    /// Failed requests of one kind.
    pub fn failed_of(&self, kind: RequestKind) -> u64 {
        match kind {
            RequestKind::Announce => self.announce.failed,
            RequestKind::Unannounce => self.unannounce.failed,
            RequestKind::Lookup => self.lookup.failed,
        }
    }

    /// Requests of every kind.
    pub fn total(&self) -> u64 {
        self.announce.ok
            + self.announce.failed
            + self.unannounce.ok
            + self.unannounce.failed
            + self.lookup.changed
            + self.lookup.not_modified
            + self.lookup.failed
    }
}

/// Where a coordinator noticed something: after a lookup, or on a node-manager tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Refresh,
    Tick,
}

/// "Previously active node is missing": see [`crate::detect`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MissingEvent {
    /// When the coordinator noticed.
    #[serde(serialize_with = "millis")]
    pub at: SimTime,
    pub coordinator: String,
    pub node_id: String,
    pub incarnation: u64,
    /// The lookup that produced the list lacking the node.
    pub list: RequestSpan,
    /// Lookup time of the last list that showed it.
    #[serde(serialize_with = "millis")]
    pub last_listed: SimTime,
    /// Nodes in the list lacking it.
    pub list_size: usize,
    pub source: Source,
}

/// A request whose final answer was a failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestFailure {
    pub kind: RequestKind,
    pub node_id: String,
    pub span: RequestSpan,
    pub error: String,
}

/// Whether a node joined or left a coordinator's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Joined,
    Left,
}

/// A node id entering or leaving a coordinator's list (whether or not the node is live:
/// this is what the coordinator saw).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewChange {
    pub coordinator: String,
    pub node_id: String,
    pub change: Change,
    /// The lookup whose answer made the change.
    pub lookup: RequestSpan,
}

/// A coordinator's current list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CoordinatorView {
    pub coordinator: String,
    /// Node ids listed.
    pub node_ids: std::collections::BTreeSet<String>,
    /// Service ids listed.
    pub service_ids: std::collections::BTreeSet<String>,
    /// The last successful lookup (200 or 304); `None` before the first.
    pub lookup: Option<RequestSpan>,
    /// Successful lookups so far.
    pub refreshes: u64,
    /// Failed lookups since the last successful one.
    pub consecutive_failures: u32,
}

/// One node's state as the fleet tracks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeReport {
    pub node_id: String,
    pub coordinator: bool,
    pub running: bool,
    /// Incremented by every (re)start.
    pub incarnation: u64,
    /// The id of its `trino`/`presto` service in this incarnation.
    pub service_id: String,
    /// When the first accepted announcement of this incarnation completed.
    #[serde(serialize_with = "opt_millis")]
    pub announced_since: Option<SimTime>,
    /// The last accepted announcement (of any incarnation).
    pub last_announce: Option<RequestSpan>,
    /// Accepted announcements of this incarnation.
    pub announcements: u64,
    /// Failed announcements since the last accepted one.
    pub consecutive_failures: u32,
}

/// Everything a fleet observed; see [`crate::Fleet::report`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetReport {
    /// Wall-clock time of the fleet's start, ms since the epoch.
    pub started_unix_ms: u64,
    #[serde(serialize_with = "millis")]
    pub elapsed: SimTime,
    pub requests: RequestCounts,
    /// Node-missing events; the first [`crate::FleetConfig::max_recorded_events`] are kept.
    pub missing: Vec<MissingEvent>,
    pub missing_total: u64,
    /// Failed requests; the first `max_recorded_events` are kept.
    pub failures: Vec<RequestFailure>,
    /// Changes of the coordinators' lists, oldest first; the most recent
    /// `max_recorded_events` are kept.
    pub view_changes: Vec<ViewChange>,
    pub view_changes_total: u64,
    pub coordinators: Vec<CoordinatorView>,
    pub nodes: Vec<NodeReport>,
}

impl FleetReport {
    /// Failed requests of every kind (all of them, not only the recorded ones).
    pub fn failed_requests(&self) -> u64 {
        self.requests.failed()
    }

    /// Missing events about `node_id`.
    pub fn missing_of<'a>(&'a self, node_id: &'a str) -> impl Iterator<Item = &'a MissingEvent> {
        self.missing.iter().filter(move |e| e.node_id == node_id)
    }

    /// The report as pretty JSON (for failure messages and benchmark output).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("(unserialisable: {e})"))
    }
}

impl fmt::Display for FleetReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.requests;
        writeln!(
            f,
            "fleet after {:.1}s: {} nodes ({} running); announce ok {} failed {}; unannounce ok {} failed {}; \
             lookup 200 {} 304 {} failed {}; {} node-missing events; {} list changes",
            self.elapsed.as_secs_f64(),
            self.nodes.len(),
            self.nodes.iter().filter(|n| n.running).count(),
            r.announce.ok,
            r.announce.failed,
            r.unannounce.ok,
            r.unannounce.failed,
            r.lookup.changed,
            r.lookup.not_modified,
            r.lookup.failed,
            self.missing_total,
            self.view_changes_total,
        )?;
        for event in &self.missing {
            writeln!(
                f,
                "  missing at {:.3}s: {} lost {} (incarnation {}) in a list looked up {:.3}s..{:.3}s \
                 ({} nodes, {:?}); last listed by a lookup at {:.3}s",
                event.at.as_secs_f64(),
                event.coordinator,
                event.node_id,
                event.incarnation,
                event.list.started.as_secs_f64(),
                event.list.finished.as_secs_f64(),
                event.list_size,
                event.source,
                event.last_listed.as_secs_f64(),
            )?;
        }
        for failure in &self.failures {
            writeln!(
                f,
                "  failed {} by {} at {:.3}s..{:.3}s: {}",
                failure.kind,
                failure.node_id,
                failure.span.started.as_secs_f64(),
                failure.span.finished.as_secs_f64(),
                failure.error,
            )?;
        }
        Ok(())
    }
}

fn millis<S: Serializer>(time: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(time.as_secs_f64() * 1000.0)
}

fn opt_millis<S: Serializer>(time: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => millis(time, serializer),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_by_kind() {
        let counts = RequestCounts {
            announce: Outcomes { ok: 10, failed: 2 },
            unannounce: Outcomes { ok: 1, failed: 1 },
            lookup: LookupOutcomes {
                changed: 3,
                not_modified: 4,
                failed: 5,
            },
        };
        assert_eq!(counts.failed(), 8);
        assert_eq!(counts.failed_of(RequestKind::Lookup), 5);
        assert_eq!(counts.total(), 26);
    }

    #[test]
    fn reports_serialise_times_as_milliseconds() {
        let report = FleetReport {
            elapsed: Duration::from_millis(1500),
            missing: vec![MissingEvent {
                at: Duration::from_millis(1200),
                coordinator: "c".into(),
                node_id: "w".into(),
                incarnation: 1,
                list: RequestSpan {
                    started: Duration::from_millis(1100),
                    finished: Duration::from_millis(1101),
                },
                last_listed: Duration::from_millis(100),
                list_size: 3,
                source: Source::Refresh,
            }],
            missing_total: 1,
            ..FleetReport::default()
        };
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["elapsed"], 1500.0);
        assert_eq!(json["missing"][0]["list"]["started"], 1100.0);
        assert_eq!(json["missing"][0]["source"], "refresh");
        assert_eq!(report.missing_of("w").count(), 1);
        assert!(report.to_string().contains("c lost w"), "{report}");
    }
}
