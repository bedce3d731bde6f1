//! Configuration: airlift-style properties files layered through the `config` crate into
//! one typed [`Settings`].
//!
//! Sources, later ones overriding earlier ones: the file given with `--config`, then
//! `node.properties` beside it (the airlift launcher passes node properties as system
//! properties, which override the config file), then `--set KEY=VALUE` overrides.
//!
//! Keys use airlift's names where airlift has one. Unknown keys (an airlift `etc/` also
//! holds Jetty, logging and JVM settings) are reported as warnings, except one within a
//! small edit distance of a known key, which is almost surely a typo and stops startup
//! with a "did you mean" (a typo silently falling back to a default is worse than a
//! refused start); [`LoadOptions::strict`] refuses every unknown key. A malformed value of
//! a known key stops startup with a message naming the key.

mod properties;
mod security;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::Source;
use thiserror::Error;

pub use discovery_types::units::{parse_data_size, parse_duration};
pub use properties::{parse_properties, PropertiesSource};
pub use security::{AnnouncementAuthentication, AuthSettings, LookupAuthentication, TlsSettings};

/// Why the configuration could not be loaded. The message names the key or file.
#[derive(Debug, Error)]
pub enum SettingsError {
    #[error("{0}")]
    Source(String),
    #[error("invalid value '{value}' for {key}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
    #[error("{key} is required when a configuration file is given")]
    Missing { key: String },
    /// Unknown keys that are refused: near misses of known keys, or any with
    /// `--strict-config`. Only the keys are named: a value may be a secret.
    #[error("{}", .0.join("; "))]
    Unknown(Vec<String>),
}

impl From<config::ConfigError> for SettingsError {
    fn from(e: config::ConfigError) -> Self {
        SettingsError::Source(e.to_string())
    }
}

/// One documented key: its name, its default as written in a properties file, and what it
/// does. The README's configuration reference lists the same keys.
#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    pub name: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

