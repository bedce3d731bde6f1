//! Operator tokens: `discovery.operator-tokens-file`, one `TOKEN ROLE` per line.
//!
//! Only SHA-256 hashes of the tokens are kept, and a presented token is found by its hash,
//! so neither memory nor the time a lookup takes gives a token away.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use thiserror::Error;

/// What an operator token allows. `Write` includes `Read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Read,
    Write,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Read => "read",
            Role::Write => "write",
        })
    }
}

/// Shortest token accepted: a guessable token is no protection.
pub const MIN_TOKEN_CHARS: usize = 16;
/// Most tokens in one file.
pub const MAX_TOKENS: usize = 10_000;

/// Why a tokens file was refused. Never quotes a token.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TokensFileError {
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: String },
    #[error("more than {MAX_TOKENS} tokens")]
    TooMany,
    #[error("no tokens (every line is empty or a comment)")]
    Empty,
}

/// The parsed file.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OperatorTokens {
    roles: HashMap<[u8; 32], Role>,
}

impl OperatorTokens {
    /// Parses `TOKEN ROLE` lines; `#` starts a comment, blank lines are skipped.
    pub fn parse(text: &str) -> Result<Self, TokensFileError> {
        let mut roles = HashMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let content = raw.split('#').next().unwrap_or_default().trim();
            if content.is_empty() {
                continue;
            }
            let bad = |reason: &str| TokensFileError::Line {
                line,
                reason: reason.to_owned(),
            };
            let mut words = content.split_whitespace();
            let (Some(token), Some(role), None) = (words.next(), words.next(), words.next()) else {
                return Err(bad("expected TOKEN ROLE"));
            };
            let role = match role {
                "read" => Role::Read,
                "write" => Role::Write,
                _ => return Err(bad("role must be read or write")),
            };
            if token.chars().count() < MIN_TOKEN_CHARS {
                return Err(bad(&format!(
                    "token shorter than {MIN_TOKEN_CHARS} characters"
                )));
            }
            if roles.insert(hash(token), role).is_some() {
                return Err(bad("the same token is listed twice"));
            }
            if roles.len() > MAX_TOKENS {
                return Err(TokensFileError::TooMany);
            }
        }
        if roles.is_empty() {
            return Err(TokensFileError::Empty);
        }
        Ok(OperatorTokens { roles })
    }

    /// The role of `token`, `None` if it is not listed.
    pub fn role_of(&self, token: &str) -> Option<Role> {
        self.roles.get(&hash(token)).copied()
    }

    pub fn len(&self) -> usize {
        self.roles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.roles.is_empty()
    }
}

impl std::fmt::Debug for OperatorTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OperatorTokens({} tokens)", self.roles.len())
    }
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const READER: &str = "r-0123456789abcdef";
    const WRITER: &str = "w-0123456789abcdef";

    #[test]
    fn roles_comments_and_blank_lines() {
        let tokens = OperatorTokens::parse(&format!(
            "# operators\n\n{READER} read\n  {WRITER}\twrite   # the on-call\n"
        ))
        .unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens.role_of(READER), Some(Role::Read));
        assert_eq!(tokens.role_of(WRITER), Some(Role::Write));
        assert_eq!(tokens.role_of("w-0123456789abcde"), None);
        assert!(Role::Write > Role::Read);
        assert!(!format!("{tokens:?}").contains(READER));
    }

    #[test]
    fn bad_files_name_the_line_and_never_the_token() {
        let cases = [
            (format!("{READER}\n"), "line 1"),
            (format!("{READER} admin\n"), "read or write"),
            ("short read\n".to_owned(), "shorter"),
            (format!("{READER} read\n{READER} write\n"), "line 2"),
            (format!("{READER} read extra\n"), "TOKEN ROLE"),
            ("# nothing\n\n".to_owned(), "no tokens"),
        ];
        for (text, expected) in cases {
            let error = OperatorTokens::parse(&text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text:?}: {error}");
            assert!(!error.contains(READER), "{error}");
        }
    }
}
