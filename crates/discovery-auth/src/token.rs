//! Internal JWTs: HS256, claims `sub` (the sender's node id) and `exp`, as Trino and
//! Presto nodes sign their discovery requests and as our nodes sign replication requests.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::key::{KeyDerivation, SharedSecret};

/// Longest token read. Trino's are about 200 bytes; this bounds what a hostile header
/// makes the server decode and hash.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// Why a token does not hold. The `Display` text is the one-line reason a 401 carries.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("bad signature (a different shared secret?)")]
    BadSignature,
    #[error("token algorithm must be HS256")]
    BadAlgorithm,
    #[error("token has no subject (sub)")]
    NoSubject,
    #[error("token has no expiry (exp)")]
    NoExpiry,
    #[error("token is not a JWT")]
    Malformed,
    #[error("token longer than {MAX_TOKEN_BYTES} bytes")]
    TooLong,
}

#[derive(Serialize)]
struct MintedClaims<'a> {
    sub: &'a str,
    exp: u64,
}

#[derive(Deserialize)]
struct CheckedClaims {
    /// Missing reads as empty, which is refused as "no subject" with the right reason.
    #[serde(default)]
    sub: String,
}

/// Signs tokens for one node id.
#[derive(Clone)]
pub struct Minter {
    key: EncodingKey,
    subject: String,
    lifetime: Duration,
}

impl Minter {
    /// Tokens for `subject`, valid for `lifetime` from when they are minted.
    pub fn new(
        secret: &SharedSecret,
        derivation: KeyDerivation,
        subject: impl Into<String>,
        lifetime: Duration,
    ) -> Self {
        Minter {
            key: EncodingKey::from_secret(&secret.key(derivation))
                .expect("a 32-byte key is never empty"),
            subject: subject.into(),
            lifetime,
        }
    }

    /// A token minted now.
    pub fn token(&self) -> String {
        self.token_at(SystemTime::now())
    }

    /// A token as minted at `now`.
    pub fn token_at(&self, now: SystemTime) -> String {
        let exp = now
            .checked_add(self.lifetime)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let claims = MintedClaims {
            sub: &self.subject,
            exp,
        };
        // HS256 over a two-field struct: serialising and signing cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key).unwrap_or_default()
    }
}

impl std::fmt::Debug for Minter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minter")
            .field("subject", &self.subject)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

/// Checks tokens signed under either key derivation of one shared secret.
#[derive(Clone)]
pub struct Verifier {
    keys: Vec<DecodingKey>,
    validation: Validation,
}

impl Verifier {
    /// `leeway`: how long after its `exp` a token is still accepted (clock skew between
    /// the signer and us).
    pub fn new(secret: &SharedSecret, leeway: Duration) -> Self {
        let keys = KeyDerivation::ALL
            .iter()
            .map(|&derivation| {
                DecodingKey::from_secret(&secret.key(derivation))
                    .expect("a 32-byte key is never empty")
            })
            .collect();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = leeway.as_secs();
        validation.set_required_spec_claims(&["exp", "sub"]);
        // Trino's tokens carry no audience; an `aud` someone adds is not ours to judge.
        validation.validate_aud = false;
        Verifier { keys, validation }
    }

    /// The subject (`sub`, a node id) of a valid token.
    pub fn verify(&self, token: &str) -> Result<String, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLong);
        }
        let mut outcome = Err(TokenError::BadSignature);
        for key in &self.keys {
            outcome = jsonwebtoken::decode::<CheckedClaims>(token, key, &self.validation)
                .map(|data| data.claims.sub)
                .map_err(|e| classify(e.kind()));
            // Only a signature that fails under this key is worth trying under the other.
            if outcome != Err(TokenError::BadSignature) {
                break;
            }
        }
        match outcome {
            Ok(sub) if sub.is_empty() => Err(TokenError::NoSubject),
            other => other,
        }
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("leeway_secs", &self.validation.leeway)
            .finish_non_exhaustive()
    }
}

