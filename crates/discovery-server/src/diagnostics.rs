//! A bounded memory of what happened to each node's announcements at this server, for
//! `GET /v1/diagnostics/node/{nodeId}` ("the worker says it announced, why doesn't the
//! coordinator see it?").
//!
//! The store says whether a node is listed and when its entry expires, on every replica.
//! What it cannot say is why an announcement never made it in (a wrong environment, a
//! bad body, a missing token) or who delivered the last one, because a refused
//! announcement leaves no entry. This module remembers that per node id: the last
//! [`MAX_REFUSALS_PER_NODE`] refusals (time, typed reason, client address) and the last
//! accepted announcement (time, client address, directly from a client or pushed by a
//! peer). Pure: callers pass the time; the HTTP layer records and reads.
//!
//! # Bounds
//!
//! Node ids come from the network, so everything is bounded and a hostile flood costs a
//! fixed amount of memory:
//!
//! * at most [`MAX_NODES`] (10,000) node ids, the least recently touched (recorded) one
//!   forgotten first; reading a record does not touch it;
//! * only ids the announcement API accepts (`validate_node_id`: at most 256 bytes, no
//!   whitespace, controls, `/`, `..` or bidi controls); a refusal for any other id is not
//!   remembered;
//! * at most [`MAX_REFUSALS_PER_NODE`] (8) refusals per id, the oldest dropped;
//! * every other string (reason texts, the pushing peer's id) cut to
//!   [`MAX_DIAGNOSTIC_TEXT_BYTES`] (128) bytes on a char boundary.
//!
//! So one id costs at most about 256 + 8 × (2 × 128 + 96) + 128 + 200 bytes ≈ 3.5 KiB,
//! and the whole memory at most about 35 MiB in the worst case (10,000 ids of 256 bytes,
//! each with 8 refusals carrying two full 128-byte texts); typical ids and refusals (one
//! short text) keep it under 10 MiB. A flood of distinct ids can push real
//! nodes' records out; a live node's next announcement (every 8 s) records it again.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard};

use discovery_types::diagnostics::{RefusalReason, MAX_DIAGNOSTIC_TEXT_BYTES};
use discovery_types::validate_node_id;
use lru::LruCache;

pub use discovery_types::diagnostics::MAX_REFUSALS_PER_NODE;

/// Most node ids remembered.
pub const MAX_NODES: usize = 10_000;

/// How an accepted announcement reached this server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via<'a> {
    /// The node announced here itself (`PUT /v1/announcement/{nodeId}`).
    Client,
    /// A discovery peer pushed it; its node id when known.
    Replication { peer: Option<&'a str> },
}

/// How the last accepted announcement arrived, as remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival {
    Client,
    /// Pushed by a peer: its node id (cut to 128 bytes), when known.
    Replication(Option<Box<str>>),
}

/// The last accepted announcement of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub at_ms: i64,
    pub client: Option<IpAddr>,
    pub arrival: Arrival,
}

/// One refused announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub at_ms: i64,
    pub reason: RefusalReason,
    pub client: Option<IpAddr>,
}

/// What is remembered of one node id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeRecord {
    /// Oldest first; at most [`MAX_REFUSALS_PER_NODE`].
    refusals: VecDeque<Refused>,
    accepted: Option<Accepted>,
}

impl NodeRecord {
    /// The refusals, newest first.
    pub fn refusals_newest_first(&self) -> impl Iterator<Item = &Refused> {
        self.refusals.iter().rev()
    }

    pub fn accepted(&self) -> Option<&Accepted> {
        self.accepted.as_ref()
    }
}

/// The memory, shared by every request; one short lock per record or read.
#[derive(Debug)]
pub struct Diagnostics {
    nodes: Mutex<LruCache<Box<str>, NodeRecord>>,
}

impl Default for Diagnostics {
    fn default() -> Self {
        Diagnostics::new()
    }
}

impl Diagnostics {
    /// Remembers up to [`MAX_NODES`] node ids.
    pub fn new() -> Self {
        Diagnostics::with_capacity(MAX_NODES)
    }

