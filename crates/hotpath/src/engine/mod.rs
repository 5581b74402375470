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

mod calibration;
mod error;
mod hysteresis;
mod observe;
mod persist;
mod plan;
mod settings;
mod stage;
mod step_control;

pub use error::EngineError;
pub use observe::StepOutcome;
pub use persist::{EngineState, ENGINE_STATE_VERSION};
pub use settings::{AdaptiveEngineConfig, CalibrationConfig};

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
/// A parameter's carried movement must reach this many typical steps
/// (doubled per reversal in the last minute) before it is committed.
const HYSTERESIS: f64 = 2.0;
/// Growth of the gain multiplier per accepted step, back up to 1.
const GAIN_REGROWTH: f64 = 1.5;

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

/// Online SPSA tuning governed by a [`SafetyExecutor`]. See the
/// [module docs](self) for the loop, the geometry, telemetry rules and gains.
pub struct AdaptiveEngine<C = SystemClock> {
    config: AdaptiveEngineConfig,
    misconfiguration: Option<EngineError>,
    spsa: Spsa,
    executor: SafetyExecutor<C>,
    /// Noise, gains or tuning, with what each has measured.
    stage: Stage,
    /// What the open window measures.
    phase: Phase,
    pending: Option<Plan>,
    offered: Option<Offer>,
    /// Centre and noise windows (SPSA keeps the probe windows).
    window: Vec<(f64, u64)>,
    window_opened_us: u64,
    window_infeasible: bool,
    seen_centre_generation: u64,
    /// The centre before the last step, and its objective.
    previous: Option<(ParamVec, f64)>,
    /// After a revert: the objective the previous centre had.
    reverted_from: Option<f64>,
    /// Multiplier of `a_k` in (0, 1]: halved by a rejected step, regrown by
    /// accepted ones.
    gain_scale: f64,
    /// Per parameter: planned movement not yet committed (fraction of the
    /// range), held back by the reversal hysteresis or the guardrails.
    carry: ParamVec,
    /// Per parameter: typical recent step size (EWMA of |step|).
    typical_step: ParamVec,
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
            typical_step: ParamVec::zeros(n),
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
        let tuning = self.stage.is_tuning() && self.config.calibration.is_some();
        tuning.then_some(self.stage.measured().noise_sd)
    }

    /// Why [`new`](AdaptiveEngine::new) failed closed, if it did.
    pub fn misconfiguration(&self) -> Option<&EngineError> {
        self.misconfiguration.as_ref()
    }

    /// Starts measuring `phase` where a completed plan has moved the
    /// engine. A plan completed during the noise windows ends them
    /// ([`Stage::end_noise`]).
    fn enter(&mut self, phase: Phase) {
        self.stage.end_noise();
        self.phase = phase;
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
