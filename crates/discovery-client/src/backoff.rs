//! Exponential back-off between failed attempts.
//!
//! airlift's announcer and selectors wait 1 ms after the first failure and double the wait
//! after each further one, up to 1 s, and start over after a success. A short first delay
//! rides over a blip (a server restarting, a dropped connection); the cap keeps a client of
//! a dead server at one request per second instead of hammering it or going silent.

use std::time::Duration;

/// The back-off state of one loop (an announcer or a selector).
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// A back-off from `min`, doubling up to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max: max.max(min),
            failures: 0,
        }
    }

    /// airlift's parameters: 1 ms, 2 ms, 4 ms, ... 512 ms, then 1 s.
    pub fn airlift() -> Self {
        Backoff::new(Duration::from_millis(1), Duration::from_secs(1))
    }

    /// Records a failure and returns how long to wait before the next attempt.
    pub fn failure(&mut self) -> Duration {
        let doublings = self.failures.min(31);
        self.failures = self.failures.saturating_add(1);
        self.min
            .checked_mul(1u32 << doublings)
            .map_or(self.max, |delay| delay.min(self.max))
    }

    /// Records a success: the next failure waits `min` again.
    pub fn success(&mut self) {
        self.failures = 0;
    }

    /// Failures since the last success.
    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::airlift()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_one_millisecond_to_a_one_second_cap() {
        let mut backoff = Backoff::airlift();
        let delays: Vec<u128> = (0..13).map(|_| backoff.failure().as_millis()).collect();
        assert_eq!(
            delays,
            [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 1000, 1000]
        );
        assert_eq!(backoff.consecutive_failures(), 13);
    }

    #[test]
    fn success_starts_over() {
        let mut backoff = Backoff::airlift();
        for _ in 0..5 {
            backoff.failure();
        }
        backoff.success();
        assert_eq!(backoff.consecutive_failures(), 0);
        assert_eq!(backoff.failure(), Duration::from_millis(1));
        assert_eq!(backoff.failure(), Duration::from_millis(2));
    }

    #[test]
    fn never_overflows_however_long_the_outage() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        for _ in 0..100 {
            assert!(backoff.failure() <= Duration::from_secs(30));
        }
        assert_eq!(backoff.failure(), Duration::from_secs(30));
    }
}
