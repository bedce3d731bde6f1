//! Node-missing detection: the pure part of a coordinator's node manager.
//!
//! Trino's node manager re-reads the discovery list every few seconds and logs
//! "Previously active node is missing" when a node it had seen is no longer listed. The
//! simulator knows more than Trino does: which nodes are really up and announcing. So a
//! **missing event** here is a disappearance that a correct discovery service must never
//! cause: a node that is running, has been announced, and was already listed to this
//! coordinator, is absent from the coordinator's current list.
//!
//! Time is [`SimTime`] (time since the fleet started) so everything here is deterministic
//! and testable without a clock. Two timestamps keep the rule free of false alarms:
//!
//! * a list only counts for a node if its lookup was **sent after** the node's first
//!   successful announcement of its current incarnation (a restart is a new
//!   incarnation): an older list may legitimately lack it, or show its previous
//!   incarnation;
//! * a node counts as listed to a coordinator only once such a list showed it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Time since the fleet started.
pub type SimTime = Duration;

/// A node the fleet knows to be running, in its current incarnation, and announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveNode<'a> {
    pub node_id: &'a str,
    /// Which run of the node this is; every (re)start gets a new one.
    pub incarnation: u64,
    /// When the first successful announcement of this incarnation completed.
    pub announced_since: SimTime,
}

/// A coordinator's current list: the node ids it holds, as of one lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListSnapshot<'a> {
    pub node_ids: &'a BTreeSet<String>,
    /// When the lookup that produced the list (200) or confirmed it (304) was sent.
    pub requested_at: SimTime,
}

/// What a coordinator noticed about one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// First listed in this incarnation.
    Appeared { node_id: String, incarnation: u64 },
    /// A node running, announced and already listed is absent: "Previously active node
    /// is missing". Reported once per disappearance.
    Missing {
        node_id: String,
        incarnation: u64,
        /// Lookup time of the last list that showed it.
        last_listed: SimTime,
    },
    /// Listed again after a [`Observation::Missing`].
    Returned {
        node_id: String,
        incarnation: u64,
        /// Lookup time of the first list that lacked it.
        missing_since: SimTime,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    incarnation: u64,
    last_listed: SimTime,
    missing_since: Option<SimTime>,
}

/// What one coordinator has seen so far; feed it every list with [`NodeObserver::observe`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeObserver {
    listed: BTreeMap<String, Listed>,
}

impl NodeObserver {
    pub fn new() -> Self {
        Self::default()
    }

    /// Compares `list` with the nodes that are `live` (the observing coordinator itself
    /// left out: it always sees itself) and returns what changed, in node id order. Feeding
    /// the same list again reports nothing new.
    pub fn observe<'a>(
        &mut self,
        list: ListSnapshot<'_>,
        live: impl IntoIterator<Item = LiveNode<'a>>,
    ) -> Vec<Observation> {
        let mut observations = Vec::new();
        let mut live_ids = BTreeSet::new();
        let mut live: Vec<LiveNode<'a>> = live.into_iter().collect();
        live.sort_by_key(|node| node.node_id);
        for node in live {
            live_ids.insert(node.node_id);
            if list.requested_at < node.announced_since {
                // Asked before this incarnation was announced: proves nothing either way.
                continue;
            }
            let listed = list.node_ids.contains(node.node_id);
            let known = self
                .listed
                .get_mut(node.node_id)
                .filter(|l| l.incarnation == node.incarnation);
            match (listed, known) {
                (true, Some(known)) => {
                    known.last_listed = known.last_listed.max(list.requested_at);
                    if let Some(missing_since) = known.missing_since.take() {
                        observations.push(Observation::Returned {
                            node_id: node.node_id.to_owned(),
                            incarnation: node.incarnation,
                            missing_since,
                        });
                    }
                }
                (true, None) => {
                    self.listed.insert(
                        node.node_id.to_owned(),
                        Listed {
                            incarnation: node.incarnation,
                            last_listed: list.requested_at,
                            missing_since: None,
                        },
                    );
                    observations.push(Observation::Appeared {
                        node_id: node.node_id.to_owned(),
                        incarnation: node.incarnation,
                    });
                }
                (false, Some(known)) => {
                    if known.missing_since.is_none() {
                        known.missing_since = Some(list.requested_at);
                        observations.push(Observation::Missing {
                            node_id: node.node_id.to_owned(),
                            incarnation: node.incarnation,
                            last_listed: known.last_listed,
                        });
                    }
                }
                // Never listed in this incarnation: not yet visible, not missing.
                (false, None) => {}
            }
        }
        // A node that stopped ends its disappearance; if it comes back it is a new
        // incarnation and must be listed anew.
        for (node_id, listed) in &mut self.listed {
            if !live_ids.contains(node_id.as_str()) {
                listed.missing_since = None;
            }
        }
        observations
    }

    /// Whether `node_id` has been listed in `incarnation` and is not missing now.
    pub fn is_listed(&self, node_id: &str, incarnation: u64) -> bool {
        self.listed
            .get(node_id)
            .is_some_and(|l| l.incarnation == incarnation && l.missing_since.is_none())
    }
}

