//! Prometheus metrics for `GET /metrics`, in the Prometheus text exposition format
//! (version 0.0.4), encoded by `prometheus-client`.
//!
//! Why two halves: only the per-request HTTP counters, the request-duration histogram and
//! the announcement results are recorded as requests happen (in the request log
//! middleware: a few atomic adds). Everything else is read at scrape time from the state
//! the node keeps anyway (store usage, readiness, the replicator's per-peer status, the
//! authenticator's refusal counts), so no hot path pays for it and the numbers cannot
//! drift from what `/v1/replication/status` reports.
//!
//! Label values are bounded by construction: `route` is a route template of the router
//! (or `unmatched`), `method` one of a fixed set, `peer` a node id from the service
//! inventory, `store` one of the configured stores, and `reason`/`result`/`state`/
//! `direction` fixed sets. Nothing a client sends becomes a label value.
//!
//! The names are a contract (dashboards and tests rely on them); README.md lists them.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::http::Method;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    prometheus_text, DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric,
    LabelValueEncoder,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry as MetricRegistry;

use crate::authenticator::Authenticator;
use crate::readiness::Readiness;
use crate::registry::{Registry, StoreName};

/// The `Content-Type` of a scrape.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// The `route` label of requests that matched no route (404s for unknown paths): one
/// value, whatever the path, so scanners cannot grow the series count.
pub const UNMATCHED: &str = "unmatched";

/// Upper bounds of the request-duration buckets, in seconds: from well under a
/// millisecond (a renewal is a few hundred µs) to a 10 s stall.
const DURATION_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
];

/// A route template shared by every series of that route: an `Arc` interned once per
/// template, so labelling a request allocates nothing, and compared and hashed by pointer
/// (interning makes that the same as by text), so the counter lookup does not hash the
/// text again.
#[derive(Clone, Debug)]
struct RouteLabel(Arc<str>);

impl PartialEq for RouteLabel {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for RouteLabel {}

impl Hash for RouteLabel {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::ptr::hash(Arc::as_ptr(&self.0).cast::<u8>(), state);
    }
}

/// What a route's requests record into, resolved once per route template.
#[derive(Debug, Clone)]
struct RouteMetrics {
    label: RouteLabel,
    duration: Histogram,
}

/// The announcement results, created up front: every series exists from the start (a
/// dashboard's rate is 0, not missing) and counting needs no lookup.
#[derive(Debug)]
struct AnnouncementCounters {
    accepted: Counter,
    refused: Counter,
    unauthorized: Counter,
    unavailable: Counter,
}

