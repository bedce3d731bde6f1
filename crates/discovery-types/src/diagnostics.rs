//! The answer of `GET /v1/diagnostics/node/{nodeId}`: "why is this node missing?".
//!
//! The most common discovery question is "the worker says it announced, why doesn't the
//! coordinator see it?". The answer is spread over what the store holds (replicated, so
//! every server knows it) and what only the server that got the request saw (refusals,
//! who sent the last accepted announcement). These types put both in one document, in
//! the API's camelCase, so `discovery why` and people with `curl` read the same thing.
//! Times are ms since the epoch, on the answering server's clock.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Everything one server knows about one node id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeDiagnostics {
    pub node_id: String,
    /// The node id of the discovery server that answered: refusals and `lastAccepted` are
    /// what *this* server saw.
    pub server: String,
    /// The server's `node.environment`: what announcements must carry.
    pub environment: String,
    /// Whether the node's latest announcement seen here matched `environment`: `true`
    /// when the newest acceptance (or the stored entry) is newer than the newest
    /// environment-mismatch refusal, `false` when the refusal is newer, absent when
    /// neither is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_matches: Option<bool>,
    /// In the dynamic store with a value that has not expired: lookups return it.
    pub listed: bool,
    /// The services of its stored entry (also when it has expired).
    #[serde(default)]
    pub services: Vec<NodeService>,
    /// The location of its services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// When the stored entry was written by the server the node announced to (its
    /// timestamp): the last renewal, known on every replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_renewal: Option<i64>,
    /// `lastRenewal` plus the entry's max age: when lookups stop returning it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// When the node was unannounced (`DELETE /v1/announcement/{nodeId}`), if the store
    /// holds its delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unannounced_at: Option<i64>,
    /// The last announcement this server accepted for the node, if it remembers one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_accepted: Option<LastAccepted>,
    /// The most recent announcements this server refused for the node, newest first.
    #[serde(default)]
    pub recent_refusals: Vec<Refusal>,
}

impl NodeDiagnostics {
    /// What `server` (of `environment`) says of a node id it knows nothing about: not
    /// listed, nothing seen. The answer is filled in from there.
    pub fn unknown(node_id: String, server: String, environment: String) -> Self {
        NodeDiagnostics {
            node_id,
            server,
            environment,
            environment_matches: None,
            listed: false,
            services: Vec::new(),
            location: None,
            last_renewal: None,
            expires_at: None,
            unannounced_at: None,
            last_accepted: None,
            recent_refusals: Vec::new(),
        }
    }
}

/// One service of the node's stored entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeService {
    #[serde(rename = "type")]
    pub service_type: String,
    pub pool: String,
    pub id: String,
    /// Its `http` property (or `https` when it has no `http`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
}

/// The last accepted announcement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastAccepted {
    pub at: i64,
    /// Who sent it to this server: the node itself, or the peer that pushed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_address: Option<String>,
    /// `client` when the node announced to this server directly; otherwise the node id
    /// of the discovery peer that pushed it, or `replication` when that is unknown.
    pub via: String,
    /// It arrived by a replication push (so `via` names a peer, not the literal
    /// `client`, even for a peer called "client").
    pub replicated: bool,
}

/// One refused announcement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refusal {
    pub at: i64,
    pub reason: RefusalReason,
    /// The reason in one line, as the refused client was told.
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_address: Option<String>,
}

/// Why an announcement was refused, by `kind`. Every text is cut to at most
/// [`MAX_DIAGNOSTIC_TEXT_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum RefusalReason {
    /// The body's `environment` is not the server's (`provided` null: none given).
    EnvironmentMismatch {
        expected: String,
        provided: Option<String>,
    },
    /// The body is not a valid announcement (JSON, a field), or could not be read.
    InvalidBody { detail: String },
    /// The body's content type is not JSON.
    UnsupportedMediaType { detail: String },
    /// The body is larger than `http-server.max-request-size`.
    TooLarge { limit: u64 },
    /// The body did not arrive within the read deadline.
    Timeout,
    /// No credential, or one that does not hold (401): the server's reason.
    Unauthenticated { reason: String },
    /// A valid credential without the right, e.g. a token for another node (403).
    Forbidden { reason: String },
    /// The dynamic store holds its maximum number of entries.
    StoreFull { detail: String },
    /// The server refuses writes for now (its clock is off from its peers').
    NotReady { reason: String },
    /// The storage engine failed.
    StorageUnavailable,
    /// The request contradicts what the server holds (an announce-mode node claiming
    /// the node id of an airlift-mode announcement).
    Conflict { detail: String },
    /// A kind this client does not know (a newer server); read `message`.
    #[serde(other)]
    Other,
}

/// Longest text kept in a [`RefusalReason`] or [`LastAccepted::via`], in bytes.
pub const MAX_DIAGNOSTIC_TEXT_BYTES: usize = 128;

/// Most refusals remembered (and answered) per node id.
pub const MAX_REFUSALS_PER_NODE: usize = 8;

impl fmt::Display for RefusalReason {
    /// The one-line message the refused client got (the same texts as the API's errors).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefusalReason::EnvironmentMismatch { expected, provided } => write!(
                f,
                "Environment mismatch. Expected: {expected}, Provided: {}",
                provided.as_deref().unwrap_or("null")
            ),
            RefusalReason::InvalidBody { detail }
            | RefusalReason::UnsupportedMediaType { detail }
            | RefusalReason::StoreFull { detail }
            | RefusalReason::Conflict { detail } => f.write_str(detail),
            RefusalReason::TooLarge { limit } => {
                write!(f, "request body larger than {limit} bytes")
            }
            RefusalReason::Timeout => f.write_str("timed out reading the request body"),
            RefusalReason::Unauthenticated { reason } | RefusalReason::Forbidden { reason } => {
                f.write_str(reason)
            }
            RefusalReason::NotReady { reason } => write!(f, "not ready: {reason}"),
            RefusalReason::StorageUnavailable => f.write_str("storage unavailable, retry later"),
            RefusalReason::Other => f.write_str("refused"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_tagged_by_kind_with_camel_case_fields() {
        let reason = RefusalReason::EnvironmentMismatch {
            expected: "production".into(),
            provided: Some("prod".into()),
        };
        let json = serde_json::to_value(&reason).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "environmentMismatch", "expected": "production", "provided": "prod"})
        );
        assert_eq!(
            reason.to_string(),
            "Environment mismatch. Expected: production, Provided: prod"
        );
        let too_large = serde_json::to_value(RefusalReason::TooLarge { limit: 10 }).unwrap();
        assert_eq!(
            too_large,
            serde_json::json!({"kind": "tooLarge", "limit": 10})
        );
        let back: RefusalReason =
            serde_json::from_value(serde_json::json!({"kind": "storeFull", "detail": "x"}))
                .unwrap();
        assert_eq!(back, RefusalReason::StoreFull { detail: "x".into() });
    }

    #[test]
    fn an_unknown_kind_from_a_newer_server_still_decodes() {
        let reason: RefusalReason =
            serde_json::from_value(serde_json::json!({"kind": "somethingNew"})).unwrap();
        assert_eq!(reason, RefusalReason::Other);
    }
}
