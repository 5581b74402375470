//! The adaptive engine: online SPSA tuning that reaches the live
//! configuration only through the [`SafetyExecutor`]. Its public
//! documentation is on [`AdaptiveEngine`] (the loop, one iteration,
//! telemetry, constraints) and [`CalibrationConfig`] (the gains); this is
//! the map for maintainers.
//!
//! One `impl AdaptiveEngine` block per concern, each in its file:
//!
//! * `mod.rs`: the engine's state, its constructors and accessors;
//! * `observe.rs`: the control loop (`observe`, `apply`, `step`): digest
//!   admission, timeouts, constraints, resynchronisation, and what a full
//!   window leads to;
//! * `stage.rs`: the stages (noise, gains, tuning), each with its own
//!   data, and the phase within an iteration;
//! * `calibration.rs`: measuring `σ`, `c₀` and `a₀`;
//! * `plan.rs`: plans and how each is offered to the executor, hop by hop;
//! * `probe.rs`: how large each probe is;
//! * `step_control.rs`: rejected steps and drift;
//! * `hysteresis.rs`: the thrash guard between a step and its `Update`;
//! * `averaging.rs`: where a commit moves the centre (the iterate's
//!   average while no slope is measured);
//! * `typed.rs`: integer, log-scale and choice knobs in the SPSA loop;
//! * `bandit.rs`: the bandit that tunes each choice knob;
//! * `persist.rs`: [`EngineState`], export and restore;
//! * `settings.rs` and `error.rs`: the settings, their validation, errors.
//!
//! The engine holds no writer and keeps no copy of the executor's rules'
//! bookkeeping: directions, reversals, budget and the parameter space are
//! asked of the executor when needed.

mod averaging;
mod bandit;
mod calibration;
mod error;
mod hysteresis;
mod observe;
mod persist;
mod plan;
mod probe;
mod settings;
mod stage;
mod step_control;
#[cfg(test)]
mod tests;
mod typed;

pub use bandit::BanditState;
pub use error::EngineError;
pub use observe::StepOutcome;
pub use persist::{EngineState, ENGINE_STATE_VERSION};
pub use settings::{AdaptiveEngineConfig, CalibrationConfig};
pub use stage::EngineStage;

use crate::audit::{AuditDetails, EngineEvent};
use crate::clock::{Clock, SystemClock};
use crate::config_atomic::AtomicConfig;
use crate::error::ConfigError;
use crate::executor::SafetyExecutor;
use crate::proposal::{NoChangeReason, Proposal};
use crate::spsa::Spsa;
use crate::sync::Arc;
use crate::ParamVec;
use error::SetupError;
use plan::{Offer, Plan};
use serde::{Deserialize, Serialize};
use stage::{Phase, Stage};

/// Moves are planned to this fraction of the step limit, so rounding in
/// `live + delta` can never push one over.
const STEP_MARGIN: f64 = 0.999;
/// Step control never shrinks steps below this fraction of the schedule:
/// single noisy windows reject good steps too, and compounding halvings
/// would freeze the optimiser.
const MIN_GAIN_SCALE: f64 = 0.125;
/// How many noise standard deviations a parameter's carried movement must
/// reach before it is committed (see `hysteresis.rs`).
const SIGNIFICANCE: f64 = 2.0;
/// The per-parameter step multiplier (see `hysteresis.rs`, `normalise`):
/// its growth while the parameter's mean gradient is significant and keeps
/// its sign, its fall when that sign turns, its decay while the mean is
/// not significant, its range.
const GAIN_UP: f64 = 1.5;
const GAIN_DOWN: f64 = 0.5;
const GAIN_DECAY: f64 = 0.9;
const GAIN_MIN: f64 = 0.25;
const GAIN_MAX: f64 = 4.0;
/// Weight of the past in each parameter's mean gradient (EWMA), and how
/// many of its standard errors make that mean significant.
const MOMENTUM: f64 = 0.9;
const MOMENTUM_SIGMAS: f64 = 1.3;
/// SPSA iterations between two commits of the carry (see
/// `hysteresis.rs`): each commit is followed by a centre window, so this
/// also sets how often the centre is measured and reported to the
/// rollback policy.
const COMMIT_EVERY: u32 = 4;
/// A step's gain is at most this over `2h`, the curvature the probes
/// measure (see `hysteresis.rs`, `limit_by_curvature`).
const CURVATURE_TRUST: f64 = 1.0;
/// Growth of the gain multiplier per accepted step, back up to 1.
const GAIN_REGROWTH: f64 = 1.5;
/// Direction reversals per parameter a commit must leave the executor's
/// flip rule (see `hysteresis.rs`): one for step control to undo a bad
/// step; two when no measured slope asks for the reversal.
const FLIPS_KEPT: usize = 1;
const FLIPS_KEPT_UNPUSHED: usize = 2;

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

