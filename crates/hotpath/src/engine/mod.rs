//! [`AdaptiveEngine`]: online SPSA tuning that reaches the live configuration
//! only through the [`SafetyExecutor`].
//!
//! # The loop
//!
//! Feed the engine one [`TelemetryDigest`] at a time. [`step`](AdaptiveEngine::step)
//! observes it and applies whatever move the engine decides, so the obvious
//! loop is the correct one:
//!
//! ```
//! use hotpath::{AdaptiveEngine, AdaptiveEngineConfig, ManualClock, ParamVec, TelemetryDigest};
//!
//! let clock = ManualClock::new(0);
//! let config = AdaptiveEngineConfig {
//!     spsa: hotpath::SpsaConfig { eval_window_digests: 1, ..Default::default() },
//!     ..AdaptiveEngineConfig::bounded(vec![(0.0, 1.0), (0.0, 1.0)])
//! };
//! let mut engine = AdaptiveEngine::with_clock(config, ParamVec::from_slice(&[0.5, 0.5]), clock.clone())?;
//! let mut reader = engine.config().reader();
//! for _ in 0..300 {
//!     clock.advance(200_000);
//!     let live = reader.get().params.clone();
//!     let loss = (live[0] - 0.2).powi(2) + (live[1] - 0.7).powi(2); // measured by the service
//!     engine.step(TelemetryDigest::new(200_000, loss, 100))?;
//! }
//! let centre = engine.executor().centre();
//! assert!((centre[0] - 0.2).abs() < 0.05 && (centre[1] - 0.7).abs() < 0.05);
//! # Ok::<(), hotpath::EngineError>(())
//! ```
//!
//! [`observe`](AdaptiveEngine::observe) alone only *decides*: it never changes
//! the live configuration (the engine holds no writer; the executor does).
//! [`apply`](AdaptiveEngine::apply) sends a decision to the executor and tells
//! the engine the result: a refused move is kept and offered again later,
//! never forgotten.
//!
//! # One iteration, exactly
//!
//! Coordinates are normalised: `u = (θ − min)/range` per parameter (range 1
//! and no clamping for unbounded parameters). Every proposal's delta is
//! relative to the live configuration. With centre `θ`, scale `c` and a ±1
//! vector `Δ`:
//!
//! 1. **Centre window** at `θ`: the objective `y_c` is reported to the
//!    executor ([`SafetyExecutor::report_outcome`]) for its rollback policy,
//!    and compared with the previous centre's for step control.
//! 2. `ApplyPlus` to `θ + cΔ`; **plus window** gives `y₊`.
//! 3. `ApplyMinus` to `θ − cΔ` (one move of `2c`, or two through `θ` when `2c`
//!    exceeds the step limit); **minus window** gives `y₋`.
//! 4. `ĝ = (y₊ − y₋)/(2cΔ)`, step `s = −a_k·ĝ`, limited to the trust radius
//!    (L2) and to the step limit per parameter, and the new centre projected
//!    into `[c, 1 − c]` so the next probes stay in bounds. `Update` from
//!    `θ − cΔ` to `θ + s` (through `θ` when that is more than one step).
//!
//! Before offering a move the engine asks the executor whether it would pass
//! ([`SafetyExecutor::would_accept`]). Timing refusals (rate, stabilisation,
//! safe mode, audit backpressure) make it wait (`NoChange`); an `Update` that
//! would reverse a parameter past the flip limit has that parameter's step
//! zeroed, and one that would overspend the movement budget is scaled to the
//! budget left. The engine therefore does not propose moves to be refused.
//!
//! # Telemetry
//!
//! A digest counts towards the open window only if it was measured after the
//! settle time following the last apply (its timestamp, or the clock when it
//! has none) and, when it names a generation, at the live generation. Others
//! are discarded and counted in [`EngineStats`]. A window that does not fill
//! within `eval_window_us` yields `NoChange { EvalTimeout }`; the iteration is
//! abandoned (back to the centre) and `max_eval_timeouts` timeouts in a row
//! latch safe mode (`TelemetryStalled`). A NaN/∞ objective, zero samples or a
//! timestamp earlier than the previous digest's is an [`EngineError`] and
//! changes nothing. Windows are reduced by the configured [`Aggregation`]
//! (default: 10 % trimmed mean weighted by `sample_count`).
//!
//! # Constraints
//!
//! A digest's `constraint_margin` (≥ 0 feasible) below `emergency_margin`
//! (default −0.5) rolls back to the baseline at once. A negative margin above
//! it stops optimisation and moves back, one allowed step at a time, to the
//! last centre whose window saw no negative margin; optimisation resumes when
//! margins are non-negative again.
//!
//! # Gains: what you set and what is measured
//!
//! With [`CalibrationConfig`] (the default) the engine measures its gains
//! following Spall's practical rules:
//!
//! * **Noise**: `noise_windows` centre windows at the start give `σ`, the
//!   standard deviation of one window's aggregate. These windows also measure
//!   the baseline for the executor's rollback policy.
//! * **`c₀ = clamp(σ, min_perturbation, perturbation_scale)`** in fractions of
//!   the range (also capped just below the step limit): large enough for the
//!   difference `y₊ − y₋` to rise above the noise, floored so it stays
//!   meaningful when noise is tiny.
//! * **`A = 0.1 · expected_iterations`**.
//! * **`a₀ = s₀ · (A + 1)^α / mean|ĝᵢ|`** from `gradient_pairs` gradient
//!   estimates at the start, so the first step has size about
//!   `target_first_step` (`s₀`) whatever the objective's scale. Those
//!   estimates are averaged into the first step, not wasted.
//! * **Floors**: `a_k ≥ gain_floor · a₀/(A + 1)^α` and `c_k ≥ min_perturbation`
//!   keep the engine able to follow an optimum that drifts.
//! * **Step control**: a step whose centre objective rose by more than
//!   `rejection_sigmas · √2 · σ` is rejected: the engine moves back to the
//!   previous centre and halves a multiplier of `a_k` (not below 1/8; each
//!   accepted step regrows it by half). Steps are limited to `trust_radius`
//!   (L2, fractions of the range).
//! * **Drift**: if the previous centre, measured again after such a revert,
//!   is also worse than before by more than twice that allowance, the world
//!   changed: the gain schedule restarts from `a₀`.
//! * **Thrash guard**: steps accumulate per parameter and commit only past a
//!   hysteresis threshold, so SPSA's random-sign noise near an optimum does
//!   not spend the executor's direction-reversal budget (see
//!   [`AdaptiveEngine`]'s `plan_update`).
//!
//! Without calibration (`calibration: None`) the seed's fixed gains
//! `learning_rate` and `perturbation_scale` are used as `a₀` and `c₀`.
//!
//! # Audit and determinism
//!
//! Every decision is in the executor's audit trail: the executor's own
//! events, plus [`EngineEvent`]s (calibration, each gradient and step, step
//! rejections, timeouts, constraint changes) carrying the iteration and
//! perturbation id. Randomness is `ChaCha8Rng::seed_from_u64(seed)` and time
//! is the injected clock, so the same seed and digest stream give the same
//! proposals and audit events, byte for byte.

