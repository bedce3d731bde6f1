//! Shared helpers: a real `discoveryd` on loopback (the testkit's [`Server`], with short
//! cache lifetimes), clients for it or for a set of URIs, announcements in the client
//! library's types, and waiting on watch channels with a deadline.

use std::future::Future;
use std::time::Duration;

use discovery_client::types::{DynamicAnnouncement, StaticAnnouncement};
use discovery_client::{service, DiscoveryClient};
pub use discovery_testkit::{discoveryd, new_id, Server, Stub};
use discovery_testkit::{ports, ProcessOptions};

/// How long a test waits for a condition before failing.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The environment every test server runs with.
pub const ENV: &str = discovery_testkit::ENVIRONMENT;

/// A server with the client suite's defaults; see [`start_server_with`].
pub fn start_server() -> Server {
    start_server_with(|options| options)
}

/// A server with the test defaults plus short cache lifetimes, so refresh loops turn over
/// quickly: clients re-announce every 0.8 s and refresh lookups every 1 s. `configure`
/// adjusts the options after that. Any server can come back at its address with
/// [`Server::restart_in_place`].
pub fn start_server_with(configure: impl FnOnce(ProcessOptions) -> ProcessOptions) -> Server {
    Server::start_with(discoveryd!(), |options| {
        configure(
            options
                .set("discovery.announce-max-age", "1s")
                .set("discovery.lookup-max-age", "1s"),
        )
    })
}

/// A client of `server` only, in the server's environment.
pub fn client_of(server: &Server) -> DiscoveryClient {
    client(&[server.uri()])
}

/// A client over `uris`, in the test environment.
pub fn client(uris: &[String]) -> DiscoveryClient {
    DiscoveryClient::builder(uris.iter().cloned())
        .environment(ENV)
        .build()
        .expect("valid client")
}

/// A URI on which nothing listens: connecting to it is refused.
pub fn closed_uri() -> String {
    ports::closed_url("127.0.0.1")
}

/// A stub answering every request with `status` and `body`, for the cases a real server
/// cannot be made to produce (5xx on demand).
pub async fn fake_server(status: u16, body: &'static str) -> Stub {
    Stub::answering("127.0.0.1", status, body).await
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

/// The `discovery` binary with a clean environment: no inherited DISCOVERY_* variables.
pub fn discovery_command() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_discovery"));
    for name in [
        "DISCOVERY_URI",
        "DISCOVERY_ENVIRONMENT",
        "DISCOVERY_TOKEN",
        "DISCOVERY_SHARED_SECRET_FILE",
    ] {
        command.env_remove(name);
    }
    command
}

pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts a CLI run's exit status, showing both streams when it differs.
#[track_caller]
pub fn assert_status(output: &std::process::Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
}
