//! `GET /metrics`: the node's Prometheus metrics (see [`crate::metrics`]). An operator
//! read endpoint (`crate::access`): open while authentication is not configured.

use std::time::Instant;

use axum::extract::{MatchedPath, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};
use crate::metrics::{Sources, CONTENT_TYPE};

pub async fn scrape(State(state): State<AppState>) -> Response {
    let sources = Sources {
        registry: state.registry.clone(),
        readiness: state.readiness.clone(),
        replicator: state.node.replicator.clone(),
        auth: state.auth.clone(),
    };
    match state.metrics.render(&sources) {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
            text,
        )
            .into_response(),
        // Writing to a String does not fail; an encoder error would be a bug in a metric.
        Err(e) => {
            tracing::error!(error = %e, "cannot encode the metrics");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot encode the metrics\n",
            )
                .into_response()
        }
    }
}

/// The 404 of a path no route matches, counted under the one `route="unmatched"` label
/// (the authentication layer, which counts the rest, only wraps matched routes).
pub async fn unmatched(State(state): State<AppState>, method: Method) -> Response {
    let started = Instant::now();
    let response = ApiError::NotFound.into_response();
    state
        .metrics
        .observe(None, &method, response.status().as_u16(), started.elapsed());
    response
}

/// The 405 of a known path, counted under its route template when axum provides it (the
/// authentication layer does not wrap this fallback).
pub async fn method_not_allowed(
    State(state): State<AppState>,
    method: Method,
    route: Option<MatchedPath>,
) -> Response {
    let started = Instant::now();
    let response = ApiError::MethodNotAllowed.into_response();
    state.metrics.observe(
        route.as_ref().map(MatchedPath::as_str),
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
