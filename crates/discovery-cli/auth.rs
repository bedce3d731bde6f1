//! The CLI's credentials: an operator token (`--token`, `DISCOVERY_TOKEN`) and the
//! cluster's shared secret (`--shared-secret-file`), and which header each request carries.
//!
//! The rule, also in `discovery --help`:
//! * a node's own announcement (`PUT`/`DELETE /v1/announcement/{nodeId}`, sent by
//!   `announce` and `unannounce`) carries, with a secret, `X-Trino-Internal-Bearer`: a
//!   token minted for that node id, exactly what a Trino node sends;
//! * every other request carries `Authorization: Bearer` with the `--token`, or else with
//!   a token minted from the secret for [`CLI_SUBJECT`] (a holder of the secret is a
//!   member of the cluster, which the server accepts wherever an operator is needed);
//! * with neither, nothing.
//!
//! Neither the token nor the secret is ever printed: their `Debug` is redacted, errors
//! name the flag or the file, never the value, and header values are marked sensitive.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use discovery_auth::{
    KeyDerivation, Minter, SharedSecret, AUTHORIZATION, MAX_TOKEN_BYTES, TRINO_HEADER,
};
use discovery_client::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::outcome::Failure;

/// The `sub` of the tokens minted for requests that are not a node's own announcement.
pub const CLI_SUBJECT: &str = "discovery-cli";

/// Lifetime of a minted token. Each request attempt mints its own, so this only has to
/// cover one request plus the clock skew between this host and the server.
pub const MINTED_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// Largest shared secret file read: a secret is a line, and bounding the read keeps a
/// wrong path (a device, a log) from being slurped whole.
pub const MAX_SECRET_FILE_BYTES: usize = 64 * 1024;

/// A bearer token as given on the command line. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(text: &str) -> Token {
        Token(text.to_owned())
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// What the CLI signs its requests with.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// `Authorization: Bearer` value, already checked to be one header value.
    bearer: Option<HeaderValue>,
    secret: Option<SharedSecret>,
}

impl Credentials {
    /// The credentials of the command line: the token checked, the secret file read. An
    /// empty token or path counts as not given, as an empty `DISCOVERY_URI` does (an
    /// `export DISCOVERY_TOKEN=` must not break commands against an open server).
    pub fn from_flags(
        token: Option<&Token>,
        secret_file: Option<&Path>,
    ) -> Result<Credentials, Failure> {
        let bearer = match token.map(|t| t.0.trim()).filter(|t| !t.is_empty()) {
            None => None,
            Some(token) => Some(bearer_value(token)?),
        };
        let secret = match secret_file.filter(|p| !p.as_os_str().is_empty()) {
            None => None,
            Some(path) => Some(read_secret_file(path)?),
        };
        Ok(Credentials { bearer, secret })
    }

    /// The headers of one request: see the module documentation for the rule.
    pub fn headers_for(&self, method: &Method, segments: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let (Some(secret), Some(node_id)) = (&self.secret, announced_node(method, segments)) {
            // Sha256 is the derivation every server accepts, old Trino's and ours.
            let token =
                Minter::new(secret, KeyDerivation::Sha256, node_id, MINTED_LIFETIME).token();
            if let Some(value) = sensitive(&token) {
                headers.insert(HeaderName::from_static(TRINO_HEADER), value);
            }
            return headers;
        }
        let bearer = match (&self.bearer, &self.secret) {
            (Some(bearer), _) => Some(bearer.clone()),
            (None, Some(secret)) => {
                let minter =
                    Minter::new(secret, KeyDerivation::Sha256, CLI_SUBJECT, MINTED_LIFETIME);
                sensitive(&format!("Bearer {}", minter.token()))
            }
            (None, None) => None,
        };
        if let Some(value) = bearer {
            headers.insert(HeaderName::from_static(AUTHORIZATION), value);
        }
        headers
    }
}

/// The node id of a node's own announcement request, `None` for any other request.
/// `DELETE /v1/announcement/static/{id}` (a static service) has one segment more; a node
/// whose id is literally `static` announces at `/v1/announcement/static`, as the server
/// sees it too.
fn announced_node<'a>(method: &Method, segments: &[&'a str]) -> Option<&'a str> {
    match segments {
        ["v1", "announcement", node_id] if method == Method::PUT || method == Method::DELETE => {
            Some(node_id)
        }
        _ => None,
    }
}

