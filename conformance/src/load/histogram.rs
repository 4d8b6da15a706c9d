//! A latency histogram in the manner of HdrHistogram: log-linear buckets with a fixed
//! relative precision, constant memory, O(1) recording and exact merging.
//!
//! Values are nanoseconds. Below 2^[`SUB_BITS`] every value has its own bucket; above it
//! each power of two is cut into 2^[`SUB_BITS`] equal buckets, so a reported value is never
//! more than 1/128 (0.8 %) above the true one. Values above [`MAX_VALUE`] are clamped to it
//! and counted in [`Histogram::saturated`].
//!
//! It is for latency percentiles of the load tool; it is not a general statistics library
//! (no standard deviation, no negative values).

use std::time::Duration;

/// Bits of linear resolution within each power of two (128 buckets per octave).
pub const SUB_BITS: u32 = 7;
/// Largest value kept exactly (in bucket terms): 2^40 - 1 ns, about 18 minutes.
pub const MAX_VALUE: u64 = (1 << 40) - 1;

const SUB_COUNT: usize = 1 << SUB_BITS;
/// Octaves above the linear range: values 2^7 ..= 2^40 - 1 have top bit 7..=39.
const OCTAVES: usize = 40 - SUB_BITS as usize;
const BUCKETS: usize = SUB_COUNT * (OCTAVES + 1);

/// Counts of nanosecond values in log-linear buckets. About 34 KiB, allocated once.
#[derive(Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    min: u64,
    max: u64,
    sum: u128,
    saturated: u64,
}

impl core::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Histogram")
            .field("total", &self.total)
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

/// The bucket a value falls in.
fn bucket_of(value: u64) -> usize {
    let v = value.min(MAX_VALUE);
    if v < SUB_COUNT as u64 {
        return v as usize;
    }
    let top = 63 - v.leading_zeros(); // SUB_BITS ..= 39
    let shift = top - SUB_BITS;
    let sub = (v >> shift) as usize - SUB_COUNT; // 0 .. SUB_COUNT
    (shift as usize + 1) * SUB_COUNT + sub
}

/// The smallest and largest value that fall in `bucket`.
fn bucket_range(bucket: usize) -> (u64, u64) {
    if bucket < SUB_COUNT {
        return (bucket as u64, bucket as u64);
    }
    let shift = (bucket / SUB_COUNT - 1) as u32;
    let sub = (bucket % SUB_COUNT) as u64;
    let low = (SUB_COUNT as u64 + sub) << shift;
    (low, low + (1u64 << shift) - 1)
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
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
        if let Some(c) = self.counts.get_mut(bucket_of(v)) {
            *c += 1;
        }
        self.total += 1;
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
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine += theirs;
        }
        self.total += other.total;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
        self.saturated += other.saturated;
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// How many values were above [`MAX_VALUE`].
    pub fn saturated(&self) -> u64 {
        self.saturated
    }

    /// The smallest value recorded (exact), if any.
    pub fn min(&self) -> Option<u64> {
        (self.total > 0).then_some(self.min)
    }

    /// The largest value recorded (exact, after clamping), if any.
    pub fn max(&self) -> Option<u64> {
        (self.total > 0).then_some(self.max)
    }

    /// The mean of the recorded values (exact, after clamping), if any.
    pub fn mean(&self) -> Option<f64> {
        (self.total > 0).then(|| self.sum as f64 / self.total as f64)
    }

    /// The value at quantile `q` (0.0..=1.0, e.g. 0.99 for p99): the largest value of the
    /// bucket holding the ceil(q * count)-th smallest value, capped at the exact maximum.
    /// So the answer is at or above the true percentile by at most 1/128 of it. None when
    /// empty or when `q` is not a number.
    pub fn value_at_quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 || q.is_nan() {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0u64;
        for (bucket, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(bucket_range(bucket).1.min(self.max));
            }
        }
        Some(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buckets_are_contiguous_and_ordered() {
        let mut expected_low = 0u64;
        for b in 0..BUCKETS {
            let (low, high) = bucket_range(b);
            assert_eq!(low, expected_low, "bucket {b}");
            assert!(high >= low);
            assert_eq!(bucket_of(low), b);
            assert_eq!(bucket_of(high), b);
            expected_low = high + 1;
        }
        assert_eq!(expected_low, MAX_VALUE + 1);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

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
