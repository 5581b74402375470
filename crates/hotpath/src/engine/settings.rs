//! [`AdaptiveEngineConfig`] and [`CalibrationConfig`]: the engine's settings
//! and their validation.

use super::error::SetupError;
use super::EngineError;
use crate::error::ConfigError;
use crate::guardrails::Guardrails;
use crate::rollback::RollbackPolicy;
use crate::spsa::{SpsaConfig, SpsaConfigError};
use serde::{Deserialize, Serialize};

/// How the engine measures its own gains.
///
/// # Gains: what you set and what is measured
///
/// With calibration (the default: [`AdaptiveEngineConfig::calibration`] is
/// `Some`) the engine measures its gains following Spall's practical rules:
///
/// * **Noise**: `noise_windows` centre windows at the start give `σ`, the
///   standard deviation of one window's aggregate. These windows also measure
///   the baseline for the executor's rollback policy.
/// * **`c₀ = clamp(σ, min_perturbation, perturbation_scale)`** in fractions of
///   the range (also capped just below the step limit): large enough for the
///   difference `y₊ − y₋` to rise above the noise, floored so it stays
///   meaningful when noise is tiny. It sizes the calibration's probes; from
///   then on each pair's size is measured (see *Probe size* on
///   [`AdaptiveEngine`](super::AdaptiveEngine)): probes costing at most
///   `10σ` over the centre given the curvature the pairs measure, no larger
///   than a strong slope needs, within the excursion limit, never below
///   `min_perturbation / 4`.
/// * **`A = 0.1 · expected_iterations`**.
/// * **`a₀ = s₀ · (A + 1)^α / mean|ĝᵢ|`** from `gradient_pairs` gradient
///   estimates at the start, so the first step has size about
///   `target_first_step` (`s₀`) whatever the objective's scale. Those
///   estimates are averaged into the first step, not wasted.
/// * **Floors**: `a_k ≥ gain_floor · a₀/(A + 1)^α` and `c_k ≥ min_perturbation`
///   keep the engine able to follow an optimum that drifts.
/// * **Step control**: each step is bounded per parameter by the
///   calibration's gradient scale (shrink-only: an estimate far above the
///   running RMS is shrunk to it), then multiplied by a per-parameter gain
///   that grows ×1.5 while the parameter's mean gradient (an EWMA of its
///   estimates, weight 0.9 on the past) is larger than 1.3 of its standard
///   errors, falls ×0.5 when that mean turns, and decays ×0.9 while it is
///   not significant (within [1/4, 4]): a flat parameter still far from its
///   optimum speeds up, a steep one already there settles. A commit whose
///   centre objective rose by more than `rejection_sigmas · √2 · σ` is
///   rejected: the engine moves back to the previous centre and halves a
///   multiplier of `a_k` (not below 1/8; each accepted commit regrows it by
///   half). Once the probes have measured the curvature `h` along the
///   perturbations, each parameter's step is at most `|ĝᵢ|/(2h)`, a step
///   that cannot overshoot a quadratic's minimum (`2h` estimates the
///   Hessian's trace). Steps are limited to `trust_radius` (L2, fractions
///   of the range).
/// * **Drift**: if the previous centre, measured again after such a revert
///   (or after probes around the iterate went bad), is also worse than
///   before by more than twice that allowance, the world changed: the gain
///   schedule restarts from `a₀`, and the per-parameter gains and mean
///   gradients and the slope the probes were sized by are forgotten.
/// * **Thrash guard**: steps accumulate in the iterate and commit every few
///   iterations, each parameter only past a significance threshold, so
///   SPSA's random-sign noise near an optimum does not spend the executor's
///   direction-reversal budget; a real knob without a significant mean
///   gradient commits the iterate's average since it last had one
///   (Polyak–Ruppert), and a reversal its mean gradient does not ask for
///   leaves two of the minute's reversals, not one (see
///   [`AdaptiveEngine`](super::AdaptiveEngine), *Thrash guard*).
///
/// Without calibration (`calibration: None`) the fixed gains
/// [`learning_rate`](AdaptiveEngineConfig::learning_rate) and
/// [`perturbation_scale`](AdaptiveEngineConfig::perturbation_scale) are used
/// as `a₀` and `c₀`.
///
/// ```
/// use hotpath::CalibrationConfig;
///
/// let c = CalibrationConfig::default();
/// assert_eq!((c.noise_windows, c.gradient_pairs), (4, 2));
/// assert!(c.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CalibrationConfig {
    /// Centre windows measured at the start to estimate noise (≥ 2).
    pub noise_windows: u32,
    /// Gradient estimates at the start used to size `a₀` (≥ 1).
    pub gradient_pairs: u32,
    /// Desired size of the first step, fraction of the range, in (0, 1].
    pub target_first_step: f64,
    /// Iterations the run is expected to last; sets `A` to 10 % of it (≥ 1).
    pub expected_iterations: u64,
    /// Smallest perturbation `c`, fraction of the range, in (0, 0.5).
    pub min_perturbation: f64,
    /// Floor of the learning rate, as a fraction of `a₀/(A+1)^α`, in [0, 1].
    pub gain_floor: f64,
    /// Largest step (L2 norm, fractions of the ranges), > 0.
    pub trust_radius: f64,
    /// Rise of the centre objective, in noise standard deviations of the
    /// difference, that rejects a step (≥ 0).
    pub rejection_sigmas: f64,
}

