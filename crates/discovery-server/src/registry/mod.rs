//! The discovery domain: announcements in, lookups out, over the two stores.
//!
//! * A dynamic announcement is one entry in the `dynamic` store: key = node id, value =
//!   the JSON array of the node's services, with the `discovery.max-age` time-to-live.
//! * A static announcement is one entry in the `static` store: key = a generated service
//!   id, value = the JSON of that service, no time-to-live.
//!
//! * A Trino 477+ announce-mode node (`POST /v1/announce`) is a dynamic entry like any
//!   other, built from the facts of its `/v1/info` ([`announce_mode`]).
//!
//! These are airlift's formats exactly, so `/v1/store` dumps and replicated batches are
//! interchangeable with Java servers. Nothing here knows about HTTP.

pub mod announce_mode;
mod cache;
mod index;
mod lookup;
mod wire;

use std::sync::Arc;

use discovery_replicator::Responder;
use discovery_store::{Store, StoreError};
use discovery_types::{DynamicAnnouncement, Service, StaticAnnouncement};

pub use announce_mode::AnnouncedOutcome;
pub use index::{decode_services, IndexedService, Selector, ServiceIndex, ValueFormat};
pub use lookup::Lookup;
pub use wire::{ServiceRules, StoreName};

/// A store of services.
pub type ServiceStore = Store<ServiceIndex>;

/// The answering side of replication over both stores, with [`ServiceRules`].
pub type ServiceResponder = Responder<ServiceIndex>;

/// Both stores plus the rules that connect announcements to entries, and the one way
/// entries from elsewhere enter them (the responder).
#[derive(Debug)]
pub struct Registry {
    environment: String,
    dynamic: Arc<ServiceStore>,
    static_services: Arc<ServiceStore>,
    responder: Arc<ServiceResponder>,
    /// Time-to-live of dynamic announcements (`discovery.max-age`).
    announcement_max_age_ms: i64,
    cache: cache::LookupCache,
}

impl Registry {
    pub fn new(
        environment: impl Into<String>,
        dynamic: Arc<ServiceStore>,
        static_services: Arc<ServiceStore>,
        announcement_max_age_ms: i64,
    ) -> Self {
        let responder = responder_for(&dynamic, &static_services, announcement_max_age_ms);
        Registry {
            environment: environment.into(),
            dynamic,
            static_services,
            responder,
            announcement_max_age_ms,
            cache: cache::LookupCache::default(),
        }
    }

    /// Lets dynamic entries from elsewhere carry a max age up to `max_age_ms` when that is
    /// longer than `discovery.max-age` (announce mode's `trino-announce.max-age`).
    pub fn allowing_max_age(mut self, max_age_ms: i64) -> Self {
        let longest = max_age_ms.max(self.announcement_max_age_ms);
        self.responder = responder_for(&self.dynamic, &self.static_services, longest);
        self
    }

    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// Where peers' pushes, fetched entries and `/v1/store` batches enter the stores.
    pub fn responder(&self) -> &Arc<ServiceResponder> {
        &self.responder
    }

    pub fn store(&self, name: StoreName) -> &Arc<ServiceStore> {
        match name {
            StoreName::Dynamic => &self.dynamic,
            StoreName::Static => &self.static_services,
        }
    }

    /// Replaces everything `node_id` offers with `announcement` (airlift: no merging).
    pub fn announce(
        &self,
        node_id: &str,
        announcement: DynamicAnnouncement,
    ) -> Result<(), StoreError> {
        let services = announcement.into_services(node_id);
        let value = encode(&services);
        self.dynamic.put(
            node_id.as_bytes().to_vec(),
            value,
            Some(self.announcement_max_age_ms),
        )?;
        Ok(())
    }

    /// Removes `node_id`'s services with a tombstone, whether or not it announced.
    pub fn unannounce(&self, node_id: &str) -> Result<(), StoreError> {
        self.dynamic.delete(node_id.as_bytes().to_vec())?;
        Ok(())
    }

    /// Stores a new static service under a fresh UUID and returns it. The static store
    /// flushes to disk before this returns.
    pub fn add_static(&self, announcement: StaticAnnouncement) -> Result<Service, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        let service = announcement.into_service(id.clone());
        self.static_services
            .put(id.into_bytes(), encode(&service), None)?;
        Ok(service)
    }

    /// Deletes a static service with a tombstone, whether or not it exists here.
    pub fn delete_static(&self, service_id: &str) -> Result<(), StoreError> {
        self.static_services
            .delete(service_id.as_bytes().to_vec())?;
        Ok(())
    }

    /// The lookup response for `selector`: dynamic and static services merged.
    pub fn lookup(&self, selector: Selector<'_>) -> Lookup {
        let now = self.dynamic.now_ms();
        // Read the generations before rendering: a write racing the render then shows as
        // a newer generation on the next lookup, never as a stale cached answer.
        let generations = (
            self.dynamic.read_index(ServiceIndex::content_generation),
            self.static_services
                .read_index(ServiceIndex::content_generation),
        );
        if let Some(cached) = self.cache.get(selector, generations, now) {
            return cached;
        }
        let mut services = Vec::new();
        self.dynamic
            .read_index(|index| index.collect(selector, now, &mut services));
        let dynamic_count = services.len();
        self.static_services
            .read_index(|index| index.collect(selector, now, &mut services));
        let lookup = Lookup::render(&self.environment, services, dynamic_count);
        self.cache.put(selector, generations, lookup.clone());
        lookup
    }

    /// `GET /v1/announcement/static`: static services only.
    pub fn static_services(&self) -> Lookup {
        let now = self.static_services.now_ms();
        let mut services = Vec::new();
        self.static_services
            .read_index(|index| index.collect(Selector::All, now, &mut services));
        Lookup::render(&self.environment, services, 0)
    }
}