use crate::audit::{AuditDetails, EngineEvent, EvalPhase, RollbackReason};
use crate::clock::{Clock, SystemClock};
use crate::config_atomic::AtomicConfig;
use crate::error::ConfigError;
use crate::executor::{ApplyReceipt, SafetyExecutor};
use crate::guardrails::Guardrails;
use crate::limits::TimeRing;
use crate::proposal::{NoChangeReason, Proposal, ProposalKind};
use crate::rollback::RollbackPolicy;
use crate::safe_mode::{SafeModeExit, SafeModeReason};
use crate::spsa::{Spsa, SpsaCheckpoint, SpsaConfig, SpsaConfigError};
use crate::stats::RunningStats;
use crate::sync::Arc;
use crate::telemetry::{Aggregation, DigestError, TelemetryDigest};
use crate::violation::Violation;
use crate::ParamVec;
use serde::{Deserialize, Serialize};

/// Moves are planned to this fraction of the step limit, so rounding in
/// `live + delta` can never push one over.
const STEP_MARGIN: f64 = 0.999;
const MINUTE_US: u64 = 60_000_000;
/// Step control never shrinks steps below this fraction of the schedule:
/// single noisy windows reject good steps too, and compounding halvings
/// would freeze the optimiser.
const MIN_GAIN_SCALE: f64 = 0.125;
/// A parameter's carried movement must reach this many typical steps
/// (doubled per reversal in the last minute) before it is committed.
const HYSTERESIS: f64 = 2.0;
/// Growth of the gain multiplier per accepted step, back up to 1.
const GAIN_REGROWTH: f64 = 1.5;

/// How the engine measures its own gains. See the [module docs](self).
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

/// Everything an [`AdaptiveEngine`] needs. The seed's fields plus the
/// rollback policy, calibration, constraint and timeout settings.
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
    /// Capacity of the executor's audit queue.
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

impl AdaptiveEngineConfig {
    /// The default configuration with per-parameter bounds.
    pub fn bounded(bounds: Vec<(f64, f64)>) -> Self {
        Self {
            guardrails: Guardrails::default().with_bounds(bounds),
            ..Self::default()
        }
    }

    /// Checks every setting for a configuration of `num_params` parameters.
    pub fn validate(&self, num_params: usize) -> Result<(), EngineError> {
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
        if let Some(c) = &self.calibration {
            c.validate()?;
        }
        Ok(())
    }
}

/// Why the engine refused a digest or could not be built. A refused digest
/// changes nothing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The digest is malformed (NaN/∞ objective, zero samples, …).
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// The digest's timestamp is earlier than the previous one's.
    #[error("digest timestamp {got} µs is earlier than the previous digest's {previous} µs")]
    TimestampWentBackwards {
        /// The previous digest's time.
        previous: u64,
        /// This digest's time.
        got: u64,
    },
    /// Executor settings are invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// SPSA settings are invalid.
    #[error(transparent)]
    Spsa(#[from] SpsaConfigError),
}

/// Counters for monitoring the engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineStats {
    /// Digests observed (valid ones).
    pub digests: u64,
    /// Digests counted into a window.
    pub used: u64,
    /// Discarded: inside the settle time after an apply.
    pub discarded_settling: u64,
    /// Discarded: measured at another generation.
    pub discarded_stale: u64,
    /// Discarded: a move was pending, so the window was not open.
    pub discarded_pending: u64,
    /// Evaluation windows that timed out.
    pub eval_timeouts: u64,
    /// Gradient estimates completed.
    pub gradients: u64,
    /// Steps rejected by step control.
    pub steps_rejected: u64,
    /// Moves the executor refused when applied.
    pub refused: u64,
}

/// Version of the [`EngineState`] layout; a restore refuses any other.
pub const ENGINE_STATE_VERSION: u32 = 1;

/// What the engine has learnt, for persistence and restart: the SPSA
/// iteration and RNG position, and the calibrated gains. Export with
/// [`AdaptiveEngine::export_state`], restore with
/// [`AdaptiveEngine::restore_state`]. An in-flight iteration is not kept:
/// the restored engine starts from a centre window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineState {
    /// Layout version ([`ENGINE_STATE_VERSION`]).
    pub version: u32,
    /// SPSA iteration, RNG stream position and gains.
    pub spsa: SpsaCheckpoint,
    /// `true` once calibration finished.
    pub calibrated: bool,
    /// Measured noise (standard deviation of a window's aggregate).
    pub noise_sd: f64,
    /// `a₀` as calibrated.
    pub calibrated_gain: f64,
    /// Step control's multiplier of `a_k`.
    pub gain_scale: f64,
    /// The last centre known to satisfy the constraints.
    pub last_feasible: ParamVec,
}

/// What [`AdaptiveEngine::step`] did with one digest.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutcome {
    /// The engine's decision.
    pub proposal: Proposal,
    /// The executor's verdict, if the decision was a move.
    pub applied: Option<Result<ApplyReceipt, Violation>>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Calibrating { done: u32 },
    Centre,
    Plus,
    Minus,
}

impl Phase {
    fn eval_phase(self) -> EvalPhase {
        match self {
            Phase::Calibrating { .. } => EvalPhase::Calibrating,
            Phase::Centre => EvalPhase::Centre,
            Phase::Plus => EvalPhase::Plus,
            Phase::Minus => EvalPhase::Minus,
        }
    }
}

/// A move the engine has decided on and not yet completed.
#[derive(Debug, Clone)]
struct Plan {
    kind: ProposalKind,
    correlation_id: u64,
    target: ParamVec,
    gradient: ParamVec,
    then: Phase,
}

/// The proposal last offered by `observe`, to recognise it in `apply`.
#[derive(Debug, Clone)]
struct Offer {
    proposal: Proposal,
    completes_plan: bool,
}