/// Every key the server understands. Per-store keys exist once for `dynamic` and once for
/// `static`.
pub const KEYS: &[KeySpec] = &[
    KeySpec { name: "node.environment", default: "test (required with --config)", help: "Environment name; announcements must carry exactly this. Pattern [a-z0-9][_a-z0-9]*." },
    KeySpec { name: "node.id", default: "a UUID generated once and kept in <store.data-dir>/node-id", help: "This server's id; must match its entry in the service inventory." },
    KeySpec { name: "node.bind-ip", default: "0.0.0.0 with --config (as airlift), 127.0.0.1 without", help: "Address the HTTP (and HTTPS) listeners bind. The bare discoveryd (no --config) listens on loopback only; --set node.bind-ip=0.0.0.0 listens on all interfaces." },
    KeySpec { name: "http-server.http.port", default: "8411", help: "HTTP port; 0 picks a free port (the bound address is logged)." },
    KeySpec { name: "http-server.max-request-size", default: "1MB", help: "Largest request body accepted; larger ones get 413. (ours)" },
    KeySpec { name: "http-server.max-connections", default: "10000", help: "Most open connections; new ones beyond it are closed at once. (ours)" },
    KeySpec { name: "http-server.max-connections-per-client", default: "1000", help: "Most open connections from one client address, so one host cannot take every slot. (ours)" },
    KeySpec { name: "store.data-dir", default: "data", help: "Directory of the sled database and the node-id file. (ours)" },
    KeySpec { name: "store.repair", default: "false", help: "Start even though the data directory is damaged (what was lost is logged at ERROR): serve what could be read only once caught up with a ready peer. discoveryd --repair sets it. (ours)" },
    KeySpec { name: "discovery.max-age", default: "30s", help: "Time-to-live of a dynamic announcement." },
    KeySpec { name: "discovery.lookup-max-age", default: "10s", help: "Cache-Control max-age on lookups: how often airlift clients refresh. (ours)" },
    KeySpec { name: "discovery.watch.max-wait", default: "60s", help: "Longest a blocking lookup (?wait=) is held; longer waits are cut to it, 0s answers every lookup at once. Proxies in front need a read timeout above it. (ours)" },
    KeySpec { name: "discovery.announce-max-age", default: "10s", help: "Cache-Control max-age on announcements: clients re-announce at 80 % of it. (ours)" },
    KeySpec { name: "discovery.store-cache-ttl", default: "1s", help: "Accepted for compatibility and unused: lookups always read fresh state." },
    KeySpec { name: "service-inventory.uri", default: "(none)", help: "file: or http(s): URI of the service inventory listing the discovery peers, or dns:NAME:PORT (every address NAME resolves to is a peer); without it the node runs alone." },
    KeySpec { name: "service-inventory.update-interval", default: "10s", help: "How often the service inventory is reloaded; peer changes apply without a restart." },
    KeySpec { name: "store.max-clock-skew", default: "1m", help: "Entries from peers stamped further than this in the future are refused and counted. (ours)" },
    KeySpec { name: "replication.request-timeout", default: "10s", help: "Deadline of one replication request to a peer. (ours)" },
    KeySpec { name: "replication.drain-timeout", default: "5s", help: "On shutdown, how long pending pushes may take before they are left to anti-entropy. (ours)" },
    KeySpec { name: "readiness.warm-up", default: "the value of discovery.announce-max-age (10s)", help: "After a start, lookups answer 503 until every live client has had time to re-announce (or the node caught up with a ready peer). 0s disables. (ours)" },
    KeySpec { name: "readiness.max-wait", default: "1m", help: "A replicated node that reaches no ready peer becomes ready after this long anyway. (ours)" },
    KeySpec { name: "log.level", default: "info", help: "Log level (error, warn, info, debug, trace); RUST_LOG overrides it. debug logs one line per request. (ours)" },
    KeySpec { name: "trino-announce.enabled", default: "true", help: "Serve Trino 477+ announce mode (POST/GET /v1/announce); false answers 404 there. (ours)" },
    KeySpec { name: "trino-announce.max-age", default: "30s", help: "Time-to-live of an announce-mode node's entry, renewed by every POST /v1/announce (Trino keeps a URI 30 s). (ours)" },
    KeySpec { name: "trino-announce.info-timeout", default: "2s", help: "Deadline of one GET {uri}/v1/info to an announcing node. (ours)" },
    KeySpec { name: "trino-announce.max-nodes", default: "10000", help: "Most announce URIs tracked at once; a new URI beyond it gets 503 and is not stored. (ours)" },
    KeySpec { name: "trino-announce.max-concurrent-fetches", default: "16", help: "Most GET /v1/info requests in flight at once; an announce that finds none free is fetched on a later POST. (ours)" },
    KeySpec { name: "internal-communication.shared-secret", default: "(none: authentication off)", help: "The secret Trino and Presto nodes sign their requests with (the same key as in their config.properties). Set: peers must sign replication requests, and announcements are checked (see discovery.announcement.authentication). Never logged." },
    KeySpec { name: "internal-communication.jwt.leeway", default: "30s", help: "How long after its exp an internal token is still accepted (clock skew between the signer and this node). (ours)" },
    KeySpec { name: "discovery.announcement.authentication", default: "verify with a shared secret, none without", help: "none: announcements are not checked; verify: a token, when sent, must be valid and name the announced node (unsigned Prestissimo announcements pass); required: every announcement needs one. (ours)" },
    KeySpec { name: "discovery.lookup.authentication", default: "none", help: "required: lookups (/v1/service*) need an internal token or an operator token. (ours)" },
    KeySpec { name: "discovery.operator-tokens-file", default: "(none)", help: "File of 'TOKEN ROLE' lines (role read or write, # comments), re-read when it changes. Set: static writes, POST /v1/store and the operator endpoints need Authorization: Bearer with the right role. (ours)" },
    KeySpec { name: "http-server.http.enabled", default: "true", help: "Serve plain HTTP on http-server.http.port; false leaves only HTTPS." },
    KeySpec { name: "http-server.https.enabled", default: "false", help: "Serve HTTPS (TLS 1.2/1.3, rustls) on http-server.https.port." },
    KeySpec { name: "http-server.https.port", default: "8443", help: "HTTPS port; 0 picks a free port (the bound address is logged)." },
    KeySpec { name: "http-server.https.keystore.path", default: "(none; required with HTTPS)", help: "PEM file holding the certificate chain and the private key; reloaded when it changes, without a restart." },
    KeySpec { name: "internal-communication.https.truststore.path", default: "(none)", help: "PEM CA bundle trusted, beside the system roots, for outgoing https: requests to peers and the service inventory." },
    KeySpec { name: "<store>.store.tombstone-max-age", default: "1d", help: "How long a delete (tombstone) is kept." },
    KeySpec { name: "<store>.store.gc-interval", default: "dynamic: 1m, static: 1h", help: "How often expired entries and old tombstones are removed." },
    KeySpec { name: "<store>.store.max-entries", default: "dynamic: 250000, static: 100000", help: "Most entries with a value a store holds; new keys beyond it get 503. Tombstones of ids the store never held have a budget of the same size of their own. (ours)" },
    KeySpec { name: "<store>.store.max-bytes", default: "dynamic: 256MB, static: 64MB", help: "Most bytes of keys and values a store holds; new keys beyond it get 503. Keys it holds can always be renewed or deleted. (ours)" },
    KeySpec { name: "<store>.store.remote.max-batch-size", default: "1000", help: "Most entries in one replication push." },
    KeySpec { name: "<store>.store.remote.queue-size", default: "1000", help: "Per-peer push queue length; beyond it the oldest change is dropped and repaired by anti-entropy." },
    KeySpec { name: "<store>.store.remote.update-interval", default: "5s", help: "Accepted and unused: the peer set follows each inventory reload at once." },
    KeySpec { name: "<store>.store.remote.replication-interval", default: "1m", help: "Anti-entropy period: how often each node reconciles with each peer." },
];

