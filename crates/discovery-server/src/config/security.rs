//! The security keys: internal authentication (Trino's and Presto's shared secret),
//! operator tokens and TLS, with the combinations that make no sense refused at startup.

use std::path::PathBuf;
use std::time::Duration;

use discovery_auth::SharedSecret;

use super::{parse_bool, Reader, SettingsError};

/// `discovery.announcement.authentication`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnouncementAuthentication {
    /// Announcements are not checked at all.
    None,
    /// A token, when present, must be valid and name the announced node; a request
    /// without one is accepted (Prestissimo's announcer signs nothing).
    Verify,
    /// Every announcement needs a valid token for its node.
    Required,
}

/// `discovery.lookup.authentication`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupAuthentication {
    None,
    /// Lookups need an internal token or an operator token.
    Required,
}

/// Who may do what.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthSettings {
    /// `internal-communication.shared-secret`; `None` leaves internal authentication off.
    pub shared_secret: Option<SharedSecret>,
    /// `internal-communication.jwt.leeway`.
    pub jwt_leeway: Duration,
    pub announcements: AnnouncementAuthentication,
    pub lookups: LookupAuthentication,
    /// `discovery.operator-tokens-file`.
    pub operator_tokens_file: Option<PathBuf>,
}

/// Which listeners run, and the certificates.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsSettings {
    /// `http-server.http.enabled`.
    pub http_enabled: bool,
    /// `http-server.https.enabled`.
    pub https_enabled: bool,
    /// `http-server.https.port`.
    pub https_port: u16,
    /// `http-server.https.keystore.path`: PEM with the certificate chain and private key.
    pub keystore_path: Option<PathBuf>,
    /// `internal-communication.https.truststore.path`: PEM CA bundle trusted for outgoing
    /// `https:` requests, beside the system roots.
    pub truststore_path: Option<PathBuf>,
}

pub(super) fn read_auth(reader: &mut Reader) -> Result<AuthSettings, SettingsError> {
    let shared_secret = match reader.take("internal-communication.shared-secret") {
        None => None,
        Some(value) => Some(
            SharedSecret::new(value).ok_or_else(|| SettingsError::Invalid {
                key: "internal-communication.shared-secret".into(),
                value: String::new(),
                reason: "must not be empty".into(),
            })?,
        ),
    };
    let jwt_leeway = reader.duration(
        "internal-communication.jwt.leeway",
        Duration::from_secs(30),
        Duration::ZERO,
    )?;
    let secured = shared_secret.is_some();
    let default_announcements = if secured {
        AnnouncementAuthentication::Verify
    } else {
        AnnouncementAuthentication::None
    };
    let announcements = reader.parsed(
        "discovery.announcement.authentication",
        default_announcements,
        |v| match v {
            "none" => Ok(AnnouncementAuthentication::None),
            "verify" if secured => Ok(AnnouncementAuthentication::Verify),
            "required" if secured => Ok(AnnouncementAuthentication::Required),
            "verify" | "required" => {
                Err("needs internal-communication.shared-secret to check tokens".into())
            }
            _ => Err("must be none, verify or required".into()),
        },
    )?;
    let operator_tokens_file = reader
        .take("discovery.operator-tokens-file")
        .map(PathBuf::from);
    let can_check = secured || operator_tokens_file.is_some();
    let lookups = reader.parsed(
        "discovery.lookup.authentication",
        LookupAuthentication::None,
        |v| match v {
            "none" => Ok(LookupAuthentication::None),
            "required" if can_check => Ok(LookupAuthentication::Required),
            "required" => Err(
                "needs internal-communication.shared-secret or discovery.operator-tokens-file"
                    .into(),
            ),
            _ => Err("must be none or required".into()),
        },
    )?;
    Ok(AuthSettings {
        shared_secret,
        jwt_leeway,
        announcements,
        lookups,
        operator_tokens_file,
    })
}

