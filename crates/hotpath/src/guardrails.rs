//! [`Guardrails`]: the safety envelope every live change must fit in.

use crate::error::{check_range, ConfigError};
use serde::{Deserialize, Serialize};

/// The highest `max_updates_per_second` accepted. The rate limiter keeps the
/// timestamps of the last ⌊rate⌋ applies in a ring allocated once, so this
/// caps that ring at 8 KiB; a governed actuator that changes production
/// configuration more than a thousand times a second is not a control loop.
pub const MAX_UPDATES_PER_SECOND: f64 = 1000.0;

/// The highest `direction_flip_limit` accepted (the executor keeps that many
/// timestamps per parameter).
pub const MAX_FLIP_LIMIT: u32 = 1000;

/// The safety envelope for parameter updates, enforced by
/// [`SafetyExecutor`](crate::SafetyExecutor).
///
/// # Units
///
/// `max_delta_per_step` and `max_cumulative_delta_per_minute` are
/// **fractions of each parameter's range**: the width of its `bounds`, or 1
/// when there are no bounds. A parameter bounded to `[16, 1024]` with
/// `max_delta_per_step = 0.10` may move by at most 100.8 per step.
///
/// # Presets
///
/// | field | Conservative | Balanced (default) | Aggressive |
/// |-------|-------------:|-------------------:|-----------:|
/// | `max_delta_per_step` | 0.05 | 0.10 | 0.20 |
/// | `max_updates_per_second` | 2 | 10 | 20 |
/// | `min_interval_us` | 500 ms | 100 ms | 50 ms |
/// | `direction_flip_limit` (per dimension per minute) | 2 | 3 | 5 |
/// | `cooldown_after_flip_us` | 60 s | 30 s | 10 s |
/// | `max_cumulative_delta_per_minute` | 0.25 | 0.50 | 1.00 |
/// | `regression_count_limit` | 4 | 6 | 10 |
/// | `violation_limit` | 5 | 10 | 20 |
/// | `bounds` | none | none | none |
///
/// The first four rows are the API reference's table. The cooldowns give an
/// oscillating dimension time to settle for a multiple of its flip window;
/// the budgets allow five full-size steps per minute; `regression_count_limit`
/// is twice the matching [`RollbackPolicy`](crate::RollbackPolicy)'s
/// `max_consecutive_regressions`, so one automatic rollback is tried before
/// regressions latch safe mode (see the executor docs).
///
/// ```
/// use hotpath::Guardrails;
///
/// let g = Guardrails::preset_conservative().with_bounds(vec![(16.0, 1024.0), (1.0, 64.0)]);
/// assert_eq!(g.validate_for(2), Ok(()));
/// assert_eq!(g.range(0), 1008.0);
/// assert_eq!(Guardrails::default(), Guardrails::preset_balanced());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guardrails {
    /// Maximum move of any parameter in one change, as a fraction of its
    /// range, in (0, 1]. Applies to every change of the live config,
    /// perturbations included; also bounds how far a perturbation may stray
    /// from the committed centre.
    pub max_delta_per_step: f64,
    /// Maximum applies in any 1 s window, in [1, [`MAX_UPDATES_PER_SECOND`]].
    /// The window holds at most ⌊rate⌋ applies.
    pub max_updates_per_second: f64,
    /// Minimum time between two applies, in µs.
    pub min_interval_us: u64,
    /// Maximum direction reversals of committed moves per dimension in any
    /// 60 s window, at most [`MAX_FLIP_LIMIT`]. 0 forbids any reversal.
    pub direction_flip_limit: u32,
    /// How long updates are refused (safe mode, reason `Thrashing`) after a
    /// move would exceed `direction_flip_limit`, in µs.
    pub cooldown_after_flip_us: u64,
    /// Maximum total committed movement per dimension in any 60 s window, as
    /// a fraction of the range. Must be > 0.
    pub max_cumulative_delta_per_minute: f64,
    /// Consecutive regressed outcome reports (counted across automatic
    /// rollbacks) that latch safe mode. At least 1.
    pub regression_count_limit: u32,
    /// Per-parameter bounds `(min, max)`, finite with `min < max`. `None`:
    /// unbounded, each range taken as 1.
    pub bounds: Option<Vec<(f64, f64)>>,
    /// Consecutive refused proposals that were malformed or outside the
    /// envelope (wrong length, non-finite, too large, out of bounds, too far
    /// from the centre) that latch safe mode (`RepeatedViolations`). A
    /// proposer that keeps producing them is broken. At least 1. Not in the
    /// API reference.
    #[serde(default = "default_violation_limit")]
    pub violation_limit: u32,
}

