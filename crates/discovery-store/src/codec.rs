//! The on-disk encoding of an entry (the backend's value; the key is the backend's key).
//!
//! ```text
//! byte 0      format version, currently 1
//! byte 1      flags: bit 0 = has value, bit 1 = has max age
//! bytes 2-9   version, i64 big-endian
//! bytes 10-17 timestamp, i64 big-endian
//! [8 bytes]   max age in ms, i64 big-endian, when flag bit 1 is set
//! [rest]      the value bytes, when flag bit 0 is set
//! ```
//!
//! Small and fixed so that reading a data directory never depends on a serialisation
//! library's format staying stable across versions.

use crate::entry::Entry;

const FORMAT_VERSION: u8 = 1;
const HAS_VALUE: u8 = 0b01;
const HAS_MAX_AGE: u8 = 0b10;
const HEADER_LEN: usize = 18;

pub(crate) fn encode(entry: &Entry) -> Vec<u8> {
    let value_len = entry.value.as_ref().map_or(0, Vec::len);
    let mut out = Vec::with_capacity(HEADER_LEN + 8 + value_len);
    let mut flags = 0;
    if entry.value.is_some() {
        flags |= HAS_VALUE;
    }
    if entry.max_age_ms.is_some() {
        flags |= HAS_MAX_AGE;
    }
    out.push(FORMAT_VERSION);
    out.push(flags);
    out.extend_from_slice(&entry.version.to_be_bytes());
    out.extend_from_slice(&entry.timestamp.to_be_bytes());
    if let Some(max_age) = entry.max_age_ms {
        out.extend_from_slice(&max_age.to_be_bytes());
    }
    if let Some(value) = &entry.value {
        out.extend_from_slice(value);
    }
    out
}

/// Decodes a stored entry; `None` when the bytes are not a valid encoding.
pub(crate) fn decode(key: &[u8], bytes: &[u8]) -> Option<Entry> {
    let (&format, rest) = bytes.split_first()?;
    if format != FORMAT_VERSION {
        return None;
    }
    let (&flags, rest) = rest.split_first()?;
    if flags & !(HAS_VALUE | HAS_MAX_AGE) != 0 {
        return None;
    }
    let (version, rest) = read_i64(rest)?;
    let (timestamp, mut rest) = read_i64(rest)?;
    let mut max_age_ms = None;
    if flags & HAS_MAX_AGE != 0 {
        let (max_age, tail) = read_i64(rest)?;
        max_age_ms = Some(max_age);
        rest = tail;
    }
    let value = if flags & HAS_VALUE != 0 {
        Some(rest.to_vec())
    } else if rest.is_empty() {
        None
    } else {
        return None;
    };
    Some(Entry {
        key: key.to_vec(),
        value,
        version,
        timestamp,
        max_age_ms,
    })
}

fn read_i64(bytes: &[u8]) -> Option<(i64, &[u8])> {
    let (head, tail) = bytes.split_first_chunk::<8>()?;
    Some((i64::from_be_bytes(*head), tail))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trips(
            key in proptest::collection::vec(any::<u8>(), 0..16),
            value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
            version in any::<i64>(),
            timestamp in any::<i64>(),
            max_age_ms in proptest::option::of(any::<i64>()),
        ) {
            let entry = Entry { key: key.clone(), value, version, timestamp, max_age_ms };
            prop_assert_eq!(decode(&key, &encode(&entry)), Some(entry));
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(b"k", &bytes);
        }
    }

    #[test]
    fn rejects_unknown_formats_and_truncation() {
        let entry = Entry {
            key: b"k".to_vec(),
            value: None,
            version: 1,
            timestamp: 1,
            max_age_ms: Some(5),
        };
        let bytes = encode(&entry);
        assert_eq!(decode(b"k", &bytes[..bytes.len() - 1]), None);
        let mut wrong_format = bytes.clone();
        wrong_format[0] = 9;
        assert_eq!(decode(b"k", &wrong_format), None);
        let mut trailing = bytes;
        trailing.push(0);
        assert_eq!(
            decode(b"k", &trailing),
            None,
            "a tombstone carries no value bytes"
        );
    }
}
