//! Node assembly: data directory, stores, GC loops and the HTTP server, started in order
//! and stopped in reverse, from parts a test or simulation may replace ([`NodeParts`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use discovery_replicator::inventory::{InventoryError, InventoryLoader};
use discovery_replicator::tls::{Truststore, TruststoreError};
use discovery_replicator::{
    HttpTransport, Peer, PeerTransport, Replicator, ReplicatorConfig, ReplicatorHandle,
    TransportError,
};
use discovery_store::gc::run_gc_loop;
use discovery_store::{
    Backend, Clock, Database, MemoryBackend, Store, StoreConfig, StoreError, SystemClock,
};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::announce_bridge::AnnounceBridge;
use crate::authenticator::Authenticator;
use crate::clock_check::{run_clock_check, ClockGuard};
use crate::config::{is_node_id, Settings, StoreSettings};
use crate::data_check::{self, Records};
use crate::http::tls::{self, KeystoreError, ReloadingCertificate};
use crate::http::{self, AppState, HttpLimits, NodeInfo, ServerLimits};
use crate::readiness::Readiness;
use crate::registry::{Registry, ServiceIndex, StoreName, ValueFormat};
use crate::storage_probe::{run_storage_probe, storage_problem};

/// Why a node could not start or stop cleanly.
#[derive(Debug, Error)]
pub enum NodeError {
    #[error("data directory {path}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the listener given to the node has no local address")]
    GivenListener(#[source] std::io::Error),
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error("replication")]
    Replication(#[from] TransportError),
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    #[error(transparent)]
    Truststore(#[from] TruststoreError),
    #[error("http-server.http.enabled=false and http-server.https.enabled=false: the node would listen on nothing")]
    NoListener,
    #[error(transparent)]
    OperatorTokens(#[from] crate::operator_tokens::TokenFileError),
    #[error("cannot build the HTTP client of announce mode: {0}")]
    AnnounceClient(String),
    #[error(
        "the data in {path} is damaged: {}; nothing was changed. Start with --repair (store.repair=true) \
         to start with what could be read, stay not ready and fill in from the peers",
        problems.join("; ")
    )]
    Damaged {
        path: PathBuf,
        problems: Vec<String>,
    },
}

/// Where a node keeps its entries.
pub enum Storage {
    /// sled under `store.data-dir`: what `discoveryd` uses.
    Disk,
    /// Memory only, gone on shutdown: for tests and simulations.
    Memory,
}

/// Starts nodes.
pub struct Node;

/// What a node is built from besides its settings. [`NodeParts::new`] is what
/// `discoveryd` runs on: sled under `store.data-dir`, the system clock, its own listeners,
/// and HTTP replication with the peers of `service-inventory.uri`. Tests and simulations
/// replace parts: memory storage, a controlled clock, a listener bound beforehand, another
/// transport, a peer set given directly.
pub struct NodeParts<T = HttpTransport> {
    storage: Storage,
    clock: Arc<dyn Clock>,
    listener: Option<TcpListener>,
    transport: Option<Arc<T>>,
    peers: Option<watch::Receiver<Arc<Vec<Peer>>>>,
}

impl NodeParts {
    /// What `discoveryd` runs on.
    pub fn new() -> Self {
        NodeParts {
            storage: Storage::Disk,
            clock: Arc::new(SystemClock),
            listener: None,
            transport: None,
            peers: None,
        }
    }
}

impl Default for NodeParts {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: PeerTransport> NodeParts<T> {
    /// Where entries are kept.
    pub fn storage(mut self, storage: Storage) -> Self {
        self.storage = storage;
        self
    }