fn classify(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => TokenError::BadAlgorithm,
        ErrorKind::MissingRequiredClaim(claim) if claim == "sub" => TokenError::NoSubject,
        ErrorKind::MissingRequiredClaim(claim) if claim == "exp" => TokenError::NoExpiry,
        _ => TokenError::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    const LEEWAY: Duration = Duration::from_secs(30);

    fn secret(text: &str) -> SharedSecret {
        SharedSecret::new(text).unwrap()
    }

    fn minted(derivation: KeyDerivation, offset_secs: i64) -> String {
        let now = SystemTime::now();
        let at = if offset_secs >= 0 {
            now + Duration::from_secs(offset_secs as u64)
        } else {
            now - Duration::from_secs(offset_secs.unsigned_abs())
        };
        // A zero lifetime makes `exp` exactly `at`.
        Minter::new(&secret("s3cret"), derivation, "worker-1", Duration::ZERO).token_at(at)
    }

    /// A token with hand-made header and claims, signed with `key`.
    fn forged(header: &str, claims: &str, key: &[u8]) -> String {
        use hmac::{Hmac, Mac};
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let signing_input = format!("{}.{}", b64.encode(header), b64.encode(claims));
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
        mac.update(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            b64.encode(mac.finalize().into_bytes())
        )
    }

    fn future_exp() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 300
    }

    #[test]
    fn tokens_of_both_derivations_verify() {
        let verifier = Verifier::new(&secret("s3cret"), LEEWAY);
        for derivation in KeyDerivation::ALL {
            assert_eq!(
                verifier.verify(&minted(derivation, 300)),
                Ok("worker-1".to_owned()),
                "{derivation:?}"
            );
        }
    }

    #[test]
    fn expiry_counts_the_leeway_and_no_more() {
        let verifier = Verifier::new(&secret("s3cret"), LEEWAY);
        for derivation in KeyDerivation::ALL {
            assert!(
                verifier.verify(&minted(derivation, -10)).is_ok(),
                "inside the leeway"
            );
            assert_eq!(
                verifier.verify(&minted(derivation, -120)),
                Err(TokenError::Expired),
                "outside the leeway"
            );
        }
        let strict = Verifier::new(&secret("s3cret"), Duration::ZERO);
        assert_eq!(
            strict.verify(&minted(KeyDerivation::Sha256, -10)),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_wrong_secret_is_a_bad_signature() {
        let verifier = Verifier::new(&secret("another"), LEEWAY);
        for derivation in KeyDerivation::ALL {
            assert_eq!(
                verifier.verify(&minted(derivation, 300)),
                Err(TokenError::BadSignature)
            );
        }
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let verifier = Verifier::new(&secret("s3cret"), LEEWAY);
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let claims = format!(r#"{{"sub":"worker-1","exp":{}}}"#, future_exp());
        let unsigned = format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(&claims)
        );
        assert!(verifier.verify(&unsigned).is_err());
        let key = secret("s3cret").key(KeyDerivation::Sha256);
        let hs512 = forged(r#"{"alg":"HS512","typ":"JWT"}"#, &claims, &key);
        assert_eq!(verifier.verify(&hs512), Err(TokenError::BadAlgorithm));
    }

    #[test]
    fn claims_must_name_a_subject_and_an_expiry() {
        let verifier = Verifier::new(&secret("s3cret"), LEEWAY);
        let key = secret("s3cret").key(KeyDerivation::Sha256);
        let header = r#"{"alg":"HS256","typ":"JWT"}"#;
        let exp = future_exp();
        assert_eq!(
            verifier.verify(&forged(header, &format!(r#"{{"exp":{exp}}}"#), &key)),
            Err(TokenError::NoSubject)
        );
        assert_eq!(
            verifier.verify(&forged(
                header,
                &format!(r#"{{"sub":"","exp":{exp}}}"#),
                &key
            )),
            Err(TokenError::NoSubject)
        );
        assert_eq!(
            verifier.verify(&forged(header, r#"{"sub":"w"}"#, &key)),
            Err(TokenError::NoExpiry)
        );
        // Prestissimo adds `iat`; extra claims are fine.
        let with_iat = format!(r#"{{"sub":"w","iat":{},"exp":{exp}}}"#, exp - 300);
        assert_eq!(
            verifier.verify(&forged(header, &with_iat, &key)),
            Ok("w".to_owned())
        );
    }

    #[test]
    fn garbage_and_oversized_tokens_are_refused_without_panicking() {
        let verifier = Verifier::new(&secret("s3cret"), LEEWAY);
        for garbage in [
            "",
            ".",
            "..",
            "a.b.c",
            "not a token",
            "e30.e30.e30",
            "\u{0}",
        ] {
            assert!(verifier.verify(garbage).is_err(), "{garbage:?}");
        }
        assert_eq!(
            verifier.verify(&"a".repeat(MAX_TOKEN_BYTES + 1)),
            Err(TokenError::TooLong)
        );
    }

    #[test]
    fn minted_tokens_carry_exactly_sub_and_exp() {
        let token = Minter::new(
            &secret("s3cret"),
            KeyDerivation::Sha256,
            "disc-1",
            Duration::from_secs(300),
        )
        .token();
        let claims = token.split('.').nth(1).unwrap();
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&claims).unwrap();
        assert_eq!(claims["sub"], "disc-1");
        let exp = claims["exp"].as_u64().unwrap();
        assert!(
            exp >= future_exp() - 10 && exp <= future_exp() + 10,
            "{exp}"
        );
        assert_eq!(claims.as_object().unwrap().len(), 2);
    }
}