/// Online SPSA tuning governed by a [`SafetyExecutor`]. See the
/// [module docs](self) for the loop, the geometry, telemetry rules and gains.
pub struct AdaptiveEngine<C = SystemClock> {
    config: AdaptiveEngineConfig,
    misconfiguration: Option<EngineError>,
    spsa: Spsa,
    executor: SafetyExecutor<C>,
    ranges: Box<[f64]>,
    lower: Box<[f64]>,
    upper: Box<[f64]>,
    phase: Phase,
    pending: Option<Plan>,
    offered: Option<Offer>,
    /// Centre and calibration windows (SPSA keeps the probe windows).
    window: Vec<(f64, u64)>,
    window_opened_us: u64,
    window_infeasible: bool,
    seen_centre_generation: u64,
    calibrated: bool,
    noise: RunningStats,
    noise_sd: f64,
    calibration_gradient: ParamVec,
    calibration_magnitude: f64,
    calibration_pairs: u32,
    /// The centre before the last step, and its objective.
    previous: Option<(ParamVec, f64)>,
    /// After a revert: the objective the previous centre had.
    reverted_from: Option<f64>,
    /// `a₀` as calibrated, for restarts.
    calibrated_gain: f64,
    /// Multiplier of `a_k` in (0, 1]: halved by a rejected step, regrown by
    /// accepted ones.
    gain_scale: f64,
    /// Per parameter: planned movement not yet committed (fraction of the
    /// range), held back by the reversal hysteresis or the guardrails.
    carry: ParamVec,
    /// Per parameter: typical recent step size (EWMA of |step|).
    typical_step: ParamVec,
    /// Per parameter: direction of the last committed move (−1, 0, +1).
    direction: ParamVec,
    /// Per parameter: times of the engine's own committed reversals, to
    /// stay inside the thrash guard with one reversal kept for reverts.
    reversals: Box<[TimeRing]>,
    /// Objective of the current centre, once measured.
    centre_objective: Option<f64>,
    last_step_iteration: u64,
    last_feasible: ParamVec,
    infeasible: bool,
    consecutive_timeouts: u32,
    last_digest_us: Option<u64>,
    stats: EngineStats,
}

impl AdaptiveEngine<SystemClock> {
    /// The seed's constructor: a new [`AtomicConfig`] holding `initial`, an
    /// executor with the system clock, and the baseline set to `initial`.
    ///
    /// Never panics. Invalid settings give an engine whose executor is
    /// latched in safe mode (`Misconfigured`), so it never changes anything;
    /// [`misconfiguration`](Self::misconfiguration) tells why. Use
    /// [`with_clock`](AdaptiveEngine::with_clock) to get the error instead.
    pub fn new(config: AdaptiveEngineConfig, initial: ParamVec) -> Self {
        match Self::with_clock(config.clone(), initial.clone(), SystemClock::new()) {
            Ok(engine) => engine,
            Err(error) => {
                let executor_error = match &error {
                    EngineError::Config(e) => *e,
                    _ => ConfigError::InvalidEngineConfig,
                };
                let atomic = Arc::new(AtomicConfig::new(initial));
                let executor = SafetyExecutor::failed_closed(atomic, executor_error);
                let mut engine = Self::assemble(config, executor);
                engine.misconfiguration = Some(error);
                engine
            }
        }
    }
}

impl<C: Clock> AdaptiveEngine<C> {
    /// An engine over a new [`AtomicConfig`] holding `initial`, with an
    /// executor on `clock`; the baseline is set to `initial`.
    pub fn with_clock(
        config: AdaptiveEngineConfig,
        initial: ParamVec,
        clock: C,
    ) -> Result<Self, EngineError> {
        config.validate(initial.len())?;
        let atomic = Arc::new(AtomicConfig::new(initial));
        let executor = SafetyExecutor::builder(atomic)
            .guardrails(config.guardrails.clone())
            .rollback_policy(config.rollback_policy)
            .audit_capacity(config.audit_capacity)
            .clock(clock)
            .build()?;
        Self::with_executor(config, executor)
    }

    /// An engine driving an existing executor (its guardrails and rollback
    /// policy are used; `config.guardrails` and `config.rollback_policy` are
    /// ignored). Sets the baseline to the executor's centre unless it has
    /// one (a restored executor keeps its baseline).
    pub fn with_executor(
        mut config: AdaptiveEngineConfig,
        executor: SafetyExecutor<C>,
    ) -> Result<Self, EngineError> {
        config.guardrails = executor.guardrails().clone();
        config.rollback_policy = *executor.rollback_policy();
        config.validate(executor.centre().len())?;
        let mut engine = Self::assemble(config, executor);
        if engine.executor.baseline().is_none() {
            engine
                .executor
                .set_baseline()
                .map_err(|_| ConfigError::InvalidEngineConfig)?;
        }
        Ok(engine)
    }

    /// What the engine has learnt (see [`EngineState`]).
    pub fn export_state(&self) -> EngineState {
        EngineState {
            version: ENGINE_STATE_VERSION,
            spsa: self.spsa.checkpoint(),
            calibrated: self.calibrated,
            noise_sd: self.noise_sd,
            calibrated_gain: self.calibrated_gain,
            gain_scale: self.gain_scale,
            last_feasible: self.last_feasible.clone(),
        }
    }

    /// Resumes from an exported [`EngineState`]: the next perturbations are
    /// the ones the exporting engine would have drawn, with its gains. Any
    /// iteration in flight here is abandoned; the engine starts with a
    /// centre window. On error nothing changes.
    ///
    /// ```
    /// use hotpath::{AdaptiveEngine, AdaptiveEngineConfig, ManualClock, ParamVec, TelemetryDigest};
    ///
    /// let config = AdaptiveEngineConfig::bounded(vec![(0.0, 1.0)]);
    /// let clock = ManualClock::new(0);
    /// let mut a = AdaptiveEngine::with_clock(config.clone(), ParamVec::from_slice(&[0.5]), clock.clone())?;
    /// for i in 0..40 {
    ///     clock.advance(100_000);
    ///     a.step(TelemetryDigest::new(100_000, 1.0 + 0.01 * (i % 3) as f64, 10))?;
    /// }
    /// let saved = a.export_state();
    /// let mut b = AdaptiveEngine::with_clock(config, ParamVec::from_slice(&[0.5]), ManualClock::new(0))?;
    /// b.restore_state(saved.clone())?;
    /// assert_eq!(b.export_state(), saved);
    /// # Ok::<(), hotpath::EngineError>(())
    /// ```
    pub fn restore_state(&mut self, state: EngineState) -> Result<(), EngineError> {
        let n = self.ranges.len();
        let finite = [state.noise_sd, state.calibrated_gain, state.gain_scale];
        if state.version != ENGINE_STATE_VERSION
            || state.last_feasible.len() != n
            || !state.last_feasible.is_finite()
            || finite.iter().any(|v| !(v.is_finite() && *v >= 0.0))
        {
            return Err(ConfigError::InvalidState {
                reason: "engine state has another version, size or non-finite values",
            }
            .into());
        }
        self.spsa.restore(&state.spsa)?;
        self.calibrated = state.calibrated;
        self.noise_sd = state.noise_sd;
        self.calibrated_gain = state.calibrated_gain;
        self.gain_scale = state.gain_scale.clamp(MIN_GAIN_SCALE, 1.0);
        self.last_feasible = state.last_feasible;
        self.pending = None;
        self.offered = None;
        self.previous = None;
        self.reverted_from = None;
        self.centre_objective = None;
        self.carry.fill(0.0);
        let phase = if self.calibrated {
            Phase::Centre
        } else {
            Phase::Calibrating { done: 0 }
        };
        self.enter(phase);
        Ok(())
    }

