//! The HTTP client the harnesses talk to test servers with.
//!
//! Two settings matter and are easy to forget: no proxy (a proxy taken from the
//! environment must not see, or break, loopback traffic) and a timeout (a hung server
//! must fail the test with a message, not hang it until the CI gives up).

use std::time::Duration;

use reqwest::Client;

/// A client without proxy whose requests fail after `timeout`.
pub fn http_client(timeout: Duration) -> Client {
    Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .expect("cannot build an HTTP client (no TLS backend is needed)")
}