    /// The wall clock of entry versions, timestamps and expiry.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Serves plain HTTP on `listener` instead of binding
    /// `node.bind-ip:http-server.http.port` (also with `http-server.http.enabled=false`:
    /// a listener given is a listener wanted).
    pub fn listener(mut self, listener: TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Replicates with the peers published on `peers` instead of the inventory's, with or
    /// without `service-inventory.uri`. A fixed set: keep the sender, or drop it after
    /// sending; the replicator keeps the last set it saw.
    pub fn peers(mut self, peers: watch::Receiver<Arc<Vec<Peer>>>) -> Self {
        self.peers = Some(peers);
        self
    }

    /// Reaches the peers through `transport` instead of HTTP (`HttpTransport`).
    pub fn transport<U: PeerTransport>(self, transport: Arc<U>) -> NodeParts<U> {
        NodeParts {
            storage: self.storage,
            clock: self.clock,
            listener: self.listener,
            transport: Some(transport),
            peers: self.peers,
        }
    }
}

impl Node {
    /// Starts a node on sled under the settings' data directory, with the system clock.
    pub async fn start(settings: Settings) -> Result<NodeHandle, NodeError> {
        Self::start_with_parts(settings, NodeParts::new()).await
    }

    /// Starts a node with a chosen storage and clock.
    pub async fn start_with(
        settings: Settings,
        storage: Storage,
        clock: Arc<dyn Clock>,
    ) -> Result<NodeHandle, NodeError> {
        Self::start_with_parts(settings, NodeParts::new().storage(storage).clock(clock)).await
    }

