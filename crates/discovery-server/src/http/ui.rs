//! `GET /ui/`: the status page for people. Reads this node, its peers (what
//! `/v1/replication/status` serves) and its live services into a
//! [`StatusView`](crate::status_page::StatusView) and renders it with
//! [`crate::status_page`]; `?fragment=1` answers only the content element, which the
//! page's script fetches to refresh itself. `GET /ui` redirects to `/ui/`.
//!
//! It needs what `/v1/replication/status` needs (an operator `read` token once tokens
//! are configured); browsers send it as HTTP Basic (see [`crate::access`]). Nothing here
//! calls another node: peers are shown as the replicator last saw them.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::OnceLock;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use discovery_types::Service;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::{AppState, NOSNIFF};
use crate::registry::{Registry, Selector, StoreName};
use crate::status_page::{
    fragment, page as render_page, Filter, NodeView, PageQuery, PeerView, ServiceRow, StatusView,
    MAX_SERVICE_ROWS, SCRIPT, STYLE,
};

/// `GET /ui/`: the page, or with `fragment=1` its content element.
pub async fn page(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query =
        PageQuery::parse(raw.as_deref()).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    // Reading every live service can take a while on a large node: off the async threads.
    let view = tokio::task::spawn_blocking(move || read_view(&state, query.filter))
        .await
        .map_err(|_| ApiError::StorageUnavailable)?;
    let body = if query.fragment {
        fragment(&view)
    } else {
        render_page(&view)
    };
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            content_security_policy(),
            NOSNIFF,
        ],
        body,
    )
        .into_response())
}

/// `GET /ui`: to `/ui/`, keeping the query. The location is relative, so it also holds
/// behind a proxy that serves the node under a path prefix.
pub async fn redirect(RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    PageQuery::parse(raw.as_deref()).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let location = match raw {
        Some(query) if !query.is_empty() => format!("ui/?{query}"),
        _ => "ui/".to_owned(),
    };
    let location = HeaderValue::from_str(&location).unwrap_or(HeaderValue::from_static("ui/"));
    Ok((
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, location)],
    )
        .into_response())
}

/// Allows the page's own script and style sheet (by hash), requests to this node and
/// nothing else: a value that slipped through escaping still could not run.
fn content_security_policy() -> (HeaderName, HeaderValue) {
    static POLICY: OnceLock<HeaderValue> = OnceLock::new();
    let value = POLICY.get_or_init(|| {
        let hash = |text: &str| {
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
        };
        let policy = format!(
            "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; \
             connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
            hash(SCRIPT),
            hash(STYLE)
        );
        HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static("default-src 'none'"))
    });
    (header::CONTENT_SECURITY_POLICY, value.clone())
}

fn read_view(state: &AppState, filter: Filter) -> StatusView {
    let registry = &state.registry;
    let now_ms = registry.store(StoreName::Dynamic).now_ms();
    let node = NodeView {
        node_id: state.node.node_id.clone(),
        environment: registry.environment().to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime: state.readiness.uptime(),
        ready: state.readiness.check(),
        inventory: state.node.inventory.clone(),
        inventory_error: state
            .node
            .inventory_error
            .lock()
            .ok()
            .and_then(|e| e.clone()),
    };
    let peers = state
        .node
        .replicator
        .as_ref()
        .map(|r| r.peers().iter().map(PeerView::from_status).collect());
    let (services, services_not_shown) = services(registry, &filter, now_ms);
    StatusView {
        node,
        peers,
        services,
        services_not_shown,
        filter,
        now_ms,
    }
}

/// The live services that pass `filter`, at most [`MAX_SERVICE_ROWS`] of them, sorted by
/// type, pool, node id and id; and how many more passed.
fn services(registry: &Registry, filter: &Filter, now_ms: i64) -> (Vec<ServiceRow>, usize) {
    let selector = match (&filter.service_type, &filter.pool) {
        (Some(t), Some(p)) => Selector::TypeAndPool(t, p),
        (Some(t), None) => Selector::Type(t),
        _ => Selector::All,
    };
    // The index already selected by type and pool unless only a pool is asked for.
    let selected_by_index = filter.pool.is_none() || filter.service_type.is_some();
    let mut rows = Vec::new();
    let mut not_shown = 0;
    for name in StoreName::ALL {
        let store = registry.store(name);
        let mut found = Vec::new();
        store.read_index(|index| index.collect(selector, now_ms, &mut found));
        let mut renewed: HashMap<&[u8], Option<i64>> = HashMap::new();
        for indexed in &found {
            // A dynamic entry's key is its node's id: past the cap, counting needs no decoding.
            if rows.len() >= MAX_SERVICE_ROWS && name == StoreName::Dynamic && selected_by_index {
                if filter.matches_node(std::str::from_utf8(&indexed.key).ok()) {
                    not_shown += 1;
                }
                continue;
            }
            // The index holds only what decoded when it was stored.
            let Ok(service) = serde_json::from_str::<Service>(&indexed.json) else {
                continue;
            };
            if !filter.matches_group(&service.service_type, &service.pool)
                || !filter.matches_node(service.node_id.as_deref())
            {
                continue;
            }
            if rows.len() >= MAX_SERVICE_ROWS {
                not_shown += 1;
                continue;
            }
            let renewed_at_ms = *renewed
                .entry(&indexed.key)
                .or_insert_with(|| store.get(&indexed.key).map(|e| e.timestamp));
            rows.push(row(service, name, renewed_at_ms, indexed.expires_at()));
        }
    }
    rows.sort_by(order);
    (rows, not_shown)
}

fn row(
    mut service: Service,
    store: StoreName,
    renewed_at_ms: Option<i64>,
    expires_at_ms: Option<i64>,
) -> ServiceRow {
    let uri = service
        .properties
        .remove("http")
        .or_else(|| service.properties.remove("https"));
    ServiceRow {
        service_type: service.service_type,
        pool: service.pool,
        id: service.id,
        node_id: service.node_id,
        location: service.location,
        uri,
        store: store.as_str(),
        renewed_at_ms,
        expires_at_ms,
    }
}

fn order(a: &ServiceRow, b: &ServiceRow) -> Ordering {
    (&a.service_type, &a.pool, &a.node_id, &a.id).cmp(&(
        &b.service_type,
        &b.pool,
        &b.node_id,
        &b.id,
    ))
}
