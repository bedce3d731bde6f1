//! Raw entries: `GET /v1/store/{store}` (full dump) and `POST /v1/store/{store}` (apply a
//! replicated batch). JSON by default; Jackson Smile when a Java peer asks for it or
//! pushes it.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use std::sync::Arc;

use bytes::Bytes;
use discovery_replicator::convert::entry_to_wire;
use discovery_store::Entry;
use discovery_types::WireEntry;

use super::body::{body_format, read_body, BodyFormat, SMILE};
use super::error::ApiError;
use super::{json_content_type, store_name, AppState, ClientAddr, NOSNIFF};
use crate::audit;
use crate::authenticator::Identity;

/// Most entries serialised per chunk of a streamed JSON dump.
const DUMP_CHUNK: usize = 256;

/// About the most bytes of one chunk: large announcements make small chunks.
const DUMP_CHUNK_BYTES: usize = 256 * 1024;

/// Smile's array markers. The one serializer writes every entry, so its header and its
/// shared-string references span the document as if it were encoded whole; only the
/// array around the entries is written here, which lets the entries go out a chunk at a
/// time (the tests check the bytes equal a whole-document encoding).
const SMILE_START_ARRAY: u8 = 0xf8;
const SMILE_END_ARRAY: u8 = 0xf9;

/// Every entry of the store, tombstones and uncollected expired entries included.
///
/// Streamed a chunk at a time, in JSON or (for Java peers) Smile, from a snapshot of the
/// entries (shared pointers, not copies), so a dump of a 100 MB store costs its pointers
/// and one chunk, not another 100 MB per concurrent request.
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
        let content_type = (header::CONTENT_TYPE, HeaderValue::from_static(SMILE));
        let body = Body::from_stream(smile_chunks(entries));
        (StatusCode::OK, [content_type], body).into_response()
    } else {
        let body = Body::from_stream(json_chunks(entries));
        (StatusCode::OK, [json_content_type(), NOSNIFF], body).into_response()
    };
    Ok(response)
}

