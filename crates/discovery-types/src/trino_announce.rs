//! Trino's own node inventory (`discovery.type=announce`, the default since Trino 477):
//! the body a node `POST`s to `/v1/announce`, and the `/v1/info` document the server reads
//! back from that node to learn who it is.
//!
//! It exists so that discoveryd can accept announce-mode nodes next to airlift-mode ones.
//! Both inputs come from the network and, until internal authentication lands, from anyone
//! who can reach the port, so everything here is validated and bounded before the server
//! acts on it (the announce URI makes the server issue an outbound GET). Pure: no I/O.

use serde_json::{Map, Value};
use thiserror::Error;

use crate::announcement::validate_node_id;
use crate::limits::{MAX_ECHOED_CHARS, MAX_NAME_BYTES};

/// Longest announce body (one URI) accepted, in bytes. A Trino internal URI is a scheme,
/// a host and a port: a few dozen bytes.
pub const MAX_ANNOUNCE_URI_BYTES: usize = 2048;

/// Longest `/v1/info` document read from a node, in bytes. Trino's is a few hundred bytes;
/// the bound keeps a hostile "node" from making the server buffer without limit.
pub const MAX_SERVER_INFO_BYTES: usize = 64 * 1024;

/// Longest node version or node state taken from `/v1/info`, in bytes.
const MAX_FACT_BYTES: usize = MAX_NAME_BYTES;

/// Why an announce body was refused. `Display` is the one-line message sent to the client.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AnnounceUriError {
    #[error("announce body must be one URI, not empty")]
    Empty,
    #[error("announce URI must be at most {MAX_ANNOUNCE_URI_BYTES} bytes")]
    TooLong,
    #[error("announce URI must be UTF-8")]
    NotUtf8,
    #[error("announce URI must be printable ASCII without spaces")]
    NotPrintable,
    #[error("announce URI must start with http:// or https://")]
    Scheme,
    #[error("announce URI must name a host")]
    NoHost,
    #[error("announce URI must not carry user information (user@host)")]
    UserInfo,
    #[error("announce URI must not have a query")]
    Query,
    #[error("announce URI must not have a fragment")]
    Fragment,
    #[error("announce URI has an invalid host '{0}'")]
    Host(String),
    #[error("announce URI has an invalid port '{0}'")]
    Port(String),
}

/// The scheme of an announce URI; it names the service property (`http` or `https`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UriScheme {
    Http,
    Https,
}

impl UriScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            UriScheme::Http => "http",
            UriScheme::Https => "https",
        }
    }
}

/// A validated announce URI: an absolute `http`/`https` URI with a host, an optional port
/// and path, and nothing else. The scheme is lower-cased; the rest is kept as sent, since
/// it is what other nodes use to reach the announcing node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AnnounceUri {
    text: String,
    /// Where the authority ends in `text` (the path, if any, starts there).
    authority_end: usize,
    https: bool,
}

