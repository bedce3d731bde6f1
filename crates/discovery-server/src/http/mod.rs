//! The airlift-compatible HTTP API.
//!
//! | Method | Path | Handler |
//! |---|---|---|
//! | PUT, DELETE | `/v1/announcement/{nodeId}` | [`announcements`] (dynamic) |
//! | POST, GET | `/v1/announcement/static` | [`announcements`] (static) |
//! | DELETE | `/v1/announcement/static/{serviceId}` | [`announcements`] (static) |
//! | GET | `/v1/service`, `/v1/service/{type}`, `/v1/service/{type}/{pool}` | [`services`] |
//! | GET, POST | `/v1/store/{dynamic,static}` | [`store`] (raw entries, airlift replication) |
//! | GET, POST | `/v1/replication/...` | [`replication`] (between discoveryd servers) |
//! | GET | `/v1/health/live`, `/v1/health/ready` | [`health`] (load balancers, orchestrators) |
//! | GET | `/v1/diagnostics/node/{nodeId}` | [`diagnostics`] (why a node is or is not listed) |
//! | POST, GET | `/v1/announce` | [`announce`] (Trino 477+ announce mode) |
//! | GET | `/metrics` | [`metrics`] (Prometheus) |
//! | GET | `/ui/` (and `/ui`, redirected) | [`ui`] (the status page, HTML) |
//!
//! Java's raw-write back door `PUT /v1/store/{store}/{key}` is deliberately absent.
//! Repeated slashes in paths are collapsed before routing (Presto's client sends
//! `//v1/...` when `discovery.uri` ends in a slash).

mod announce;
mod announcements;
mod auth;
mod body;
mod client_slots;
mod diagnostics;
mod error;
mod health;
mod metrics;
mod replication;
mod request_log;
mod server;
mod services;
mod store;
pub mod tls;
mod ui;

use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Request, Uri};
use axum::routing::{delete, get, post, put};
use axum::Router;

pub use error::ApiError;
pub use server::{serve, ClientAddr, ServerLimits};

use crate::registry::Registry;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub limits: Arc<HttpLimits>,
    pub node: Arc<NodeInfo>,
    pub readiness: Arc<crate::readiness::Readiness>,
    /// Trino announce mode; `None` when `trino-announce.enabled=false` (404 there).
    pub announce: Option<Arc<crate::announce_bridge::AnnounceBridge>>,
    /// Who may call what.
    pub auth: Arc<crate::authenticator::Authenticator>,
    /// What `/metrics` reports; the request log records into it.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Refused and accepted announcements per node id, for `/v1/diagnostics/node/{nodeId}`.
    pub diagnostics: Arc<crate::diagnostics::Diagnostics>,
}

/// This node as the status endpoint reports it.
#[derive(Debug)]
pub struct NodeInfo {
    pub node_id: String,
    /// `service-inventory.uri`, when replication is configured.
    pub inventory: Option<String>,
    /// The current inventory load error, if the last load failed.
    pub inventory_error: Arc<std::sync::Mutex<Option<String>>>,
    pub replicator: Option<discovery_replicator::ReplicatorStatus>,
}

/// Per-request settings of the API.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Largest request body, in bytes.
    pub max_request_size: usize,
    /// Largest replication request body: a batch carries many announcements, each up to
    /// `max_request_size`, base64-encoded.
    pub max_replication_request_size: usize,
    /// `Cache-Control: max-age` on lookups.
    pub lookup_max_age_secs: u64,
    /// `Cache-Control: max-age` on announcements.
    pub announce_max_age_secs: u64,
}

