//! `GET /metrics`: the node's Prometheus metrics (see [`crate::metrics`]). An operator
//! read endpoint (`crate::access`): open while authentication is not configured.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AppState;
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
