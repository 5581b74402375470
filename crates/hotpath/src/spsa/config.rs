//! [`SpsaConfig`]: the evaluation windows and gain schedules, their
//! validation and sanitising, and [`SpsaConfigError`].

#[cfg(doc)]
use super::Spsa;
use crate::short_float::ShortFloat;
use crate::telemetry::{Aggregation, AggregationError};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Most digests one evaluation window may hold. The engine sets aside room
/// for a whole window when it starts (so the window never allocates on the
/// hot path); a window of billions of digests would abort the process
/// instead of being refused.
///
/// ```
/// use hotpath::{SpsaConfig, SpsaConfigError, MAX_EVAL_WINDOW_DIGESTS};
///
/// let huge = SpsaConfig { eval_window_digests: MAX_EVAL_WINDOW_DIGESTS + 1, ..SpsaConfig::default() };
/// assert!(matches!(huge.validate(), Err(SpsaConfigError::TooManyEvalWindowDigests { .. })));
/// ```
pub const MAX_EVAL_WINDOW_DIGESTS: usize = 1 << 16;

/// Tuning of the SPSA evaluation windows and gain schedules.
///
/// The time fields are not used by [`Spsa`] itself (it has no clock); they
/// travel with it for the engine that drives it.
///
/// ```
/// use hotpath::SpsaConfig;
///
/// let config = SpsaConfig { eval_window_digests: 8, ..SpsaConfig::default() };
/// assert!(config.validate().is_ok());
/// assert_eq!(config.alpha, 0.602);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpsaConfig {
    /// Minimum digests to collect per perturbation. Must be `>= 1`.
    pub eval_window_digests: usize,
    /// Maximum time to wait for digests, in microseconds. Must be `>= 1`.
    pub eval_window_us: u64,
    /// Settle time after an apply before digests count, in microseconds. Must
    /// be shorter than `eval_window_us`, or no digest could ever count.
    pub settle_time_us: u64,
    /// Learning-rate decay exponent `α` in `a_k = a₀ / (k + 1 + A)^α`.
    /// Finite and `>= 0`.
    pub alpha: f64,
    /// Perturbation decay exponent `γ` in `c_k = c₀ / (k + 1)^γ`. Finite and `>= 0`.
    pub gamma: f64,
    /// Stability constant `A`. Finite and `>= 0`.
    pub stability_a: f64,
    /// How each evaluation window is reduced to one objective value. Optional
    /// in serialised form (defaults to a 10 % trimmed mean).
    #[serde(default)]
    pub aggregation: Aggregation,
}

impl Default for SpsaConfig {
    /// 5 digests, 500 ms window, 10 ms settle, `α = 0.602`, `γ = 0.101`,
    /// `A = 10`, 10 % trimmed mean.
    ///
    /// ```
    /// use hotpath::SpsaConfig;
    ///
    /// let c = SpsaConfig::default();
    /// assert_eq!((c.eval_window_digests, c.eval_window_us, c.settle_time_us), (5, 500_000, 10_000));
    /// assert_eq!((c.alpha, c.gamma, c.stability_a), (0.602, 0.101, 10.0));
    /// ```
    fn default() -> Self {
        Self {
            eval_window_digests: 5,
            eval_window_us: 500_000,
            settle_time_us: 10_000,
            alpha: 0.602,
            gamma: 0.101,
            stability_a: 10.0,
            aggregation: Aggregation::default(),
        }
    }
}

impl SpsaConfig {
    /// Checks every field; reports the first invalid one.
    ///
    /// # Errors
    ///
    /// A [`SpsaConfigError`] naming the first invalid field, in declaration order.
    ///
    /// ```
    /// use hotpath::{SpsaConfig, SpsaConfigError};
    ///
    /// let bad = SpsaConfig { alpha: f64::NAN, ..SpsaConfig::default() };
    /// assert!(matches!(bad.validate(), Err(SpsaConfigError::InvalidExponent { name: "alpha", .. })));
    /// ```
    pub fn validate(&self) -> Result<(), SpsaConfigError> {
        if self.eval_window_digests == 0 {
            return Err(SpsaConfigError::ZeroEvalWindowDigests);
        }
        if self.eval_window_digests > MAX_EVAL_WINDOW_DIGESTS {
            return Err(SpsaConfigError::TooManyEvalWindowDigests {
                value: self.eval_window_digests,
            });
        }
        if self.eval_window_us == 0 {
            return Err(SpsaConfigError::ZeroEvalWindowUs);
        }
        if self.settle_time_us >= self.eval_window_us {
            return Err(SpsaConfigError::SettleNotShorterThanWindow {
                settle_time_us: self.settle_time_us,
                eval_window_us: self.eval_window_us,
            });
        }
        for (name, value) in [("alpha", self.alpha), ("gamma", self.gamma)] {
            if !is_finite_non_negative(value) {
                return Err(SpsaConfigError::InvalidExponent { name, value });
            }
        }
        validate_stability_a(self.stability_a)?;
        self.aggregation.validate()?;
        Ok(())
    }