impl EncodeLabelValue for RouteLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, &self.0)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: RouteLabel,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: RouteLabel,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// The metrics recorded as requests happen, and the encoder of a scrape.
#[derive(Debug)]
pub struct Metrics {
    registry: MetricRegistry,
    requests: Family<HttpLabels, Counter>,
    durations: Family<RouteLabels, Histogram>,
    announcements: AnnouncementCounters,
    /// Route templates seen so far, bounded by the router's routes (plus `unmatched`).
    routes: RwLock<HashMap<Arc<str>, RouteMetrics>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Where the scrape-time half reads from: the node's own state.
#[derive(Debug, Clone)]
pub struct Sources {
    pub registry: Arc<Registry>,
    pub readiness: Arc<Readiness>,
    pub replicator: Option<discovery_replicator::ReplicatorStatus>,
    pub auth: Arc<Authenticator>,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = MetricRegistry::default();
        let requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "discovery_http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        let durations = Family::<RouteLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(DURATION_BUCKETS)) as fn() -> Histogram,
        );
        registry.register(
            "discovery_http_request_duration_seconds",
            "Time from receiving a request to its response headers, by route template",
            durations.clone(),
        );
        let announcements = Family::<ResultLabels, Counter>::default();
        registry.register(
            "discovery_announcements",
            "Announcements (PUT /v1/announcement/{node_id}, POST /v1/announce) by result: \
             accepted, refused (bad input), unauthorized (401/403), unavailable (503)",
            announcements.clone(),
        );
        let result = |result: &'static str| {
            announcements
                .get_or_create(&ResultLabels { result })
                .clone()
        };
        let announcements = AnnouncementCounters {
            accepted: result("accepted"),
            refused: result("refused"),
            unauthorized: result("unauthorized"),
            unavailable: result("unavailable"),
        };
        Metrics {
            registry,
            requests,
            durations,
            announcements,
            routes: RwLock::new(HashMap::new()),
        }
    }

    /// Records one answered request. `route` is the matched route template, `None` for
    /// a path no route matched. A few atomic adds and two map lookups: the announce path
    /// calls it for every renewal.
    pub fn observe(&self, route: Option<&str>, method: &Method, status: u16, elapsed: Duration) {
        let counters = &self.announcements;
        match route.and_then(|r| announcement_result(method, r, status)) {
            Some("accepted") => counters.accepted.inc(),
            Some("refused") => counters.refused.inc(),
            Some("unauthorized") => counters.unauthorized.inc(),
            Some(_) => counters.unavailable.inc(),
            None => 0,
        };
        let route = route.unwrap_or(UNMATCHED);
        let record = |known: &RouteMetrics| {
            known.duration.observe(elapsed.as_secs_f64());
            self.requests
                .get_or_create(&HttpLabels {
                    route: known.label.clone(),
                    method: method_label(method),
                    status,
                })
                .inc();
        };
        if let Some(known) = self
            .routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(route)
        {
            return record(known);
        }
        record(&self.intern(route));
    }

    /// The route's label and histogram, created on its first request.
    fn intern(&self, route: &str) -> RouteMetrics {
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        if let Some(known) = routes.get(route) {
            return known.clone();
        }
        let label = RouteLabel(Arc::from(route));
        let duration = self
            .durations
            .get_or_create(&RouteLabels {
                route: label.clone(),
            })
            .clone();
        let metrics = RouteMetrics { label, duration };
        routes.insert(Arc::clone(&metrics.label.0), metrics.clone());
        metrics
    }

    /// The whole exposition: the recorded metrics, then the node's state read now.
    pub fn render(&self, sources: &Sources) -> Result<String, std::fmt::Error> {
        let mut text = String::with_capacity(8 * 1024);
        prometheus_text::encode(&mut text, &self.registry)?;
        // A registry per scrape holds the collector, so the node's state need not exist
        // when the recorded half is created (the router owns that half).
        let mut scrape = MetricRegistry::default();
        scrape.register_collector(Box::new(NodeCollector(sources.clone())));
        prometheus_text::encode(&mut text, &scrape)?;
        Ok(text)
    }
}

/// The `method` label: the standard methods, everything else as `other` (a client can
/// send any token as a method).
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// The `result` of an announcement, `None` for requests that are not announcements: a
/// node announcing (`PUT /v1/announcement/{node_id}`, also for the node called `static`)
/// or a Trino announce-mode node (`POST /v1/announce`).
pub fn announcement_result(method: &Method, route: &str, status: u16) -> Option<&'static str> {
    let announcing = match route {
        "/v1/announcement/{node_id}" | "/v1/announcement/static" => method == Method::PUT,
        "/v1/announce" => method == Method::POST,
        _ => false,
    };
    if !announcing {
        return None;
    }
    Some(match status {
        200..=299 => "accepted",
        401 | 403 => "unauthorized",
        500..=599 => "unavailable",
        _ => "refused",
    })
}

/// Reads the node's state at scrape time.
#[derive(Debug)]
struct NodeCollector(Sources);

type Labels<'a, const N: usize> = [(&'static str, &'a str); N];

