//! Lookups: `GET /v1/service[/{type}[/{pool}]]`, with `Cache-Control`, `ETag` and 304.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::{cache_control, client_has_tag, json_content_type, AppState, NOSNIFF};
use crate::config::AnnouncementAuthentication;
use crate::registry::Selector;
use discovery_replicator::transport::{ANNOUNCEMENTS_HEADER, AUTHENTICATED};

pub async fn all(State(state): State<AppState>, headers: HeaderMap) -> Response {
    respond(&state, Selector::All, &headers)
}

pub async fn of_type(
    State(state): State<AppState>,
    Path(service_type): Path<String>,
    headers: HeaderMap,
) -> Response {
    respond(&state, Selector::Type(&service_type), &headers)
}

pub async fn of_type_and_pool(
    State(state): State<AppState>,
    Path((service_type, pool)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    respond(
        &state,
        Selector::TypeAndPool(&service_type, &pool),
        &headers,
    )
}

fn respond(state: &AppState, selector: Selector<'_>, headers: &HeaderMap) -> Response {
    // A node that is still catching up would answer with a partial list, and a coordinator
    // would drop the missing workers. A 503 makes it keep its last good list instead.
    if let Err(reason) = state.readiness.check() {
        return ApiError::NotReady(reason).into_response();
    }
    let lookup = state.registry.lookup(selector);
    let cache = cache_control(state.limits.lookup_max_age_secs);
    let etag = (
        header::ETAG,
        HeaderValue::from_str(&lookup.etag).unwrap_or_else(|_| HeaderValue::from_static("\"\"")),
    );
    if client_has_tag(
        headers,
        &[header::IF_NONE_MATCH, header::ETAG],
        &lookup.etag,
    ) {
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
        client_has_tag(headers, &[header::IF_NONE_MATCH, header::ETAG], etag)
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
