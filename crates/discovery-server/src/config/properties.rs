//! Java-style `.properties` files (airlift's `etc/config.properties`, `etc/node.properties`)
//! as a source for the `config` crate.
//!
//! Supported: `key=value`, `key: value` and `key value` lines, `#` and `!` comments,
//! backslash line continuations and the usual escapes (`\t`, `\n`, `\\`, `\=`, `\:`,
//! `\uXXXX`). Unlike Java, trailing whitespace of a value is trimmed: a stray space after
//! `30s` should not stop a server from starting.

use std::path::{Path, PathBuf};

use config::{ConfigError, Map, Source, Value};

/// Parses properties text into `(key, value)` pairs in file order; a later duplicate wins
/// when the pairs are collected into a map, as in Java.
pub fn parse_properties(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut lines = text.lines();
    while let Some(first) = lines.next() {
        let mut logical = first.trim_start().to_owned();
        if logical.is_empty() || logical.starts_with('#') || logical.starts_with('!') {
            continue;
        }
        while ends_with_continuation(&logical) {
            logical.pop();
            match lines.next() {
                Some(next) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        pairs.push(split_key_value(&logical));
    }
    pairs
}

/// A line continues when it ends in an odd number of backslashes.
fn ends_with_continuation(line: &str) -> bool {
    line.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

fn split_key_value(line: &str) -> (String, String) {
    let mut key = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(escaped) = chars.next() {
                    key.push(unescape(escaped, &mut chars));
                }
            }
            '=' | ':' => break,
            c if c.is_whitespace() => {
                // Whitespace ends the key; an `=` or `:` may still follow it.
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('=') | Some(':')) {
                    chars.next();
                }
                break;
            }
            c => key.push(c),
        }
    }
    let mut value = String::new();
    let rest: String = chars.collect();
    let mut chars = rest.trim_start().chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(escaped) = chars.next() {
                value.push(unescape(escaped, &mut chars));
            }
        } else {
            value.push(c);
        }
    }
    (key, value.trim_end().to_owned())
}

fn unescape(escaped: char, rest: &mut std::iter::Peekable<std::str::Chars<'_>>) -> char {
    match escaped {
        't' => '\t',
        'n' => '\n',
        'r' => '\r',
        'f' => '\u{c}',
        'u' => {
            let hex: String = (0..4).filter_map(|_| rest.next()).collect();
            u32::from_str_radix(&hex, 16)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or(char::REPLACEMENT_CHARACTER)
        }
        other => other,
    }
}

/// A `config` source over a properties file or over in-memory pairs (`--set` overrides).
#[derive(Debug, Clone)]
pub struct PropertiesSource {
    origin: String,
    pairs: Vec<(String, String)>,
}

impl PropertiesSource {
    /// Reads `path`; a missing or unreadable file is an error naming the path.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Message(format!("cannot read {}: {e}", path.display())))?;
        Ok(PropertiesSource {
            origin: path.display().to_string(),
            pairs: parse_properties(&text),
        })
    }

    pub fn from_pairs(origin: impl Into<String>, pairs: Vec<(String, String)>) -> Self {
        PropertiesSource {
            origin: origin.into(),
            pairs,
        }
    }

    /// The path of `node.properties` beside a config file, if such a file exists.
    pub fn sibling_node_properties(config_file: &Path) -> Option<PathBuf> {
        let candidate = config_file
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join("node.properties");
        (candidate.is_file() && candidate != config_file).then_some(candidate)
    }
}

impl Source for PropertiesSource {
    fn clone_into_box(&self) -> Box<dyn Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<Map<String, Value>, ConfigError> {
        Ok(self
            .pairs
            .iter()
            .map(|(k, v)| (k.clone(), Value::new(Some(&self.origin), v.clone())))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse_properties(text)
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn airlift_style_files() {
        let text = "# comment\n! also a comment\n\nnode.environment=production\n\
                    http-server.http.port = 8411\ndiscovery.max-age: 30s  \nflag\n";
        assert_eq!(
            pairs(text),
            vec![
                pair("node.environment", "production"),
                pair("http-server.http.port", "8411"),
                pair("discovery.max-age", "30s"),
                pair("flag", ""),
            ]
        );
    }

    #[test]
    fn continuations_and_escapes() {
        let text = "a=one \\\n    two\nb\\=c=d\\te\nu=\\u0041\nkey value with spaces\n";
        assert_eq!(
            pairs(text),
            vec![
                pair("a", "one two"),
                pair("b=c", "d\te"),
                pair("u", "A"),
                pair("key", "value with spaces"),
            ]
        );
    }

    #[test]
    fn an_even_number_of_backslashes_is_not_a_continuation() {
        assert_eq!(
            pairs("path=C:\\\\\nnext=1"),
            vec![pair("path", "C:\\"), pair("next", "1")]
        );
    }
}
