//! Raw entries: `GET /v1/store/{store}` (full dump) and `POST /v1/store/{store}` (apply a
//! replicated batch). JSON by default; Jackson Smile when a Java peer asks for it or
//! pushes it.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use bytes::Bytes;
use discovery_replicator::convert::entry_to_wire;
use discovery_store::Entry;
use discovery_types::WireEntry;

use super::body::{body_format, read_body, BodyFormat, SMILE};
use super::error::ApiError;
use super::{json_content_type, store_name, AppState, NOSNIFF};

/// Entries serialised per chunk of a streamed JSON dump.
const DUMP_CHUNK: usize = 256;

/// Every entry of the store, tombstones and uncollected expired entries included.
///
/// JSON is streamed a chunk of entries at a time from a snapshot of the entries (shared
/// pointers, not copies), so a dump of a 100 MB store costs its pointers and one chunk, not
/// another 100 MB per concurrent request. Smile (for Java peers) is built whole: its
/// framing and shared-string references span the document.
pub async fn dump(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let entries = state.registry.store(store_name(&name)?).entries();
    let wants_smile = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains(SMILE));
    let response = if wants_smile {
        let wire: Vec<WireEntry> = entries.iter().map(|e| entry_to_wire(e)).collect();
        let bytes = serde_smile::to_vec(&wire).map_err(|e| {
            tracing::error!(error = %e, "cannot encode store dump as Smile");
            ApiError::StorageUnavailable
        })?;
        let content_type = (header::CONTENT_TYPE, HeaderValue::from_static(SMILE));
        (StatusCode::OK, [content_type], bytes).into_response()
    } else {
        let body = Body::from_stream(json_chunks(entries));
        (StatusCode::OK, [json_content_type(), NOSNIFF], body).into_response()
    };
    Ok(response)
}

/// The JSON array of `entries`, a chunk of [`DUMP_CHUNK`] entries per item.
fn json_chunks(
    entries: Vec<Arc<Entry>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>> + Send {
    let chunks = entries.len().div_ceil(DUMP_CHUNK);
    let entries = Arc::new(entries);
    let open = std::iter::once(Bytes::from_static(b"["));
    let body = (0..chunks).map(move |i| {
        let chunk = &entries[i * DUMP_CHUNK..((i + 1) * DUMP_CHUNK).min(entries.len())];
        let mut out = Vec::new();
        for (j, entry) in chunk.iter().enumerate() {
            if i > 0 || j > 0 {
                out.push(b',');
            }
            // A wire entry of bytes and numbers always serialises.
            let _ = serde_json::to_writer(&mut out, &entry_to_wire(entry));
        }
        Bytes::from(out)
    });
    let close = std::iter::once(Bytes::from_static(b"]"));
    futures_util::stream::iter(open.chain(body).chain(close).map(Ok))
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

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn entry(i: usize) -> Arc<Entry> {
        Arc::new(Entry {
            key: format!("n{i}").into_bytes(),
            value: (!i.is_multiple_of(3)).then(|| b"[]".to_vec()),
            version: 1_800_000_000_000 + i as i64,
            timestamp: 1_800_000_000_000,
            max_age_ms: Some(30_000),
        })
    }

    async fn dumped(entries: Vec<Arc<Entry>>) -> Vec<WireEntry> {
        let chunks: Vec<Bytes> = json_chunks(entries)
            .map(|chunk| chunk.expect("infallible"))
            .collect()
            .await;
        serde_json::from_slice(&chunks.concat()).expect("one JSON array")
    }

    #[tokio::test]
    async fn a_streamed_dump_is_one_json_array_across_chunks() {
        assert!(dumped(Vec::new()).await.is_empty());
        let entries: Vec<Arc<Entry>> = (0..DUMP_CHUNK * 2 + 7).map(entry).collect();
        let wire = dumped(entries.clone()).await;
        assert_eq!(wire.len(), entries.len());
        assert_eq!(wire[DUMP_CHUNK], entry_to_wire(&entries[DUMP_CHUNK]));
    }
}
