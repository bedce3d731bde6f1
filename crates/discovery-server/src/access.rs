//! Who may call what: every route's need, and the verdict on a caller. Pure; the HTTP
//! middleware (`http::auth`) identifies the caller and answers what this decides.
//!
//! | Route | Need |
//! |---|---|
//! | `/v1/health/*`, unknown paths | open |
//! | `GET /v1/service*`, `GET /v1/announcement/static`, `GET /v1/announce` | lookup |
//! | `PUT`/`DELETE /v1/announcement/{nodeId}`, `POST /v1/announce` | announcement |
//! | `/v1/replication/{store}/*` | peer (internal token) |
//! | `POST /v1/store/{store}` | peer, or operator `write` |
//! | `POST /v1/announcement/static`, `DELETE /v1/announcement/static/{id}` | operator `write` |
//! | `GET /v1/store/{store}`, `GET /v1/replication/status`, `GET /metrics` | operator `read` |
//! | `GET /v1/diagnostics/node/{nodeId}` | operator `read` |
//! | `GET /ui/`, `GET /ui` (the status page) | operator `read`, also as HTTP Basic |
//!
//! A valid internal token (signed with the shared secret) satisfies every operator need:
//! whoever holds the secret is a member of the cluster.
//!
//! Browsers cannot send a Bearer header, so the pages for people ([`accepts_basic`]) also
//! take the token as the password of HTTP Basic (any user name), and their 401 asks for it.

use axum::http::Method;
use discovery_auth::{Role, TokenError};

use crate::config::{AnnouncementAuthentication, AuthSettings, LookupAuthentication};

/// What a route asks of its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    Open,
    Lookup,
    /// An announcement; `node` is the node id it is for, when the path names one.
    Announcement {
        node: Option<String>,
    },
    /// A discovery peer.
    Peer,
    /// A discovery peer, or an operator with `write` (raw store writes).
    PeerOrWriter,
    Operator(Role),
}

/// The need of `method` on the route template `route` (axum's matched path, e.g.
/// `/v1/announcement/{node_id}`), whose actual path is `path`.
pub fn need_of(method: &Method, route: &str, path: &str) -> Need {
    let reading = method == Method::GET || method == Method::HEAD;
    match route {
        "/v1/service" | "/v1/service/{type}" | "/v1/service/{type}/{pool}" => Need::Lookup,
        "/v1/announcement/{node_id}" => Need::Announcement {
            node: path.rsplit('/').next().map(str::to_owned),
        },
        // A node whose id is literally "static" announces with PUT and DELETE here.
        "/v1/announcement/static" if method == Method::PUT || method == Method::DELETE => {
            Need::Announcement {
                node: Some("static".to_owned()),
            }
        }
        "/v1/announcement/static" if reading => Need::Lookup,
        "/v1/announcement/static" | "/v1/announcement/static/{service_id}" => {
            Need::Operator(Role::Write)
        }
        "/v1/announce" if reading => Need::Lookup,
        "/v1/announce" => Need::Announcement { node: None },
        "/v1/store/{store}" if reading => Need::Operator(Role::Read),
        "/v1/store/{store}" => Need::PeerOrWriter,
        "/v1/replication/status" | "/metrics" => Need::Operator(Role::Read),
        // Client addresses and refusal reasons: what an operator reads, not every caller.
        "/v1/diagnostics/node/{node_id}" => Need::Operator(Role::Read),
        // The status page shows what /v1/replication/status shows.
        "/ui/" | "/ui" => Need::Operator(Role::Read),
        _ if route.starts_with("/v1/replication/") => Need::Peer,
        _ => Need::Open,
    }
}

/// Whether `route` is a page for browsers: it takes the token as an HTTP Basic password
/// too, and its 401 challenges with `Basic` so the browser prompts for it.
pub fn accepts_basic(route: &str) -> bool {
    matches!(route, "/ui/" | "/ui")
}

/// What the node checks, from its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// A shared secret is set: internal tokens can be checked.
    pub internal: bool,
    /// An operator tokens file is set.
    pub operators: bool,
    pub announcements: AnnouncementAuthentication,
    pub lookups: LookupAuthentication,
}

impl Policy {
    pub fn of(settings: &AuthSettings) -> Policy {
        Policy {
            internal: settings.shared_secret.is_some(),
            operators: settings.operator_tokens_file.is_some(),
            announcements: settings.announcements,
            lookups: settings.lookups,
        }
    }

