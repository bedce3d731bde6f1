//! The audit log: one INFO line on the `discovery::audit` target for every operator write
//! that reaches its handler (adding or deleting a static service, `POST /v1/store/{store}`),
//! so "who changed what, from where, and did it work" has an answer. Requests refused by
//! authentication never reach a handler; they are counted in
//! `discovery_auth_failures_total` and logged (rate-limited) by the authenticator.
//!
//! ```text
//! INFO discovery::audit: operator write client=10.0.0.5:51234 caller=operator:write:1a2b3c4d method=POST route=/v1/announcement/static what=service 0b6c… type "trino-ui" pool "general" status=201 outcome=ok
//! ```
//!
//! The caller is the [`Identity`] the authentication middleware determined: an internal
//! token's `sub`, an operator token's role and short id (never the token), or `anonymous`.

use axum::http::StatusCode;

use crate::authenticator::Identity;
use crate::http::{ApiError, ClientAddr};

/// The log target of audit lines: filter or route on it (`discovery::audit=info`).
pub const TARGET: &str = "discovery::audit";

/// Who wrote, from where: what the handler gets from the request's extensions. Either
/// may be missing when the router is driven without the server (benchmarks, unit tests).
#[derive(Debug, Clone, Default)]
pub struct Writer {
    pub client: Option<ClientAddr>,
    pub identity: Option<Identity>,
}

/// Logs one operator write. `what` says what was written (client text in it must be
/// escaped by the caller); `outcome` is the handler's answer.
pub fn record<T>(
    writer: &Writer,
    method: &str,
    route: &str,
    what: &str,
    outcome: &Result<T, ApiError>,
    status_of: impl FnOnce(&T) -> StatusCode,
) {
    let client = writer
        .client
        .as_ref()
        .map_or_else(|| "-".to_owned(), |c| c.0.to_string());
    let caller = writer
        .identity
        .as_ref()
        .map_or_else(|| Identity::Anonymous.to_string(), Identity::to_string);
    let (status, result) = match outcome {
        Ok(answer) => (status_of(answer).as_u16(), "ok".to_owned()),
        // The message can quote what the client sent: escaped, so it stays one line.
        Err(error) => (
            error.status().as_u16(),
            format!("refused: {}", error.message().escape_debug()),
        ),
    };
    tracing::info!(target: TARGET, client = %client, caller = %caller, method = %method, route = %route,
        what = %what, status, outcome = %result, "operator write");
}
