//! Versioned, expiring key-value stores: the data layer of a discovery node.
//!
//! A node keeps two named stores, `dynamic` (node announcements, with a time-to-live) and
//! `static` (operator-managed services, no time-to-live). Both are a [`Store`]: a map of
//! [`Entry`] values held in memory for reads and written through to a [`Backend`]
//! (sled on disk, or memory for tests and simulation).
//!
//! The invariants every part of the system relies on:
//!
//! * **One mutation path.** Local writes, replicated batches and the initial load all go
//!   through the same conflict rule ([`Entry::supersedes`]) under one lock, which also
//!   updates the caller's [`Index`]; a reader never sees the map and the index disagree.
//! * **A total order on entries.** Higher version wins; equal versions fall back to a
//!   deterministic comparison of the content, so replicas that receive the same entries in
//!   any order end identical (Java keeps whichever arrived first).
//! * **Local versions strictly increase per key**: `max(now_ms, last + 1)`, so a PUT and a
//!   DELETE in the same millisecond are both kept, in order.
//! * **Expiry is a pure function of the entry and the clock** ([`Entry::is_expired`]);
//!   time comes from an injected [`Clock`] so tests control it.
//! * Every applied change is published on a change feed ([`Store::subscribe`]) that the
//!   replicator consumes; garbage collection is not a change.

pub mod backend;
pub mod clock;
mod codec;
pub mod entry;
pub mod error;
pub mod fingerprint;
pub mod gc;
pub mod store;

pub use backend::{Backend, Database, MemoryBackend, SledBackend, StorageHealth};
pub use clock::{Clock, ManualClock, SystemClock, TokioClock};
pub use entry::Entry;
pub use error::StoreError;
pub use fingerprint::Digest;
pub use store::{
    ApplyReport, Change, Index, Origin, Renewal, Store, StoreConfig, StoreUsage, Summary, GC_CHUNK,
};
