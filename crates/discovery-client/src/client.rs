//! [`DiscoveryClient`]: one call per protocol operation, over one or more servers.
//!
//! Every call goes to the server that answered last (sticky, so a healthy cluster sees one
//! client talk to one server) and moves on to the next URI, in order, when that server
//! cannot be reached or answers 5xx. A 4xx is the same on every server and is returned at
//! once. A static POST is not idempotent, so it only moves on when the first server
//! certainly did not get it (connection refused, 5xx), never after a timeout.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use discovery_types::diagnostics::NodeDiagnostics;
use discovery_types::replication::ReplicationStatus;
use discovery_types::{DynamicAnnouncement, Service, ServiceSet, StaticAnnouncement, WireEntry};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;

use crate::cache_control::parse_max_age;
use crate::error::DiscoveryError;
use crate::store::{DecodedEntry, StoreName};
use crate::uris::{display, endpoint, parse_uris};
use crate::validate::{validate_lookup, Expected};

/// Default time allowed to open a connection (airlift: 5 s).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time allowed for a whole request. airlift allows 5 minutes, long enough for a
/// hung server to let a node's announcement expire; a discovery server answers in
/// milliseconds, so anything slower than this is treated as down.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response body read; a bigger one is refused rather than buffered.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// Longest server error message kept, in characters.
const MAX_MESSAGE_CHARS: usize = 300;

/// Configures a [`DiscoveryClient`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    uris: Vec<String>,
    environment: Option<String>,
    user_agent: String,
    connect_timeout: Duration,
    request_timeout: Duration,
    extra_headers: Option<HeaderSource>,
}

/// Computes the extra headers of one request attempt from its method and path segments.
type HeaderFn = dyn Fn(&Method, &[&str]) -> HeaderMap + Send + Sync;

/// [`ClientBuilder::headers`]' function. Its `Debug` shows nothing of what it returns:
/// those are credentials.
#[derive(Clone)]
struct HeaderSource(Arc<HeaderFn>);

impl std::fmt::Debug for HeaderSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeaderSource(..)")
    }
}

impl ClientBuilder {
    /// The environment this client belongs to. Lookups answered for another environment
    /// are refused; announcements built with [`DiscoveryClient::environment`] carry it.
    /// Without one, the server's environment is accepted.
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// The `User-Agent` header. airlift clients send their node id, and the server logs it
    /// with every request.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Extra headers for every request, from `headers`, called before each attempt with the
    /// request's method and path segments (`PUT`, `["v1", "announcement", "worker-1"]`).
    /// Meant for credentials: computed per attempt, a short-lived token is always fresh
    /// (an [`crate::Announcer`] runs for days), and one can depend on the request (an
    /// announcement signed for the node it announces). The client's own protocol headers
    /// (`Content-Type`, `Accept`, `If-None-Match`) win over returned ones of the same name.
    /// Mark secret values with [`HeaderValue::set_sensitive`] so debug output hides them.
    pub fn headers(
        mut self,
        headers: impl Fn(&Method, &[&str]) -> HeaderMap + Send + Sync + 'static,
    ) -> Self {
        self.extra_headers = Some(HeaderSource(Arc::new(headers)));
        self
    }

    pub fn build(self) -> Result<DiscoveryClient, DiscoveryError> {
        let uris = parse_uris(&self.uris)?;
        let http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .user_agent(self.user_agent)
            // airlift's client ignores proxy variables too: discovery traffic stays inside
            // the cluster, and an HTTP_PROXY meant for the internet must not capture it.
            .no_proxy()
            // A redirect means a misconfigured URI (http to https, a moved proxy); report it
            // instead of silently re-sending announcements somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                DiscoveryError::InvalidArgument(format!("cannot build the HTTP client: {e}"))
            })?;
        Ok(DiscoveryClient {
            inner: Arc::new(Inner {
                http,
                uris,
                preferred: AtomicUsize::new(0),
                environment: self.environment,
                server_environment: OnceCell::new(),
                extra_headers: self.extra_headers,
            }),
        })
    }
}