/// Node ids in `new` and not in `old` (joined), and in `old` and not in `new` (left).
pub fn diff(old: &BTreeSet<String>, new: &BTreeSet<String>) -> (Vec<String>, Vec<String>) {
    (
        new.difference(old).cloned().collect(),
        old.difference(new).cloned().collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> SimTime {
        Duration::from_millis(ms)
    }

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    fn live(node_id: &str, incarnation: u64, announced_since: u64) -> LiveNode<'_> {
        LiveNode {
            node_id,
            incarnation,
            announced_since: ms(announced_since),
        }
    }

    fn observe(
        observer: &mut NodeObserver,
        ids: &[&str],
        requested_at: u64,
        nodes: &[LiveNode<'_>],
    ) -> Vec<Observation> {
        let ids = set(ids);
        observer.observe(
            ListSnapshot {
                node_ids: &ids,
                requested_at: ms(requested_at),
            },
            nodes.iter().copied(),
        )
    }

    fn missing(node_id: &str, incarnation: u64, last_listed: u64) -> Observation {
        Observation::Missing {
            node_id: node_id.into(),
            incarnation,
            last_listed: ms(last_listed),
        }
    }

    #[test]
    fn a_listed_live_node_that_disappears_is_missing_once_per_disappearance() {
        let mut o = NodeObserver::new();
        let nodes = [live("w1", 1, 100), live("w2", 1, 100)];
        assert_eq!(
            observe(&mut o, &["w1", "w2"], 200, &nodes),
            [
                Observation::Appeared {
                    node_id: "w1".into(),
                    incarnation: 1
                },
                Observation::Appeared {
                    node_id: "w2".into(),
                    incarnation: 1
                },
            ]
        );
        assert_eq!(observe(&mut o, &["w1", "w2"], 300, &nodes), []);
        assert_eq!(
            observe(&mut o, &["w2"], 400, &nodes),
            [missing("w1", 1, 300)]
        );
        // The node manager's tick re-reads the same list: nothing new.
        assert_eq!(observe(&mut o, &["w2"], 400, &nodes), []);
        assert_eq!(observe(&mut o, &["w2"], 500, &nodes), []);
        assert!(!o.is_listed("w1", 1));
        assert_eq!(
            observe(&mut o, &["w1", "w2"], 600, &nodes),
            [Observation::Returned {
                node_id: "w1".into(),
                incarnation: 1,
                missing_since: ms(400)
            }]
        );
        assert!(o.is_listed("w1", 1));
        assert_eq!(
            observe(&mut o, &["w2"], 700, &nodes),
            [missing("w1", 1, 600)],
            "a second disappearance is a second event"
        );
    }

    #[test]
    fn a_node_never_listed_is_not_missing() {
        let mut o = NodeObserver::new();
        assert_eq!(observe(&mut o, &[], 500, &[live("w1", 1, 100)]), []);
        assert!(!o.is_listed("w1", 1));
    }

    #[test]
    fn lists_asked_for_before_the_announcement_prove_nothing() {
        let mut o = NodeObserver::new();
        // Announced at 300; a list asked for at 250 that already shows it (a previous
        // incarnation's entry, say) is not a sighting of this incarnation...
        assert_eq!(observe(&mut o, &["w1"], 250, &[live("w1", 1, 300)]), []);
        // ...so a later list without it is not a disappearance.
        assert_eq!(observe(&mut o, &[], 350, &[live("w1", 1, 300)]), []);
    }

    #[test]
    fn stopped_nodes_are_never_missing() {
        let mut o = NodeObserver::new();
        assert_eq!(
            observe(&mut o, &["w1"], 200, &[live("w1", 1, 100)]).len(),
            1
        );
        // w1 crashed (no longer live): its expiry is expected.
        assert_eq!(observe(&mut o, &[], 300, &[]), []);
    }

    #[test]
    fn a_restart_must_be_listed_anew_and_old_lists_do_not_count() {
        let mut o = NodeObserver::new();
        assert_eq!(
            observe(&mut o, &["w1"], 200, &[live("w1", 1, 100)]).len(),
            1
        );
        // Clean shutdown at 250 (DELETE), restart announced at 400. A list asked for at
        // 300, between the delete and the new announcement, lacks it: not missing.
        let restarted = [live("w1", 2, 400)];
        assert_eq!(observe(&mut o, &[], 300, &restarted), []);
        assert!(!o.is_listed("w1", 2));
        assert_eq!(
            observe(&mut o, &["w1"], 450, &restarted),
            [Observation::Appeared {
                node_id: "w1".into(),
                incarnation: 2
            }]
        );
        assert_eq!(
            observe(&mut o, &[], 500, &restarted),
            [missing("w1", 2, 450)]
        );
    }

    #[test]
    fn a_disappearance_ends_when_the_node_stops() {
        let mut o = NodeObserver::new();
        let nodes = [live("w1", 1, 100)];
        observe(&mut o, &["w1"], 200, &nodes);
        assert_eq!(observe(&mut o, &[], 300, &nodes), [missing("w1", 1, 200)]);
        // It stops while missing, then the same incarnation cannot come back; a listing
        // of it afterwards (restart) is a new appearance, not a return.
        assert_eq!(observe(&mut o, &[], 400, &[]), []);
        assert_eq!(
            observe(&mut o, &["w1"], 600, &[live("w1", 2, 500)]),
            [Observation::Appeared {
                node_id: "w1".into(),
                incarnation: 2
            }]
        );
    }

    #[test]
    fn diff_names_joined_and_left_nodes() {
        assert_eq!(
            diff(&set(&["a", "b"]), &set(&["b", "c"])),
            (vec!["c".to_owned()], vec!["a".to_owned()])
        );
        assert_eq!(diff(&set(&["a"]), &set(&["a"])), (vec![], vec![]));
    }
}
