//! What a command leaves behind: its outcome or failure (and so the exit status), and
//! the one way results reach stdout. Every subcommand module uses these; none of them
//! depends on another subcommand's module.

use std::io::Write;

use discovery_client::DiscoveryError;
use serde_json::{self as json, Value};

/// How a command that ran to completion went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Done,
    /// Exit 1: the query matched nothing (`why`: the node is not listed).
    NothingMatched,
    /// Exit 1: an answer was printed but part of it is missing.
    Degraded,
}

/// Why a command failed: the exit status and what to tell the user.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

pub const EXIT_USAGE: u8 = 2;
/// Also the server's refusals, 401 and 403 included: like any 4xx they mean "this request,
/// as sent, will not work"; stderr says which.
pub const EXIT_SERVER: u8 = 3;

impl Failure {
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }
}

impl From<DiscoveryError> for Failure {
    fn from(error: DiscoveryError) -> Self {
        let code = match error {
            DiscoveryError::NoUris
            | DiscoveryError::InvalidUri { .. }
            | DiscoveryError::InvalidArgument(_) => EXIT_USAGE,
            _ => EXIT_SERVER,
        };
        let mut message = match &error {
            // The server's reason alone ("unknown token") would not say it is a refusal of
            // the caller, nor by whom.
            DiscoveryError::Rejected {
                uri,
                status: status @ (401 | 403),
                message,
            } => format!(
                "{uri} refused the request ({status} {}): {message}",
                status_text(*status)
            ),
            _ => error.to_string(),
        };
        if let Some(hint) = auth_hint(&error) {
            message.push_str("\nhint: ");
            message.push_str(hint);
        }
        if error.is_environment_mismatch() {
            message.push_str(
                "\nhint: the environment must equal the server's node.environment; \
                 set it with --environment or DISCOVERY_ENVIRONMENT, or omit both to use the server's",
            );
        }
        Failure { code, message }
    }
}

fn status_text(status: u16) -> &'static str {
    match status {
        401 => "Unauthorized",
        403 => "Forbidden",
        _ => "refused",
    }
}

/// The server's reason when it refused the caller (401 or 403), also inside the errors of
/// several servers.
fn refusal(error: &DiscoveryError) -> Option<(u16, &str)> {
    match error {
        DiscoveryError::Rejected {
            status: status @ (401 | 403),
            message,
            ..
        } => Some((*status, message)),
        DiscoveryError::AllFailed(errors) => errors.iter().find_map(refusal),
        _ => None,
    }
}

/// What to pass when the server refused the caller, from its one-line reason (the texts of
/// discovery-server's `access` module).
pub(crate) fn auth_hint(error: &DiscoveryError) -> Option<&'static str> {
    let (status, reason) = refusal(error)?;
    Some(match reason {
        _ if status == 403 => {
            "the server accepts these credentials but they do not allow this: static add and rm \
             need a token with role write; announce needs --shared-secret-file or a write token"
        }
        _ if reason.starts_with("missing credentials") => {
            "pass --token or set DISCOVERY_TOKEN (or --shared-secret-file)"
        }
        "unknown token" => {
            "the token of --token or DISCOVERY_TOKEN is not in the server's \
             discovery.operator-tokens-file (nor a JWT signed with its shared secret)"
        }
        "token expired" => {
            "get a fresh token; with --shared-secret-file, compare this host's clock with the server's"
        }
        _ if reason.starts_with("bad signature") => {
            "--shared-secret-file (or the JWT of --token) must hold the server's \
             internal-communication.shared-secret"
        }
        _ if reason.starts_with("internal tokens are not accepted") => {
            "this server has no shared secret: pass an operator token with --token instead of \
             --shared-secret-file"
        }
        _ => "check --token (DISCOVERY_TOKEN) and --shared-secret-file",
    })
}

/// Writes to stdout at once (watch output is read line by line by other programs). A
/// closed stdout (`| head`) ends the command quietly.
pub(crate) fn print(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|_| Failure {
            code: 1,
            message: String::new(),
        })
}

pub(crate) fn print_json(value: &Value) -> Result<(), Failure> {
    let text = json::to_string_pretty(value).unwrap_or_default();
    print(&format!("{text}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: u16, message: &str) -> DiscoveryError {
        DiscoveryError::Rejected {
            uri: "http://disc-1:8411".into(),
            status,
            message: message.into(),
        }
    }

    #[test]
    fn refusals_name_the_server_and_say_what_to_pass() {
        let failure = Failure::from(refused(
            401,
            "missing credentials: send X-Trino-Internal-Bearer, X-Presto-Internal-Bearer or Authorization: Bearer",
        ));
        assert_eq!(failure.code, EXIT_SERVER);
        let mut lines = failure.message.lines();
        assert_eq!(
            lines.next(),
            Some("http://disc-1:8411 refused the request (401 Unauthorized): missing credentials: send X-Trino-Internal-Bearer, X-Presto-Internal-Bearer or Authorization: Bearer")
        );
        assert_eq!(
            lines.next(),
            Some("hint: pass --token or set DISCOVERY_TOKEN (or --shared-secret-file)")
        );

        let cases = [
            (401, "unknown token", "operator-tokens-file"),
            (401, "token expired", "clock"),
            (401, "bad signature (a different shared secret?)", "shared-secret"),
            (401, "internal tokens are not accepted here: this node has no internal-communication.shared-secret", "operator token"),
            (401, "token is not a JWT", "check --token"),
            (403, "this needs an operator token with role write, not read", "role write"),
        ];
        for (status, reason, hint) in cases {
            let failure = Failure::from(refused(status, reason));
            assert_eq!(failure.code, EXIT_SERVER);
            assert!(failure.message.contains(reason), "{}", failure.message);
            let last = failure.message.lines().last().unwrap_or_default();
            assert!(
                last.starts_with("hint: ") && last.contains(hint),
                "{reason}: {last}"
            );
        }
    }

    #[test]
    fn only_refusals_of_the_caller_get_the_hint() {
        let down = DiscoveryError::Unreachable {
            uri: "http://disc-2:8411".into(),
            reason: "connection refused".into(),
        };
        let all = DiscoveryError::AllFailed(vec![down, refused(401, "unknown token")]);
        assert!(auth_hint(&all).is_some_and(|h| h.contains("operator-tokens-file")));
        let mismatch = Failure::from(refused(
            400,
            "Environment mismatch. Expected: a, Provided: b",
        ));
        assert!(
            !mismatch.message.contains("--token"),
            "{}",
            mismatch.message
        );
        assert!(
            !mismatch.message.contains("refused the request"),
            "{}",
            mismatch.message
        );
    }
}