fn responder_for(
    dynamic: &Arc<ServiceStore>,
    static_services: &Arc<ServiceStore>,
    max_dynamic_age_ms: i64,
) -> Arc<ServiceResponder> {
    let rules = ServiceRules { max_dynamic_age_ms };
    Arc::new(
        Responder::new(Arc::new(rules))
            .with_store(StoreName::Dynamic.as_str(), Arc::clone(dynamic))
            .with_store(StoreName::Static.as_str(), Arc::clone(static_services)),
    )
}

/// Values are compact JSON, as airlift writes them.
fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Services are plain strings and string maps: serialising them cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use discovery_store::{ManualClock, MemoryBackend, StoreConfig};

    const T0: i64 = 1_800_000_000_000;

    /// A registry over in-memory stores on `clock`, environment `test`, 30 s max age.
    pub(crate) fn registry(clock: &Arc<ManualClock>) -> Registry {
        let open = |name: StoreName| {
            Arc::new(
                Store::open(
                    StoreConfig::new(name.as_str()),
                    Box::new(MemoryBackend::new()),
                    clock.clone(),
                    ServiceIndex::new(ValueFormat::of(name)),
                )
                .expect("a memory store opens"),
            )
        };
        Registry::new(
            "test",
            open(StoreName::Dynamic),
            open(StoreName::Static),
            30_000,
        )
    }

    fn announce(registry: &Registry, node: &str, id_suffix: u8) {
        let body = format!(
            r#"{{"environment":"test","pool":"general","services":[{{"id":"00000000-0000-4000-8000-0000000000{id_suffix:02x}","type":"trino","properties":{{}}}}]}}"#
        );
        let announcement = DynamicAnnouncement::from_json(body.as_bytes(), "test").unwrap();
        registry.announce(node, announcement).unwrap();
    }

    fn trino(registry: &Registry) -> Lookup {
        registry.lookup(Selector::TypeAndPool("trino", "general"))
    }

    #[test]
    fn renewals_keep_the_cached_answer_and_its_expiry_moves_with_them() {
        let clock = Arc::new(ManualClock::new(T0));
        let registry = registry(&clock);
        announce(&registry, "w1", 1);
        let first = trino(&registry);
        assert_eq!(first.services, 1);
        for _ in 0..5 {
            clock.advance(20_000);
            announce(&registry, "w1", 1);
            let again = trino(&registry);
            assert_eq!(again.etag, first.etag);
            assert_eq!(again.services, 1, "renewed in place, never expired");
        }
        let generation = registry
            .dynamic
            .read_index(ServiceIndex::content_generation);
        announce(&registry, "w1", 1);
        assert_eq!(
            registry
                .dynamic
                .read_index(ServiceIndex::content_generation),
            generation
        );
    }

    #[test]
    fn a_changed_announcement_or_a_new_node_changes_the_answer_at_once() {
        let clock = Arc::new(ManualClock::new(T0));
        let registry = registry(&clock);
        announce(&registry, "w1", 1);
        let one = trino(&registry);
        announce(&registry, "w2", 2);
        let two = trino(&registry);
        assert_eq!(two.services, 2);
        assert_ne!(two.etag, one.etag);
        announce(&registry, "w2", 3);
        assert_ne!(trino(&registry).etag, two.etag, "w2's service id changed");
        registry.unannounce("w2").unwrap();
        assert_eq!(trino(&registry).etag, one.etag);
    }

    #[test]
    fn an_expiring_service_leaves_the_cached_answer_and_comes_back_when_announced() {
        let clock = Arc::new(ManualClock::new(T0));
        let registry = registry(&clock);
        announce(&registry, "w1", 1);
        clock.advance(10_000);
        announce(&registry, "w2", 2);
        assert_eq!(trino(&registry).services, 2);
        clock.advance(20_001); // w1 expired; w2 has 10 s left
        assert_eq!(trino(&registry).services, 1);
        announce(&registry, "w1", 1); // same value, after expiry: not a renewal
        assert_eq!(trino(&registry).services, 2);
    }
}
