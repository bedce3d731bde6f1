//! Loading the service inventory (`service-inventory.uri`) and keeping the peer set
//! current: loaded at start, reloaded every `service-inventory.update-interval`. A missing
//! or broken inventory keeps the last good peer set and says so in the log.
//!
//! Three sources: a `file:` path, an `http(s)://` URL (a file served over HTTP or a
//! discovery lookup), and `dns:NAME:PORT` (the addresses NAME resolves to, each asked
//! which node it is: see [`crate::dns`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use discovery_types::ServiceSet;
use thiserror::Error;
use tokio::sync::watch;

use crate::dns::{
    node_id_of_answer, peers_from_addresses, remember_answers, usable_addresses, DnsTarget,
    MAX_PROBE_ANSWER_BYTES, PROBE_PATH,
};
use crate::peers::{peers_from_inventory, Peer};
use crate::tls::Truststore;
use crate::transport::{ANNOUNCEMENTS_HEADER, AUTHENTICATED};

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum InventoryError {
    #[error(
        "service-inventory.uri '{0}' must start with file:, http://, https:// or dns: \
         (dns:NAME:PORT)"
    )]
    BadUri(String),
    #[error("service-inventory.uri '{uri}': {reason}")]
    BadDnsUri { uri: String, reason: String },
    #[error("cannot resolve {name}: {reason}")]
    Resolve { name: String, reason: String },
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("cannot fetch {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("{source_name} is not a service inventory: {reason}")]
    Parse { source_name: String, reason: String },
    #[error(
        "{url} is a discovery lookup from a node that does not require signed announcements \
         (discovery.announcement.authentication=required there): anyone could announce a \
         'discovery' service on it and receive every entry as a peer; its peers are not used"
    )]
    UntrustedLookup { url: String },
}

/// Where the inventory lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InventoryUri {
    File(PathBuf),
    Http(String),
    /// `dns:NAME:PORT`: every address NAME resolves to, at PORT, over plain HTTP.
    Dns(DnsTarget),
}

impl InventoryUri {
    /// `file:/abs`, `file:///abs`, `file:relative` (to the working directory), a bare
    /// path, `http://…`, `https://…` or `dns:NAME:PORT`.
    pub fn parse(text: &str) -> Result<Self, InventoryError> {
        let text = text.trim();
        if text.starts_with("http://") || text.starts_with("https://") {
            return Ok(InventoryUri::Http(text.to_owned()));
        }
        if let Some(target) = text.strip_prefix("dns:") {
            return DnsTarget::parse(target)
                .map(InventoryUri::Dns)
                .map_err(|reason| InventoryError::BadDnsUri {
                    uri: text.to_owned(),
                    reason,
                });
        }
        let path = match text.strip_prefix("file:") {
            Some(rest) => rest.strip_prefix("//").unwrap_or(rest),
            None if text.contains("://") => return Err(InventoryError::BadUri(text.to_owned())),
            None => text,
        };
        if path.is_empty() {
            return Err(InventoryError::BadUri(text.to_owned()));
        }
        Ok(InventoryUri::File(PathBuf::from(path)))
    }
}

impl std::fmt::Display for InventoryUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InventoryUri::File(path) => write!(f, "file:{}", path.display()),
            InventoryUri::Http(url) => f.write_str(url),
            InventoryUri::Dns(target) => target.fmt(f),
        }
    }
}

/// Deadline of one name resolution of a `dns:` inventory. The system resolver runs on a
/// blocking thread that cannot be cancelled; the reload stops waiting for it after this.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Deadline of one probe (`GET /v1/replication/status` of one address): a hung address
/// costs this much of a reload, never more; all addresses are probed at once.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Reads the inventory and turns it into peers.
#[derive(Debug, Clone)]
pub struct InventoryLoader {
    uri: InventoryUri,
    own_node_id: String,
    environment: String,
    client: reqwest::Client,
    /// Signs the fetch of an `http(s):` inventory, which may be a discovery node's lookup
    /// that requires a token (`discovery.lookup.authentication=required`).
    signer: Option<discovery_auth::Minter>,
    /// A `dns:` inventory: which node each address said it is (see [`remember_answers`]).
    dns_ids: Arc<Mutex<BTreeMap<IpAddr, String>>>,
}

