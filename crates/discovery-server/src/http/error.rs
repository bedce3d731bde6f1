//! [`ApiError`]: every way a request can fail, mapped to a status and a one-line text body.
//!
//! Bad input is always a 4xx with a message naming the problem. The only 5xx is 503, for
//! a full store, a failing disk or a node still catching up after a start: conditions a
//! client can retry and that it did not cause.
//! There is no 500: nothing a client sends reaches an unexpected failure path.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use discovery_store::StoreError;
use discovery_types::{AnnounceUriError, AnnouncementError};

use crate::announce_bridge::AnnounceError;
use discovery_replicator::RespondError;

#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    PayloadTooLarge {
        limit: usize,
    },
    UnsupportedMediaType(String),
    /// The store holds its maximum number of entries.
    StoreFull(String),
    /// The storage engine failed; logged in full, reported briefly.
    StorageUnavailable,
    /// The node has just started and is still catching up; lookups wait.
    NotReady(String),
    /// The request contradicts what the server holds (an announce-mode node claiming the
    /// node id of an airlift-mode announcement).
    Conflict(String),
    /// A bound other than the store's size was reached (announce URIs tracked).
    Overloaded(String),
    /// No credential, or one that does not hold (401 with `WWW-Authenticate`).
    Unauthorized(String),
    /// A valid identity without the right (403).
    Forbidden(String),
}

impl ApiError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::StoreFull(_)
            | ApiError::StorageUnavailable
            | ApiError::NotReady(_)
            | ApiError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub(crate) fn message(&self) -> String {
        match self {
            ApiError::BadRequest(message) => message.clone(),
            ApiError::NotFound => "not found".into(),
            ApiError::MethodNotAllowed => "method not allowed".into(),
            ApiError::RequestTimeout => "timed out reading the request body".into(),
            ApiError::PayloadTooLarge { limit } => {
                format!("request body larger than {limit} bytes")
            }
            ApiError::UnsupportedMediaType(message) => message.clone(),
            ApiError::StoreFull(message) => message.clone(),
            ApiError::StorageUnavailable => "storage unavailable, retry later".into(),
            ApiError::NotReady(reason) => format!("not ready: {reason}"),
            ApiError::Conflict(message)
            | ApiError::Overloaded(message)
            | ApiError::Unauthorized(message)
            | ApiError::Forbidden(message) => message.clone(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        // One line: an operator reading a client log sees the whole reason.
        let body = format!("{}\n", self.message().replace(['\r', '\n'], " "));
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if status == StatusCode::UNAUTHORIZED {
            // Jetty-based clients (Trino, Presto) fail a 401 that has no challenge.
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"discovery\""),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<AnnouncementError> for ApiError {
    fn from(e: AnnouncementError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Full { .. } => ApiError::StoreFull(e.to_string()),
            StoreError::Backend(detail) => {
                tracing::error!(%detail, "storage backend failed");
                ApiError::StorageUnavailable
            }
        }
    }
}

impl From<RespondError> for ApiError {
    fn from(e: RespondError) -> Self {
        match e {
            RespondError::UnknownStore(_) => ApiError::NotFound,
            RespondError::BadRequest(message) => ApiError::BadRequest(message),
            RespondError::Invalid { .. } => ApiError::BadRequest(format!("invalid batch: {e}")),
            RespondError::Full { .. } => {
                ApiError::StoreFull(format!("{e} (the other entries were applied)"))
            }
            RespondError::Store(store) => store.into(),
        }
    }
}

impl From<AnnounceUriError> for ApiError {
    fn from(e: AnnounceUriError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl From<AnnounceError> for ApiError {
    fn from(e: AnnounceError) -> Self {
        match e {
            AnnounceError::TooManyNodes { .. } => ApiError::Overloaded(e.to_string()),
            AnnounceError::EnvironmentMismatch { .. } => ApiError::BadRequest(e.to_string()),
            AnnounceError::HeldByAirlift { .. } => ApiError::Conflict(e.to_string()),
            AnnounceError::Store(store) => store.into(),
        }
    }
}