impl Default for CalibrationConfig {
    fn default() -> Self {
        Self {
            noise_windows: 4,
            gradient_pairs: 2,
            target_first_step: 0.03,
            expected_iterations: 100,
            min_perturbation: 0.02,
            gain_floor: 0.1,
            trust_radius: 0.1,
            rejection_sigmas: 2.0,
        }
    }
}

impl CalibrationConfig {
    /// Checks every field.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidField`] naming the first field out of its
    /// range (as `calibration.<field>`).
    ///
    /// ```
    /// use hotpath::{CalibrationConfig, ConfigError};
    ///
    /// let one = CalibrationConfig { noise_windows: 1, ..CalibrationConfig::default() };
    /// assert!(matches!(
    ///     one.validate(),
    ///     Err(ConfigError::InvalidField { field: "calibration.noise_windows", .. })
    /// ));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        use crate::error::check_range;
        check_range(
            "calibration.noise_windows",
            self.noise_windows as f64,
            2.0,
            f64::MAX,
            "at least 2",
        )?;
        check_range(
            "calibration.gradient_pairs",
            self.gradient_pairs as f64,
            1.0,
            f64::MAX,
            "at least 1",
        )?;
        check_range(
            "calibration.target_first_step",
            self.target_first_step,
            f64::MIN_POSITIVE,
            1.0,
            "a fraction in (0, 1]",
        )?;
        check_range(
            "calibration.expected_iterations",
            self.expected_iterations as f64,
            1.0,
            f64::MAX,
            "at least 1",
        )?;
        check_range(
            "calibration.min_perturbation",
            self.min_perturbation,
            f64::MIN_POSITIVE,
            0.499,
            "a fraction in (0, 0.5)",
        )?;
        check_range(
            "calibration.gain_floor",
            self.gain_floor,
            0.0,
            1.0,
            "a fraction in [0, 1]",
        )?;
        check_range(
            "calibration.trust_radius",
            self.trust_radius,
            f64::MIN_POSITIVE,
            f64::MAX,
            "a finite number > 0",
        )?;
        check_range(
            "calibration.rejection_sigmas",
            self.rejection_sigmas,
            0.0,
            f64::MAX,
            "a finite number ≥ 0",
        )
    }
}

/// Everything an [`AdaptiveEngine`](super::AdaptiveEngine) needs: the
/// evaluation windows and gain schedule, the executor's guardrails and
/// rollback policy, the perturbation seed and fixed gains, and the
/// calibration, constraint and timeout settings.
///
/// ```
/// use hotpath::AdaptiveEngineConfig;
///
/// let config = AdaptiveEngineConfig::bounded(vec![(1.0, 512.0)]);
/// assert!(config.validate(1).is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdaptiveEngineConfig {
    /// Evaluation windows and gain schedule.
    pub spsa: SpsaConfig,
    /// The executor's guardrails.
    pub guardrails: Guardrails,
    /// The executor's rollback policy.
    pub rollback_policy: RollbackPolicy,
    /// Seed of the perturbation RNG.
    pub seed: u64,
    /// `a₀` without calibration; the fallback if the measured gradient is 0.
    pub learning_rate: f64,
    /// `c₀` without calibration; the largest `c₀` calibration may choose.
    /// Fraction of the range.
    pub perturbation_scale: f64,
    /// Measured gains (default) or `None` for the fixed ones above.
    pub calibration: Option<CalibrationConfig>,
    /// Constraint margin below which the engine rolls back at once (≤ 0).
    pub emergency_margin: f64,
    /// Evaluation timeouts in a row that latch safe mode (≥ 1).
    pub max_eval_timeouts: u32,
    /// Capacity of the executor's audit queue, 2 to
    /// [`MAX_AUDIT_CAPACITY`](crate::MAX_AUDIT_CAPACITY): the engine queues
    /// its first two events (`Started`, `BaselineSet`) before anyone can
    /// drain them.
    pub audit_capacity: usize,
}