    fn assemble(config: AdaptiveEngineConfig, mut executor: SafetyExecutor<C>) -> Self {
        let now = executor.now_us();
        let n = executor.centre().len();
        let flip_limit = executor.guardrails().direction_flip_limit as usize;
        let g = executor.guardrails();
        let ranges = (0..n).map(|i| g.range(i)).collect();
        let lower = (0..n).map(|i| g.bounds_of(i).0).collect();
        let upper = (0..n).map(|i| g.bounds_of(i).1).collect();
        let mut spsa = Spsa::new(
            config.seed,
            n,
            config.learning_rate,
            config.perturbation_scale,
            config.spsa.clone(),
        );
        if let Some(cal) = &config.calibration {
            // `A` is known up front; the gains are measured later.
            let _ = spsa.set_stability_a(0.1 * cal.expected_iterations as f64);
        }
        let phase = if config.calibration.is_some() {
            Phase::Calibrating { done: 0 }
        } else {
            Phase::Centre
        };
        let centre = ParamVec::from_slice(executor.centre());
        Self {
            window: Vec::with_capacity(config.spsa.eval_window_digests.max(1)),
            calibrated: config.calibration.is_none(),
            config,
            misconfiguration: None,
            spsa,
            ranges,
            lower,
            upper,
            phase,
            pending: None,
            offered: None,
            window_opened_us: now,
            window_infeasible: false,
            seen_centre_generation: executor.centre_generation(),
            noise: RunningStats::default(),
            noise_sd: 0.0,
            calibration_gradient: ParamVec::zeros(n),
            calibration_magnitude: 0.0,
            calibration_pairs: 0,
            previous: None,
            reverted_from: None,
            calibrated_gain: 0.0,
            gain_scale: 1.0,
            carry: ParamVec::zeros(n),
            typical_step: ParamVec::zeros(n),
            direction: ParamVec::zeros(n),
            reversals: (0..n).map(|_| TimeRing::new(flip_limit)).collect(),
            centre_objective: None,
            last_step_iteration: 0,
            last_feasible: centre,
            infeasible: false,
            consecutive_timeouts: 0,
            last_digest_us: None,
            stats: EngineStats::default(),
            executor,
        }
    }

    /// Takes one digest and decides the next move. Never changes the live
    /// configuration: pass a returned move to [`apply`](Self::apply), or use
    /// [`step`](Self::step). A malformed digest is an error and changes
    /// nothing.
    pub fn observe(&mut self, digest: TelemetryDigest) -> Result<Proposal, EngineError> {
        digest.validate()?;
        let now = self.executor.now_us();
        let at = digest.timestamp_us.unwrap_or(now);
        if let Some(previous) = self.last_digest_us {
            if at < previous {
                return Err(EngineError::TimestampWentBackwards { previous, got: at });
            }
        }
        self.last_digest_us = Some(at);
        self.stats.digests += 1;
        self.resync_if_moved(at);
        if self.executor.misconfiguration().is_some() {
            return Ok(no_change(NoChangeReason::SafeMode));
        }

        if let Some(margin) = digest.constraint_margin {
            if let Some(decision) = self.on_margin(margin, at) {
                return Ok(decision);
            }
        }

        if self.pending.is_some() {
            self.stats.discarded_pending += 1;
            return Ok(self.offer(at));
        }
        if at
            < self
                .window_opened_us
                .saturating_add(self.config.spsa.settle_time_us)
        {
            self.stats.discarded_settling += 1;
            return Ok(self.timeout_or(at, NoChangeReason::Settling));
        }
        if digest
            .generation
            .is_some_and(|g| g != self.executor.generation())
        {
            self.stats.discarded_stale += 1;
            return Ok(self.timeout_or(at, NoChangeReason::CollectingSamples));
        }

        self.stats.used += 1;
        let sample = (digest.objective_value, digest.sample_count);
        let full = match self.phase {
            Phase::Calibrating { .. } | Phase::Centre => {
                self.window.push(sample);
                self.window.len() >= self.config.spsa.eval_window_digests
            }
            Phase::Plus | Phase::Minus => {
                self.spsa.record_weighted(sample.0, sample.1);
                self.spsa.has_enough_samples()
            }
        };
        if !full {
            return Ok(self.timeout_or(at, NoChangeReason::CollectingSamples));
        }
        self.consecutive_timeouts = 0;
        self.complete_window(at);
        Ok(self.offer(at))
    }

    /// Sends a move to the executor and updates the engine with the result.
    /// The move the engine last offered advances its plan; a refused one is
    /// offered again later. Any other proposal is judged by the executor
    /// like any other, and if it changes the centre the engine abandons its
    /// iteration and restarts from the new centre.
    pub fn apply(&mut self, proposal: Proposal) -> Result<ApplyReceipt, Violation> {
        let offered = self.offered.take();
        let ours = offered.as_ref().is_some_and(|o| o.proposal == proposal);
        let centre_before = ParamVec::from_slice(self.executor.centre());
        let result = self.executor.apply(proposal);
        match &result {
            Ok(receipt) if ours => {
                if receipt.kind == ProposalKind::Update {
                    self.committed(&centre_before, receipt.timestamp_us);
                }
                self.window_opened_us = receipt.timestamp_us;
                if offered.is_some_and(|o| o.completes_plan) {
                    if let Some(plan) = self.pending.take() {
                        self.enter(plan.then);
                    }
                }
                self.seen_centre_generation = self.executor.centre_generation();
            }
            Ok(receipt) => {
                let at = receipt.timestamp_us;
                self.resync_if_moved(at);
            }
            Err(_) => self.stats.refused += 1,
        }
        result
    }

    /// [`observe`](Self::observe), then [`apply`](Self::apply) if the engine
    /// decided to move. The control loop in one call.
    pub fn step(&mut self, digest: TelemetryDigest) -> Result<StepOutcome, EngineError> {
        let proposal = self.observe(digest)?;
        let applied = match proposal {
            Proposal::NoChange { .. } => None,
            _ => Some(self.apply(proposal.clone())),
        };
        Ok(StepOutcome { proposal, applied })
    }

