//! Where a request carries its credential: Trino's and Presto's internal-bearer headers,
//! or a standard `Authorization: Bearer`; and, for pages a browser opens, the password of
//! `Authorization: Basic` ([`basic_password`]).

use base64::Engine;
use http::HeaderMap;

use crate::token::{TokenError, MAX_TOKEN_BYTES};

/// Trino's internal-communication header; the value is the bare JWT.
pub const TRINO_HEADER: &str = "x-trino-internal-bearer";
/// Presto's internal-communication header; the value is the bare JWT.
pub const PRESTO_HEADER: &str = "x-presto-internal-bearer";
pub const AUTHORIZATION: &str = "authorization";

/// The credential a request presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    /// From an internal-bearer header: a JWT.
    Internal(&'a str),
    /// From `Authorization: Bearer`: a JWT or an operator token.
    Bearer(&'a str),
}

impl<'a> Credential<'a> {
    pub fn token(&self) -> &'a str {
        match self {
            Credential::Internal(token) | Credential::Bearer(token) => token,
        }
    }
}

/// The credential in `headers`, `Ok(None)` when there is none. The internal headers come
/// first (a Trino node sends nothing else); a header that is present but unreadable is an
/// error rather than "no credential", so a broken token never passes as an unsigned request.
pub fn presented(headers: &HeaderMap) -> Result<Option<Credential<'_>>, TokenError> {
    for name in [TRINO_HEADER, PRESTO_HEADER] {
        if let Some(value) = headers.get(name) {
            return readable(value.as_bytes()).map(|t| Some(Credential::Internal(t)));
        }
    }
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = readable(value.as_bytes())?;
    let (scheme, token) = value.split_once(' ').ok_or(TokenError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(TokenError::Malformed);
    }
    match token.trim() {
        "" => Err(TokenError::Malformed),
        token => Ok(Some(Credential::Bearer(token))),
    }
}

/// The password of `Authorization: Basic` (any user name), `Ok(None)` when the request
/// has no Basic credentials. Browsers can send a token only this way; the caller decides
/// where that is accepted. A Basic header that does not decode is an error.
pub fn basic_password(headers: &HeaderMap) -> Result<Option<String>, TokenError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    // Base64 makes the value 4/3 as long as `user:password`.
    if value.len() > (MAX_TOKEN_BYTES + 256) * 4 / 3 + "Basic ".len() {
        return Err(TokenError::TooLong);
    }
    let value = std::str::from_utf8(value.as_bytes()).map_err(|_| TokenError::Malformed)?;
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| TokenError::Malformed)?;
    let text = String::from_utf8(decoded).map_err(|_| TokenError::Malformed)?;
    let (_user, password) = text.split_once(':').ok_or(TokenError::Malformed)?;
    match password {
        "" => Err(TokenError::Malformed),
        password if password.len() > MAX_TOKEN_BYTES => Err(TokenError::TooLong),
        password => Ok(Some(password.to_owned())),
    }
}

fn readable(value: &[u8]) -> Result<&str, TokenError> {
    if value.len() > MAX_TOKEN_BYTES + "Bearer ".len() {
        return Err(TokenError::TooLong);
    }
    std::str::from_utf8(value)
        .map(str::trim)
        .map_err(|_| TokenError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn each_header_is_read_and_the_internal_ones_win() {
        assert_eq!(presented(&headers(&[])), Ok(None));
        assert_eq!(
            presented(&headers(&[("X-Trino-Internal-Bearer", "t1")])),
            Ok(Some(Credential::Internal("t1")))
        );
        assert_eq!(
            presented(&headers(&[("X-Presto-Internal-Bearer", "t2")])),
            Ok(Some(Credential::Internal("t2")))
        );
        assert_eq!(
            presented(&headers(&[("Authorization", "Bearer t3")])),
            Ok(Some(Credential::Bearer("t3")))
        );
        assert_eq!(
            presented(&headers(&[("authorization", "bearer  t3 ")])),
            Ok(Some(Credential::Bearer("t3")))
        );
        assert_eq!(
            presented(&headers(&[
                ("Authorization", "Bearer op"),
                ("X-Trino-Internal-Bearer", "t1")
            ])),
            Ok(Some(Credential::Internal("t1")))
        );
    }

    fn basic(user_and_password: &str) -> HeaderMap {
        let encoded = base64::engine::general_purpose::STANDARD.encode(user_and_password);
        headers(&[("Authorization", &format!("Basic {encoded}"))])
    }

    #[test]
    fn the_basic_password_is_read_whatever_the_user_name() {
        assert_eq!(
            basic_password(&basic("admin:op-0123456789abcdef")),
            Ok(Some("op-0123456789abcdef".into()))
        );
        assert_eq!(
            basic_password(&basic(":pass:with:colons")),
            Ok(Some("pass:with:colons".into()))
        );
        assert_eq!(basic_password(&headers(&[])), Ok(None));
        assert_eq!(
            basic_password(&headers(&[("Authorization", "Bearer t3")])),
            Ok(None)
        );
        assert_eq!(basic_password(&basic("user:")), Err(TokenError::Malformed));
        assert_eq!(
            basic_password(&basic("no-colon")),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            basic_password(&headers(&[("Authorization", "Basic !!!")])),
            Err(TokenError::Malformed)
        );
        let long = format!("u:{}", "a".repeat(MAX_TOKEN_BYTES + 1));
        assert_eq!(basic_password(&basic(&long)), Err(TokenError::TooLong));
        let huge = "a".repeat(4 * MAX_TOKEN_BYTES);
        assert_eq!(
            basic_password(&headers(&[("Authorization", &format!("Basic {huge}"))])),
            Err(TokenError::TooLong)
        );
    }

    #[test]
    fn unknown_header_names_are_no_credential_and_broken_values_are_errors() {
        assert_eq!(presented(&headers(&[("X-Internal-Bearer", "t")])), Ok(None));
        assert_eq!(
            presented(&headers(&[("Authorization", "Basic dTpw")])),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            presented(&headers(&[("Authorization", "Bearer")])),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            presented(&headers(&[("Authorization", "Bearer ")])),
            Err(TokenError::Malformed)
        );
        let mut map = HeaderMap::new();
        map.insert(TRINO_HEADER, HeaderValue::from_bytes(b"\xff\xfe").unwrap());
        assert_eq!(presented(&map), Err(TokenError::Malformed));
        let long = "a".repeat(MAX_TOKEN_BYTES + 100);
        assert_eq!(
            presented(&headers(&[("X-Trino-Internal-Bearer", &long)])),
            Err(TokenError::TooLong)
        );
    }
}