/// Online SPSA tuning that reaches the live configuration only through the
/// [`SafetyExecutor`].
///
/// # The loop
///
/// Feed the engine one [`TelemetryDigest`] at a time. [`step`](Self::step)
/// observes it and applies whatever move the engine decides, so the obvious
/// loop is the correct one:
///
/// ```
/// use hotpath::{AdaptiveEngine, AdaptiveEngineConfig, ManualClock, ParamVec, TelemetryDigest};
///
/// let clock = ManualClock::new(0);
/// let config = AdaptiveEngineConfig {
///     spsa: hotpath::SpsaConfig { eval_window_digests: 1, ..Default::default() },
///     ..AdaptiveEngineConfig::bounded(vec![(0.0, 1.0), (0.0, 1.0)])
/// };
/// let mut engine = AdaptiveEngine::with_clock(config, ParamVec::from_slice(&[0.5, 0.5]), clock.clone())?;
/// let mut reader = engine.config().reader();
/// for _ in 0..300 {
///     clock.advance(200_000);
///     let live = reader.get().params.clone();
///     let loss = (live[0] - 0.2).powi(2) + (live[1] - 0.7).powi(2); // measured by the service
///     engine.step(TelemetryDigest::new(200_000, loss, 100))?;
/// }
/// let centre = engine.executor().centre();
/// assert!((centre[0] - 0.2).abs() < 0.05 && (centre[1] - 0.7).abs() < 0.05);
/// # Ok::<(), hotpath::EngineError>(())
/// ```
///
/// [`observe`](Self::observe) alone only *decides*: it never changes
/// the live configuration (the engine holds no writer; the executor does).
/// [`apply`](Self::apply) sends a decision to the executor and tells
/// the engine the result: a refused move is kept and offered again later,
/// never forgotten.
///
/// # One iteration, exactly
///
/// Coordinates are normalised: `u = (θ − min)/range` per parameter (in the
/// logarithm on a log scale; range 1 and no clamping for unbounded
/// parameters). Every proposal's delta is relative to the live
/// configuration. The engine keeps the *committed centre* `C` (the
/// executor's) and an *iterate* `θ = C + carry`, the SPSA iterate whose
/// moves have not been committed yet. With a ±1 vector `Δ` and a probe
/// size `cᵢ` per parameter (see *Probe size*):
///
/// 1. `ApplyPlus` to `θ + cΔ`; **plus window** gives `y₊`.
/// 2. `ApplyMinus` to `θ − cΔ` (one move of `2c`, or two through `C` when
///    that exceeds the step limit; the next `ApplyPlus` likewise); **minus
///    window** gives `y₋`.
/// 3. `ĝᵢ = (y₊ − y₋)/(2cᵢΔᵢ)`; step `s = −a_k·ĝ`, adapted per parameter
///    (bounded by the calibration's scale, grown while the parameter's
///    mean gradient is significant: see [`CalibrationConfig`]), limited
///    per parameter to `|ĝᵢ|/(2h)` once the probes have measured the
///    curvature `h` along `Δ` (a step that cannot overshoot a quadratic's
///    minimum), to the trust radius (L2) and to the step limit, and added
///    to the carry: the iterate moves, the live configuration does not.
/// 4. Every `COMMIT_EVERY` (4) iterations, or as soon as a carry comes
///    within the smallest probe of half the excursion limit (probes must
///    stay within `max_delta_per_step` of `C`), the carry is **committed**:
///    an `Update` moves `C` toward the iterate, each parameter only if its
///    move is significant (see *Thrash guard*), projected so the next probes
///    stay in bounds: to the iterate itself while the parameter's mean
///    gradient is significant, else to the iterate's mean over the
///    iterations since it was (Polyak–Ruppert averaging; an integer always
///    to the iterate). A **centre window** at the new `C` follows: its objective
///    is reported to the executor ([`SafetyExecutor::report_outcome`]) for
///    its rollback policy, and compared with the previous centre's for step
///    control.
///
/// # Probe size
///
/// SPSA's central difference is unbiased on a quadratic whatever the probe
/// size, and its noise falls as `1/c`; but each probe costs the users it
/// serves about `c²·h`, `h` the curvature along `Δ`. So each pair's size is
/// chosen from what the engine measures: at most what makes the probes
/// cost ten noise standard deviations over the centre (`h` measured as a
/// pair's mean over the centre window's objective, on pairs taken around
/// the centre), at most what makes a pair's difference ten standard
/// deviations of its noise (far from an optimum, where the slope is strong,
/// small probes suffice), within the room the excursion limit leaves each
/// parameter beside its carry and its bounds, and at least a quarter of
/// `min_perturbation`. Until the curvature is first measured (and without
/// calibration) it is SPSA's scheduled `c_k`. Near a shallow, noisy optimum
/// probes therefore grow to the step limit; on a steep one they stay small.
///
/// Probes around an uncommitted iterate could wander where users pay for
/// them: when a pair's mean is worse than the first pair's after the last
/// centre window by more than the noise explains, the carry is dropped and
/// the engine returns to `C` and measures it again (a centre that measures
/// worse too is a drift).
///
/// Before offering a move the engine asks the executor whether it would pass
/// ([`SafetyExecutor::would_accept`]). Timing refusals (rate, stabilisation,
/// safe mode, audit backpressure) make it wait (`NoChange`); an `Update` that
/// would reverse a parameter past the flip limit has that parameter's step
/// zeroed, and one that would overspend the movement budget is scaled to the
/// budget left. The engine therefore does not propose moves to be refused.
///
/// # Telemetry
///
/// A digest counts towards the open window only if it was measured after the
/// settle time following the last apply (its timestamp, or the clock when it
/// has none) and, when it names a generation, at the live generation. Others
/// are discarded and counted in [`EngineStats`]. A window that does not fill
/// within `eval_window_us` yields `NoChange { EvalTimeout }`; the iteration is
/// abandoned (back to the centre) and `max_eval_timeouts` timeouts in a row
/// latch safe mode (`TelemetryStalled`). A NaN/∞ objective, zero samples or a
/// timestamp earlier than the previous digest's is an [`EngineError`] and
/// changes nothing. Windows are reduced by the configured [`Aggregation`]
/// (default: 10 % trimmed mean weighted by `sample_count`).
///
/// # Constraints
///
/// A digest's `constraint_margin` (≥ 0 feasible) below `emergency_margin`
/// (default −0.5) rolls back to the baseline at once. A negative margin above
/// it stops optimisation and moves back, one allowed step at a time, to the
/// last centre whose window saw no negative margin; optimisation resumes when
/// margins are non-negative again.
///
/// # Gains
///
/// With [`CalibrationConfig`] (the default) the engine measures its gains,
/// noise first and then the gradient's scale, and controls its steps; see
/// there for what you set and what is measured. Without calibration
/// (`calibration: None`) the fixed gains `learning_rate` and
/// `perturbation_scale` are used as `a₀` and `c₀`.
///
/// # Thrash guard
///
/// The executor allows few direction reversals per parameter per minute
/// (`direction_flip_limit`), and near an optimum SPSA's steps change sign at
/// random. So the engine commits the sum of several steps, not each one, and
/// a parameter's carry moves only if it is *significant*: larger than twice
/// what the same number of noise steps would add up to (twice the root mean
/// square of recent steps times the square root of their number; always
/// past a quarter of the step limit, a sustained push). Near an optimum the
/// committed centre therefore stays put and keeps its reversals for when
/// they are needed (a drift); a real slope passes within a few iterations.
/// A reversal also never uses the minute's last allowed one, which is kept
/// for step control to undo a bad step, nor, unless the parameter's
/// significant mean gradient asks for it, the last two: reversals near an
/// optimum are noise, and spending them would leave the parameter unable to
/// turn when the optimum moves. The directions and reversals counted are the
/// executor's own ([`SafetyExecutor::last_direction`],
/// [`SafetyExecutor::flips_left`]).
///
/// # Audit and determinism
///
/// Every decision is in the executor's audit trail: the executor's own
/// events, plus [`EngineEvent`]s (calibration, each gradient and step, step
/// rejections, timeouts, constraint changes) carrying the iteration and
/// perturbation id. Randomness is `ChaCha8Rng::seed_from_u64(seed)` (the
/// settings' `seed`) and time is the injected clock, so the same seed and
/// digest stream give the same proposals and audit events, byte for byte.
///
/// [`TelemetryDigest`]: crate::TelemetryDigest
/// [`Aggregation`]: crate::Aggregation
pub struct AdaptiveEngine<C = SystemClock> {
    /// The settings in force (guardrails and rollback policy: the
    /// executor's).
    config: AdaptiveEngineConfig,
    /// Why `new` failed closed, if it did.
    misconfiguration: Option<EngineError>,
    spsa: Spsa,
    /// The only writer of the live configuration, and the keeper of every
    /// rule's bookkeeping (directions, reversals, budget, the space).
    executor: SafetyExecutor<C>,
    /// Noise, gains or tuning, with what each has measured.
    stage: Stage,
    /// What the open window measures.
    phase: Phase,
    /// The move decided on and not yet completed; offered hop by hop.
    pending: Option<Plan>,
    /// The proposal last offered, to recognise it in `apply`.
    offered: Option<Offer>,
    /// Centre and noise windows (SPSA keeps the probe windows).
    window: Vec<(f64, u64)>,
    /// When the open window began (the last apply, or a restart): digests
    /// count after the settle time, and it times out `eval_window_us` later.
    window_opened_us: u64,
    /// The open window saw a negative constraint margin.
    window_infeasible: bool,
    /// The executor's centre generation the engine last planned from; any
    /// other means the centre moved behind its back.
    seen_centre_generation: u64,
    /// The centre before the last step, and its objective.
    previous: Option<(ParamVec, f64)>,
    /// After a revert: the objective the previous centre had.
    reverted_from: Option<(ParamVec, f64)>,
    /// Multiplier of `a_k` in (0, 1]: halved by a rejected step, regrown by
    /// accepted ones.
    gain_scale: f64,
    /// Per parameter: planned movement not yet committed (fraction of the
    /// range), held back by the reversal hysteresis or the guardrails.
    carry: ParamVec,
    /// Per parameter: mean square of the recent steps (EWMA), the noise
    /// scale of the hysteresis test.
    step_sq: ParamVec,
    /// Per parameter: mean square of the recent gradient estimates (EWMA)
    /// and the weight it has accumulated, to correct its start at zero.
    grad_sq: ParamVec,
    grad_sq_weight: ParamVec,
    /// Per parameter: the last significant mean gradient (its sign is
    /// the slope's) and the step multiplier it adapts.
    last_push: ParamVec,
    step_gain: ParamVec,
    /// Per parameter: the mean of recent gradient estimates (EWMA) and the
    /// weight it has accumulated.
    momentum: ParamVec,
    momentum_weight: ParamVec,
    /// Per parameter: the sign of that mean at the last gradient if it was
    /// significant, else 0: the slope the engine measures.
    slope_sign: ParamVec,
    /// Per parameter: the mean of the carry over the iterations since a
    /// slope was last measured (see `averaging.rs`), and how many
    /// iterations it averages (0: none yet).
    average: ParamVec,
    averaged: Vec<u32>,
    /// Per parameter: the weight the average `step_sq` has accumulated
    /// (1 − 0.8ᵗ after `t` steps), to correct its start at zero.
    step_sq_weight: ParamVec,
    /// Per parameter: steps booked in the carry since it last moved.
    carried: Vec<u32>,
    /// Gradient steps booked in the carry since the last commit.
    uncommitted_iterations: u32,
    /// Mean objective of the first probe pair after the last centre window.
    probe_reference: Option<f64>,
    /// The point the probes in flight are taken around: the centre moved by
    /// the carry.
    iterate: ParamVec,
    /// Per parameter: the gradient correction of the probe pair in flight
    /// (see `typed.rs`); empty for a space of linear reals.
    correction: ParamVec,
    /// Per parameter: the probe size of the pair in flight (fraction of
    /// the range; see `probe.rs`).
    probe: ParamVec,
    /// What the probe size is chosen from (see `probe.rs`): the probes'
    /// cost over their squared size, the curvature along the
    /// perturbations (EWMA, and its weight); the pairs' squared
    /// directional derivative (EWMA, and its weight).
    curvature: f64,
    curvature_weight: f64,
    slope_sq: f64,
    slope_sq_weight: f64,
    /// One bandit per choice knob (see `bandit.rs`).
    bandits: Vec<BanditState>,
    /// Objective of the current centre, once measured.
    centre_objective: Option<f64>,
    /// The iteration of the last step, which a rejection reverts.
    last_step_iteration: u64,
    /// The last centre whose window saw no negative margin.
    last_feasible: ParamVec,
    /// A negative margin was seen and not yet cleared.
    infeasible: bool,
    /// `true` from a margin below `emergency_margin` until one above it:
    /// the emergency is noted once, not on every digest.
    in_emergency: bool,
    consecutive_timeouts: u32,
    /// The previous digest's time: digests may not go back in time.
    last_digest_us: Option<u64>,
    stats: EngineStats,
}