    /// Starts a node from `parts` (see [`NodeParts`]).
    pub async fn start_with_parts<T: PeerTransport>(
        settings: Settings,
        parts: NodeParts<T>,
    ) -> Result<NodeHandle, NodeError> {
        let clock = parts.clock;
        let mut damage = Vec::new();
        // How many of `damage` have been reported (and accepted, under store.repair).
        let mut reported = 0;
        let mut recorded = None;
        let (node_id, backends, database) = match parts.storage {
            Storage::Disk => {
                let dir = &settings.data_dir;
                std::fs::create_dir_all(dir).map_err(|source| NodeError::DataDir {
                    path: dir.clone(),
                    source,
                })?;
                // Read before anything writes: a node id left by an earlier start means
                // this directory held data.
                let started_before = dir.join("node-id").exists();
                let node_id = resolve_node_id(&settings, dir)?;
                let db_dir = dir.join("db");
                if started_before && !db_dir.join("db").exists() {
                    damage.push(format!(
                        "{} is missing while {} exists: every entry this node held is gone",
                        db_dir.join("db").display(),
                        dir.join("node-id").display()
                    ));
                    // Refuse before opening the database, which would create a new one.
                    refuse_unless_repairing(&settings, &damage)?;
                    reported = damage.len();
                }
                recorded = data_check::read_record(dir);
                let db = Database::open(&db_dir)?;
                let dynamic: Box<dyn Backend> = Box::new(db.backend("dynamic")?);
                let static_backend: Box<dyn Backend> = Box::new(db.backend("static")?);
                (node_id, [dynamic, static_backend], Some(db))
            }
            Storage::Memory => {
                let node_id = settings
                    .node_id
                    .clone()
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                let backends: [Box<dyn Backend>; 2] = [
                    Box::new(MemoryBackend::new()),
                    Box::new(MemoryBackend::new()),
                ];
                (node_id, backends, None)
            }
        };
        let [dynamic_backend, static_backend] = backends;
        let skew_ms = duration_ms(settings.max_clock_skew);
        let dynamic = Arc::new(open_store(
            StoreName::Dynamic,
            &settings.dynamic_store,
            skew_ms,
            dynamic_backend,
            &clock,
        )?);
        let static_services = Arc::new(open_store(
            StoreName::Static,
            &settings.static_store,
            skew_ms,
            static_backend,
            &clock,
        )?);
        if let Some(recorded) = &recorded {
            let read = Records::from([
                (
                    StoreName::Dynamic.to_string(),
                    dynamic.content_record().into(),
                ),
                (
                    StoreName::Static.to_string(),
                    static_services.content_record().into(),
                ),
            ]);
            damage.extend(data_check::compare(recorded, &read));
        }
        refuse_unless_repairing(&settings, &damage[reported..])?;
        if recorded.is_some() {
            data_check::forget_record(&settings.data_dir);
        }
        let mut registry = Registry::new(
            settings.environment.clone(),
            Arc::clone(&dynamic),
            Arc::clone(&static_services),
            duration_ms(settings.max_age),
        );
        if settings.trino_announce.enabled {
            registry = registry.allowing_max_age(duration_ms(settings.trino_announce.max_age));
        }
        let registry = Arc::new(registry);

        // Bind before starting anything else: a taken port, or a keystore or truststore
        // that cannot be used, stops the start cleanly.
        let truststore = match &settings.tls.truststore_path {
            Some(path) => Some(Truststore::load(path)?),
            None => None,
        };
        let http_listener = match (parts.listener, settings.tls.http_enabled) {
            (Some(listener), _) => Some(given_listener(listener)?),
            (None, true) => {
                Some(bind(SocketAddr::new(settings.bind_ip, settings.http_port)).await?)
            }
            (None, false) => None,
        };
        let https_listener = match settings.tls.https_enabled {
            true => Some(HttpsListener::bind(&settings).await?),
            false => None,
        };
        let http_addr = http_listener.as_ref().map(|(_, addr)| *addr);
        let https_addr = https_listener.as_ref().map(|https| https.addr);
        let local_addr = http_addr.or(https_addr).ok_or(NodeError::NoListener)?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        registry.start_watches(
            settings.watch_max_wait,
            settings.max_connections,
            shutdown_rx.clone(),
        );
        let (storage_restart_tx, storage_restart) = watch::channel(None);
        let auth = Arc::new(Authenticator::new(&settings.auth)?);
        warn_about_open_endpoints(&settings);
        let max_replication_request_size = settings.max_request_size.saturating_mul(4);
        let inventory_error = Arc::new(std::sync::Mutex::new(None));
        let mut background = Vec::new();
        // Who the peers are: given, or the inventory's.
        let (peer_set, inventory) = match parts.peers {
            Some(given) => (Some(given), None),
            None => match &settings.service_inventory_uri {
                None => (None, None),
                Some(uri) => {
                    let loader = InventoryLoader::new(
                        uri,
                        &node_id,
                        &settings.environment,
                        truststore.as_ref(),
                    )?;
                    let loader = match &settings.auth.shared_secret {
                        Some(secret) => loader.with_signer(peer_minter(secret, &node_id)),
                        None => loader,
                    };
                    let (peers_tx, peers_rx) = watch::channel(Arc::new(Vec::new()));
                    // The first load happens before serving; if it fails the node starts
                    // with no peers and keeps trying every update interval. A dns:
                    // inventory asks this node too, so its reload loop loads first, once
                    // the node serves.
                    if loader.loads_before_serving() {
                        loader
                            .reload_once(&peers_tx, &inventory_error, &mut Vec::new())
                            .await;
                    }
                    (Some(peers_rx), Some((uri.clone(), loader, peers_tx)))
                }
            },
        };
        let replicator = match peer_set {
            None => None,
            Some(peers) => {
                let config =
                    |name: &str| replication_config(name, &settings, max_replication_request_size);
                let responder = Arc::clone(registry.responder());
                let clock = Arc::clone(&clock);
                Some(match parts.transport {
                    Some(transport) => {
                        Replicator::spawn(responder, config, transport, peers, clock)
                    }
                    None => {
                        let transport = http_transport(&settings, &node_id, truststore.as_ref())?;
                        Replicator::spawn(responder, config, Arc::new(transport), peers, clock)
                    }
                })
            }
        };
        let followed_inventory = inventory.as_ref().map(|(uri, _, _)| uri.clone());
        if let Some((_, loader, peers_tx)) = inventory {
            background.push(tokio::spawn(loader.run(
                settings.service_inventory_update_interval,
                peers_tx,
                Arc::clone(&inventory_error),
                shutdown_rx.clone(),
            )));
        }
        background.push(tokio::spawn(run_gc_loop(
            dynamic,
            settings.dynamic_store.gc_interval,
            shutdown_rx.clone(),
        )));
        background.push(tokio::spawn(run_gc_loop(
            static_services,
            settings.static_store.gc_interval,
            shutdown_rx.clone(),
        )));

        let mut readiness = Readiness::new(
            settings.readiness_warm_up,
            settings.readiness_max_wait,
            replicator.as_ref().map(ReplicatorHandle::status),
        );
        if let Some(replicator) = &replicator {
            let guard = Arc::new(ClockGuard::default());
            // Offsets are measured once per anti-entropy round: three rounds without one
            // means the peer is no longer reached.
            let round = settings
                .dynamic_store
                .remote
                .replication_interval
                .max(settings.static_store.remote.replication_interval);
            background.push(tokio::spawn(run_clock_check(
                Arc::clone(&guard),
                replicator.status(),
                Arc::clone(&clock),
                skew_ms,
                round.saturating_mul(3),
                shutdown_rx.clone(),
            )));
            readiness = readiness.with_clock_guard(guard);
        }
        if !damage.is_empty() {
            readiness = readiness.repairing();
        }
        if database.is_some() {
            let watched = Arc::clone(&registry);
            readiness = readiness.with_storage_check(Box::new(move || storage_problem(&watched)));
            background.push(tokio::spawn(run_storage_probe(
                Arc::clone(&registry),
                settings.data_dir.clone(),
                storage_restart_tx,
                shutdown_rx.clone(),
            )));
        }
        let readiness = Arc::new(readiness);
        if auth.operator_tokens().is_some() {
            let auth = Arc::clone(&auth);
            background.push(tokio::spawn(crate::periodic::every(
                TOKEN_FILE_CHECK_PERIOD,
                shutdown_rx.clone(),
                move || {
                    if let Some(file) = auth.operator_tokens() {
                        file.reload_if_changed();
                    }
                },
            )));
        }
        let diagnostics = Arc::new(crate::diagnostics::Diagnostics::new());
        let announce = if settings.trino_announce.enabled {
            let bridge = AnnounceBridge::new(
                Arc::clone(&registry),
                settings.trino_announce.clone(),
                truststore.as_ref(),
            )
            .map_err(|e| NodeError::AnnounceClient(e.to_string()))?
            .with_diagnostics(Arc::clone(&diagnostics));
            Some(Arc::new(bridge))
        } else {
            None
        };
        let app = http::router(AppState {
            auth,
            metrics: Arc::new(crate::metrics::Metrics::new()),
            diagnostics,
            announce,
            readiness: Arc::clone(&readiness),
            registry: Arc::clone(&registry),
            limits: Arc::new(HttpLimits {
                max_request_size: settings.max_request_size,
                max_replication_request_size,
                lookup_max_age_secs: settings.lookup_max_age_secs(),
                announce_max_age_secs: settings.announce_max_age_secs(),
            }),
            node: Arc::new(NodeInfo {
                node_id: node_id.clone(),
                inventory: followed_inventory,
                inventory_error,
                replicator: replicator.as_ref().map(ReplicatorHandle::status),
            }),
        });
        let router = app.clone();
        let limits = ServerLimits {
            max_connections: settings.max_connections,
            max_connections_per_client: settings.max_connections_per_client,
            ..ServerLimits::default()
        };
        // Each listener has its own connection caps: plain HTTP cannot starve HTTPS.
        let mut server_tasks = Vec::new();
        if let Some((listener, _)) = http_listener {
            server_tasks.push(tokio::spawn(http::serve(
                listener,
                app.clone(),
                limits.clone(),
                None,
                shutdown_rx.clone(),
            )));
        }
        if let Some(https) = https_listener {
            background.push(tokio::spawn(tls::watch_keystore(
                https.certificate,
                shutdown_rx.clone(),
            )));
            server_tasks.push(tokio::spawn(http::serve(
                https.listener,
                app,
                limits,
                Some(https.acceptor),
                shutdown_rx,
            )));
        }

        Ok(NodeHandle {
            router,
            node_id,
            local_addr,
            http_addr,
            https_addr,
            registry,
            database,
            shutdown_tx,
            server_tasks,
            replicator,
            drain_timeout: settings.replication_drain_timeout,
            data_dir: settings.data_dir.clone(),
            storage_restart,
            background,
        })
    }
}

/// The transport `discoveryd` replicates over: HTTP(S) to the peers' replication
/// endpoints, signed with the shared secret when there is one.
fn http_transport(
    settings: &Settings,
    node_id: &str,
    truststore: Option<&Truststore>,
) -> Result<HttpTransport, NodeError> {
    let transport = HttpTransport::new(node_id, settings.replication_request_timeout, truststore)?;
    Ok(match &settings.auth.shared_secret {
        Some(secret) => transport.with_signer(peer_minter(secret, node_id)),
        None => transport,
    })
}

/// How often the operator tokens file is checked for changes.
const TOKEN_FILE_CHECK_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

/// Tokens this node puts on its replication requests: `sub` = its node id, signed like
/// Trino's older releases (SHA-256 key), which every verifier accepts.
fn peer_minter(secret: &discovery_auth::SharedSecret, node_id: &str) -> discovery_auth::Minter {
    discovery_auth::Minter::new(
        secret,
        discovery_auth::KeyDerivation::Sha256,
        node_id,
        std::time::Duration::from_secs(300),
    )
}

/// Says at startup what anyone who reaches the port can do.
fn warn_about_open_endpoints(settings: &Settings) {
    let auth = &settings.auth;
    if auth.shared_secret.is_none() {
        tracing::warn!(
            "internal-communication.shared-secret is not set: anyone who reaches this node can push, \
             pull and delete entries through /v1/replication and /v1/store, and announce as any node"
        );
    }
    if auth.shared_secret.is_none() && auth.operator_tokens_file.is_none() {
        tracing::warn!(
            "discovery.operator-tokens-file is not set either: static services and the store dumps are open to anyone"
        );
    }
}

/// Binds `addr` (port 0: any free port) and returns the listener with the address it got.
async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), NodeError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| NodeError::Bind { addr, source })?;
    Ok((listener, bound))
}