    /// The executor (for `freeze`, `resume`, `rollback`, statistics).
    pub fn executor(&self) -> &SafetyExecutor<C> {
        &self.executor
    }

    /// The executor, mutably. Changes made through it (a manual rollback,
    /// say) are noticed by the engine on the next digest.
    pub fn executor_mut(&mut self) -> &mut SafetyExecutor<C> {
        &mut self.executor
    }

    /// The live configuration, for readers.
    pub fn config(&self) -> &Arc<AtomicConfig> {
        self.executor.config()
    }

    /// The settings in force.
    pub fn settings(&self) -> &AdaptiveEngineConfig {
        &self.config
    }

    /// The SPSA core (iteration, gains, checkpoint).
    pub fn spsa(&self) -> &Spsa {
        &self.spsa
    }

    /// Monitoring counters.
    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// Measured noise (standard deviation of one window's aggregate), once
    /// calibrated.
    pub fn noise_sd(&self) -> Option<f64> {
        (self.calibrated && self.config.calibration.is_some()).then_some(self.noise_sd)
    }

    /// Why [`new`](AdaptiveEngine::new) failed closed, if it did.
    pub fn misconfiguration(&self) -> Option<&EngineError> {
        self.misconfiguration.as_ref()
    }

    /// Starts measuring `phase` at the current point.
    fn enter(&mut self, phase: Phase) {
        self.phase = phase;
        self.window.clear();
        self.window_infeasible = false;
    }

    /// Restarts from the executor's centre if it moved behind the engine's
    /// back (automatic or manual rollback, a foreign proposal).
    fn resync_if_moved(&mut self, at: u64) {
        let generation = self.executor.centre_generation();
        if generation == self.seen_centre_generation {
            return;
        }
        self.seen_centre_generation = generation;
        self.spsa.abort_iteration();
        self.pending = None;
        self.offered = None;
        self.previous = None;
        self.reverted_from = None;
        self.carry.fill(0.0);
        self.direction.fill(0.0);
        self.centre_objective = None;
        self.window_opened_us = at;
        let phase = if self.calibrated {
            Phase::Centre
        } else {
            Phase::Calibrating { done: 0 }
        };
        self.noise = RunningStats::default();
        self.enter(phase);
    }

    /// Handles a constraint margin; `Some` when it decides the outcome.
    fn on_margin(&mut self, margin: f64, at: u64) -> Option<Proposal> {
        if margin < self.config.emergency_margin {
            self.note(EngineEvent::ConstraintViolated {
                margin,
                emergency: true,
            });
            match self
                .executor
                .rollback_for(RollbackReason::ConstraintEmergency)
            {
                Ok(_) => self.resync_if_moved(at),
                Err(violation) => {
                    tracing::error!(%violation, margin, "emergency rollback refused");
                }
            }
            return Some(no_change(NoChangeReason::ConstraintViolated));
        }
        if margin < 0.0 {
            self.window_infeasible = true;
            if !self.infeasible {
                self.infeasible = true;
                self.note(EngineEvent::ConstraintViolated {
                    margin,
                    emergency: false,
                });
                self.spsa.abort_iteration();
                self.plan_toward_feasible();
                return Some(self.offer(at));
            }
        } else if self.infeasible {
            self.infeasible = false;
            self.note(EngineEvent::ConstraintCleared);
        }
        None
    }

    /// Plans one allowed step back toward the last feasible centre (or back
    /// to the centre from a probe), then a centre window.
    fn plan_toward_feasible(&mut self) {
        let centre = self.executor.centre();
        let limit = STEP_MARGIN * self.executor.guardrails().max_delta_per_step;
        let target: ParamVec = centre
            .iter()
            .zip(self.last_feasible.iter())
            .zip(self.ranges.iter())
            .map(|((&c, &f), &r)| c + (f - c).clamp(-limit * r, limit * r))
            .collect();
        let kind = if target.bit_eq(centre) {
            ProposalKind::ApplyMinus
        } else {
            ProposalKind::Update
        };
        self.pending = Some(Plan {
            kind,
            correlation_id: self.spsa.iteration(),
            gradient: ParamVec::zeros(target.len()),
            target,
            then: Phase::Centre,
        });
    }

    /// `NoChange { EvalTimeout }` if the open window has run out of time,
    /// otherwise `NoChange { reason }`.
    fn timeout_or(&mut self, at: u64, reason: NoChangeReason) -> Proposal {
        let deadline = self
            .window_opened_us
            .saturating_add(self.config.spsa.settle_time_us)
            .saturating_add(self.config.spsa.eval_window_us);
        if at <= deadline {
            return no_change(reason);
        }
        self.stats.eval_timeouts += 1;
        self.consecutive_timeouts += 1;
        let phase = self.phase;
        self.note(EngineEvent::EvalTimeout {
            phase: phase.eval_phase(),
            consecutive: self.consecutive_timeouts,
        });
        if self.consecutive_timeouts >= self.config.max_eval_timeouts {
            self.executor
                .latch_external(SafeModeReason::TelemetryStalled, SafeModeExit::Manual);
        }
        match phase {
            Phase::Plus | Phase::Minus => {
                self.spsa.abort_iteration();
                self.pending = Some(self.return_to_centre());
            }
            Phase::Calibrating { .. } | Phase::Centre => {
                self.window_opened_us = at;
                self.enter(phase);
            }
        }
        no_change(NoChangeReason::EvalTimeout)
    }

    fn return_to_centre(&self) -> Plan {
        Plan {
            kind: ProposalKind::ApplyMinus,
            correlation_id: self.spsa.iteration(),
            target: ParamVec::from_slice(self.executor.centre()),
            gradient: ParamVec::zeros(self.ranges.len()),
            then: Phase::Centre,
        }
    }