impl AdaptiveEngine<SystemClock> {
    /// An engine over a new [`AtomicConfig`] holding `initial`, with an
    /// executor on the system clock, and the baseline set to `initial`.
    ///
    /// Never panics. Invalid settings give an engine whose executor is
    /// latched in safe mode (`Misconfigured`, with the cause as its
    /// [`ConfigError`]), so it never changes anything;
    /// [`misconfiguration`](Self::misconfiguration) tells why. Use
    /// [`with_clock`](AdaptiveEngine::with_clock) to get the error instead.
    ///
    /// ```
    /// use hotpath::{AdaptiveEngine, AdaptiveEngineConfig, ConfigError, ParamVec, SpsaConfig};
    /// use hotpath::SpsaConfigError::ZeroEvalWindowDigests;
    ///
    /// let initial = ParamVec::from_slice(&[0.5]);
    /// let engine = AdaptiveEngine::new(AdaptiveEngineConfig::default(), initial);
    /// assert!(engine.misconfiguration().is_none());
    ///
    /// // Windows of no digests: an engine that never moves, and why.
    /// let spsa = SpsaConfig { eval_window_digests: 0, ..SpsaConfig::default() };
    /// let bad = AdaptiveEngineConfig { spsa, ..AdaptiveEngineConfig::default() };
    /// let engine = AdaptiveEngine::new(bad, ParamVec::from_slice(&[0.5]));
    /// assert_eq!(
    ///     engine.executor().misconfiguration(),
    ///     Some(ConfigError::InvalidEngineConfig { cause: ZeroEvalWindowDigests })
    /// );
    /// ```
    pub fn new(config: AdaptiveEngineConfig, initial: ParamVec) -> Self {
        match Self::build(config.clone(), initial.clone(), SystemClock::new()) {
            Ok(engine) => engine,
            Err(error) => {
                let atomic = Arc::new(AtomicConfig::new(initial));
                let executor = SafetyExecutor::failed_closed(atomic, error.into());
                let mut engine = Self::assemble(config, executor);
                engine.misconfiguration = Some(error.into());
                engine
            }
        }
    }
}