fn counters<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (L, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in rows {
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauges<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (L, f64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in rows {
        ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn ms_to_seconds(ms: f64) -> f64 {
    ms / 1000.0
}

impl Collector for NodeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let sources = &self.0;
        let stores: Vec<_> = StoreName::ALL
            .iter()
            .map(|&name| (name.as_str(), Arc::clone(sources.registry.store(name))))
            .collect();
        let usage: Vec<_> = stores
            .iter()
            .map(|(name, store)| (*name, store.usage()))
            .collect();
        gauges(
            &mut encoder,
            "discovery_store_entries",
            "Entries held, by store and state (live: holding a value, expired ones not yet \
             collected included; tombstone: deletions kept for replication)",
            usage.iter().flat_map(|(store, usage)| {
                [
                    ([("store", *store), ("state", "live")], usage.values as f64),
                    (
                        [("store", *store), ("state", "tombstone")],
                        usage.tombstones as f64,
                    ),
                ]
            }),
        )?;
        gauges(
            &mut encoder,
            "discovery_store_bytes",
            "Key and value bytes of the live entries, by store (what store.max-bytes limits)",
            usage
                .iter()
                .map(|(store, usage)| ([("store", *store)], usage.value_bytes as f64)),
        )?;
        let refused = |total: fn(&crate::registry::ServiceStore) -> u64| {
            stores.iter().map(|(_, store)| total(store)).sum::<u64>()
        };
        counters(
            &mut encoder,
            "discovery_refused_entries",
            "Entries from elsewhere (peers, POST /v1/store) refused, by reason: future \
             (stamped too far ahead), full (store full), invalid (failed validation)",
            [
                (
                    [("reason", "future")],
                    refused(|s| s.refused_future_total()),
                ),
                ([("reason", "full")], refused(|s| s.refused_full_total())),
                (
                    [("reason", "invalid")],
                    refused(|s| s.refused_invalid_total()),
                ),
            ],
        )?;
        gauges(
            &mut encoder,
            "discovery_ready",
            "1 while /v1/health/ready answers 200 (lookups are answered), else 0",
            [(
                [] as Labels<0>,
                if sources.readiness.is_ready() {
                    1.0
                } else {
                    0.0
                },
            )],
        )?;
        let failures = sources.auth.failure_counts();
        counters(
            &mut encoder,
            "discovery_auth_failures",
            "Requests refused by authentication, by reason (missing, expired, bad_signature, \
             bad_algorithm, bad_claims, malformed, unknown_token, no_secret, forbidden)",
            failures
                .iter()
                .map(|(reason, count)| ([("reason", reason.as_str())], *count)),
        )?;
        self.encode_replication(&mut encoder)
    }
}

impl NodeCollector {
    fn encode_replication(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(replicator) = &self.0.replicator else {
            return Ok(());
        };
        let peers = replicator.peers();
        // Per peer, summed over its stores.
        let sum =
            |peer: &discovery_types::replication::PeerStatus,
             value: fn(&discovery_types::replication::PeerStoreStatus) -> u64| {
                peer.stores.iter().map(value).sum::<u64>()
            };
        counters(
            encoder,
            "discovery_replication_pushes",
            "Push requests to each peer, by result (ok, failed: retried with back-off)",
            peers.iter().flat_map(|p| {
                let peer = p.node_id.as_str();
                [
                    ([("peer", peer), ("result", "ok")], sum(p, |s| s.pushes_ok)),
                    (
                        [("peer", peer), ("result", "failed")],
                        sum(p, |s| s.push_failures),
                    ),
                ]
            }),
        )?;
        counters(
            encoder,
            "discovery_replication_changes",
            "Changes pushed to each peer, by result (entry: sent in full, renewal: sent as \
             a value hash, refused: refused by the peer, dropped: queue full, left to \
             anti-entropy)",
            peers.iter().flat_map(|p| {
                let peer = p.node_id.as_str();
                [
                    (
                        [("peer", peer), ("result", "entry")],
                        sum(p, |s| s.pushed_entries),
                    ),
                    (
                        [("peer", peer), ("result", "renewal")],
                        sum(p, |s| s.pushed_renewals),
                    ),
                    (
                        [("peer", peer), ("result", "refused")],
                        sum(p, |s| s.refused_by_peer),
                    ),
                    (
                        [("peer", peer), ("result", "dropped")],
                        sum(p, |s| s.dropped),
                    ),
                ]
            }),
        )?;
        gauges(
            encoder,
            "discovery_replication_queue_depth",
            "Changes waiting to be pushed, by peer and store",
            peers.iter().flat_map(|p| {
                p.stores.iter().map(|s| {
                    (
                        [("peer", p.node_id.as_str()), ("store", s.store.as_str())],
                        s.queued as f64,
                    )
                })
            }),
        )?;
        gauges(
            encoder,
            "discovery_replication_lag_seconds",
            "Age of the oldest local write the peer has not acknowledged (queued or in \
             flight), 0 when nothing is owed; writes dropped from a full queue are left to \
             anti-entropy and not counted",
            peers.iter().map(|p| {
                let oldest = p
                    .stores
                    .iter()
                    .filter_map(|s| s.oldest_pending_ms)
                    .max()
                    .unwrap_or(0);
                ([("peer", p.node_id.as_str())], ms_to_seconds(oldest as f64))
            }),
        )?;
        counters(
            encoder,
            "discovery_anti_entropy_rounds",
            "Anti-entropy rounds with each peer (all stores), by result (ok, failed)",
            peers.iter().flat_map(|p| {
                let peer = p.node_id.as_str();
                [
                    ([("peer", peer), ("result", "ok")], sum(p, |s| s.syncs_ok)),
                    (
                        [("peer", peer), ("result", "failed")],
                        sum(p, |s| s.syncs_failed),
                    ),
                ]
            }),
        )?;
        counters(
            encoder,
            "discovery_anti_entropy_bytes",
            "Body bytes of completed anti-entropy rounds with each peer, by direction (sent, received)",
            peers.iter().flat_map(|p| {
                let peer = p.node_id.as_str();
                [
                    (
                        [("peer", peer), ("direction", "sent")],
                        sum(p, |s| s.sync_bytes_sent),
                    ),
                    (
                        [("peer", peer), ("direction", "received")],
                        sum(p, |s| s.sync_bytes_received),
                    ),
                ]
            }),
        )?;
        let offsets = replicator.clock_offsets(0);
        gauges(
            encoder,
            "discovery_clock_offset_seconds",
            "Each peer's wall clock minus this node's, as the last anti-entropy round measured it",
            offsets
                .iter()
                .map(|(peer, ms)| ([("peer", peer.as_str())], ms_to_seconds(*ms as f64))),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcement_results_form_a_small_fixed_set() {
        let put = Method::PUT;
        let route = "/v1/announcement/{node_id}";
        assert_eq!(announcement_result(&put, route, 202), Some("accepted"));
        assert_eq!(announcement_result(&put, route, 400), Some("refused"));
        assert_eq!(announcement_result(&put, route, 413), Some("refused"));
        assert_eq!(announcement_result(&put, route, 401), Some("unauthorized"));
        assert_eq!(announcement_result(&put, route, 403), Some("unauthorized"));
        assert_eq!(announcement_result(&put, route, 503), Some("unavailable"));
        assert_eq!(
            announcement_result(&put, "/v1/announcement/static", 202),
            Some("accepted")
        );
        assert_eq!(
            announcement_result(&Method::POST, "/v1/announce", 204),
            Some("accepted")
        );
        assert_eq!(announcement_result(&Method::DELETE, route, 204), None);
        assert_eq!(
            announcement_result(&Method::POST, "/v1/announcement/static", 201),
            None,
            "a static service is an operator write, not an announcement"
        );
        assert_eq!(announcement_result(&Method::GET, "/v1/service", 200), None);
    }

    #[test]
    fn methods_outside_the_standard_set_share_one_label() {
        assert_eq!(method_label(&Method::PUT), "PUT");
        let odd = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&odd), "other");
    }

    #[test]
    fn requests_are_labelled_by_template_and_unknown_paths_by_one_value() {
        let metrics = Metrics::new();
        let route = Some("/v1/announcement/{node_id}");
        metrics.observe(route, &Method::PUT, 202, Duration::from_micros(300));
        metrics.observe(route, &Method::PUT, 202, Duration::from_micros(300));
        metrics.observe(route, &Method::PUT, 400, Duration::from_micros(100));
        metrics.observe(None, &Method::GET, 404, Duration::from_micros(50));
        let mut text = String::new();
        prometheus_text::encode(&mut text, &metrics.registry).unwrap();
        assert!(text.contains(
            "discovery_http_requests_total{route=\"/v1/announcement/{node_id}\",method=\"PUT\",status=\"202\"} 2\n"
        ), "{text}");
        assert!(text.contains(
            "discovery_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1\n"
        ), "{text}");
        assert!(text.contains(
            "discovery_http_request_duration_seconds_count{route=\"/v1/announcement/{node_id}\"} 3\n"
        ), "{text}");
        assert!(text.contains(
            "discovery_http_request_duration_seconds_bucket{le=\"0.0005\",route=\"/v1/announcement/{node_id}\"} 3\n"
        ) || text.contains(
            "discovery_http_request_duration_seconds_bucket{route=\"/v1/announcement/{node_id}\",le=\"0.0005\"} 3\n"
        ), "{text}");
        assert!(text.contains("discovery_announcements_total{result=\"accepted\"} 2\n"));
        assert!(text.contains("discovery_announcements_total{result=\"refused\"} 1\n"));
        assert_eq!(
            metrics.routes.read().unwrap().len(),
            2,
            "interned once: the route and unmatched"
        );
        assert!(text.contains("discovery_announcements_total{result=\"unavailable\"} 0\n"));
    }

    fn sources() -> Sources {
        use crate::registry::{ServiceIndex, ValueFormat};
        use discovery_store::{MemoryBackend, Store, StoreConfig, SystemClock};
        let open = |name: StoreName| {
            Arc::new(
                Store::open(
                    StoreConfig::new(name.as_str()),
                    Box::new(MemoryBackend::new()),
                    Arc::new(SystemClock),
                    ServiceIndex::new(ValueFormat::of(name)),
                )
                .unwrap(),
            )
        };
        Sources {
            registry: Arc::new(Registry::new(
                "testing",
                open(StoreName::Dynamic),
                open(StoreName::Static),
                600_000,
            )),
            readiness: Arc::new(Readiness::new(Duration::ZERO, Duration::ZERO, None)),
            replicator: None,
            auth: Arc::new(Authenticator::open()),
        }
    }

    #[test]
    fn a_scrape_reads_the_stores_and_readiness_now() {
        let sources = sources();
        let store = sources.registry.store(StoreName::Dynamic);
        store
            .put(b"w1".to_vec(), b"[]".to_vec(), Some(30_000))
            .unwrap();
        store
            .put(b"w2".to_vec(), b"[]".to_vec(), Some(30_000))
            .unwrap();
        store.delete(b"w2".to_vec()).unwrap();
        let metrics = Metrics::new();
        // Recorded families without a sample are left out until the first request.
        metrics.observe(Some("/v1/service"), &Method::GET, 200, Duration::ZERO);
        let text = metrics.render(&sources).unwrap();
        for line in [
            "discovery_store_entries{store=\"dynamic\",state=\"live\"} 1.0\n",
            "discovery_store_entries{store=\"dynamic\",state=\"tombstone\"} 1.0\n",
            "discovery_store_bytes{store=\"dynamic\"} 4.0\n",
            "discovery_store_entries{store=\"static\",state=\"live\"} 0.0\n",
            "discovery_refused_entries_total{reason=\"future\"} 0\n",
            "# TYPE discovery_ready gauge\n",
            "# TYPE discovery_http_requests_total counter\n",
            "# TYPE discovery_http_request_duration_seconds histogram\n",
        ] {
            assert!(text.contains(line), "{line:?} in\n{text}");
        }
        assert!(
            !text.contains("discovery_replication_"),
            "no replicator, no replication series:\n{text}"
        );
    }
}