pub(super) fn read_tls(reader: &mut Reader) -> Result<TlsSettings, SettingsError> {
    let tls = TlsSettings {
        http_enabled: reader.parsed("http-server.http.enabled", true, parse_bool)?,
        https_enabled: reader.parsed("http-server.https.enabled", false, parse_bool)?,
        https_port: reader.parsed("http-server.https.port", 8443, |v| {
            v.parse()
                .map_err(|_| "must be a port number (0-65535)".into())
        })?,
        keystore_path: reader
            .take("http-server.https.keystore.path")
            .map(PathBuf::from),
        truststore_path: reader
            .take("internal-communication.https.truststore.path")
            .map(PathBuf::from),
    };
    let invalid = |key: &str, value: &str, reason: &str| SettingsError::Invalid {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    };
    if tls.https_enabled && tls.keystore_path.is_none() {
        return Err(SettingsError::Missing {
            key: "http-server.https.keystore.path (http-server.https.enabled=true)".into(),
        });
    }
    if !tls.http_enabled && !tls.https_enabled {
        return Err(invalid(
            "http-server.http.enabled",
            "false",
            "with http-server.https.enabled=false the node would listen on nothing",
        ));
    }
    Ok(tls)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::Settings;
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let mut properties =
            BTreeMap::from([("node.environment".to_owned(), "testing".to_owned())]);
        for (key, value) in pairs {
            properties.insert((*key).to_owned(), (*value).to_owned());
        }
        Settings::from_properties(properties, true).map(|loaded| loaded.settings)
    }

    #[test]
    fn everything_is_open_and_plain_by_default() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.auth.shared_secret, None);
        assert_eq!(s.auth.announcements, AnnouncementAuthentication::None);
        assert_eq!(s.auth.lookups, LookupAuthentication::None);
        assert_eq!(s.auth.jwt_leeway, Duration::from_secs(30));
        assert!(s.tls.http_enabled && !s.tls.https_enabled);
        assert_eq!(s.tls.https_port, 8443);
    }

    #[test]
    fn a_secret_turns_verification_on_and_never_prints() {
        let s = settings(&[("internal-communication.shared-secret", "hunter2-hunter2")]).unwrap();
        assert_eq!(s.auth.announcements, AnnouncementAuthentication::Verify);
        assert!(s.auth.shared_secret.is_some());
        assert!(!format!("{s:?}").contains("hunter2"));
        let s = settings(&[
            ("internal-communication.shared-secret", "x"),
            ("discovery.announcement.authentication", "required"),
            ("discovery.lookup.authentication", "required"),
        ])
        .unwrap();
        assert_eq!(s.auth.announcements, AnnouncementAuthentication::Required);
        assert_eq!(s.auth.lookups, LookupAuthentication::Required);
    }

    #[test]
    fn combinations_that_cannot_work_are_refused_naming_the_key() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("discovery.announcement.authentication", "required")],
                "discovery.announcement.authentication",
            ),
            (
                &[("discovery.announcement.authentication", "sometimes")],
                "discovery.announcement.authentication",
            ),
            (
                &[("discovery.lookup.authentication", "required")],
                "discovery.lookup.authentication",
            ),
            (
                &[("internal-communication.shared-secret", "")],
                "internal-communication.shared-secret",
            ),
            (
                &[("internal-communication.jwt.leeway", "soon")],
                "internal-communication.jwt.leeway",
            ),
            (
                &[("http-server.https.enabled", "true")],
                "http-server.https.keystore.path",
            ),
            (
                &[("http-server.http.enabled", "false")],
                "http-server.http.enabled",
            ),
            (
                &[("http-server.https.port", "https")],
                "http-server.https.port",
            ),
        ];
        for (pairs, key) in cases {
            let error = settings(pairs).unwrap_err().to_string();
            assert!(error.contains(key), "{pairs:?}: {error}");
        }
        let s = settings(&[
            ("discovery.operator-tokens-file", "/etc/discovery/tokens"),
            ("discovery.lookup.authentication", "required"),
        ])
        .unwrap();
        assert_eq!(s.auth.lookups, LookupAuthentication::Required);
    }
}
