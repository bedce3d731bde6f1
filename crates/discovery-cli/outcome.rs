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
    /// Exit 1: the query matched nothing.
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
        let mut message = error.to_string();
        if error.is_environment_mismatch() {
            message.push_str(
                "\nhint: the environment must equal the server's node.environment; \
                 set it with --environment or DISCOVERY_ENVIRONMENT, or omit both to use the server's",
            );
        }
        Failure { code, message }
    }
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