impl AnnounceUri {
    /// The one validation rule for `POST /v1/announce` bodies. Surrounding ASCII
    /// whitespace (a trailing newline from `curl --data-binary @file`) is ignored.
    pub fn parse(body: &[u8]) -> Result<Self, AnnounceUriError> {
        if body.len() > MAX_ANNOUNCE_URI_BYTES {
            return Err(AnnounceUriError::TooLong);
        }
        let text = std::str::from_utf8(body).map_err(|_| AnnounceUriError::NotUtf8)?;
        let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
        if text.is_empty() {
            return Err(AnnounceUriError::Empty);
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(AnnounceUriError::NotPrintable);
        }
        if text.contains('#') {
            return Err(AnnounceUriError::Fragment);
        }
        if text.contains('?') {
            return Err(AnnounceUriError::Query);
        }
        let (https, rest) = split_scheme(text)?;
        let authority_len = rest.find('/').unwrap_or(rest.len());
        let authority = &rest[..authority_len];
        if authority.contains('@') {
            return Err(AnnounceUriError::UserInfo);
        }
        check_authority(authority)?;
        let scheme = if https { "https" } else { "http" };
        let normalized = format!("{scheme}://{rest}");
        Ok(AnnounceUri {
            authority_end: scheme.len() + 3 + authority_len,
            text: normalized,
            https,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn scheme(&self) -> UriScheme {
        if self.https {
            UriScheme::Https
        } else {
            UriScheme::Http
        }
    }

    /// `{uri}/v1/info`, joined the way Trino's coordinator joins it (one slash between the
    /// node's path, if any, and `v1/info`).
    pub fn info_url(&self) -> String {
        let base = self.text.trim_end_matches('/');
        // A URI that is only a scheme and authority keeps its authority whole.
        let base = if base.len() < self.authority_end {
            &self.text[..self.authority_end]
        } else {
            base
        };
        format!("{base}/v1/info")
    }
}

impl std::fmt::Display for AnnounceUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

fn split_scheme(text: &str) -> Result<(bool, &str), AnnounceUriError> {
    let (scheme, rest) = text.split_once("://").ok_or(AnnounceUriError::Scheme)?;
    let https = if scheme.eq_ignore_ascii_case("http") {
        false
    } else if scheme.eq_ignore_ascii_case("https") {
        true
    } else {
        return Err(AnnounceUriError::Scheme);
    };
    Ok((https, rest))
}

/// `host[:port]`, where host is a DNS name, an IPv4 address or a bracketed IPv6 address.
fn check_authority(authority: &str) -> Result<(), AnnounceUriError> {
    if authority.is_empty() {
        return Err(AnnounceUriError::NoHost);
    }
    let (_host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (inside, after) = bracketed
            .split_once(']')
            .ok_or_else(|| AnnounceUriError::Host(echo(authority)))?;
        let valid = !inside.is_empty()
            && inside.contains(':')
            && inside
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
        if !valid {
            return Err(AnnounceUriError::Host(echo(authority)));
        }
        match after {
            "" => (inside, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (inside, Some(port)),
                None => return Err(AnnounceUriError::Host(echo(authority))),
            },
        }
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err(AnnounceUriError::NoHost);
        }
        // One trailing dot (a fully qualified name) is allowed; empty labels are not.
        let labels = host.strip_suffix('.').unwrap_or(host);
        if host.len() > 253 || !labels.split('.').all(is_dns_label) {
            return Err(AnnounceUriError::Host(echo(host)));
        }
        (host, port)
    };
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
        if !valid {
            return Err(AnnounceUriError::Port(echo(port)));
        }
    }
    Ok(())
}

/// A DNS label (also covers the parts of a dotted IPv4 address): 1–63 letters, digits,
/// hyphens and underscores (seen in container host names), not starting or ending with a
/// hyphen.
fn is_dns_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Cuts client-supplied text that goes into an error line.
fn echo(text: &str) -> String {
    text.chars().take(MAX_ECHOED_CHARS).collect()
}

/// Why a `/v1/info` document could not be used. The server logs it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ServerInfoError {
    #[error("/v1/info is not a JSON object: {0}")]
    InvalidJson(String),
    #[error("/v1/info has no {0} (Trino older than 477 does not report a node id)")]
    Missing(&'static str),
    #[error("/v1/info field {field} {problem}")]
    InvalidField {
        field: &'static str,
        problem: String,
    },
}

/// What discoveryd needs from a node's `/v1/info` (Trino's `ServerInfo` record):
/// `{"nodeId", "state", "nodeVersion": {"version"}, "environment", "coordinator", ...}`.
/// Other fields (`coordinatorId`, `starting`, `uptime`, `nodeGroups`) are ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    pub node_id: String,
    pub environment: String,
    pub version: String,
    pub coordinator: bool,
    /// `ACTIVE`, `DRAINING`, `SHUTTING_DOWN`, ...; absent when the node did not say.
    pub state: Option<String>,
}

