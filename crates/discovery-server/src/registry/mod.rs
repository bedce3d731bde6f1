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
mod watch;
mod wire;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use discovery_replicator::Responder;
use discovery_store::{Store, StoreError};
use discovery_types::{DynamicAnnouncement, Service, StaticAnnouncement};

pub use announce_mode::AnnouncedOutcome;
pub use index::{decode_services, IndexedService, Selector, ServiceIndex, ValueFormat};
pub use lookup::Lookup;
pub use watch::Watchers;
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
    /// Blocking lookups: the limits and the shutdown signal, set once the node serves.
    watch: OnceLock<WatchSettings>,
}

/// How blocking lookups are bounded.
#[derive(Debug)]
struct WatchSettings {
    /// `discovery.watch.max-wait`: the longest `wait` honoured.
    max_wait: Duration,
    /// Most lookups held at once (`http-server.max-connections`; HTTP/2 carries several
    /// per connection).
    max_watchers: usize,
    /// Turns true on shutdown: held lookups are answered at once, so a drain does not
    /// wait for them.
    shutdown: tokio::sync::watch::Receiver<bool>,
}

/// `discovery.watch.max-wait` until [`Registry::start_watches`] says otherwise.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(60);

/// Most lookups held at once until [`Registry::start_watches`] says otherwise.
const DEFAULT_MAX_WATCHERS: usize = 10_000;

