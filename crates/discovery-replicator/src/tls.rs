//! The one place outgoing HTTP clients get their TLS trust. Peer replication, the
//! service inventory fetch and announce mode's `/v1/info` fetch all talk to nodes of the
//! same cluster, often with certificates from a private CA: each verifies `https:` URIs
//! against the built-in and system roots plus the CA bundle in
//! `internal-communication.https.truststore.path`. Building that in one function keeps
//! the three clients from drifting apart.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use thiserror::Error;

/// The configuration key the truststore comes from, named in every error.
pub const TRUSTSTORE_KEY: &str = "internal-communication.https.truststore.path";

/// A truststore larger than this is not a CA bundle (a system bundle is about 200 kB).
const MAX_TRUSTSTORE_BYTES: u64 = 16 * 1024 * 1024;

/// Why the truststore cannot be used. Every message names the key and the file.
#[derive(Debug, Error)]
pub enum TruststoreError {
    #[error("cannot read {TRUSTSTORE_KEY} {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{TRUSTSTORE_KEY} {} is larger than {MAX_TRUSTSTORE_BYTES} bytes: not a PEM CA bundle", path.display())]
    TooLarge { path: PathBuf },
    #[error("{TRUSTSTORE_KEY} {} is not PEM: {reason}", path.display())]
    Pem { path: PathBuf, reason: String },
    #[error("{TRUSTSTORE_KEY} {} holds no certificate (expected PEM \"BEGIN CERTIFICATE\" blocks)", path.display())]
    Empty { path: PathBuf },
    #[error("{TRUSTSTORE_KEY} {}: certificate {index} cannot be used: {reason}", path.display())]
    Certificate {
        path: PathBuf,
        /// 1-based position in the file.
        index: usize,
        reason: String,
    },
}

/// The CA certificates of `internal-communication.https.truststore.path`, loaded once at
/// startup and shared by every outgoing client.
#[derive(Debug, Clone)]
pub struct Truststore {
    path: PathBuf,
    certificates: Vec<reqwest::Certificate>,
}

impl Truststore {
    /// Reads a PEM bundle of one or more CA certificates. An unreadable file, one that is
    /// not PEM or one without a certificate is an error: a node told to trust a CA must
    /// not start trusting only the system roots.
    pub fn load(path: &Path) -> Result<Self, TruststoreError> {
        let read_error = |source| TruststoreError::Read {
            path: path.to_owned(),
            source,
        };
        let length = std::fs::metadata(path).map_err(read_error)?.len();
        if length > MAX_TRUSTSTORE_BYTES {
            return Err(TruststoreError::TooLarge {
                path: path.to_owned(),
            });
        }
        let text = std::fs::read(path).map_err(read_error)?;
        let mut certificates = Vec::new();
        for (position, parsed) in CertificateDer::pem_slice_iter(&text).enumerate() {
            let index = position + 1;
            let der = parsed.map_err(|e| TruststoreError::Pem {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
            let certificate_error = |reason: String| TruststoreError::Certificate {
                path: path.to_owned(),
                index,
                reason,
            };
            // What reqwest would refuse only when a client is built, refused here, at
            // startup, with the file's name.
            rustls::RootCertStore::empty()
                .add(der.clone())
                .map_err(|e| certificate_error(e.to_string()))?;
            let certificate = reqwest::Certificate::from_der(der.as_ref())
                .map_err(|e| certificate_error(e.to_string()))?;
            certificates.push(certificate);
        }
        if certificates.is_empty() {
            return Err(TruststoreError::Empty {
                path: path.to_owned(),
            });
        }
        Ok(Truststore {
            path: path.to_owned(),
            certificates,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of CA certificates in the bundle.
    pub fn len(&self) -> usize {
        self.certificates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.certificates.is_empty()
    }
}

/// A client builder with the TLS trust every outgoing client of a node shares: rustls,
/// the built-in (webpki) and system roots, and the `truststore`'s CAs when there is one.
/// Callers add their own timeouts, user agent and proxy settings.
pub fn client_builder(truststore: Option<&Truststore>) -> reqwest::ClientBuilder {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(true);
    for certificate in truststore.map_or(&[][..], |t| &t.certificates[..]) {
        builder = builder.add_root_certificate(certificate.clone());
    }
    builder
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn unusable_truststores_are_errors_naming_the_key_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let empty = write(dir.path(), "empty.pem", "");
        let key_only = write(
            dir.path(),
            "key.pem",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        );
        let garbage = write(
            dir.path(),
            "garbage.pem",
            "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
        );
        let not_a_certificate = write(
            dir.path(),
            "junk.pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        for path in [missing, empty, key_only, garbage, not_a_certificate] {
            let error = Truststore::load(&path).unwrap_err().to_string();
            assert!(error.contains(TRUSTSTORE_KEY), "{error}");
            assert!(error.contains(&path.display().to_string()), "{error}");
        }
    }

    #[test]
    fn a_client_builds_without_a_truststore() {
        client_builder(None).build().unwrap();
    }

    #[test]
    fn a_bundle_of_cas_loads_and_a_client_builds_with_it() {
        use discovery_testkit::tls::TestCa;
        let dir = tempfile::tempdir().unwrap();
        let bundle = format!(
            "# our CAs\n{}{}",
            TestCa::new("one").pem(),
            TestCa::new("two").pem()
        );
        let path = write(dir.path(), "bundle.pem", &bundle);
        let truststore = Truststore::load(&path).unwrap();
        assert_eq!(truststore.len(), 2);
        assert_eq!(truststore.path(), path);
        client_builder(Some(&truststore)).build().unwrap();
    }
}
