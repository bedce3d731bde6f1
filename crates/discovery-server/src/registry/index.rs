//! [`ServiceIndex`]: services by type and pool, kept in step with a store's entries.
//!
//! Java re-parses the JSON of every dynamic entry on every lookup (or serves a copy up to
//! one second stale). Here each entry's value is decoded once, when it is applied, into
//! services with their JSON already rendered; a lookup walks only the matching
//! type/pool group and filters by expiry.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use discovery_store::{Entry, Index};
use discovery_types::{is_service_id, Service, StoreName};

use super::watch::Watchers;

/// How a store encodes services in entry values (the airlift formats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueFormat {
    /// `dynamic`: the JSON array of one node's services.
    ServiceList,
    /// `static`: the JSON of one service.
    SingleService,
}

impl ValueFormat {
    /// How `store` encodes its values.
    pub fn of(store: StoreName) -> Self {
        match store {
            StoreName::Dynamic => ValueFormat::ServiceList,
            StoreName::Static => ValueFormat::SingleService,
        }
    }
}

/// Decodes an entry value into services, refusing anything an airlift client could not
/// use (a service id that is not a UUID breaks every client's lookup of that type).
pub fn decode_services(format: ValueFormat, value: &[u8]) -> Result<Vec<Service>, String> {
    let services = match format {
        ValueFormat::ServiceList => serde_json::from_slice::<Vec<Service>>(value),
        ValueFormat::SingleService => serde_json::from_slice::<Service>(value).map(|s| vec![s]),
    }
    .map_err(|e| format!("value is not a valid service {}: {e}", describe(format)))?;
    match services.iter().find(|s| !is_service_id(&s.id)) {
        Some(bad) => Err(format!("service id '{}' is not a UUID", bad.id)),
        None => Ok(services),
    }
}

fn describe(format: ValueFormat) -> &'static str {
    match format {
        ValueFormat::ServiceList => "list",
        ValueFormat::SingleService => "object",
    }
}

/// One service as a lookup needs it: its id for ordering, the key of the entry it came
/// from, its rendered JSON, and when it stops being visible.
#[derive(Debug)]
pub struct IndexedService {
    pub id: String,
    pub key: Vec<u8>,
    pub json: Box<str>,
    /// ms since the epoch, `i64::MAX` for never. Atomic so a renewal (the same value
    /// announced again, nearly every write) moves it in place without re-decoding or
    /// re-rendering anything.
    expires_at: AtomicI64,
}

impl IndexedService {
    pub fn new(id: String, key: Vec<u8>, json: Box<str>, expires_at: Option<i64>) -> Self {
        IndexedService {
            id,
            key,
            json,
            expires_at: AtomicI64::new(expires_at.unwrap_or(i64::MAX)),
        }
    }

    pub fn expires_at(&self) -> Option<i64> {
        Some(self.expires_at.load(Ordering::Relaxed)).filter(|&at| at != i64::MAX)
    }

    pub fn is_live(&self, now_ms: i64) -> bool {
        now_ms <= self.expires_at.load(Ordering::Relaxed)
    }
}

/// Which services a lookup wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selector<'a> {
    All,
    Type(&'a str),
    TypeAndPool(&'a str, &'a str),
}

type GroupKey = (String, String);
type ServiceKey = (String, Vec<u8>);

/// Services of one store grouped by `(type, pool)` and ordered by `(id, entry key)`.
#[derive(Debug)]
pub struct ServiceIndex {
    format: ValueFormat,
    groups: BTreeMap<GroupKey, BTreeMap<ServiceKey, Arc<IndexedService>>>,
    /// Where each entry's services sit, so replacing an entry removes exactly them.
    placed: HashMap<Vec<u8>, Vec<(GroupKey, ServiceKey)>>,
    /// Increases whenever a lookup's answer may have changed other than by the passage of
    /// time: a service added, removed or changed. Renewals leave it alone, so rendered
    /// answers can be cached across them.
    content_generation: u64,
    /// Blocking lookups waiting for a group of this index to change.
    watchers: Arc<Watchers>,
}

impl ServiceIndex {
    pub fn new(format: ValueFormat) -> Self {
        ServiceIndex {
            format,
            groups: BTreeMap::new(),
            placed: HashMap::new(),
            content_generation: 0,
            watchers: Arc::default(),
        }
    }