    /// A window is full: aggregate it and plan what comes next.
    fn complete_window(&mut self, at: u64) {
        match self.phase {
            Phase::Calibrating { done } => {
                let Some(y) = self.aggregate_window() else {
                    return;
                };
                self.report_centre(y, at);
                self.noise.add(y);
                let windows = self
                    .config
                    .calibration
                    .as_ref()
                    .map_or(0, |c| c.noise_windows);
                if done + 1 < windows {
                    self.window_opened_us = at;
                    self.enter(Phase::Calibrating { done: done + 1 });
                } else {
                    self.noise_sd = self.noise.sd();
                    self.centre_objective = Some(self.noise.mean());
                    let c0 = self.calibrated_perturbation();
                    let (a0, _) = self.spsa.gains();
                    let _ = self.spsa.set_gains(a0, c0);
                    self.plan_probe();
                }
            }
            Phase::Centre => {
                let Some(y) = self.aggregate_window() else {
                    return;
                };
                if !self.window_infeasible {
                    self.last_feasible.copy_from(self.executor.centre());
                }
                if self.report_centre(y, at) {
                    return;
                }
                if self.infeasible {
                    self.plan_toward_feasible();
                    return;
                }
                self.detect_drift(y);
                if self.step_rejected(y) {
                    return;
                }
                self.centre_objective = Some(y);
                self.plan_probe();
            }
            Phase::Plus => {
                self.spsa.complete_eval_window();
                self.plan_minus();
            }
            Phase::Minus => {
                let y_plus = self.spsa.y_plus().unwrap_or(f64::NAN);
                let perturbation_id = self.current_perturbation_id();
                let Some((gradient, update)) = self.spsa.complete_eval_window() else {
                    return;
                };
                let y_minus = self.spsa.y_minus().unwrap_or(y_plus);
                self.stats.gradients += 1;
                if !self.calibrated {
                    self.calibration_step(&gradient, y_plus, y_minus, perturbation_id);
                } else {
                    self.plan_update(update, gradient, y_plus, y_minus, perturbation_id);
                }
            }
        }
    }

    fn current_perturbation_id(&self) -> u64 {
        match self.spsa.state() {
            crate::spsa::SpsaState::WaitingPlus {
                perturbation_id, ..
            }
            | crate::spsa::SpsaState::WaitingMinus {
                perturbation_id, ..
            } => *perturbation_id,
            crate::spsa::SpsaState::Ready => 0,
        }
    }

    fn aggregate_window(&mut self) -> Option<f64> {
        let aggregation: Aggregation = self.config.spsa.aggregation;
        aggregation.aggregate(&mut self.window)
    }

    /// Reports the centre's objective to the executor; `true` if that rolled
    /// back (the engine has resynchronised).
    fn report_centre(&mut self, y: f64, at: u64) -> bool {
        let generation = self.executor.centre_generation();
        if let Ok(receipt) = self.executor.report_outcome(generation, y) {
            if receipt.rollback.is_some() {
                self.resync_if_moved(at);
                return true;
            }
        }
        false
    }

    /// `c₀` from the measured noise, within the floor and caps.
    fn calibrated_perturbation(&self) -> f64 {
        let cal = self.config.calibration.clone().unwrap_or_default();
        let cap = self
            .config
            .perturbation_scale
            .min(STEP_MARGIN * self.executor.guardrails().max_delta_per_step);
        let floor = cal.min_perturbation.min(cap);
        self.noise_sd.clamp(floor, cap)
    }

    /// Step control: `true` if the last step raised the centre objective
    /// by more than the noise explains. Such a step is rejected: the engine
    /// moves back to the previous centre (as far as the thrash guard allows)
    /// and halves the gain multiplier (not below 1/8); an accepted step
    /// regrows it by half, up to 1.
    fn step_rejected(&mut self, y: f64) -> bool {
        let (Some(cal), Some((previous_centre, previous))) =
            (&self.config.calibration, self.previous.take())
        else {
            return false;
        };
        let allowance =
            cal.rejection_sigmas * std::f64::consts::SQRT_2 * self.noise_sd.max(1e-12 * y.abs());
        if y <= previous + allowance {
            self.gain_scale = (self.gain_scale * GAIN_REGROWTH).min(1.0);
            return false;
        }
        self.stats.steps_rejected += 1;
        self.gain_scale = (self.gain_scale * 0.5).max(MIN_GAIN_SCALE);
        self.note(EngineEvent::StepRejected {
            iteration: self.last_step_iteration,
            objective: y,
            previous,
            gain_scale: self.gain_scale,
        });
        self.centre_objective = Some(previous);
        self.reverted_from = Some(previous);
        self.pending = Some(Plan {
            kind: ProposalKind::Update,
            correlation_id: self.last_step_iteration,
            gradient: ParamVec::zeros(previous_centre.len()),
            target: previous_centre,
            then: Phase::Centre,
        });
        true
    }

    /// After a revert, the previous centre is measured again. If it got
    /// worse by more than the noise allows too, the world changed rather
    /// than the step being bad: the gain schedule restarts from `a₀` so the
    /// engine can follow the moved optimum quickly.
    fn detect_drift(&mut self, y: f64) {
        let (Some(cal), Some(expected)) = (&self.config.calibration, self.reverted_from.take())
        else {
            return;
        };
        // Twice the step-control allowance: restarting on noise would undo
        // the schedule's convergence.
        let allowance = 2.0
            * cal.rejection_sigmas
            * std::f64::consts::SQRT_2
            * self.noise_sd.max(1e-12 * y.abs());
        if y <= expected + allowance || self.calibrated_gain <= 0.0 {
            return;
        }
        let spsa = self.spsa.config().clone();
        let k = self.spsa.iteration() as f64;
        let a0 = self.calibrated_gain
            * ((k + 1.0 + spsa.stability_a) / (1.0 + spsa.stability_a)).powf(spsa.alpha);
        let (_, c0) = self.spsa.gains();
        let _ = self.spsa.set_gains(a0, c0);
        self.gain_scale = 1.0;
        self.note(EngineEvent::DriftDetected {
            objective: y,
            previous: expected,
            learning_rate: a0,
        });
    }

    fn floors(&self, a0: f64) -> (f64, f64) {
        let Some(cal) = &self.config.calibration else {
            return (0.0, 0.0);
        };
        let a = self.spsa.config();
        let a_floor = cal.gain_floor * a0 / (a.stability_a + 1.0).powf(a.alpha);
        let (_, c0) = self.spsa.gains();
        (a_floor, cal.min_perturbation.min(c0))
    }

    /// Plans `ApplyPlus` to `θ + cΔ`, first moving the centre inside the
    /// bounds by `c` if it is closer than that to one.
    fn plan_probe(&mut self) {
        let c = self.spsa.perturbation_scale(self.spsa.iteration());
        let centre = ParamVec::from_slice(self.executor.centre());
        let inside = self.project(&centre, c);
        if !inside.bit_eq(&centre) {
            self.pending = Some(Plan {
                kind: ProposalKind::Update,
                correlation_id: self.spsa.iteration(),
                gradient: ParamVec::zeros(centre.len()),
                target: inside,
                then: Phase::Centre,
            });
            return;
        }
        let delta = self.spsa.generate_perturbation();
        let c = self.spsa.in_flight_scale().unwrap_or(c);
        let target = self.within_bounds(
            centre
                .iter()
                .zip(delta.iter())
                .zip(self.ranges.iter())
                .map(|((&t, &d), &r)| t + c * d * r),
        );
        self.pending = Some(Plan {
            kind: ProposalKind::ApplyPlus,
            correlation_id: self.current_perturbation_id(),
            target,
            gradient: ParamVec::zeros(centre.len()),
            then: Phase::Plus,
        });
    }