/// The JSON array of `entries`, in chunks of at most [`DUMP_CHUNK`] entries and about
/// [`DUMP_CHUNK_BYTES`] (a chunk holds one entry at least, however large).
fn json_chunks(
    entries: Vec<Arc<Entry>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>> + Send {
    // The next entry to write; `None` once the closing bracket is out.
    futures_util::stream::unfold(Some(0usize), move |next| {
        let chunk = next.map(|next| {
            let mut out = Vec::new();
            if next == 0 {
                out.push(b'[');
            }
            let after = fill(&entries, next, &mut out);
            if after == entries.len() {
                out.push(b']');
                (Ok(Bytes::from(out)), None)
            } else {
                (Ok(Bytes::from(out)), Some(after))
            }
        });
        std::future::ready(chunk)
    })
}

/// The Smile array of `entries`, chunked like [`json_chunks`].
fn smile_chunks(
    entries: Vec<Arc<Entry>>,
) -> impl futures_util::Stream<Item = Result<Bytes, serde_smile::Error>> + Send {
    let serializer = serde_smile::Serializer::new(Vec::new());
    // The next entry to write; `None` once the end of the array is out.
    futures_util::stream::unfold((serializer, Some(0usize)), move |(mut serializer, next)| {
        let chunk = next.map(|next| {
            match fill_smile(&entries, next, &mut serializer) {
                Ok(after) => {
                    let bytes = Bytes::from(std::mem::take(serializer.get_mut()));
                    let next = (after < entries.len()).then_some(after);
                    (Ok(bytes), (serializer, next))
                }
                // The error ends the body.
                Err(e) => (Err(e), (serializer, None)),
            }
        });
        std::future::ready(chunk)
    })
}

/// Encodes entries from `start` until a chunk is full, with the array's start before the
/// first and its end after the last; returns the next entry's index.
fn fill_smile(
    entries: &[Arc<Entry>],
    start: usize,
    serializer: &mut serde_smile::Serializer<Vec<u8>>,
) -> Result<usize, serde_smile::Error> {
    use serde::Serialize;
    if start == 0 {
        serializer.write_header()?;
        serializer.get_mut().push(SMILE_START_ARRAY);
    }
    let mut next = start;
    while next < entries.len()
        && next - start < DUMP_CHUNK
        && (next == start || serializer.get_ref().len() < DUMP_CHUNK_BYTES)
    {
        entry_to_wire(&entries[next]).serialize(&mut *serializer)?;
        next += 1;
    }
    if next == entries.len() {
        serializer.get_mut().push(SMILE_END_ARRAY);
    }
    Ok(next)
}

/// Appends entries from `start` to `out` (comma-separated, a comma before all but the
/// first of the dump) until a chunk is full; returns the next entry's index.
fn fill(entries: &[Arc<Entry>], start: usize, out: &mut Vec<u8>) -> usize {
    let mut next = start;
    while next < entries.len()
        && next - start < DUMP_CHUNK
        && (next == start || out.len() < DUMP_CHUNK_BYTES)
    {
        if next > 0 {
            out.push(b',');
        }
        // A wire entry of bytes and numbers always serialises.
        let _ = serde_json::to_writer(&mut *out, &entry_to_wire(&entries[next]));
        next += 1;
    }
    next
}

/// Applies a batch of entries with the conflict rule. The whole batch is validated first;
/// one bad entry refuses all of it. Audited: an operator (or a Java peer) writing raw
/// entries.
pub async fn apply(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    identity: Option<Extension<Identity>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let outcome = apply_entries(&state, &name, &headers, body).await;
    let what = match &outcome {
        Ok((store, entries)) => format!("{entries} entries into store {store}"),
        Err(_) => format!("entries into store {:?}", name),
    };
    let writer = audit::Writer {
        client: client.map(|Extension(c)| c),
        identity: identity.map(|Extension(i)| i),
    };
    audit::record(
        &writer,
        "POST",
        "/v1/store/{store}",
        &what,
        &outcome,
        |_| StatusCode::NO_CONTENT,
    );
    outcome.map(|_| StatusCode::NO_CONTENT)
}

/// Applies the batch; the store and the number of entries in it.
async fn apply_entries(
    state: &AppState,
    name: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<(crate::registry::StoreName, usize), ApiError> {
    let name = store_name(name)?;
    let format = body_format(headers, true)?;
    let body = read_body(headers, body, state.limits.max_request_size).await?;
    let batch: Vec<WireEntry> = match format {
        BodyFormat::Json => serde_json::from_slice(&body).map_err(|e| e.to_string()),
        BodyFormat::Smile => serde_smile::from_slice(&body).map_err(|e| e.to_string()),
    }
    .map_err(|e| ApiError::BadRequest(format!("invalid entries: {e}")))?;
    let entries = batch.len();
    let responder = state.registry.responder().clone();
    let report = tokio::task::spawn_blocking(move || responder.apply_batch(name.as_str(), batch))
        .await
        .map_err(|_| ApiError::StorageUnavailable)??;
    tracing::debug!(store = %name, ?report, "applied a replicated batch");
    Ok((name, entries))
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

    async fn smile_dumped(entries: Vec<Arc<Entry>>) -> Vec<Bytes> {
        smile_chunks(entries)
            .map(|chunk| chunk.expect("entries encode"))
            .collect()
            .await
    }

    #[tokio::test]
    async fn a_streamed_smile_dump_is_byte_for_byte_the_whole_document() {
        // Past 1,024 entries Smile's shared-string table wraps: references must still
        // point where a whole-document encoding points.
        for count in [0, 1, DUMP_CHUNK, DUMP_CHUNK * 5 + 3] {
            let entries: Vec<Arc<Entry>> = (0..count).map(entry).collect();
            let wire: Vec<WireEntry> = entries.iter().map(|e| entry_to_wire(e)).collect();
            let chunks = smile_dumped(entries).await;
            assert_eq!(
                chunks.len(),
                count.div_ceil(DUMP_CHUNK).max(1),
                "{count} entries"
            );
            let streamed = chunks.concat();
            assert_eq!(
                streamed,
                serde_smile::to_vec(&wire).expect("encodes"),
                "{count} entries"
            );
            let decoded: Vec<WireEntry> = serde_smile::from_slice(&streamed).expect("decodes");
            assert_eq!(decoded, wire);
        }
    }

    #[tokio::test]
    async fn large_entries_make_small_chunks() {
        let large = |i: usize| {
            let mut entry = (*entry(i + 1)).clone();
            entry.value = Some(vec![b'x'; DUMP_CHUNK_BYTES]);
            Arc::new(entry)
        };
        let chunks: Vec<Bytes> = json_chunks((0..3).map(large).collect())
            .map(|chunk| chunk.expect("infallible"))
            .collect()
            .await;
        assert_eq!(chunks.len(), 3, "one large entry per chunk");
        assert!(chunks.iter().all(|c| c.len() < 2 * DUMP_CHUNK_BYTES));
    }
}
