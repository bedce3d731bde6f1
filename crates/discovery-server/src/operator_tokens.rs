//! `discovery.operator-tokens-file`: read at start (a bad file stops the start), re-read
//! when its size or modification time changes. A bad new version is logged and the last
//! good one kept, so a half-written edit never locks every operator out.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use discovery_auth::{OperatorTokens, Role, TokensFileError};
use thiserror::Error;

/// Most bytes read from the file: 10,000 tokens of a few hundred characters fit.
const MAX_FILE_BYTES: u64 = 4 << 20;

#[derive(Debug, Error)]
pub enum TokenFileError {
    #[error("cannot read discovery.operator-tokens-file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("discovery.operator-tokens-file {path} is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("discovery.operator-tokens-file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: TokensFileError,
    },
}

/// What identifies a version of the file without reading it.
type Stamp = (Option<SystemTime>, u64);

/// The tokens file and its current contents.
#[derive(Debug)]
pub struct TokenFile {
    path: PathBuf,
    tokens: RwLock<Arc<OperatorTokens>>,
    stamp: Mutex<Stamp>,
}

impl TokenFile {
    /// Reads the file; an unreadable or invalid file is an error.
    pub fn open(path: &Path) -> Result<Self, TokenFileError> {
        let stamp = stamp(path).map_err(|source| TokenFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        let tokens = read(path)?;
        warn_if_readable_by_others(path);
        tracing::info!(path = %path.display(), tokens = tokens.len(), "operator tokens loaded");
        Ok(TokenFile {
            path: path.to_owned(),
            tokens: RwLock::new(Arc::new(tokens)),
            stamp: Mutex::new(stamp),
        })
    }

    /// The role of `token` under the current file.
    pub fn role_of(&self, token: &str) -> Option<Role> {
        let tokens = match self.tokens.read() {
            Ok(tokens) => Arc::clone(&tokens),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        };
        tokens.role_of(token)
    }

    /// Re-reads the file if it changed since the last look. Called about once a second.
    pub fn reload_if_changed(&self) {
        let Ok(current) = stamp(&self.path) else {
            // Gone or unreadable for a moment (an editor replacing it): keep what we have.
            return;
        };
        {
            let Ok(mut last) = self.stamp.lock() else {
                return;
            };
            if *last == current {
                return;
            }
            *last = current;
        }
        match read(&self.path) {
            Ok(tokens) => {
                tracing::info!(path = %self.path.display(), tokens = tokens.len(), "operator tokens reloaded");
                if let Ok(mut slot) = self.tokens.write() {
                    *slot = Arc::new(tokens);
                }
            }
            Err(e) => tracing::error!(error = %e, "keeping the previous operator tokens"),
        }
    }
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let metadata = std::fs::metadata(path)?;
    Ok((metadata.modified().ok(), metadata.len()))
}

fn read(path: &Path) -> Result<OperatorTokens, TokenFileError> {
    let read_error = |source| TokenFileError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(file, MAX_FILE_BYTES + 1),
        &mut text,
    )
    .map_err(read_error)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(TokenFileError::TooLarge {
            path: path.to_owned(),
        });
    }
    OperatorTokens::parse(&text).map_err(|source| TokenFileError::Parse {
        path: path.to_owned(),
        source,
    })
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = std::fs::metadata(path) {
        if metadata.permissions().mode() & 0o004 != 0 {
            tracing::warn!(path = %path.display(),
                "discovery.operator-tokens-file is readable by every user; chmod o-r it");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaa-1";
    const B: &str = "bbbbbbbbbbbbbbbb-2";

    #[test]
    fn a_changed_file_is_picked_up_and_a_broken_one_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, format!("{A} read\n")).unwrap();
        let file = TokenFile::open(&path).unwrap();
        assert_eq!(file.role_of(A), Some(Role::Read));
        assert_eq!(file.role_of(B), None);

        // A different length changes the stamp even where mtime resolution is coarse.
        std::fs::write(&path, format!("{A} write\n{B} read\n")).unwrap();
        file.reload_if_changed();
        assert_eq!(file.role_of(A), Some(Role::Write));
        assert_eq!(file.role_of(B), Some(Role::Read));

        std::fs::write(&path, "half-written").unwrap();
        file.reload_if_changed();
        assert_eq!(
            file.role_of(A),
            Some(Role::Write),
            "the last good file stays"
        );

        std::fs::remove_file(&path).unwrap();
        file.reload_if_changed();
        assert_eq!(file.role_of(B), Some(Role::Read));
    }

    #[test]
    fn a_missing_or_bad_file_at_start_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        assert!(TokenFile::open(&path)
            .unwrap_err()
            .to_string()
            .contains("tokens"));
        std::fs::write(&path, "x read\n").unwrap();
        let error = TokenFile::open(&path).unwrap_err().to_string();
        assert!(error.contains("line 1"), "{error}");
    }
}
