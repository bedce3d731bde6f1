//! The caller of a request: reads its credential, checks it against the shared secret or
//! the operator tokens, and judges it by the route's need ([`crate::access`]). Refusals
//! are counted and logged here, never with the token.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use axum::http::HeaderMap;
use discovery_auth::{basic_password, presented, Credential, Role, Verifier};
use sha2::{Digest, Sha256};

use crate::access::{judge, AuthFailure, Caller, Need, Policy, Verdict};
use crate::config::AuthSettings;
use crate::failure_log::{FailureCounts, LogLimiter};
use crate::operator_tokens::{TokenFile, TokenFileError};

/// Who made a request, as the audit log names it. The middleware determines it once and
/// hands it to the handlers as a request extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// No credential, or a node that checks none (no secret and no tokens file: it cannot
    /// tell callers apart).
    Anonymous,
    /// A valid internal token; its `sub`.
    Node(String),
    /// An operator token: its role and [`token_id`], never the token.
    Operator { role: Role, token_id: String },
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::Anonymous => f.write_str("anonymous"),
            // A verified `sub` is still text someone chose: escaped, so it cannot forge a
            // log line.
            Identity::Node(sub) => write!(f, "internal:{}", sub.escape_debug()),
            Identity::Operator { role, token_id } => write!(f, "operator:{role}:{token_id}"),
        }
    }
}

