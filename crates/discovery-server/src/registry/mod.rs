//! The discovery domain: announcements in, lookups out, over the two stores.
//!
//! * A dynamic announcement is one entry in the `dynamic` store: key = node id, value =
//!   the JSON array of the node's services, with the `discovery.max-age` time-to-live.
//! * A static announcement is one entry in the `static` store: key = a generated service
//!   id, value = the JSON of that service, no time-to-live.
//!
//! These are airlift's formats exactly, so `/v1/store` dumps and replicated batches are
//! interchangeable with Java servers. Nothing here knows about HTTP.

mod index;
mod lookup;
mod wire;

use std::sync::Arc;

use discovery_store::{Store, StoreError};
use discovery_types::{DynamicAnnouncement, Service, StaticAnnouncement};

pub use index::{decode_services, IndexedService, Selector, ServiceIndex, ValueFormat};
pub use lookup::Lookup;
pub use wire::{validate_entry, BatchError, StoreName};

/// A store of services.
pub type ServiceStore = Store<ServiceIndex>;

/// Both stores plus the rules that connect announcements to entries.
#[derive(Debug)]
pub struct Registry {
    environment: String,
    dynamic: Arc<ServiceStore>,
    static_services: Arc<ServiceStore>,
    /// Time-to-live of dynamic announcements (`discovery.max-age`).
    announcement_max_age_ms: i64,
}

impl Registry {
    pub fn new(
        environment: impl Into<String>,
        dynamic: Arc<ServiceStore>,
        static_services: Arc<ServiceStore>,
        announcement_max_age_ms: i64,
    ) -> Self {
        Registry {
            environment: environment.into(),
            dynamic,
            static_services,
            announcement_max_age_ms,
        }
    }

    pub fn environment(&self) -> &str {
        &self.environment
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
        let mut services = Vec::new();
        self.dynamic
            .read_index(|index| index.collect(selector, now, &mut services));
        let dynamic_count = services.len();
        self.static_services
            .read_index(|index| index.collect(selector, now, &mut services));
        Lookup::render(&self.environment, services, dynamic_count)
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

/// Values are compact JSON, as airlift writes them.
fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Services are plain strings and string maps: serialising them cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}
