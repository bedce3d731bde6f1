//! Refused requests are counted always and logged at most once per client address per
//! minute: a client retrying with a stale token every second, or someone probing, must
//! not fill the log. The memory of who was logged is bounded too.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long one client's refusals stay quiet after one was logged.
pub const QUIET_PERIOD: Duration = Duration::from_secs(60);
/// Most client addresses remembered.
pub const MAX_REMEMBERED: usize = 4096;

/// Which clients were logged when. Pure: the caller passes the time.
#[derive(Debug, Default)]
pub struct LogLimiter {
    logged_at: HashMap<IpAddr, Instant>,
}

impl LogLimiter {
    /// True when a refusal from `client` at `now` should be logged.
    pub fn should_log(&mut self, client: IpAddr, now: Instant) -> bool {
        if let Some(at) = self.logged_at.get(&client) {
            if now.saturating_duration_since(*at) < QUIET_PERIOD {
                return false;
            }
        }
        if self.logged_at.len() >= MAX_REMEMBERED && !self.logged_at.contains_key(&client) {
            self.logged_at
                .retain(|_, at| now.saturating_duration_since(*at) < QUIET_PERIOD);
            if self.logged_at.len() >= MAX_REMEMBERED {
                // Thousands of addresses refused within a minute: stay quiet, keep counting.
                return false;
            }
        }
        self.logged_at.insert(client, now);
        true
    }
}

/// Refusals by reason label (`missing`, `expired`, …, `forbidden`).
#[derive(Debug, Default)]
pub struct FailureCounts {
    counts: Mutex<BTreeMap<&'static str, AtomicU64>>,
}

impl FailureCounts {
    pub fn add(&self, label: &'static str) {
        if let Ok(mut counts) = self.counts.lock() {
            counts
                .entry(label)
                .or_default()
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .map(|counts| {
                counts
                    .iter()
                    .map(|(label, count)| ((*label).to_owned(), count.load(Ordering::Relaxed)))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_client_per_minute() {
        let mut limiter = LogLimiter::default();
        let start = Instant::now();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(limiter.should_log(a, start));
        assert!(!limiter.should_log(a, start + Duration::from_secs(59)));
        assert!(limiter.should_log(b, start + Duration::from_secs(1)));
        assert!(limiter.should_log(a, start + Duration::from_secs(60)));
    }

    #[test]
    fn the_memory_is_bounded_and_forgets_quiet_clients() {
        let mut limiter = LogLimiter::default();
        let start = Instant::now();
        for i in 0..MAX_REMEMBERED as u32 {
            assert!(limiter.should_log(IpAddr::from(i.to_be_bytes()), start));
        }
        let late = IpAddr::from(u32::MAX.to_be_bytes());
        assert!(
            !limiter.should_log(late, start + Duration::from_secs(1)),
            "full"
        );
        assert!(
            limiter.should_log(late, start + QUIET_PERIOD),
            "the old ones were forgotten"
        );
        assert!(limiter.logged_at.len() <= MAX_REMEMBERED);
    }

    #[test]
    fn counts_by_label() {
        let counts = FailureCounts::default();
        counts.add("expired");
        counts.add("expired");
        counts.add("missing");
        let snapshot = counts.snapshot();
        assert_eq!(snapshot["expired"], 2);
        assert_eq!(snapshot["missing"], 1);
    }
}