/// A client of one discovery cluster. Cheap to clone; clones share connections.
#[derive(Debug, Clone)]
pub struct DiscoveryClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    uris: Vec<Url>,
    /// Index of the URI to try first: the one that answered last.
    preferred: AtomicUsize,
    environment: Option<String>,
    server_environment: OnceCell<String>,
    extra_headers: Option<HeaderSource>,
}

/// The outcome of a successful announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    /// The server's `Cache-Control: max-age`: announce again within it.
    pub max_age: Option<Duration>,
    /// The server that accepted it.
    pub uri: String,
}

/// The outcome of a conditional lookup ([`DiscoveryClient::lookup_if_changed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A new list (status 200).
    Changed {
        services: ServiceSet,
        etag: Option<String>,
        max_age: Option<Duration>,
    },
    /// The list is still the one tagged with the ETag that was sent (status 304).
    Unchanged {
        etag: Option<String>,
        max_age: Option<Duration>,
    },
}

impl Lookup {
    /// `Cache-Control: max-age` of the answer: how long it stays fresh.
    pub fn max_age(&self) -> Option<Duration> {
        match self {
            Lookup::Changed { max_age, .. } | Lookup::Unchanged { max_age, .. } => *max_age,
        }
    }

    /// The tag to send with the next lookup.
    pub fn etag(&self) -> Option<&str> {
        match self {
            Lookup::Changed { etag, .. } | Lookup::Unchanged { etag, .. } => etag.as_deref(),
        }
    }
}

/// A server's readiness (`GET /v1/health/ready`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// It answers lookups.
    Ready,
    /// It is still catching up after a start; lookups get 503. The server's reason.
    NotReady(String),
}

/// One request, replayable against each server.
struct Request<'a> {
    method: Method,
    segments: &'a [&'a str],
    headers: HeaderMap,
    body: Option<Vec<u8>>,
    /// Safe to send again after a timeout or reset (the server may have applied it).
    idempotent: bool,
}

/// A server's answer, body read.
struct Answer {
    uri: String,
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn max_age(&self) -> Result<Option<Duration>, DiscoveryError> {
        parse_max_age(self.header(header::CACHE_CONTROL))
            .map_err(|e| DiscoveryError::cache_control(&self.uri, e))
    }

    fn json<T: DeserializeOwned>(&self) -> Result<T, DiscoveryError> {
        serde_json::from_slice(&self.body).map_err(|e| DiscoveryError::InvalidResponse {
            uri: self.uri.clone(),
            reason: format!("invalid JSON body ({} bytes): {e}", self.body.len()),
        })
    }

    /// The answer as an error: 4xx become [`DiscoveryError::Rejected`] with the server's
    /// message; anything else unexpected is an invalid response.
    fn unexpected(&self) -> DiscoveryError {
        if self.status.is_client_error() {
            DiscoveryError::Rejected {
                uri: self.uri.clone(),
                status: self.status.as_u16(),
                message: message_of(self.status, &self.body),
            }
        } else {
            let mut reason = format!("status {}", self.status);
            if let Some(location) = self.header(header::LOCATION) {
                reason.push_str(&format!(" (Location: {location}); check the discovery URI"));
            }
            DiscoveryError::InvalidResponse {
                uri: self.uri.clone(),
                reason,
            }
        }
    }
}

impl DiscoveryClient {
    /// A builder over `uris`: each an absolute http(s) URI, or a comma-separated list.
    pub fn builder<I, S>(uris: I) -> ClientBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ClientBuilder {
            uris: uris.into_iter().map(Into::into).collect(),
            environment: None,
            user_agent: concat!("discovery-client/", env!("CARGO_PKG_VERSION")).to_owned(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            extra_headers: None,
        }
    }

    /// A client of one server (or a comma-separated list) with the defaults.
    pub fn new(uri: &str) -> Result<Self, DiscoveryError> {
        Self::builder([uri]).build()
    }

    /// The servers, in failover order, as written.
    pub fn uris(&self) -> Vec<String> {
        self.inner.uris.iter().map(display).collect()
    }

    /// The environment given to the builder, if any.
    pub fn configured_environment(&self) -> Option<&str> {
        self.inner.environment.as_deref()
    }