/// Keys that exist in airlift discovery configurations and that this server accepts
/// without using; they are reported at info level rather than as unknown.
const ACCEPTED_UNUSED: &[(&str, &str)] = &[
    ("discovery.store-cache-ttl", "lookups always read fresh state"),
    ("static.db.location", "static services live in the sled database under store.data-dir; the Java server's LevelDB directory is not read"),
    ("node.pool", "the server does not announce itself"),
    ("node.location", "the server does not announce itself"),
    ("node.internal-address", "the server does not announce itself"),
    ("node.external-address", "the server does not announce itself"),
    ("discovery.uri", "the server does not announce itself"),
    ("node.data-dir", "the airlift launcher's setting; the store lives in store.data-dir"),
    // airlift's legacy name of node.internal-address; listed here also because it is one
    // letter away from node.id and would otherwise be refused as a typo.
    ("node.ip", "the server does not announce itself"),
];

/// An unknown key at most this many edits (Levenshtein) from a known key is taken for a
/// typo of it. Two catches a transposition (`prot`) or a dropped and a doubled letter;
/// no airlift key we know of is that close to one of ours (see the tests).
const TYPO_DISTANCE: usize = 2;

/// Every concrete known key: [`KEYS`] with `<store>` expanded.
fn known_keys() -> impl Iterator<Item = String> {
    KEYS.iter()
        .flat_map(|spec| match spec.name.strip_prefix("<store>") {
            Some(rest) => vec![format!("dynamic{rest}"), format!("static{rest}")],
            None => vec![spec.name.to_owned()],
        })
}

/// The known key `key` is probably a typo of, if any: the nearest within
/// [`TYPO_DISTANCE`] (ties: the first in [`KEYS`] order).
pub fn did_you_mean(key: &str) -> Option<String> {
    known_keys()
        .map(|known| (strsim::levenshtein(key, &known), known))
        .filter(|(distance, _)| *distance <= TYPO_DISTANCE)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known)
}

/// A duration in the syntax the properties files use (`0s`, `500ms`, `10s`, `1m`, `2h`), the
/// largest whole unit, so a log line can quote a setting as it would be written.
pub fn format_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// How unknown keys are treated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Refuse every unknown key (`discoveryd --strict-config`), not only likely typos.
    /// Accepted-but-unused airlift keys still pass.
    pub strict: bool,
}

/// The settings of one store (`dynamic` or `static`).
#[derive(Debug, Clone, PartialEq)]
pub struct StoreSettings {
    pub tombstone_max_age: Duration,
    pub gc_interval: Duration,
    pub max_entries: usize,
    pub max_bytes: usize,
    pub remote: RemoteSettings,
}

/// Replication settings of one store, read now and used by the replicator.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteSettings {
    pub max_batch_size: usize,
    pub queue_size: usize,
    pub update_interval: Duration,
    pub replication_interval: Duration,
}

/// Trino 477+ announce mode (`POST /v1/announce`).
#[derive(Debug, Clone, PartialEq)]
pub struct TrinoAnnounceSettings {
    pub enabled: bool,
    /// Time-to-live of an announce-mode node's entry.
    pub max_age: Duration,
    /// Deadline of one `GET {uri}/v1/info`.
    pub info_timeout: Duration,
    /// Most announce URIs tracked at once.
    pub max_nodes: usize,
    /// Most `/v1/info` requests in flight at once.
    pub max_concurrent_fetches: usize,
}

/// Everything a node needs to start.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub environment: String,
    /// `None`: use the id kept in the data directory, generating it on first start.
    pub node_id: Option<String>,
    pub bind_ip: IpAddr,
    pub http_port: u16,
    pub max_request_size: usize,
    /// `store.repair`: start on damaged data.
    pub repair: bool,
    /// `http-server.max-connections`.
    pub max_connections: usize,
    /// `http-server.max-connections-per-client`.
    pub max_connections_per_client: usize,
    pub data_dir: PathBuf,
    pub max_age: Duration,
    pub lookup_max_age: Duration,
    /// `discovery.watch.max-wait`: the longest `?wait=` of a blocking lookup.
    pub watch_max_wait: Duration,
    pub announce_max_age: Duration,
    pub dynamic_store: StoreSettings,
    pub static_store: StoreSettings,
    pub service_inventory_uri: Option<String>,
    pub service_inventory_update_interval: Duration,
    pub max_clock_skew: Duration,
    pub replication_request_timeout: Duration,
    pub replication_drain_timeout: Duration,
    pub readiness_warm_up: Duration,
    pub readiness_max_wait: Duration,
    pub log_level: String,
    pub trino_announce: TrinoAnnounceSettings,
    pub auth: AuthSettings,
    pub tls: TlsSettings,
}

/// Loaded settings plus what the operator should be told once logging is up.
#[derive(Debug)]
pub struct LoadedSettings {
    pub settings: Settings,
    /// Unknown keys and questionable combinations.
    pub warnings: Vec<String>,
    /// Accepted-but-unused keys and defaults that were chosen.
    pub notes: Vec<String>,
}

impl Settings {
    /// Loads from an optional properties file (plus `node.properties` beside it) and
    /// `--set` overrides.
    pub fn load(
        config_file: Option<&Path>,
        overrides: &[(String, String)],
    ) -> Result<LoadedSettings, SettingsError> {
        Self::load_with(config_file, overrides, LoadOptions::default())
    }