    /// Remembers up to `max_nodes` node ids (at least one).
    pub fn with_capacity(max_nodes: usize) -> Self {
        Diagnostics {
            nodes: Mutex::new(LruCache::new(
                NonZeroUsize::new(max_nodes).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    fn nodes(&self) -> MutexGuard<'_, LruCache<Box<str>, NodeRecord>> {
        // Every update is one step on a plain structure: still consistent after a panic.
        self.nodes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Remembers that an announcement for `node_id` was refused. An id the announcement
    /// API would refuse is not remembered.
    pub fn refused(
        &self,
        node_id: &str,
        at_ms: i64,
        client: Option<IpAddr>,
        reason: RefusalReason,
    ) {
        if validate_node_id(node_id).is_err() {
            return;
        }
        let refusal = Refused {
            at_ms,
            reason: cut_reason(reason),
            client,
        };
        let mut nodes = self.nodes();
        let record = nodes.get_or_insert_mut(Box::from(node_id), NodeRecord::default);
        if record.refusals.len() >= MAX_REFUSALS_PER_NODE {
            record.refusals.pop_front();
        }
        record.refusals.push_back(refusal);
    }

    /// Remembers that an announcement for `node_id` was accepted: on the announce path, so
    /// a known node costs one lock and no allocation (a peer id is copied only when it
    /// changes).
    pub fn accepted(&self, node_id: &str, at_ms: i64, client: Option<IpAddr>, via: Via<'_>) {
        let mut nodes = self.nodes();
        if !nodes.contains(node_id) {
            if validate_node_id(node_id).is_err() {
                return;
            }
            nodes.put(Box::from(node_id), NodeRecord::default());
        }
        let Some(record) = nodes.get_mut(node_id) else {
            return;
        };
        let arrival = match (via, record.accepted.take().map(|a| a.arrival)) {
            (Via::Client, _) => Arrival::Client,
            (Via::Replication { peer }, Some(Arrival::Replication(known)))
                if known.as_deref() == peer.map(cut) =>
            {
                Arrival::Replication(known)
            }
            (Via::Replication { peer }, _) => Arrival::Replication(peer.map(|p| Box::from(cut(p)))),
        };
        record.accepted = Some(Accepted {
            at_ms,
            client,
            arrival,
        });
    }

    /// What is remembered of `node_id`, if anything. Reading does not count as a touch:
    /// operators looking at a node do not keep it from being forgotten.
    pub fn record(&self, node_id: &str) -> Option<NodeRecord> {
        self.nodes().peek(node_id).cloned()
    }

    /// How many node ids are remembered.
    pub fn len(&self) -> usize {
        self.nodes().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `text` cut to at most [`MAX_DIAGNOSTIC_TEXT_BYTES`] bytes, on a char boundary.
pub fn cut(text: &str) -> &str {
    if text.len() <= MAX_DIAGNOSTIC_TEXT_BYTES {
        return text;
    }
    let mut end = MAX_DIAGNOSTIC_TEXT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn cut_owned(text: String) -> String {
    if text.len() <= MAX_DIAGNOSTIC_TEXT_BYTES {
        text
    } else {
        // A fresh string, so no capacity beyond the cut is kept.
        cut(&text).to_owned()
    }
}

/// Every text of `reason` cut by [`cut`].
fn cut_reason(reason: RefusalReason) -> RefusalReason {
    match reason {
        RefusalReason::EnvironmentMismatch { expected, provided } => {
            RefusalReason::EnvironmentMismatch {
                expected: cut_owned(expected),
                provided: provided.map(cut_owned),
            }
        }
        RefusalReason::InvalidBody { detail } => RefusalReason::InvalidBody {
            detail: cut_owned(detail),
        },
        RefusalReason::UnsupportedMediaType { detail } => RefusalReason::UnsupportedMediaType {
            detail: cut_owned(detail),
        },
        RefusalReason::Unauthenticated { reason } => RefusalReason::Unauthenticated {
            reason: cut_owned(reason),
        },
        RefusalReason::Forbidden { reason } => RefusalReason::Forbidden {
            reason: cut_owned(reason),
        },
        RefusalReason::StoreFull { detail } => RefusalReason::StoreFull {
            detail: cut_owned(detail),
        },
        RefusalReason::NotReady { reason } => RefusalReason::NotReady {
            reason: cut_owned(reason),
        },
        RefusalReason::Conflict { detail } => RefusalReason::Conflict {
            detail: cut_owned(detail),
        },
        other @ (RefusalReason::TooLarge { .. }
        | RefusalReason::Timeout
        | RefusalReason::StorageUnavailable
        | RefusalReason::Other) => other,
    }
}

/// Whether the node's latest announcement seen here matched the environment: the newest
/// of the last acceptance and the stored entry's timestamp against the newest
/// environment-mismatch refusal; `None` when neither is known.
pub fn environment_matches(record: Option<&NodeRecord>, stored_at_ms: Option<i64>) -> Option<bool> {
    let accepted = record
        .and_then(|r| r.accepted.as_ref().map(|a| a.at_ms))
        .max(stored_at_ms);
    let mismatch = record.and_then(|r| {
        r.refusals_newest_first()
            .find(|refusal| matches!(refusal.reason, RefusalReason::EnvironmentMismatch { .. }))
            .map(|refusal| refusal.at_ms)
    });
    match (accepted, mismatch) {
        (None, None) => None,
        (Some(_), None) => Some(true),
        (None, Some(_)) => Some(false),
        (Some(accepted), Some(mismatch)) => Some(accepted >= mismatch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    fn mismatch(provided: &str) -> RefusalReason {
        RefusalReason::EnvironmentMismatch {
            expected: "production".into(),
            provided: Some(provided.into()),
        }
    }

    #[test]
    fn the_ring_keeps_the_last_eight_refusals_newest_first() {
        let memory = Diagnostics::new();
        for at in 0..20 {
            memory.refused("worker-9", at, LOCAL, mismatch("prod"));
        }
        let record = memory.record("worker-9").expect("remembered");
        let times: Vec<i64> = record.refusals_newest_first().map(|r| r.at_ms).collect();
        assert_eq!(times, (12..20).rev().collect::<Vec<_>>());
        assert_eq!(memory.len(), 1);
    }

    #[test]
    fn at_most_the_capacity_of_node_ids_the_least_recently_touched_forgotten() {
        let memory = Diagnostics::with_capacity(3);
        for node in ["a", "b", "c"] {
            memory.refused(node, 1, None, RefusalReason::Timeout);
        }
        // Touching "a" makes "b" the least recently touched; reading "b" does not count.
        memory.accepted("a", 2, LOCAL, Via::Client);
        assert!(memory.record("b").is_some());
        memory.refused("d", 3, None, RefusalReason::Timeout);
        assert_eq!(memory.len(), 3);
        assert!(memory.record("b").is_none(), "b was least recently touched");
        for node in ["a", "c", "d"] {
            assert!(memory.record(node).is_some(), "{node}");
        }
        let flood = Diagnostics::new();
        for i in 0..(MAX_NODES + 500) {
            flood.refused(&format!("n{i}"), 1, None, RefusalReason::Timeout);
        }
        assert_eq!(flood.len(), MAX_NODES);
        assert!(flood.record("n0").is_none());
        assert!(flood.record(&format!("n{}", MAX_NODES + 499)).is_some());
    }

    #[test]
    fn ids_the_announcement_api_refuses_are_never_remembered() {
        let memory = Diagnostics::new();
        let long = "x".repeat(257);
        for bad in ["", "a b", "a/b", "..", "a\u{202E}b", "tab\t", long.as_str()] {
            memory.refused(bad, 1, LOCAL, RefusalReason::Timeout);
            memory.accepted(bad, 1, LOCAL, Via::Client);
        }
        assert!(memory.is_empty());
        let longest = "x".repeat(256);
        memory.refused(&longest, 1, LOCAL, RefusalReason::Timeout);
        assert!(memory.record(&longest).is_some());
    }

    #[test]
    fn texts_are_cut_to_128_bytes_on_a_char_boundary() {
        assert_eq!(cut("short"), "short");
        let ascii = "a".repeat(300);
        assert_eq!(cut(&ascii).len(), 128);
        // 'é' is 2 bytes: 127 'a's and one 'é' would end at byte 129, so it is left out.
        let accented = format!("{}é{}", "a".repeat(127), "b".repeat(10));
        assert_eq!(cut(&accented), "a".repeat(127));
        let memory = Diagnostics::new();
        memory.refused(
            "w",
            1,
            None,
            RefusalReason::EnvironmentMismatch {
                expected: "e".repeat(500),
                provided: Some("€".repeat(100)),
            },
        );
        memory.refused(
            "w",
            2,
            None,
            RefusalReason::Unauthenticated {
                reason: "r".repeat(129),
            },
        );
        let record = memory.record("w").unwrap();
        let refusals: Vec<&Refused> = record.refusals_newest_first().collect();
        assert_eq!(
            refusals[0].reason,
            RefusalReason::Unauthenticated {
                reason: "r".repeat(128)
            }
        );
        match &refusals[1].reason {
            RefusalReason::EnvironmentMismatch { expected, provided } => {
                assert_eq!(expected.len(), 128);
                // '€' is 3 bytes: 42 of them fit in 128.
                assert_eq!(provided.as_deref(), Some("€".repeat(42).as_str()));
            }
            other => panic!("{other:?}"),
        }
        memory.accepted(
            "w",
            3,
            None,
            Via::Replication {
                peer: Some(&"p".repeat(200)),
            },
        );
        let record = memory.record("w").unwrap();
        assert_eq!(
            record.accepted().map(|a| a.arrival.clone()),
            Some(Arrival::Replication(Some("p".repeat(128).into())))
        );
    }

    #[test]
    fn the_last_acceptance_says_how_it_arrived() {
        let memory = Diagnostics::new();
        memory.accepted("w", 1, LOCAL, Via::Client);
        assert_eq!(
            memory.record("w").unwrap().accepted(),
            Some(&Accepted {
                at_ms: 1,
                client: LOCAL,
                arrival: Arrival::Client
            })
        );
        memory.accepted(
            "w",
            2,
            None,
            Via::Replication {
                peer: Some("disc-2"),
            },
        );
        memory.accepted(
            "w",
            3,
            None,
            Via::Replication {
                peer: Some("disc-2"),
            },
        );
        let accepted = memory.record("w").unwrap().accepted().cloned().unwrap();
        assert_eq!(accepted.at_ms, 3);
        assert_eq!(
            accepted.arrival,
            Arrival::Replication(Some("disc-2".into()))
        );
        memory.accepted("w", 4, None, Via::Replication { peer: None });
        assert_eq!(
            memory
                .record("w")
                .unwrap()
                .accepted()
                .map(|a| a.arrival.clone()),
            Some(Arrival::Replication(None))
        );
        assert!(memory
            .record("w")
            .unwrap()
            .refusals_newest_first()
            .next()
            .is_none());
    }

    #[test]
    fn the_environment_matches_when_the_last_word_was_an_acceptance() {
        assert_eq!(environment_matches(None, None), None);
        assert_eq!(environment_matches(None, Some(5)), Some(true));
        let memory = Diagnostics::new();
        memory.refused("w", 10, LOCAL, mismatch("prod"));
        let record = memory.record("w");
        assert_eq!(environment_matches(record.as_ref(), None), Some(false));
        assert_eq!(environment_matches(record.as_ref(), Some(5)), Some(false));
        assert_eq!(environment_matches(record.as_ref(), Some(11)), Some(true));
        memory.accepted("w", 12, LOCAL, Via::Client);
        memory.refused("w", 13, LOCAL, RefusalReason::Timeout);
        assert_eq!(
            environment_matches(memory.record("w").as_ref(), None),
            Some(true)
        );
    }
}