impl InventoryLoader {
    /// An `https:` inventory is verified against the system roots and `truststore`
    /// (`internal-communication.https.truststore.path`).
    pub fn new(
        uri: &str,
        own_node_id: &str,
        environment: &str,
        truststore: Option<&Truststore>,
    ) -> Result<Self, InventoryError> {
        let uri = InventoryUri::parse(uri)?;
        let mut builder = crate::tls::client_builder(truststore)
            .user_agent(own_node_id)
            .timeout(Duration::from_secs(10))
            .no_proxy();
        if let InventoryUri::Dns(_) = uri {
            // A probe asks one address who it is; an answer from elsewhere says nothing.
            builder = builder.redirect(reqwest::redirect::Policy::none());
        }
        let client = builder.build().map_err(|e| InventoryError::Fetch {
            url: uri.to_string(),
            reason: e.to_string(),
        })?;
        Ok(InventoryLoader {
            uri,
            own_node_id: own_node_id.to_owned(),
            environment: environment.to_owned(),
            client,
            signer: None,
            dns_ids: Arc::default(),
        })
    }

    /// Every fetch carries an internal token from `signer` (`Authorization: Bearer`).
    pub fn with_signer(mut self, signer: discovery_auth::Minter) -> Self {
        self.signer = Some(signer);
        self
    }

    pub fn uri(&self) -> &InventoryUri {
        &self.uri
    }

    /// Whether the node should load the inventory once before it serves. A `dns:`
    /// inventory should not: its addresses include this node's own, which is asked who it
    /// is and could answer only once the node serves, so [`InventoryLoader::run`] makes its
    /// first load at once instead.
    pub fn loads_before_serving(&self) -> bool {
        !matches!(self.uri, InventoryUri::Dns(_))
    }

    /// Loads the inventory once: the peers, and warnings about entries that were skipped
    /// or an environment that differs from ours (airlift only logs that, and so do we).
    pub async fn load(&self) -> Result<(Vec<Peer>, Vec<String>), InventoryError> {
        let text = match &self.uri {
            InventoryUri::Dns(target) => return self.load_dns(target).await,
            InventoryUri::File(path) => {
                tokio::fs::read(path)
                    .await
                    .map_err(|e| InventoryError::Read {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    })?
            }
            InventoryUri::Http(url) => {
                let fetch_error = |reason: String| InventoryError::Fetch {
                    url: url.clone(),
                    reason,
                };
                let mut request = self.client.get(url);
                if let Some(signer) = &self.signer {
                    request = request.bearer_auth(signer.token());
                }
                let response = request
                    .send()
                    .await
                    .map_err(|e| fetch_error(e.to_string()))?;
                if !response.status().is_success() {
                    return Err(fetch_error(format!("status {}", response.status())));
                }
                let vouched = response
                    .headers()
                    .get(ANNOUNCEMENTS_HEADER)
                    .is_some_and(|v| v.as_bytes() == AUTHENTICATED.as_bytes());
                if is_lookup(url) && !vouched {
                    return Err(InventoryError::UntrustedLookup { url: url.clone() });
                }
                response
                    .bytes()
                    .await
                    .map_err(|e| fetch_error(e.to_string()))?
                    .to_vec()
            }
        };
        let inventory: ServiceSet =
            serde_json::from_slice(&text).map_err(|e| InventoryError::Parse {
                source_name: self.uri.to_string(),
                reason: e.to_string(),
            })?;
        let (peers, mut warnings) = peers_from_inventory(&inventory, &self.own_node_id);
        if inventory.environment != self.environment {
            warnings.push(format!(
                "inventory environment '{}' differs from node.environment '{}'; using it anyway",
                inventory.environment, self.environment
            ));
        }
        let listed = inventory.services.iter().any(|s| {
            s.service_type == "discovery" && s.node_id.as_deref() == Some(&self.own_node_id)
        });
        if !listed {
            warnings.push(format!(
                "this node ({}) is not a discovery entry of the inventory: check node.id",
                self.own_node_id
            ));
        }
        Ok((peers, warnings))
    }