/// A listener bound by the caller, with the address it has.
fn given_listener(listener: TcpListener) -> Result<(TcpListener, SocketAddr), NodeError> {
    let addr = listener.local_addr().map_err(NodeError::GivenListener)?;
    Ok((listener, addr))
}

/// The HTTPS listener (`http-server.https.*`): its socket, and the certificate that the
/// keystore watch swaps.
struct HttpsListener {
    listener: TcpListener,
    addr: SocketAddr,
    certificate: Arc<ReloadingCertificate>,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl HttpsListener {
    /// Loads the keystore, then binds `node.bind-ip:http-server.https.port`.
    async fn bind(settings: &Settings) -> Result<Self, NodeError> {
        let path = settings
            .tls
            .keystore_path
            .as_deref()
            .ok_or(KeystoreError::NotConfigured)?;
        let certificate = Arc::new(ReloadingCertificate::load(path)?);
        let acceptor = tls::acceptor(Arc::clone(&certificate))?;
        let (listener, addr) =
            bind(SocketAddr::new(settings.bind_ip, settings.tls.https_port)).await?;
        Ok(HttpsListener {
            listener,
            addr,
            certificate,
            acceptor,
        })
    }
}

fn open_store(
    name: StoreName,
    settings: &StoreSettings,
    max_clock_skew_ms: i64,
    backend: Box<dyn Backend>,
    clock: &Arc<dyn Clock>,
) -> Result<Store<ServiceIndex>, StoreError> {
    let mut config = StoreConfig::new(name.as_str());
    config.tombstone_max_age_ms = duration_ms(settings.tombstone_max_age);
    config.max_entries = settings.max_entries;
    config.max_bytes = settings.max_bytes;
    config.max_clock_skew_ms = max_clock_skew_ms;
    // A 201 for a static service promises it survives a crash.
    config.durable_writes = name == StoreName::Static;
    Store::open(
        config,
        backend,
        Arc::clone(clock),
        ServiceIndex::new(ValueFormat::of(name)),
    )
}

/// How the replicator sends one store: its airlift `<store>.store.remote.*` settings.
fn replication_config(
    name: &str,
    settings: &Settings,
    max_replication_request_size: usize,
) -> ReplicatorConfig {
    let remote = match name.parse() {
        Ok(StoreName::Static) => &settings.static_store.remote,
        _ => &settings.dynamic_store.remote,
    };
    ReplicatorConfig {
        max_batch_size: remote.max_batch_size,
        max_batch_bytes: (max_replication_request_size / 2)
            .min(ReplicatorConfig::default().max_batch_bytes),
        queue_size: remote.queue_size,
        replication_interval: remote.replication_interval,
        request_timeout: settings.replication_request_timeout,
        ..ReplicatorConfig::default()
    }
}

fn duration_ms(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Logs every problem with the data directory at ERROR and refuses the start, unless
/// `store.repair` says to go on (then readiness waits for a ready peer).
fn refuse_unless_repairing(settings: &Settings, damage: &[String]) -> Result<(), NodeError> {
    if damage.is_empty() {
        return Ok(());
    }
    for problem in damage {
        tracing::error!(data_dir = %settings.data_dir.display(), "damaged data: {problem}");
    }
    if !settings.repair {
        return Err(NodeError::Damaged {
            path: settings.data_dir.clone(),
            problems: damage.to_vec(),
        });
    }
    tracing::error!(
        "starting anyway (store.repair): lookups wait until caught up with a ready peer"
    );
    Ok(())
}

/// Most bytes of `<data-dir>/node-id` read: a node id (at most 256 bytes) and a newline fit.
const NODE_ID_FILE_MAX_BYTES: u64 = 1024;

/// The configured node id, or the one kept in `<data-dir>/node-id`, generated on first
/// start. airlift defaults to a new random id on every start, which makes a server
/// replicate to itself; a stable id per data directory avoids that.
fn resolve_node_id(settings: &Settings, dir: &Path) -> Result<String, NodeError> {
    if let Some(id) = &settings.node_id {
        return Ok(id.clone());
    }
    let path = dir.join("node-id");
    let io_error = |source| NodeError::DataDir {
        path: path.clone(),
        source,
    };
    // A node id is short: read a little more than the longest, never the whole of a file
    // that someone replaced with something large.
    let read = std::fs::File::open(&path).and_then(|file| {
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(file, NODE_ID_FILE_MAX_BYTES),
            &mut text,
        )
        .map(|_| text)
    });
    match read {
        Ok(text) if is_node_id(text.trim()) => Ok(text.trim().to_owned()),
        Ok(_) => Err(io_error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "does not hold a valid node id; fix it or set node.id",
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = uuid::Uuid::new_v4().to_string();
            std::fs::write(&path, format!("{id}\n")).map_err(io_error)?;
            tracing::info!(node_id = %id, path = %path.display(), "generated a node id");
            Ok(id)
        }
        Err(e) => Err(io_error(e)),
    }
}

/// A running node.
pub struct NodeHandle {
    /// The routes the listeners serve.
    router: axum::Router,
    node_id: String,
    local_addr: SocketAddr,
    http_addr: Option<SocketAddr>,
    https_addr: Option<SocketAddr>,
    registry: Arc<Registry>,
    database: Option<Database>,
    shutdown_tx: watch::Sender<bool>,
    /// One accept loop per listener (HTTP, HTTPS).
    server_tasks: Vec<JoinHandle<()>>,
    replicator: Option<ReplicatorHandle>,
    drain_timeout: std::time::Duration,
    /// `store.data-dir`, where the clean-shutdown record goes.
    data_dir: PathBuf,
    /// GC loops and the inventory reload loop.
    background: Vec<JoinHandle<()>>,
    /// Set, with the reason, when the storage engine cannot recover in process
    /// (`storage_probe`).
    storage_restart: watch::Receiver<Option<String>>,
}

/// How long a clean shutdown waits for the final flush.
const FLUSH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// Everything is on disk and nothing writes any more: record what it is, for the next
/// start to check (`data_check`).
fn write_clean_shutdown_record(registry: &Registry, data_dir: &Path) {
    let records: Records = StoreName::ALL
        .iter()
        .map(|&name| {
            (
                name.to_string(),
                registry.store(name).content_record().into(),
            )
        })
        .collect();
    if let Err(e) = data_check::write_record(data_dir, &records) {
        tracing::warn!(data_dir = %data_dir.display(), error = %e,
            "cannot write the clean-shutdown record; the next start cannot check the data");
    }
}

impl NodeHandle {
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The address of the plain HTTP listener, or of the HTTPS one when plain HTTP is off
    /// (`http-server.http.enabled=false`); useful with port 0. [`Self::http_addr`] and
    /// [`Self::https_addr`] tell them apart.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address plain HTTP is served on; `None` with `http-server.http.enabled=false`.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The address HTTPS is served on; `None` unless `http-server.https.enabled=true`.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https_addr
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The node's HTTP routes, the ones its listeners serve, for requests sent in process
    /// (`tower::ServiceExt::oneshot`). What the accept loop adds per connection is
    /// missing: its limits, path normalisation ([`crate::http::normalize_path`]) and the
    /// client address ([`crate::http::ClientAddr`]), which a caller may insert itself.
    pub fn router(&self) -> &axum::Router {
        &self.router
    }

