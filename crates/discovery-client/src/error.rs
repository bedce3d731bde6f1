//! [`DiscoveryError`]: every way a call to a discovery server can fail.
//!
//! The variants separate what a caller acts on differently: the server could not be
//! reached ([`DiscoveryError::Unreachable`]: try later, another server, or check the URI),
//! the server refused the request ([`DiscoveryError::Rejected`]: fix the request; the
//! server's one-line reason is kept verbatim), the server answered with something a client
//! must not use ([`DiscoveryError::InvalidResponse`], [`DiscoveryError::Validation`]), or
//! the caller passed something unusable ([`DiscoveryError::InvalidArgument`]).

use std::fmt;

use thiserror::Error;

use crate::cache_control::CacheControlError;
use crate::validate::ValidationError;

/// A failed discovery call.
#[derive(Debug, Error)]
pub enum DiscoveryError {
    /// The client was built without any discovery URI.
    #[error("no discovery URI configured")]
    NoUris,

    /// A discovery URI could not be parsed or is not http(s).
    #[error("invalid discovery URI '{uri}': {reason}")]
    InvalidUri { uri: String, reason: String },

    /// A caller-supplied value (node id, service id, body file) is unusable.
    #[error("{0}")]
    InvalidArgument(String),

    /// No answer from the server: connection refused, DNS failure, timeout, reset.
    #[error(
        "cannot reach discovery server {uri}; the server may be down or the URI wrong ({reason})"
    )]
    Unreachable { uri: String, reason: String },

    /// The server answered with a 5xx status: it is up but cannot serve the request now.
    #[error("discovery server {uri} is unavailable ({status}): {message}")]
    ServerError {
        uri: String,
        status: u16,
        message: String,
    },

    /// The server answered with a 4xx status; `message` is its one-line reason, e.g.
    /// `Environment mismatch. Expected: prod, Provided: test`.
    #[error("{message}")]
    Rejected {
        uri: String,
        status: u16,
        message: String,
    },

    /// The server answered with a status or body this protocol does not allow.
    #[error("unexpected response from discovery server {uri}: {reason}")]
    InvalidResponse { uri: String, reason: String },

    /// The lookup response is well-formed but not for what was asked (wrong environment,
    /// type or pool, non-UUID id); the airlift client rejects such responses as a whole.
    #[error("unusable lookup response from {uri}: {source}")]
    Validation {
        uri: String,
        #[source]
        source: ValidationError,
    },

    /// Every configured server failed; one error per URI, in the order they were tried.
    #[error("all discovery servers failed: {}", JoinErrors(.0))]
    AllFailed(Vec<DiscoveryError>),
}

impl DiscoveryError {
    /// True when no server could be reached or every server answered with a 5xx: the
    /// request itself may be fine and can be retried later.
    pub fn is_unavailable(&self) -> bool {
        match self {
            DiscoveryError::Unreachable { .. } | DiscoveryError::ServerError { .. } => true,
            DiscoveryError::AllFailed(errors) => errors.iter().all(|e| e.is_unavailable()),
            _ => false,
        }
    }

    /// The HTTP status the server answered with, when it answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            DiscoveryError::ServerError { status, .. }
            | DiscoveryError::Rejected { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True when the server refused the request because of the environment in it.
    pub fn is_environment_mismatch(&self) -> bool {
        match self {
            DiscoveryError::Rejected { message, .. } => message.starts_with("Environment mismatch"),
            DiscoveryError::Validation { source, .. } => {
                matches!(source, ValidationError::Environment { .. })
            }
            DiscoveryError::AllFailed(errors) => errors.iter().any(|e| e.is_environment_mismatch()),
            _ => false,
        }
    }

    pub(crate) fn cache_control(uri: &str, error: CacheControlError) -> Self {
        DiscoveryError::InvalidResponse {
            uri: uri.to_owned(),
            reason: error.to_string(),
        }
    }
}

/// `a; b; c` for the errors of [`DiscoveryError::AllFailed`].
struct JoinErrors<'a>(&'a [DiscoveryError]);

impl fmt::Display for JoinErrors<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_failed_lists_every_server_and_is_unavailable_only_if_all_were() {
        let down = DiscoveryError::Unreachable {
            uri: "http://127.0.0.1:1".into(),
            reason: "connection refused".into(),
        };
        let busy = DiscoveryError::ServerError {
            uri: "http://127.0.0.1:2".into(),
            status: 503,
            message: "storage unavailable, retry later".into(),
        };
        let all = DiscoveryError::AllFailed(vec![down, busy]);
        let text = all.to_string();
        assert!(text.contains("127.0.0.1:1"), "{text}");
        assert!(text.contains("127.0.0.1:2"), "{text}");
        assert!(all.is_unavailable());

        let rejected = DiscoveryError::Rejected {
            uri: "http://h".into(),
            status: 400,
            message: "Environment mismatch. Expected: a, Provided: b".into(),
        };
        assert_eq!(
            rejected.to_string(),
            "Environment mismatch. Expected: a, Provided: b"
        );
        assert!(rejected.is_environment_mismatch());
        assert!(!rejected.is_unavailable());
        assert_eq!(rejected.status(), Some(400));
    }
}
