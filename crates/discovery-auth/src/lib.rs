//! Who is calling: the internal JWTs that Trino and Presto nodes already put on every
//! discovery request, the same tokens our own nodes put on replication requests, and the
//! opaque tokens operators are given.
//!
//! Pure logic and no I/O: the server decides which endpoint needs what
//! (`discovery-server`'s `access` module), reads the operator tokens file and answers
//! 401/403; this crate only says whose credential a request carries, or why it carries
//! none that holds.

mod credentials;
mod key;
mod operator;
mod token;

pub use credentials::{
    basic_password, presented, Credential, AUTHORIZATION, PRESTO_HEADER, TRINO_HEADER,
};
pub use key::{KeyDerivation, SharedSecret};
pub use operator::{OperatorTokens, Role, TokensFileError};
pub use token::{Minter, TokenError, Verifier, MAX_TOKEN_BYTES};