impl<C: Clock> AdaptiveEngine<C> {
    /// An engine over a new [`AtomicConfig`] holding `initial`, with an
    /// executor on `clock`; the baseline is set to `initial`.
    ///
    /// # Errors
    ///
    /// [`EngineError::Config`] for invalid guardrails or rollback policy,
    /// an invalid numeric setting ([`ConfigError::InvalidField`]), or a
    /// baseline the executor refused ([`ConfigError::BaselineRefused`]);
    /// [`EngineError::Spsa`] for invalid SPSA settings or no parameters.
    ///
    /// ```
    /// use hotpath::{AdaptiveEngine, AdaptiveEngineConfig, ConfigError, EngineError, ManualClock, ParamVec};
    ///
    /// let config = AdaptiveEngineConfig::bounded(vec![(1.0, 512.0)]);
    /// let initial = ParamVec::from_slice(&[64.0]);
    /// let engine = AdaptiveEngine::with_clock(config.clone(), initial, ManualClock::new(0))?;
    /// assert_eq!(engine.executor().baseline().map(|b| b.snapshot.params[0]), Some(64.0));
    ///
    /// // Bounds for one parameter, two parameters:
    /// let two = ParamVec::from_slice(&[64.0, 8.0]);
    /// let refused = AdaptiveEngine::with_clock(config, two, ManualClock::new(0));
    /// assert!(matches!(refused, Err(EngineError::Config(ConfigError::BoundsLength { .. }))));
    /// # Ok::<(), EngineError>(())
    /// ```
    pub fn with_clock(
        config: AdaptiveEngineConfig,
        initial: ParamVec,
        clock: C,
    ) -> Result<Self, EngineError> {
        Self::build(config, initial, clock).map_err(EngineError::from)
    }