    /// Plans `ApplyMinus` to `θ − cΔ`.
    fn plan_minus(&mut self) {
        let crate::spsa::SpsaState::WaitingMinus {
            delta,
            perturbation_id,
            ..
        } = self.spsa.state()
        else {
            return;
        };
        let c = self.spsa.in_flight_scale().unwrap_or(0.0);
        let target = self.within_bounds(
            self.executor
                .centre()
                .iter()
                .zip(delta.iter())
                .zip(self.ranges.iter())
                .map(|((&t, &d), &r)| t - c * d * r),
        );
        self.pending = Some(Plan {
            kind: ProposalKind::ApplyMinus,
            correlation_id: *perturbation_id,
            target,
            gradient: ParamVec::zeros(delta.len()),
            then: Phase::Minus,
        });
    }

    /// Accumulates a calibration gradient; after the last one sets the gains
    /// and plans the first step from their average.
    fn calibration_step(
        &mut self,
        gradient: &[f64],
        y_plus: f64,
        y_minus: f64,
        perturbation_id: u64,
    ) {
        let Some(cal) = self.config.calibration.clone() else {
            return;
        };
        for (sum, g) in self.calibration_gradient.iter_mut().zip(gradient) {
            *sum += g;
        }
        self.calibration_magnitude +=
            gradient.iter().map(|g| g.abs()).sum::<f64>() / gradient.len().max(1) as f64;
        self.calibration_pairs += 1;
        if self.calibration_pairs < cal.gradient_pairs {
            self.plan_probe();
            return;
        }
        let pairs = self.calibration_pairs as f64;
        let mean_gradient = self.calibration_magnitude / pairs;
        let spsa = self.spsa.config().clone();
        let s0 = cal
            .target_first_step
            .min(STEP_MARGIN * self.executor.guardrails().max_delta_per_step);
        let a0 = if mean_gradient > 1e-12 {
            s0 * (spsa.stability_a + 1.0).powf(spsa.alpha) / mean_gradient
        } else {
            self.config.learning_rate
        };
        let (_, c0) = self.spsa.gains();
        let _ = self.spsa.set_gains(a0, c0);
        let (a_floor, c_floor) = self.floors(a0);
        let _ = self.spsa.set_gain_floors(a_floor, c_floor);
        self.calibrated = true;
        self.calibrated_gain = a0;
        self.note(EngineEvent::Calibrated {
            noise_sd: self.noise_sd,
            mean_gradient,
            perturbation_scale: c0,
            learning_rate: a0,
            stability_a: spsa.stability_a,
        });
        let average: ParamVec = self
            .calibration_gradient
            .iter()
            .map(|g| g / pairs)
            .collect();
        let a_k = self.spsa.learning_rate(self.spsa.iteration());
        let update = average.iter().map(|g| -a_k * g).collect();
        self.plan_update(update, average, y_plus, y_minus, perturbation_id);
    }

    /// Plans the `Update` for a step (fractions of the range): limited to
    /// the trust radius (L2) and the step limit, added to the carry, passed
    /// through the reversal hysteresis, and projected inside the bounds.
    ///
    /// The thrash guard allows few reversals per parameter per minute, and
    /// near an optimum SPSA steps change sign at random. So steps accumulate
    /// in a per-parameter carry that is committed only once it exceeds
    /// twice the parameter's typical step, doubled for every reversal in the
    /// last minute; a reversal never uses the minute's last allowed one,
    /// which is kept for step control to undo a bad step. The threshold is
    /// the same both ways, so blocked reversals do not turn noise into drift;
    /// small noisy moves cancel in the carry instead of spending the guard's
    /// budget.
    fn plan_update(
        &mut self,
        mut step: ParamVec,
        gradient: ParamVec,
        y_plus: f64,
        y_minus: f64,
        perturbation_id: u64,
    ) {
        let limit = STEP_MARGIN * self.executor.guardrails().max_delta_per_step;
        let radius = self
            .config
            .calibration
            .as_ref()
            .map_or(f64::INFINITY, |c| c.trust_radius);
        step.iter_mut().for_each(|s| *s *= self.gain_scale);
        let norm = step.iter().map(|s| s * s).sum::<f64>().sqrt();
        if norm > radius {
            step.iter_mut().for_each(|s| *s *= radius / norm);
        }
        let now = self.executor.now_us();
        let flip_limit = self.executor.guardrails().direction_flip_limit as usize;
        let centre = ParamVec::from_slice(self.executor.centre());
        let mut moved = centre.clone();
        for i in 0..step.len() {
            let s = step[i].clamp(-limit, limit);
            self.typical_step[i] = 0.8 * self.typical_step[i] + 0.2 * s.abs();
            self.carry[i] += s;
            let carry = self.carry[i];
            let recent = self.reversals[i].count_within(now, MINUTE_US);
            let threshold = HYSTERESIS * self.typical_step[i] * 2f64.powi(recent as i32);
            let first = self.direction[i] == 0.0;
            let onward = carry.signum() == self.direction[i];
            // The last reversal of the minute is kept for step control.
            let may_reverse = recent + 1 < flip_limit;
            if carry != 0.0 && (first || (carry.abs() >= threshold && (onward || may_reverse))) {
                moved[i] += carry.clamp(-limit, limit) * self.ranges[i];
            }
        }
        let c_next = self.spsa.perturbation_scale(self.spsa.iteration());
        let target = self.project(&moved, c_next);
        let taken: ParamVec = target
            .iter()
            .zip(centre.iter())
            .zip(self.ranges.iter())
            .map(|((&t, &c), &r)| (t - c) / r)
            .collect();
        let iteration = self.spsa.iteration();
        self.note(EngineEvent::Gradient {
            iteration,
            perturbation_id,
            y_plus,
            y_minus,
            step: taken,
        });
        self.previous = self.centre_objective.map(|y| (centre, y));
        self.last_step_iteration = iteration;
        self.pending = Some(Plan {
            kind: ProposalKind::Update,
            correlation_id: iteration,
            target,
            gradient,
            then: Phase::Centre,
        });
    }