fn default_violation_limit() -> u32 {
    Guardrails::preset_balanced().violation_limit
}

impl Guardrails {
    /// The `Conservative` preset of the API reference.
    pub fn preset_conservative() -> Self {
        Self {
            max_delta_per_step: 0.05,
            max_updates_per_second: 2.0,
            min_interval_us: 500_000,
            direction_flip_limit: 2,
            cooldown_after_flip_us: 60_000_000,
            max_cumulative_delta_per_minute: 0.25,
            regression_count_limit: 4,
            bounds: None,
            violation_limit: 5,
        }
    }

    /// The `Balanced` preset of the API reference (the default).
    pub fn preset_balanced() -> Self {
        Self {
            max_delta_per_step: 0.10,
            max_updates_per_second: 10.0,
            min_interval_us: 100_000,
            direction_flip_limit: 3,
            cooldown_after_flip_us: 30_000_000,
            max_cumulative_delta_per_minute: 0.50,
            regression_count_limit: 6,
            bounds: None,
            violation_limit: 10,
        }
    }

    /// The `Aggressive` preset of the API reference.
    pub fn preset_aggressive() -> Self {
        Self {
            max_delta_per_step: 0.20,
            max_updates_per_second: 20.0,
            min_interval_us: 50_000,
            direction_flip_limit: 5,
            cooldown_after_flip_us: 10_000_000,
            max_cumulative_delta_per_minute: 1.00,
            regression_count_limit: 10,
            bounds: None,
            violation_limit: 20,
        }
    }

    /// The same guardrails with per-parameter `bounds`.
    pub fn with_bounds(mut self, bounds: Vec<(f64, f64)>) -> Self {
        self.bounds = Some(bounds);
        self
    }

    /// Checks every field (bounds individually, not their count).
    ///
    /// # Errors
    ///
    /// The first invalid field as [`ConfigError::InvalidField`] (naming it),
    /// or [`ConfigError::InvalidBounds`] for a bad pair of bounds.
    ///
    /// ```
    /// use hotpath::{ConfigError, Guardrails};
    ///
    /// let g = Guardrails::default().with_bounds(vec![(1.0, 0.0)]);
    /// assert_eq!(g.validate(), Err(ConfigError::InvalidBounds { index: 0, min: 1.0, max: 0.0 }));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range(
            "max_delta_per_step",
            self.max_delta_per_step,
            f64::MIN_POSITIVE,
            1.0,
            "a fraction of the range in (0, 1]",
        )?;
        check_range(
            "max_updates_per_second",
            self.max_updates_per_second,
            1.0,
            MAX_UPDATES_PER_SECOND,
            "a rate in [1, 1000] per second",
        )?;
        check_range(
            "max_cumulative_delta_per_minute",
            self.max_cumulative_delta_per_minute,
            f64::MIN_POSITIVE,
            f64::MAX,
            "a finite fraction of the range > 0",
        )?;
        check_range(
            "direction_flip_limit",
            self.direction_flip_limit as f64,
            0.0,
            MAX_FLIP_LIMIT as f64,
            "at most 1000 per minute",
        )?;
        check_range(
            "regression_count_limit",
            self.regression_count_limit as f64,
            1.0,
            f64::MAX,
            "at least 1",
        )?;
        check_range(
            "violation_limit",
            self.violation_limit as f64,
            1.0,
            f64::MAX,
            "at least 1",
        )?;
        for (index, &(min, max)) in self.bounds.iter().flatten().enumerate() {
            if !crate::space::valid_bounds(min, max) {
                return Err(ConfigError::InvalidBounds { index, min, max });
            }
        }
        Ok(())
    }

    /// [`validate`](Self::validate), plus: the bounds (if any) match
    /// `num_params`.
    ///
    /// # Errors
    ///
    /// As [`validate`](Self::validate), and
    /// [`ConfigError::BoundsLength`] if the bounds do not number `num_params`.
    pub fn validate_for(&self, num_params: usize) -> Result<(), ConfigError> {
        self.validate()?;
        match &self.bounds {
            Some(b) if b.len() != num_params => Err(ConfigError::BoundsLength {
                expected: num_params,
                got: b.len(),
            }),
            _ => Ok(()),
        }
    }

    /// Parameter `index`'s range: its bounds' width, or 1 without bounds.
    pub fn range(&self, index: usize) -> f64 {
        self.bounds
            .as_ref()
            .and_then(|b| b.get(index))
            .map_or(1.0, |(min, max)| max - min)
    }

    /// Parameter `index`'s bounds, or `(-∞, +∞)` without bounds.
    pub fn bounds_of(&self, index: usize) -> (f64, f64) {
        self.bounds
            .as_ref()
            .and_then(|b| b.get(index))
            .copied()
            .unwrap_or((f64::NEG_INFINITY, f64::INFINITY))
    }
}

