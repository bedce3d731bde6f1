//! `Cache-Control: max-age` and the delays derived from it.
//!
//! The server tells clients how often to come back: after an announcement it expects the
//! next one within `max-age` (the client re-announces at 80 % of it, so one late request
//! does not let the entry expire), and a lookup result stays fresh for `max-age`. The
//! airlift client falls back to 10 s when the header is absent or not positive, and treats
//! a `max-age` it cannot parse as a failed request; we do the same, so a Rust node and a
//! Java node behave alike against the same server.

use std::time::Duration;

use thiserror::Error;

/// Used when the server sends no usable `max-age` (the stock Java server never does).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(10);

/// Share of `max-age` after which the next announcement is sent.
pub const ANNOUNCE_FRACTION: f64 = 0.8;

/// A `Cache-Control` header whose `max-age` is not an integer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("malformed Cache-Control header '{header}': max-age must be an integer number of seconds")]
pub struct CacheControlError {
    pub header: String,
}

/// The positive `max-age` of a `Cache-Control` header value, `None` when the header is
/// absent, has no `max-age`, or it is zero or negative.
///
/// Directives are separated by commas; names are case-insensitive; other directives are
/// ignored. A quoted value (`max-age="10"`) is accepted, as HTTP caches do.
pub fn parse_max_age(header: Option<&str>) -> Result<Option<Duration>, CacheControlError> {
    let Some(header) = header else {
        return Ok(None);
    };
    let malformed = || CacheControlError {
        header: header.chars().take(200).collect(),
    };
    let mut max_age = None;
    for directive in header.split(',') {
        let directive = directive.trim();
        let (name, value) = match directive.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim())),
            None => (directive, None),
        };
        if !name.eq_ignore_ascii_case("max-age") {
            continue;
        }
        let value = value.ok_or_else(malformed)?;
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        let seconds: i64 = value.parse().map_err(|_| malformed())?;
        max_age = u64::try_from(seconds)
            .ok()
            .filter(|&s| s > 0)
            .map(Duration::from_secs);
    }
    Ok(max_age)
}

/// How long after a successful announcement the next one is sent: 80 % of `max-age`
/// (8 s without one).
pub fn announce_delay(max_age: Option<Duration>) -> Duration {
    max_age
        .unwrap_or(DEFAULT_MAX_AGE)
        .mul_f64(ANNOUNCE_FRACTION)
}

/// How long a lookup result stays fresh: `max-age` (10 s without one).
pub fn refresh_delay(max_age: Option<Duration>) -> Duration {
    max_age.unwrap_or(DEFAULT_MAX_AGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Option<Duration> {
        Some(Duration::from_secs(s))
    }

    #[test]
    fn reads_max_age_among_other_directives() {
        assert_eq!(parse_max_age(Some("max-age=10")), Ok(secs(10)));
        assert_eq!(
            parse_max_age(Some("no-transform, max-age=3, public")),
            Ok(secs(3))
        );
        assert_eq!(parse_max_age(Some("Max-Age = 7")), Ok(secs(7)));
        assert_eq!(parse_max_age(Some("max-age=\"5\"")), Ok(secs(5)));
        assert_eq!(parse_max_age(Some("no-cache")), Ok(None));
        assert_eq!(parse_max_age(Some("")), Ok(None));
        assert_eq!(parse_max_age(None), Ok(None));
    }

    #[test]
    fn zero_or_negative_max_age_means_the_default() {
        assert_eq!(parse_max_age(Some("max-age=0")), Ok(None));
        assert_eq!(parse_max_age(Some("max-age=-5")), Ok(None));
        assert_eq!(refresh_delay(None), Duration::from_secs(10));
    }

    #[test]
    fn malformed_max_age_is_an_error_like_airlift() {
        for bad in [
            "max-age",
            "max-age=",
            "max-age=ten",
            "max-age=1.5",
            "max-age=99999999999999999999",
        ] {
            assert!(parse_max_age(Some(bad)).is_err(), "{bad}");
        }
        // An s-maxage directive is a different name and is ignored.
        assert_eq!(parse_max_age(Some("s-maxage=x")), Ok(None));
    }

    #[test]
    fn announcements_follow_eighty_percent_of_max_age() {
        assert_eq!(announce_delay(secs(10)), Duration::from_secs(8));
        assert_eq!(announce_delay(None), Duration::from_secs(8));
        assert_eq!(announce_delay(secs(1)), Duration::from_millis(800));
        assert_eq!(announce_delay(secs(30)), Duration::from_secs(24));
        assert_eq!(refresh_delay(secs(3)), Duration::from_secs(3));
    }
}
