//! Replication settings of one store.

use std::time::Duration;

/// How one store is replicated. Defaults follow airlift where airlift has a setting
/// (`<store>.store.remote.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicatorConfig {
    /// Most entries in one push (`max-batch-size`).
    pub max_batch_size: usize,
    /// Approximate most JSON bytes in one push, so a batch of large announcements stays
    /// well under the receiver's request-size limit.
    pub max_batch_bytes: usize,
    /// Most changes waiting per peer (`queue-size`); beyond it the oldest is dropped and
    /// anti-entropy repairs it.
    pub queue_size: usize,
    /// Anti-entropy period (`replication-interval`).
    pub replication_interval: Duration,
    /// Deadline of one request to a peer: a hung peer costs this much, never more.
    pub request_timeout: Duration,
    /// Retry delay after a failed push: doubles from `backoff_initial` up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl Default for ReplicatorConfig {
    fn default() -> Self {
        ReplicatorConfig {
            max_batch_size: 1000,
            max_batch_bytes: 512 * 1024,
            queue_size: 1000,
            replication_interval: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
        }
    }
}

/// The retry delays after consecutive failures: `initial`, doubling, capped at `max`.
pub fn backoff_delay(initial: Duration, max: Duration, consecutive_failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(consecutive_failures.saturating_sub(1).min(20));
    initial.saturating_mul(factor).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let ms = Duration::from_millis;
        let delays: Vec<Duration> = (1..=8)
            .map(|n| backoff_delay(ms(100), ms(1000), n))
            .collect();
        assert_eq!(
            delays,
            [
                ms(100),
                ms(200),
                ms(400),
                ms(800),
                ms(1000),
                ms(1000),
                ms(1000),
                ms(1000)
            ]
        );
        assert_eq!(backoff_delay(ms(100), ms(1000), 1000), ms(1000));
    }
}
