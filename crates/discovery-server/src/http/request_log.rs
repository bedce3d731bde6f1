//! One debug line per request, so the troubleshooting steps airlift users know ("grep the
//! request log for PUT /v1/announcement") keep working:
//!
//! ```text
//! DEBUG discovery::request: PUT /v1/announcement/worker-17 202 node=worker-17 412µs
//! ```
//!
//! `node` is the User-Agent, which airlift clients set to their node id.
//!
//! The `/metrics` request counters are not recorded here but inside the router
//! (`http::auth` for matched routes, `http::metrics::unmatched` for the rest): this layer
//! runs before routing, and carrying the route template out on every response cost an
//! allocation per request on the announce path.

use std::time::Instant;

use axum::extract::Request;
use axum::http::header::USER_AGENT;
use axum::middleware::Next;
use axum::response::Response;

pub async fn log_request(request: Request, next: Next) -> Response {
    if !tracing::enabled!(target: "discovery::request", tracing::Level::DEBUG) {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let node = request
        .headers()
        .get(USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_else(|| "-".into());
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::debug!(
        target: "discovery::request",
        "{method} {path} {} node={node} {:?}",
        response.status().as_u16(),
        started.elapsed()
    );
    response
}