    /// True when `need` is met by anyone, so the caller need not even be identified.
    pub fn lets_anyone(&self, need: &Need) -> bool {
        match need {
            Need::Open => true,
            Need::Lookup => self.lookups == LookupAuthentication::None,
            Need::Announcement { .. } => self.announcements == AnnouncementAuthentication::None,
            Need::Peer => !self.internal,
            Need::PeerOrWriter | Need::Operator(_) => !self.internal && !self.operators,
        }
    }
}

/// Who the caller turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No credential at all.
    Anonymous,
    /// A valid internal token; the node id is its `sub`.
    Node(String),
    Operator(Role),
}

/// Why a credential was not accepted (401).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Token(TokenError),
    /// `Authorization: Bearer` with neither an operator token nor a valid internal token.
    UnknownToken,
    /// An internal token on a node that has no shared secret to check it with.
    NoSecret,
}

impl AuthFailure {
    /// A short, fixed label for counting.
    pub fn label(&self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Token(TokenError::Expired) => "expired",
            AuthFailure::Token(TokenError::BadSignature) => "bad_signature",
            AuthFailure::Token(TokenError::BadAlgorithm) => "bad_algorithm",
            AuthFailure::Token(TokenError::NoSubject | TokenError::NoExpiry) => "bad_claims",
            AuthFailure::Token(TokenError::Malformed | TokenError::TooLong) => "malformed",
            AuthFailure::UnknownToken => "unknown_token",
            AuthFailure::NoSecret => "no_secret",
        }
    }
}

impl std::fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthFailure::Missing => f.write_str(
                "missing credentials: send X-Trino-Internal-Bearer, X-Presto-Internal-Bearer or Authorization: Bearer",
            ),
            AuthFailure::Token(e) => e.fmt(f),
            AuthFailure::UnknownToken => f.write_str("unknown token"),
            AuthFailure::NoSecret => f.write_str(
                "internal tokens are not accepted here: this node has no internal-communication.shared-secret",
            ),
        }
    }
}

/// The answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// 401 with this reason.
    Unauthorized(AuthFailure),
    /// 403 with this reason: a known caller without the right.
    Forbidden(String),
}

/// The verdict on `caller` (or on the credential that failed) for `need`.
pub fn judge(policy: &Policy, need: &Need, caller: Result<Caller, AuthFailure>) -> Verdict {
    if policy.lets_anyone(need) {
        return Verdict::Allow;
    }
    let caller = match caller {
        Ok(caller) => caller,
        Err(failure) => return Verdict::Unauthorized(failure),
    };
    let missing = Verdict::Unauthorized(AuthFailure::Missing);
    match (need, caller) {
        (Need::Open, _) => Verdict::Allow,
        (Need::Lookup, Caller::Anonymous) => missing,
        (Need::Lookup, _) => Verdict::Allow,
        (Need::Announcement { .. }, Caller::Anonymous) => {
            if policy.announcements == AnnouncementAuthentication::Verify {
                // Prestissimo's announcer signs nothing; `verify` lets it in.
                Verdict::Allow
            } else {
                missing
            }
        }
        (Need::Announcement { node: Some(node) }, Caller::Node(sub)) if *node != sub => {
            Verdict::Forbidden(format!(
                "a token for node '{sub}' cannot announce or delete node '{node}'"
            ))
        }
        (Need::Announcement { .. }, Caller::Node(_)) => Verdict::Allow,
        (Need::Announcement { .. }, Caller::Operator(role)) => at_least(role, Role::Write),
        (Need::Peer, Caller::Node(_)) => Verdict::Allow,
        (Need::Peer, Caller::Operator(_)) => Verdict::Forbidden(
            "replication needs an internal token (internal-communication.shared-secret), not an operator token".into(),
        ),
        (Need::Peer | Need::PeerOrWriter | Need::Operator(_), Caller::Anonymous) => missing,
        (Need::PeerOrWriter | Need::Operator(_), Caller::Node(_)) => Verdict::Allow,
        (Need::PeerOrWriter, Caller::Operator(role)) => at_least(role, Role::Write),
        (Need::Operator(needed), Caller::Operator(role)) => at_least(role, *needed),
    }
}

