//! Noticing data the storage engine lost. sled's recovery does not reliably refuse a
//! damaged file: with one flipped bit it has opened and served part of a store without a
//! word. So at every clean shutdown a node writes what each store held
//! (`<store.data-dir>/clean-shutdown.json`: entry count and a fingerprint of the content,
//! taken right after the final flush), and at the next start compares it with what was
//! read. The record is removed once the node has decided to start, so a crash later never
//! leaves a stale one (a refused start keeps it, so the next attempt is checked too); after
//! a crash there is nothing to compare with, and only a missing data file is noticed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file, in the data directory.
pub const RECORD_FILE: &str = "clean-shutdown.json";

/// Longest record file read: a few lines of JSON.
const MAX_RECORD_BYTES: u64 = 64 * 1024;

/// What one store held at a clean shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreRecord {
    pub entries: usize,
    /// XOR of the entries' fingerprints, 16 hex digits.
    #[serde(with = "hex")]
    pub fingerprint: u64,
}

impl From<(usize, u64)> for StoreRecord {
    fn from((entries, fingerprint): (usize, u64)) -> Self {
        StoreRecord {
            entries,
            fingerprint,
        }
    }
}

/// Every store's record, by store name.
pub type Records = BTreeMap<String, StoreRecord>;

/// What a start found wrong with the data directory, one line each.
pub fn compare(recorded: &Records, read: &Records) -> Vec<String> {
    recorded
        .iter()
        .filter_map(|(store, expected)| {
            let found = read.get(store).copied().unwrap_or(StoreRecord {
                entries: 0,
                fingerprint: 0,
            });
            (found != *expected).then(|| {
                format!(
                    "store '{store}' held {} entries at the last clean shutdown, {} were read \
                     back{}",
                    expected.entries,
                    found.entries,
                    if found.entries == expected.entries {
                        " but their content differs"
                    } else {
                        ""
                    }
                )
            })
        })
        .collect()
}

/// Reads the record; `None` when there is none (first start, or the last stop was not
/// clean) or it cannot be read (said in the log).
pub fn read_record(data_dir: &Path) -> Option<Records> {
    let path = data_dir.join(RECORD_FILE);
    let text = match read_bounded(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the clean-shutdown record; the data is not checked");
            return None;
        }
    };
    match serde_json::from_str(&text) {
        Ok(records) => Some(records),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "the clean-shutdown record is not readable; the data is not checked");
            None
        }
    }
}

/// Removes the record once the node starts: from now on the data changes.
pub fn forget_record(data_dir: &Path) {
    let path = data_dir.join(RECORD_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove the clean-shutdown record")
        }
    }
}

/// Writes the record (after the final flush of a clean shutdown).
pub fn write_record(data_dir: &Path, records: &Records) -> std::io::Result<PathBuf> {
    let path = data_dir.join(RECORD_FILE);
    let text = serde_json::to_string_pretty(records).map_err(std::io::Error::other)?;
    std::fs::write(&path, text)?;
    Ok(path)
}

fn read_bounded(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_RECORD_BYTES)
        .read_to_string(&mut text)?;
    Ok(text)
}

mod hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{value:016x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        let text = String::deserialize(deserializer)?;
        u64::from_str_radix(&text, 16).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(dynamic: (usize, u64), static_: (usize, u64)) -> Records {
        Records::from([
            ("dynamic".to_owned(), dynamic.into()),
            ("static".to_owned(), static_.into()),
        ])
    }

    #[test]
    fn lost_entries_and_changed_content_are_named_per_store() {
        let clean = records((2000, 7), (50, 9));
        assert!(compare(&clean, &clean).is_empty());
        let lost = compare(&clean, &records((1745, 3), (0, 0)));
        assert_eq!(lost.len(), 2);
        assert!(lost[0].contains("2000 entries") && lost[0].contains("1745 were read"));
        let changed = compare(&clean, &records((2000, 8), (50, 9)));
        assert!(changed[0].contains("content differs"), "{changed:?}");
    }

    #[test]
    fn a_record_is_read_until_forgotten() {
        let dir = tempfile::tempdir().expect("temporary directory");
        assert_eq!(read_record(dir.path()), None);
        let clean = records((1, 2), (3, 4));
        write_record(dir.path(), &clean).expect("written");
        assert_eq!(read_record(dir.path()), Some(clean.clone()));
        assert_eq!(
            read_record(dir.path()),
            Some(clean),
            "a refused start keeps it"
        );
        forget_record(dir.path());
        assert_eq!(read_record(dir.path()), None);
        forget_record(dir.path());
    }
}