    /// [`Settings::load`] with options (`--strict-config`).
    pub fn load_with(
        config_file: Option<&Path>,
        overrides: &[(String, String)],
        options: LoadOptions,
    ) -> Result<LoadedSettings, SettingsError> {
        let mut builder = config::Config::builder();
        let mut notes = Vec::new();
        if let Some(file) = config_file {
            builder = builder.add_source(PropertiesSource::from_file(file)?);
            if let Some(node_file) = PropertiesSource::sibling_node_properties(file) {
                notes.push(format!("also read {}", node_file.display()));
                builder = builder.add_source(PropertiesSource::from_file(&node_file)?);
            }
        }
        builder = builder.add_source(PropertiesSource::from_pairs("--set", overrides.to_vec()));
        let merged = builder.build()?.collect()?;
        let mut flat = BTreeMap::new();
        flatten("", merged, &mut flat);
        let mut loaded = Self::from_properties_with(flat, config_file.is_some(), options)?;
        notes.append(&mut loaded.notes);
        loaded.notes = notes;
        Ok(loaded)
    }

    /// Builds settings from flat `key -> value` properties. `from_file` says a
    /// configuration file is used: as in airlift, `node.environment` is then mandatory and
    /// `node.bind-ip` defaults to all interfaces; without one (a developer's bare
    /// `discoveryd`) the node listens on loopback only, so an open write API is not put on
    /// the network by accident.
    pub fn from_properties(
        properties: BTreeMap<String, String>,
        from_file: bool,
    ) -> Result<LoadedSettings, SettingsError> {
        Self::from_properties_with(properties, from_file, LoadOptions::default())
    }

    /// [`Settings::from_properties`] with options (`--strict-config`).
    pub fn from_properties_with(
        properties: BTreeMap<String, String>,
        from_file: bool,
        options: LoadOptions,
    ) -> Result<LoadedSettings, SettingsError> {
        let require_environment = from_file;
        let default_bind_ip = if from_file {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        };
        let mut reader = Reader {
            remaining: properties,
            notes: Vec::new(),
        };
        let environment = match reader.take("node.environment") {
            Some(environment) => environment,
            None if require_environment => {
                return Err(SettingsError::Missing {
                    key: "node.environment".into(),
                })
            }
            None => {
                reader
                    .notes
                    .push("node.environment not set: using 'test'".into());
                "test".into()
            }
        };
        check_pattern("node.environment", &environment, is_environment)?;
        let node_id = reader.take("node.id");
        if let Some(id) = &node_id {
            check_pattern("node.id", id, is_node_id)?;
        }
        let mut settings = Settings {
            environment,
            node_id,
            bind_ip: reader.parsed("node.bind-ip", default_bind_ip, |v| {
                v.parse()
                    .map_err(|_| "must be an IPv4 or IPv6 address".into())
            })?,
            http_port: reader.parsed("http-server.http.port", 8411, |v| {
                v.parse()
                    .map_err(|_| "must be a port number (0-65535)".into())
            })?,
            repair: reader.parsed("store.repair", false, parse_bool)?,
            max_connections: reader.count("http-server.max-connections", 10_000)?,
            max_connections_per_client: reader
                .count("http-server.max-connections-per-client", 1_000)?,
            max_request_size: reader.parsed("http-server.max-request-size", 1024 * 1024, |v| {
                let size = parse_data_size(v)?;
                usize::try_from(size)
                    .ok()
                    .filter(|s| *s >= 1024)
                    .ok_or_else(|| "must be at least 1kB".to_owned())
            })?,
            data_dir: PathBuf::from(
                reader
                    .take("store.data-dir")
                    .unwrap_or_else(|| "data".into()),
            ),
            max_age: reader.duration(
                "discovery.max-age",
                Duration::from_secs(30),
                Duration::from_millis(1),
            )?,
            lookup_max_age: reader.duration(
                "discovery.lookup-max-age",
                Duration::from_secs(10),
                Duration::from_secs(1),
            )?,
            watch_max_wait: reader.duration(
                "discovery.watch.max-wait",
                Duration::from_secs(60),
                Duration::ZERO,
            )?,
            announce_max_age: reader.duration(
                "discovery.announce-max-age",
                Duration::from_secs(10),
                Duration::from_secs(1),
            )?,
            dynamic_store: reader.store("dynamic", Duration::from_secs(60), 250_000, 256 << 20)?,
            static_store: reader.store("static", Duration::from_secs(3600), 100_000, 64 << 20)?,
            // Checked here, so a bad dns:NAME:PORT stops startup naming the key.
            service_inventory_uri: reader.parsed("service-inventory.uri", None, |v| {
                discovery_replicator::inventory::InventoryUri::parse(v)
                    .map(|_| Some(v.to_owned()))
                    .map_err(|e| match e {
                        discovery_replicator::inventory::InventoryError::BadDnsUri {
                            reason,
                            ..
                        } => reason,
                        other => other.to_string(),
                    })
            })?,
            service_inventory_update_interval: reader.duration(
                "service-inventory.update-interval",
                Duration::from_secs(10),
                Duration::from_millis(1),
            )?,
            max_clock_skew: reader.duration(
                "store.max-clock-skew",
                Duration::from_secs(60),
                Duration::ZERO,
            )?,
            replication_request_timeout: reader.duration(
                "replication.request-timeout",
                Duration::from_secs(10),
                Duration::from_millis(10),
            )?,
            replication_drain_timeout: reader.duration(
                "replication.drain-timeout",
                Duration::from_secs(5),
                Duration::ZERO,
            )?,
            readiness_warm_up: Duration::ZERO,
            readiness_max_wait: reader.duration(
                "readiness.max-wait",
                Duration::from_secs(60),
                Duration::ZERO,
            )?,
            log_level: reader.parsed("log.level", "info".to_owned(), |v| {
                crate::telemetry::check_level(v).map(|()| v.to_owned())
            })?,
            trino_announce: TrinoAnnounceSettings {
                enabled: reader.parsed("trino-announce.enabled", true, parse_bool)?,
                max_age: reader.duration(
                    "trino-announce.max-age",
                    Duration::from_secs(30),
                    Duration::from_millis(1),
                )?,
                info_timeout: reader.duration(
                    "trino-announce.info-timeout",
                    Duration::from_secs(2),
                    Duration::from_millis(10),
                )?,
                max_nodes: reader.count("trino-announce.max-nodes", 10_000)?,
                max_concurrent_fetches: reader
                    .count("trino-announce.max-concurrent-fetches", 16)?,
            },
            auth: security::read_auth(&mut reader)?,
            tls: security::read_tls(&mut reader)?,
        };
        settings.readiness_warm_up = reader.duration(
            "readiness.warm-up",
            settings.announce_max_age,
            Duration::ZERO,
        )?;
        // Accepted for compatibility; validated so a typo still stops startup.
        reader.duration(
            "discovery.store-cache-ttl",
            Duration::from_secs(1),
            Duration::ZERO,
        )?;

        let mut warnings = Vec::new();
        let mut notes = reader.notes;
        // Every message below names the key without its value: a mistyped secret key must
        // not put the secret in the log or on the terminal.
        let mut refused = Vec::new();
        for key in reader.remaining.into_keys() {
            match ACCEPTED_UNUSED.iter().find(|(name, _)| *name == key) {
                Some((_, why)) => notes.push(format!("{key} is accepted and not used: {why}")),
                None if key == "discovery.store-cache-ttl" => {}
                None => match did_you_mean(&key) {
                    Some(known) => {
                        refused.push(format!("unknown key {key}; did you mean {known}?"))
                    }
                    None if options.strict => refused.push(format!(
                        "unknown key {key} (--strict-config refuses keys this server does not know)"
                    )),
                    None => warnings.push(format!("ignoring unknown configuration key {key}")),
                },
            }
        }
        if !refused.is_empty() {
            return Err(SettingsError::Unknown(refused));
        }
        if settings.announce_max_age.mul_f64(0.8) >= settings.max_age {
            warnings.push(format!(
                "discovery.announce-max-age ({:?}) makes clients re-announce every {:?}, \
                 not sooner than discovery.max-age ({:?}): announcements will expire between renewals",
                settings.announce_max_age,
                settings.announce_max_age.mul_f64(0.8),
                settings.max_age
            ));
        }
        Ok(LoadedSettings {
            settings,
            warnings,
            notes,
        })
    }