impl Default for Guardrails {
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
            (Guardrails::preset_conservative(), 0.05, 2.0, 500_000, 2),
            (Guardrails::preset_balanced(), 0.10, 10.0, 100_000, 3),
            (Guardrails::preset_aggressive(), 0.20, 20.0, 50_000, 5),
        ];
        for (g, delta, rate, interval, flips) in rows {
            assert_eq!(g.max_delta_per_step, delta);
            assert_eq!(g.max_updates_per_second, rate);
            assert_eq!(g.min_interval_us, interval);
            assert_eq!(g.direction_flip_limit, flips);
            assert_eq!(g.validate(), Ok(()));
        }
    }

    #[test]
    fn validation_rejects_each_bad_field() {
        let bad = [
            Guardrails {
                max_delta_per_step: 0.0,
                ..Default::default()
            },
            Guardrails {
                max_delta_per_step: 1.5,
                ..Default::default()
            },
            Guardrails {
                max_delta_per_step: f64::NAN,
                ..Default::default()
            },
            Guardrails {
                max_updates_per_second: 0.5,
                ..Default::default()
            },
            Guardrails {
                max_updates_per_second: f64::INFINITY,
                ..Default::default()
            },
            Guardrails {
                max_cumulative_delta_per_minute: -1.0,
                ..Default::default()
            },
            Guardrails {
                max_cumulative_delta_per_minute: f64::INFINITY,
                ..Default::default()
            },
            Guardrails {
                regression_count_limit: 0,
                ..Default::default()
            },
            Guardrails {
                violation_limit: 0,
                ..Default::default()
            },
            Guardrails::default().with_bounds(vec![(0.0, f64::NAN)]),
            Guardrails::default().with_bounds(vec![(0.0, 0.0)]),
            Guardrails::default().with_bounds(vec![(f64::MIN, f64::MAX)]),
        ];
        for g in bad {
            assert!(g.validate().is_err(), "{g:?} should be invalid");
        }
    }

    #[test]
    fn bounds_count_must_match() {
        let g = Guardrails::default().with_bounds(vec![(0.0, 1.0)]);
        assert_eq!(
            g.validate_for(2),
            Err(ConfigError::BoundsLength {
                expected: 2,
                got: 1
            })
        );
    }

    #[test]
    fn range_defaults_to_one() {
        let g = Guardrails::default();
        assert_eq!(g.range(3), 1.0);
        assert_eq!(g.bounds_of(0), (f64::NEG_INFINITY, f64::INFINITY));
    }
}