/// Why a blocking lookup is not held.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    #[error("too many blocking lookups held at once ({limit}); retry later")]
    TooManyWatchers { limit: usize },
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
            watch: OnceLock::new(),
        }
    }

    /// Sets the bounds of blocking lookups and the signal that ends them (once; later
    /// calls change nothing): `max_wait` caps `?wait=`, at most `max_watchers` are held
    /// at once, and when `shutdown` turns true every held lookup is answered at once.
    pub fn start_watches(
        &self,
        max_wait: Duration,
        max_watchers: usize,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let _ = self.watch.set(WatchSettings {
            max_wait,
            max_watchers,
            shutdown,
        });
    }

    /// The longest a blocking lookup is held (`discovery.watch.max-wait`).
    pub fn max_wait(&self) -> Duration {
        self.watch.get().map_or(DEFAULT_MAX_WAIT, |w| w.max_wait)
    }

    /// How many blocking lookups are held now.
    pub fn watching(&self) -> usize {
        self.watchers(StoreName::Dynamic).count()
    }

    fn watchers(&self, store: StoreName) -> Arc<Watchers> {
        self.store(store)
            .read_index(|index| Arc::clone(index.watchers()))
    }

    /// A blocking lookup: the answer for `selector` as soon as `unchanged` says it is no
    /// longer the one the client holds, or the current answer once `deadline` passes (or
    /// the node shuts down). Wakes on changes of what `selector` covers in either store,
    /// and when a listed service expires; a wake that leaves the answer as the client has
    /// it (a renewal) keeps waiting.
    pub async fn wait_for_change(
        &self,
        selector: Selector<'_>,
        deadline: tokio::time::Instant,
        unchanged: impl Fn(&Lookup) -> bool,
    ) -> Result<Lookup, WatchError> {
        let (dynamic, static_services) = (
            self.watchers(StoreName::Dynamic),
            self.watchers(StoreName::Static),
        );
        let mut shutdown = self.watch.get().map(|w| w.shutdown.clone());
        let limit = self
            .watch
            .get()
            .map_or(DEFAULT_MAX_WATCHERS, |w| w.max_watchers);
        let dynamic_watch = dynamic.watch(selector);
        if dynamic.count() > limit {
            return Err(WatchError::TooManyWatchers { limit });
        }
        let static_watch = static_services.watch(selector);
        loop {
            // Registered before reading, so a change between the read and the wait wakes.
            let mut dynamic_changed = std::pin::pin!(dynamic_watch.notified());
            let mut static_changed = std::pin::pin!(static_watch.notified());
            dynamic_changed.as_mut().enable();
            static_changed.as_mut().enable();
            let lookup = self.lookup(selector);
            let stopping = shutdown
                .as_ref()
                .is_some_and(|s| *s.borrow() || s.has_changed().is_err());
            if !unchanged(&lookup) || stopping || tokio::time::Instant::now() >= deadline {
                return Ok(lookup);
            }
            let wake = match lookup.valid_until {
                // The answer changes 1 ms after its first service's expiry time.
                Some(until) => {
                    let ms = until
                        .saturating_add(1)
                        .saturating_sub(self.dynamic.now_ms());
                    let delay = Duration::from_millis(u64::try_from(ms).unwrap_or(0).max(1));
                    deadline.min(tokio::time::Instant::now() + delay)
                }
                None => deadline,
            };
            let stop = async {
                match shutdown.as_mut() {
                    // A dropped sender is a node going away, like a shutdown.
                    Some(s) => {
                        if s.wait_for(|stopping| *stopping).await.is_err() {
                            *s = tokio::sync::watch::channel(true).1;
                        }
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = dynamic_changed => {}
                _ = static_changed => {}
                _ = tokio::time::sleep_until(wake) => {}
                _ = stop => {}
            }
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

    fn announce_type(registry: &Registry, node: &str, service_type: &str, id_suffix: u8) {
        let body = format!(
            r#"{{"environment":"test","pool":"general","services":[{{"id":"00000000-0000-4000-8000-0000000000{id_suffix:02x}","type":"{service_type}","properties":{{}}}}]}}"#
        );
        let announcement = DynamicAnnouncement::from_json(body.as_bytes(), "test").unwrap();
        registry.announce(node, announcement).unwrap();
    }

    #[tokio::test]
    async fn a_blocking_lookup_ends_on_a_change_of_what_it_watches_only() {
        use futures_util::FutureExt;
        let clock = Arc::new(ManualClock::new(T0));
        let registry = registry(&clock);
        announce(&registry, "w1", 1);
        let held = trino(&registry).etag;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        let mut waiting = Box::pin(registry.wait_for_change(
            Selector::TypeAndPool("trino", "general"),
            deadline,
            |l| l.etag == held,
        ));
        assert!(
            (&mut waiting).now_or_never().is_none(),
            "nothing changed yet"
        );
        assert_eq!(registry.watching(), 1);

        announce_type(&registry, "p1", "presto", 2);
        announce(&registry, "w1", 1); // a renewal: same answer
        assert!(
            (&mut waiting).now_or_never().is_none(),
            "another type and a renewal leave it waiting"
        );

        announce(&registry, "w2", 3);
        let changed = (&mut waiting)
            .now_or_never()
            .expect("a new trino service ends the wait")
            .unwrap();
        assert_eq!(changed.services, 2);
        assert_ne!(changed.etag, held);
        drop(waiting);
        assert_eq!(registry.watching(), 0, "the watcher left");
    }

    #[tokio::test]
    async fn a_blocking_lookup_past_its_deadline_or_its_node_shutting_down_answers_unchanged() {
        use futures_util::FutureExt;
        let clock = Arc::new(ManualClock::new(T0));
        let registry = registry(&clock);
        announce(&registry, "w1", 1);
        let held = trino(&registry).etag;
        let selector = Selector::TypeAndPool("trino", "general");
        let past = tokio::time::Instant::now();
        let answer = registry
            .wait_for_change(selector, past, |l| l.etag == held)
            .await
            .unwrap();
        assert_eq!(answer.etag, held);

        let (stop, stopped) = tokio::sync::watch::channel(false);
        registry.start_watches(Duration::from_secs(60), 1, stopped);
        let far = tokio::time::Instant::now() + Duration::from_secs(600);
        let mut waiting = Box::pin(registry.wait_for_change(selector, far, |l| l.etag == held));
        assert!((&mut waiting).now_or_never().is_none(), "held");
        let second = registry
            .wait_for_change(selector, far, |l| l.etag == held)
            .await;
        stop.send(true).unwrap();
        assert_eq!(
            waiting.await.unwrap().etag,
            held,
            "answered unchanged at shutdown"
        );
        assert_eq!(
            second.unwrap_err(),
            WatchError::TooManyWatchers { limit: 1 },
            "one watcher allowed"
        );
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
