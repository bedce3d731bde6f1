//! The replicated entry, its conflict rule and its expiry rule. Pure functions only.

use std::cmp::Ordering;

/// One versioned value, as airlift's `Entry`.
///
/// `value == None` is a tombstone: a delete that must win over older writes until it is
/// garbage-collected. Versions and timestamps are milliseconds on the origin server's wall
/// clock; `timestamp` drives expiry, `version` drives conflicts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
    pub version: i64,
    pub timestamp: i64,
    /// Time-to-live in milliseconds, counted from `timestamp`. `None` lives until replaced.
    pub max_age_ms: Option<i64>,
}

impl Entry {
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }

    /// The total order that decides conflicts: higher version first; on equal versions a
    /// tombstone beats a value (a tie must never resurrect a delete), then the larger value
    /// bytes, then the later timestamp, then the longer max age.
    ///
    /// Taking the maximum under a total order is commutative, associative and idempotent,
    /// which is what lets replicas that see the same entries in any order end identical.
    pub fn precedence_cmp(&self, other: &Entry) -> Ordering {
        self.version
            .cmp(&other.version)
            .then_with(|| self.is_tombstone().cmp(&other.is_tombstone()))
            .then_with(|| self.value.cmp(&other.value))
            .then_with(|| self.timestamp.cmp(&other.timestamp))
            .then_with(|| self.max_age_ms.cmp(&other.max_age_ms))
    }

    /// True when `self` must replace `current` for the same key. An identical entry does
    /// not supersede itself, so re-applying a batch changes nothing.
    pub fn supersedes(&self, current: &Entry) -> bool {
        self.precedence_cmp(current) == Ordering::Greater
    }

    /// airlift's expiry rule, comparisons strict: a tombstone expires `tombstone_max_age_ms`
    /// after its timestamp; an entry with a max age expires that long after its timestamp.
    /// Expired entries are invisible to reads and removed by garbage collection.
    pub fn is_expired(&self, now_ms: i64, tombstone_max_age_ms: i64) -> bool {
        let age = now_ms.saturating_sub(self.timestamp);
        (self.is_tombstone() && age > tombstone_max_age_ms)
            || self.max_age_ms.is_some_and(|max_age| age > max_age)
    }

    /// When this entry's value stops being visible, if it ever does (ms since epoch).
    pub fn expires_at(&self) -> Option<i64> {
        self.max_age_ms
            .map(|max_age| self.timestamp.saturating_add(max_age))
    }

    /// True when the entry holds a value that reads may return at `now_ms`.
    pub fn is_live(&self, now_ms: i64) -> bool {
        !self.is_tombstone() && self.expires_at().is_none_or(|at| now_ms <= at)
    }
}

/// The version a local write gets: the wall clock, but always past the key's last version,
/// so two writes in the same millisecond (a PUT then a DELETE) are both kept, in order.
pub fn next_local_version(now_ms: i64, last_version: Option<i64>) -> i64 {
    match last_version {
        Some(last) => now_ms.max(last.saturating_add(1)),
        None => now_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(version: i64, value: Option<&str>) -> Entry {
        Entry {
            key: b"k".to_vec(),
            value: value.map(|v| v.as_bytes().to_vec()),
            version,
            timestamp: version,
            max_age_ms: None,
        }
    }

    #[test]
    fn higher_version_wins_whatever_the_content() {
        assert!(entry(2, Some("a")).supersedes(&entry(1, Some("z"))));
        assert!(entry(2, None).supersedes(&entry(1, Some("z"))));
        assert!(!entry(1, None).supersedes(&entry(2, Some("a"))));
    }

    #[test]
    fn equal_versions_resolve_deterministically() {
        let a = entry(5, Some("a"));
        let b = entry(5, Some("b"));
        assert!(b.supersedes(&a));
        assert!(!a.supersedes(&b));
        let tombstone = entry(5, None);
        assert!(tombstone.supersedes(&b), "a tie never resurrects a delete");
        assert!(
            !a.supersedes(&a.clone()),
            "an entry never supersedes itself"
        );
    }

    #[test]
    fn expiry_is_strict_and_follows_the_origin_timestamp() {
        let mut e = entry(1000, Some("v"));
        e.max_age_ms = Some(30_000);
        assert!(!e.is_expired(31_000, i64::MAX));
        assert!(e.is_expired(31_001, i64::MAX));
        assert!(e.is_live(31_000));
        assert!(!e.is_live(31_001));
        let t = entry(1000, None);
        assert!(!t.is_expired(1000 + 86_400_000, 86_400_000));
        assert!(t.is_expired(1001 + 86_400_000, 86_400_000));
        assert!(!t.is_live(1000));
        let static_entry = entry(1000, Some("v"));
        assert!(!static_entry.is_expired(i64::MAX, 86_400_000));
    }

    #[test]
    fn local_versions_strictly_increase() {
        assert_eq!(next_local_version(100, None), 100);
        assert_eq!(next_local_version(100, Some(50)), 100);
        assert_eq!(next_local_version(100, Some(100)), 101);
        assert_eq!(next_local_version(100, Some(200)), 201);
        assert_eq!(next_local_version(100, Some(i64::MAX)), i64::MAX);
    }
}