    /// Settings for tests: environment `testing`, loopback, ephemeral port.
    pub fn for_test(data_dir: impl Into<PathBuf>) -> Settings {
        let mut properties = BTreeMap::new();
        properties.insert("node.environment".to_owned(), "testing".to_owned());
        properties.insert("node.bind-ip".to_owned(), "127.0.0.1".to_owned());
        properties.insert("http-server.http.port".to_owned(), "0".to_owned());
        properties.insert("readiness.warm-up".to_owned(), "0s".to_owned());
        properties.insert("readiness.max-wait".to_owned(), "0s".to_owned());
        let mut settings = match Self::from_properties(properties, true) {
            Ok(loaded) => loaded.settings,
            Err(e) => unreachable!("built-in test settings are valid: {e}"),
        };
        settings.data_dir = data_dir.into();
        settings
    }

    /// Cache-Control max-age of lookups, in whole seconds.
    pub fn lookup_max_age_secs(&self) -> u64 {
        self.lookup_max_age.as_secs()
    }

    /// Cache-Control max-age of announcements, in whole seconds.
    pub fn announce_max_age_secs(&self) -> u64 {
        self.announce_max_age.as_secs()
    }
}

/// Takes keys out of the merged properties; whatever is left at the end is unknown.
struct Reader {
    remaining: BTreeMap<String, String>,
    notes: Vec<String>,
}

impl Reader {
    fn take(&mut self, key: &str) -> Option<String> {
        self.remaining.remove(key)
    }

    fn parsed<T>(
        &mut self,
        key: &str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, SettingsError> {
        match self.take(key) {
            None => Ok(default),
            Some(value) => parse(&value).map_err(|reason| SettingsError::Invalid {
                key: key.to_owned(),
                value,
                reason,
            }),
        }
    }

    fn duration(
        &mut self,
        key: &str,
        default: Duration,
        minimum: Duration,
    ) -> Result<Duration, SettingsError> {
        self.parsed(key, default, |v| {
            let duration = parse_duration(v)?;
            if duration < minimum {
                Err(format!("must be at least {minimum:?}"))
            } else {
                Ok(duration)
            }
        })
    }

    fn count(&mut self, key: &str, default: usize) -> Result<usize, SettingsError> {
        self.parsed(key, default, |v| match v.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err("must be a whole number of at least 1".into()),
        })
    }