impl Default for AdaptiveEngineConfig {
    fn default() -> Self {
        Self {
            spsa: SpsaConfig::default(),
            guardrails: Guardrails::default(),
            rollback_policy: RollbackPolicy::default(),
            seed: 0,
            learning_rate: 0.1,
            perturbation_scale: 0.04,
            calibration: Some(CalibrationConfig::default()),
            emergency_margin: -0.5,
            max_eval_timeouts: 3,
            audit_capacity: crate::DEFAULT_AUDIT_CAPACITY,
        }
    }
}

/// Events an engine queues at construction (`Started`, `BaselineSet`):
/// its audit queue must hold them before anyone drains it.
const FIRST_EVENTS: usize = 2;

impl AdaptiveEngineConfig {
    /// The default configuration with per-parameter bounds.
    ///
    /// ```
    /// use hotpath::AdaptiveEngineConfig;
    ///
    /// let config = AdaptiveEngineConfig::bounded(vec![(1.0, 512.0), (0.5, 50.0)]);
    /// assert_eq!(config.guardrails.bounds, Some(vec![(1.0, 512.0), (0.5, 50.0)]));
    /// assert_eq!(config.calibration, AdaptiveEngineConfig::default().calibration);
    /// ```
    pub fn bounded(bounds: Vec<(f64, f64)>) -> Self {
        Self {
            guardrails: Guardrails::default().with_bounds(bounds),
            ..Self::default()
        }
    }

    /// Checks every setting for a configuration of `num_params` parameters.
    ///
    /// # Errors
    ///
    /// [`EngineError::Config`] for invalid guardrails (or bounds for
    /// another number of parameters), rollback policy or numeric setting;
    /// [`EngineError::Spsa`] for invalid SPSA settings or no parameters.
    ///
    /// ```
    /// use hotpath::{AdaptiveEngineConfig, ConfigError, EngineError, SpsaConfigError};
    ///
    /// let config = AdaptiveEngineConfig::bounded(vec![(1.0, 512.0)]);
    /// assert!(config.validate(1).is_ok());
    /// let two = config.validate(2);
    /// assert!(matches!(two, Err(EngineError::Config(ConfigError::BoundsLength { .. }))));
    /// let any = AdaptiveEngineConfig::default();
    /// assert_eq!(any.validate(0), Err(EngineError::Spsa(SpsaConfigError::NoParameters)));
    /// ```
    pub fn validate(&self, num_params: usize) -> Result<(), EngineError> {
        self.check(num_params).map_err(EngineError::from)
    }

    /// [`validate`](Self::validate), with the error the engine's
    /// constructors keep.
    pub(super) fn check(&self, num_params: usize) -> Result<(), SetupError> {
        use crate::error::check_range;
        self.guardrails.validate_for(num_params)?;
        self.rollback_policy.validate()?;
        self.spsa.validate()?;
        if num_params == 0 {
            return Err(SpsaConfigError::NoParameters.into());
        }
        check_range(
            "learning_rate",
            self.learning_rate,
            f64::MIN_POSITIVE,
            f64::MAX,
            "a finite number > 0",
        )?;
        check_range(
            "perturbation_scale",
            self.perturbation_scale,
            f64::MIN_POSITIVE,
            0.499,
            "a fraction in (0, 0.5)",
        )?;
        check_range(
            "emergency_margin",
            self.emergency_margin,
            f64::MIN,
            0.0,
            "a finite number ≤ 0",
        )?;
        check_range(
            "max_eval_timeouts",
            self.max_eval_timeouts as f64,
            1.0,
            f64::MAX,
            "at least 1",
        )?;
        check_range(
            "audit_capacity",
            self.audit_capacity as f64,
            FIRST_EVENTS as f64,
            crate::MAX_AUDIT_CAPACITY as f64,
            "a capacity in [2, 1048576] events",
        )?;
        if let Some(c) = &self.calibration {
            c.validate()?;
        }
        Ok(())
    }
}
