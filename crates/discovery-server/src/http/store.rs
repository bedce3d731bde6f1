//! Raw entries: `GET /v1/store/{store}` (full dump) and `POST /v1/store/{store}` (apply a
//! replicated batch). JSON by default; Jackson Smile when a Java peer asks for it or
//! pushes it.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use discovery_types::WireEntry;

use super::body::{body_format, read_body, BodyFormat, SMILE};
use super::error::ApiError;
use super::{json_content_type, store_name, AppState, NOSNIFF};

/// Every entry of the store, tombstones and uncollected expired entries included.
pub async fn dump(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let entries = state.registry.dump(store_name(&name)?);
    let wants_smile = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains(SMILE));
    let response = if wants_smile {
        let bytes = serde_smile::to_vec(&entries).map_err(|e| {
            tracing::error!(error = %e, "cannot encode store dump as Smile");
            ApiError::StorageUnavailable
        })?;
        let content_type = (header::CONTENT_TYPE, HeaderValue::from_static(SMILE));
        (StatusCode::OK, [content_type], bytes).into_response()
    } else {
        let json = serde_json::to_vec(&entries).unwrap_or_default();
        (StatusCode::OK, [json_content_type(), NOSNIFF], json).into_response()
    };
    Ok(response)
}

/// Applies a batch of entries with the conflict rule. The whole batch is validated first;
/// one bad entry refuses all of it.
pub async fn apply(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let name = store_name(&name)?;
    let format = body_format(&headers, true)?;
    let body = read_body(&headers, body, state.limits.max_request_size).await?;
    let batch: Vec<WireEntry> = match format {
        BodyFormat::Json => serde_json::from_slice(&body).map_err(|e| e.to_string()),
        BodyFormat::Smile => serde_smile::from_slice(&body).map_err(|e| e.to_string()),
    }
    .map_err(|e| ApiError::BadRequest(format!("invalid entries: {e}")))?;
    let responder = state.registry.responder().clone();
    let report = tokio::task::spawn_blocking(move || responder.apply_batch(name.as_str(), batch))
        .await
        .map_err(|_| ApiError::StorageUnavailable)??;
    tracing::debug!(store = %name, ?report, "applied a replicated batch");
    Ok(StatusCode::NO_CONTENT)
}
