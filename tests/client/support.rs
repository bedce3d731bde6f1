//! Shared helpers: a real `discoveryd` on loopback ([`Server`]), a port nothing listens on,
//! a client for a set of URIs, a scripted fake HTTP server for failover cases, and
//! waiting on watch channels with a deadline.

use std::future::Future;
use std::net::TcpListener as StdListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use discovery_client::types::{DynamicAnnouncement, StaticAnnouncement};
use discovery_client::{service, DiscoveryClient};
use discovery_testkit::{DiscoveryProcess, ProcessOptions};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How long a test waits for a condition before failing.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The environment every test server runs with.
pub const ENV: &str = "testing";

/// One `discoveryd` with its own data directory.
pub struct Server {
    // Field order matters: the process is dropped (killed) before its directory goes.
    pub process: Option<DiscoveryProcess>,
    options: ProcessOptions,
    uri: String,
    _dir: TempDir,
}

impl Server {
    /// Test defaults plus short cache lifetimes so refresh loops turn over quickly:
    /// clients re-announce every 0.8 s and refresh lookups every 1 s.
    pub fn start() -> Server {
        Self::start_with(|options| options)
    }

    /// A server whose options `configure` adjusts after the defaults.
    pub fn start_with(configure: impl FnOnce(ProcessOptions) -> ProcessOptions) -> Server {
        let dir = tempfile::tempdir().expect("cannot create a temporary directory");
        let options =
            ProcessOptions::new(env!("CARGO_BIN_EXE_discoveryd"), dir.path().join("data"))
                .set("discovery.announce-max-age", "1s")
                .set("discovery.lookup-max-age", "1s");
        let options = configure(options);
        let process = DiscoveryProcess::start(options.clone()).expect("discoveryd did not start");
        Server {
            uri: process.base_url(),
            process: Some(process),
            options,
            _dir: dir,
        }
    }

    /// A server on a port fixed up front, so it can be restarted at the same address.
    pub fn start_on_fixed_port(configure: impl FnOnce(ProcessOptions) -> ProcessOptions) -> Server {
        let port = free_port();
        Self::start_with(|mut options| {
            options.port = port;
            configure(options)
        })
    }

    /// `http://127.0.0.1:PORT`; unchanged by restarts on a fixed port.
    pub fn uri(&self) -> String {
        self.uri.clone()
    }

    pub fn logs(&self) -> String {
        self.process.as_ref().map(|p| p.logs()).unwrap_or_default()
    }

    /// `kill -9`: no shutdown, no flush.
    pub fn kill(&mut self) {
        if let Some(process) = self.process.as_mut() {
            process.kill().expect("cannot kill discoveryd");
        }
    }

    /// Starts the process again on the same data directory and port, with `configure`
    /// applied to its options.
    pub fn restart_with(&mut self, configure: impl FnOnce(ProcessOptions) -> ProcessOptions) {
        assert_ne!(self.options.port, 0, "restart needs a fixed port");
        self.process = None;
        let options = configure(self.options.clone());
        let process = DiscoveryProcess::start(options).expect("discoveryd did not restart");
        assert_eq!(process.base_url(), self.uri, "restarted on another address");
        self.process = Some(process);
    }

    /// A client of this server only, in the server's environment.
    pub fn client(&self) -> DiscoveryClient {
        client(&[self.uri()])
    }
}

/// A client over `uris`, in the test environment.
pub fn client(uris: &[String]) -> DiscoveryClient {
    DiscoveryClient::builder(uris.iter().cloned())
        .environment(ENV)
        .build()
        .expect("valid client")
}

/// A loopback port that was free a moment ago: bound, read and released.
pub fn free_port() -> u16 {
    let listener = StdListener::bind("127.0.0.1:0").expect("cannot bind 127.0.0.1:0");
    listener.local_addr().expect("bound address").port()
}

/// A URI on which nothing listens: connecting to it is refused.
pub fn closed_uri() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// One node's announcement: a single service of `service_type` with an `http` property.
pub fn node(service_type: &str, http: &str) -> DynamicAnnouncement {
    DynamicAnnouncement {
        environment: ENV.into(),
        pool: "general".into(),
        location: None,
        services: vec![service(service_type, [("http", http)])],
    }
}

/// A static service of `service_type` in pool `general`.
pub fn static_service(service_type: &str, http: &str) -> StaticAnnouncement {
    StaticAnnouncement {
        environment: ENV.into(),
        service_type: service_type.into(),
        pool: "general".into(),
        location: None,
        properties: [("http".to_owned(), http.to_owned())].into(),
    }
}

/// Awaits `future`, failing the test after [`DEADLINE`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(DEADLINE, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {DEADLINE:?} waiting for {what}"),
    }
}

/// A fake HTTP server answering every request with the same status and body, counting
/// requests. For the cases a real server cannot be made to produce (5xx on demand).
pub struct FakeServer {
    pub uri: String,
    hits: Arc<AtomicUsize>,
}

impl FakeServer {
    pub async fn start(status: u16, body: &'static str) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("cannot bind");
        let uri = format!("http://{}", listener.local_addr().expect("bound address"));
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    if read_request(&mut stream).await.is_some() {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let response = format!(
                            "HTTP/1.1 {status} Fake\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = stream.write_all(response.as_bytes()).await;
                        let _ = stream.shutdown().await;
                    }
                });
            }
        });
        FakeServer { uri, hits }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Reads one request (headers and a Content-Length body) so the reply is not answered to
/// a half-sent request.
async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<()> {
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let headers = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length: usize = headers
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return Some(());
            }
        }
        let read = stream.read(&mut buffer).await.ok()?;
        if read == 0 {
            return None;
        }
        data.extend_from_slice(&buffer[..read]);
    }
}
