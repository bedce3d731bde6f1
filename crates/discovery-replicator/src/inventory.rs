//! Loading the service inventory (`service-inventory.uri`) and keeping the peer set
//! current: loaded at start, reloaded every `service-inventory.update-interval`. A missing
//! or broken inventory keeps the last good peer set and says so in the log.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use discovery_types::ServiceSet;
use thiserror::Error;
use tokio::sync::watch;

use crate::peers::{peers_from_inventory, Peer};
use crate::tls::Truststore;
use crate::transport::{ANNOUNCEMENTS_HEADER, AUTHENTICATED};

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum InventoryError {
    #[error("service-inventory.uri '{0}' must start with file:, http:// or https://")]
    BadUri(String),
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
}

impl InventoryUri {
    /// `file:/abs`, `file:///abs`, `file:relative` (to the working directory), a bare
    /// path, `http://…` or `https://…`.
    pub fn parse(text: &str) -> Result<Self, InventoryError> {
        let text = text.trim();
        if text.starts_with("http://") || text.starts_with("https://") {
            return Ok(InventoryUri::Http(text.to_owned()));
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
        }
    }
}

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
        let client = crate::tls::client_builder(truststore)
            .user_agent(own_node_id)
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .build()
            .map_err(|e| InventoryError::Fetch {
                url: uri.to_string(),
                reason: e.to_string(),
            })?;
        Ok(InventoryLoader {
            uri,
            own_node_id: own_node_id.to_owned(),
            environment: environment.to_owned(),
            client,
            signer: None,
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

    /// Loads the inventory once: the peers, and warnings about entries that were skipped
    /// or an environment that differs from ours (airlift only logs that, and so do we).
    pub async fn load(&self) -> Result<(Vec<Peer>, Vec<String>), InventoryError> {
        let text = match &self.uri {
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
        ticker.tick().await; // the caller has just loaded it once
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
}
