//! Discovery URIs and the endpoint URLs built from them.
//!
//! A discovery URI may carry a path prefix (a server behind a reverse proxy at
//! `http://proxy/discovery`) and may end in a slash; endpoint paths are appended segment
//! by segment, each percent-encoded, so a node id or type can never escape its segment
//! and a trailing slash never produces `//v1/...`.

use reqwest::Url;

use crate::error::DiscoveryError;

/// Parses one discovery URI: absolute http(s), no query or fragment.
pub fn parse_uri(text: &str) -> Result<Url, DiscoveryError> {
    let text = text.trim();
    let invalid = |reason: &str| DiscoveryError::InvalidUri {
        uri: text.to_owned(),
        reason: reason.to_owned(),
    };
    // `127.0.0.1:8411` is a relative URL and `localhost:8411` one of scheme "localhost":
    // either way the parser's message hides that only `http://` is missing, so say it.
    let missing_scheme = || {
        if text.contains("://") {
            return None;
        }
        let guess = format!("http://{text}");
        parse_uri(&guess)
            .ok()
            .map(|_| invalid(&format!("the scheme is missing; did you mean {guess}?")))
    };
    let url = match Url::parse(text) {
        Ok(url) => url,
        Err(e) => return Err(missing_scheme().unwrap_or_else(|| invalid(&e.to_string()))),
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(missing_scheme().unwrap_or_else(|| invalid("the scheme must be http or https")));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("a host is required"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("a query or fragment is not allowed"));
    }
    Ok(url)
}

/// Splits comma-separated lists and parses every URI, in order; duplicates are dropped.
pub fn parse_uris<S: AsRef<str>>(texts: &[S]) -> Result<Vec<Url>, DiscoveryError> {
    let mut urls: Vec<Url> = Vec::new();
    for text in texts {
        for part in text
            .as_ref()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let url = parse_uri(part)?;
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
    }
    if urls.is_empty() {
        return Err(DiscoveryError::NoUris);
    }
    Ok(urls)
}

/// `base` + `/` + each segment, percent-encoded.
pub fn endpoint(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    // `path_segments_mut` fails only for cannot-be-a-base URLs, which parse_uri refuses.
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// The URI as users wrote it, without the trailing slash `Url` adds to bare hosts.
pub fn display(url: &Url) -> String {
    let text = url.as_str();
    text.strip_suffix('/').unwrap_or(text).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_encoded_segments_after_any_prefix() {
        let bare = parse_uri("http://127.0.0.1:8411").unwrap();
        assert_eq!(
            endpoint(&bare, &["v1", "service", "presto", "general"]).as_str(),
            "http://127.0.0.1:8411/v1/service/presto/general"
        );
        let slash = parse_uri("http://h:8411/").unwrap();
        assert_eq!(
            endpoint(&slash, &["v1", "announcement", "n1"]).as_str(),
            "http://h:8411/v1/announcement/n1"
        );
        let prefixed = parse_uri("https://proxy/discovery/").unwrap();
        assert_eq!(
            endpoint(&prefixed, &["v1", "announcement", "a b/../c"]).as_str(),
            "https://proxy/discovery/v1/announcement/a%20b%2F..%2Fc"
        );
    }

    #[test]
    fn accepts_comma_lists_and_refuses_what_cannot_be_a_server() {
        let urls = parse_uris(&["http://a:1, http://b:2", "http://a:1"]).unwrap();
        assert_eq!(urls.len(), 2);
        assert_eq!(display(&urls[1]), "http://b:2");
        assert!(matches!(
            parse_uris::<&str>(&[]),
            Err(DiscoveryError::NoUris)
        ));
        assert!(matches!(parse_uris(&[" , "]), Err(DiscoveryError::NoUris)));
        for bad in [
            "127.0.0.1:8411",
            "ftp://h",
            "http://h/?x=1",
            "http://h/#f",
            "not a uri",
        ] {
            assert!(
                matches!(parse_uri(bad), Err(DiscoveryError::InvalidUri { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_uri_without_a_scheme_gets_a_suggestion() {
        for (bare, guess) in [
            ("127.0.0.1:8411", "http://127.0.0.1:8411"),
            ("localhost:8411", "http://localhost:8411"),
            ("disc-1:8411/discovery", "http://disc-1:8411/discovery"),
        ] {
            let message = parse_uri(bare).unwrap_err().to_string();
            assert!(
                message.contains(&format!("did you mean {guess}?")),
                "{bare}: {message}"
            );
        }
        for no_hint in ["ftp://h", "not a uri", "http://h/?x=1"] {
            let message = parse_uri(no_hint).unwrap_err().to_string();
            assert!(!message.contains("did you mean"), "{no_hint}: {message}");
        }
    }
}
