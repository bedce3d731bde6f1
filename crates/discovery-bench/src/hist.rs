//! Latency histograms (HdrHistogram, microsecond resolution) and their summaries.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Largest latency recorded exactly: one minute. Longer ones are recorded as one minute.
const MAX_MICROS: u64 = 60_000_000;

/// A latency histogram in microseconds, 3 significant digits.
#[derive(Debug, Clone)]
pub struct Latencies {
    histogram: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    pub fn new() -> Self {
        Latencies {
            // Bounds 1..=MAX_MICROS with 3 digits are valid by construction.
            histogram: Histogram::new_with_bounds(1, MAX_MICROS, 3)
                .expect("1 µs to 1 minute with 3 significant digits is a valid histogram"),
        }
    }

    /// Records one latency; below 1 µs counts as 1 µs, above a minute as a minute.
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.histogram
            .saturating_record(micros.clamp(1, MAX_MICROS));
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Latencies) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.histogram.add(&other.histogram);
    }

    #[cfg(test)]
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    pub fn summary(&self) -> Summary {
        let at = |q: f64| Duration::from_micros(self.histogram.value_at_quantile(q));
        if self.histogram.is_empty() {
            return Summary::default();
        }
        Summary {
            count: self.histogram.len(),
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
            max: Duration::from_micros(self.histogram.max()),
            mean: Duration::from_secs_f64(self.histogram.mean() / 1e6),
        }
    }
}

/// Percentiles of one run's latencies.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub max: Duration,
    pub mean: Duration,
}

/// A latency for a table: µs below 1 ms, then ms with 2 or 1 decimals, then s.
pub fn fmt_latency(latency: Duration) -> String {
    let micros = latency.as_secs_f64() * 1e6;
    if micros < 1000.0 {
        format!("{micros:.0} µs")
    } else if micros < 10_000.0 {
        format!("{:.2} ms", micros / 1000.0)
    } else if micros < 1_000_000.0 {
        format!("{:.1} ms", micros / 1000.0)
    } else {
        format!("{:.2} s", micros / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_uniform_distribution() {
        let mut latencies = Latencies::new();
        for micros in 1..=10_000 {
            latencies.record(Duration::from_micros(micros));
        }
        let summary = latencies.summary();
        assert_eq!(summary.count, 10_000);
        // Three significant digits: within 0.1 % of the exact value.
        let close = |d: Duration, exact: u64| {
            let got = d.as_micros() as f64;
            (got - exact as f64).abs() <= exact as f64 * 0.001 + 1.0
        };
        assert!(close(summary.p50, 5_000), "{summary:?}");
        assert!(close(summary.p99, 9_900), "{summary:?}");
        assert!(close(summary.p999, 9_990), "{summary:?}");
        assert!(close(summary.max, 10_000), "{summary:?}");
        assert!(close(summary.mean, 5_000), "{summary:?}");
    }

    #[test]
    fn a_tail_shows_in_p99_9_but_not_in_p99() {
        let mut latencies = Latencies::new();
        for _ in 0..9_990 {
            latencies.record(Duration::from_micros(100));
        }
        for _ in 0..10 {
            latencies.record(Duration::from_millis(500));
        }
        let summary = latencies.summary();
        assert!(summary.p99 < Duration::from_micros(101));
        assert!(summary.p999 < Duration::from_micros(101));
        assert!(summary.max >= Duration::from_millis(499));
        latencies.record(Duration::from_millis(500));
        assert!(latencies.summary().p999 >= Duration::from_millis(499));
    }

    #[test]
    fn merging_adds_samples_and_out_of_range_values_saturate() {
        let mut a = Latencies::new();
        let mut b = Latencies::new();
        a.record(Duration::ZERO);
        b.record(Duration::from_secs(3600));
        a.merge(&b);
        let summary = a.summary();
        assert_eq!(summary.count, 2);
        assert_eq!(a.count(), 2);
        assert!(summary.p50 <= Duration::from_micros(1));
        assert!(summary.max >= Duration::from_secs(59) && summary.max <= Duration::from_secs(61));
    }

    #[test]
    fn an_empty_histogram_summarises_to_zeros() {
        assert_eq!(Latencies::new().summary(), Summary::default());
    }

    #[test]
    fn latency_formatting() {
        assert_eq!(fmt_latency(Duration::from_micros(87)), "87 µs");
        assert_eq!(fmt_latency(Duration::from_micros(1_234)), "1.23 ms");
        assert_eq!(fmt_latency(Duration::from_micros(45_670)), "45.7 ms");
        assert_eq!(fmt_latency(Duration::from_millis(2_500)), "2.50 s");
    }
}
