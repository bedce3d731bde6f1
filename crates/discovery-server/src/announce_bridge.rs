//! The bridge from Trino 477+ announce mode into the dynamic store.
//!
//! An announce-mode node only tells us a URI (`POST /v1/announce`, every 5 s). What an
//! airlift client needs to see (node id, version, coordinator flag) has to be learned from
//! `GET {uri}/v1/info`, as Trino's own coordinator does. This module tracks the announced
//! URIs, fetches their facts in the background (the POST never waits on the fetch: Trino
//! gives it 3 s), caches them per URI, and renews each node's dynamic entry on every POST
//! through the registry.
//!
//! Until internal authentication lands, anyone who can reach the port can make the server
//! issue a GET to a URI of their choosing. Everything about that is bounded: only
//! `http`/`https` URIs validated by one rule, a deadline per fetch, a response size
//! limit, a fixed number of fetches in flight (no queue: an announce that finds none free
//! is fetched on a later POST), no redirects or proxies, and a fixed number of tracked
//! URIs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use discovery_replicator::tls::Truststore;
use discovery_store::StoreError;
use discovery_types::trino_announce::MAX_SERVER_INFO_BYTES;
use discovery_types::{AnnounceUri, ServerInfo, ServerInfoError};
use thiserror::Error;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::TrinoAnnounceSettings;
use crate::diagnostics::{Diagnostics, Via};
use crate::registry::{AnnouncedOutcome, Registry, StoreName};
use discovery_types::diagnostics::RefusalReason;

