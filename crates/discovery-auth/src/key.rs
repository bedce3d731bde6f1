//! The shared secret and the two ways Trino turns it into an HMAC key.
//!
//! Trino up to about release 480 and Presto use the SHA-256 of the secret's UTF-8 bytes;
//! newer Trino derives 32 bytes with HKDF-SHA256 (no salt, info `internal-communication`).
//! A cluster mid-upgrade holds nodes of both kinds, so a verifier accepts either.

use hkdf::Hkdf;
use sha2::{Digest, Sha256};

/// How a 32-byte HMAC key is derived from the shared secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyDerivation {
    /// SHA-256 of the secret: Presto, Trino up to about 480, and our own nodes.
    Sha256,
    /// HKDF-SHA256, no salt, info `internal-communication`: newer Trino.
    HkdfSha256,
}

impl KeyDerivation {
    pub const ALL: [KeyDerivation; 2] = [KeyDerivation::Sha256, KeyDerivation::HkdfSha256];
}

/// `internal-communication.shared-secret`. Never printed: its `Debug` says `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct SharedSecret(String);

impl SharedSecret {
    /// `None` for an empty secret, which would sign with a key everyone knows.
    pub fn new(secret: impl Into<String>) -> Option<Self> {
        let secret = secret.into();
        (!secret.is_empty()).then_some(SharedSecret(secret))
    }

    /// The HMAC key under `derivation`.
    pub fn key(&self, derivation: KeyDerivation) -> [u8; 32] {
        match derivation {
            KeyDerivation::Sha256 => Sha256::digest(self.0.as_bytes()).into(),
            KeyDerivation::HkdfSha256 => {
                let mut key = [0u8; 32];
                // 32 bytes is far below HKDF-SHA256's limit of 255 × 32: expand cannot fail.
                let expanded = Hkdf::<Sha256>::new(None, self.0.as_bytes())
                    .expand(b"internal-communication", &mut key);
                debug_assert!(expanded.is_ok());
                key
            }
        }
    }
}

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_derivations_match_independent_implementations() {
        let secret = SharedSecret::new("s3cret").unwrap();
        // `printf s3cret | sha256sum`
        assert_eq!(
            hex(&secret.key(KeyDerivation::Sha256)),
            "1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0"
        );
        // Python's `cryptography`: HKDF(SHA256(), 32, salt=None,
        // info=b"internal-communication").derive(b"s3cret")
        assert_eq!(
            hex(&secret.key(KeyDerivation::HkdfSha256)),
            "65a7f545705b63ba44c10f4cb487ad7dc1bc2659e41f823d8cfadde5a8d1d664"
        );
    }

    #[test]
    fn empty_secrets_are_refused_and_secrets_never_print() {
        assert!(SharedSecret::new("").is_none());
        let secret = SharedSecret::new("hunter2").unwrap();
        assert!(!format!("{secret:?}").contains("hunter2"));
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