    fn build(
        config: AdaptiveEngineConfig,
        initial: ParamVec,
        clock: C,
    ) -> Result<Self, SetupError> {
        config.check(initial.len())?;
        let atomic = Arc::new(AtomicConfig::new(initial));
        let executor = SafetyExecutor::builder(atomic)
            .guardrails(config.guardrails.clone())
            .rollback_policy(config.rollback_policy)
            .audit_capacity(config.audit_capacity)
            .clock(clock)
            .build()?;
        Self::drive(config, executor)
    }

    /// An engine driving an existing executor (its guardrails and rollback
    /// policy are used; `config.guardrails` and `config.rollback_policy` are
    /// ignored). Sets the baseline to the executor's centre unless it has
    /// one (a restored executor keeps its baseline).
    ///
    /// # Errors
    ///
    /// As [`with_clock`](Self::with_clock): [`EngineError::Config`] for
    /// invalid settings, or [`ConfigError::BaselineRefused`] if the executor
    /// refuses the baseline (one that failed closed, or whose audit queue is
    /// full); [`EngineError::Spsa`] for invalid SPSA settings.
    ///
    /// ```
    /// use hotpath::{AdaptiveEngine, AdaptiveEngineConfig, AtomicConfig, ConfigError, EngineError};
    /// use hotpath::{Guardrails, ManualClock, ParamVec, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let executor = SafetyExecutor::builder(config)
    ///     .guardrails(Guardrails::default().with_bounds(vec![(0.0, 1.0)]))
    ///     .clock(ManualClock::new(0))
    ///     .build()?;
    /// let engine = AdaptiveEngine::with_executor(AdaptiveEngineConfig::default(), executor)?;
    /// assert_eq!(engine.settings().guardrails.bounds, Some(vec![(0.0, 1.0)]));
    ///
    /// // An executor that failed closed refuses the baseline.
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let nan_step = Guardrails { max_delta_per_step: f64::NAN, ..Guardrails::default() };
    /// let failed = SafetyExecutor::new(config, nan_step);
    /// let refused = AdaptiveEngine::with_executor(AdaptiveEngineConfig::default(), failed);
    /// assert!(matches!(refused, Err(EngineError::Config(ConfigError::BaselineRefused { .. }))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_executor(
        config: AdaptiveEngineConfig,
        executor: SafetyExecutor<C>,
    ) -> Result<Self, EngineError> {
        Self::drive(config, executor).map_err(EngineError::from)
    }

    fn drive(
        mut config: AdaptiveEngineConfig,
        executor: SafetyExecutor<C>,
    ) -> Result<Self, SetupError> {
        config.guardrails = executor.guardrails().clone();
        config.rollback_policy = *executor.rollback_policy();
        config.check(executor.centre().len())?;
        let mut engine = Self::assemble(config, executor);
        if engine.executor.baseline().is_none() {
            engine
                .executor
                .set_baseline()
                .map_err(|violation| ConfigError::BaselineRefused { violation })?;
        }
        Ok(engine)
    }

    fn assemble(config: AdaptiveEngineConfig, mut executor: SafetyExecutor<C>) -> Self {
        let now = executor.now_us();
        let n = executor.centre().len();
        let mut spsa = Spsa::new(
            config.seed,
            n,
            config.learning_rate,
            config.perturbation_scale,
            config.spsa.clone(),
        );
        if let Some(cal) = &config.calibration {
            // `A` is known up front; the gains are measured later. This
            // cannot fail: every `u64` is a finite `f64` ≥ 0, and so is a
            // tenth of it, which is all `set_stability_a` asks (true even
            // of the unchecked settings `new` fails closed with).
            let _ = spsa.set_stability_a(0.1 * cal.expected_iterations as f64);
        }
        let centre = ParamVec::from_slice(executor.centre());
        Self {
            window: Vec::with_capacity(config.spsa.eval_window_digests.max(1)),
            stage: Stage::first(config.calibration.is_some(), n),
            config,
            misconfiguration: None,
            spsa,
            phase: Phase::Centre,
            pending: None,
            offered: None,
            window_opened_us: now,
            window_infeasible: false,
            seen_centre_generation: executor.centre_generation(),
            previous: None,
            reverted_from: None,
            gain_scale: 1.0,
            carry: ParamVec::zeros(n),
            step_sq: ParamVec::zeros(n),
            grad_sq: ParamVec::zeros(n),
            grad_sq_weight: ParamVec::zeros(n),
            last_push: ParamVec::zeros(n),
            step_gain: ParamVec::from_slice(&vec![1.0; n]),
            momentum: ParamVec::zeros(n),
            momentum_weight: ParamVec::zeros(n),
            slope_sign: ParamVec::zeros(n),
            average: ParamVec::zeros(n),
            averaged: vec![0; n],
            step_sq_weight: ParamVec::zeros(n),
            carried: vec![0; n],
            uncommitted_iterations: 0,
            probe_reference: None,
            iterate: ParamVec::new(),
            correction: ParamVec::new(),
            probe: ParamVec::new(),
            curvature: 0.0,
            curvature_weight: 0.0,
            slope_sq: 0.0,
            slope_sq_weight: 0.0,
            bandits: bandits_of(executor.space()),
            centre_objective: None,
            last_step_iteration: 0,
            last_feasible: centre,
            infeasible: false,
            in_emergency: false,
            consecutive_timeouts: 0,
            last_digest_us: None,
            stats: EngineStats::default(),
            executor,
        }
    }

    /// The executor (for `freeze`, `resume`, `rollback`, statistics).
    ///
    /// ```
    /// use hotpath::{AdaptiveEngine, AdaptiveEngineConfig, ManualClock, ParamVec};
    ///
    /// let config = AdaptiveEngineConfig::bounded(vec![(0.0, 1.0)]);
    /// let initial = ParamVec::from_slice(&[0.5]);
    /// let mut engine = AdaptiveEngine::with_clock(config, initial, ManualClock::new(0))?;
    /// assert_eq!(engine.executor().centre(), &[0.5]);
    /// assert_eq!(engine.executor().stats().applied, 0);
    /// # Ok::<(), hotpath::EngineError>(())
    /// ```
    pub fn executor(&self) -> &SafetyExecutor<C> {
        &self.executor
    }

    /// The executor, mutably. Changes made through it (a manual rollback,
    /// say) are noticed by the engine on the next digest.
    ///
    /// ```
    /// use hotpath::{AdaptiveEngine, AdaptiveEngineConfig, ManualClock, ParamVec};
    ///
    /// let config = AdaptiveEngineConfig::bounded(vec![(0.0, 1.0)]);
    /// let initial = ParamVec::from_slice(&[0.5]);
    /// let mut engine = AdaptiveEngine::with_clock(config, initial, ManualClock::new(0))?;
    /// engine.executor_mut().freeze();
    /// assert!(engine.executor().control_safety().is_latched());
    /// # Ok::<(), hotpath::EngineError>(())
    /// ```
    pub fn executor_mut(&mut self) -> &mut SafetyExecutor<C> {
        &mut self.executor
    }

    /// The live configuration, for readers.
    ///
    /// ```
    /// use hotpath::{AdaptiveEngine, AdaptiveEngineConfig, ManualClock, ParamVec};
    ///
    /// let config = AdaptiveEngineConfig::bounded(vec![(0.0, 1.0)]);
    /// let initial = ParamVec::from_slice(&[0.5]);
    /// let mut engine = AdaptiveEngine::with_clock(config, initial, ManualClock::new(0))?;
    /// let mut reader = engine.config().reader(); // one per hot-path thread
    /// assert_eq!(reader.get().params[0], 0.5);
    /// # Ok::<(), hotpath::EngineError>(())
    /// ```
    pub fn config(&self) -> &Arc<AtomicConfig> {
        self.executor.config()
    }

    /// The settings in force.
    ///
    /// ```
    /// use hotpath::{AdaptiveEngine, AdaptiveEngineConfig, ManualClock, ParamVec};
    ///
    /// let config = AdaptiveEngineConfig::bounded(vec![(0.0, 1.0)]);
    /// let initial = ParamVec::from_slice(&[0.5]);
    /// let mut engine = AdaptiveEngine::with_clock(config, initial, ManualClock::new(0))?;
    /// assert_eq!(engine.settings().guardrails.bounds, Some(vec![(0.0, 1.0)]));
    /// # Ok::<(), hotpath::EngineError>(())
    /// ```
    pub fn settings(&self) -> &AdaptiveEngineConfig {
        &self.config
    }

    /// The SPSA core (iteration, gains, checkpoint).
    ///
    /// ```
    /// use hotpath::{AdaptiveEngine, AdaptiveEngineConfig, ManualClock, ParamVec};
    ///
    /// let config = AdaptiveEngineConfig::bounded(vec![(0.0, 1.0)]);
    /// let initial = ParamVec::from_slice(&[0.5]);
    /// let mut engine = AdaptiveEngine::with_clock(config, initial, ManualClock::new(0))?;
    /// assert_eq!(engine.spsa().iteration(), 0);
    /// assert_eq!(engine.spsa().num_params(), 1);
    /// # Ok::<(), hotpath::EngineError>(())
    /// ```
    pub fn spsa(&self) -> &Spsa {
        &self.spsa
    }

    /// Monitoring counters.
    ///
    /// ```
    /// use hotpath::{AdaptiveEngine, AdaptiveEngineConfig, ManualClock, ParamVec, TelemetryDigest};
    ///
    /// let clock = ManualClock::new(0);
    /// let config = AdaptiveEngineConfig::bounded(vec![(0.0, 1.0)]);
    /// let initial = ParamVec::from_slice(&[0.5]);
    /// let mut engine = AdaptiveEngine::with_clock(config, initial, clock.clone())?;
    /// clock.advance(5_000); // inside the settle time after the start
    /// engine.step(TelemetryDigest::new(5_000, 1.0, 10))?;
    /// assert_eq!((engine.stats().digests, engine.stats().discarded_settling), (1, 1));
    /// # Ok::<(), hotpath::EngineError>(())
    /// ```
    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// Measured noise (standard deviation of one window's aggregate), once
    /// calibrated; `None` before, and without calibration.
    ///
    /// ```
    /// use hotpath::{AdaptiveEngine, AdaptiveEngineConfig, ManualClock, ParamVec, SpsaConfig, TelemetryDigest};
    ///
    /// let clock = ManualClock::new(0);
    /// let config = AdaptiveEngineConfig {
    ///     spsa: SpsaConfig { eval_window_digests: 1, ..SpsaConfig::default() },
    ///     ..AdaptiveEngineConfig::bounded(vec![(0.0, 1.0)])
    /// };
    /// let initial = ParamVec::from_slice(&[0.5]);
    /// let mut engine = AdaptiveEngine::with_clock(config, initial, clock.clone())?;
    /// assert_eq!(engine.noise_sd(), None);
    /// for i in 0..40 {
    ///     clock.advance(200_000);
    ///     let live = engine.config().load().params[0];
    ///     let noise = [0.01, -0.01, 0.02, 0.0][i % 4];
    ///     engine.step(TelemetryDigest::new(200_000, (live - 0.3).powi(2) + noise, 10))?;
    /// }
    /// assert!(engine.noise_sd().is_some_and(|sd| sd > 0.0));
    /// # Ok::<(), hotpath::EngineError>(())
    /// ```
    pub fn noise_sd(&self) -> Option<f64> {
        let tuning = self.stage.is_tuning() && self.config.calibration.is_some();
        tuning.then_some(self.stage.measured().noise_sd)
    }

    /// Why [`new`](AdaptiveEngine::new) failed closed, if it did.
    ///
    /// ```
    /// use hotpath::{AdaptiveEngine, AdaptiveEngineConfig, ConfigError, EngineError, ParamVec};
    ///
    /// let bad = AdaptiveEngineConfig { learning_rate: f64::NAN, ..Default::default() };
    /// let engine = AdaptiveEngine::new(bad, ParamVec::from_slice(&[0.5]));
    /// assert!(matches!(
    ///     engine.misconfiguration(),
    ///     Some(EngineError::Config(ConfigError::InvalidField { field: "learning_rate", .. }))
    /// ));
    /// ```
    pub fn misconfiguration(&self) -> Option<&EngineError> {
        self.misconfiguration.as_ref()
    }

    /// What the engine is doing: calibrating its gains, tuning, or
    /// refusing everything because it failed closed.
    ///
    /// ```
    /// use hotpath::{AdaptiveEngine, AdaptiveEngineConfig, EngineStage, ParamVec};
    ///
    /// let initial = ParamVec::from_slice(&[0.5]);
    /// let engine = AdaptiveEngine::new(AdaptiveEngineConfig::default(), initial.clone());
    /// assert_eq!(engine.stage(), EngineStage::Calibrating);
    /// let fixed = AdaptiveEngineConfig { calibration: None, ..AdaptiveEngineConfig::default() };
    /// assert_eq!(AdaptiveEngine::new(fixed, initial.clone()).stage(), EngineStage::Tuning);
    /// let bad = AdaptiveEngineConfig { learning_rate: f64::NAN, ..AdaptiveEngineConfig::default() };
    /// assert_eq!(AdaptiveEngine::new(bad, initial).stage(), EngineStage::Misconfigured);
    /// ```
    pub fn stage(&self) -> EngineStage {
        if self.misconfiguration.is_some() {
            EngineStage::Misconfigured
        } else if self.stage.is_tuning() {
            EngineStage::Tuning
        } else {
            EngineStage::Calibrating
        }
    }

    /// Starts measuring `phase` where a completed plan has moved the
    /// engine. A plan completed during the noise windows ends them
    /// ([`Stage::end_noise`]).
    fn enter(&mut self, phase: Phase) {
        self.stage.end_noise();
        self.phase = phase;
        self.restart_window();
    }

    /// Forgets the iteration in flight (plan, offer, the step and its
    /// revert, the carry, the centre's objective) and opens a centre
    /// window: what a resynchronisation and a restore share.
    fn restart_at_centre(&mut self) {
        self.pending = None;
        self.offered = None;
        self.previous = None;
        self.reverted_from = None;
        self.drop_carry();
        self.centre_objective = None;
        self.phase = Phase::Centre;
        self.restart_window();
    }

    /// Measures the open window again from its first digest.
    fn restart_window(&mut self) {
        self.window.clear();
        self.window_infeasible = false;
    }

    /// Records an engine decision in the executor's audit trail.
    fn note(&mut self, event: EngineEvent) {
        self.executor.record_note(AuditDetails::Engine { event });
    }
}

impl<C> std::fmt::Debug for AdaptiveEngine<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdaptiveEngine")
            .field("stage", &self.stage.name())
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

/// A fresh bandit for every choice knob of `space`.
fn bandits_of(space: &crate::ParamSpace) -> Vec<BanditState> {
    let options = |i: usize| match space.knobs()[i].kind() {
        crate::KnobKind::Choice { options } => options.len(),
        _ => 0,
    };
    let choices = space.choice_indices().iter();
    choices.map(|&i| BanditState::new(i, options(i))).collect()
}
