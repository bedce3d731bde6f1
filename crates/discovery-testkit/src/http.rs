//! The HTTP client the harnesses talk to test servers with.
//!
//! Two settings matter and are easy to forget: no proxy (a proxy taken from the
//! environment must not see, or break, loopback traffic) and a timeout (a hung server
//! must fail the test with a message, not hang it until the CI gives up).

use std::time::Duration;

use reqwest::Client;

/// A client without proxy whose requests fail after `timeout`.
pub fn http_client(timeout: Duration) -> Client {
    http_client_with(timeout, &[])
}

/// [`http_client`] that also sends `headers` on every request.
pub fn http_client_with(timeout: Duration, headers: &[(String, String)]) -> Client {
    let mut defaults = reqwest::header::HeaderMap::new();
    for (name, value) in headers {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .unwrap_or_else(|e| panic!("header name {name:?}: {e}"));
        let mut value = reqwest::header::HeaderValue::from_str(value)
            .unwrap_or_else(|e| panic!("header value for {name}: {e}"));
        value.set_sensitive(true);
        defaults.insert(name, value);
    }
    Client::builder()
        .no_proxy()
        .timeout(timeout)
        .default_headers(defaults)
        .build()
        .expect("cannot build an HTTP client")
}
