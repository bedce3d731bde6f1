//! Health endpoints for load balancers and orchestrators.
//!
//! * `GET /v1/health/live`: 200 while the process serves HTTP.
//! * `GET /v1/health/ready`: 200 once the node's view is complete enough to answer lookups
//!   (see [`crate::readiness`]), 503 with the reason before that.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::AppState;

pub async fn live() -> &'static str {
    "live\n"
}

pub async fn ready(State(state): State<AppState>) -> Response {
    match state.readiness.check() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(reason) => ApiError::NotReady(reason).into_response(),
    }
}
