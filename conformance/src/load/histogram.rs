//! The load tool's latency histogram: `hdrhistogram` with two significant digits (log-linear
//! buckets, so a reported value is never more than 1/128, 0.8 %, above the true one;
//! constant memory, about 35 KiB; O(1) recording and exact merging), plus what the reports
//! need exactly: minimum, maximum, mean, and a count of values above [`MAX_VALUE`].
//!
//! Values are nanoseconds; values above [`MAX_VALUE`] are clamped to it and counted in
//! [`Histogram::saturated`]. It is for latency percentiles of the load tool; it is not a
//! general statistics library (no standard deviation, no negative values).

use std::time::Duration;

/// Significant decimal digits kept (2: 128 linear buckets per power of two).
pub const SIGNIFICANT_DIGITS: u8 = 2;
/// Largest value kept: 2^40 - 1 ns, about 18 minutes.
pub const MAX_VALUE: u64 = (1 << 40) - 1;

/// Counts of nanosecond values, allocated once.
#[derive(Clone, PartialEq)]
pub struct Histogram {
    inner: hdrhistogram::Histogram<u64>,
    min: u64,
    max: u64,
    sum: u128,
    saturated: u64,
}

impl core::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Histogram")
            .field("total", &self.count())
            .field("min", &self.min)
            .field("max", &self.max)
            .field("saturated", &self.saturated)
            .finish_non_exhaustive()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram.
    // The configuration is constant and valid (checked by `empty_has_no_percentiles`).
    #[allow(clippy::expect_used)]
    pub fn new() -> Self {
        let inner = hdrhistogram::Histogram::new_with_max(MAX_VALUE, SIGNIFICANT_DIGITS)
            .expect("1 ..= 2^40 with 2 significant digits is a valid configuration");
        Histogram {
            inner,
            min: u64::MAX,
            max: 0,
            sum: 0,
            saturated: 0,
        }
    }

    /// Records one value in nanoseconds (clamped to [`MAX_VALUE`]).
    pub fn record(&mut self, nanos: u64) {
        if nanos > MAX_VALUE {
            self.saturated += 1;
        }
        let v = nanos.min(MAX_VALUE);
        self.inner.saturating_record(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += u128::from(v);
    }

    /// Records a duration.
    pub fn record_duration(&mut self, d: Duration) {
        self.record(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Adds every value of `other` (exact: the buckets are the same).
    pub fn merge(&mut self, other: &Histogram) {
        // Same configuration on both sides: `add` cannot meet a value out of range.
        let _ = self.inner.add(&other.inner);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
        self.saturated += other.saturated;
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.inner.len()
    }

    /// How many values were above [`MAX_VALUE`].
    pub fn saturated(&self) -> u64 {
        self.saturated
    }

    /// The smallest value recorded (exact), if any.
    pub fn min(&self) -> Option<u64> {
        (self.count() > 0).then_some(self.min)
    }

    /// The largest value recorded (exact, after clamping), if any.
    pub fn max(&self) -> Option<u64> {
        (self.count() > 0).then_some(self.max)
    }

    /// The mean of the recorded values (exact, after clamping), if any.
    pub fn mean(&self) -> Option<f64> {
        (self.count() > 0).then(|| self.sum as f64 / self.count() as f64)
    }

    /// The value at quantile `q` (0.0..=1.0, e.g. 0.99 for p99): the largest value of the
    /// bucket holding the ceil(q * count)-th smallest value, capped at the exact maximum.
    /// So the answer is at or above the true percentile by at most 1/128 of it. None when
    /// empty or when `q` is not a number.
    pub fn value_at_quantile(&self, q: f64) -> Option<u64> {
        if self.count() == 0 || q.is_nan() {
            return None;
        }
        let v = self.inner.value_at_quantile(q.clamp(0.0, 1.0));
        Some(self.inner.highest_equivalent(v).min(self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::new();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.value_at_quantile(0.5), Some(50));
        assert_eq!(h.value_at_quantile(0.99), Some(99));
        assert_eq!(h.value_at_quantile(1.0), Some(100));
        assert_eq!(h.value_at_quantile(0.0), Some(1));
        assert_eq!(h.min(), Some(1));
        assert_eq!(h.max(), Some(100));
        assert_eq!(h.mean(), Some(50.5));
    }

    #[test]
    fn empty_has_no_percentiles() {
        let h = Histogram::new();
        assert_eq!(h.value_at_quantile(0.5), None);
        assert_eq!(h.min(), None);
        assert_eq!(h.max(), None);
        assert_eq!(h.mean(), None);
        let mut h = Histogram::new();
        h.record(5);
        assert_eq!(h.value_at_quantile(f64::NAN), None);
    }

    #[test]
    fn tail_percentiles_of_a_skewed_distribution() {
        // 9,990 fast values of 100 µs and 10 slow ones of 50 ms: p99 is fast, p999 is the
        // last fast value, and the max is slow.
        let mut h = Histogram::new();
        for _ in 0..9_990 {
            h.record(100_000);
        }
        for _ in 0..10 {
            h.record(50_000_000);
        }
        let p99 = h.value_at_quantile(0.99).unwrap();
        assert!((100_000..=100_000 + 100_000 / 128).contains(&p99), "{p99}");
        let p999 = h.value_at_quantile(0.999).unwrap();
        assert!(p999 < 101_000, "{p999}");
        let p9999 = h.value_at_quantile(0.9999).unwrap();
        assert!(p9999 >= 50_000_000, "{p9999}");
        assert_eq!(h.max(), Some(50_000_000));
    }

    #[test]
    fn saturates_instead_of_overflowing() {
        let mut h = Histogram::new();
        h.record(u64::MAX);
        h.record_duration(Duration::from_secs(u64::MAX));
        assert_eq!(h.saturated(), 2);
        assert_eq!(h.max(), Some(MAX_VALUE));
        assert_eq!(h.value_at_quantile(0.5), Some(MAX_VALUE));
    }

    #[test]
    fn merge_equals_recording_together() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        let mut both = Histogram::new();
        for v in [3u64, 1_000, 77_777, 123_456_789] {
            a.record(v);
            both.record(v);
        }
        for v in [9u64, 5_000_000, 42] {
            b.record(v);
            both.record(v);
        }
        a.merge(&b);
        assert_eq!(a, both);
        let mut empty = Histogram::new();
        empty.merge(&Histogram::new());
        assert_eq!(empty.min(), None);
    }

    proptest! {
        #[test]
        fn percentile_within_relative_error(mut values in proptest::collection::vec(0u64..=MAX_VALUE, 1..400), q in 0.0f64..=1.0) {
            let mut h = Histogram::new();
            for &v in &values {
                h.record(v);
            }
            values.sort_unstable();
            let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
            let exact = values[rank - 1];
            let got = h.value_at_quantile(q).unwrap();
            prop_assert!(got >= exact, "got {} < exact {}", got, exact);
            prop_assert!(got - exact <= exact / 128, "got {} exact {}", got, exact);
            prop_assert_eq!(h.min(), values.first().copied());
            prop_assert_eq!(h.max(), values.last().copied());
        }
    }
}
