//! Every answered request is counted for `/metrics` (by route template, method and
//! status, with its duration), and logged on one debug line, so the troubleshooting steps
//! airlift users know ("grep the request log for PUT /v1/announcement") keep working:
//!
//! ```text
//! DEBUG discovery::request: PUT /v1/announcement/worker-17 202 node=worker-17 412µs
//! ```
//!
//! `node` is the User-Agent, which airlift clients set to their node id. This layer runs
//! outside the router, before routing: the route template comes back on the response,
//! put there by the authentication middleware (`http::auth`).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::USER_AGENT;
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;

pub async fn log_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let logged =
        tracing::enabled!(target: "discovery::request", tracing::Level::DEBUG).then(|| {
            let node = request
                .headers()
                .get(USER_AGENT)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_else(|| "-".into());
            (request.uri().path().to_owned(), node)
        });
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let route = response.extensions().get::<MatchedPath>();
    state
        .metrics
        .observe(route.map(MatchedPath::as_str), &method, status, elapsed);
    if let Some((path, node)) = logged {
        tracing::debug!(
            target: "discovery::request",
            "{method} {path} {status} node={node} {elapsed:?}"
        );
    }
    response
}