    /// The environment to announce in: the configured one, or else the one the server
    /// reports in a lookup (asked once, then remembered).
    pub async fn environment(&self) -> Result<String, DiscoveryError> {
        if let Some(environment) = &self.inner.environment {
            return Ok(environment.clone());
        }
        self.inner
            .server_environment
            .get_or_try_init(|| async {
                // Any lookup reports the environment; `discovery` is small and exists on
                // every kind of server, embedded ones included. A discoveryd that has just
                // started answers lookups 503 until it is ready, but its static listing
                // (which embedded servers lack) carries the environment too.
                let lookup = async {
                    let answer = self
                        .lookup_raw(&["v1", "service", "discovery", "general"], None)
                        .await?;
                    if answer.status != StatusCode::OK {
                        return Err(answer.unexpected());
                    }
                    Ok(answer.json::<ServiceSet>()?.environment)
                };
                match lookup.await {
                    Ok(environment) => Ok(environment),
                    Err(error) => match self.list_static().await {
                        Ok(set) => Ok(set.environment),
                        Err(_) => Err(error),
                    },
                }
            })
            .await
            .cloned()
    }

    /// `PUT /v1/announcement/{node_id}`: replaces everything `node_id` offers with
    /// `announcement`. It stays listed for the server's `discovery.max-age` (30 s by
    /// default) unless announced again; [`crate::Announcer`] does that.
    pub async fn announce(
        &self,
        node_id: &str,
        announcement: &DynamicAnnouncement,
    ) -> Result<Announced, DiscoveryError> {
        check_segment("node id", node_id)?;
        let body = serde_json::to_vec(announcement).map_err(|e| {
            DiscoveryError::InvalidArgument(format!("cannot encode the announcement: {e}"))
        })?;
        let answer = self
            .send(Request {
                method: Method::PUT,
                segments: &["v1", "announcement", node_id],
                headers: json_headers(),
                body: Some(body),
                idempotent: true,
            })
            .await?;
        if !answer.status.is_success() {
            return Err(answer.unexpected());
        }
        Ok(Announced {
            max_age: answer.max_age()?,
            uri: answer.uri,
        })
    }

    /// `DELETE /v1/announcement/{node_id}`: the node's services disappear at once.
    pub async fn unannounce(&self, node_id: &str) -> Result<(), DiscoveryError> {
        check_segment("node id", node_id)?;
        self.delete(&["v1", "announcement", node_id]).await
    }

    /// `GET /v1/service/{service_type}/{pool}`: what a Presto node asks.
    pub async fn lookup(
        &self,
        service_type: &str,
        pool: &str,
    ) -> Result<ServiceSet, DiscoveryError> {
        check_segment("service type", service_type)?;
        check_segment("pool", pool)?;
        let expected = Expected {
            environment: self.configured_environment(),
            service_type: Some(service_type),
            pool: Some(pool),
        };
        self.lookup_set(&["v1", "service", service_type, pool], expected)
            .await
    }

    /// `GET /v1/service/{service_type}`: services of a type in every pool.
    pub async fn lookup_type(&self, service_type: &str) -> Result<ServiceSet, DiscoveryError> {
        check_segment("service type", service_type)?;
        let expected = Expected {
            environment: self.configured_environment(),
            service_type: Some(service_type),
            pool: None,
        };
        self.lookup_set(&["v1", "service", service_type], expected)
            .await
    }

    /// `GET /v1/service`: every service, dynamic and static.
    pub async fn lookup_all(&self) -> Result<ServiceSet, DiscoveryError> {
        let expected = Expected {
            environment: self.configured_environment(),
            service_type: None,
            pool: None,
        };
        self.lookup_set(&["v1", "service"], expected).await
    }

    /// A lookup of `service_type`/`pool` that costs almost nothing when the list has not
    /// changed since the answer tagged `etag`: the server then answers 304.
    pub async fn lookup_if_changed(
        &self,
        service_type: &str,
        pool: &str,
        etag: Option<&str>,
    ) -> Result<Lookup, DiscoveryError> {
        self.lookup_if_changed_in(service_type, pool, etag, self.configured_environment())
            .await
    }