    /// Reloads every `interval` until `shutdown` turns true, publishing changed peer sets
    /// on `peers_tx` and the current load error (if any) in `error`.
    pub async fn run(
        self,
        interval: Duration,
        peers_tx: watch::Sender<Arc<Vec<Peer>>>,
        error: Arc<Mutex<Option<String>>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if self.loads_before_serving() {
            ticker.tick().await; // the caller has just loaded it once
        }
        let mut last_warnings: Vec<String> = Vec::new();
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() { return; }
                    continue;
                }
            }
            self.reload_once(&peers_tx, &error, &mut last_warnings)
                .await;
        }
    }

    /// One reload; logs only what changed since the previous one.
    pub async fn reload_once(
        &self,
        peers_tx: &watch::Sender<Arc<Vec<Peer>>>,
        error: &Mutex<Option<String>>,
        last_warnings: &mut Vec<String>,
    ) {
        match self.load().await {
            Ok((peers, warnings)) => {
                if let Ok(mut error) = error.lock() {
                    if error.take().is_some() {
                        tracing::info!(inventory = %self.uri, "service inventory readable again");
                    }
                }
                if warnings != *last_warnings {
                    warnings
                        .iter()
                        .for_each(|w| tracing::warn!(inventory = %self.uri, "{w}"));
                    *last_warnings = warnings;
                }
                peers_tx.send_if_modified(|current| {
                    let changed = current.as_slice() != peers.as_slice();
                    if changed {
                        *current = Arc::new(peers);
                    }
                    changed
                });
            }
            Err(e) => {
                let text = e.to_string();
                if let Ok(mut error) = error.lock() {
                    if error.as_deref() != Some(text.as_str()) {
                        tracing::warn!(inventory = %self.uri, error = %text,
                            "cannot load the service inventory; keeping the last good peer set");
                    }
                    *error = Some(text);
                }
            }
        }
    }
}

impl InventoryLoader {
    /// A `dns:` load: resolve, ask every address who it is (all at once, each within
    /// [`PROBE_TIMEOUT`]), and map the known addresses to peers.
    async fn load_dns(
        &self,
        target: &DnsTarget,
    ) -> Result<(Vec<Peer>, Vec<String>), InventoryError> {
        let resolve_error = |reason: String| InventoryError::Resolve {
            name: target.name.clone(),
            reason,
        };
        let resolved = tokio::time::timeout(
            RESOLVE_TIMEOUT,
            tokio::net::lookup_host((target.name.as_str(), target.port)),
        )
        .await
        .map_err(|_| resolve_error(format!("no answer within {RESOLVE_TIMEOUT:?}")))?
        .map_err(|e| resolve_error(e.to_string()))?;
        let (addresses, left_out) = usable_addresses(resolved.map(|a| a.ip()));
        let mut warnings = Vec::new();
        if left_out > 0 {
            warnings.push(format!(
                "{} resolves to {} addresses; only the first {} (in address order) are used",
                target.name,
                addresses.len() + left_out,
                addresses.len()
            ));
        }
        let mut probes = tokio::task::JoinSet::new();
        for &ip in &addresses {
            let client = self.client.clone();
            let token = self.signer.as_ref().map(discovery_auth::Minter::token);
            let url = format!("{}{PROBE_PATH}", crate::dns::peer_url(ip, target.port));
            let environment = self.environment.clone();
            probes.spawn(async move {
                let answer = tokio::time::timeout(PROBE_TIMEOUT, probe(client, url, token))
                    .await
                    .unwrap_or_else(|_| Err(format!("no answer within {PROBE_TIMEOUT:?}")))
                    .and_then(|body| node_id_of_answer(&body, &environment));
                (ip, answer)
            });
        }
        let mut answered = BTreeMap::new();
        let mut failures = BTreeMap::new();
        while let Some(done) = probes.join_next().await {
            match done {
                Ok((ip, Ok(node_id))) => {
                    answered.insert(ip, node_id);
                }
                Ok((ip, Err(reason))) => {
                    failures.insert(ip, reason);
                }
                Err(e) => tracing::warn!(error = %e, "an inventory probe task failed"),
            }
        }
        let known = {
            let mut known = self.dns_ids.lock().unwrap_or_else(|e| e.into_inner());
            remember_answers(&mut known, &addresses, &answered);
            known.clone()
        };
        let (peers, unknown) =
            peers_from_addresses(&addresses, &known, &self.own_node_id, target.port);
        warnings.extend(unknown);
        for (ip, reason) in &failures {
            warnings.push(format!("{}: {reason}", SocketAddr::new(*ip, target.port)));
        }
        if !answered.values().any(|id| *id == self.own_node_id) {
            warnings.push(format!(
                "this node ({}) did not answer at any address {} resolves to: check that \
                 the name lists every discovery node (in Kubernetes, a headless service \
                 with publishNotReadyAddresses: true)",
                self.own_node_id, target.name
            ));
        }
        Ok((peers, warnings))
    }
}

