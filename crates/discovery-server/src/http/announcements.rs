//! Dynamic (`/v1/announcement/{nodeId}`) and static (`/v1/announcement/static`) announcements.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use discovery_types::{
    is_service_id, validate_node_id, DynamicAnnouncement, Service, StaticAnnouncement,
};

use super::body::{body_format, read_body};
use super::diagnostics::{self, Refused};
use super::error::ApiError;
use super::{cache_control, json_content_type, writable, AppState, ClientAddr, NOSNIFF};
use crate::audit;
use crate::authenticator::Identity;

/// Who is writing, for the audit log, from the request's extensions.
fn writer(
    client: Option<Extension<ClientAddr>>,
    identity: Option<Extension<Identity>>,
) -> audit::Writer {
    audit::Writer {
        client: client.map(|Extension(c)| c),
        identity: identity.map(|Extension(i)| i),
    }
}

/// `PUT /v1/announcement/{nodeId}`: replace the node's services. 202, and
/// `Cache-Control: max-age` so airlift clients re-announce at 80 % of it.
pub async fn announce(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    Path(node_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    announce_node(&state, &node_id, client, &headers, body).await
}

/// `PUT /v1/announcement/static`: the node called `static` announcing (Java answers 405).
pub async fn announce_node_named_static(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    announce_node(&state, "static", client, &headers, body).await
}

async fn announce_node(
    state: &AppState,
    node_id: &str,
    client: Option<Extension<ClientAddr>>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let outcome = store_announcement(state, node_id, headers, body).await;
    diagnostics::record_announcement(state, node_id, diagnostics::ip(client), &outcome);
    outcome?;
    Ok((
        StatusCode::ACCEPTED,
        [cache_control(state.limits.announce_max_age_secs)],
    )
        .into_response())
}

async fn store_announcement(
    state: &AppState,
    node_id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<(), Refused> {
    validate_node_id(node_id)?;
    writable(state)?;
    body_format(headers, false)?;
    let body = read_body(headers, body, state.limits.max_request_size).await?;
    let announcement = DynamicAnnouncement::from_json(&body, state.registry.environment())?;
    state.registry.announce(node_id, announcement)?;
    Ok(())
}

/// `DELETE /v1/announcement/{nodeId}`: always 204, whether or not the node announced.
pub async fn unannounce(
    State(state): State<AppState>,
    Path(node_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    validate_node_id(&node_id)?;
    writable(&state)?;
    state.registry.unannounce(&node_id)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/announcement/static`: the node called `static` unannouncing.
pub async fn unannounce_node_named_static(
    State(state): State<AppState>,
) -> Result<StatusCode, ApiError> {
    writable(&state)?;
    state.registry.unannounce("static")?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/announcement/static`: 201 with `Location` and the created service. The
/// service is on disk before the 201 is sent. Audited.
pub async fn add_static(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    identity: Option<Extension<Identity>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let outcome = create_static(&state, &headers, body).await;
    let what = match &outcome {
        Ok((service, _)) => format!(
            "service {} type {:?} pool {:?}",
            service.id, service.service_type, service.pool
        ),
        Err(_) => "a static service".to_owned(),
    };
    audit::record(
        &writer(client, identity),
        "POST",
        "/v1/announcement/static",
        &what,
        &outcome,
        |(_, response)| response.status(),
    );
    outcome.map(|(_, response)| response)
}

async fn create_static(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Service, Response), ApiError> {
    body_format(headers, false)?;
    let body = read_body(headers, body, state.limits.max_request_size).await?;
    let announcement = StaticAnnouncement::from_json(&body, state.registry.environment())?;
    writable(state)?;
    let registry = state.registry.clone();
    // The static store flushes to disk inside the write: keep that off the async workers.
    let service = tokio::task::spawn_blocking(move || registry.add_static(announcement))
        .await
        .map_err(|_| ApiError::StorageUnavailable)??;
    let location = HeaderValue::from_str(&format!("/v1/announcement/static/{}", service.id)).ok();
    let json = serde_json::to_vec(&service).unwrap_or_default();
    let mut response = (StatusCode::CREATED, [json_content_type()], json).into_response();
    // Relative, where Java builds it from the request's Host header: a Host is whatever
    // the client says, and an absolute URI built from it points wherever the client chose.
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok((service, response))
}

/// `GET /v1/announcement/static`: the static services only.
pub async fn list_static(State(state): State<AppState>) -> Response {
    let lookup = state.registry.static_services();
    (StatusCode::OK, [json_content_type(), NOSNIFF], lookup.body).into_response()
}

/// `DELETE /v1/announcement/static/{serviceId}`: 204 whether or not it exists; 400 for an
/// id that cannot be a service id (no tombstone is written for garbage). Audited.
pub async fn delete_static(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    identity: Option<Extension<Identity>>,
    Path(service_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    // The id is checked below; until then it is client text.
    let what = format!("service {:?}", service_id);
    let outcome = remove_static(&state, service_id).await;
    audit::record(
        &writer(client, identity),
        "DELETE",
        "/v1/announcement/static/{service_id}",
        &what,
        &outcome,
        |status| *status,
    );
    outcome
}

async fn remove_static(state: &AppState, service_id: String) -> Result<StatusCode, ApiError> {
    if !is_service_id(&service_id) {
        return Err(ApiError::BadRequest(
            "service id must be a UUID such as 0b6c6a2e-3f5e-4a43-9d2e-6f3a3f0f6a01".into(),
        ));
    }
    writable(state)?;
    let registry = state.registry.clone();
    tokio::task::spawn_blocking(move || registry.delete_static(&service_id))
        .await
        .map_err(|_| ApiError::StorageUnavailable)??;
    Ok(StatusCode::NO_CONTENT)
}
