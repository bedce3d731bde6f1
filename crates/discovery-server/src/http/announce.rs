//! Trino 477+ announce mode: `POST /v1/announce` (a node's internal URI as `text/plain`)
//! and `GET /v1/announce` (the URIs of every live announce-mode node), answered the way
//! Trino's coordinator answers them (204 on accept, a JSON array of URIs), so a Trino
//! node with `discovery.type=announce` can use discoveryd as its `discovery.uri`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use discovery_types::AnnounceUri;

use super::body::{read_body, require_text_plain};
use super::error::ApiError;
use super::{json_content_type, writable, AppState, NOSNIFF};

/// `POST /v1/announce`: 204 once the URI is valid and tracked. The node's facts are
/// learned from its `/v1/info` in the background, so the first POST of a URI is accepted
/// before they are known; a URI later found to be in another environment gets 400.
pub async fn announce(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let Some(bridge) = &state.announce else {
        return Err(ApiError::NotFound);
    };
    authorize_internal(&headers)?;
    require_text_plain(&headers)?;
    let body = read_body(&headers, body, state.limits.max_request_size).await?;
    let uri = AnnounceUri::parse(&body)?;
    writable(&state)?;
    bridge.announce(uri)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/announce`: a JSON array of the URIs of every live announce-mode node the
/// store holds, including those announced to other servers of the cluster.
pub async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    if state.announce.is_none() {
        return Err(ApiError::NotFound);
    }
    let uris = state.registry.announced_uris();
    // A list of strings always serialises.
    let body = serde_json::to_vec(&uris).unwrap_or_else(|_| b"[]".to_vec());
    Ok((StatusCode::OK, [json_content_type(), NOSNIFF], body).into_response())
}

/// The one place where announcements will be authenticated. Trino sends its internal
/// bearer token on `POST /v1/announce`; discoveryd does not verify it yet, so every
/// request passes. Verification (for these and for airlift announcements) replaces this
/// body; it runs before the body is read.
fn authorize_internal(_headers: &HeaderMap) -> Result<(), ApiError> {
    Ok(())
}