    /// [`Self::lookup_if_changed`] checked against `environment` instead of the configured
    /// one (a selector pins the first environment it sees when none is configured).
    pub(crate) async fn lookup_if_changed_in(
        &self,
        service_type: &str,
        pool: &str,
        etag: Option<&str>,
        environment: Option<&str>,
    ) -> Result<Lookup, DiscoveryError> {
        check_segment("service type", service_type)?;
        check_segment("pool", pool)?;
        let answer = self
            .lookup_raw(&["v1", "service", service_type, pool], etag)
            .await?;
        let max_age = answer.max_age()?;
        let new_etag = answer.header(header::ETAG).map(str::to_owned);
        match answer.status {
            StatusCode::NOT_MODIFIED if etag.is_some() => Ok(Lookup::Unchanged {
                etag: new_etag,
                max_age,
            }),
            StatusCode::OK => {
                let services: ServiceSet = answer.json()?;
                let expected = Expected {
                    environment,
                    service_type: Some(service_type),
                    pool: Some(pool),
                };
                validate_lookup(&services, expected).map_err(|source| {
                    DiscoveryError::Validation {
                        uri: answer.uri.clone(),
                        source,
                    }
                })?;
                Ok(Lookup::Changed {
                    services,
                    etag: new_etag,
                    max_age,
                })
            }
            _ => Err(answer.unexpected()),
        }
    }

    /// `POST /v1/announcement/static`: a service that never expires and belongs to no
    /// node; the server assigns its id, returned in the created service.
    pub async fn add_static(
        &self,
        announcement: &StaticAnnouncement,
    ) -> Result<Service, DiscoveryError> {
        let body = serde_json::to_vec(announcement).map_err(|e| {
            DiscoveryError::InvalidArgument(format!("cannot encode the announcement: {e}"))
        })?;
        let answer = self
            .send(Request {
                method: Method::POST,
                segments: &["v1", "announcement", "static"],
                headers: json_headers(),
                body: Some(body),
                idempotent: false,
            })
            .await?;
        if !answer.status.is_success() {
            return Err(answer.unexpected());
        }
        answer.json()
    }

    /// `GET /v1/announcement/static`: the static services only.
    pub async fn list_static(&self) -> Result<ServiceSet, DiscoveryError> {
        let expected = Expected {
            environment: self.configured_environment(),
            service_type: None,
            pool: None,
        };
        self.lookup_set(&["v1", "announcement", "static"], expected)
            .await
    }

    /// `DELETE /v1/announcement/static/{id}`: succeeds whether or not the id exists.
    pub async fn delete_static(&self, id: &str) -> Result<(), DiscoveryError> {
        if !discovery_types::is_service_id(id) {
            return Err(DiscoveryError::InvalidArgument(format!(
                "'{id}' is not a service id (a UUID such as 0b6c6a2e-3f5e-4a43-9d2e-6f3a3f0f6a01)"
            )));
        }
        self.delete(&["v1", "announcement", "static", id]).await
    }

    /// `GET /v1/store/{store}`: every raw entry, tombstones and expired ones included.
    pub async fn store_dump(&self, store: StoreName) -> Result<Vec<WireEntry>, DiscoveryError> {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        let answer = self
            .send(Request {
                method: Method::GET,
                segments: &["v1", "store", store.as_str()],
                headers,
                body: None,
                idempotent: true,
            })
            .await?;
        if answer.status != StatusCode::OK {
            return Err(answer.unexpected());
        }
        answer.json()
    }

    /// `GET /v1/replication/status`: the server's stores (entry counts, digest roots) and
    /// its replication towards every peer.
    pub async fn replication_status(&self) -> Result<ReplicationStatus, DiscoveryError> {
        let answer = self.get(&["v1", "replication", "status"]).await?;
        if answer.status != StatusCode::OK {
            return Err(answer.unexpected());
        }
        answer.json()
    }

    /// `GET /v1/diagnostics/node/{node_id}`: whether the server lists `node_id`, and what
    /// it remembers of the node's recent announcements (refusals and their reasons, the
    /// last accepted one). Answered by one server: the refusals are what it saw.
    pub async fn node_diagnostics(&self, node_id: &str) -> Result<NodeDiagnostics, DiscoveryError> {
        check_segment("node id", node_id)?;
        let answer = self.get(&["v1", "diagnostics", "node", node_id]).await?;
        if answer.status != StatusCode::OK {
            return Err(answer.unexpected());
        }
        answer.json()
    }

