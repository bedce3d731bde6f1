//! Lookups: `GET /v1/service[/{type}[/{pool}]]`, with `Cache-Control`, `ETag` and 304,
//! and blocking lookups (`?wait=30s` with the current tag: held until the answer changes).

use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::{cache_control, client_has_tag, json_content_type, AppState, NOSNIFF};
use crate::config::{parse_duration, AnnouncementAuthentication};
use crate::registry::{Lookup, Selector, WatchError};
use discovery_replicator::transport::{ANNOUNCEMENTS_HEADER, AUTHENTICATED};

/// Where a lookup's client says which answer it holds.
const TAG_HEADERS: &[HeaderName] = &[header::IF_NONE_MATCH, header::ETAG];

/// Longest `wait` value read: `1000000000000d` is long enough for anyone.
const MAX_WAIT_TEXT: usize = 32;

pub async fn all(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    respond(&state, Selector::All, &headers, query.as_deref()).await
}

pub async fn of_type(
    State(state): State<AppState>,
    Path(service_type): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    respond(
        &state,
        Selector::Type(&service_type),
        &headers,
        query.as_deref(),
    )
    .await
}

pub async fn of_type_and_pool(
    State(state): State<AppState>,
    Path((service_type, pool)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    respond(
        &state,
        Selector::TypeAndPool(&service_type, &pool),
        &headers,
        query.as_deref(),
    )
    .await
}

/// The `wait` of a lookup's query string, capped at `max`: `None` without one. Other
/// parameters are ignored, as before blocking lookups existed.
fn requested_wait(query: Option<&str>, max: Duration) -> Result<Option<Duration>, String> {
    let mut waits = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(name, _)| name == "wait")
        .map(|(_, value)| value);
    let Some(text) = waits.next() else {
        return Ok(None);
    };
    if waits.next().is_some() {
        return Err("wait is given more than once".into());
    }
    if text.len() > MAX_WAIT_TEXT {
        return Err(format!(
            "wait is longer than {MAX_WAIT_TEXT} characters; use a duration such as 30s"
        ));
    }
    let wait = parse_duration(&text).map_err(|e| format!("invalid wait: {e}"))?;
    Ok(Some(wait.min(max)))
}

/// True when the client holds the answer `lookup`: a plain lookup answers 304, a
/// blocking one keeps waiting.
fn client_holds(headers: &HeaderMap, lookup: &Lookup) -> bool {
    client_has_tag(headers, TAG_HEADERS, &lookup.etag)
}

/// 429 rather than 503: a load balancer takes a 503 for a failing node (nginx would skip
/// it for every client), while this is one client's request that can come back later.
fn too_many(error: &WatchError) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (header::RETRY_AFTER, HeaderValue::from_static("1")),
        ],
        format!("{error}\n"),
    )
        .into_response()
}

async fn respond(
    state: &AppState,
    selector: Selector<'_>,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Response {
    let wait = match requested_wait(query, state.registry.max_wait()) {
        Ok(wait) => wait.unwrap_or(Duration::ZERO),
        Err(message) => return ApiError::BadRequest(message).into_response(),
    };
    // A node that is still catching up would answer with a partial list, and a coordinator
    // would drop the missing workers. A 503 makes it keep its last good list instead.
    if let Err(reason) = state.readiness.check() {
        return ApiError::NotReady(reason).into_response();
    }
    let mut lookup = state.registry.lookup(selector);
    // Held only when the client already has the current answer: without a tag, or with
    // an old one, the answer is what it needs now.
    if !wait.is_zero() && client_holds(headers, &lookup) {
        let deadline = tokio::time::Instant::now() + wait;
        lookup = match state
            .registry
            .wait_for_change(selector, deadline, |l| client_holds(headers, l))
            .await
        {
            Ok(lookup) => lookup,
            Err(e @ WatchError::TooManyWatchers { .. }) => return too_many(&e),
        };
        // The node may have stopped being ready while the request was held.
        if let Err(reason) = state.readiness.check() {
            return ApiError::NotReady(reason).into_response();
        }
    }
    let cache = cache_control(state.limits.lookup_max_age_secs);
    let etag = (
        header::ETAG,
        HeaderValue::from_str(&lookup.etag).unwrap_or_else(|_| HeaderValue::from_static("\"\"")),
    );
    if client_holds(headers, &lookup) {
        return (StatusCode::NOT_MODIFIED, [cache, etag]).into_response();
    }
    let mut response = (
        StatusCode::OK,
        [json_content_type(), cache, etag, NOSNIFF],
        lookup.body,
    )
        .into_response();
    if state.auth.policy().announcements == AnnouncementAuthentication::Required {
        // What an inventory read from this lookup needs before it trusts the peers listed.
        response.headers_mut().insert(
            ANNOUNCEMENTS_HEADER,
            HeaderValue::from_static(AUTHENTICATED),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_has_current(headers: &HeaderMap, etag: &str) -> bool {
        client_has_tag(headers, TAG_HEADERS, etag)
    }

    const MAX: Duration = Duration::from_secs(60);

    #[test]
    fn wait_is_an_airlift_duration_capped_at_the_maximum() {
        let wait = |q: Option<&str>| requested_wait(q, MAX);
        assert_eq!(wait(None), Ok(None));
        assert_eq!(wait(Some("")), Ok(None));
        assert_eq!(
            wait(Some("pretty")),
            Ok(None),
            "other parameters are ignored"
        );
        assert_eq!(wait(Some("wait=30s")), Ok(Some(Duration::from_secs(30))));
        assert_eq!(
            wait(Some("pretty&wait=500ms")),
            Ok(Some(Duration::from_millis(500)))
        );
        assert_eq!(wait(Some("wait=1m")), Ok(Some(MAX)));
        assert_eq!(wait(Some("wait=10m")), Ok(Some(MAX)), "capped");
        assert_eq!(wait(Some("wait=0s")), Ok(Some(Duration::ZERO)));
        assert_eq!(
            wait(Some("wait=30%73")),
            Ok(Some(Duration::from_secs(30))),
            "percent-encoded like any query value"
        );
    }

    #[test]
    fn a_wait_that_is_not_a_duration_is_refused_with_the_reason() {
        let wait = |q: &str| requested_wait(Some(q), MAX).unwrap_err();
        assert!(
            wait("wait=banana").starts_with("invalid wait: "),
            "{}",
            wait("wait=banana")
        );
        assert!(
            wait("wait=30").contains("needs a unit"),
            "{}",
            wait("wait=30")
        );
        assert!(wait("wait=").starts_with("invalid wait"));
        assert!(wait("wait=-1s").starts_with("invalid wait"));
        assert!(wait("wait=1s&wait=2s").contains("more than once"));
        let long = format!("wait={}s", "9".repeat(100));
        assert!(wait(&long).contains("longer than"));
        assert!(wait("wait=1e400s").starts_with("invalid wait"));
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn matches_if_none_match_lists_weak_tags_and_the_airlift_etag_header() {
        let current = "\"abc\"";
        assert!(client_has_current(
            &headers(&[("if-none-match", "\"abc\"")]),
            current
        ));
        assert!(client_has_current(
            &headers(&[("if-none-match", "\"x\", W/\"abc\"")]),
            current
        ));
        assert!(client_has_current(
            &headers(&[("if-none-match", "*")]),
            current
        ));
        assert!(client_has_current(
            &headers(&[("etag", "\"abc\"")]),
            current
        ));
        assert!(!client_has_current(
            &headers(&[("etag", "\"old\"")]),
            current
        ));
        assert!(!client_has_current(&headers(&[]), current));
    }
}
