//! Content hashes for replication: how two stores tell cheaply whether they agree.
//!
//! * [`value_hash`]: 128 bits of a value, so a renewal can say "same value as before"
//!   without shipping it.
//! * [`fingerprint`]: 64 bits of an entry's whole content (key, value, version, timestamp,
//!   max age). Two replicas agree on a key exactly when its fingerprints are equal.
//! * [`Digest`]: entries are spread over [`BUCKETS`] buckets by key; a bucket's hash is the
//!   XOR of its entries' fingerprints, and the root is a hash of the buckets. Equal roots
//!   mean (up to a 2^-64 accident) equal stores.
//!
//! xxh3 is used because it is fast and its output is fixed by its specification, so
//! servers of different builds compute the same digests.

use xxhash_rust::xxh3::{xxh3_128, xxh3_64, Xxh3};

use crate::entry::Entry;

/// Number of digest buckets. 256 keeps a full digest near 5 KB of JSON while a handful
/// of differing keys touches only a handful of buckets.
pub const BUCKETS: usize = 256;

pub fn value_hash(value: &[u8]) -> u128 {
    xxh3_128(value)
}

/// The hash that places a key: its low 8 bits are its digest bucket, and the bits above
/// place it in the finer ranges anti-entropy descends into (`discovery-replicator`'s
/// `plan::Range`), so every level of that tree refines the one above.
pub fn key_hash(key: &[u8]) -> u64 {
    xxh3_64(key)
}

/// The bucket a key belongs to.
pub fn bucket_of(key: &[u8]) -> usize {
    (key_hash(key) % BUCKETS as u64) as usize
}

/// A hash of everything that distinguishes one entry from another.
pub fn fingerprint(entry: &Entry) -> u64 {
    let mut hasher = Xxh3::new();
    hasher.update(&(entry.key.len() as u64).to_le_bytes());
    hasher.update(&entry.key);
    match &entry.value {
        Some(value) => {
            hasher.update(&[1]);
            hasher.update(&value_hash(value).to_le_bytes());
        }
        None => hasher.update(&[0]),
    }
    hasher.update(&entry.version.to_le_bytes());
    hasher.update(&entry.timestamp.to_le_bytes());
    match entry.max_age_ms {
        Some(max_age) => {
            hasher.update(&[1]);
            hasher.update(&max_age.to_le_bytes());
        }
        None => hasher.update(&[0]),
    }
    hasher.digest()
}

/// Per-bucket XOR of entry fingerprints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub buckets: Vec<u64>,
}

impl Digest {
    pub fn empty() -> Self {
        Digest {
            buckets: vec![0; BUCKETS],
        }
    }

    pub fn add(&mut self, key: &[u8], fingerprint: u64) {
        self.buckets[bucket_of(key)] ^= fingerprint;
    }

    /// One number for the whole store.
    pub fn root(&self) -> u64 {
        let mut hasher = Xxh3::new();
        for bucket in &self.buckets {
            hasher.update(&bucket.to_le_bytes());
        }
        hasher.digest()
    }

    /// Indexes of the buckets where `self` and `other` differ (all of them if the two
    /// digests do not have the same shape).
    pub fn differing_buckets(&self, other: &Digest) -> Vec<usize> {
        if self.buckets.len() != other.buckets.len() {
            return (0..self.buckets.len().max(other.buckets.len())).collect();
        }
        (0..self.buckets.len())
            .filter(|&i| self.buckets[i] != other.buckets[i])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, value: Option<&str>, version: i64) -> Entry {
        Entry {
            key: key.as_bytes().to_vec(),
            value: value.map(|v| v.as_bytes().to_vec()),
            version,
            timestamp: version,
            max_age_ms: None,
        }
    }

    #[test]
    fn fingerprints_distinguish_every_field() {
        let base = entry("k", Some("v"), 1);
        let variants = [
            entry("j", Some("v"), 1),
            entry("k", Some("w"), 1),
            entry("k", None, 1),
            entry("k", Some("v"), 2),
            Entry {
                timestamp: 5,
                ..base.clone()
            },
            Entry {
                max_age_ms: Some(1),
                ..base.clone()
            },
        ];
        for variant in variants {
            assert_ne!(fingerprint(&base), fingerprint(&variant), "{variant:?}");
        }
        assert_eq!(fingerprint(&base), fingerprint(&base.clone()));
    }

    #[test]
    fn digests_are_order_independent_and_locate_differences() {
        let entries = [
            entry("a", Some("1"), 1),
            entry("b", Some("2"), 2),
            entry("c", None, 3),
        ];
        let mut forward = Digest::empty();
        let mut backward = Digest::empty();
        for e in &entries {
            forward.add(&e.key, fingerprint(e));
        }
        for e in entries.iter().rev() {
            backward.add(&e.key, fingerprint(e));
        }
        assert_eq!(forward.root(), backward.root());
        assert!(forward.differing_buckets(&backward).is_empty());

        let mut changed = Digest::empty();
        for e in &entries[..2] {
            changed.add(&e.key, fingerprint(e));
        }
        assert_eq!(forward.differing_buckets(&changed), vec![bucket_of(b"c")]);
        assert_ne!(forward.root(), changed.root());
    }

    #[test]
    fn hashes_are_stable_across_builds() {
        // Pinned values: a change here means servers of different versions would never
        // agree on digests and would fall back to comparing every key.
        assert_eq!(bucket_of(b"worker-1"), bucket_of(b"worker-1"));
        assert_eq!(value_hash(b""), 0x99aa06d3014798d86001c324468d497f);
    }
}
