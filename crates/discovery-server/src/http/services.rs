//! Lookups: `GET /v1/service[/{type}[/{pool}]]`, with `Cache-Control`, `ETag` and 304.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{cache_control, json_content_type, AppState, NOSNIFF};
use crate::registry::{Lookup, Selector};

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
    let lookup = state.registry.lookup(selector);
    let cache = cache_control(state.limits.lookup_max_age_secs);
    let etag = (
        header::ETAG,
        HeaderValue::from_str(&lookup.etag).unwrap_or_else(|_| HeaderValue::from_static("\"\"")),
    );
    if client_has_current(headers, &lookup) {
        return (StatusCode::NOT_MODIFIED, [cache, etag]).into_response();
    }
    (
        StatusCode::OK,
        [json_content_type(), cache, etag, NOSNIFF],
        lookup.body,
    )
        .into_response()
}

/// True when the request names the current tag in `If-None-Match` (standard) or in a
/// header called `ETag` (what the airlift client sends on refreshes).
fn client_has_current(headers: &HeaderMap, lookup: &Lookup) -> bool {
    [header::IF_NONE_MATCH, header::ETAG]
        .iter()
        .flat_map(|name| headers.get_all(name))
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == lookup.etag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn lookup(etag: &str) -> Lookup {
        Lookup {
            body: Bytes::new(),
            etag: etag.into(),
            services: 0,
        }
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
        let current = lookup("\"abc\"");
        assert!(client_has_current(
            &headers(&[("if-none-match", "\"abc\"")]),
            &current
        ));
        assert!(client_has_current(
            &headers(&[("if-none-match", "\"x\", W/\"abc\"")]),
            &current
        ));
        assert!(client_has_current(
            &headers(&[("if-none-match", "*")]),
            &current
        ));
        assert!(client_has_current(
            &headers(&[("etag", "\"abc\"")]),
            &current
        ));
        assert!(!client_has_current(
            &headers(&[("etag", "\"old\"")]),
            &current
        ));
        assert!(!client_has_current(&headers(&[]), &current));
    }
}
