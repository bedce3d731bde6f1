//! Reading request bodies: content type, size limit and a read deadline, checked before any
//! byte is parsed.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::error::ApiError;

/// How long a client may take to send its body once the headers are in.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The encodings a request body may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    /// Jackson Smile, which Java discovery servers use for replication pushes.
    Smile,
}

pub const JSON: &str = "application/json";
pub const SMILE: &str = "application/x-jackson-smile";

/// The media type of a `Content-Type` value, lower-cased, without parameters such as
/// `charset`; empty when the value is not text.
fn media_type(value: &HeaderValue) -> String {
    value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The format named by the request's `Content-Type`. A missing content type is read as
/// JSON (some clients send none); parameters such as `charset` are ignored.
pub fn body_format(headers: &HeaderMap, smile_allowed: bool) -> Result<BodyFormat, ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(BodyFormat::Json);
    };
    let media_type = media_type(value);
    match media_type.as_str() {
        JSON => Ok(BodyFormat::Json),
        SMILE if smile_allowed => Ok(BodyFormat::Smile),
        _ => {
            let accepted = if smile_allowed {
                "application/json or application/x-jackson-smile"
            } else {
                "application/json"
            };
            Err(ApiError::UnsupportedMediaType(format!(
                "unsupported content type '{}': send {accepted}",
                String::from_utf8_lossy(value.as_bytes())
            )))
        }
    }
}

pub const TEXT_PLAIN: &str = "text/plain";

/// Accepts a `text/plain` body (any charset parameter; Trino sends none) or one without a
/// content type; anything else is 415, as for the JSON endpoints.
pub fn require_text_plain(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let media_type = media_type(value);
    if media_type == TEXT_PLAIN {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "unsupported content type '{}': send {TEXT_PLAIN}",
            String::from_utf8_lossy(value.as_bytes())
        )))
    }
}

/// Reads the whole body, refusing more than `limit` bytes (413) or a body that trickles in
/// for longer than the read deadline (408).
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    match tokio::time::timeout(BODY_READ_TIMEOUT, Limited::new(body, limit).collect()).await {
        Err(_) => Err(ApiError::RequestTimeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ApiError::PayloadTooLarge { limit })
        }
        Ok(Err(e)) => Err(ApiError::BadRequest(format!(
            "could not read the request body: {e}"
        ))),
    }
}