/// How often the facts of a listed node are fetched again (Trino's coordinator polls
/// `/v1/info` every 5 s), so a change of state or version shows within one period.
const REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// How soon a fetch that failed (or found the wrong environment) may be tried again. Every
/// POST after this long retries; POSTs come every 5 s.
const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// Why an announcement was refused. `Display` is the one-line message for the client.
#[derive(Debug, Error)]
pub enum AnnounceError {
    #[error(
        "tracking the most announce-mode URIs this server allows ({max}, trino-announce.max-nodes); not stored"
    )]
    TooManyNodes { max: usize },
    /// The same text as an airlift announcement with the wrong environment.
    #[error("Environment mismatch. Expected: {expected}, Provided: {provided}")]
    EnvironmentMismatch { expected: String, provided: String },
    #[error(
        "node id {node_id} is announced through airlift discovery; an announce-mode node may not replace it"
    )]
    HeldByAirlift { node_id: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why the facts of a node could not be fetched. Logged, never sent to the announcer.
#[derive(Debug, Error)]
pub enum FetchError {
    #[error("request failed: {0}")]
    Request(String),
    #[error("timed out")]
    Timeout,
    #[error("answered {0}")]
    Status(u16),
    #[error("answer larger than {MAX_SERVER_INFO_BYTES} bytes")]
    TooLarge,
    #[error(transparent)]
    Info(#[from] ServerInfoError),
}

/// What the last fetch of a URI found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Known {
    /// Not fetched yet, or every fetch so far failed.
    Nothing,
    /// A node of our environment: listed.
    Node(ServerInfo),
    /// A node of another environment: refused.
    WrongEnvironment(String),
}

/// One announced URI.
#[derive(Debug)]
struct Tracked {
    last_post: Instant,
    last_attempt: Option<Instant>,
    in_flight: bool,
    known: Known,
    /// A mismatch is logged once per URI, not on every POST.
    mismatch_logged: bool,
    /// A failure is logged when it differs from the last one logged for this URI.
    last_logged_failure: Option<String>,
    held_by_airlift_logged: bool,
}

impl Tracked {
    fn new(now: Instant) -> Self {
        Tracked {
            last_post: now,
            last_attempt: None,
            in_flight: false,
            known: Known::Nothing,
            mismatch_logged: false,
            last_logged_failure: None,
            held_by_airlift_logged: false,
        }
    }

    /// Whether a POST at `now` should start a fetch of this URI.
    fn wants_fetch(&self, now: Instant) -> bool {
        if self.in_flight {
            return false;
        }
        let Some(at) = self.last_attempt else {
            return true;
        };
        let interval = match self.known {
            Known::Node(_) => REFRESH_INTERVAL,
            Known::Nothing | Known::WrongEnvironment(_) => RETRY_INTERVAL,
        };
        now.saturating_duration_since(at) >= interval
    }

    /// A URI nobody announced for longer than `max_age` may be forgotten (its entry has
    /// expired by then too).
    fn is_stale(&self, now: Instant, max_age: Duration) -> bool {
        !self.in_flight && now.saturating_duration_since(self.last_post) > max_age
    }
}

/// Tracks announce-mode URIs and keeps their nodes' entries in the registry.
#[derive(Debug)]
pub struct AnnounceBridge {
    registry: Arc<Registry>,
    settings: TrinoAnnounceSettings,
    max_age_ms: i64,
    client: reqwest::Client,
    fetches: Arc<Semaphore>,
    tracked: Mutex<HashMap<AnnounceUri, Tracked>>,
    /// Where stored and refused announce-mode nodes are remembered by node id, for
    /// `/v1/diagnostics/node/{nodeId}` (the POST's client address is not known here).
    diagnostics: Option<Arc<Diagnostics>>,
}

impl AnnounceBridge {
    /// `https:` URIs are verified against the system roots and `truststore`
    /// (`internal-communication.https.truststore.path`), as Trino's own internal TLS is.
    pub fn new(
        registry: Arc<Registry>,
        settings: TrinoAnnounceSettings,
        truststore: Option<&Truststore>,
    ) -> Result<Self, reqwest::Error> {
        let client = discovery_replicator::tls::client_builder(truststore)
            .timeout(settings.info_timeout)
            .connect_timeout(settings.info_timeout)
            // The caller chose the URI: follow nowhere else, and go there directly.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent("discoveryd")
            .build()?;
        Ok(AnnounceBridge {
            registry,
            max_age_ms: i64::try_from(settings.max_age.as_millis()).unwrap_or(i64::MAX),
            fetches: Arc::new(Semaphore::new(settings.max_concurrent_fetches)),
            settings,
            client,
            tracked: Mutex::new(HashMap::new()),
            diagnostics: None,
        })
    }

    /// Remembers each node stored, and each refused for its environment or its id, in
    /// `diagnostics`.
    pub fn with_diagnostics(mut self, diagnostics: Arc<Diagnostics>) -> Self {
        self.diagnostics = Some(diagnostics);
        self
    }

    fn remember(&self, node_id: &str, refusal: Option<RefusalReason>) {
        let Some(diagnostics) = &self.diagnostics else {
            return;
        };
        let now = self.registry.store(StoreName::Dynamic).now_ms();
        match refusal {
            None => diagnostics.accepted(node_id, now, None, Via::Client),
            Some(reason) => diagnostics.refused(node_id, now, None, reason),
        }
    }

    fn tracked(&self) -> MutexGuard<'_, HashMap<AnnounceUri, Tracked>> {
        // The map stays consistent even if a holder panicked: every update is one step.
        self.tracked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Handles one `POST /v1/announce` of `uri`: renews the node's entry when its facts
    /// are known, starts a background fetch when they are missing or due, and refuses
    /// URIs known to belong to another environment, or beyond the tracking limit.
    pub fn announce(self: &Arc<Self>, uri: AnnounceUri) -> Result<(), AnnounceError> {
        let now = Instant::now();
        let (known, permit) = {
            let mut tracked = self.tracked();
            if !tracked.contains_key(&uri) && tracked.len() >= self.settings.max_nodes {
                let max_age = self.settings.max_age;
                tracked.retain(|_, record| !record.is_stale(now, max_age));
                if tracked.len() >= self.settings.max_nodes {
                    return Err(AnnounceError::TooManyNodes {
                        max: self.settings.max_nodes,
                    });
                }
            }
            let record = tracked
                .entry(uri.clone())
                .or_insert_with(|| Tracked::new(now));
            record.last_post = now;
            let mut permit = None;
            if record.wants_fetch(now) {
                // No permit free: no fetch now (nothing queues); the next POST retries.
                if let Ok(free) = Arc::clone(&self.fetches).try_acquire_owned() {
                    record.in_flight = true;
                    record.last_attempt = Some(now);
                    permit = Some(free);
                }
            }
            (record.known.clone(), permit)
        };
        if let Some(permit) = permit {
            let bridge = Arc::clone(self);
            let uri = uri.clone();
            tokio::spawn(async move { bridge.fetch_and_learn(uri, permit).await });
        }
        match known {
            Known::Nothing => Ok(()),
            Known::Node(info) => self.store(&uri, &info),
            Known::WrongEnvironment(provided) => Err(AnnounceError::EnvironmentMismatch {
                expected: self.registry.environment().to_owned(),
                provided,
            }),
        }
    }

    fn store(&self, uri: &AnnounceUri, info: &ServerInfo) -> Result<(), AnnounceError> {
        match self
            .registry
            .announce_trino_node(uri, info, self.max_age_ms)?
        {
            AnnouncedOutcome::Stored => {
                self.remember(&info.node_id, None);
                Ok(())
            }
            AnnouncedOutcome::HeldByAirlift => {
                let first = self
                    .tracked()
                    .get_mut(uri)
                    .is_some_and(|r| !std::mem::replace(&mut r.held_by_airlift_logged, true));
                if first {
                    tracing::warn!(%uri, node_id = %info.node_id,
                        "announce-mode node not stored: its node id is held by an airlift-mode announcement");
                }
                let refused = AnnounceError::HeldByAirlift {
                    node_id: info.node_id.clone(),
                };
                let detail = refused.to_string();
                self.remember(&info.node_id, Some(RefusalReason::Conflict { detail }));
                Err(refused)
            }
        }
    }

    async fn fetch_and_learn(self: Arc<Self>, uri: AnnounceUri, permit: OwnedSemaphorePermit) {
        let result = fetch_info(&self.client, &uri, self.settings.info_timeout).await;
        drop(permit);
        if let Some(info) = self.learn(&uri, result) {
            match self.store(&uri, &info) {
                Ok(()) | Err(AnnounceError::HeldByAirlift { .. }) => {}
                Err(e) => {
                    tracing::warn!(%uri, node_id = %info.node_id, error = %e,
                        "could not store an announce-mode node")
                }
            }
        }
    }

    /// Records what a fetch found and logs what an operator should know; returns the
    /// node to store, if any.
    fn learn(
        &self,
        uri: &AnnounceUri,
        result: Result<ServerInfo, FetchError>,
    ) -> Option<ServerInfo> {
        let expected = self.registry.environment();
        let mut tracked = self.tracked();
        let record = tracked.get_mut(uri)?;
        record.in_flight = false;
        match result {
            Ok(info) if info.environment == expected => {
                if !matches!(&record.known, Known::Node(old) if old.node_id == info.node_id) {
                    tracing::info!(%uri, node_id = %info.node_id, version = %info.version,
                        coordinator = info.coordinator, "learned an announce-mode Trino node");
                }
                record.known = Known::Node(info.clone());
                record.last_logged_failure = None;
                Some(info)
            }
            Ok(info) => {
                self.remember(
                    &info.node_id,
                    Some(RefusalReason::EnvironmentMismatch {
                        expected: expected.to_owned(),
                        provided: Some(info.environment.clone()),
                    }),
                );
                if !record.mismatch_logged {
                    record.mismatch_logged = true;
                    tracing::warn!(%uri, node_id = %info.node_id, expected,
                        provided = %info.environment,
                        "refusing an announce-mode node: environment mismatch");
                }
                record.known = Known::WrongEnvironment(info.environment);
                None
            }
            Err(e) => {
                let failure = e.to_string();
                if record.last_logged_failure.as_deref() != Some(failure.as_str()) {
                    tracing::warn!(%uri, error = %failure,
                        "cannot learn an announce-mode node from its /v1/info");
                    record.last_logged_failure = Some(failure);
                }
                // A node already listed keeps its last facts through a failed refresh;
                // its entry still expires when the POSTs stop.
                None
            }
        }
    }
}

/// `GET {uri}/v1/info`, bounded in time and size, parsed into [`ServerInfo`].
async fn fetch_info(
    client: &reqwest::Client,
    uri: &AnnounceUri,
    timeout: Duration,
) -> Result<ServerInfo, FetchError> {
    let exchange = async {
        let mut response = client
            .get(uri.info_url())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| FetchError::Request(crate::error_chain(&e)))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|length| length > MAX_SERVER_INFO_BYTES as u64)
        {
            return Err(FetchError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| FetchError::Request(crate::error_chain(&e)))?
        {
            if body.len() + chunk.len() > MAX_SERVER_INFO_BYTES {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(ServerInfo::from_json(&body)?)
    };
    // The client's own timeout covers the request; this one also covers a body that
    // trickles in.
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| FetchError::Timeout)?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(node_id: &str) -> ServerInfo {
        ServerInfo {
            node_id: node_id.into(),
            environment: "testing".into(),
            version: "477".into(),
            coordinator: false,
            state: Some("ACTIVE".into()),
        }
    }

    fn bridge() -> AnnounceBridge {
        use crate::registry::{ServiceIndex, StoreName, ValueFormat};
        use discovery_store::{MemoryBackend, Store, StoreConfig, SystemClock};
        let open = |name: StoreName| {
            Arc::new(
                Store::open(
                    StoreConfig::new(name.as_str()),
                    Box::new(MemoryBackend::new()),
                    Arc::new(SystemClock),
                    ServiceIndex::new(ValueFormat::of(name)),
                )
                .expect("a memory store opens"),
            )
        };
        let registry = Arc::new(Registry::new(
            "testing",
            open(StoreName::Dynamic),
            open(StoreName::Static),
            30_000,
        ));
        let settings = crate::Settings::for_test("unused").trino_announce;
        AnnounceBridge::new(registry, settings, None).expect("a client builds")
    }

    #[test]
    fn what_a_fetch_finds_decides_what_the_next_post_does() {
        let bridge = bridge();
        let uri = AnnounceUri::parse(b"http://10.0.0.1:8080").expect("valid");
        assert_eq!(bridge.learn(&uri, Ok(info("w1"))), None, "untracked URI");
        let mut record = Tracked::new(Instant::now());
        record.in_flight = true;
        bridge.tracked().insert(uri.clone(), record);

        assert_eq!(bridge.learn(&uri, Ok(info("w1"))), Some(info("w1")));
        let known = |bridge: &AnnounceBridge| bridge.tracked().get(&uri).map(|r| r.known.clone());
        assert_eq!(known(&bridge), Some(Known::Node(info("w1"))));
        assert!(!bridge.tracked()[&uri].in_flight);

        // A failed refresh keeps the last facts, so renewals go on.
        assert_eq!(bridge.learn(&uri, Err(FetchError::Timeout)), None);
        assert_eq!(known(&bridge), Some(Known::Node(info("w1"))));
        assert_eq!(
            bridge.tracked()[&uri].last_logged_failure.as_deref(),
            Some("timed out")
        );

        let mut other = info("w1");
        other.environment = "production".into();
        assert_eq!(bridge.learn(&uri, Ok(other.clone())), None);
        assert_eq!(
            known(&bridge),
            Some(Known::WrongEnvironment("production".into()))
        );
        assert!(bridge.tracked()[&uri].mismatch_logged);
    }

    #[test]
    fn a_node_of_another_environment_is_remembered_as_refused() {
        let diagnostics = Arc::new(Diagnostics::new());
        let bridge = bridge().with_diagnostics(Arc::clone(&diagnostics));
        let uri = AnnounceUri::parse(b"http://10.0.0.2:8080").expect("valid");
        bridge
            .tracked()
            .insert(uri.clone(), Tracked::new(Instant::now()));
        let mut other = info("w2");
        other.environment = "production".into();
        assert_eq!(bridge.learn(&uri, Ok(other)), None);
        let record = diagnostics.record("w2").expect("remembered");
        let reasons: Vec<&RefusalReason> =
            record.refusals_newest_first().map(|r| &r.reason).collect();
        assert_eq!(
            reasons,
            [&RefusalReason::EnvironmentMismatch {
                expected: "testing".into(),
                provided: Some("production".into()),
            }]
        );
        assert_eq!(bridge.store(&uri, &info("w3")).ok(), Some(()));
        assert!(diagnostics
            .record("w3")
            .is_some_and(|r| r.accepted().is_some()));
    }

    #[test]
    fn a_new_uri_is_fetched_at_once_and_never_twice_at_the_same_time() {
        let t0 = Instant::now();
        let mut record = Tracked::new(t0);
        assert!(record.wants_fetch(t0));
        record.in_flight = true;
        record.last_attempt = Some(t0);
        assert!(!record.wants_fetch(t0 + Duration::from_secs(60)));
    }

    #[test]
    fn known_nodes_are_refreshed_every_period_and_failures_retried_sooner() {
        let t0 = Instant::now();
        let mut record = Tracked::new(t0);
        record.last_attempt = Some(t0);
        assert!(!record.wants_fetch(t0 + Duration::from_millis(999)));
        assert!(record.wants_fetch(t0 + RETRY_INTERVAL));
        record.known = Known::Node(info("w1"));
        assert!(!record.wants_fetch(t0 + RETRY_INTERVAL));
        assert!(record.wants_fetch(t0 + REFRESH_INTERVAL));
        record.known = Known::WrongEnvironment("prod".into());
        assert!(record.wants_fetch(t0 + RETRY_INTERVAL));
    }

    #[test]
    fn only_uris_silent_for_longer_than_the_max_age_and_not_being_fetched_are_stale() {
        let t0 = Instant::now();
        let max_age = Duration::from_secs(30);
        let mut record = Tracked::new(t0);
        assert!(!record.is_stale(t0 + max_age, max_age));
        assert!(record.is_stale(t0 + max_age + Duration::from_millis(1), max_age));
        record.in_flight = true;
        assert!(!record.is_stale(t0 + max_age * 2, max_age));
    }
}
