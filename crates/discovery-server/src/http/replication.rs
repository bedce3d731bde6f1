//! The replication endpoints between discoveryd servers (`/v1/replication/...`, ours; see
//! `docs/REPLICATION.md`). The answers themselves come from the registry's `Responder`, so
//! they are the same logic the simulations run; these handlers only read bodies and write
//! headers.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use discovery_replicator::{RespondError, CLOCK_HEADER, READY_HEADER};
use discovery_types::replication::{
    hex64, PushRequest, ReplicationStatus, StoreStatus, ANTI_ENTROPY_HEADER, RANGES_CAPABILITY,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::body::{body_format, read_body};
use super::diagnostics::{pusher, PushWatch};
use super::error::ApiError;
use super::{client_has_tag, json_content_type, store_name, AppState, ClientAddr};
use crate::authenticator::Identity;
use crate::registry::{ServiceResponder, StoreName};

/// Reads a JSON request body within the replication size limit.
async fn read_json<T: DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, ApiError> {
    body_format(headers, false)?;
    let bytes = read_body(headers, body, state.limits.max_replication_request_size).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid request: {e}")))
}

fn json<T: Serialize>(value: &T) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    (StatusCode::OK, [json_content_type()], body).into_response()
}

/// `POST /v1/replication/{store}/push`: changed entries in full and renewals by value hash.
/// The dynamic keys it stores are remembered as accepted by replication, with the pusher
/// (`/v1/diagnostics/node/{nodeId}`).
pub async fn push(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    identity: Option<Extension<Identity>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let name = store_name(&name)?;
    let request: PushRequest = read_json(&state, &headers, body).await?;
    let watch = PushWatch::before(name, &request);
    let responder = state.registry.responder().clone();
    let (report, response) =
        tokio::task::spawn_blocking(move || responder.push(name.as_str(), request))
            .await
            .map_err(|_| ApiError::StorageUnavailable)??;
    tracing::trace!(store = %name, ?report, "applied a push");
    if let Some(watch) = watch {
        let peer = pusher(identity.as_ref().map(|Extension(i)| i), &headers);
        watch.after(&state, super::diagnostics::ip(client), peer);
    }
    Ok(json(&response))
}

/// `GET /v1/replication/{store}/digest`: 304 when the caller's root (in `If-None-Match`)
/// equals ours, the per-bucket digest otherwise.
pub async fn digest(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let digest = state
        .registry
        .responder()
        .digest(store_name(&name)?.as_str())?;
    let tag = format!("\"{}\"", digest.root);
    let etag = (
        header::ETAG,
        HeaderValue::from_str(&tag).unwrap_or_else(|_| HeaderValue::from_static("\"\"")),
    );
    // Tells the caller whether our state is complete, so it knows whether catching up with
    // us makes it ready (see `readiness`).
    let ready = (
        HeaderName::from_static(READY_HEADER),
        HeaderValue::from_static(if state.readiness.is_ready() {
            "true"
        } else {
            "false"
        }),
    );
    // Our wall clock, so the caller measures the offset between the two (clock_check).
    let now = state.registry.store(StoreName::Dynamic).now_ms();
    let clock = (
        HeaderName::from_static(CLOCK_HEADER),
        HeaderValue::from(now),
    );
    // We answer `ranges` and `diff`: a caller of this build or later descends instead of
    // asking for whole buckets' summaries (an older caller ignores the header).
    let capability = (
        HeaderName::from_static(ANTI_ENTROPY_HEADER),
        HeaderValue::from_static(RANGES_CAPABILITY),
    );
    if client_has_tag(&headers, &[header::IF_NONE_MATCH], &tag) {
        return Ok((StatusCode::NOT_MODIFIED, [etag, ready, clock, capability]).into_response());
    }
    let mut response = json(&digest);
    for (name, value) in [etag, ready, clock, capability] {
        response.headers_mut().insert(name, value);
    }
    Ok(response)
}

/// `POST /v1/replication/{store}/summaries`: key, version and fingerprint of every entry in
/// the requested buckets.
pub async fn summaries(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    answer(
        &state,
        &name,
        &headers,
        body,
        |responder, store, request| responder.summaries(store, request),
    )
    .await
}

/// `POST /v1/replication/{store}/ranges`: the hashes of the sub-ranges of the requested
/// ranges of one level.
pub async fn ranges(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    answer(
        &state,
        &name,
        &headers,
        body,
        |responder, store, request| responder.ranges(store, request),
    )
    .await
}

/// `POST /v1/replication/{store}/diff`: given the caller's key hashes and fingerprints in
/// some ranges, our entries it lacks, summaries of those that differ, and which of its
/// entries we lack.
pub async fn diff(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    answer(
        &state,
        &name,
        &headers,
        body,
        |responder, store, request| responder.diff(store, request),
    )
    .await
}

/// `POST /v1/replication/{store}/entries`: the requested entries in full.
pub async fn entries(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    answer(
        &state,
        &name,
        &headers,
        body,
        |responder, store, request| responder.entries(store, request),
    )
    .await
}

/// A read-only request: the store named in the path, the JSON body, the responder's answer
/// as JSON.
async fn answer<Q: DeserializeOwned, R: Serialize>(
    state: &AppState,
    name: &str,
    headers: &HeaderMap,
    body: Body,
    respond: impl FnOnce(&ServiceResponder, &str, &Q) -> Result<R, RespondError>,
) -> Result<Response, ApiError> {
    let name = store_name(name)?;
    let request: Q = read_json(state, headers, body).await?;
    Ok(json(&respond(
        state.registry.responder(),
        name.as_str(),
        &request,
    )?))
}

/// `GET /v1/replication/status`: this node, its stores' digests and every peer's state.
pub async fn status(State(state): State<AppState>) -> Response {
    let stores = StoreName::ALL
        .iter()
        .map(|&name| {
            let store = state.registry.store(name);
            StoreStatus {
                name: name.to_string(),
                entries: store.len(),
                digest_root: hex64(store.digest().root()),
                refused_future: store.refused_future_total(),
                refused_full: store.refused_full_total(),
                refused_invalid: store.refused_invalid_total(),
            }
        })
        .collect();
    let node = &state.node;
    json(&ReplicationStatus {
        node_id: node.node_id.clone(),
        environment: state.registry.environment().to_owned(),
        inventory: node.inventory.clone(),
        inventory_error: node.inventory_error.lock().ok().and_then(|e| e.clone()),
        stores,
        peers: node
            .replicator
            .as_ref()
            .map(|r| r.peers())
            .unwrap_or_default(),
        auth_failures: state.auth.failure_counts(),
    })
}
