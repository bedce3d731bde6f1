//! The anti-entropy decision: given both sides' summaries of the buckets where their
//! digests differ, which keys to fetch from the peer and which to send it. Pure.

use std::collections::BTreeMap;

use discovery_store::Summary;

/// What one reconciliation has to move.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncPlan {
    /// Keys whose entry on the peer is (or may be) newer than ours.
    pub fetch: Vec<Vec<u8>>,
    /// Keys whose entry here is (or may be) newer than the peer's.
    pub push: Vec<Vec<u8>>,
}

/// Compares summaries key by key. A higher version decides the direction; equal versions
/// with different content go both ways, and the conflict rule on each side settles them
/// identically.
pub fn plan(local: &[Summary], remote: &[Summary]) -> SyncPlan {
    let mut sides: BTreeMap<&[u8], (Option<&Summary>, Option<&Summary>)> = BTreeMap::new();
    for summary in local {
        sides.entry(&summary.key).or_default().0 = Some(summary);
    }
    for summary in remote {
        sides.entry(&summary.key).or_default().1 = Some(summary);
    }
    let mut plan = SyncPlan::default();
    for (key, pair) in sides {
        match pair {
            (Some(ours), Some(theirs)) if ours.fingerprint == theirs.fingerprint => {}
            (Some(ours), Some(theirs)) if ours.version > theirs.version => {
                plan.push.push(key.to_vec())
            }
            (Some(ours), Some(theirs)) if ours.version < theirs.version => {
                plan.fetch.push(key.to_vec())
            }
            (Some(_), Some(_)) => {
                plan.fetch.push(key.to_vec());
                plan.push.push(key.to_vec());
            }
            (Some(_), None) => plan.push.push(key.to_vec()),
            (None, Some(_)) => plan.fetch.push(key.to_vec()),
            (None, None) => {}
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(key: &str, version: i64, fingerprint: u64) -> Summary {
        Summary {
            key: key.as_bytes().to_vec(),
            version,
            fingerprint,
        }
    }

    fn names(keys: &[Vec<u8>]) -> Vec<&str> {
        keys.iter()
            .map(|k| std::str::from_utf8(k).unwrap())
            .collect()
    }

    #[test]
    fn decides_direction_per_key() {
        let local = [
            summary("same", 1, 9),
            summary("mine-newer", 5, 1),
            summary("theirs-newer", 1, 1),
            summary("tie", 3, 1),
            summary("only-mine", 1, 1),
        ];
        let remote = [
            summary("same", 1, 9),
            summary("mine-newer", 4, 2),
            summary("theirs-newer", 2, 2),
            summary("tie", 3, 2),
            summary("only-theirs", 1, 1),
        ];
        let plan = plan(&local, &remote);
        assert_eq!(names(&plan.fetch), ["only-theirs", "theirs-newer", "tie"]);
        assert_eq!(names(&plan.push), ["mine-newer", "only-mine", "tie"]);
    }
}
