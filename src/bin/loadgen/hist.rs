//! A latency histogram with bounded memory: exact below 256 µs, then 128 buckets per
//! power of two (at most 0.8 % error), plus the exact count, sum and maximum.
//! Shared by `loadgen` and `sqlite_baseline`.

use std::time::Duration;

/// Values below this are counted exactly.
const EXACT: u64 = 256;
/// Buckets per power of two above `EXACT` (7 bits of precision).
const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;

#[derive(Clone, Debug, Default)]
pub struct Hist {
    counts: Vec<u64>,
    count: u64,
    sum_micros: u128,
    max_micros: u64,
}

fn index(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros(); // >= 8
    let shift = msb - SUB_BITS; // >= 1
    let mantissa = v >> shift; // SUB..2*SUB
    (EXACT + u64::from(shift - 1) * SUB + (mantissa - SUB)) as usize
}

/// The largest value that falls in bucket `i`.
fn upper(i: usize) -> u64 {
    let i = i as u64;
    if i < EXACT {
        return i;
    }
    let shift = (i - EXACT) / SUB + 1;
    let mantissa = (i - EXACT) % SUB + SUB;
    ((mantissa + 1) << shift) - 1
}

impl Hist {
    pub fn record(&mut self, d: Duration) {
        let v = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = index(v);
        if self.counts.len() <= i {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
        self.count += 1;
        self.sum_micros += u128::from(v);
        self.max_micros = self.max_micros.max(v);
    }

    pub fn merge(&mut self, other: &Hist) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.count += other.count;
        self.sum_micros += other.sum_micros;
        self.max_micros = self.max_micros.max(other.max_micros);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `q` quantile (0..=1) in microseconds: the highest value of the bucket that holds
    /// it, never above the maximum seen. 0 when empty.
    pub fn quantile_micros(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper(i).min(self.max_micros);
            }
        }
        self.max_micros
    }

    pub fn max_micros(&self) -> u64 {
        self.max_micros
    }

    pub fn mean_micros(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum_micros as f64 / self.count as f64
        }
    }

    /// count, mean, p50, p90, p99, max; latencies in milliseconds.
    pub fn summary_json(&self) -> serde_json::Value {
        let ms = |micros: u64| micros as f64 / 1000.0;
        serde_json::json!({
            "count": self.count,
            "mean": round3(self.mean_micros() / 1000.0),
            "p50": ms(self.quantile_micros(0.50)),
            "p90": ms(self.quantile_micros(0.90)),
            "p99": ms(self.quantile_micros(0.99)),
            "max": ms(self.max_micros()),
        })
    }
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_values_in_order() {
        let mut last = 0;
        for v in (0..5_000_000u64).step_by(37) {
            let i = index(v);
            assert!(upper(i) >= v, "{v} above its bucket's top {}", upper(i));
            assert!(i >= last);
            last = i;
            // Relative error bound above the exact range.
            if v >= EXACT {
                assert!((upper(i) - v) as f64 / v as f64 <= 1.0 / SUB as f64);
            }
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Hist::default();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let p50 = h.quantile_micros(0.5) as f64;
        assert!((p50 - 50_000.0).abs() / 50_000.0 < 0.01, "{p50}");
        assert_eq!(h.quantile_micros(1.0), 100_000);
        assert_eq!(h.max_micros(), 100_000);
        let mut other = Hist::default();
        other.record(Duration::from_secs(2));
        h.merge(&other);
        assert_eq!(h.count(), 101);
        assert_eq!(h.max_micros(), 2_000_000);
    }
}