fn at_least(role: Role, needed: Role) -> Verdict {
    if role >= needed {
        Verdict::Allow
    } else {
        Verdict::Forbidden(format!(
            "this needs an operator token with role {needed}, not {role}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(
        internal: bool,
        operators: bool,
        announcements: AnnouncementAuthentication,
    ) -> Policy {
        Policy {
            internal,
            operators,
            announcements,
            lookups: LookupAuthentication::None,
        }
    }

    fn node(id: &str) -> Result<Caller, AuthFailure> {
        Ok(Caller::Node(id.to_owned()))
    }

    const ANON: Result<Caller, AuthFailure> = Ok(Caller::Anonymous);
    const READER: Result<Caller, AuthFailure> = Ok(Caller::Operator(Role::Read));
    const WRITER: Result<Caller, AuthFailure> = Ok(Caller::Operator(Role::Write));

    fn announce(id: &str) -> Need {
        Need::Announcement {
            node: Some(id.to_owned()),
        }
    }

    #[test]
    fn every_route_has_the_documented_need() {
        let cases = [
            (
                Method::GET,
                "/v1/health/ready",
                "/v1/health/ready",
                Need::Open,
            ),
            (
                Method::GET,
                "/v1/service/{type}",
                "/v1/service/trino",
                Need::Lookup,
            ),
            (Method::GET, "/v1/service", "/v1/service", Need::Lookup),
            (
                Method::PUT,
                "/v1/announcement/{node_id}",
                "/v1/announcement/w1",
                announce("w1"),
            ),
            (
                Method::DELETE,
                "/v1/announcement/{node_id}",
                "/v1/announcement/w1",
                announce("w1"),
            ),
            (
                Method::PUT,
                "/v1/announcement/static",
                "/v1/announcement/static",
                announce("static"),
            ),
            (
                Method::GET,
                "/v1/announcement/static",
                "/v1/announcement/static",
                Need::Lookup,
            ),
            (
                Method::POST,
                "/v1/announcement/static",
                "/v1/announcement/static",
                Need::Operator(Role::Write),
            ),
            (
                Method::DELETE,
                "/v1/announcement/static/{service_id}",
                "/v1/announcement/static/x",
                Need::Operator(Role::Write),
            ),
            (
                Method::POST,
                "/v1/announce",
                "/v1/announce",
                Need::Announcement { node: None },
            ),
            (Method::GET, "/v1/announce", "/v1/announce", Need::Lookup),
            (
                Method::GET,
                "/v1/store/{store}",
                "/v1/store/dynamic",
                Need::Operator(Role::Read),
            ),
            (
                Method::POST,
                "/v1/store/{store}",
                "/v1/store/dynamic",
                Need::PeerOrWriter,
            ),
            (
                Method::GET,
                "/v1/replication/status",
                "/v1/replication/status",
                Need::Operator(Role::Read),
            ),
            (
                Method::POST,
                "/v1/replication/{store}/push",
                "/v1/replication/dynamic/push",
                Need::Peer,
            ),
            (
                Method::GET,
                "/v1/replication/{store}/digest",
                "/v1/replication/dynamic/digest",
                Need::Peer,
            ),
            (
                Method::POST,
                "/v1/replication/{store}/entries",
                "/v1/replication/dynamic/entries",
                Need::Peer,
            ),
            (
                Method::POST,
                "/v1/replication/{store}/ranges",
                "/v1/replication/dynamic/ranges",
                Need::Peer,
            ),
            (
                Method::POST,
                "/v1/replication/{store}/diff",
                "/v1/replication/static/diff",
                Need::Peer,
            ),
            (
                Method::GET,
                "/metrics",
                "/metrics",
                Need::Operator(Role::Read),
            ),
            (
                Method::GET,
                "/v1/diagnostics/node/{node_id}",
                "/v1/diagnostics/node/w1",
                Need::Operator(Role::Read),
            ),
            (Method::GET, "/ui/", "/ui/", Need::Operator(Role::Read)),
            (Method::GET, "/ui", "/ui", Need::Operator(Role::Read)),
            (Method::GET, "", "/nowhere", Need::Open),
        ];
        for (method, route, path, expected) in cases {
            assert_eq!(need_of(&method, route, path), expected, "{method} {route}");
        }
    }

    #[test]
    fn only_the_status_page_takes_basic_credentials() {
        assert!(accepts_basic("/ui/") && accepts_basic("/ui"));
        for route in [
            "/v1/replication/status",
            "/metrics",
            "/v1/diagnostics/node/{node_id}",
            "/v1/service",
            "",
        ] {
            assert!(!accepts_basic(route), "{route}");
        }
    }

    #[test]
    fn without_secret_or_tokens_everything_is_open() {
        let open = policy(false, false, AnnouncementAuthentication::None);
        for need in [
            Need::Peer,
            Need::PeerOrWriter,
            Need::Operator(Role::Write),
            announce("w"),
        ] {
            assert!(open.lets_anyone(&need));
            assert_eq!(
                judge(&open, &need, Err(AuthFailure::Missing)),
                Verdict::Allow
            );
        }
    }

    #[test]
    fn peers_need_an_internal_token() {
        let secured = policy(true, false, AnnouncementAuthentication::Verify);
        assert_eq!(judge(&secured, &Need::Peer, node("disc-2")), Verdict::Allow);
        assert_eq!(
            judge(&secured, &Need::Peer, ANON),
            Verdict::Unauthorized(AuthFailure::Missing)
        );
        let bad = Err(AuthFailure::Token(TokenError::BadSignature));
        assert_eq!(
            judge(&secured, &Need::Peer, bad.clone()),
            Verdict::Unauthorized(AuthFailure::Token(TokenError::BadSignature))
        );
        assert!(matches!(
            judge(&secured, &Need::Peer, WRITER),
            Verdict::Forbidden(_)
        ));
        assert_eq!(
            judge(&secured, &Need::PeerOrWriter, node("disc-2")),
            Verdict::Allow
        );
        assert!(matches!(
            judge(&secured, &Need::PeerOrWriter, bad),
            Verdict::Unauthorized(_)
        ));
    }

    #[test]
    fn announcements_follow_verify_and_required() {
        let verify = policy(true, false, AnnouncementAuthentication::Verify);
        let required = policy(true, false, AnnouncementAuthentication::Required);
        for p in [verify, required] {
            assert_eq!(judge(&p, &announce("w1"), node("w1")), Verdict::Allow);
            assert!(matches!(
                judge(&p, &announce("w1"), node("w2")),
                Verdict::Forbidden(_)
            ));
            assert!(matches!(
                judge(
                    &p,
                    &announce("w1"),
                    Err(AuthFailure::Token(TokenError::Expired))
                ),
                Verdict::Unauthorized(_)
            ));
            assert_eq!(
                judge(&p, &Need::Announcement { node: None }, node("w2")),
                Verdict::Allow
            );
            assert_eq!(judge(&p, &announce("w1"), WRITER), Verdict::Allow);
            assert!(matches!(
                judge(&p, &announce("w1"), READER),
                Verdict::Forbidden(_)
            ));
        }
        assert_eq!(
            judge(&verify, &announce("w1"), ANON),
            Verdict::Allow,
            "Prestissimo"
        );
        assert_eq!(
            judge(&required, &announce("w1"), ANON),
            Verdict::Unauthorized(AuthFailure::Missing)
        );
        let none = policy(true, false, AnnouncementAuthentication::None);
        assert_eq!(judge(&none, &announce("w1"), node("w2")), Verdict::Allow);
    }

    #[test]
    fn operator_endpoints_need_the_role_or_the_secret() {
        let tokens = policy(false, true, AnnouncementAuthentication::None);
        let read = Need::Operator(Role::Read);
        let write = Need::Operator(Role::Write);
        assert_eq!(judge(&tokens, &read, READER), Verdict::Allow);
        assert_eq!(judge(&tokens, &read, WRITER), Verdict::Allow);
        assert!(matches!(
            judge(&tokens, &write, READER),
            Verdict::Forbidden(_)
        ));
        assert_eq!(judge(&tokens, &write, WRITER), Verdict::Allow);
        assert_eq!(
            judge(&tokens, &write, ANON),
            Verdict::Unauthorized(AuthFailure::Missing)
        );
        assert!(matches!(
            judge(&tokens, &Need::PeerOrWriter, READER),
            Verdict::Forbidden(_)
        ));
        // Replication stays open without a secret: nothing could sign it.
        assert_eq!(judge(&tokens, &Need::Peer, ANON), Verdict::Allow);
        let both = policy(true, true, AnnouncementAuthentication::Verify);
        assert_eq!(judge(&both, &write, node("disc-1")), Verdict::Allow);
    }

    #[test]
    fn required_lookups_take_either_kind_of_token() {
        let mut p = policy(true, true, AnnouncementAuthentication::Verify);
        assert_eq!(judge(&p, &Need::Lookup, ANON), Verdict::Allow);
        p.lookups = LookupAuthentication::Required;
        assert_eq!(
            judge(&p, &Need::Lookup, ANON),
            Verdict::Unauthorized(AuthFailure::Missing)
        );
        assert_eq!(judge(&p, &Need::Lookup, READER), Verdict::Allow);
        assert_eq!(
            judge(&p, &Need::Lookup, node("coordinator")),
            Verdict::Allow
        );
        assert_eq!(judge(&p, &Need::Open, ANON), Verdict::Allow);
    }
}
