//! The anti-entropy decisions, pure:
//!
//! * [`plan`]: given both sides' summaries of where their digests differ, which keys to
//!   fetch from the peer and which to send it.
//! * [`Range`], [`split`], [`descend`], [`sort_out`]: where to look. A differing digest
//!   bucket with many of our entries is split into 16 sub-ranges by the next bits of the
//!   key hash, and only the differing sub-ranges are followed, until a range holds at most
//!   [`LEAF_SIZE`] of our entries; so what a round sends grows with the difference, not
//!   with the store (`docs/REPLICATION.md`).
//! * [`diff`]: the answering side of a leaf: which of its entries the asker lacks, which
//!   differ, which of the asker's it lacks.

use std::collections::{BTreeMap, HashMap, HashSet};

use discovery_store::fingerprint::BUCKETS;
use discovery_store::Summary;

/// Bits of the key hash each level of the descent adds: 16 sub-ranges per range.
pub const FANOUT_BITS: u32 = 4;
/// Sub-ranges per range.
pub const FANOUT: usize = 1 << FANOUT_BITS;
/// The digest buckets are the ranges of this many bits.
pub const BUCKET_BITS: u32 = BUCKETS.trailing_zeros();
/// The deepest range (13 levels below the buckets): a bound on a round's descent however
/// the peer answers.
pub const MAX_BITS: u32 = 60;
/// A differing range with at most this many of our entries is reconciled entry by entry
/// rather than split again: splitting costs 16 hashes (171 bytes of base64), listing an
/// entry 16 bytes of key hash and fingerprint (21 bytes of base64), so up to 8 entries
/// listing is the cheaper (`docs/BENCHMARKS.md` measures 3, 5 and 8).
pub const LEAF_SIZE: usize = 8;
/// Most ranges in one `ranges` or `diff` request: 4,096 × 16 hashes is 700 KB of answer.
pub const MAX_RANGES: usize = 4_096;

/// The keys whose key hash ([`discovery_store::fingerprint::key_hash`]) ends in the `bits`
/// low bits `prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Range {
    pub bits: u32,
    pub prefix: u64,
}

impl Range {
    /// Digest bucket `bucket` as a range.
    pub fn bucket(bucket: usize) -> Range {
        Range {
            bits: BUCKET_BITS,
            prefix: bucket as u64,
        }
    }

    /// The range of `bits` bits that holds `key_hash`.
    pub fn of(bits: u32, key_hash: u64) -> Range {
        Range {
            bits,
            prefix: key_hash & mask(bits),
        }
    }

    /// A range a peer may ask about: a digest bucket or one of its sub-ranges, at most
    /// [`MAX_BITS`] deep, with a prefix that fits its bits.
    pub fn is_valid(&self) -> bool {
        (BUCKET_BITS..=MAX_BITS).contains(&self.bits)
            && (self.bits - BUCKET_BITS).is_multiple_of(FANOUT_BITS)
            && self.prefix & !mask(self.bits) == 0
    }

    pub fn contains(&self, key_hash: u64) -> bool {
        key_hash & mask(self.bits) == self.prefix
    }

    /// The digest bucket the range lies in.
    pub fn bucket_index(&self) -> usize {
        (self.prefix & mask(BUCKET_BITS)) as usize
    }

    /// Which of the range's sub-ranges holds `key_hash` (one the range contains).
    pub fn child_index(&self, key_hash: u64) -> usize {
        ((key_hash >> self.bits) as usize) & (FANOUT - 1)
    }

    /// The range as one number, its prefix under a marker bit at position `bits` (the
    /// `diff` message's encoding; a range is at most [`MAX_BITS`] bits).
    pub fn tag(&self) -> u64 {
        self.prefix | (1 << self.bits)
    }

    /// The range of a [`tag`](Self::tag); `None` for a number that is no valid range's.
    pub fn from_tag(tag: u64) -> Option<Range> {
        let bits = 63_u32.checked_sub(tag.leading_zeros())?;
        let range = Range {
            bits,
            prefix: tag ^ (1 << bits),
        };
        range.is_valid().then_some(range)
    }

