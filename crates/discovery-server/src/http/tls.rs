//! The HTTPS listener's TLS: the certificate from `http-server.https.keystore.path`, a
//! rustls server configuration around it, and the reload that swaps in a renewed
//! certificate without a restart.
//!
//! Why the reload: certificates from an internal CA or ACME live for days to weeks, and
//! restarting every discovery node whenever one is renewed would restart the cluster's
//! membership view with it. The keystore file's metadata is checked every second; a
//! changed file is read and, when it holds a usable certificate and key, served to every
//! new handshake from then on (open connections keep theirs). A file that cannot be used
//! is logged at ERROR and the certificate served so far is kept, so a half-finished
//! renewal never takes the listener down.
//!
//! ALPN offers `h2` and `http/1.1`: Trino 483 speaks HTTP/2 by default
//! (`internal-communication.http2.enabled`), over TLS negotiated by ALPN.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// The configuration key of the keystore, named in every error.
pub const KEYSTORE_KEY: &str = "http-server.https.keystore.path";

/// How often the keystore file is checked for a change.
pub const KEYSTORE_CHECK_EVERY: Duration = Duration::from_secs(1);

/// A keystore is a few kilobytes; anything this large is the wrong file.
const MAX_KEYSTORE_BYTES: u64 = 1024 * 1024;

/// Why a keystore cannot be used. Every message names the key and the file.
#[derive(Debug, Error)]
pub enum KeystoreError {
    #[error("http-server.https.enabled=true needs {KEYSTORE_KEY}")]
    NotConfigured,
    #[error("cannot read {KEYSTORE_KEY} {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{KEYSTORE_KEY} {} is larger than {MAX_KEYSTORE_BYTES} bytes: not a PEM keystore", path.display())]
    TooLarge { path: PathBuf },
    #[error("{KEYSTORE_KEY} {} is not valid PEM: {reason}", path.display())]
    Pem { path: PathBuf, reason: String },
    #[error("{KEYSTORE_KEY} {} holds no certificate (expected the chain as \"BEGIN CERTIFICATE\" blocks, then the private key)", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{KEYSTORE_KEY} {} holds no private key (expected a \"BEGIN PRIVATE KEY\", \"BEGIN RSA PRIVATE KEY\" or \"BEGIN EC PRIVATE KEY\" block after the certificates)", path.display())]
    NoKey { path: PathBuf },
    #[error("{KEYSTORE_KEY} {}: the private key cannot be used: {reason}", path.display())]
    Key { path: PathBuf, reason: String },
    #[error("{KEYSTORE_KEY} {}: the private key does not belong to the first certificate: {reason}", path.display())]
    Mismatch { path: PathBuf, reason: String },
    #[error("cannot set up TLS: {0}")]
    Config(String),
}

/// Reads a keystore: every certificate of the file in order (the server's own first,
/// then its chain) and its private key (PKCS#8, PKCS#1 or SEC1). The key must match the
/// first certificate.
pub fn load_certified_key(path: &Path) -> Result<CertifiedKey, KeystoreError> {
    let read_error = |source| KeystoreError::Read {
        path: path.to_owned(),
        source,
    };
    let length = std::fs::metadata(path).map_err(read_error)?.len();
    if length > MAX_KEYSTORE_BYTES {
        return Err(KeystoreError::TooLarge {
            path: path.to_owned(),
        });
    }
    // Read once and parse the bytes: certificates and key come from the same version of
    // a file that may be replaced at any moment.
    let text = std::fs::read(path).map_err(read_error)?;
    let pem_error = |e: rustls_pki_types::pem::Error| KeystoreError::Pem {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let chain = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error)?;
    if chain.is_empty() {
        return Err(KeystoreError::NoCertificate {
            path: path.to_owned(),
        });
    }
    let key = match PrivateKeyDer::from_pem_slice(&text) {
        Ok(key) => key,
        Err(rustls_pki_types::pem::Error::NoItemsFound) => {
            return Err(KeystoreError::NoKey {
                path: path.to_owned(),
            })
        }
        Err(e) => return Err(pem_error(e)),
    };
    let signing_key =
        rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| KeystoreError::Key {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        // The key type cannot tell its public key: nothing to compare, the handshake
        // will show.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(certified),
        Err(e) => Err(KeystoreError::Mismatch {
            path: path.to_owned(),
            reason: e.to_string(),
        }),
    }
}

/// What identifies one version of the keystore file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    /// A file renamed into place is a new inode, even with the same size and time.
    inode: u64,
}

