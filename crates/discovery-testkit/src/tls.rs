//! Certificates for the TLS tests, generated when a test runs: nothing secret or expiring
//! is committed, and a test that needs a second, unrelated CA (a certificate swapped on
//! disk) just makes one.
//!
//! A [`TestCa`] signs leaves for the names a test connects to (`127.0.0.1`, `localhost`,
//! a cluster node's own loopback address). [`TlsFiles`] writes one CA and one leaf into a
//! temporary directory in the shapes `discoveryd` reads: the keystore
//! (`http-server.https.keystore.path`: certificate chain and private key in one PEM file)
//! and the CA bundle (`internal-communication.https.truststore.path`).
//! [`https_client`] is a client that trusts exactly one CA, nothing else.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use tempfile::TempDir;

/// The names a single-node test reaches its server by.
pub const LOCAL_NAMES: &[&str] = &["127.0.0.1", "localhost"];

/// A certificate authority of one test.
pub struct TestCa {
    certificate: rcgen::Certificate,
    key: KeyPair,
}

impl TestCa {
    /// A self-signed CA whose subject is `name`.
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("a CA key");
        let certificate = params
            .self_signed(&key)
            .expect("a self-signed CA certificate");
        TestCa { certificate, key }
    }

    /// The CA certificate, PEM: what a client or a truststore trusts.
    pub fn pem(&self) -> String {
        self.certificate.pem()
    }

    /// A server certificate for `names` (IP addresses or DNS names) signed by this CA.
    pub fn leaf(&self, names: &[&str]) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("leaf parameters");
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("a leaf key");
        let certificate = params
            .signed_by(&key, &self.certificate, &self.key)
            .expect("a leaf signed by the CA");
        Leaf {
            certificate_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// A server certificate and its private key.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub certificate_pem: String,
    pub key_pem: String,
}

impl Leaf {
    /// The keystore file `discoveryd` reads: the certificate chain, then the key.
    pub fn keystore_pem(&self) -> String {
        format!("{}{}", self.certificate_pem, self.key_pem)
    }
}

/// One CA and a leaf for [`LOCAL_NAMES`], written as `keystore.pem` and `ca.pem` into a
/// temporary directory (removed on drop).
pub struct TlsFiles {
    ca: TestCa,
    dir: TempDir,
}

impl TlsFiles {
    pub fn new() -> TlsFiles {
        let dir = tempfile::tempdir().expect("a temporary directory for certificates");
        let ca = TestCa::new("discovery test CA");
        let files = TlsFiles { ca, dir };
        write_file(&files.ca_path(), &files.ca.pem());
        write_file(
            &files.keystore_path(),
            &files.ca.leaf(LOCAL_NAMES).keystore_pem(),
        );
        files
    }

    pub fn ca(&self) -> &TestCa {
        &self.ca
    }

    /// `http-server.https.keystore.path`.
    pub fn keystore_path(&self) -> PathBuf {
        self.dir.path().join("keystore.pem")
    }

    /// The CA bundle: `internal-communication.https.truststore.path`.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Default for TlsFiles {
    fn default() -> Self {
        TlsFiles::new()
    }
}

/// Writes `contents` to `path`.
pub fn write_file(path: &Path, contents: &str) {
    std::fs::write(path, contents)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// Replaces `path` with `contents` the way certificate tooling does: written beside it,
/// then renamed into place, so a reader sees the old file or the new one, never half.
pub fn replace_file(path: &Path, contents: &str) {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".new");
    let temporary = PathBuf::from(temporary);
    write_file(&temporary, contents);
    std::fs::rename(&temporary, path)
        .unwrap_or_else(|e| panic!("cannot rename {} into place: {e}", temporary.display()));
}

/// A client builder that trusts only `ca_pem` (no built-in or system roots) and no proxy,
/// and opens a new connection (a new handshake) for every request.
pub fn https_client_builder(ca_pem: &str) -> reqwest::ClientBuilder {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("a PEM CA certificate");
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .pool_max_idle_per_host(0)
        .no_proxy()
}

/// A client that trusts only `ca_pem`; see [`https_client_builder`].
pub fn https_client(ca_pem: &str, timeout: Duration) -> reqwest::Client {
    https_client_builder(ca_pem)
        .timeout(timeout)
        .build()
        .expect("an HTTPS client")
}