/// A short id of an operator token for logs: the first 8 hex digits of its SHA-256. Tells
/// an operator which of the file's tokens was used without revealing or weakening it.
pub fn token_id(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .take(4)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// One per node, shared by every request.
#[derive(Debug)]
pub struct Authenticator {
    policy: Policy,
    verifier: Option<Verifier>,
    operators: Option<TokenFile>,
    failures: FailureCounts,
    limiter: Mutex<LogLimiter>,
}

impl Authenticator {
    /// Reads the operator tokens file, if one is configured.
    pub fn new(settings: &AuthSettings) -> Result<Self, TokenFileError> {
        let operators = settings
            .operator_tokens_file
            .as_deref()
            .map(TokenFile::open)
            .transpose()?;
        Ok(Authenticator {
            policy: Policy::of(settings),
            verifier: settings
                .shared_secret
                .as_ref()
                .map(|secret| Verifier::new(secret, settings.jwt_leeway)),
            operators,
            failures: FailureCounts::default(),
            limiter: Mutex::new(LogLimiter::default()),
        })
    }

    /// No checks at all: what a node without a secret or tokens file does.
    pub fn open() -> Self {
        Authenticator {
            policy: Policy::of(&AuthSettings {
                shared_secret: None,
                jwt_leeway: std::time::Duration::ZERO,
                announcements: crate::config::AnnouncementAuthentication::None,
                lookups: crate::config::LookupAuthentication::None,
                operator_tokens_file: None,
            }),
            verifier: None,
            operators: None,
            failures: FailureCounts::default(),
            limiter: Mutex::new(LogLimiter::default()),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The tokens file, for the loop that reloads it.
    pub fn operator_tokens(&self) -> Option<&TokenFile> {
        self.operators.as_ref()
    }

    /// Who sent `headers`.
    pub fn identify(&self, headers: &HeaderMap) -> Result<Caller, AuthFailure> {
        self.recognise(headers, false).map(|(caller, _)| caller)
    }

    /// The caller, and for an operator its token's [`token_id`]. With `basic` (a page for
    /// browsers) the password of `Authorization: Basic` counts as a Bearer token.
    fn recognise(
        &self,
        headers: &HeaderMap,
        basic: bool,
    ) -> Result<(Caller, Option<String>), AuthFailure> {
        if basic {
            if let Some(password) = basic_password(headers).map_err(AuthFailure::Token)? {
                return self.bearer(&password);
            }
        }
        match presented(headers).map_err(AuthFailure::Token)? {
            None => Ok((Caller::Anonymous, None)),
            Some(Credential::Internal(token)) => self.internal(token).map(|c| (c, None)),
            Some(Credential::Bearer(token)) => self.bearer(token),
        }
    }

    /// An operator token, or an internal token sent as `Authorization: Bearer`.
    fn bearer(&self, token: &str) -> Result<(Caller, Option<String>), AuthFailure> {
        if let Some(role) = self.operators.as_ref().and_then(|file| file.role_of(token)) {
            return Ok((Caller::Operator(role), Some(token_id(token))));
        }
        // A JWT has exactly two dots; anything else is a mistyped operator token.
        if token.bytes().filter(|&b| b == b'.').count() == 2 && self.verifier.is_some() {
            self.internal(token).map(|c| (c, None))
        } else {
            Err(AuthFailure::UnknownToken)
        }
    }

    fn internal(&self, token: &str) -> Result<Caller, AuthFailure> {
        let verifier = self.verifier.as_ref().ok_or(AuthFailure::NoSecret)?;
        verifier
            .verify(token)
            .map(Caller::Node)
            .map_err(AuthFailure::Token)
    }

    /// The verdict on a request to `route` with `need`; refusals are counted and logged
    /// (once a minute per client address).
    pub fn check(
        &self,
        need: &Need,
        headers: &HeaderMap,
        client: Option<IpAddr>,
        method: &str,
        route: &str,
    ) -> Verdict {
        self.authorize(need, headers, client, method, route).0
    }

    /// [`check`](Self::check), and who the caller is: [`Identity::Anonymous`] when the
    /// need lets anyone in (nothing is checked then).
    pub fn authorize(
        &self,
        need: &Need,
        headers: &HeaderMap,
        client: Option<IpAddr>,
        method: &str,
        route: &str,
    ) -> (Verdict, Identity) {
        if self.policy.lets_anyone(need) {
            return (Verdict::Allow, Identity::Anonymous);
        }
        let recognised = self.recognise(headers, crate::access::accepts_basic(route));
        let identity = match &recognised {
            Ok((Caller::Node(sub), _)) => Identity::Node(sub.clone()),
            Ok((Caller::Operator(role), Some(token_id))) => Identity::Operator {
                role: *role,
                token_id: token_id.clone(),
            },
            _ => Identity::Anonymous,
        };
        let verdict = judge(&self.policy, need, recognised.map(|(caller, _)| caller));
        let (status, label, reason) = match &verdict {
            Verdict::Allow => return (verdict, identity),
            Verdict::Unauthorized(failure) => (401, failure.label(), failure.to_string()),
            Verdict::Forbidden(reason) => (403, "forbidden", reason.clone()),
        };
        self.failures.add(label);
        let log = match (client, self.limiter.lock()) {
            (Some(client), Ok(mut limiter)) => limiter.should_log(client, Instant::now()),
            _ => false,
        };
        if log {
            tracing::warn!(client = ?client, method, route, status, %reason,
                "request refused (further refusals from this client are counted, not logged, for a minute)");
        }
        (verdict, identity)
    }

    /// Refusals so far, by reason.
    pub fn failure_counts(&self) -> BTreeMap<String, u64> {
        self.failures.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::HeaderValue;
    use discovery_auth::{KeyDerivation, Minter, Role, SharedSecret};

    use super::*;
    use crate::config::{AnnouncementAuthentication, LookupAuthentication};

    const OPERATOR: &str = "op-0123456789abcdef";

    fn authenticator(dir: &std::path::Path) -> Authenticator {
        let file = dir.join("tokens");
        std::fs::write(&file, format!("{OPERATOR} read\n")).unwrap();
        Authenticator::new(&AuthSettings {
            shared_secret: SharedSecret::new("s3cret"),
            jwt_leeway: Duration::from_secs(30),
            announcements: AnnouncementAuthentication::Verify,
            lookups: LookupAuthentication::None,
            operator_tokens_file: Some(file),
        })
        .unwrap()
    }

    fn with(name: &'static str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).unwrap());
        headers
    }

    fn token(secret: &str, derivation: KeyDerivation) -> String {
        Minter::new(
            &SharedSecret::new(secret).unwrap(),
            derivation,
            "w1",
            Duration::from_secs(300),
        )
        .token()
    }

    #[test]
    fn tokens_under_every_header_and_derivation() {
        let dir = tempfile::tempdir().unwrap();
        let auth = authenticator(dir.path());
        for derivation in KeyDerivation::ALL {
            let t = token("s3cret", derivation);
            for header in ["x-trino-internal-bearer", "x-presto-internal-bearer"] {
                assert_eq!(
                    auth.identify(&with(header, &t)),
                    Ok(Caller::Node("w1".into()))
                );
            }
            assert_eq!(
                auth.identify(&with("authorization", &format!("Bearer {t}"))),
                Ok(Caller::Node("w1".into()))
            );
        }
        assert_eq!(
            auth.identify(&with("authorization", &format!("Bearer {OPERATOR}"))),
            Ok(Caller::Operator(Role::Read))
        );
        assert_eq!(
            auth.identify(&with("authorization", "Bearer op-0123456789abcdeX")),
            Err(AuthFailure::UnknownToken)
        );
        // An operator token is not an internal token.
        assert!(auth
            .identify(&with("x-trino-internal-bearer", OPERATOR))
            .is_err());
        let wrong = token("other", KeyDerivation::Sha256);
        assert!(matches!(
            auth.identify(&with("x-trino-internal-bearer", &wrong)),
            Err(AuthFailure::Token(discovery_auth::TokenError::BadSignature))
        ));
        assert_eq!(auth.identify(&HeaderMap::new()), Ok(Caller::Anonymous));
    }

    #[test]
    fn refusals_are_counted_by_reason() {
        let dir = tempfile::tempdir().unwrap();
        let auth = authenticator(dir.path());
        let client = Some("127.0.0.9".parse().unwrap());
        let peer = Need::Peer;
        assert!(matches!(
            auth.check(&peer, &HeaderMap::new(), client, "POST", "r"),
            Verdict::Unauthorized(_)
        ));
        assert!(matches!(
            auth.check(&peer, &HeaderMap::new(), client, "POST", "r"),
            Verdict::Unauthorized(_)
        ));
        let t = token("s3cret", KeyDerivation::HkdfSha256);
        assert_eq!(
            auth.check(
                &peer,
                &with("x-trino-internal-bearer", &t),
                client,
                "POST",
                "r"
            ),
            Verdict::Allow
        );
        let other = Need::Announcement {
            node: Some("w2".into()),
        };
        assert!(matches!(
            auth.check(
                &other,
                &with("x-trino-internal-bearer", &t),
                client,
                "PUT",
                "r"
            ),
            Verdict::Forbidden(_)
        ));
        let counts = auth.failure_counts();
        assert_eq!(counts["missing"], 2);
        assert_eq!(counts["forbidden"], 1);
    }

    #[test]
    fn the_identity_names_the_caller_and_never_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let auth = authenticator(dir.path());
        let read = Need::Operator(Role::Read);
        let bearer = with("authorization", &format!("Bearer {OPERATOR}"));
        let (verdict, identity) = auth.authorize(&read, &bearer, None, "GET", "r");
        assert_eq!(verdict, Verdict::Allow);
        let id = token_id(OPERATOR);
        assert_eq!(id.len(), 8);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(
            identity,
            Identity::Operator {
                role: Role::Read,
                token_id: id.clone()
            }
        );
        let shown = identity.to_string();
        assert_eq!(shown, format!("operator:read:{id}"));
        assert!(!shown.contains(OPERATOR));
        let t = token("s3cret", KeyDerivation::Sha256);
        let (_, node) = auth.authorize(
            &Need::Peer,
            &with("x-trino-internal-bearer", &t),
            None,
            "POST",
            "r",
        );
        assert_eq!(node.to_string(), "internal:w1");
        let (_, nobody) = auth.authorize(&read, &HeaderMap::new(), None, "GET", "r");
        assert_eq!(nobody.to_string(), "anonymous");
        assert_eq!(Identity::Node("a\nb".into()).to_string(), "internal:a\\nb");
    }

    #[test]
    fn the_status_page_takes_the_token_as_a_basic_password() {
        use base64::Engine;
        let dir = tempfile::tempdir().unwrap();
        let auth = authenticator(dir.path());
        let read = Need::Operator(Role::Read);
        let basic = |user_and_password: &str| {
            let encoded = base64::engine::general_purpose::STANDARD.encode(user_and_password);
            with("authorization", &format!("Basic {encoded}"))
        };
        let good = basic(&format!("anyone:{OPERATOR}"));
        let (verdict, identity) = auth.authorize(&read, &good, None, "GET", "/ui/");
        assert_eq!(verdict, Verdict::Allow);
        assert_eq!(
            identity.to_string(),
            format!("operator:read:{}", token_id(OPERATOR))
        );
        // Elsewhere Basic is no credential the API knows.
        assert!(matches!(
            auth.check(&read, &good, None, "GET", "/v1/replication/status"),
            Verdict::Unauthorized(AuthFailure::Token(_))
        ));
        assert_eq!(
            auth.check(&read, &basic("u:op-wrong-wrong-wrong"), None, "GET", "/ui/"),
            Verdict::Unauthorized(AuthFailure::UnknownToken)
        );
        assert_eq!(
            auth.check(&read, &HeaderMap::new(), None, "GET", "/ui/"),
            Verdict::Unauthorized(AuthFailure::Missing)
        );
        let bearer = with("authorization", &format!("Bearer {OPERATOR}"));
        assert_eq!(
            auth.check(&read, &bearer, None, "GET", "/ui/"),
            Verdict::Allow
        );
    }

    #[test]
    fn an_open_node_checks_nothing() {
        let auth = Authenticator::open();
        let broken = with("authorization", "Basic x");
        for need in [Need::Peer, Need::Operator(Role::Write), Need::Lookup] {
            assert_eq!(auth.check(&need, &broken, None, "GET", "r"), Verdict::Allow);
        }
    }
}
