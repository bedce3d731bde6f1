//! Rendered lookup answers, reused until a write changes what they list or one of the
//! listed services expires.
//!
//! Nearly every write to a discovery server is a renewal (a node announcing the same
//! services again), and renewals do not change any answer: the index's content generation
//! stays put, so a cached answer (its body and its ETag) is served again. A 304 for an
//! unchanged list then costs a hash-map lookup instead of rendering the whole list.

use std::collections::HashMap;
use std::sync::Mutex;

use super::index::Selector;
use super::lookup::Lookup;

/// At most this many distinct selectors are cached: the type and pool in a lookup come
/// from clients, so the cache must not grow with whatever they send.
const MAX_CACHED: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum CacheKey {
    All,
    Type(String),
    TypeAndPool(String, String),
}

impl From<Selector<'_>> for CacheKey {
    fn from(selector: Selector<'_>) -> Self {
        match selector {
            Selector::All => CacheKey::All,
            Selector::Type(t) => CacheKey::Type(t.to_owned()),
            Selector::TypeAndPool(t, p) => CacheKey::TypeAndPool(t.to_owned(), p.to_owned()),
        }
    }
}

#[derive(Debug)]
struct Cached {
    /// Content generations of the dynamic and static indexes the answer was rendered at.
    generations: (u64, u64),
    lookup: Lookup,
}

#[derive(Debug, Default)]
pub(crate) struct LookupCache {
    entries: Mutex<HashMap<CacheKey, Cached>>,
}

impl LookupCache {
    /// The cached answer for `selector`, if it was rendered at `generations` and none of
    /// its services has expired by `now_ms`.
    pub fn get(
        &self,
        selector: Selector<'_>,
        generations: (u64, u64),
        now_ms: i64,
    ) -> Option<Lookup> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&CacheKey::from(selector))
            .filter(|c| c.generations == generations)
            .filter(|c| c.lookup.valid_until.is_none_or(|until| now_ms <= until))
            .map(|c| c.lookup.clone())
    }

    pub fn put(&self, selector: Selector<'_>, generations: (u64, u64), lookup: Lookup) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_CACHED {
            entries.clear();
        }
        entries.insert(
            CacheKey::from(selector),
            Cached {
                generations,
                lookup,
            },
        );
    }
}