    /// Resolves, with the reason, once the node's storage engine failed and cannot
    /// recover without reopening the data directory: the disk accepts writes again, but
    /// the engine still fails (`storage_probe`). The binary answers by restarting in
    /// place; an embedding program decides for itself. Never resolves with memory storage.
    pub async fn storage_restart_needed(&self) -> String {
        let mut asked = self.storage_restart.clone();
        let reason = asked
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|reason| reason.clone());
        match reason {
            Some(reason) => reason,
            // The probe loop is gone (shutdown): nothing will ask any more.
            None => std::future::pending().await,
        }
    }

    /// Stops accepting and finishes in-flight requests, drains the push queues (bounded by
    /// `replication.drain-timeout`), stops GC and inventory reloads, and flushes the stores.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        let _ = self.shutdown_tx.send(true);
        for task in self.server_tasks {
            let _ = task.await;
        }
        if let Some(replicator) = self.replicator {
            replicator.shutdown(self.drain_timeout).await;
        }
        for task in self.background {
            let _ = task.await;
        }
        let Some(db) = self.database else {
            // Memory storage: nothing to make durable.
            return Ok(());
        };
        // A failing disk can make the storage engine's flush hang for good (sled after
        // ENOSPC): bound it, and exit cleanly either way. What is lost is the dynamic
        // entries written since sled's last own flush (at most about half a second), which
        // the peers hold and clients renew; static writes were flushed before their answer.
        let registry = Arc::clone(&self.registry);
        // Kept out of the flush so a flush given up on does not drop the last handle:
        // dropping it flushes again, and would hang the same way.
        let kept = db.clone();
        let flush = async move {
            tokio::task::spawn_blocking(move || {
                StoreName::ALL
                    .iter()
                    .try_for_each(|&name| registry.store(name).flush())
            })
            .await
            .map_err(|e| StoreError::Backend(format!("flush task failed: {e}")))??;
            db.flush().await
        };
        match tokio::time::timeout(FLUSH_DEADLINE, flush).await {
            Ok(Ok(())) => write_clean_shutdown_record(&self.registry, &self.data_dir),
            Ok(Err(e)) => {
                tracing::error!(error = %e,
                    "could not flush the stores (storage failing?); exiting without a clean-shutdown record");
                std::mem::forget(kept);
            }
            Err(_) => {
                tracing::error!(deadline = ?FLUSH_DEADLINE,
                    "the stores did not flush in time (storage failing?); exiting without a clean-shutdown record");
                std::mem::forget(kept);
            }
        }
        Ok(())
    }
}