impl ServerInfo {
    /// Parses and bounds a `/v1/info` body. The environment is not compared here: the
    /// caller decides what a mismatch means.
    pub fn from_json(body: &[u8]) -> Result<Self, ServerInfoError> {
        if body.len() > MAX_SERVER_INFO_BYTES {
            return Err(ServerInfoError::InvalidJson(format!(
                "larger than {MAX_SERVER_INFO_BYTES} bytes"
            )));
        }
        let object = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(object)) => object,
            Ok(_) => return Err(ServerInfoError::InvalidJson("not an object".into())),
            Err(e) => return Err(ServerInfoError::InvalidJson(e.to_string())),
        };
        let node_id = required_string(&object, "nodeId")?;
        validate_node_id(&node_id).map_err(|e| ServerInfoError::InvalidField {
            field: "nodeId",
            problem: e.to_string(),
        })?;
        let environment = required_string(&object, "environment")?;
        bounded("environment", &environment)?;
        // Trino serialises NodeVersion as {"version": "477"}; a bare string is accepted too.
        let version = match object.get("nodeVersion") {
            Some(Value::Object(version)) => {
                required_string(version, "version").map_err(|_| ServerInfoError::InvalidField {
                    field: "nodeVersion",
                    problem: "must hold a string \"version\"".into(),
                })?
            }
            Some(Value::String(version)) => version.clone(),
            None | Some(Value::Null) => return Err(ServerInfoError::Missing("nodeVersion")),
            Some(_) => {
                return Err(ServerInfoError::InvalidField {
                    field: "nodeVersion",
                    problem: "must be an object".into(),
                })
            }
        };
        bounded("nodeVersion", &version)?;
        let coordinator = match object.get("coordinator") {
            Some(Value::Bool(coordinator)) => *coordinator,
            None | Some(Value::Null) => return Err(ServerInfoError::Missing("coordinator")),
            Some(_) => {
                return Err(ServerInfoError::InvalidField {
                    field: "coordinator",
                    problem: "must be true or false".into(),
                })
            }
        };
        let state = match object.get("state") {
            Some(Value::String(state)) => {
                bounded("state", state)?;
                Some(state.clone())
            }
            None | Some(Value::Null) => None,
            Some(_) => {
                return Err(ServerInfoError::InvalidField {
                    field: "state",
                    problem: "must be a string".into(),
                })
            }
        };
        Ok(ServerInfo {
            node_id,
            environment,
            version,
            coordinator,
            state,
        })
    }
}

fn required_string(
    object: &Map<String, Value>,
    field: &'static str,
) -> Result<String, ServerInfoError> {
    match object.get(field) {
        Some(Value::String(value)) => Ok(value.clone()),
        None | Some(Value::Null) => Err(ServerInfoError::Missing(field)),
        Some(_) => Err(ServerInfoError::InvalidField {
            field,
            problem: "must be a string".into(),
        }),
    }
}

