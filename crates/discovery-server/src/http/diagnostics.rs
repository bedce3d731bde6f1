//! `GET /v1/diagnostics/node/{nodeId}`: why a node is listed or not, from the store (on
//! every replica) and this server's [`crate::diagnostics`] memory; and the hooks through
//! which the announcement, authentication and replication handlers feed that memory, so
//! each of them records with one line and the HTTP errors are turned into typed reasons
//! in one place.

use std::net::IpAddr;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use discovery_types::diagnostics::{
    LastAccepted, NodeDiagnostics, NodeService, Refusal, RefusalReason,
};
use discovery_types::replication::PushRequest;
use discovery_types::{validate_node_id, AnnouncementError};

use super::{json_content_type, ApiError, AppState, ClientAddr, NOSNIFF};
use crate::access::{Need, Verdict};
use crate::authenticator::Identity;
use crate::diagnostics::{cut, environment_matches, Arrival, Via};
use crate::registry::{decode_services, StoreName, ValueFormat};

/// `GET /v1/diagnostics/node/{nodeId}`: 200 for any valid node id (an unknown one is
/// `listed: false` with empty lists: asking is legitimate), 400 for an id the
/// announcement API would refuse.
pub async fn node(
    State(state): State<AppState>,
    Path(node_id): Path<String>,
) -> Result<Response, ApiError> {
    validate_node_id(&node_id)
        .map_err(|e| ApiError::BadRequest(format!("invalid node id: {e}")))?;
    let store = state.registry.store(StoreName::Dynamic);
    let now = store.now_ms();
    let entry = store.get(node_id.as_bytes());
    let record = state.diagnostics.record(&node_id);
    let mut answer = NodeDiagnostics::unknown(
        node_id,
        state.node.node_id.clone(),
        state.registry.environment().to_owned(),
    );
    let mut stored_at = None;
    if let Some(entry) = &entry {
        match &entry.value {
            Some(value) => {
                stored_at = Some(entry.timestamp);
                answer.last_renewal = Some(entry.timestamp);
                answer.expires_at = entry.expires_at();
                // An undecodable value is hidden from lookups, so it is not listed either.
                if let Ok(services) = decode_services(ValueFormat::ServiceList, value) {
                    answer.listed = entry.is_live(now);
                    answer.location = services.iter().find_map(|s| s.location.clone());
                    answer.services = services
                        .into_iter()
                        .map(|service| NodeService {
                            http: service
                                .properties
                                .get("http")
                                .or_else(|| service.properties.get("https"))
                                .cloned(),
                            service_type: service.service_type,
                            pool: service.pool,
                            id: service.id,
                        })
                        .collect();
                }
            }
            None => answer.unannounced_at = Some(entry.timestamp),
        }
    }
    answer.environment_matches = environment_matches(record.as_ref(), stored_at);
    if let Some(record) = &record {
        answer.last_accepted = record.accepted().map(|accepted| {
            let (via, replicated) = match &accepted.arrival {
                Arrival::Client => ("client".to_owned(), false),
                Arrival::Replication(Some(peer)) => (peer.to_string(), true),
                Arrival::Replication(None) => ("replication".to_owned(), true),
            };
            LastAccepted {
                at: accepted.at_ms,
                client_address: accepted.client.map(|ip| ip.to_string()),
                via,
                replicated,
            }
        });
        answer.recent_refusals = record
            .refusals_newest_first()
            .map(|refusal| Refusal {
                at: refusal.at_ms,
                message: refusal.reason.to_string(),
                reason: refusal.reason.clone(),
                client_address: refusal.client.map(|ip| ip.to_string()),
            })
            .collect();
    }
    // Plain strings, numbers and lists: serialising cannot fail.
    let body = serde_json::to_vec(&answer).unwrap_or_default();
    Ok((
        StatusCode::OK,
        [
            json_content_type(),
            NOSNIFF,
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response())
}

/// Why `PUT /v1/announcement/{nodeId}` was refused, kept typed until the answer is
/// written: an environment mismatch is remembered with its two environments, not as text.
#[derive(Debug)]
pub(super) enum Refused {
    Body(AnnouncementError),
    Api(ApiError),
}

impl From<AnnouncementError> for Refused {
    fn from(e: AnnouncementError) -> Self {
        Refused::Body(e)
    }
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Self {
        Refused::Api(e)
    }
}

impl From<discovery_store::StoreError> for Refused {
    fn from(e: discovery_store::StoreError) -> Self {
        Refused::Api(e.into())
    }
}

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::Body(e) => e.into(),
            Refused::Api(e) => e,
        }
    }
}

impl Refused {
    fn reason(&self) -> RefusalReason {
        match self {
            Refused::Body(AnnouncementError::EnvironmentMismatch { expected, provided }) => {
                RefusalReason::EnvironmentMismatch {
                    expected: expected.clone(),
                    provided: provided.clone(),
                }
            }
            Refused::Body(other) => RefusalReason::InvalidBody {
                detail: other.to_string(),
            },
            Refused::Api(error) => reason_of(error),
        }
    }
}