    pub fn child(&self, index: usize) -> Range {
        Range {
            bits: self.bits + FANOUT_BITS,
            prefix: self.prefix | ((index as u64) << self.bits),
        }
    }
}

fn mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1 << bits) - 1
    }
}

/// One of our entries in the round: its key hash and fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub key_hash: u64,
    pub fingerprint: u64,
}

/// A range and which of our entries (indexes into the round's list) lie in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRange {
    pub range: Range,
    pub members: Vec<usize>,
}

/// `range`'s 16 sub-ranges with our members and hashes (the XOR of their fingerprints).
pub fn split(parent: &LocalRange, held: &[Held]) -> Vec<(LocalRange, u64)> {
    let mut children: Vec<(LocalRange, u64)> = (0..FANOUT)
        .map(|i| {
            let range = parent.range.child(i);
            (
                LocalRange {
                    range,
                    members: Vec::new(),
                },
                0,
            )
        })
        .collect();
    for &member in &parent.members {
        let entry = held[member];
        let child = &mut children[parent.range.child_index(entry.key_hash)];
        child.0.members.push(member);
        child.1 ^= entry.fingerprint;
    }
    children
}

/// Where a round looks next: ranges to split (all of one level) and leaves to reconcile
/// entry by entry.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Descent {
    pub split: Vec<LocalRange>,
    pub leaves: Vec<LocalRange>,
}

/// Differing ranges sorted into leaves (few of our entries, or as deep as allowed) and
/// ranges to split.
pub fn sort_out(ranges: impl IntoIterator<Item = LocalRange>) -> Descent {
    let mut descent = Descent::default();
    for range in ranges {
        if range.members.len() <= LEAF_SIZE || range.range.bits + FANOUT_BITS > MAX_BITS {
            descent.leaves.push(range);
        } else {
            descent.split.push(range);
        }
    }
    descent
}

/// After the peer answered the hashes of `level`'s sub-ranges (16 per range, in order):
/// the sub-ranges whose hashes differ from ours, sorted out. Sub-ranges that agree are
/// done. If the peer answered fewer hashes than asked, the ranges without an answer are
/// left for the next round.
pub fn descend(level: &[LocalRange], remote: &[u64], held: &[Held]) -> Descent {
    let differing = level
        .iter()
        .zip(remote.chunks_exact(FANOUT))
        .flat_map(|(parent, theirs)| {
            split(parent, held)
                .into_iter()
                .zip(theirs)
                .filter(|((_, ours), theirs)| ours != *theirs)
                .map(|((child, _), _)| child)
        });
    sort_out(differing)
}

/// The answering side of a leaf: given its own entries in the asked ranges (key hash and
/// summary) and the asker's key hashes and fingerprints there.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RangeDiff<'a> {
    /// Ours that the asker lacks: sent in full.
    pub lacked: Vec<&'a Summary>,
    /// Ours whose content differs from the asker's: summarised, the asker decides.
    pub differing: Vec<&'a Summary>,
    /// The asker's key hashes that we lack.
    pub wanted: Vec<u64>,
}

/// Compares by key hash: 64 bits, so two keys of one range share one only by a 2^-64
/// accident (the same odds the digests already accept).
pub fn diff<'a>(ours: &[(u64, &'a Summary)], theirs: &HashMap<u64, u64>) -> RangeDiff<'a> {
    let mut result = RangeDiff::default();
    let mut seen = HashSet::with_capacity(ours.len());
    for &(key_hash, summary) in ours {
        seen.insert(key_hash);
        match theirs.get(&key_hash) {
            None => result.lacked.push(summary),
            Some(&fingerprint) if fingerprint != summary.fingerprint => {
                result.differing.push(summary)
            }
            Some(_) => {}
        }
    }
    result.wanted = theirs
        .keys()
        .filter(|key_hash| !seen.contains(key_hash))
        .copied()
        .collect();
    result.wanted.sort_unstable();
    result
}

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

#[cfg(test)]
mod descent_tests {
    use super::*;

    fn held(key_hash: u64, fingerprint: u64) -> Held {
        Held {
            key_hash,
            fingerprint,
        }
    }