/// The API's routes over `state`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/v1/announcement/static",
            get(announcements::list_static)
                .post(announcements::add_static)
                // A node whose id is literally "static" must still be able to announce.
                .put(announcements::announce_node_named_static)
                .delete(announcements::unannounce_node_named_static),
        )
        .route(
            "/v1/announcement/static/{service_id}",
            delete(announcements::delete_static),
        )
        .route(
            "/v1/announcement/{node_id}",
            put(announcements::announce).delete(announcements::unannounce),
        )
        .route("/v1/announce", post(announce::announce).get(announce::list))
        .route("/v1/service", get(services::all))
        .route("/v1/service/{type}", get(services::of_type))
        .route("/v1/service/{type}/{pool}", get(services::of_type_and_pool))
        .route("/v1/store/{store}", get(store::dump).post(store::apply))
        .route("/v1/health/live", get(health::live))
        .route("/v1/health/ready", get(health::ready))
        .route("/v1/replication/status", get(replication::status))
        .route("/v1/diagnostics/node/{node_id}", get(diagnostics::node))
        .route("/metrics", get(metrics::scrape))
        .route("/ui/", get(ui::page))
        .route("/ui", get(ui::redirect))
        .route("/v1/replication/{store}/push", post(replication::push))
        .route("/v1/replication/{store}/digest", get(replication::digest))
        .route(
            "/v1/replication/{store}/summaries",
            post(replication::summaries),
        )
        .route(
            "/v1/replication/{store}/entries",
            post(replication::entries),
        )
        .route("/v1/replication/{store}/ranges", post(replication::ranges))
        .route("/v1/replication/{store}/diff", post(replication::diff))
        // After routing, so the check sees the route template (`MatchedPath`); unknown
        // paths fall through to the 404 below unchecked. It also counts each request for
        // `/metrics` by that template.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authorize,
        ))
        .fallback(metrics::unmatched)
        .method_not_allowed_fallback(metrics::method_not_allowed)
        .layer(axum::middleware::from_fn(request_log::log_request))
        .with_state(state)
}

/// Collapses repeated slashes in the request path (`//v1/service` -> `/v1/service`).
pub fn normalize_path<B>(mut request: Request<B>) -> Request<B> {
    let path = request.uri().path();
    if !path.contains("//") {
        return request;
    }
    let mut collapsed = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && collapsed.ends_with('/')) {
            collapsed.push(c);
        }
    }
    let path_and_query = match request.uri().query() {
        Some(query) => format!("{collapsed}?{query}"),
        None => collapsed,
    };
    let mut parts = request.uri().clone().into_parts();
    if let Ok(path_and_query) = path_and_query.parse() {
        parts.path_and_query = Some(path_and_query);
        if let Ok(uri) = Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}

/// True when one of the `names` headers lists `tag` (or `*`); weak tags compare by value.
/// Lookups accept `If-None-Match` and the header literally called `ETag`, which is what the
/// airlift client sends on refreshes.
fn client_has_tag(headers: &HeaderMap, names: &[HeaderName], tag: &str) -> bool {
    names
        .iter()
        .flat_map(|name| headers.get_all(name))
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|candidate| {
            candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == tag
        })
}

const NOSNIFF: (HeaderName, HeaderValue) = (
    header::X_CONTENT_TYPE_OPTIONS,
    HeaderValue::from_static("nosniff"),
);

/// Local writes wait while this node's clock is off from a majority of its peers: what it
/// would stamp them with is wrong, and its peers would refuse them.
fn writable(state: &AppState) -> Result<(), ApiError> {
    match state.readiness.clock_refusal() {
        Some(reason) => Err(ApiError::NotReady(reason)),
        None => Ok(()),
    }
}

/// The `{store}` of a path: `dynamic` or `static`, 404 otherwise.
fn store_name(name: &str) -> Result<crate::registry::StoreName, ApiError> {
    name.parse().map_err(|_| ApiError::NotFound)
}

fn json_content_type() -> (HeaderName, HeaderValue) {
    (header::CONTENT_TYPE, HeaderValue::from_static(body::JSON))
}

fn cache_control(max_age_secs: u64) -> (HeaderName, HeaderValue) {
    let value = HeaderValue::from_str(&format!("max-age={max_age_secs}"))
        .unwrap_or_else(|_| HeaderValue::from_static("max-age=10"));
    (header::CACHE_CONTROL, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_slashes_collapse_and_the_query_is_kept() {
        let request = Request::builder()
            .uri("http://h:8411//v1//service///trino/general?pretty")
            .body(())
            .unwrap();
        let normalized = normalize_path(request);
        assert_eq!(normalized.uri().path(), "/v1/service/trino/general");
        assert_eq!(normalized.uri().query(), Some("pretty"));
        let plain = normalize_path(Request::builder().uri("/v1/service").body(()).unwrap());
        assert_eq!(plain.uri().path(), "/v1/service");
    }
}