/// The typed reason of an error the announce path answered.
fn reason_of(error: &ApiError) -> RefusalReason {
    match error {
        ApiError::PayloadTooLarge { limit } => RefusalReason::TooLarge {
            limit: u64::try_from(*limit).unwrap_or(u64::MAX),
        },
        ApiError::RequestTimeout => RefusalReason::Timeout,
        ApiError::UnsupportedMediaType(detail) => RefusalReason::UnsupportedMediaType {
            detail: detail.clone(),
        },
        ApiError::StoreFull(detail) => RefusalReason::StoreFull {
            detail: detail.clone(),
        },
        ApiError::StorageUnavailable => RefusalReason::StorageUnavailable,
        ApiError::NotReady(reason) => RefusalReason::NotReady {
            reason: reason.clone(),
        },
        ApiError::Unauthorized(reason) => RefusalReason::Unauthenticated {
            reason: reason.clone(),
        },
        ApiError::Forbidden(reason) => RefusalReason::Forbidden {
            reason: reason.clone(),
        },
        // A body that could not be read; the rest are not answered on the announce path.
        other => RefusalReason::InvalidBody {
            detail: other.message(),
        },
    }
}

/// The address a request came from (absent when the router is driven without the
/// server's accept loop, as in benchmarks).
pub(super) fn ip(client: Option<Extension<ClientAddr>>) -> Option<IpAddr> {
    client.map(|Extension(ClientAddr(addr))| addr.ip())
}

fn now_ms(state: &AppState) -> i64 {
    state.registry.store(StoreName::Dynamic).now_ms()
}

/// Records the outcome of one `PUT /v1/announcement/{nodeId}` from `client`.
pub(super) fn record_announcement(
    state: &AppState,
    node_id: &str,
    client: Option<IpAddr>,
    outcome: &Result<(), Refused>,
) {
    match outcome {
        Ok(()) => state
            .diagnostics
            .accepted(node_id, now_ms(state), client, Via::Client),
        Err(refused) => state
            .diagnostics
            .refused(node_id, now_ms(state), client, refused.reason()),
    }
}

/// Records an authentication refusal of `PUT`/`DELETE /v1/announcement/{nodeId}` (the
/// only needs that name a node); every other verdict and need is ignored.
pub(super) fn record_verdict(
    state: &AppState,
    need: &Need,
    client: Option<IpAddr>,
    verdict: &Verdict,
) {
    // The need's node is the raw path segment: one with a percent escape is not the id
    // the handler would decode, so it is not remembered under the wrong name.
    let Need::Announcement { node: Some(node) } = need else {
        return;
    };
    if node.contains('%') {
        return;
    }
    let reason = match verdict {
        Verdict::Allow => return,
        Verdict::Unauthorized(failure) => RefusalReason::Unauthenticated {
            reason: failure.to_string(),
        },
        Verdict::Forbidden(reason) => RefusalReason::Forbidden {
            reason: reason.clone(),
        },
    };
    state
        .diagnostics
        .refused(node, now_ms(state), client, reason);
}

/// The dynamic entries and renewals of a push with the version each would store, so
/// afterwards the keys that now hold that version are recorded as accepted by
/// replication. One read per key, after the push: pushes carry most renewals in a
/// cluster, so the hook stays off the store's lock while the push applies. (A key the
/// node already held at that version counts again; the time is then the latest push.)
pub(super) struct PushWatch {
    keys: Vec<(Vec<u8>, i64)>,
}

impl PushWatch {
    /// `None` for the static store (static services belong to no node).
    pub(super) fn before(store: StoreName, request: &PushRequest) -> Option<PushWatch> {
        if store != StoreName::Dynamic {
            return None;
        }
        let keys = request
            .entries
            .iter()
            .filter(|entry| entry.value.is_some())
            .map(|entry| (entry.key.clone(), entry.version.sequence))
            .chain(request.renewals.iter().map(|r| (r.key.clone(), r.version)))
            .collect();
        Some(PushWatch { keys })
    }

    /// Records every key that holds its pushed version, from `client`, pushed by `peer`.
    pub(super) fn after(self, state: &AppState, client: Option<IpAddr>, peer: Option<&str>) {
        let dynamic = state.registry.store(StoreName::Dynamic);
        let now = dynamic.now_ms();
        for (key, version) in self.keys {
            let stored = dynamic
                .get(&key)
                .is_some_and(|entry| entry.version == version && entry.value.is_some());
            if stored {
                if let Ok(node_id) = std::str::from_utf8(&key) {
                    state
                        .diagnostics
                        .accepted(node_id, now, client, Via::Replication { peer });
                }
            }
        }
    }
}

/// The node id of the peer that sent a replication request: the verified subject of its
/// internal token when the cluster has a shared secret, else the node id its replicator
/// gives as `User-Agent` (a claim, but without a secret the push itself is unverified
/// too), else unknown.
pub(super) fn pusher<'a>(
    identity: Option<&'a Identity>,
    headers: &'a HeaderMap,
) -> Option<&'a str> {
    if let Some(Identity::Node(sub)) = identity {
        return Some(cut(sub));
    }
    headers
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .filter(|agent| validate_node_id(agent).is_ok())
        .map(cut)
}