    /// `GET /v1/health/ready`: whether the server answers lookups yet, and if not, why.
    pub async fn readiness(&self) -> Result<Readiness, DiscoveryError> {
        match self.get(&["v1", "health", "ready"]).await {
            Ok(answer) if answer.status == StatusCode::OK => Ok(Readiness::Ready),
            Ok(answer) => Err(answer.unexpected()),
            Err(DiscoveryError::ServerError {
                status: 503,
                message,
                ..
            }) => Ok(Readiness::NotReady(message)),
            Err(e) => Err(e),
        }
    }

    async fn get(&self, segments: &[&str]) -> Result<Answer, DiscoveryError> {
        self.send(Request {
            method: Method::GET,
            segments,
            headers: HeaderMap::new(),
            body: None,
            idempotent: true,
        })
        .await
    }

    /// [`Self::store_dump`] with keys and values decoded.
    pub async fn store_entries(
        &self,
        store: StoreName,
    ) -> Result<Vec<DecodedEntry>, DiscoveryError> {
        let entries = self.store_dump(store).await?;
        Ok(entries
            .iter()
            .map(|e| DecodedEntry::decode(store, e))
            .collect())
    }

    async fn lookup_set(
        &self,
        segments: &[&str],
        expected: Expected<'_>,
    ) -> Result<ServiceSet, DiscoveryError> {
        let answer = self.lookup_raw(segments, None).await?;
        if answer.status != StatusCode::OK {
            return Err(answer.unexpected());
        }
        let services: ServiceSet = answer.json()?;
        validate_lookup(&services, expected).map_err(|source| DiscoveryError::Validation {
            uri: answer.uri.clone(),
            source,
        })?;
        Ok(services)
    }

    async fn lookup_raw(
        &self,
        segments: &[&str],
        etag: Option<&str>,
    ) -> Result<Answer, DiscoveryError> {
        let mut headers = HeaderMap::new();
        // The standard header; our server also reads airlift's `ETag` request header, but a
        // proxy or cache in between only understands this one.
        if let Some(value) = etag.and_then(|tag| HeaderValue::from_str(tag).ok()) {
            headers.insert(header::IF_NONE_MATCH, value);
        }
        self.send(Request {
            method: Method::GET,
            segments,
            headers,
            body: None,
            idempotent: true,
        })
        .await
    }

    async fn delete(&self, segments: &[&str]) -> Result<(), DiscoveryError> {
        let answer = self
            .send(Request {
                method: Method::DELETE,
                segments,
                headers: HeaderMap::new(),
                body: None,
                idempotent: true,
            })
            .await?;
        if !answer.status.is_success() {
            return Err(answer.unexpected());
        }
        Ok(())
    }

    /// Sends `request` to the preferred server, then to the others in order while they are
    /// unreachable or answer 5xx. Returns the first other answer (2xx, 3xx or 4xx).
    async fn send(&self, request: Request<'_>) -> Result<Answer, DiscoveryError> {
        let uris = &self.inner.uris;
        let start = self.inner.preferred.load(Ordering::Relaxed) % uris.len();
        let mut errors = Vec::new();
        for offset in 0..uris.len() {
            let index = (start + offset) % uris.len();
            match self.attempt(&uris[index], &request).await {
                Ok(answer) if answer.status.is_server_error() => {
                    tracing::debug!(uri = %answer.uri, status = %answer.status, "discovery server error; trying the next one");
                    errors.push(DiscoveryError::ServerError {
                        message: message_of(answer.status, &answer.body),
                        status: answer.status.as_u16(),
                        uri: answer.uri,
                    });
                }
                Ok(answer) => {
                    self.inner.preferred.store(index, Ordering::Relaxed);
                    return Ok(answer);
                }
                Err(Failure {
                    error,
                    retry_elsewhere,
                }) => {
                    tracing::debug!(%error, "discovery request failed");
                    errors.push(error);
                    if !retry_elsewhere {
                        break;
                    }
                }
            }
        }
        Err(match errors.len() {
            1 => errors.remove(0),
            _ => DiscoveryError::AllFailed(errors),
        })
    }