/// One probe: `GET url` (signed with `token` when the cluster has a shared secret), the
/// answer's body read up to [`MAX_PROBE_ANSWER_BYTES`].
async fn probe(
    client: reqwest::Client,
    url: String,
    token: Option<String>,
) -> Result<Vec<u8>, String> {
    let mut request = client.get(&url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let mut response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(format!(
            "status {status}: the node requires a token for {PROBE_PATH}; every node needs \
             the same internal-communication.shared-secret"
        ));
    }
    if !status.is_success() {
        return Err(format!("status {status}"));
    }
    let too_large = || format!("answer larger than {MAX_PROBE_ANSWER_BYTES} bytes");
    if response
        .content_length()
        .is_some_and(|length| length > MAX_PROBE_ANSWER_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_PROBE_ANSWER_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// True when `url` is a discovery lookup (`…/v1/service…`) rather than a file served
/// over HTTP: its entries were announced by clients, not written by an operator.
fn is_lookup(url: &str) -> bool {
    let path = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest.find('/').map_or("", |i| &rest[i..]));
    let path = path.split(['?', '#']).next().unwrap_or_default();
    path.split('/')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .windows(2)
        .any(|w| w == ["v1", "service"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_are_told_from_files_served_over_http() {
        assert!(is_lookup("http://d:8411/v1/service/discovery/general"));
        assert!(is_lookup("https://d/v1/service/discovery"));
        assert!(is_lookup("http://d:8411//v1//service?x=1"));
        assert!(!is_lookup("http://files/inventory.json"));
        assert!(!is_lookup("http://files/v1/services.json"));
        assert!(!is_lookup("http://v1/service"));
    }

    #[test]
    fn uris() {
        assert_eq!(
            InventoryUri::parse("file:/etc/inv.json").unwrap(),
            InventoryUri::File("/etc/inv.json".into())
        );
        assert_eq!(
            InventoryUri::parse("file:///etc/inv.json").unwrap(),
            InventoryUri::File("/etc/inv.json".into())
        );
        assert_eq!(
            InventoryUri::parse("file:etc/inv.json").unwrap(),
            InventoryUri::File("etc/inv.json".into())
        );
        assert_eq!(
            InventoryUri::parse("etc/inv.json").unwrap(),
            InventoryUri::File("etc/inv.json".into())
        );
        assert_eq!(
            InventoryUri::parse("http://h/inv").unwrap(),
            InventoryUri::Http("http://h/inv".into())
        );
        assert_eq!(
            InventoryUri::parse("dns:discovery-headless.ns.svc.cluster.local:8411").unwrap(),
            InventoryUri::Dns(DnsTarget {
                name: "discovery-headless.ns.svc.cluster.local".into(),
                port: 8411
            })
        );
        for bad in [
            "dns:",
            "dns:name",
            "dns:name:0",
            "dns:bad_name:8411",
            "dns:h:99999",
        ] {
            let error = InventoryUri::parse(bad).unwrap_err().to_string();
            assert!(
                error.starts_with(&format!("service-inventory.uri '{bad}': ")),
                "{error}"
            );
        }
        assert!(InventoryUri::parse("ftp://h/inv").is_err());
        assert!(InventoryUri::parse("file:").is_err());
    }

    #[tokio::test]
    async fn a_broken_inventory_keeps_the_last_good_peer_set() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inventory.json");
        let doc = |port: u16| {
            format!(
                r#"{{"environment":"test","services":[
                {{"id":"00000000-0000-4000-8000-000000000001","nodeId":"a","type":"discovery","pool":"general","properties":{{"http":"http://127.0.0.1:1"}}}},
                {{"id":"00000000-0000-4000-8000-000000000002","nodeId":"b","type":"discovery","pool":"general","properties":{{"http":"http://127.0.0.1:{port}"}}}}]}}"#
            )
        };
        std::fs::write(&path, doc(2)).unwrap();
        let loader =
            InventoryLoader::new(&format!("file:{}", path.display()), "a", "test", None).unwrap();
        let (tx, rx) = watch::channel(Arc::new(Vec::new()));
        let error = Mutex::new(None);
        let mut warnings = Vec::new();
        loader.reload_once(&tx, &error, &mut warnings).await;
        assert_eq!(rx.borrow()[0].url, "http://127.0.0.1:2");

        std::fs::write(&path, "{ not json").unwrap();
        loader.reload_once(&tx, &error, &mut warnings).await;
        assert_eq!(
            rx.borrow()[0].url,
            "http://127.0.0.1:2",
            "last good set kept"
        );
        assert!(error
            .lock()
            .unwrap()
            .as_deref()
            .unwrap()
            .contains("not a service inventory"));

        std::fs::write(&path, doc(3)).unwrap();
        loader.reload_once(&tx, &error, &mut warnings).await;
        assert_eq!(
            rx.borrow()[0].url,
            "http://127.0.0.1:3",
            "re-addressed peer picked up"
        );
        assert!(error.lock().unwrap().is_none());
    }

    /// A `dns:` inventory against real sockets: `localhost` resolves to 127.0.0.1 (and
    /// ::1 where configured); a stub on 127.0.0.1 answers as node `b`.
    #[tokio::test]
    async fn a_dns_inventory_asks_each_address_who_it_is() {
        let stub = discovery_testkit::Stub::answering(
            "127.0.0.1",
            200,
            r#"{"nodeId":"b","environment":"test","stores":[],"peers":[]}"#,
        )
        .await;
        let port = stub
            .url()
            .rsplit(':')
            .next()
            .unwrap()
            .parse::<u16>()
            .unwrap();
        let uri = format!("dns:localhost:{port}");
        let loader = InventoryLoader::new(&uri, "a", "test", None).unwrap();
        assert!(!loader.loads_before_serving());
        let (peers, warnings) = loader.load().await.unwrap();
        assert_eq!(
            peers,
            vec![Peer {
                node_id: "b".into(),
                url: format!("http://127.0.0.1:{port}")
            }],
            "{warnings:?}"
        );
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("this node (a) did not answer")),
            "{warnings:?}"
        );
        let probe = &stub.recorded()[0];
        assert!(
            probe
                .request_line
                .starts_with("GET /v1/replication/status "),
            "{}",
            probe.request_line
        );
        assert_eq!(probe.user_agent.as_deref(), Some("a"));

        // The same answer under our own id: this node, never a peer.
        let own = InventoryLoader::new(&uri, "b", "test", None).unwrap();
        let (peers, warnings) = own.load().await.unwrap();
        assert!(peers.is_empty(), "{peers:?}");
        assert!(
            !warnings.iter().any(|w| w.contains("did not answer")),
            "{warnings:?}"
        );

        // Another environment's node is not a peer.
        let other = InventoryLoader::new(&uri, "a", "prod", None).unwrap();
        let (peers, warnings) = other.load().await.unwrap();
        assert!(peers.is_empty(), "{peers:?}");
        assert!(
            warnings.iter().any(|w| w.contains("environment 'test'")),
            "{warnings:?}"
        );
    }

    #[tokio::test]
    async fn a_dns_name_that_does_not_resolve_is_a_load_error() {
        let loader =
            InventoryLoader::new("dns:no-such-host.invalid:8411", "a", "test", None).unwrap();
        let error = loader.load().await.unwrap_err();
        assert!(
            matches!(&error, InventoryError::Resolve { name, .. } if name == "no-such-host.invalid"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn an_oversized_or_refusing_probe_answer_is_not_an_identity() {
        let big: &'static str = Box::leak(
            format!(
                r#"{{"nodeId":"b","pad":"{}"}}"#,
                "x".repeat(MAX_PROBE_ANSWER_BYTES)
            )
            .into_boxed_str(),
        );
        for (status, body, why) in [
            (200, big, "larger than"),
            (401, "no", "shared-secret"),
            (302, "", "status 302"),
            (200, "{}", "not a replication status"),
        ] {
            let stub = discovery_testkit::Stub::answering("127.0.0.1", status, body).await;
            let port = stub
                .url()
                .rsplit(':')
                .next()
                .unwrap()
                .parse::<u16>()
                .unwrap();
            let loader =
                InventoryLoader::new(&format!("dns:127.0.0.1:{port}"), "a", "test", None).unwrap();
            let (peers, warnings) = loader.load().await.unwrap();
            assert!(peers.is_empty(), "{status}: {peers:?}");
            assert!(
                warnings.iter().any(|w| w.contains(why)),
                "{status}: {warnings:?}"
            );
        }
    }
}
