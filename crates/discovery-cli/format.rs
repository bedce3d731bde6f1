//! Turning data into text for people: tables, durations, timestamps, service changes.
//! Pure functions, so the output format is unit-tested without a server.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use discovery_client::types::Service;

/// A plain-text table: left-aligned columns two spaces apart, a header row in capitals.
#[derive(Debug)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|h| h.to_uppercase()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate().take(columns) {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                if i + 1 < columns {
                    let pad = widths[i].saturating_sub(cell.chars().count());
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A compact duration: `850ms`, `12s`, `3m05s`, `2h04m`, `3d07h`.
pub fn duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `Duration` in the same style as [`duration_ms`].
pub fn duration(d: Duration) -> String {
    duration_ms(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// How long until an entry expires: `12s`, or `expired 3s ago`.
pub fn expires_in(ms: i64) -> String {
    if ms >= 0 {
        duration_ms(ms)
    } else {
        format!("expired {} ago", duration_ms(ms.saturating_neg()))
    }
}

/// RFC 3339 UTC with milliseconds, e.g. `2024-05-07T14:33:20.123Z`.
pub fn timestamp(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The address people want from a service: `http`, else `https`, else `-`.
pub fn http_of(service: &Service) -> String {
    service
        .properties
        .get("http")
        .or_else(|| service.properties.get("https"))
        .cloned()
        .unwrap_or_else(|| "-".into())
}

/// `k=v,k=v` for a table cell.
pub fn properties(service: &Service) -> String {
    if service.properties.is_empty() {
        return "-".into();
    }
    service
        .properties
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// How a list of services changed between two observations.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes<'a> {
    pub added: Vec<&'a Service>,
    pub removed: Vec<&'a Service>,
    /// Same id, different content (properties, location, node).
    pub changed: Vec<&'a Service>,
}

impl Changes<'_> {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// How many services changed: one per line `watch` prints.
    pub fn len(&self) -> usize {
        self.added.len() + self.removed.len() + self.changed.len()
    }

    /// Keeps the first `n` changes, in print order (added, removed, changed).
    pub fn truncate(&mut self, mut n: usize) {
        for list in [&mut self.added, &mut self.removed, &mut self.changed] {
            list.truncate(n);
            n -= list.len();
        }
    }
}

/// Compares two lists by service id.
pub fn changes<'a>(before: &'a [Service], after: &'a [Service]) -> Changes<'a> {
    let old: BTreeMap<&str, &Service> = before.iter().map(|s| (s.id.as_str(), s)).collect();
    let new: BTreeMap<&str, &Service> = after.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut result = Changes::default();
    for (id, service) in &new {
        match old.get(id) {
            None => result.added.push(service),
            Some(previous) if previous != service => result.changed.push(service),
            Some(_) => {}
        }
    }
    for (id, service) in &old {
        if !new.contains_key(id) {
            result.removed.push(service);
        }
    }
    result
}

/// One line describing a service in `watch` output.
pub fn service_line(sign: char, service: &Service) -> String {
    format!(
        "{sign} {} {} node={} location={} http={}",
        service.id,
        service.service_type,
        service.node_id.as_deref().unwrap_or("-"),
        service.location.as_deref().unwrap_or("-"),
        http_of(service)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(id: &str, http: &str) -> Service {
        Service {
            id: id.into(),
            node_id: Some("n1".into()),
            service_type: "presto".into(),
            pool: "general".into(),
            location: Some("/n1".into()),
            state: None,
            properties: [("http".to_owned(), http.to_owned())].into(),
        }
    }

    #[test]
    fn tables_align_columns_and_do_not_pad_the_last_one() {
        let mut table = Table::new(&["type", "node", "http"]);
        table.row(vec!["presto".into(), "n1".into(), "http://a".into()]);
        table.row(vec!["presto-coordinator".into(), "-".into(), "-".into()]);
        assert_eq!(
            table.render(),
            "TYPE                NODE  HTTP\n\
             presto              n1    http://a\n\
             presto-coordinator  -     -\n"
        );
    }

    #[test]
    fn durations_are_compact() {
        assert_eq!(duration_ms(850), "850ms");
        assert_eq!(duration_ms(12_400), "12s");
        assert_eq!(duration_ms(185_000), "3m05s");
        assert_eq!(duration_ms(7_440_000), "2h04m");
        assert_eq!(duration_ms(3 * 86_400_000 + 7 * 3_600_000), "3d07h");
        assert_eq!(duration_ms(-5), "0ms");
        assert_eq!(expires_in(3_000), "3s");
        assert_eq!(expires_in(-3_000), "expired 3s ago");
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(timestamp(1_715_090_000_123), "2024-05-07T13:53:20.123Z");
        assert_eq!(timestamp(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(timestamp(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn changes_are_found_by_id() {
        let a = service("a", "http://a");
        let b = service("b", "http://b");
        let b_moved = service("b", "http://b2");
        let c = service("c", "http://c");
        let before = vec![a.clone(), b];
        let after = vec![b_moved.clone(), c.clone()];
        let diff = changes(&before, &after);
        assert_eq!(diff.added, vec![&c]);
        assert_eq!(diff.removed, vec![&a]);
        assert_eq!(diff.changed, vec![&b_moved]);
        assert!(changes(&before, &before).is_empty());
    }

    #[test]
    fn services_render_their_address() {
        let s = service("a", "http://a:8080");
        assert_eq!(http_of(&s), "http://a:8080");
        assert_eq!(properties(&s), "http=http://a:8080");
        assert_eq!(
            service_line('+', &s),
            "+ a presto node=n1 location=/n1 http=http://a:8080"
        );
    }
}