    /// Books a committed `Update`: its movement leaves the carry, and its
    /// reversals raise the pressure on the hysteresis.
    fn committed(&mut self, centre_before: &[f64], at: u64) {
        let after = self.executor.centre();
        for i in 0..self.carry.len() {
            let moved = (after[i] - centre_before[i]) / self.ranges[i];
            if moved.abs() <= 1e-9 {
                continue;
            }
            // Whatever the projection cut off is dropped, not carried.
            self.carry[i] = if moved.signum() == self.carry[i].signum() {
                let rest = self.carry[i] - moved;
                if rest.signum() == moved.signum() {
                    rest.clamp(-1.0, 1.0)
                } else {
                    0.0
                }
            } else {
                0.0
            };
            if self.direction[i] != 0.0 && moved.signum() != self.direction[i] {
                self.reversals[i].push(at);
            }
            self.direction[i] = moved.signum();
        }
    }

    /// Clamps probe points into the bounds. The centre is kept `c` inside
    /// them, so this only ever removes a rounding error of `θ ± c·range`.
    fn within_bounds(&self, point: impl Iterator<Item = f64>) -> ParamVec {
        point
            .zip(self.lower.iter().zip(self.upper.iter()))
            .map(|(v, (&lo, &hi))| v.clamp(lo, hi))
            .collect()
    }

    /// Clamps `point` into `[min + c·range, max − c·range]` per bounded
    /// parameter (the midpoint if that interval is empty).
    fn project(&self, point: &[f64], c: f64) -> ParamVec {
        point
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let (lo, hi, r) = (self.lower[i], self.upper[i], self.ranges[i]);
                if !(lo.is_finite() && hi.is_finite()) {
                    return v;
                }
                let (a, b) = (lo + c * r, hi - c * r);
                if a > b {
                    0.5 * (lo + hi)
                } else {
                    v.clamp(a, b)
                }
            })
            .collect()
    }

    /// Turns the pending plan into the next proposal, if the executor would
    /// accept it now; adjusts an `Update` the flip or budget rules would
    /// refuse; otherwise waits.
    fn offer(&mut self, at: u64) -> Proposal {
        for _ in 0..=self.ranges.len() {
            let Some(plan) = self.pending.as_ref() else {
                return no_change(NoChangeReason::CollectingSamples);
            };
            let live = self.executor.snapshot().params;
            let centre = self.executor.centre();
            let limit = STEP_MARGIN * self.executor.guardrails().max_delta_per_step;
            // Targets planned at exactly `limit` may round a hair past it;
            // the executor's own limit is 0.1 % further out.
            let reach = limit * (1.0 + 1e-9);
            let within = |from: &[f64], to: &[f64]| {
                to.iter()
                    .zip(from)
                    .zip(self.ranges.iter())
                    .all(|((&t, &f), &r)| (t - f).abs() <= reach * r)
            };
            // Straight to the target; else back through the centre; else (at
            // the centre already) one full step toward the target.
            let (hop, hop_kind, completes_plan) = if within(&live, &plan.target) {
                (plan.target.clone(), plan.kind, true)
            } else if !live.bit_eq(centre) && within(&live, centre) {
                let kind = if plan.kind == ProposalKind::ApplyMinus {
                    ProposalKind::ApplyMinus
                } else {
                    ProposalKind::ApplyPlus
                };
                (ParamVec::from_slice(centre), kind, false)
            } else {
                let partial = live
                    .iter()
                    .zip(plan.target.iter())
                    .zip(self.ranges.iter())
                    .map(|((&l, &t), &r)| l + (t - l).clamp(-limit * r, limit * r))
                    .collect();
                (partial, plan.kind, false)
            };
            let delta: ParamVec = hop.iter().zip(live.iter()).map(|(h, l)| h - l).collect();
            if completes_plan && delta.iter().all(|d| *d == 0.0) {
                // Already there: nothing to apply.
                let then = plan.then;
                self.pending = None;
                self.window_opened_us = at;
                self.enter(then);
                return no_change(NoChangeReason::CollectingSamples);
            }
            let kind = hop_kind;
            let proposal = match kind {
                ProposalKind::ApplyPlus => Proposal::ApplyPlus {
                    perturbation_id: plan.correlation_id,
                    delta,
                },
                ProposalKind::ApplyMinus => Proposal::ApplyMinus {
                    perturbation_id: plan.correlation_id,
                    delta,
                },
                _ => Proposal::Update {
                    iteration: plan.correlation_id,
                    delta,
                    gradient_estimate: plan.gradient.clone(),
                },
            };
            match self.executor.would_accept(&proposal) {
                Ok(()) => {
                    self.offered = Some(Offer {
                        proposal: proposal.clone(),
                        completes_plan,
                    });
                    return proposal;
                }
                Err(Violation::InSafeMode { .. }) => return no_change(NoChangeReason::SafeMode),
                Err(
                    Violation::RateLimitExceeded { .. }
                    | Violation::StabilizationPending { .. }
                    | Violation::AuditQueueFull { .. },
                ) => return no_change(NoChangeReason::WaitingForExecutor),
                Err(Violation::DirectionFlipViolation { index, .. }) => {
                    self.hold_parameter(index, 0.0);
                }
                Err(Violation::CumulativeDeltaViolation { index, .. }) => {
                    let left = STEP_MARGIN * self.executor.budget_remaining(index);
                    self.hold_parameter(index, left);
                }
                Err(violation) => {
                    tracing::warn!(%violation, "engine plan refused; returning to the centre");
                    self.note(EngineEvent::PlanAbandoned { violation });
                    self.spsa.abort_iteration();
                    self.pending = Some(self.return_to_centre());
                    if live.bit_eq(self.executor.centre()) {
                        self.pending = None;
                        self.enter(Phase::Centre);
                    }
                    return no_change(NoChangeReason::WaitingForExecutor);
                }
            }
        }
        no_change(NoChangeReason::WaitingForExecutor)
    }

    /// Limits the pending update's move of parameter `index` to `allowed`
    /// (fraction of its range) from the centre.
    fn hold_parameter(&mut self, index: usize, allowed: f64) {
        let centre = self.executor.centre().get(index).copied();
        let range = self.ranges.get(index).copied().unwrap_or(1.0);
        if let (Some(plan), Some(c)) = (self.pending.as_mut(), centre) {
            if let Some(t) = plan.target.get_mut(index) {
                *t = c + (*t - c).clamp(-allowed * range, allowed * range);
            }
        }
    }

    /// Records an engine decision in the executor's audit trail.
    fn note(&mut self, event: EngineEvent) {
        self.executor.record_note(AuditDetails::Engine { event });
    }
}

impl<C> std::fmt::Debug for AdaptiveEngine<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdaptiveEngine")
            .field("phase", &self.phase)
            .field("iteration", &self.spsa.iteration())
            .field("stats", &self.stats)
            .field("executor", &self.executor)
            .finish_non_exhaustive()
    }
}

fn no_change(reason: NoChangeReason) -> Proposal {
    Proposal::NoChange { reason }
}