fn stamp(path: &Path) -> std::io::Result<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path)?;
    Ok(FileStamp {
        modified: metadata.modified().ok(),
        len: metadata.len(),
        inode: metadata.ino(),
    })
}

/// What a check of the keystore found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// The file has not changed since the last look.
    Unchanged,
    /// A new certificate is being served.
    Reloaded,
    /// The file changed but cannot be used (logged); the old certificate is kept.
    Kept,
}

/// The certificate the HTTPS listener serves, swapped when the keystore file changes.
/// Every handshake asks it for the current certificate.
#[derive(Debug)]
pub struct ReloadingCertificate {
    path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// The file as last looked at (`None`: it could not be read).
    seen: Mutex<Option<FileStamp>>,
}

impl ReloadingCertificate {
    /// Loads the keystore at `path`; a keystore that cannot be used is an error (a node
    /// must not start HTTPS without a certificate).
    pub fn load(path: &Path) -> Result<Self, KeystoreError> {
        // Looked at before reading: a change during the read is seen at the next check.
        let seen = stamp(path).ok();
        let certified = load_certified_key(path)?;
        Ok(ReloadingCertificate {
            path: path.to_owned(),
            current: RwLock::new(Arc::new(certified)),
            seen: Mutex::new(seen),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The certificate new handshakes get.
    pub fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Reloads the keystore if its file changed since the last check. Cheap when it did
    /// not (one `stat`). Each version of the file is tried once: a broken file is
    /// reported once, not every second, and retried when it changes again.
    pub fn reload_if_changed(&self) -> Reload {
        let path = self.path.display();
        let now = stamp(&self.path);
        {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            let observed = now.as_ref().ok().copied();
            if *seen == observed {
                return Reload::Unchanged;
            }
            *seen = observed;
        }
        if let Err(e) = now {
            tracing::error!(key = KEYSTORE_KEY, path = %path, error = %e,
                "cannot read the keystore; still serving the certificate loaded before");
            return Reload::Kept;
        }
        match load_certified_key(&self.path) {
            Ok(certified) => {
                let chain = certified.cert.len();
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(certified);
                tracing::info!(key = KEYSTORE_KEY, path = %path, certificates = chain,
                    "keystore changed: serving its certificate to new connections");
                Reload::Reloaded
            }
            Err(e) => {
                let e = crate::error_chain(&e);
                tracing::error!(key = KEYSTORE_KEY, path = %path, error = %e,
                    "the changed keystore cannot be used; still serving the certificate loaded before");
                Reload::Kept
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The TLS side of the HTTPS listener: TLS 1.2 and 1.3 with ring, no client
/// certificates, ALPN `h2` then `http/1.1`, certificates from `certificate`.
pub fn acceptor(certificate: Arc<ReloadingCertificate>) -> Result<TlsAcceptor, KeystoreError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| KeystoreError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(certificate);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Checks the keystore every [`KEYSTORE_CHECK_EVERY`] until `shutdown`, reloading it when
/// it changed.
pub async fn watch_keystore(
    certificate: Arc<ReloadingCertificate>,
    shutdown: watch::Receiver<bool>,
) {
    // A stat per second, and a read of a few kilobytes when the file changed: quick
    // enough for the tick itself.
    crate::periodic::every(KEYSTORE_CHECK_EVERY, shutdown, move || {
        certificate.reload_if_changed();
    })
    .await;
}

#[cfg(test)]
mod tests {
    use discovery_testkit::tls::{replace_file, write_file, TestCa, LOCAL_NAMES};

    use super::*;

    fn end_entity(certified: &CertifiedKey) -> Vec<u8> {
        certified.cert[0].as_ref().to_vec()
    }

    fn first_certificate_der(pem: &str) -> Vec<u8> {
        CertificateDer::pem_slice_iter(pem.as_bytes())
            .next()
            .unwrap()
            .unwrap()
            .as_ref()
            .to_vec()
    }

    #[test]
    fn a_keystore_with_chain_and_key_loads() {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("ca");
        let leaf = ca.leaf(LOCAL_NAMES);
        let path = dir.path().join("keystore.pem");
        // Chain and key, the chain with the CA after the leaf.
        write_file(
            &path,
            &format!("{}{}{}", leaf.certificate_pem, ca.pem(), leaf.key_pem),
        );
        let certified = load_certified_key(&path).unwrap();
        assert_eq!(certified.cert.len(), 2);
        assert_eq!(
            end_entity(&certified),
            first_certificate_der(&leaf.certificate_pem)
        );
        // The key may come first, too.
        write_file(&path, &format!("{}{}", leaf.key_pem, leaf.certificate_pem));
        assert_eq!(load_certified_key(&path).unwrap().cert.len(), 1);
    }

    #[test]
    fn unusable_keystores_are_errors_naming_the_key_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("ca");
        let leaf = ca.leaf(LOCAL_NAMES);
        let other = ca.leaf(LOCAL_NAMES);
        let cases = [
            ("missing", None, "cannot read"),
            ("empty", Some(String::new()), "no certificate"),
            ("key-only", Some(leaf.key_pem.clone()), "no certificate"),
            (
                "cert-only",
                Some(leaf.certificate_pem.clone()),
                "no private key",
            ),
            (
                "garbage",
                Some("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n".into()),
                "not valid PEM",
            ),
            (
                "mismatch",
                Some(format!("{}{}", leaf.certificate_pem, other.key_pem)),
                "does not belong",
            ),
            (
                "bad-key",
                Some(format!(
                    "{}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                    leaf.certificate_pem
                )),
                "cannot be used",
            ),
        ];
        for (name, contents, expected) in cases {
            let path = dir.path().join(format!("{name}.pem"));
            if let Some(contents) = contents {
                write_file(&path, &contents);
            }
            let error = load_certified_key(&path).unwrap_err().to_string();
            assert!(error.contains(KEYSTORE_KEY), "{name}: {error}");
            assert!(
                error.contains(&path.display().to_string()),
                "{name}: {error}"
            );
            assert!(error.contains(expected), "{name}: {error}");
            assert!(ReloadingCertificate::load(&path).is_err(), "{name}");
        }
    }

    /// The accept loop over TLS: a client that never sends its ClientHello is cut off at
    /// the header deadline, and others are served meanwhile.
    #[tokio::test]
    async fn a_handshake_must_finish_within_the_header_deadline() {
        use tokio::io::AsyncReadExt;

        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("ca");
        let path = dir.path().join("keystore.pem");
        write_file(&path, &ca.leaf(LOCAL_NAMES).keystore_pem());
        let certificate = Arc::new(ReloadingCertificate::load(&path).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let limits = crate::http::ServerLimits {
            header_read_timeout: Duration::from_millis(300),
            drain_timeout: Duration::from_secs(2),
            ..crate::http::ServerLimits::default()
        };
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let server = tokio::spawn(crate::http::serve(
            listener,
            app,
            limits,
            Some(acceptor(certificate).unwrap()),
            shutdown_rx,
        ));

        let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        let client = discovery_testkit::tls::https_client(&ca.pem(), Duration::from_secs(5));
        let body = client
            .get(format!("https://{addr}/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, "ok");
        let mut byte = [0u8; 1];
        let closed = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut byte))
            .await
            .expect("the silent connection is closed by the server");
        assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");

        shutdown_tx.send(true).unwrap();
        server.await.unwrap();
    }

    #[test]
    fn a_changed_keystore_is_served_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keystore.pem");
        let first = TestCa::new("first").leaf(LOCAL_NAMES);
        write_file(&path, &first.keystore_pem());
        let certificate = ReloadingCertificate::load(&path).unwrap();
        let served = |c: &ReloadingCertificate| end_entity(&c.current());
        assert_eq!(
            served(&certificate),
            first_certificate_der(&first.certificate_pem)
        );
        assert_eq!(certificate.reload_if_changed(), Reload::Unchanged);

        let second = TestCa::new("second").leaf(LOCAL_NAMES);
        replace_file(&path, &second.keystore_pem());
        assert_eq!(certificate.reload_if_changed(), Reload::Reloaded);
        assert_eq!(
            served(&certificate),
            first_certificate_der(&second.certificate_pem)
        );
        assert_eq!(certificate.reload_if_changed(), Reload::Unchanged);

        // Broken, then gone: the second certificate stays, and each state is reported once.
        replace_file(&path, "not a keystore");
        assert_eq!(certificate.reload_if_changed(), Reload::Kept);
        assert_eq!(certificate.reload_if_changed(), Reload::Unchanged);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(certificate.reload_if_changed(), Reload::Kept);
        assert_eq!(certificate.reload_if_changed(), Reload::Unchanged);
        assert_eq!(
            served(&certificate),
            first_certificate_der(&second.certificate_pem)
        );

        // Fixed: served again.
        let third = TestCa::new("third").leaf(LOCAL_NAMES);
        replace_file(&path, &third.keystore_pem());
        assert_eq!(certificate.reload_if_changed(), Reload::Reloaded);
        assert_eq!(
            served(&certificate),
            first_certificate_der(&third.certificate_pem)
        );
    }
}