    /// The blocking lookups waiting on this index; [`Index::update`] wakes those whose
    /// groups a change touches.
    pub fn watchers(&self) -> &Arc<Watchers> {
        &self.watchers
    }

    /// The groups `key`'s services sit in now.
    fn groups_of(&self, key: &[u8]) -> Vec<GroupKey> {
        self.placed
            .get(key)
            .into_iter()
            .flatten()
            .map(|(group, _)| group.clone())
            .collect()
    }

    /// Appends the services `selector` matches that are live at `now_ms`.
    pub fn collect(&self, selector: Selector<'_>, now_ms: i64, out: &mut Vec<Arc<IndexedService>>) {
        let live = |services: &BTreeMap<ServiceKey, Arc<IndexedService>>| {
            services
                .values()
                .filter(|s| s.is_live(now_ms))
                .cloned()
                .collect::<Vec<_>>()
        };
        match selector {
            Selector::All => self.groups.values().for_each(|g| out.extend(live(g))),
            Selector::Type(service_type) => self
                .groups
                .range((service_type.to_owned(), String::new())..)
                .take_while(|((t, _), _)| t == service_type)
                .for_each(|(_, g)| out.extend(live(g))),
            Selector::TypeAndPool(service_type, pool) => {
                if let Some(group) = self.groups.get(&(service_type.to_owned(), pool.to_owned())) {
                    out.extend(live(group));
                }
            }
        }
    }

    pub fn content_generation(&self) -> u64 {
        self.content_generation
    }

    /// Moves the expiry of `key`'s services; they stay where they are.
    fn renew(&mut self, key: &[u8], expires_at: Option<i64>) {
        for (group_key, service_key) in self.placed.get(key).into_iter().flatten() {
            if let Some(service) = self.groups.get(group_key).and_then(|g| g.get(service_key)) {
                service
                    .expires_at
                    .store(expires_at.unwrap_or(i64::MAX), Ordering::Relaxed);
            }
        }
    }

    fn remove_key(&mut self, key: &[u8]) {
        for (group_key, service_key) in self.placed.remove(key).unwrap_or_default() {
            if let Some(group) = self.groups.get_mut(&group_key) {
                group.remove(&service_key);
                if group.is_empty() {
                    self.groups.remove(&group_key);
                }
            }
        }
    }

    fn insert_entry(&mut self, entry: &Entry, value: &[u8]) {
        let services = match decode_services(self.format, value) {
            Ok(services) => services,
            Err(problem) => {
                // Only reachable for data written by another implementation or an older
                // version: both HTTP write paths validate values first.
                tracing::warn!(key = %String::from_utf8_lossy(&entry.key), %problem,
                    "entry holds no usable services; it is hidden from lookups");
                return;
            }
        };
        let mut placed = Vec::with_capacity(services.len());
        for service in services {
            let json = match serde_json::to_string(&service) {
                Ok(json) => json.into_boxed_str(),
                Err(_) => continue, // a struct of strings always serialises
            };
            let group_key = (service.service_type, service.pool);
            let service_key = (service.id.clone(), entry.key.clone());
            let indexed = Arc::new(IndexedService::new(
                service.id,
                entry.key.clone(),
                json,
                entry.expires_at(),
            ));
            self.groups
                .entry(group_key.clone())
                .or_default()
                .insert(service_key.clone(), indexed);
            placed.push((group_key, service_key));
        }
        self.placed.insert(entry.key.clone(), placed);
    }
}

/// True when `new` only renews `old`: the same value, visible before and after, and
/// not expiring sooner (so a cached answer's validity cannot shrink).
fn is_renewal(old: Option<&Entry>, new: Option<&Entry>, now_ms: i64) -> bool {
    match (old, new) {
        (Some(old), Some(new)) => {
            old.value.is_some()
                && old.value == new.value
                && old.is_live(now_ms)
                && new.is_live(now_ms)
                && new.expires_at().unwrap_or(i64::MAX) >= old.expires_at().unwrap_or(i64::MAX)
        }
        _ => false,
    }
}