/// Facts end up as service properties and in log lines: short and printable.
fn bounded(field: &'static str, value: &str) -> Result<(), ServerInfoError> {
    if value.is_empty() || value.len() > MAX_FACT_BYTES {
        return Err(ServerInfoError::InvalidField {
            field,
            problem: format!("must be 1 to {MAX_FACT_BYTES} bytes"),
        });
    }
    if value.chars().any(char::is_control) {
        return Err(ServerInfoError::InvalidField {
            field,
            problem: "must not contain control characters".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AnnounceUri, AnnounceUriError> {
        AnnounceUri::parse(text.as_bytes())
    }

    #[test]
    fn trino_internal_uris_are_accepted() {
        for (text, scheme) in [
            ("http://10.1.4.17:8080", UriScheme::Http),
            ("https://worker-1.example.com:8443", UriScheme::Https),
            ("http://worker_1:8080/", UriScheme::Http),
            ("http://[::1]:8080", UriScheme::Http),
            ("http://[fe80::1]", UriScheme::Http),
            ("http://host.", UriScheme::Http),
            ("HTTP://host:1/prefix", UriScheme::Http),
        ] {
            let uri = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(uri.scheme(), scheme, "{text}");
        }
        assert_eq!(
            parse("  http://h:1\n").expect("trimmed").as_str(),
            "http://h:1"
        );
        assert_eq!(parse("HTTPS://h:1").expect("valid").as_str(), "https://h:1");
    }

    #[test]
    fn every_bad_body_gets_its_own_reason() {
        use AnnounceUriError::*;
        let long = format!("http://{}.com", "a".repeat(MAX_ANNOUNCE_URI_BYTES));
        let cases: Vec<(&[u8], AnnounceUriError)> = vec![
            (b"", Empty),
            (b" \n", Empty),
            (long.as_bytes(), TooLong),
            (b"http://h\xff", NotUtf8),
            (b"http://h:1 x", NotPrintable),
            (b"http://h\x01", NotPrintable),
            ("http://hé".as_bytes(), NotPrintable),
            (b"ftp://h:1", Scheme),
            (b"h:8080", Scheme),
            (b"/v1/announce", Scheme),
            (b"http://", NoHost),
            (b"http:///path", NoHost),
            (b"http://:8080", NoHost),
            (b"http://user:pw@h:1", UserInfo),
            (b"http://h:1/?a=b", Query),
            (b"http://h:1#top", Fragment),
            (b"http://-h-:1", Host("-h-".into())),
            (b"http://a..b", Host("a..b".into())),
            (b"http://[zz]:1", Host("[zz]:1".into())),
            (b"http://[::1", Host("[::1".into())),
            (b"http://h:0", Port("0".into())),
            (b"http://h:65536", Port("65536".into())),
            (b"http://h:", Port(String::new())),
            (b"http://h:8a", Port("8a".into())),
        ];
        for (body, expected) in cases {
            assert_eq!(
                AnnounceUri::parse(body),
                Err(expected),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn the_info_url_is_joined_like_trino_joins_it() {
        let info = |text: &str| parse(text).expect("valid").info_url();
        assert_eq!(info("http://h:8080"), "http://h:8080/v1/info");
        assert_eq!(info("http://h:8080/"), "http://h:8080/v1/info");
        assert_eq!(info("http://h:8080/trino/"), "http://h:8080/trino/v1/info");
    }

    const INFO: &str = r#"{"nodeId":"worker-1","state":"ACTIVE","nodeVersion":{"version":"477"},
        "environment":"production","coordinator":false,"coordinatorId":null,"starting":false,
        "uptime":"1.00m","nodeGroups":[]}"#;

    #[test]
    fn trino_server_info_parses_and_unknown_fields_are_ignored() {
        let info = ServerInfo::from_json(INFO.as_bytes()).expect("valid");
        assert_eq!(
            info,
            ServerInfo {
                node_id: "worker-1".into(),
                environment: "production".into(),
                version: "477".into(),
                coordinator: false,
                state: Some("ACTIVE".into()),
            }
        );
        let bare = r#"{"nodeId":"c","nodeVersion":"478","environment":"e","coordinator":true}"#;
        let info = ServerInfo::from_json(bare.as_bytes()).expect("valid");
        assert_eq!(
            (info.version.as_str(), info.coordinator, info.state),
            ("478", true, None)
        );
    }

    #[test]
    fn unusable_server_info_names_the_problem() {
        let pre_477 = r#"{"nodeVersion":{"version":"476"},"environment":"e","coordinator":false}"#;
        assert_eq!(
            ServerInfo::from_json(pre_477.as_bytes()),
            Err(ServerInfoError::Missing("nodeId"))
        );
        for (body, field) in [
            (
                r#"{"nodeId":"a b","nodeVersion":"1","environment":"e","coordinator":false}"#,
                "nodeId",
            ),
            (
                r#"{"nodeId":"a","nodeVersion":{},"environment":"e","coordinator":false}"#,
                "nodeVersion",
            ),
            (
                r#"{"nodeId":"a","nodeVersion":"1","environment":"e","coordinator":"no"}"#,
                "coordinator",
            ),
            (
                r#"{"nodeId":"a","nodeVersion":"1","environment":"","coordinator":false}"#,
                "environment",
            ),
            (
                r#"{"nodeId":"a","nodeVersion":"1","environment":"e","coordinator":false,"state":7}"#,
                "state",
            ),
        ] {
            match ServerInfo::from_json(body.as_bytes()) {
                Err(ServerInfoError::InvalidField { field: got, .. }) => {
                    assert_eq!(got, field, "{body}")
                }
                other => panic!("{body}: {other:?}"),
            }
        }
        assert!(matches!(
            ServerInfo::from_json(b"[1]"),
            Err(ServerInfoError::InvalidJson(_))
        ));
        let huge = vec![b' '; MAX_SERVER_INFO_BYTES + 1];
        assert!(matches!(
            ServerInfo::from_json(&huge),
            Err(ServerInfoError::InvalidJson(_))
        ));
    }
}