    /// The nearest valid configuration, used by [`Spsa::new`]:
    ///
    /// | field | invalid when | replaced by |
    /// |---|---|---|
    /// | `eval_window_digests` | `0`, or above [`MAX_EVAL_WINDOW_DIGESTS`] | `1`, or that maximum |
    /// | `eval_window_us` | `0` | default (`500_000`) |
    /// | `settle_time_us` | `>= eval_window_us` | `eval_window_us − 1` |
    /// | `alpha`, `gamma`, `stability_a` | NaN, ±∞ or negative | default |
    /// | `aggregation` | trim outside `[0, 0.5)` | [`Aggregation::sanitized`] |
    ///
    /// A valid configuration is returned unchanged.
    ///
    /// ```
    /// use hotpath::SpsaConfig;
    ///
    /// let bad = SpsaConfig { eval_window_digests: 0, gamma: -1.0, ..SpsaConfig::default() };
    /// let fixed = bad.sanitized();
    /// assert_eq!((fixed.eval_window_digests, fixed.gamma), (1, 0.101));
    /// assert!(fixed.validate().is_ok());
    /// ```
    #[must_use]
    pub fn sanitized(self) -> Self {
        let default = Self::default();
        let real = |value: f64, fallback: f64| {
            if is_finite_non_negative(value) {
                value
            } else {
                fallback
            }
        };
        let eval_window_us = if self.eval_window_us == 0 {
            default.eval_window_us
        } else {
            self.eval_window_us
        };
        Self {
            eval_window_digests: self.eval_window_digests.clamp(1, MAX_EVAL_WINDOW_DIGESTS),
            eval_window_us,
            settle_time_us: self.settle_time_us.min(eval_window_us - 1),
            alpha: real(self.alpha, default.alpha),
            gamma: real(self.gamma, default.gamma),
            stability_a: real(self.stability_a, default.stability_a),
            aggregation: self.aggregation.sanitized(),
        }
    }
}

/// Why a configuration, gain or checkpoint was rejected.
///
/// ```
/// use hotpath::{Spsa, SpsaConfig, SpsaConfigError};
///
/// let err = Spsa::try_new(1, 2, -0.1, 0.1, SpsaConfig::default()).unwrap_err();
/// assert!(matches!(err, SpsaConfigError::InvalidGain { name: "learning_rate", .. }));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Error)]
pub enum SpsaConfigError {
    /// `eval_window_digests` is zero.
    #[error("eval_window_digests must be at least 1")]
    ZeroEvalWindowDigests,
    /// `eval_window_digests` is above [`MAX_EVAL_WINDOW_DIGESTS`].
    #[error("eval_window_digests must be at most {MAX_EVAL_WINDOW_DIGESTS}, got {value}")]
    TooManyEvalWindowDigests {
        /// The rejected value.
        value: usize,
    },
    /// `eval_window_us` is zero.
    #[error("eval_window_us must be at least 1")]
    ZeroEvalWindowUs,
    /// The settle time swallows the whole evaluation window.
    #[error(
        "settle_time_us ({settle_time_us}) must be shorter than eval_window_us ({eval_window_us})"
    )]
    SettleNotShorterThanWindow {
        /// The configured settle time.
        settle_time_us: u64,
        /// The configured window.
        eval_window_us: u64,
    },
    /// `alpha` or `gamma` is NaN, infinite or negative.
    #[error("{name} must be finite and >= 0, got {}", ShortFloat(*value))]
    InvalidExponent {
        /// `"alpha"` or `"gamma"`.
        name: &'static str,
        /// The rejected value.
        value: f64,
    },
    /// The stability constant `A` is NaN, infinite or negative.
    #[error("stability_a must be finite and >= 0, got {}", ShortFloat(*.0))]
    InvalidStabilityA(f64),
    /// A gain `a₀` or `c₀` is NaN, infinite, zero or negative.
    #[error("{name} must be finite and > 0, got {}", ShortFloat(*value))]
    InvalidGain {
        /// `"learning_rate"` or `"perturbation_scale"`.
        name: &'static str,
        /// The rejected value.
        value: f64,
    },
    /// The optimiser would tune no parameters.
    #[error("num_params must be at least 1")]
    NoParameters,
    /// The window aggregation is invalid.
    #[error("invalid aggregation: {0}")]
    Aggregation(#[from] AggregationError),
    /// A checkpoint was taken from an optimiser with a different dimension.
    #[error("checkpoint is for {found} parameters, this optimiser has {expected}")]
    CheckpointMismatch {
        /// This optimiser's `num_params`.
        expected: usize,
        /// The checkpoint's `num_params`.
        found: usize,
    },
}

pub(super) fn is_finite_non_negative(value: f64) -> bool {
    value.is_finite() && value >= 0.0
}

pub(super) fn validate_stability_a(stability_a: f64) -> Result<(), SpsaConfigError> {
    if is_finite_non_negative(stability_a) {
        Ok(())
    } else {
        Err(SpsaConfigError::InvalidStabilityA(stability_a))
    }
}