impl Index for ServiceIndex {
    fn update(&mut self, key: &[u8], old: Option<&Entry>, new: Option<&Entry>, now_ms: i64) {
        if is_renewal(old, new, now_ms) {
            self.renew(key, new.and_then(Entry::expires_at));
            return;
        }
        self.content_generation += 1;
        // Only worth collecting when a lookup waits: nearly always nobody does.
        let watched = self.watchers.is_watched();
        let mut touched = if watched {
            self.groups_of(key)
        } else {
            Vec::new()
        };
        self.remove_key(key);
        if let Some(entry) = new {
            if let Some(value) = &entry.value {
                self.insert_entry(entry, value);
            }
        }
        if watched {
            touched.extend(self.groups_of(key));
            self.watchers
                .changed(touched.iter().map(|(t, p)| (t.as_str(), p.as_str())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, services: &[(&str, &str, &str)], max_age_ms: Option<i64>) -> Entry {
        let services: Vec<Service> = services
            .iter()
            .map(|(id, t, p)| Service {
                id: (*id).into(),
                node_id: Some(key.into()),
                service_type: (*t).into(),
                pool: (*p).into(),
                location: Some(format!("/{key}")),
                state: None,
                properties: Default::default(),
            })
            .collect();
        Entry {
            key: key.as_bytes().to_vec(),
            value: Some(serde_json::to_vec(&services).unwrap()),
            version: 1000,
            timestamp: 1000,
            max_age_ms,
        }
    }

    const A: &str = "00000000-0000-4000-8000-00000000000a";
    const B: &str = "00000000-0000-4000-8000-00000000000b";
    const C: &str = "00000000-0000-4000-8000-00000000000c";

    fn ids(index: &ServiceIndex, selector: Selector<'_>, now: i64) -> Vec<String> {
        let mut out = Vec::new();
        index.collect(selector, now, &mut out);
        out.iter().map(|s| s.id.clone()).collect()
    }

    #[test]
    fn groups_by_type_and_pool_and_replaces_per_entry() {
        let mut index = ServiceIndex::new(ValueFormat::ServiceList);
        let red = entry("red", &[(B, "storage", "alpha"), (A, "web", "alpha")], None);
        let blue = entry("blue", &[(C, "storage", "beta")], None);
        index.update(b"red", None, Some(&red), 0);
        index.update(b"blue", None, Some(&blue), 0);
        assert_eq!(
            ids(&index, Selector::TypeAndPool("storage", "alpha"), 0),
            [B]
        );
        assert_eq!(ids(&index, Selector::Type("storage"), 0), [B, C]);
        assert_eq!(ids(&index, Selector::Type("stor"), 0), Vec::<String>::new());
        assert_eq!(ids(&index, Selector::All, 0).len(), 3);

        let red2 = entry("red", &[(C, "web", "alpha")], None);
        index.update(b"red", Some(&red), Some(&red2), 0);
        assert_eq!(
            ids(&index, Selector::TypeAndPool("storage", "alpha"), 0),
            Vec::<String>::new()
        );
        assert_eq!(ids(&index, Selector::Type("web"), 0), [C]);

        let tombstone = Entry {
            value: None,
            ..red2.clone()
        };
        index.update(b"red", Some(&red2), Some(&tombstone), 0);
        index.update(b"blue", Some(&blue), None, 0);
        assert!(index.groups.is_empty() && index.placed.is_empty());
    }

    #[test]
    fn expired_services_are_filtered_at_read_time() {
        let mut index = ServiceIndex::new(ValueFormat::ServiceList);
        index.update(
            b"n",
            None,
            Some(&entry("n", &[(A, "t", "p")], Some(500))),
            0,
        );
        assert_eq!(ids(&index, Selector::All, 1500), [A]);
        assert!(ids(&index, Selector::All, 1501).is_empty());
    }

    #[test]
    fn undecodable_values_and_non_uuid_ids_are_hidden() {
        let mut index = ServiceIndex::new(ValueFormat::ServiceList);
        let garbage = Entry {
            value: Some(b"not json".to_vec()),
            ..entry("g", &[], None)
        };
        index.update(b"g", None, Some(&garbage), 0);
        index.update(b"u", None, Some(&entry("u", &[("u1", "t", "p")], None)), 0);
        assert!(ids(&index, Selector::All, 0).is_empty());
        assert!(decode_services(ValueFormat::ServiceList, b"[{\"id\":\"u1\"}]").is_err());
    }
}