/// `value` as a header value marked sensitive; `None` if it cannot be one (a minted token
/// is base64url and dots, so it always can).
fn sensitive(value: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(value).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// `Bearer <token>` as a header value, or why the token cannot be sent. The reasons never
/// quote the token.
fn bearer_value(token: &str) -> Result<HeaderValue, Failure> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Failure::usage(format!(
            "the token (--token or DISCOVERY_TOKEN) is longer than {MAX_TOKEN_BYTES} bytes, more than a discovery server accepts"
        )));
    }
    // Visible ASCII only: the server reads the token up to whitespace, and a control or
    // non-ASCII character is a copy-paste accident rather than part of a token.
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Failure::usage(
            "the token (--token or DISCOVERY_TOKEN) contains a space, a control or a non-ASCII character",
        ));
    }
    sensitive(&format!("Bearer {token}")).ok_or_else(|| {
        Failure::usage("the token (--token or DISCOVERY_TOKEN) cannot be sent in an HTTP header")
    })
}

/// Reads `internal-communication.shared-secret` from `path`: the whole file, less one
/// trailing newline (what `echo "$SECRET" > file` leaves), at most
/// [`MAX_SECRET_FILE_BYTES`].
pub fn read_secret_file(path: &Path) -> Result<SharedSecret, Failure> {
    let cannot = |reason: String| {
        Failure::usage(format!("--shared-secret-file {}: {reason}", path.display()))
    };
    let file = std::fs::File::open(path).map_err(|e| cannot(format!("cannot open it: {e}")))?;
    let mut bytes = Vec::new();
    // One byte more than allowed tells "exactly at the limit" from "beyond it".
    file.take(MAX_SECRET_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| cannot(format!("cannot read it: {e}")))?;
    if bytes.len() > MAX_SECRET_FILE_BYTES {
        return Err(cannot(format!(
            "larger than {} KiB; a shared secret is one line",
            MAX_SECRET_FILE_BYTES / 1024
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| cannot("not UTF-8 text".into()))?;
    let secret = text
        .strip_suffix('\n')
        .map_or(text.as_str(), |t| t.strip_suffix('\r').unwrap_or(t));
    SharedSecret::new(secret).ok_or_else(|| {
        cannot(
            "the file is empty; it must hold the cluster's internal-communication.shared-secret"
                .into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use discovery_auth::Verifier;

    use super::*;

    const SECRET: &str = "cli-test-secret";

    fn verifier() -> Verifier {
        Verifier::new(&SharedSecret::new(SECRET).unwrap(), Duration::ZERO)
    }

    fn secret_file(content: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, content).unwrap();
        (dir, path)
    }

    fn with_secret() -> Credentials {
        Credentials {
            bearer: None,
            secret: SharedSecret::new(SECRET),
        }
    }

    fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
        headers.get(name).map(|v| v.to_str().unwrap())
    }

    #[test]
    fn announcements_carry_a_token_for_their_node_and_the_rest_a_cli_token() {
        let credentials = with_secret();
        for method in [Method::PUT, Method::DELETE] {
            let headers = credentials.headers_for(&method, &["v1", "announcement", "gw-1"]);
            let token = header(&headers, TRINO_HEADER).expect("an internal token");
            assert_eq!(verifier().verify(token), Ok("gw-1".to_owned()));
            assert!(headers.get("authorization").is_none());
        }
        for (method, segments) in [
            (Method::GET, &["v1", "service", "presto", "general"][..]),
            (Method::GET, &["v1", "announcement", "static"][..]),
            (
                Method::DELETE,
                &[
                    "v1",
                    "announcement",
                    "static",
                    "0b6c6a2e-3f5e-4a43-9d2e-6f3a3f0f6a01",
                ][..],
            ),
            (Method::POST, &["v1", "announcement", "static"][..]),
            (Method::GET, &["v1", "store", "dynamic"][..]),
        ] {
            let headers = credentials.headers_for(&method, segments);
            assert!(headers.get(TRINO_HEADER).is_none(), "{method} {segments:?}");
            let bearer = header(&headers, "authorization").expect("a bearer token");
            let token = bearer.strip_prefix("Bearer ").expect("the Bearer scheme");
            assert_eq!(verifier().verify(token), Ok(CLI_SUBJECT.to_owned()));
        }
    }

    #[test]
    fn a_token_wins_over_the_secret_except_on_announcements() {
        let token = Token::new("  w-0123456789abcdef\n");
        let credentials = Credentials::from_flags(Some(&token), None).unwrap();
        let headers = credentials.headers_for(&Method::GET, &["v1", "store", "static"]);
        assert_eq!(
            header(&headers, "authorization"),
            Some("Bearer w-0123456789abcdef")
        );
        let headers = credentials.headers_for(&Method::PUT, &["v1", "announcement", "n"]);
        assert_eq!(
            header(&headers, "authorization"),
            Some("Bearer w-0123456789abcdef")
        );

        let both = Credentials {
            secret: SharedSecret::new(SECRET),
            ..credentials
        };
        let headers = both.headers_for(&Method::GET, &["v1", "store", "static"]);
        assert_eq!(
            header(&headers, "authorization"),
            Some("Bearer w-0123456789abcdef")
        );
        let headers = both.headers_for(&Method::PUT, &["v1", "announcement", "n"]);
        assert!(headers.get("authorization").is_none());
        assert!(headers.get(TRINO_HEADER).is_some());
    }

    #[test]
    fn nothing_given_sends_nothing_and_empty_counts_as_not_given() {
        let none = Credentials::from_flags(Some(&Token::new(" ")), Some(Path::new(""))).unwrap();
        assert!(none
            .headers_for(&Method::GET, &["v1", "service"])
            .is_empty());
        assert!(none
            .headers_for(&Method::PUT, &["v1", "announcement", "n"])
            .is_empty());
    }

    #[test]
    fn bad_tokens_are_refused_without_being_quoted() {
        for bad in [
            "has space-0123456789",
            "tab\there-0123456789",
            "non-ascii-é-0123456789",
        ] {
            let Err(failure) = Credentials::from_flags(Some(&Token::new(bad)), None) else {
                panic!("{bad:?} was accepted");
            };
            assert!(failure.message.contains("--token"), "{}", failure.message);
            assert!(
                !failure.message.contains("0123456789"),
                "{}",
                failure.message
            );
        }
        let long = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert!(Credentials::from_flags(Some(&Token::new(&long)), None).is_err());
        assert!(!format!("{:?}", Token::new("w-0123456789abcdef")).contains("0123"));
        let credentials =
            Credentials::from_flags(Some(&Token::new("w-0123456789abcdef")), None).unwrap();
        assert!(
            !format!("{credentials:?}").contains("0123"),
            "{credentials:?}"
        );
    }

    #[test]
    fn secret_files_lose_one_trailing_newline_and_nothing_else() {
        let secret = |content: &[u8]| {
            let (_dir, path) = secret_file(content);
            read_secret_file(&path)
        };
        let token_under = |secret: SharedSecret| {
            Minter::new(&secret, KeyDerivation::Sha256, "n", MINTED_LIFETIME).token()
        };
        for content in [
            &b"cli-test-secret"[..],
            b"cli-test-secret\n",
            b"cli-test-secret\r\n",
        ] {
            let read = secret(content).unwrap_or_else(|f| panic!("{content:?}: {}", f.message));
            assert_eq!(
                verifier().verify(&token_under(read)),
                Ok("n".to_owned()),
                "{content:?}"
            );
        }
        // Only one newline goes, and spaces stay: the secret is what the file says.
        for content in [&b"cli-test-secret\n\n"[..], b" cli-test-secret\n"] {
            let read = secret(content).unwrap();
            assert!(
                verifier().verify(&token_under(read)).is_err(),
                "{content:?}"
            );
        }
    }

    #[test]
    fn unusable_secret_files_are_refused_naming_the_path() {
        let (_dir, empty) = secret_file(b"\n");
        let failure = read_secret_file(&empty).unwrap_err();
        assert!(
            failure.message.contains(&empty.display().to_string()),
            "{}",
            failure.message
        );
        assert!(failure.message.contains("empty"), "{}", failure.message);

        let (_dir, big) = secret_file(&vec![b'x'; MAX_SECRET_FILE_BYTES + 1]);
        assert!(read_secret_file(&big)
            .unwrap_err()
            .message
            .contains("64 KiB"));
        let (_dir, limit) = secret_file(&vec![b'x'; MAX_SECRET_FILE_BYTES]);
        assert!(read_secret_file(&limit).is_ok());

        let (_dir, binary) = secret_file(b"\xff\xfe");
        assert!(read_secret_file(&binary)
            .unwrap_err()
            .message
            .contains("UTF-8"));

        let missing = Path::new("/nonexistent/discovery-secret");
        let failure = read_secret_file(missing).unwrap_err();
        assert!(
            failure.message.contains("/nonexistent/discovery-secret"),
            "{}",
            failure.message
        );
    }
}