    async fn attempt(&self, base: &Url, request: &Request<'_>) -> Result<Answer, Failure> {
        let uri = display(base);
        let unreachable = |e: reqwest::Error, sent: bool| Failure {
            // Before the request left (refused, DNS) any request may go elsewhere; after,
            // only one that is safe to apply twice.
            retry_elsewhere: !sent || request.idempotent,
            error: DiscoveryError::Unreachable {
                uri: uri.clone(),
                reason: describe(&e),
            },
        };
        let mut headers = match &self.inner.extra_headers {
            Some(HeaderSource(source)) => source(&request.method, request.segments),
            None => HeaderMap::new(),
        };
        // `extend` replaces names already present: the protocol's own headers win.
        headers.extend(request.headers.clone());
        let mut builder = self
            .inner
            .http
            .request(request.method.clone(), endpoint(base, request.segments))
            .headers(headers);
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let mut response = builder.send().await.map_err(|e| {
            let sent = !e.is_connect();
            unreachable(e, sent)
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| unreachable(e, true))? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(Failure {
                    retry_elsewhere: false,
                    error: DiscoveryError::InvalidResponse {
                        uri,
                        reason: format!("response body larger than {MAX_RESPONSE_BYTES} bytes"),
                    },
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            uri,
            status,
            headers,
            body,
        })
    }
}

struct Failure {
    error: DiscoveryError,
    retry_elsewhere: bool,
}

fn json_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers
}

/// A value that becomes one path segment must be one: not empty, not `.` or `..` (which
/// URL handling would silently drop).
fn check_segment(what: &str, value: &str) -> Result<(), DiscoveryError> {
    if value.is_empty() || value == "." || value == ".." {
        return Err(DiscoveryError::InvalidArgument(format!(
            "{what} '{value}' cannot be used in a URL path"
        )));
    }
    Ok(())
}

/// The server's one-line reason: the first non-empty line of the body, bounded; the
/// status text when the body is empty.
pub(crate) fn message_of(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty());
    match line {
        Some(line) => {
            let mut message: String = line.chars().take(MAX_MESSAGE_CHARS).collect();
            if line.chars().count() > MAX_MESSAGE_CHARS {
                message.push_str("...");
            }
            message
        }
        None => format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("(no message)")
        ),
    }
}

/// A short cause for a transport error: reqwest's own message names only the URL.
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        cause = inner.to_string();
        source = inner.source();
    }
    if cause.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {cause}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_messages_are_one_bounded_line() {
        assert_eq!(
            message_of(
                StatusCode::BAD_REQUEST,
                b"Environment mismatch. Expected: a, Provided: b\n"
            ),
            "Environment mismatch. Expected: a, Provided: b"
        );
        assert_eq!(
            message_of(StatusCode::BAD_REQUEST, b"\n\n  first\nsecond"),
            "first"
        );
        assert_eq!(message_of(StatusCode::NOT_FOUND, b""), "404 Not Found");
        let long = "x".repeat(1000);
        assert_eq!(
            message_of(StatusCode::BAD_REQUEST, long.as_bytes()).len(),
            MAX_MESSAGE_CHARS + 3
        );
    }

    #[test]
    fn path_segments_must_survive_url_handling() {
        assert!(check_segment("node id", "worker-1").is_ok());
        assert!(check_segment("node id", "static").is_ok());
        for bad in ["", ".", ".."] {
            assert!(check_segment("node id", bad).is_err());
        }
    }

    #[test]
    fn builder_refuses_bad_uris() {
        assert!(matches!(
            DiscoveryClient::builder(Vec::<String>::new()).build(),
            Err(DiscoveryError::NoUris)
        ));
        assert!(matches!(
            DiscoveryClient::new("localhost:8411"),
            Err(DiscoveryError::InvalidUri { .. })
        ));
        let client = DiscoveryClient::new("http://127.0.0.1:1/,http://127.0.0.1:2").unwrap();
        assert_eq!(client.uris(), ["http://127.0.0.1:1", "http://127.0.0.1:2"]);
    }
}