    #[test]
    fn ranges_are_valid_only_on_the_tree_and_survive_their_tag() {
        let bucket = Range::bucket(17);
        let deep = bucket.child(3).child(15);
        assert_eq!(
            deep,
            Range {
                bits: 16,
                prefix: 17 | 3 << 8 | 15 << 12
            }
        );
        for range in [bucket, deep, Range::of(MAX_BITS, u64::MAX)] {
            assert!(range.is_valid(), "{range:?}");
            assert_eq!(Range::from_tag(range.tag()), Some(range));
        }
        let off_tree = [
            Range { bits: 4, prefix: 1 },
            Range {
                bits: 10,
                prefix: 1,
            },
            Range {
                bits: 8,
                prefix: 256,
            },
            Range {
                bits: MAX_BITS + 4,
                prefix: 0,
            },
        ];
        for range in off_tree {
            assert!(!range.is_valid(), "{range:?}");
        }
        assert_eq!(Range::from_tag(0), None);
        assert_eq!(Range::from_tag(1 << 63), None, "deeper than MAX_BITS");
        assert!(deep.contains(17 | 3 << 8 | 15 << 12 | 0xabc << 16));
        assert!(!deep.contains(17 | 4 << 8 | 15 << 12));
    }

    #[test]
    fn only_differing_sub_ranges_are_followed_and_small_ones_become_leaves() {
        // Bucket 1 holds 20 of our entries: 10 in its sub-range 0, 10 in sub-range 2.
        let held: Vec<Held> = (0..20u64)
            .map(|i| held(1 | (if i < 10 { 0 } else { 2 }) << 8 | i << 12, 100 + i))
            .collect();
        let parent = LocalRange {
            range: Range::bucket(1),
            members: (0..20).collect(),
        };
        assert_eq!(
            sort_out([parent.clone()]).split.len(),
            1,
            "20 entries: split"
        );
        let ours: Vec<u64> = split(&parent, &held).iter().map(|(_, h)| *h).collect();
        assert_eq!(
            ours.iter().fold(0, |a, h| a ^ h),
            held.iter().fold(0, |a, e| a ^ e.fingerprint)
        );

        // The peer agrees on sub-range 0, differs on 2 (10 of ours: split again) and on
        // 5 (none of ours: a leaf, where the peer sends what it has).
        let mut theirs = ours.clone();
        theirs[2] ^= 1;
        theirs[5] = 42;
        let next = descend(std::slice::from_ref(&parent), &theirs, &held);
        assert_eq!(
            next.split.iter().map(|r| r.range).collect::<Vec<_>>(),
            [Range::bucket(1).child(2)]
        );
        assert_eq!(next.split[0].members, (10..20).collect::<Vec<_>>());
        assert_eq!(
            next.leaves,
            [LocalRange {
                range: Range::bucket(1).child(5),
                members: vec![]
            }]
        );

        // A short answer leaves the unanswered ranges for the next round.
        assert_eq!(
            descend(&[parent], &theirs[..FANOUT - 1], &held),
            Descent::default()
        );
    }

    #[test]
    fn the_deepest_range_is_a_leaf_however_full() {
        let deepest = LocalRange {
            range: Range::of(MAX_BITS, 7),
            members: (0..100).collect(),
        };
        let descent = sort_out([deepest.clone()]);
        assert_eq!((descent.split, descent.leaves), (vec![], vec![deepest]));
    }

    #[test]
    fn a_leaf_diff_names_what_each_side_lacks_or_holds_differently() {
        let summary = |key: &str, fingerprint| Summary {
            key: key.as_bytes().to_vec(),
            version: 1,
            fingerprint,
        };
        let (same, changed, only_here) = (summary("a", 1), summary("b", 2), summary("c", 3));
        let ours = [(10, &same), (11, &changed), (12, &only_here)];
        let theirs = HashMap::from([(10, 1), (11, 9), (13, 4)]);
        let found = diff(&ours, &theirs);
        assert_eq!(found.lacked, [&only_here]);
        assert_eq!(found.differing, [&changed]);
        assert_eq!(found.wanted, [13]);
    }
}
