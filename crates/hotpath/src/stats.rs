//! [`RunningStats`]: mean and variance of a stream in O(1) memory.

use serde::{Deserialize, Serialize};

/// Welford's running mean and variance: numerically stable, no history kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunningStats {
    count: u64,
    mean: f64,
    /// Sum of squared deviations from the mean.
    m2: f64,
}

impl RunningStats {
    pub(crate) fn add(&mut self, x: f64) {
        self.count += 1;
        let d = x - self.mean;
        self.mean += d / self.count as f64;
        self.m2 += d * (x - self.mean);
    }

    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    pub(crate) fn mean(&self) -> f64 {
        self.mean
    }

    /// Sample standard deviation (0 with fewer than two values).
    pub(crate) fn sd(&self) -> f64 {
        if self.count < 2 {
            0.0
        } else {
            (self.m2 / (self.count - 1) as f64).max(0.0).sqrt()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_two_pass_formula() {
        let xs = [1.0, 1.1, 0.9, 1.3, 0.7];
        let mut s = RunningStats::default();
        xs.iter().for_each(|x| s.add(*x));
        let mean = xs.iter().sum::<f64>() / 5.0;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 4.0;
        assert_eq!(s.count(), 5);
        assert!((s.mean() - mean).abs() < 1e-15);
        assert!((s.sd() - var.sqrt()).abs() < 1e-15);
        assert_eq!(RunningStats::default().sd(), 0.0);
    }
}