    fn store(
        &mut self,
        store: &str,
        gc_interval: Duration,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<StoreSettings, SettingsError> {
        let ms = Duration::from_millis(1);
        Ok(StoreSettings {
            tombstone_max_age: self.duration(
                &format!("{store}.store.tombstone-max-age"),
                Duration::from_secs(86400),
                ms,
            )?,
            gc_interval: self.duration(&format!("{store}.store.gc-interval"), gc_interval, ms)?,
            max_entries: self.count(&format!("{store}.store.max-entries"), max_entries)?,
            max_bytes: self.parsed(&format!("{store}.store.max-bytes"), max_bytes, |v| {
                parse_data_size(v).and_then(|size| {
                    usize::try_from(size)
                        .ok()
                        .filter(|s| *s >= 1024)
                        .ok_or_else(|| "must be at least 1kB".to_owned())
                })
            })?,
            remote: RemoteSettings {
                max_batch_size: self
                    .count(&format!("{store}.store.remote.max-batch-size"), 1000)?,
                queue_size: self.count(&format!("{store}.store.remote.queue-size"), 1000)?,
                update_interval: self.duration(
                    &format!("{store}.store.remote.update-interval"),
                    Duration::from_secs(5),
                    ms,
                )?,
                replication_interval: self.duration(
                    &format!("{store}.store.remote.replication-interval"),
                    Duration::from_secs(60),
                    ms,
                )?,
            },
        })
    }
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("must be true or false".into()),
    }
}

fn check_pattern(key: &str, value: &str, valid: fn(&str) -> bool) -> Result<(), SettingsError> {
    if valid(value) {
        Ok(())
    } else {
        let reason = if key == "node.environment" {
            "must match [a-z0-9][_a-z0-9]*"
        } else {
            "must match [A-Za-z0-9][_A-Za-z0-9-]*"
        };
        Err(SettingsError::Invalid {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: reason.to_owned(),
        })
    }
}

