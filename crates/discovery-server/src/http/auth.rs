//! The authentication middleware: finds the route's need, asks the node's
//! [`Authenticator`](crate::authenticator::Authenticator) for a verdict, and answers 401
//! or 403 before any handler reads the body. The caller's
//! [`Identity`](crate::authenticator::Identity) goes to the handlers as a request
//! extension (the audit log names it), so nobody identifies the caller twice.
//!
//! Being the one layer every matched route passes, with the route template at hand, it
//! also records each request's `/metrics` counters and duration (401 and 403 included),
//! and remembers refused announcements per node id for `/v1/diagnostics/node/{nodeId}`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState, ClientAddr};
use crate::access::{accepts_basic, need_of, Verdict};
use crate::authenticator::Identity;

pub async fn authorize(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("", MatchedPath::as_str);
    let need = need_of(request.method(), route, request.uri().path());
    let client = request.extensions().get::<ClientAddr>().map(|c| c.0.ip());
    let (verdict, identity) = state.auth.authorize(
        &need,
        request.headers(),
        client,
        request.method().as_str(),
        route,
    );
    super::diagnostics::record_verdict(&state, &need, client, &verdict);
    let response = match verdict {
        Verdict::Allow => {
            // Handlers read a missing identity as anonymous: the common case (a node
            // without authentication) inserts nothing.
            if identity != Identity::Anonymous {
                request.extensions_mut().insert(identity);
            }
            next.run(request).await
        }
        Verdict::Unauthorized(failure) => {
            let mut response = ApiError::Unauthorized(failure.to_string()).into_response();
            if accepts_basic(route) {
                // A browser prompts for a user name and password only on a Basic challenge.
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"discovery\", charset=\"UTF-8\""),
                );
            }
            response
        }
        Verdict::Forbidden(reason) => ApiError::Forbidden(reason).into_response(),
    };
    state.metrics.observe(
        matched.as_ref().map(MatchedPath::as_str),
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
