//! [`RollbackPolicy`]: when the executor returns to the baseline by itself.

use crate::error::{check_range, ConfigError};
use serde::{Deserialize, Serialize};

/// The highest `max_rollbacks_per_hour` accepted (the executor keeps that
/// many timestamps).
pub const MAX_ROLLBACKS_PER_HOUR: u32 = 1000;

/// When to revert to the baseline automatically, and how the circuit breaker
/// stops a loop that keeps needing it. Enforced by
/// [`SafetyExecutor`](crate::SafetyExecutor) (see its docs for the full
/// rules).
///
/// # Regression
///
/// Outcome reports are objective values, lower is better. A report for a
/// configuration other than the baseline is a *regression* when
///
/// ```text
/// objective > baseline_mean + max(regression_sigmas · baseline_sd,
///                                 regression_tolerance · |baseline_mean|)
/// ```
///
/// where `baseline_mean` and `baseline_sd` are the mean and sample standard
/// deviation of the reports received while the baseline was live. Nothing is
/// judged until the baseline has [`MIN_BASELINE_REPORTS`](crate::MIN_BASELINE_REPORTS)
/// reports, so noise is measured before it is used.
///
/// # Presets
///
/// | Preset | `max_consecutive_regressions` | `max_rollbacks_per_hour` | `min_stable_time_us` |
/// |--------|---:|---:|---:|
/// | Conservative | 2 | 2 | 30 s |
/// | Balanced (default) | 3 | 4 | 5 s |
/// | Aggressive | 5 | 10 | 1 s |
///
/// All presets use `regression_sigmas = 2` and `regression_tolerance = 0.01`.
///
/// ```
/// use hotpath::RollbackPolicy;
///
/// let p = RollbackPolicy::preset_conservative();
/// assert_eq!(p.max_consecutive_regressions, 2);
/// assert_eq!(p.validate(), Ok(()));
/// assert_eq!(RollbackPolicy::default(), RollbackPolicy::preset_balanced());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackPolicy {
    /// Roll back after this many consecutive regressed reports. At least 1.
    pub max_consecutive_regressions: u32,
    /// Circuit breaker: a rollback that makes more than this many in any
    /// hour latches safe mode (manual reset). At most
    /// [`MAX_ROLLBACKS_PER_HOUR`].
    pub max_rollbacks_per_hour: u32,
    /// After a rollback, no update until this long has passed, in µs.
    pub min_stable_time_us: u64,
    /// Noise allowance: how many baseline standard deviations an objective
    /// may exceed the baseline mean by before it counts as a regression.
    /// Finite, ≥ 0. Not in the API reference.
    #[serde(default = "default_sigmas")]
    pub regression_sigmas: f64,
    /// Minimum allowance as a fraction of |baseline mean|, so a noiseless
    /// baseline does not make every rounding error a regression. Finite,
    /// ≥ 0. Not in the API reference.
    #[serde(default = "default_tolerance")]
    pub regression_tolerance: f64,
}

fn default_sigmas() -> f64 {
    2.0
}

fn default_tolerance() -> f64 {
    0.01
}

impl RollbackPolicy {
    /// The `Conservative` preset of the API reference.
    pub fn preset_conservative() -> Self {
        Self {
            max_consecutive_regressions: 2,
            max_rollbacks_per_hour: 2,
            min_stable_time_us: 30_000_000,
            regression_sigmas: default_sigmas(),
            regression_tolerance: default_tolerance(),
        }
    }

    /// The `Balanced` preset of the API reference (the default).
    pub fn preset_balanced() -> Self {
        Self {
            max_consecutive_regressions: 3,
            max_rollbacks_per_hour: 4,
            min_stable_time_us: 5_000_000,
            regression_sigmas: default_sigmas(),
            regression_tolerance: default_tolerance(),
        }
    }

    /// The `Aggressive` preset of the API reference.
    pub fn preset_aggressive() -> Self {
        Self {
            max_consecutive_regressions: 5,
            max_rollbacks_per_hour: 10,
            min_stable_time_us: 1_000_000,
            regression_sigmas: default_sigmas(),
            regression_tolerance: default_tolerance(),
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    ///
    /// The first invalid field as [`ConfigError::InvalidField`] (naming it).
    ///
    /// ```
    /// use hotpath::RollbackPolicy;
    ///
    /// let p = RollbackPolicy { max_consecutive_regressions: 0, ..RollbackPolicy::default() };
    /// assert!(p.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range(
            "max_consecutive_regressions",
            self.max_consecutive_regressions as f64,
            1.0,
            f64::MAX,
            "at least 1",
        )?;
        check_range(
            "max_rollbacks_per_hour",
            self.max_rollbacks_per_hour as f64,
            0.0,
            MAX_ROLLBACKS_PER_HOUR as f64,
            "at most 1000",
        )?;
        check_range(
            "regression_sigmas",
            self.regression_sigmas,
            0.0,
            f64::MAX,
            "a finite number ≥ 0",
        )?;
        check_range(
            "regression_tolerance",
            self.regression_tolerance,
            0.0,
            f64::MAX,
            "a finite number ≥ 0",
        )
    }
}

impl Default for RollbackPolicy {
    fn default() -> Self {
        Self::preset_balanced()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_match_the_seed_table() {
        let rows = [
            (RollbackPolicy::preset_conservative(), 2, 2, 30_000_000),
            (RollbackPolicy::preset_balanced(), 3, 4, 5_000_000),
            (RollbackPolicy::preset_aggressive(), 5, 10, 1_000_000),
        ];
        for (p, regressions, per_hour, stable) in rows {
            assert_eq!(p.max_consecutive_regressions, regressions);
            assert_eq!(p.max_rollbacks_per_hour, per_hour);
            assert_eq!(p.min_stable_time_us, stable);
            assert_eq!(p.validate(), Ok(()));
        }
    }

    #[test]
    fn validation_rejects_non_finite_allowances() {
        for p in [
            RollbackPolicy {
                regression_sigmas: f64::NAN,
                ..Default::default()
            },
            RollbackPolicy {
                regression_tolerance: -0.1,
                ..Default::default()
            },
            RollbackPolicy {
                max_rollbacks_per_hour: 5000,
                ..Default::default()
            },
        ] {
            assert!(p.validate().is_err());
        }
    }
}