/// airlift's environment pattern `[a-z0-9][_a-z0-9]*`.
fn is_environment(value: &str) -> bool {
    let mut chars = value.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// airlift's node id pattern `[A-Za-z0-9][_A-Za-z0-9-]*`.
pub fn is_node_id(value: &str) -> bool {
    let mut chars = value.chars();
    if value.len() > discovery_types::limits::MAX_NODE_ID_BYTES {
        return false;
    }
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Turns the `config` crate's nested tables back into dotted keys.
fn flatten(
    prefix: &str,
    table: config::Map<String, config::Value>,
    out: &mut BTreeMap<String, String>,
) {
    for (key, value) in table {
        let full = if prefix.is_empty() {
            key
        } else {
            format!("{prefix}.{key}")
        };
        match value.clone().into_table() {
            Ok(nested) => flatten(&full, nested, out),
            Err(_) => {
                out.insert(full, value.into_string().unwrap_or_default());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<LoadedSettings, SettingsError> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.properties");
        std::fs::write(&file, text).unwrap();
        Settings::load(Some(&file), &[])
    }

    #[test]
    fn defaults_without_a_file() {
        let loaded = Settings::load(None, &[]).unwrap();
        let s = loaded.settings;
        assert_eq!(s.environment, "test");
        assert_eq!(s.http_port, 8411);
        assert_eq!(
            s.bind_ip,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            "no --config: loopback only"
        );
        assert_eq!(s.data_dir, PathBuf::from("data"));
        assert_eq!(s.max_age, Duration::from_secs(30));
        assert_eq!(s.lookup_max_age_secs(), 10);
        assert_eq!(s.watch_max_wait, Duration::from_secs(60));
        assert_eq!(s.announce_max_age_secs(), 10);
        assert_eq!(s.max_request_size, 1024 * 1024);
        assert_eq!(
            s.dynamic_store.tombstone_max_age,
            Duration::from_secs(86400)
        );
        assert_eq!(s.static_store.gc_interval, Duration::from_secs(3600));
        assert_eq!(s.dynamic_store.remote.max_batch_size, 1000);
        assert_eq!(s.dynamic_store.remote.queue_size, 1000);
        assert_eq!(
            s.dynamic_store.remote.update_interval,
            Duration::from_secs(5)
        );
        assert_eq!(
            s.dynamic_store.remote.replication_interval,
            Duration::from_secs(60)
        );
        assert_eq!(s.service_inventory_update_interval, Duration::from_secs(10));
        assert_eq!(s.max_clock_skew, Duration::from_secs(60));
        assert_eq!(s.replication_request_timeout, Duration::from_secs(10));
        assert_eq!(s.replication_drain_timeout, Duration::from_secs(5));
        assert_eq!(
            s.readiness_warm_up,
            Duration::from_secs(10),
            "follows the announce max-age"
        );
        assert_eq!(s.readiness_max_wait, Duration::from_secs(60));
        assert_eq!(
            s.trino_announce,
            TrinoAnnounceSettings {
                enabled: true,
                max_age: Duration::from_secs(30),
                info_timeout: Duration::from_secs(2),
                max_nodes: 10_000,
                max_concurrent_fetches: 16,
            }
        );
        assert!(loaded.warnings.is_empty());
        assert!(loaded.notes.iter().any(|n| n.contains("using 'test'")));
    }

    #[test]
    fn an_airlift_etc_directory_loads_with_warnings_for_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.properties");
        std::fs::write(
            &config,
            "http-server.http.port=8412\ndiscovery.max-age=45s\nhttp-server.log.path=var/log/http-request.log\n\
             static.db.location=var/db/static\ndiscovery.store-cache-ttl=0ms\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("node.properties"),
            "node.environment=production\nnode.id=disc-1\nnode.data-dir=/var/lib\nhttp-server.threads.max=200\n",
        )
        .unwrap();
        let loaded = Settings::load(Some(&config), &[("node.id".into(), "disc-9".into())]).unwrap();
        assert_eq!(loaded.settings.environment, "production");
        assert_eq!(
            loaded.settings.node_id.as_deref(),
            Some("disc-9"),
            "--set overrides files"
        );
        assert_eq!(loaded.settings.http_port, 8412);
        assert_eq!(loaded.settings.max_age, Duration::from_secs(45));
        assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
        assert!(loaded
            .warnings
            .iter()
            .any(|w| w.contains("http-server.log.path")));
        assert!(loaded
            .warnings
            .iter()
            .any(|w| w.contains("http-server.threads.max")));
        assert!(loaded.notes.iter().any(|n| n.contains("node.data-dir")));
        assert!(loaded
            .notes
            .iter()
            .any(|n| n.contains("static.db.location")));
        assert!(loaded.notes.iter().any(|n| n.contains("node.properties")));
    }

    #[test]
    fn malformed_values_name_the_key() {
        let cases = [
            ("http-server.http.port=eighty", "http-server.http.port"),
            ("discovery.max-age=30", "discovery.max-age"),
            (
                "dynamic.store.gc-interval=1 fortnight",
                "dynamic.store.gc-interval",
            ),
            (
                "static.store.remote.queue-size=0",
                "static.store.remote.queue-size",
            ),
            ("node.bind-ip=localhost", "node.bind-ip"),
            ("node.id=-bad", "node.id"),
            (
                "discovery.store-cache-ttl=soon",
                "discovery.store-cache-ttl",
            ),
            (
                "http-server.max-request-size=1",
                "http-server.max-request-size",
            ),
            ("trino-announce.enabled=yes", "trino-announce.enabled"),
            ("trino-announce.max-nodes=0", "trino-announce.max-nodes"),
            (
                "trino-announce.info-timeout=1ms",
                "trino-announce.info-timeout",
            ),
        ];
        for (line, key) in cases {
            let text = format!("node.environment=testing\n{line}\n");
            let err = load(&text).unwrap_err().to_string();
            assert!(err.contains(key), "{line}: {err}");
        }
        let err = load("node.environment=Prod\n").unwrap_err().to_string();
        assert!(err.contains("node.environment"), "{err}");
    }

    #[test]
    fn a_config_file_must_name_the_environment() {
        let err = load("http-server.http.port=1\n").unwrap_err();
        assert!(matches!(err, SettingsError::Missing { .. }), "{err}");
        assert!(
            Settings::load(Some(Path::new("/nonexistent/config.properties")), &[])
                .unwrap_err()
                .to_string()
                .contains("/nonexistent/config.properties")
        );
    }

    #[test]
    fn a_config_file_binds_all_interfaces_as_airlift_does() {
        let loaded = load("node.environment=testing\n").unwrap();
        assert_eq!(loaded.settings.bind_ip, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let loaded = Settings::load(None, &[("node.bind-ip".into(), "0.0.0.0".into())]).unwrap();
        assert_eq!(loaded.settings.bind_ip, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    }

    #[test]
    fn a_near_miss_of_a_known_key_stops_startup_with_a_suggestion() {
        let err = load("node.environment=testing\nhttp-server.http.prot=8415\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "unknown key http-server.http.prot; did you mean http-server.http.port?"
        );
        // <store> keys are expanded, and overrides are checked like files.
        let err = Settings::load(None, &[("dynamic.store.gc-intervall".into(), "1m".into())])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("did you mean dynamic.store.gc-interval?"),
            "{err}"
        );
        let err = load("node.environment=testing\nnode.enviroment=prod\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean node.environment?"), "{err}");
    }

    #[test]
    fn a_mistyped_secret_key_never_shows_its_value() {
        let err = load("node.environment=testing\ninternal-communication.shared-secrt=hunter2\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("did you mean internal-communication.shared-secret?"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
        // Far from any key: a warning, still without the value.
        let loaded = load("node.environment=testing\ncluster.secret-token=hunter2\n").unwrap();
        assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
        assert!(loaded.warnings[0].contains("cluster.secret-token"));
        assert!(!loaded.warnings[0].contains("hunter2"));
        let strict = Settings::load_with(
            None,
            &[("cluster.secret-token".into(), "hunter2".into())],
            LoadOptions { strict: true },
        )
        .unwrap_err()
        .to_string();
        assert!(!strict.contains("hunter2"), "{strict}");
    }

    /// Keys found in airlift, Presto and Trino `etc/` directories, and in the Java
    /// discovery server's own: none may be taken for a typo of one of our keys, or an
    /// existing `etc/` would stop starting.
    #[test]
    fn foreign_airlift_keys_are_not_taken_for_typos() {
        let foreign = [
            "http-server.log.path",
            "http-server.log.max-history",
            "http-server.log.max-size",
            "http-server.log.enabled",
            "http-server.log.compression.enabled",
            "http-server.threads.max",
            "http-server.threads.min",
            "http-server.http.acceptor-threads",
            "http-server.http.selector-threads",
            "http-server.https.keystore.key",
            "http-server.https.keymanager.password",
            "http-server.https.truststore.path",
            "http-server.admin.enabled",
            "http-server.admin.port",
            "http-server.authentication.type",
            "http-server.process-forwarded",
            "http-server.net.max-idle-time",
            "http-client.request-timeout",
            "node.annotation-file",
            "node.binary-spec",
            "node.config-spec",
            "node.internal-address-source",
            "node.launcher-log-file",
            "node.server-log-file",
            "jmx.rmiregistry.port",
            "jmx.rmiserver.port",
            "log.path",
            "log.levels-file",
            "log.output-file",
            "log.max-history",
            "log.max-size",
            "log.enable-console",
            "log.format",
            "coordinator",
            "discovery-server.enabled",
            "discovery.enabled",
            "discovery.type",
            "internal-communication.https.required",
            "internal-communication.https.keystore.path",
            "internal-communication.https.keystore.key",
            "internal-communication.jwt.enabled",
            "service-inventory.enabled",
            "query.max-memory",
            "testing-dummy.key",
        ];
        for key in foreign {
            assert_eq!(did_you_mean(key), None, "{key}");
        }
        // Accepted keys are checked before the typo rule (node.ip is one letter from
        // node.id): each loads, as a note.
        for (key, _) in ACCEPTED_UNUSED {
            let value = if *key == "discovery.store-cache-ttl" {
                "0ms"
            } else {
                "x"
            };
            let loaded = load(&format!("node.environment=testing\n{key}={value}\n"))
                .unwrap_or_else(|e| panic!("accepted key {key}: {e}"));
            assert!(loaded.warnings.is_empty(), "{key}: {:?}", loaded.warnings);
        }
        let mut text = String::from("node.environment=testing\n");
        for key in foreign {
            text.push_str(&format!("{key}=x\n"));
        }
        let loaded = load(&text).unwrap();
        assert_eq!(
            loaded.warnings.len(),
            foreign.len(),
            "{:?}",
            loaded.warnings
        );
    }

    #[test]
    fn strict_config_refuses_every_unknown_key_but_not_accepted_ones() {
        let strict = LoadOptions { strict: true };
        let overrides = [
            ("http-server.log.path".to_owned(), "var/log".to_owned()),
            ("jmx.rmiserver.port".to_owned(), "9999".to_owned()),
        ];
        let err = Settings::load_with(None, &overrides, strict)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown key http-server.log.path"), "{err}");
        assert!(err.contains("unknown key jmx.rmiserver.port"), "{err}");
        assert!(err.contains("--strict-config"), "{err}");
        let accepted = [
            ("node.pool".to_owned(), "general".to_owned()),
            ("static.db.location".to_owned(), "var/db".to_owned()),
            ("discovery.store-cache-ttl".to_owned(), "0ms".to_owned()),
        ];
        let loaded = Settings::load_with(None, &accepted, strict).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    }

    #[test]
    fn the_longest_blocking_lookup_is_a_duration_and_zero_turns_waiting_off() {
        let set = |value: &str| {
            Settings::load(None, &[("discovery.watch.max-wait".into(), value.into())])
                .map(|loaded| loaded.settings.watch_max_wait)
        };
        assert_eq!(set("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(set("0s").unwrap(), Duration::ZERO);
        let refused = set("forever").unwrap_err().to_string();
        assert!(refused.contains("discovery.watch.max-wait"), "{refused}");
    }

    #[test]
    fn announce_max_age_not_below_the_ttl_is_warned_about() {
        let loaded = load("node.environment=testing\ndiscovery.max-age=5s\n").unwrap();
        assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    }

    #[test]
    fn durations_are_quoted_as_a_properties_file_writes_them() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_secs(10)), "10s");
        assert_eq!(format_duration(Duration::from_secs(60)), "1m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(86400)), "1d");
    }

    #[test]
    fn node_ids_follow_airlift() {
        assert!(is_node_id("disc-1"));
        assert!(is_node_id("8c1f0d1e-0000-4000-8000-000000000001"));
        assert!(!is_node_id("_x"));
        assert!(!is_node_id("a.b"));
        assert!(!is_node_id(""));
    }
}
