//! The authentication middleware: finds the route's need, asks the node's
//! [`Authenticator`](crate::authenticator::Authenticator) for a verdict, and answers 401
//! or 403 before any handler reads the body.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState, ClientAddr};
use crate::access::{need_of, Verdict};

pub async fn authorize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("", MatchedPath::as_str);
    let need = need_of(request.method(), route, request.uri().path());
    let client = request.extensions().get::<ClientAddr>().map(|c| c.0.ip());
    let verdict = state.auth.check(
        &need,
        request.headers(),
        client,
        request.method().as_str(),
        route,
    );
    match verdict {
        Verdict::Allow => next.run(request).await,
        Verdict::Unauthorized(failure) => {
            ApiError::Unauthorized(failure.to_string()).into_response()
        }
        Verdict::Forbidden(reason) => ApiError::Forbidden(reason).into_response(),
    }
}
