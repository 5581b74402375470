//! [`SafetyExecutor`]: the sole writer of the live configuration.
//!
//! # What `apply` checks, in order
//!
//! The first failing check refuses the proposal with its [`Violation`]:
//!
//! 1. **Safe mode** (`InSafeMode`): any latched reason refuses everything
//!    but rollback. Timer and queue-drain exits are evaluated first.
//! 2. **Shape**: `WrongLength`, then `NonFinite` (first offending index).
//! 3. **Step size** (`DeltaTooLarge`): the change actually applied,
//!    `|(live[i] + delta[i]) − live[i]|` after rounding, is at most
//!    `max_delta_per_step · range[i]` for every parameter, perturbations
//!    included.
//! 4. **Bounds** (`OutOfBounds`): the result must be finite and within
//!    `bounds`. The executor rejects, it never clamps: what is applied is
//!    exactly what was proposed.
//! 5. **Excursion** (`ExcursionTooLarge`, probes only): the result stays
//!    within `max_delta_per_step · range[i]` of the centre.
//! 6. **Stabilisation** (`StabilizationPending`): `min_stable_time_us` after
//!    a rollback.
//! 7. **Rate** (`RateLimitExceeded`): `min_interval_us` since the last
//!    apply, then at most ⌊`max_updates_per_second`⌋ applies in any 1 s.
//! 8. **Direction flips** (`DirectionFlipViolation`, `Update` only): the
//!    committed move must not reverse a dimension more than
//!    `direction_flip_limit` times per minute; otherwise safe mode
//!    (`Thrashing`) for `cooldown_after_flip_us`.
//! 9. **Budget** (`CumulativeDeltaViolation`, `Update` only): committed
//!    movement per dimension per minute within
//!    `max_cumulative_delta_per_minute`; otherwise safe mode
//!    (`BudgetExhausted`) until the window has cleared.
//! 10. **Audit** (`AuditQueueFull`): the decision's event must fit below the
//!     queue's reserve; otherwise safe mode until it drains.
//!
//! Content checks (2–5) come before timing checks (6–9) so that a proposal
//! that can never pass is reported as such, not as "retry later".
//!
//! A refused proposal leaves the live config, the centre, the rate window,
//! the flip history and the budget untouched. What a refusal may change is
//! the safety state it reports: the latches of rules 8, 9 and 10, and the
//! count of consecutive malformed proposals (rules 2–5), which latches
//! `RepeatedViolations` at `Guardrails::violation_limit`.
//!
//! # Centre and probes
//!
//! The executor keeps the *centre*, the committed configuration. `Update`
//! moves it; `ApplyPlus`/`ApplyMinus` only move the live config around it
//! (see [`Proposal`]). Flip and budget accounting use the committed move
//! `new_centre − old_centre`; components smaller than 10⁻⁹ of the range are
//! rounding, not direction.
//!
//! # Baseline, outcomes and rollback
//!
//! * [`set_baseline`](SafetyExecutor::set_baseline) records the **centre**
//!   (not a probe point) as the baseline.
//! * [`report_outcome`](SafetyExecutor::report_outcome) takes the objective
//!   measured at the centre's generation (lower is better). While the centre
//!   is the baseline, reports refine the baseline's mean and noise; otherwise
//!   they are judged against it (see [`RollbackPolicy`]).
//! * `max_consecutive_regressions` consecutive regressed reports roll back
//!   automatically. `Guardrails::regression_count_limit` counts consecutive
//!   regressed reports *across* rollbacks (only an acceptable report resets
//!   it): when the optimiser keeps regressing after being rolled back, safe
//!   mode (`Regressions`) latches until an operator resumes.
//! * [`rollback`](SafetyExecutor::rollback) restores the baseline bit for
//!   bit under a new generation. It passes in safe mode and is exempt from
//!   the step, rate and budget rules (it returns to a known-good config);
//!   it clears the direction memory and starts the `min_stable_time_us`
//!   hold. A rollback that makes more than `max_rollbacks_per_hour` in an
//!   hour still happens, then trips the circuit breaker (safe mode
//!   `RollbackCircuitBreaker`, manual resume).
//!
//! # Time
//!
//! Time comes from the injected [`Clock`]. If it goes backwards the executor
//! uses the latest time it has seen instead (counted in
//! [`ExecutorStats::clock_regressions`]), so windows and timers never run in
//! reverse. Readings beyond [`MAX_TIME_US`] are clamped to it, so a glitched
//! clock cannot push the windows into saturation (where they would stop
//! limiting); it fails closed instead.
//!
//! # Construction
//!
//! [`SafetyExecutor::builder`] validates everything and returns a
//! [`ConfigError`] on bad settings. [`SafetyExecutor::new`], the seed's
//! constructor, never panics: on bad settings it returns an executor that is
//! latched in safe mode for reason `Misconfigured` (fail closed), refuses
//! every request, and reports the error through
//! [`misconfiguration`](SafetyExecutor::misconfiguration) and a
//! `tracing` error event.

use crate::audit::{AuditDetails, AuditQueue, OutcomeVerdict, RequestKind, RollbackReason};
use crate::clock::{Clock, SystemClock};
use crate::config_atomic::{AtomicConfig, ConfigSnapshot, ConfigWriter};
use crate::error::ConfigError;
use crate::guardrails::Guardrails;
use crate::limits::{BudgetWindow, TimeRing, BUDGET_CLEAR_US};
use crate::proposal::{Proposal, ProposalKind};
use crate::rollback::RollbackPolicy;
use crate::safe_mode::{ControlSafety, ReasonSet, SafeModeExit, SafeModeReason};
use crate::space::ParamSpace;
use crate::stats::RunningStats;
use crate::sync::Arc;
use crate::violation::{RateRule, Violation};
use crate::ParamVec;
use serde::{Deserialize, Serialize};

mod persist;
pub use persist::{ExecutorState, PersistedExit, PersistedLatch, EXECUTOR_STATE_VERSION};

/// Baseline reports needed before outcomes are judged against it.
pub const MIN_BASELINE_REPORTS: u64 = 2;
/// Default [`AuditQueue`] capacity when the builder is given none.
pub const DEFAULT_AUDIT_CAPACITY: usize = 4096;

const SECOND_US: u64 = 1_000_000;
const MINUTE_US: u64 = 60 * SECOND_US;
const HOUR_US: u64 = 60 * MINUTE_US;
/// Latest time the executor accepts from its clock (2⁶² µs, ~146,000
/// years). A reading beyond it is clamped: with times near `u64::MAX` the
/// windows' `t + window` would saturate and stop limiting anything, whereas
/// a clamped clock fails closed (windows fill and timers never expire).
pub const MAX_TIME_US: u64 = 1 << 62;
/// Committed moves smaller than this fraction of the range have no direction.
const DIRECTION_EPSILON: f64 = 1e-9;

/// The seed's executor interface.
///
/// ```
/// use hotpath::{AtomicConfig, Guardrails, ParamVec, Proposal, SafeExecutor, SafetyExecutor};
/// use std::sync::Arc;
///
/// fn nudge(executor: &mut impl SafeExecutor) -> bool {
///     executor
///         .apply(Proposal::Update {
///             iteration: 1,
///             delta: ParamVec::from_slice(&[0.01]),
///             gradient_estimate: ParamVec::from_slice(&[-0.1]),
///         })
///         .is_ok()
/// }
///
/// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
/// let mut executor = SafetyExecutor::new(config, Guardrails::default());
/// assert!(nudge(&mut executor));
/// ```
pub trait SafeExecutor {
    /// Apply a proposal through the guardrails.
    fn apply(&mut self, proposal: Proposal) -> Result<ApplyReceipt, Violation>;
    /// Restore the baseline.
    fn rollback(&mut self) -> Result<RollbackReceipt, Violation>;
    /// Record the current centre as the baseline.
    fn set_baseline(&mut self) -> Result<u64, Violation>;
    /// The live configuration, by value (no allocation up to 16 params).
    fn snapshot(&self) -> ConfigSnapshot;
}

/// Proof that a proposal was judged and applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyReceipt {
    /// The proposal's kind.
    pub kind: ProposalKind,
    /// Generation before.
    pub old_generation: u64,
    /// Generation after (equal to `old_generation` for `NoChange`).
    pub new_generation: u64,
    /// When it was applied (µs).
    pub timestamp_us: u64,
    /// Sequence number of its audit event; `None` for `NoChange`, which
    /// changes nothing and is not an executor decision.
    pub audit_seq: Option<u64>,
}

/// Proof that the baseline was restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackReceipt {
    /// Why.
    pub reason: RollbackReason,
    /// Generation before.
    pub old_generation: u64,
    /// Generation of the restored baseline.
    pub new_generation: u64,
    /// When (µs).
    pub timestamp_us: u64,
    /// Sequence number of its audit event.
    pub audit_seq: u64,
    /// `true` if this rollback tripped the circuit breaker.
    pub circuit_breaker_tripped: bool,
}

/// What [`SafetyExecutor::report_outcome`] concluded and did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OutcomeReceipt {
    /// The verdict.
    pub verdict: OutcomeVerdict,
    /// The automatic rollback it caused, if any.
    pub rollback: Option<RollbackReceipt>,
    /// `true` if it latched safe mode (`Regressions`).
    pub safe_mode_latched: bool,
}

/// Counters for monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorStats {
    /// Proposals applied (`NoChange` excluded).
    pub applied: u64,
    /// Requests refused.
    pub refused: u64,
    /// Rollbacks performed.
    pub rollbacks: u64,
    /// Audit events that could not be recorded (reported in the trail by an
    /// `EventsDropped` record once the queue has room).
    pub audit_dropped: u64,
    /// Times the clock was seen going backwards.
    pub clock_regressions: u64,
}

/// The recorded baseline and the statistics of its outcome reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// The baseline configuration (the centre when it was set).
    pub snapshot: ConfigSnapshot,
    reports: RunningStats,
}

impl Baseline {
    fn new(snapshot: ConfigSnapshot) -> Self {
        Self {
            snapshot,
            reports: RunningStats::default(),
        }
    }

    /// Outcome reports received while the centre was the baseline.
    pub fn reports(&self) -> u64 {
        self.reports.count()
    }

    /// Their mean.
    pub fn mean(&self) -> f64 {
        self.reports.mean()
    }

    /// Their sample standard deviation (0 with fewer than two).
    pub fn sd(&self) -> f64 {
        self.reports.sd()
    }
}

/// Builds a [`SafetyExecutor`] with validated settings.
///
/// ```
/// use hotpath::{AtomicConfig, Guardrails, ManualClock, ParamVec, RollbackPolicy, SafetyExecutor};
/// use std::sync::Arc;
///
/// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[100.0])));
/// let executor = SafetyExecutor::builder(config)
///     .guardrails(Guardrails::preset_conservative().with_bounds(vec![(10.0, 1000.0)]))
///     .rollback_policy(RollbackPolicy::preset_conservative())
///     .clock(ManualClock::new(0))
///     .audit_capacity(1024)
///     .build()
///     .expect("valid settings");
/// assert_eq!(executor.snapshot().params[0], 100.0);
/// ```
pub struct ExecutorBuilder<C = SystemClock> {
    config: Arc<AtomicConfig>,
    space: Option<Arc<ParamSpace>>,
    guardrails: Guardrails,
    rollback_policy: RollbackPolicy,
    audit_queue: Option<Arc<AuditQueue>>,
    audit_capacity: usize,
    clock: C,
    restore: Option<ExecutorState>,
    audit_sequence_start: Option<u64>,
}

impl<C: Clock> ExecutorBuilder<C> {
    /// Restores a persisted [`ExecutorState`] (see its docs). The
    /// configuration must hold exactly the state's live values, at the
    /// state's generation or a later one (build it with
    /// [`AtomicConfig::with_generation`]; later when an audit log shows
    /// generations the state file had not caught up with, so generations keep
    /// rising). The executor then records a `Restored` audit event instead of
    /// `Started`.
    pub fn restore(mut self, state: ExecutorState) -> Self {
        self.restore = Some(state);
        self
    }

    /// The sequence number of the first audit event (default: the restored
    /// state's next number, or 0). A durable audit log that is reopened
    /// knows the number its chain expects next; pass it here so numbering
    /// stays gap-free across restarts. It wins over the restored state's,
    /// which may be ahead of the log (events queued but not yet written
    /// when the process died) or behind it (a state saved earlier).
    pub fn audit_sequence_start(mut self, seq: u64) -> Self {
        self.audit_sequence_start = Some(seq);
        self
    }

    /// The parameters' names and bounds (default: the guardrails' `bounds`,
    /// or unbounded parameters named `p0`, `p1`, …). When both are given,
    /// the guardrails' bounds must be the space's.
    pub fn space(mut self, space: Arc<ParamSpace>) -> Self {
        self.space = Some(space);
        self
    }

    /// The guardrails (default: Balanced).
    pub fn guardrails(mut self, guardrails: Guardrails) -> Self {
        self.guardrails = guardrails;
        self
    }

    /// The rollback policy (default: Balanced).
    pub fn rollback_policy(mut self, policy: RollbackPolicy) -> Self {
        self.rollback_policy = policy;
        self
    }

    /// An existing audit queue to write to (shared with its consumer).
    pub fn audit_queue(mut self, queue: Arc<AuditQueue>) -> Self {
        self.audit_queue = Some(queue);
        self
    }

    /// Capacity of a new audit queue (default
    /// [`DEFAULT_AUDIT_CAPACITY`]); ignored if a queue is given.
    pub fn audit_capacity(mut self, capacity: usize) -> Self {
        self.audit_capacity = capacity;
        self
    }

    /// The clock (default: [`SystemClock`]).
    pub fn clock<C2: Clock>(self, clock: C2) -> ExecutorBuilder<C2> {
        ExecutorBuilder {
            config: self.config,
            space: self.space,
            guardrails: self.guardrails,
            rollback_policy: self.rollback_policy,
            audit_queue: self.audit_queue,
            audit_capacity: self.audit_capacity,
            clock,
            restore: self.restore,
            audit_sequence_start: self.audit_sequence_start,
        }
    }

    /// Validates the settings against the configuration, claims its writer
    /// and records a `Started` audit event.
    pub fn build(self) -> Result<SafetyExecutor<C>, ConfigError> {
        let n = self.config.len();
        let mut guardrails = self.guardrails;
        guardrails.validate_for(n)?;
        self.rollback_policy.validate()?;
        let space = match self.space {
            None => Arc::new(ParamSpace::from_guardrails(&guardrails, n)?),
            Some(space) => {
                if space.len() != n {
                    return Err(ConfigError::SpaceLength {
                        expected: n,
                        got: space.len(),
                    });
                }
                if let Some(bounds) = &guardrails.bounds {
                    if let Some(index) =
                        (0..n).find(|&i| Some(bounds[i]) != space.knobs()[i].bounds())
                    {
                        return Err(ConfigError::BoundsMismatch { index });
                    }
                }
                guardrails.bounds = space.guardrail_bounds();
                space
            }
        };
        let live = self.config.load();
        if let Some(index) = space.first_outside(&live.params) {
            let (min, max) = space.bounds(index);
            return Err(ConfigError::InitialOutOfBounds {
                index,
                value: live.params[index],
                min,
                max,
            });
        }
        if let Some(state) = &self.restore {
            state
                .check(&space)
                .map_err(|reason| ConfigError::InvalidState { reason })?;
            if !(state.live.generation <= live.generation && state.live.params.bit_eq(&live.params))
            {
                return Err(ConfigError::InvalidState {
                    reason: "the configuration does not hold the state's live values at its generation or later",
                });
            }
        }
        let audit_queue = match self.audit_queue {
            Some(q) => q,
            None => Arc::new(AuditQueue::try_new(self.audit_capacity)?),
        };
        let writer = self.config.claim_writer().ok_or(ConfigError::WriterTaken)?;
        let mut executor = SafetyExecutor::assemble(
            self.config,
            Some(writer),
            space,
            guardrails,
            self.rollback_policy,
            audit_queue,
            self.clock,
            live,
        );
        let now = executor.now();
        let params = executor.live.clone();
        let details = match self.restore {
            Some(state) => {
                executor.load_state(state);
                AuditDetails::Restored {
                    params,
                    safe_mode: executor.control_safety.reasons(),
                }
            }
            None => AuditDetails::Started { params },
        };
        if let Some(seq) = self.audit_sequence_start {
            executor.next_seq = seq;
        }
        // A full queue at start is recorded as dropped, like any other event.
        executor.record(now, details, Priority::Safety);
        Ok(executor)
    }
}

/// A change of at most this much (in the parameter's units) is certainly
/// within `limit` of `range`, as the exact rule `fl(|change| / range) <=
/// limit` would decide, so the division can be skipped. `fl(limit · range)`
/// is within a factor `1 ± u` (u = 2⁻⁵³) of the real product, and shrinking
/// it by 2⁻⁵⁰ = 8u more than covers that rounding, the rounding of the
/// shrink and the division's own: `change ≤ cap` implies `change / range ≤
/// limit · (1 − 5u)`, whose rounding is at most `limit`. Where the product
/// is not a normal number (overflow, underflow) the cap is −∞: always
/// divide.
fn step_cap(limit: f64, range: f64) -> f64 {
    let product = limit * range;
    if product.is_normal() && range.is_normal() {
        product * (1.0 - f64::powi(2.0, -50))
    } else if product == 0.0 && range.is_normal() {
        // A zero limit: only a zero change passes, exactly as dividing.
        0.0
    } else {
        f64::NEG_INFINITY
    }
}

/// Which part of the audit queue an event may use.
#[derive(Clone, Copy, PartialEq)]
enum Priority {
    /// Changes and reports: refused once the reserve is reached.
    Normal,
    /// Refusals, rollbacks, safe mode: may use the reserve.
    Safety,
    /// The optimiser's notes: below the reserve, counted if dropped (the
    /// decision they record has already been taken).
    Note,
}

/// The sole actuator of an [`AtomicConfig`]: every change passes its
/// guardrails, safe mode, rollback policy and audit trail. See the
/// [module docs](self) for the rules and their order.
///
/// ```
/// use hotpath::{AtomicConfig, Guardrails, ParamVec, Proposal, SafetyExecutor};
/// use std::sync::Arc;
///
/// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5, 0.5])));
/// let mut executor = SafetyExecutor::new(config.clone(), Guardrails::default());
///
/// // Set baseline for rollback
/// executor.set_baseline().unwrap();
///
/// // Apply a proposal
/// let proposal = Proposal::Update {
///     iteration: 1,
///     delta: ParamVec::from_slice(&[0.01, -0.01]),
///     gradient_estimate: ParamVec::from_slice(&[0.1, -0.1]),
/// };
///
/// match executor.apply(proposal) {
///     Ok(receipt) => println!("Applied, gen={}", receipt.new_generation),
///     Err(violation) => println!("Rejected: {violation}"),
/// }
/// assert_eq!(config.generation(), 1);
///
/// // Too large a step is refused, and the live config is untouched.
/// let too_big = Proposal::Update {
///     iteration: 2,
///     delta: ParamVec::from_slice(&[0.5, 0.0]),
///     gradient_estimate: ParamVec::from_slice(&[0.0, 0.0]),
/// };
/// assert!(executor.apply(too_big).is_err());
/// assert_eq!(config.generation(), 1);
/// ```
pub struct SafetyExecutor<C = SystemClock> {
    config: Arc<AtomicConfig>,
    writer: Option<ConfigWriter>,
    misconfiguration: Option<ConfigError>,
    guardrails: Guardrails,
    rollback_policy: RollbackPolicy,
    control_safety: ControlSafety,
    audit_queue: Arc<AuditQueue>,
    clock: C,
    latest_now: u64,
    /// The parameters' names, bounds and ranges.
    space: Arc<ParamSpace>,
    /// Per parameter: see [`step_cap`].
    step_cap: Box<[f64]>,
    /// Scratch: the signed committed move of the `Update` being checked, as
    /// fractions of the ranges.
    moves: Box<[f64]>,
    /// Scratch: bit `i` set if `moves[i]` sets a direction other than the
    /// last one recorded for parameter `i` (a first move or a reversal);
    /// the flip rule and `commit_centre` visit only those parameters. See
    /// [`turned`] for more than 64 parameters.
    turn_mask: u64,
    live: ParamVec,
    live_generation: u64,
    centre: ParamVec,
    centre_generation: u64,
    /// Scratch for the candidate values, so `apply` does not allocate.
    candidate: ParamVec,
    baseline: Option<Baseline>,
    centre_is_baseline: bool,
    rate: TimeRing,
    /// Per dimension: last committed direction (−1, 0, +1).
    directions: Box<[f64]>,
    /// Per dimension: times of recent direction reversals.
    flips: Box<[TimeRing]>,
    budget: BudgetWindow,
    rollbacks: TimeRing,
    stable_until_us: u64,
    regressions_since_rollback: u32,
    regressions_total: u32,
    consecutive_malformed: u32,
    next_seq: u64,
    dropped_since_last: u64,
    stats: ExecutorStats,
}

impl SafetyExecutor<SystemClock> {
    /// The seed's constructor: Balanced rollback policy, system clock, a new
    /// audit queue of [`DEFAULT_AUDIT_CAPACITY`].
    ///
    /// Never panics. Invalid settings (or a configuration that already has
    /// an executor) give an executor latched in safe mode for
    /// `Misconfigured`, which refuses everything; use
    /// [`builder`](Self::builder) to get the [`ConfigError`] instead.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, Guardrails, ParamVec, SafeModeReason, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let first = SafetyExecutor::new(config.clone(), Guardrails::default());
    /// let second = SafetyExecutor::new(config, Guardrails::default());
    /// assert!(first.misconfiguration().is_none());
    /// assert!(second.control_safety().reasons().contains(SafeModeReason::Misconfigured));
    /// ```
    pub fn new(config: Arc<AtomicConfig>, guardrails: Guardrails) -> Self {
        match Self::builder(Arc::clone(&config))
            .guardrails(guardrails)
            .build()
        {
            Ok(executor) => executor,
            Err(error) => Self::failed_closed(config, error),
        }
    }

    /// An executor that refuses everything (safe mode `Misconfigured`),
    /// reporting `error`: what `new` returns on bad settings.
    pub(crate) fn failed_closed(config: Arc<AtomicConfig>, error: ConfigError) -> Self {
        tracing::error!(%error, "SafetyExecutor misconfigured; it will refuse every request");
        let live = config.load();
        let n = live.params.len();
        let mut executor = SafetyExecutor::assemble(
            config,
            None,
            Arc::new(ParamSpace::unbounded(n)),
            Guardrails::preset_conservative(),
            RollbackPolicy::preset_conservative(),
            Arc::new(AuditQueue::new(DEFAULT_AUDIT_CAPACITY)),
            SystemClock::new(),
            live,
        );
        executor.misconfiguration = Some(error);
        executor
            .control_safety
            .latch(SafeModeReason::Misconfigured, SafeModeExit::Never);
        executor
    }

    /// A builder for every setting; [`ExecutorBuilder::build`] validates.
    pub fn builder(config: Arc<AtomicConfig>) -> ExecutorBuilder<SystemClock> {
        ExecutorBuilder {
            config,
            space: None,
            guardrails: Guardrails::default(),
            rollback_policy: RollbackPolicy::default(),
            audit_queue: None,
            audit_capacity: DEFAULT_AUDIT_CAPACITY,
            clock: SystemClock::new(),
            restore: None,
            audit_sequence_start: None,
        }
    }
}

impl<C: Clock> SafetyExecutor<C> {
    #[allow(clippy::too_many_arguments)] // one call each from `build` and `failed_closed`
    fn assemble(
        config: Arc<AtomicConfig>,
        writer: Option<ConfigWriter>,
        space: Arc<ParamSpace>,
        guardrails: Guardrails,
        rollback_policy: RollbackPolicy,
        audit_queue: Arc<AuditQueue>,
        clock: C,
        live: ConfigSnapshot,
    ) -> Self {
        let n = live.params.len();
        let limit = guardrails.max_delta_per_step;
        let step_cap = space.ranges().iter().map(|&r| step_cap(limit, r)).collect();
        // Validation bounds these: rate ≤ 1000, flips as given (u32), and
        // rollbacks ≤ 1000, so every ring is allocated once, here.
        let rate = TimeRing::new(guardrails.max_updates_per_second as usize);
        let flips = (0..n)
            .map(|_| TimeRing::new(guardrails.direction_flip_limit as usize))
            .collect();
        let rollbacks = TimeRing::new(rollback_policy.max_rollbacks_per_hour as usize);
        let latest_now = clock.now_us().min(MAX_TIME_US);
        Self {
            config,
            writer,
            misconfiguration: None,
            space,
            step_cap,
            moves: vec![0.0; n].into_boxed_slice(),
            turn_mask: 0,
            rate,
            directions: vec![0.0; n].into_boxed_slice(),
            flips,
            budget: BudgetWindow::new(n),
            rollbacks,
            guardrails,
            rollback_policy,
            control_safety: ControlSafety::default(),
            audit_queue,
            clock,
            latest_now,
            candidate: live.params.clone(),
            centre: live.params.clone(),
            centre_generation: live.generation,
            live_generation: live.generation,
            live: live.params,
            baseline: None,
            centre_is_baseline: false,
            stable_until_us: 0,
            regressions_since_rollback: 0,
            regressions_total: 0,
            consecutive_malformed: 0,
            next_seq: 0,
            dropped_since_last: 0,
            stats: ExecutorStats::default(),
        }
    }

    /// Applies a proposal through the guardrails (see the [module
    /// docs](self) for the order of checks). On refusal nothing changes but
    /// the safety state the violation reports, and the refusal is audited.
    ///
    /// Allocation-free for up to 16 parameters.
    pub fn apply(&mut self, proposal: Proposal) -> Result<ApplyReceipt, Violation> {
        let now = self.now();
        let kind = proposal.kind();
        let Some(delta) = proposal.delta() else {
            return Ok(ApplyReceipt {
                kind,
                old_generation: self.live_generation,
                new_generation: self.live_generation,
                timestamp_us: now,
                audit_seq: None,
            });
        };
        let correlation_id = proposal.correlation_id();
        self.expire_safe_mode(now);
        if let Err(violation) = self.check(kind, delta, now) {
            self.refuse(
                now,
                RequestKind::Proposal(kind),
                correlation_id,
                violation,
                delta,
            );
            return Err(violation);
        }
        let old_generation = self.live_generation;
        let recorded = self.record_with(now, Priority::Normal, |details, ex| {
            details.set_applied(kind, correlation_id, old_generation, delta, &ex.candidate);
        });
        let Some(seq) = recorded else {
            let violation = self.queue_full();
            self.refuse(
                now,
                RequestKind::Proposal(kind),
                correlation_id,
                violation,
                delta,
            );
            return Err(violation);
        };
        let new_generation = self.publish_candidate();
        if kind == ProposalKind::Update {
            self.commit_centre(now);
        }
        self.rate.push(now);
        self.consecutive_malformed = 0;
        self.stats.applied += 1;
        Ok(ApplyReceipt {
            kind,
            old_generation,
            new_generation,
            timestamp_us: now,
            audit_seq: Some(seq),
        })
    }

    /// Every rule, without changing anything but time-driven windows; fills
    /// `self.candidate` with the values the proposal would produce.
    fn check(&mut self, kind: ProposalKind, delta: &[f64], now: u64) -> Result<(), Violation> {
        if self.control_safety.is_latched() {
            if let Some((reason, until_us)) = self.control_safety.first() {
                return Err(Violation::InSafeMode { reason, until_us });
            }
        }
        let n = self.live.len();
        if delta.len() != n {
            return Err(Violation::WrongLength {
                expected: n,
                got: delta.len(),
            });
        }
        // One pass computes the candidate and the committed moves, and
        // flags, without a branch per parameter, whether any content rule
        // (non-finite input shows up as a non-finite candidate or change)
        // or, for an `Update`, any flip or budget rule might fail. Only then
        // do the ordered checks run, to name the first violation.
        let update = kind == ProposalKind::Update;
        if update {
            self.budget.advance(now);
        }
        let budget = self.guardrails.max_cumulative_delta_per_minute;
        let mut suspect = false;
        let mut overspend = false;
        let mut turns = false;
        let live = &self.live[..n];
        let t = &*self.space;
        let step_cap = &self.step_cap[..n];
        let (lo, hi) = (&t.finite_lows()[..n], &t.finite_highs()[..n]);
        let inv_range = &t.inv_ranges()[..n];
        let candidate = &mut self.candidate[..n];
        let centre = &self.centre[..n];
        let moves = &mut self.moves[..n];
        let directions = &self.directions[..n];
        let totals = &self.budget.totals()[..n];
        for i in 0..n {
            let c = live[i] + delta[i];
            candidate[i] = c;
            // Negated comparisons on purpose: NaN fails every one of them.
            #[allow(clippy::neg_cmp_op_on_partial_ord)]
            let out = !((c - live[i]).abs() <= step_cap[i]) | !(c >= lo[i]) | !(c <= hi[i]);
            suspect |= out;
            let m = (c - centre[i]) * inv_range[i];
            moves[i] = m;
            // A real move (beyond the epsilon) not in the direction last
            // recorded: a first move, or a reversal.
            #[allow(clippy::neg_cmp_op_on_partial_ord)]
            let turn = (m.abs() > DIRECTION_EPSILON) & !(m * directions[i] > 0.0);
            turns |= turn;
            overspend |= totals[i] + m.abs() > budget;
        }
        self.turn_mask = 0;
        if suspect {
            self.check_content(delta)?;
        }
        let g = &self.guardrails;
        let limit = g.max_delta_per_step;
        if kind != ProposalKind::Update {
            for (index, ((&c, &centre), (&cap, &range))) in self
                .candidate
                .iter()
                .zip(self.centre.iter())
                .zip(self.step_cap.iter().zip(self.space.ranges()))
                .enumerate()
            {
                if let Some(excursion) = beyond((c - centre).abs(), cap, range, limit) {
                    return Err(Violation::ExcursionTooLarge {
                        index,
                        excursion,
                        limit,
                    });
                }
            }
        }
        if now < self.stable_until_us {
            return Err(Violation::StabilizationPending {
                retry_at_us: self.stable_until_us,
            });
        }
        if let Some(last) = self.rate.last() {
            let next = last.saturating_add(g.min_interval_us);
            if now < next {
                return Err(Violation::RateLimitExceeded {
                    rule: RateRule::MinInterval,
                    retry_at_us: next,
                });
            }
        }
        if let Err(retry_at_us) = self.rate.admits(now, SECOND_US) {
            return Err(Violation::RateLimitExceeded {
                rule: RateRule::PerSecond,
                retry_at_us,
            });
        }
        if update && (turns || overspend) {
            if turns {
                self.turn_mask = self.turn_mask_of_moves();
            }
            self.check_commit(now, turns, overspend)?;
        }
        Ok(())
    }

    /// The content rules in their documented order (non-finite input, step,
    /// bounds), for a proposal the fast pass in `check` flagged; the
    /// candidate is already computed.
    fn check_content(&self, delta: &[f64]) -> Result<(), Violation> {
        if let Some(index) = delta.iter().position(|d| !d.is_finite()) {
            return Err(Violation::NonFinite { index });
        }
        let limit = self.guardrails.max_delta_per_step;
        let n = delta.len();
        let (live, candidate) = (&self.live[..n], &self.candidate[..n]);
        let t = &*self.space;
        for index in 0..n {
            // The step is measured on the value that would be applied, not
            // on the delta: `live + delta` rounds, and may move further. A
            // refusal reports exactly `|change| / range`, the documented
            // quantity; the division is skipped when `step_cap` proves the
            // step is within the limit.
            let change = (candidate[index] - live[index]).abs();
            if let Some(step) = beyond(change, self.step_cap[index], t.ranges()[index], limit) {
                return Err(Violation::DeltaTooLarge {
                    index,
                    delta: step,
                    limit,
                });
            }
        }
        let bounds = t.mins().iter().zip(t.maxs());
        for (index, (&value, (&min, &max))) in candidate.iter().zip(bounds).enumerate() {
            if !(value.is_finite() && value >= min && value <= max) {
                return Err(Violation::OutOfBounds {
                    index,
                    value,
                    min,
                    max,
                });
            }
        }
        Ok(())
    }

    /// Which parameters' moves turn (see `turn_mask`), from the moves the
    /// pass in `check` computed; only called when that pass saw a turn.
    fn turn_mask_of_moves(&self) -> u64 {
        let mut mask = 0u64;
        for (i, (&m, &last)) in self.moves.iter().zip(self.directions.iter()).enumerate() {
            #[allow(clippy::neg_cmp_op_on_partial_ord)]
            let turn = (m.abs() > DIRECTION_EPSILON) & !(m * last > 0.0);
            mask |= u64::from(turn) << (i % 64);
        }
        mask
    }

    /// Flip and budget rules, in order, for the committed move
    /// `candidate − centre` of an `Update` the pass in `check` flagged
    /// (which computed the moves and advanced the budget window).
    fn check_commit(&self, now: u64, turns: bool, overspend: bool) -> Result<(), Violation> {
        let budget = self.guardrails.max_cumulative_delta_per_minute;
        let g = &self.guardrails;
        // The flagged rules only (a rule the pass did not flag cannot fail),
        // in their documented order.
        let n = if turns { self.moves.len() } else { 0 };
        for index in turned(n, self.turn_mask) {
            let (m, last) = (self.moves[index], self.directions[index]);
            let direction = direction_of(m);
            if direction != 0.0 && last != 0.0 && direction != last {
                let ring = &self.flips[index];
                if ring.admits(now, MINUTE_US).is_err() {
                    return Err(Violation::DirectionFlipViolation {
                        index,
                        flips: ring.count_within(now, MINUTE_US) as u32 + 1,
                        limit: g.direction_flip_limit,
                        cooldown_until_us: now.saturating_add(g.cooldown_after_flip_us),
                    });
                }
            }
        }
        let moves = if overspend { &self.moves[..] } else { &[] };
        for (index, (&m, &total)) in moves.iter().zip(self.budget.totals()).enumerate() {
            let spent = total + m.abs();
            if spent > budget {
                return Err(Violation::CumulativeDeltaViolation {
                    index,
                    spent,
                    limit: budget,
                    retry_at_us: now.saturating_add(BUDGET_CLEAR_US),
                });
            }
        }
        Ok(())
    }

    /// Moves the centre to the (just published) candidate, recording flips
    /// and spending budget, from the moves `check_commit` computed.
    fn commit_centre(&mut self, now: u64) {
        let n = self.moves.len();
        let (moves, directions) = (&self.moves[..n], &mut self.directions[..n]);
        let (spent, totals) = self.budget.current_mut();
        let (spent, totals) = (&mut spent[..n], &mut totals[..n]);
        if self.turn_mask != 0 {
            for i in turned(n, self.turn_mask) {
                let direction = direction_of(moves[i]);
                if direction != 0.0 {
                    if directions[i] != 0.0 && directions[i] != direction {
                        self.flips[i].push(now);
                    }
                    directions[i] = direction;
                }
            }
        }
        for i in 0..n {
            spent[i] += moves[i].abs();
            totals[i] += moves[i].abs();
        }
        self.centre.copy_from(&self.candidate);
        self.centre_generation = self.live_generation;
        self.centre_is_baseline = false;
    }

    /// Publishes `self.candidate` as the live config. Only called after its
    /// audit event is queued; only an executor with a writer gets here.
    fn publish_candidate(&mut self) -> u64 {
        if let Some(writer) = self.writer.as_mut() {
            self.live_generation = writer.publish(&self.candidate);
            self.live.copy_from(&self.candidate);
        }
        self.live_generation
    }

    /// Audits a refusal and latches what the violation calls for.
    fn refuse(
        &mut self,
        now: u64,
        request: RequestKind,
        correlation_id: u64,
        violation: Violation,
        delta: &[f64],
    ) {
        self.stats.refused += 1;
        self.record_with(now, Priority::Safety, |details, _| {
            details.set_rejected(request, correlation_id, violation, delta);
        });
        let latch = match violation {
            Violation::DirectionFlipViolation {
                cooldown_until_us, ..
            } => Some((
                SafeModeReason::Thrashing,
                SafeModeExit::At(cooldown_until_us),
            )),
            Violation::CumulativeDeltaViolation { retry_at_us, .. } => Some((
                SafeModeReason::BudgetExhausted,
                SafeModeExit::At(retry_at_us),
            )),
            Violation::AuditQueueFull { .. } => {
                Some((SafeModeReason::AuditQueueFull, SafeModeExit::QueueDrained))
            }
            v if v.is_malformed() => {
                self.consecutive_malformed = self.consecutive_malformed.saturating_add(1);
                (self.consecutive_malformed >= self.guardrails.violation_limit)
                    .then_some((SafeModeReason::RepeatedViolations, SafeModeExit::Manual))
            }
            _ => None,
        };
        if let Some((reason, exit)) = latch {
            self.latch(now, reason, exit);
        }
    }

    /// Latches safe mode for `reason` (audited, if not already latched).
    fn latch(&mut self, now: u64, reason: SafeModeReason, exit: SafeModeExit) {
        let was_latched = self.control_safety.exit_of(reason).is_some();
        self.control_safety.latch(reason, exit);
        if !was_latched {
            tracing::warn!(%reason, "safe mode latched");
            self.record(
                now,
                AuditDetails::SafeModeEntered { reason, exit },
                Priority::Safety,
            );
        }
    }

    fn queue_full(&self) -> Violation {
        Violation::AuditQueueFull {
            capacity: self.audit_queue.capacity(),
        }
    }

    /// Exits every reason whose timer ran out or whose queue drained, each
    /// only once its exit event is recorded.
    fn expire_safe_mode(&mut self, now: u64) {
        if !self.control_safety.is_latched() {
            return;
        }
        let drained = self.audit_queue.len() <= self.audit_queue.high_water_mark();
        for reason in self.control_safety.due(now, drained).iter() {
            if self
                .record(
                    now,
                    AuditDetails::SafeModeExited { reason },
                    Priority::Safety,
                )
                .is_some()
            {
                let mut one = ReasonSet::EMPTY;
                one.insert(reason);
                self.control_safety.clear(one);
                tracing::info!(%reason, "safe mode exited");
            }
        }
    }

    /// Queues an event with the next sequence number, preceded by an
    /// `EventsDropped` record if earlier events were lost. Returns its
    /// sequence number, or `None` (counted as dropped) if it did not fit.
    fn record(&mut self, now: u64, details: AuditDetails, priority: Priority) -> Option<u64> {
        self.record_with(now, priority, |slot, _| slot.clone_from(&details))
    }

    /// Records the event `write` describes, in place in the queue's slot
    /// (`write` gets the slot's previous details, whose vectors it may
    /// reuse, and read access to the executor). `write` runs once, or, if
    /// the event is dropped, once more on a scratch value for the log line.
    #[inline]
    fn record_with(
        &mut self,
        now: u64,
        priority: Priority,
        write: impl Fn(&mut AuditDetails, &Self),
    ) -> Option<u64> {
        let limit = match priority {
            Priority::Normal | Priority::Note => self.audit_queue.reserve_threshold(),
            Priority::Safety => self.audit_queue.capacity(),
        };
        if self.dropped_since_last > 0 {
            // The notice needs its own slot ahead of the event.
            let (seq, generation, count) =
                (self.next_seq, self.live_generation, self.dropped_since_last);
            let room = self.audit_queue.len() + 1 < limit
                && self.audit_queue.enqueue_below(limit, |event| {
                    event.seq = seq;
                    event.timestamp_us = now;
                    event.generation = generation;
                    event.details = AuditDetails::EventsDropped { count };
                });
            if !room {
                if priority != Priority::Normal {
                    self.dropped_with(write);
                }
                return None;
            }
            self.next_seq += 1;
            self.dropped_since_last = 0;
        }
        let seq = self.next_seq;
        let this: &Self = self;
        let recorded = this.audit_queue.enqueue_below(limit, |event| {
            event.seq = seq;
            event.timestamp_us = now;
            write(&mut event.details, this);
            event.generation = match event.details {
                // An apply's event carries the generation it will create.
                AuditDetails::Applied { .. } | AuditDetails::RolledBack { .. } => {
                    this.live_generation + 1
                }
                _ => this.live_generation,
            };
        });
        if recorded {
            self.next_seq += 1;
            Some(seq)
        } else {
            if priority != Priority::Normal {
                self.dropped_with(write);
            }
            None
        }
    }

    /// [`dropped`](Self::dropped) for an event described by a writer.
    fn dropped_with(&mut self, write: impl Fn(&mut AuditDetails, &Self)) {
        let mut details = AuditDetails::EventsDropped { count: 0 };
        write(&mut details, self);
        self.dropped(details);
    }

    /// Counts an event that could not be recorded. Normal events are not
    /// counted: their decision is refused instead, and the refusal is the
    /// (safety) event that gets counted if it too cannot be recorded.
    fn dropped(&mut self, details: AuditDetails) {
        self.dropped_since_last += 1;
        self.stats.audit_dropped += 1;
        tracing::error!(event = ?details, "audit event dropped: queue full");
    }

    /// The clock, clamped so it never goes backwards and never reaches the
    /// saturation point of the windows' arithmetic.
    fn now(&mut self) -> u64 {
        let t = self.clock.now_us().min(MAX_TIME_US);
        if t < self.latest_now {
            self.stats.clock_regressions += 1;
            return self.latest_now;
        }
        self.latest_now = t;
        t
    }

    /// Restores the baseline bit for bit under a new generation. Passes in
    /// safe mode (but not in `Misconfigured`); `NoBaseline` without one.
    pub fn rollback(&mut self) -> Result<RollbackReceipt, Violation> {
        self.rollback_for(RollbackReason::Manual)
    }

    /// [`rollback`](Self::rollback), recording `reason` (e.g. a constraint
    /// emergency detected by the caller).
    pub fn rollback_for(&mut self, reason: RollbackReason) -> Result<RollbackReceipt, Violation> {
        let now = self.now();
        self.expire_safe_mode(now);
        let refusal = if self.writer.is_none() {
            Some(Violation::InSafeMode {
                reason: SafeModeReason::Misconfigured,
                until_us: None,
            })
        } else if let Some(baseline) = &self.baseline {
            self.candidate.copy_from(&baseline.snapshot.params);
            None
        } else {
            Some(Violation::NoBaseline)
        };
        if let Some(violation) = refusal {
            self.refuse(now, RequestKind::Rollback, 0, violation, &[]);
            return Err(violation);
        }
        let old_generation = self.live_generation;
        let details = AuditDetails::RolledBack {
            reason,
            previous_generation: old_generation,
            params: self.candidate.clone(),
        };
        let Some(audit_seq) = self.record(now, details, Priority::Safety) else {
            let violation = self.queue_full();
            self.refuse(now, RequestKind::Rollback, 0, violation, &[]);
            return Err(violation);
        };
        let new_generation = self.publish_candidate();
        self.centre.copy_from(&self.candidate);
        self.centre_generation = new_generation;
        self.centre_is_baseline = true;
        self.directions.fill(0.0);
        self.stable_until_us = now.saturating_add(self.rollback_policy.min_stable_time_us);
        self.regressions_since_rollback = 0;
        self.stats.rollbacks += 1;
        let tripped = self.rollbacks.admits(now, HOUR_US).is_err();
        self.rollbacks.push(now);
        if tripped {
            self.latch(
                now,
                SafeModeReason::RollbackCircuitBreaker,
                SafeModeExit::Manual,
            );
        }
        tracing::warn!(?reason, new_generation, "rolled back to baseline");
        Ok(RollbackReceipt {
            reason,
            old_generation,
            new_generation,
            timestamp_us: now,
            audit_seq,
            circuit_breaker_tripped: tripped,
        })
    }

    /// Records the centre (the committed configuration, not a probe point)
    /// as the baseline, resetting its outcome statistics. Returns the
    /// baseline's generation.
    ///
    /// The seed's `set_baseline` returns nothing; this one reports the two
    /// ways it can be refused: `AuditQueueFull` (its event could not be
    /// recorded) and `InSafeMode` for a misconfigured executor.
    pub fn set_baseline(&mut self) -> Result<u64, Violation> {
        let now = self.now();
        if self.misconfiguration.is_some() {
            let violation = Violation::InSafeMode {
                reason: SafeModeReason::Misconfigured,
                until_us: None,
            };
            self.refuse(now, RequestKind::SetBaseline, 0, violation, &[]);
            return Err(violation);
        }
        let details = AuditDetails::BaselineSet {
            baseline_generation: self.centre_generation,
            params: self.centre.clone(),
        };
        if self.record(now, details, Priority::Normal).is_none() {
            let violation = self.queue_full();
            self.refuse(now, RequestKind::SetBaseline, 0, violation, &[]);
            return Err(violation);
        }
        self.baseline = Some(Baseline::new(ConfigSnapshot {
            generation: self.centre_generation,
            params: self.centre.clone(),
        }));
        self.centre_is_baseline = true;
        self.regressions_since_rollback = 0;
        self.regressions_total = 0;
        Ok(self.centre_generation)
    }

    /// Reports the objective measured at the centre (lower is better) for
    /// `generation`, which must be the centre's generation. See the
    /// [module docs](self) and [`RollbackPolicy`] for how it is judged and
    /// what it may trigger.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, Guardrails, ManualClock, OutcomeVerdict, ParamVec, Proposal,
    ///               RollbackPolicy, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let clock = ManualClock::new(0);
    /// let mut ex = SafetyExecutor::builder(config.clone())
    ///     .rollback_policy(RollbackPolicy { max_consecutive_regressions: 2, ..RollbackPolicy::default() })
    ///     .clock(clock.clone())
    ///     .build()
    ///     .unwrap();
    /// ex.set_baseline().unwrap();
    /// for y in [1.0, 1.02, 0.98] {
    ///     ex.report_outcome(0, y).unwrap(); // baseline: mean 1.0, sd 0.02
    /// }
    /// clock.advance(1_000_000);
    /// let gen = ex.apply(Proposal::Update {
    ///     iteration: 1,
    ///     delta: ParamVec::from_slice(&[0.05]),
    ///     gradient_estimate: ParamVec::from_slice(&[0.0]),
    /// }).unwrap().new_generation;
    /// assert!(matches!(ex.report_outcome(gen, 1.5).unwrap().verdict, OutcomeVerdict::Regressed { .. }));
    /// let second = ex.report_outcome(gen, 1.5).unwrap();
    /// assert!(second.rollback.is_some()); // two regressions: back to 0.5
    /// assert_eq!(config.load().params[0], 0.5);
    /// ```
    pub fn report_outcome(
        &mut self,
        generation: u64,
        objective: f64,
    ) -> Result<OutcomeReceipt, Violation> {
        let now = self.now();
        self.expire_safe_mode(now);
        let refusal = if self.misconfiguration.is_some() {
            Some(Violation::InSafeMode {
                reason: SafeModeReason::Misconfigured,
                until_us: None,
            })
        } else if !objective.is_finite() {
            Some(Violation::NonFiniteObjective)
        } else if generation != self.centre_generation {
            Some(Violation::StaleOutcome {
                reported: generation,
                centre: self.centre_generation,
            })
        } else {
            None
        };
        if let Some(violation) = refusal {
            self.refuse(now, RequestKind::Outcome, 0, violation, &[]);
            return Err(violation);
        }
        let verdict = match &self.baseline {
            None => OutcomeVerdict::Unjudged,
            Some(_) if self.centre_is_baseline => OutcomeVerdict::BaselineSample,
            Some(b) if b.reports() < MIN_BASELINE_REPORTS => OutcomeVerdict::Unjudged,
            Some(b) => {
                let p = &self.rollback_policy;
                let allowance =
                    (p.regression_sigmas * b.sd()).max(p.regression_tolerance * b.mean().abs());
                if objective > b.mean() + allowance {
                    OutcomeVerdict::Regressed {
                        consecutive: self.regressions_total.saturating_add(1),
                    }
                } else {
                    OutcomeVerdict::Acceptable
                }
            }
        };
        let details = AuditDetails::Outcome {
            reported_generation: generation,
            objective,
            verdict,
        };
        if self.record(now, details, Priority::Normal).is_none() {
            let violation = self.queue_full();
            self.refuse(now, RequestKind::Outcome, 0, violation, &[]);
            return Err(violation);
        }
        let mut receipt = OutcomeReceipt {
            verdict,
            rollback: None,
            safe_mode_latched: false,
        };
        match verdict {
            OutcomeVerdict::BaselineSample => {
                if let Some(b) = self.baseline.as_mut() {
                    b.reports.add(objective);
                }
            }
            OutcomeVerdict::Acceptable => {
                self.regressions_since_rollback = 0;
                self.regressions_total = 0;
            }
            OutcomeVerdict::Regressed { consecutive } => {
                self.regressions_total = consecutive;
                self.regressions_since_rollback += 1;
                if self.regressions_since_rollback
                    >= self.rollback_policy.max_consecutive_regressions
                {
                    receipt.rollback = self.rollback_for(RollbackReason::Regressions).ok();
                }
                if consecutive >= self.guardrails.regression_count_limit {
                    self.latch(now, SafeModeReason::Regressions, SafeModeExit::Manual);
                    receipt.safe_mode_latched = true;
                }
            }
            OutcomeVerdict::Unjudged => {}
        }
        Ok(receipt)
    }

    /// The kill switch: latches safe mode (`Manual`) until
    /// [`resume`](Self::resume). Always takes effect; its audit event uses
    /// the queue's reserve and, if even that is full, is counted as dropped.
    pub fn freeze(&mut self) {
        let now = self.now();
        self.latch(now, SafeModeReason::Manual, SafeModeExit::Manual);
    }

    /// Operator reset: clears every latched reason except `Misconfigured`,
    /// and resets the regression and malformed-proposal counters. A
    /// condition that persists latches again on the next attempt. Returns
    /// the cleared reasons.
    pub fn resume(&mut self) -> Result<ReasonSet, Violation> {
        let now = self.now();
        let cleared = self.control_safety.resumable();
        if self
            .record(now, AuditDetails::Resumed { cleared }, Priority::Safety)
            .is_none()
        {
            return Err(self.queue_full());
        }
        self.control_safety.clear(cleared);
        self.regressions_total = 0;
        self.regressions_since_rollback = 0;
        self.consecutive_malformed = 0;
        tracing::info!(?cleared, "safe mode resumed by operator");
        Ok(cleared)
    }

    /// Would `apply(proposal)` pass now? Runs every check of `apply` without
    /// applying, auditing or latching anything, so a proposer can plan moves
    /// that will not be refused. (It does record safe-mode exits that are
    /// due, exactly as `apply` would.)
    ///
    /// ```
    /// use hotpath::{AtomicConfig, Guardrails, ParamVec, Proposal, SafetyExecutor, Violation};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let mut ex = SafetyExecutor::new(config, Guardrails::default());
    /// let big = Proposal::ApplyPlus { perturbation_id: 0, delta: ParamVec::from_slice(&[0.3]) };
    /// assert!(matches!(ex.would_accept(&big), Err(Violation::DeltaTooLarge { .. })));
    /// assert_eq!(ex.stats().refused, 0); // nothing recorded
    /// ```
    pub fn would_accept(&mut self, proposal: &Proposal) -> Result<(), Violation> {
        let now = self.now();
        let Some(delta) = proposal.delta() else {
            return Ok(());
        };
        self.expire_safe_mode(now);
        self.check(proposal.kind(), delta, now)?;
        if self.audit_queue.len() >= self.audit_queue.reserve_threshold() {
            return Err(self.queue_full());
        }
        Ok(())
    }

    /// Records an optimiser's decision in the audit trail (below the
    /// reserve; counted as dropped if it does not fit).
    pub(crate) fn record_note(&mut self, details: AuditDetails) -> Option<u64> {
        let now = self.now();
        self.record(now, details, Priority::Note)
    }

    /// Latches safe mode for a reason detected outside the executor.
    pub(crate) fn latch_external(&mut self, reason: SafeModeReason, exit: SafeModeExit) {
        let now = self.now();
        self.latch(now, reason, exit);
    }

    /// The live generation.
    pub fn generation(&self) -> u64 {
        self.live_generation
    }

    /// The current time on the executor's clock (clamped, never backwards).
    pub fn now_us(&mut self) -> u64 {
        self.now()
    }

    /// The live configuration, from the executor's own copy (it is the only
    /// writer, so the copy is exact). No allocation up to 16 parameters.
    pub fn snapshot(&self) -> ConfigSnapshot {
        ConfigSnapshot {
            generation: self.live_generation,
            params: self.live.clone(),
        }
    }

    /// The committed configuration (equal to the live one except during a
    /// probe).
    pub fn centre(&self) -> &[f64] {
        &self.centre
    }

    /// The generation at which the centre was committed.
    pub fn centre_generation(&self) -> u64 {
        self.centre_generation
    }

    /// The baseline and its outcome statistics, if set.
    pub fn baseline(&self) -> Option<&Baseline> {
        self.baseline.as_ref()
    }

    /// The parameters' names, bounds and ranges.
    pub fn space(&self) -> &Arc<ParamSpace> {
        &self.space
    }

    /// The guardrails in force (their `bounds` are the space's when every
    /// parameter is bounded).
    pub fn guardrails(&self) -> &Guardrails {
        &self.guardrails
    }

    /// The rollback policy in force.
    pub fn rollback_policy(&self) -> &RollbackPolicy {
        &self.rollback_policy
    }

    /// The safe-mode latch.
    pub fn control_safety(&self) -> &ControlSafety {
        &self.control_safety
    }

    /// Why [`new`](SafetyExecutor::new) failed closed, if it did.
    pub fn misconfiguration(&self) -> Option<ConfigError> {
        self.misconfiguration
    }

    /// The audit queue, to hand to its consumer.
    pub fn audit_queue(&self) -> &Arc<AuditQueue> {
        &self.audit_queue
    }

    /// The configuration this executor governs (read-only to everyone else).
    pub fn config(&self) -> &Arc<AtomicConfig> {
        &self.config
    }

    /// Monitoring counters.
    pub fn stats(&self) -> ExecutorStats {
        self.stats
    }

    /// The clock the executor reads.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Movement budget left for parameter `index` in the current window, as
    /// a fraction of its range (what an `Update` may still spend).
    pub fn budget_remaining(&mut self, index: usize) -> f64 {
        let now = self.now();
        self.budget.advance(now);
        (self.guardrails.max_cumulative_delta_per_minute - self.budget.total(index)).max(0.0)
    }

    /// The direction of parameter `index`'s last committed move: −1, +1,
    /// or 0 if it has not moved since the start or the last rollback (and
    /// past the end). The flip rule counts a committed move against it.
    pub fn last_direction(&self, index: usize) -> i8 {
        self.directions.get(index).map_or(0, |&d| d as i8)
    }

    /// Direction reversals parameter `index` may still make in the current
    /// 60 s window before the flip rule refuses one (0 past the end).
    pub fn flips_left(&mut self, index: usize) -> usize {
        let now = self.now();
        let limit = self.guardrails.direction_flip_limit as usize;
        self.flips.get(index).map_or(0, |ring| {
            limit.saturating_sub(ring.count_within(now, MINUTE_US))
        })
    }

    /// The earliest time (µs) at which the rate and stabilisation rules
    /// would admit an apply.
    pub fn next_apply_at(&self) -> u64 {
        let interval = self
            .rate
            .last()
            .map_or(0, |t| t.saturating_add(self.guardrails.min_interval_us));
        // Asked at time 0, a full window reports when its oldest entry ages out.
        let window = self.rate.admits(0, SECOND_US).err().unwrap_or(0);
        interval.max(window).max(self.stable_until_us)
    }
}

/// The parameters (of `n`) whose bit is set in `mask`, in increasing order;
/// every parameter when there are more than 64 (the mask then folds
/// several onto one bit). The visitors check each parameter's move
/// themselves, so visiting one that did not turn is only wasted work.
fn turned(n: usize, mut mask: u64) -> impl Iterator<Item = usize> {
    let all = if n > 64 { n } else { 0 };
    if n > 64 {
        mask = 0;
    }
    (0..all).chain(std::iter::from_fn(move || {
        (mask != 0).then(|| {
            let index = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            index
        })
    }))
}

/// `change / range` if it is beyond `limit` (or NaN), else `None`; the
/// division only runs when `change` is not within `cap` (see [`step_cap`]).
#[inline]
fn beyond(change: f64, cap: f64, range: f64, limit: f64) -> Option<f64> {
    if change <= cap {
        return None;
    }
    let fraction = change / range;
    (fraction.is_nan() || fraction > limit).then_some(fraction)
}

/// The direction of a committed move (fraction of the range): moves within
/// rounding of zero have none.
#[inline]
fn direction_of(m: f64) -> f64 {
    if m > DIRECTION_EPSILON {
        1.0
    } else if m < -DIRECTION_EPSILON {
        -1.0
    } else {
        0.0
    }
}

impl<C: Clock> SafeExecutor for SafetyExecutor<C> {
    fn apply(&mut self, proposal: Proposal) -> Result<ApplyReceipt, Violation> {
        SafetyExecutor::apply(self, proposal)
    }

    fn rollback(&mut self) -> Result<RollbackReceipt, Violation> {
        SafetyExecutor::rollback(self)
    }

    fn set_baseline(&mut self) -> Result<u64, Violation> {
        SafetyExecutor::set_baseline(self)
    }

    fn snapshot(&self) -> ConfigSnapshot {
        SafetyExecutor::snapshot(self)
    }
}

impl<C> std::fmt::Debug for SafetyExecutor<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafetyExecutor")
            .field("live_generation", &self.live_generation)
            .field("live", &self.live)
            .field("centre", &self.centre)
            .field("safe_mode", &self.control_safety.reasons())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::{AuditEvent, EventType};

    const MS: u64 = 1_000;

    struct Rig {
        ex: SafetyExecutor<ManualClock>,
        clock: ManualClock,
        config: Arc<AtomicConfig>,
    }

    fn rig_with(
        initial: &[f64],
        guardrails: Guardrails,
        policy: RollbackPolicy,
        cap: usize,
    ) -> Rig {
        let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(initial)));
        let clock = ManualClock::new(1_000_000);
        let ex = SafetyExecutor::builder(config.clone())
            .guardrails(guardrails)
            .rollback_policy(policy)
            .clock(clock.clone())
            .audit_capacity(cap)
            .build()
            .unwrap();
        Rig { ex, clock, config }
    }

    fn rig(initial: &[f64], guardrails: Guardrails) -> Rig {
        rig_with(initial, guardrails, RollbackPolicy::default(), 4096)
    }

    fn update(delta: &[f64]) -> Proposal {
        Proposal::Update {
            iteration: 7,
            delta: ParamVec::from_slice(delta),
            gradient_estimate: ParamVec::zeros(delta.len()),
        }
    }

    fn plus(delta: &[f64]) -> Proposal {
        Proposal::ApplyPlus {
            perturbation_id: 3,
            delta: ParamVec::from_slice(delta),
        }
    }

    fn minus(delta: &[f64]) -> Proposal {
        Proposal::ApplyMinus {
            perturbation_id: 3,
            delta: ParamVec::from_slice(delta),
        }
    }

    fn drain(ex: &SafetyExecutor<ManualClock>) -> Vec<AuditEvent> {
        std::iter::from_fn(|| ex.audit_queue().try_dequeue()).collect()
    }

    fn types(events: &[AuditEvent]) -> Vec<EventType> {
        events.iter().map(AuditEvent::event_type).collect()
    }

    /// A fast rig: no interval, 1000/s, so rules other than rate can be hit.
    fn permissive() -> Guardrails {
        Guardrails {
            min_interval_us: 0,
            max_updates_per_second: 1000.0,
            ..Guardrails::default()
        }
    }

    #[test]
    fn accepted_update_publishes_and_audits_before() {
        let mut r = rig(&[0.5, 0.5], Guardrails::default());
        let receipt = r.ex.apply(update(&[0.01, -0.01])).unwrap();
        assert_eq!((receipt.old_generation, receipt.new_generation), (0, 1));
        assert_eq!(r.config.load().params[..], [0.51, 0.49]);
        assert_eq!(r.ex.centre(), &[0.51, 0.49]);
        let events = drain(&r.ex);
        assert_eq!(types(&events), [EventType::Started, EventType::Applied]);
        assert_eq!(events[1].seq, 1);
        assert_eq!(events[1].generation, 1);
        assert_eq!(receipt.audit_seq, Some(1));
    }

    #[test]
    fn no_change_is_a_no_op() {
        let mut r = rig(&[0.5], Guardrails::default());
        let receipt =
            r.ex.apply(Proposal::NoChange {
                reason: crate::NoChangeReason::CollectingSamples,
            })
            .unwrap();
        assert_eq!(receipt.new_generation, 0);
        assert_eq!(receipt.audit_seq, None);
        assert_eq!(types(&drain(&r.ex)), [EventType::Started]);
    }

    #[test]
    fn malformed_proposals_are_refused_untouched() {
        let mut r = rig(&[0.5, 0.5], Guardrails::default());
        let cases = [
            (
                update(&[0.01]),
                Violation::WrongLength {
                    expected: 2,
                    got: 1,
                },
            ),
            (
                update(&[0.01, 0.0, 0.0]),
                Violation::WrongLength {
                    expected: 2,
                    got: 3,
                },
            ),
            (update(&[0.0, f64::NAN]), Violation::NonFinite { index: 1 }),
            (
                update(&[f64::INFINITY, 0.0]),
                Violation::NonFinite { index: 0 },
            ),
        ];
        for (proposal, expected) in cases {
            assert_eq!(r.ex.apply(proposal), Err(expected));
        }
        assert_eq!(r.config.generation(), 0);
        let events = drain(&r.ex);
        assert_eq!(events.len(), 5);
        assert!(events[1..]
            .iter()
            .all(|e| e.event_type() == EventType::Rejected));
        assert_eq!(r.ex.stats().refused, 4);
    }

    #[test]
    fn step_size_is_a_fraction_of_the_range() {
        let g = Guardrails::default().with_bounds(vec![(0.0, 1000.0)]);
        let mut r = rig(&[500.0], g);
        assert_eq!(
            r.ex.apply(update(&[150.0])),
            Err(Violation::DeltaTooLarge {
                index: 0,
                delta: 0.15,
                limit: 0.1
            })
        );
        assert!(r.ex.apply(update(&[100.0])).is_ok());
        assert_eq!(r.config.load().params[0], 600.0);
    }

    #[test]
    fn out_of_bounds_is_rejected_not_clamped() {
        let g = Guardrails::default().with_bounds(vec![(0.0, 1.0)]);
        let mut r = rig(&[0.95], g);
        assert_eq!(
            r.ex.apply(update(&[0.08])),
            Err(Violation::OutOfBounds {
                index: 0,
                value: 0.95 + 0.08,
                min: 0.0,
                max: 1.0
            })
        );
        assert_eq!(r.config.load().params[0], 0.95);
    }

    #[test]
    fn min_interval_then_per_second_window() {
        let mut r = rig(&[0.0], Guardrails::default());
        r.ex.apply(plus(&[0.01])).unwrap();
        r.clock.advance(50 * MS);
        assert_eq!(
            r.ex.apply(minus(&[-0.02])),
            Err(Violation::RateLimitExceeded {
                rule: RateRule::MinInterval,
                retry_at_us: 1_100_000
            })
        );
        r.clock.advance(50 * MS);
        assert!(r.ex.apply(minus(&[-0.02])).is_ok());

        let g = Guardrails {
            min_interval_us: 0,
            max_updates_per_second: 3.0,
            ..Guardrails::default()
        };
        let mut r = rig(&[0.0], g);
        let start = r.clock.now_us();
        for i in 0..3 {
            let d = if i % 2 == 0 { 0.01 } else { -0.01 };
            r.ex.apply(plus(&[d])).unwrap();
            r.clock.advance(MS);
        }
        assert_eq!(
            r.ex.apply(plus(&[0.01])),
            Err(Violation::RateLimitExceeded {
                rule: RateRule::PerSecond,
                retry_at_us: start + 1_000_000
            })
        );
        assert_eq!(r.ex.next_apply_at(), start + 1_000_000);
        r.clock.set(start + 1_000_000);
        assert!(r.ex.apply(plus(&[0.01])).is_ok());
    }

    #[test]
    fn probes_stay_near_the_centre_and_spend_nothing() {
        let mut r = rig(&[0.5], permissive());
        // +c, then through the centre to −c in two legal steps, many times.
        for _ in 0..50 {
            r.ex.apply(plus(&[0.05])).unwrap();
            r.ex.apply(minus(&[-0.05])).unwrap();
            r.ex.apply(minus(&[-0.05])).unwrap();
            r.ex.apply(update(&[0.05])).unwrap();
            r.clock.advance(MS);
        }
        assert_eq!(r.ex.centre(), &[0.5]);
        assert!(!r.ex.control_safety().is_latched());
        assert!((r.ex.budget_remaining(0) - 0.5).abs() < 1e-9);
        // A probe may not stray further than one step from the centre.
        r.ex.apply(plus(&[0.1])).unwrap();
        assert_eq!(
            r.ex.apply(plus(&[0.05])),
            Err(Violation::ExcursionTooLarge {
                index: 0,
                excursion: 0.15000000000000002,
                limit: 0.1
            })
        );
    }

    #[test]
    fn direction_flips_latch_thrashing_with_cooldown() {
        let mut r = rig(&[0.5], permissive());
        let mut d = 0.01;
        for _ in 0..4 {
            r.ex.apply(update(&[d])).unwrap(); // first move + 3 reversals
            d = -d;
            r.clock.advance(MS);
        }
        let now = r.clock.now_us();
        assert_eq!(
            r.ex.apply(update(&[d])),
            Err(Violation::DirectionFlipViolation {
                index: 0,
                flips: 4,
                limit: 3,
                cooldown_until_us: now + 30_000_000
            })
        );
        assert!(matches!(
            r.ex.apply(update(&[-d])),
            Err(Violation::InSafeMode {
                reason: SafeModeReason::Thrashing,
                until_us: Some(_)
            })
        ));
        r.clock.set(now + 30_000_000);
        // Cooldown over: moving on in the last direction passes, while a
        // reversal still counts against the same minute.
        assert!(matches!(
            r.ex.apply(update(&[d])),
            Err(Violation::DirectionFlipViolation { .. })
        ));
        r.clock.set(now + 60_000_000);
        assert!(r.ex.apply(update(&[-d])).is_ok());
        let t = types(&drain(&r.ex));
        assert!(t.contains(&EventType::SafeModeEntered));
        assert!(t.contains(&EventType::SafeModeExited));
    }

    #[test]
    fn budget_latches_until_the_window_clears() {
        // Steps of 0.099 (0.1 would round above the step limit at 0.3).
        let mut r = rig(&[0.0], permissive());
        for _ in 0..5 {
            r.ex.apply(update(&[0.099])).unwrap();
            r.clock.advance(MS);
        }
        let now = r.clock.now_us();
        let err = r.ex.apply(update(&[0.099])).unwrap_err();
        assert!(matches!(
            err,
            Violation::CumulativeDeltaViolation { index: 0, .. }
        ));
        assert_eq!(
            r.ex.control_safety()
                .exit_of(SafeModeReason::BudgetExhausted),
            Some(SafeModeExit::At(now + BUDGET_CLEAR_US))
        );
        r.clock.set(now + BUDGET_CLEAR_US);
        assert!(r.ex.apply(update(&[0.099])).is_ok());
    }

    #[test]
    fn freeze_blocks_everything_but_rollback_until_resume() {
        let mut r = rig(&[0.5], Guardrails::default());
        r.ex.set_baseline().unwrap();
        r.ex.apply(update(&[0.05])).unwrap();
        r.ex.freeze();
        r.clock.advance(10_000_000);
        assert_eq!(
            r.ex.apply(update(&[0.01])),
            Err(Violation::InSafeMode {
                reason: SafeModeReason::Manual,
                until_us: None
            })
        );
        let receipt = r.ex.rollback().unwrap();
        assert_eq!(receipt.new_generation, 2);
        assert!(r.config.load().params.bit_eq(&[0.5]));
        let cleared = r.ex.resume().unwrap();
        assert!(cleared.contains(SafeModeReason::Manual));
        r.clock
            .advance(RollbackPolicy::default().min_stable_time_us);
        assert!(r.ex.apply(update(&[0.01])).is_ok());
    }

    #[test]
    fn rollback_needs_a_baseline_and_restores_bits() {
        let g = Guardrails {
            min_interval_us: 0,
            ..Guardrails::default()
        };
        let mut r = rig(&[0.1 + 0.2, -0.0], g);
        assert_eq!(r.ex.rollback(), Err(Violation::NoBaseline));
        r.ex.set_baseline().unwrap();
        r.ex.apply(update(&[0.07, 0.03])).unwrap();
        let receipt = r.ex.rollback().unwrap();
        assert_eq!((receipt.old_generation, receipt.new_generation), (1, 2));
        assert!(r.config.load().params.bit_eq(&[0.1 + 0.2, -0.0]));
        assert_eq!(r.ex.centre_generation(), 2);
        // Stabilisation hold after a rollback.
        let err = r.ex.apply(update(&[0.01, 0.0])).unwrap_err();
        assert_eq!(
            err,
            Violation::StabilizationPending {
                retry_at_us: r.clock.now_us() + 5_000_000
            }
        );
    }

    #[test]
    fn rollback_circuit_breaker_needs_manual_resume() {
        let mut r = rig(&[0.5], Guardrails::default());
        r.ex.set_baseline().unwrap();
        for i in 0..5 {
            let receipt = r.ex.rollback().unwrap();
            assert_eq!(receipt.circuit_breaker_tripped, i == 4, "rollback {i}");
        }
        r.clock.advance(2 * HOUR_US);
        assert!(matches!(
            r.ex.apply(update(&[0.01])),
            Err(Violation::InSafeMode {
                reason: SafeModeReason::RollbackCircuitBreaker,
                until_us: None
            })
        ));
        r.ex.resume().unwrap();
        assert!(r.ex.apply(update(&[0.01])).is_ok());
    }

    #[test]
    fn regressions_roll_back_then_latch_across_rollbacks() {
        let g = Guardrails {
            min_interval_us: 0,
            ..Guardrails::default()
        };
        let policy = RollbackPolicy {
            min_stable_time_us: 0,
            ..RollbackPolicy::default()
        };
        let mut r = rig_with(&[0.5], g, policy, 4096);
        assert_eq!(
            r.ex.report_outcome(0, 1.0).unwrap().verdict,
            OutcomeVerdict::Unjudged
        );
        r.ex.set_baseline().unwrap();
        assert_eq!(
            r.ex.report_outcome(0, 1.0).unwrap().verdict,
            OutcomeVerdict::BaselineSample
        );
        r.ex.report_outcome(0, 1.1).unwrap();
        let b = r.ex.baseline().unwrap();
        assert_eq!(b.reports(), 2);
        assert!((b.mean() - 1.05).abs() < 1e-12);
        // Allowance: max(2 · sd, 1% of 1.05) = 2 · 0.0707 = 0.141.
        r.clock.advance(MS);
        let g = r.ex.apply(update(&[0.05])).unwrap().new_generation;
        assert_eq!(
            r.ex.report_outcome(g, 1.15).unwrap().verdict,
            OutcomeVerdict::Acceptable
        );
        for k in 1..=3 {
            let o = r.ex.report_outcome(g, 2.0).unwrap();
            assert_eq!(o.verdict, OutcomeVerdict::Regressed { consecutive: k });
            assert_eq!(o.rollback.is_some(), k == 3);
            assert!(!o.safe_mode_latched);
        }
        // Rolled back; the next step regresses too, and the count carries
        // across the rollback up to regression_count_limit (6).
        r.clock.advance(MS);
        let g = r.ex.apply(update(&[-0.05])).unwrap().new_generation;
        for k in 4..=6 {
            let o = r.ex.report_outcome(g, 2.0).unwrap();
            assert_eq!(o.verdict, OutcomeVerdict::Regressed { consecutive: k });
            assert_eq!(o.rollback.is_some(), k == 6);
            assert_eq!(o.safe_mode_latched, k == 6);
        }
        assert!(r
            .ex
            .control_safety()
            .reasons()
            .contains(SafeModeReason::Regressions));
    }

    #[test]
    fn bad_outcome_reports_are_refused() {
        let mut r = rig(&[0.5], Guardrails::default());
        assert_eq!(
            r.ex.report_outcome(0, f64::NAN),
            Err(Violation::NonFiniteObjective)
        );
        assert_eq!(
            r.ex.report_outcome(5, 1.0),
            Err(Violation::StaleOutcome {
                reported: 5,
                centre: 0
            })
        );
        // A probe does not move the centre: reports still name the centre.
        r.ex.apply(plus(&[0.05])).unwrap();
        assert!(r.ex.report_outcome(0, 1.0).is_ok());
    }

    #[test]
    fn repeated_malformed_proposals_latch() {
        let mut r = rig(
            &[0.5],
            Guardrails {
                violation_limit: 3,
                ..Guardrails::default()
            },
        );
        for _ in 0..3 {
            assert!(r.ex.apply(update(&[0.5])).is_err());
        }
        assert!(r
            .ex
            .control_safety()
            .reasons()
            .contains(SafeModeReason::RepeatedViolations));
    }

    #[test]
    fn full_audit_queue_refuses_latches_and_recovers() {
        // Capacity 16: ordinary events stop at 14, safe mode exits at ≤ 8.
        let mut r = rig_with(&[0.0], permissive(), RollbackPolicy::default(), 16);
        let mut applied = 0;
        let err = loop {
            let d = if applied % 2 == 0 { 0.01 } else { -0.01 };
            match r.ex.apply(plus(&[d])) {
                Ok(_) => applied += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(err, Violation::AuditQueueFull { capacity: 16 });
        assert_eq!(applied, 13); // Started + 13 applies = 14 = threshold
        let generation = r.config.generation();
        // Refusals keep coming (and use the reserve) until it is exhausted.
        for _ in 0..5 {
            assert!(r.ex.apply(plus(&[0.0])).is_err());
        }
        assert_eq!(r.config.generation(), generation);
        assert!(r.ex.stats().audit_dropped > 0);
        // Drain: the next apply exits safe mode and passes.
        let first = drain(&r.ex);
        assert!(r.ex.apply(plus(&[0.0])).is_ok());
        let rest = drain(&r.ex);
        let all: Vec<_> = first.iter().chain(&rest).collect();
        for (i, e) in all.iter().enumerate() {
            assert_eq!(e.seq, i as u64, "gap-free sequence");
        }
        let rest_types = types(&rest);
        assert_eq!(
            rest_types,
            [
                EventType::EventsDropped,
                EventType::SafeModeExited,
                EventType::Applied
            ]
        );
        match rest[0].details {
            AuditDetails::EventsDropped { count } => assert_eq!(count, r.ex.stats().audit_dropped),
            _ => unreachable!(),
        }
    }

    #[test]
    fn clock_going_backwards_is_clamped() {
        let mut r = rig(&[0.0], Guardrails::default());
        r.ex.apply(plus(&[0.01])).unwrap();
        r.clock.set(0);
        assert!(matches!(
            r.ex.apply(minus(&[-0.01])),
            Err(Violation::RateLimitExceeded {
                rule: RateRule::MinInterval,
                ..
            })
        ));
        assert_eq!(r.ex.stats().clock_regressions, 1);
    }

    #[test]
    fn misconfiguration_fails_closed() {
        let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
        let bad = Guardrails {
            max_delta_per_step: -1.0,
            ..Guardrails::default()
        };
        let mut ex = SafetyExecutor::new(config.clone(), bad);
        assert!(matches!(
            ex.misconfiguration(),
            Some(ConfigError::InvalidField { .. })
        ));
        assert!(matches!(
            ex.apply(update(&[0.01])),
            Err(Violation::InSafeMode {
                reason: SafeModeReason::Misconfigured,
                ..
            })
        ));
        assert!(ex.set_baseline().is_err());
        assert!(ex.rollback().is_err());
        ex.resume().unwrap();
        assert!(ex.apply(update(&[0.01])).is_err());
        assert_eq!(config.generation(), 0);
    }

    #[test]
    fn builder_reports_each_error() {
        let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[2.0])));
        let bounded = |b: Vec<(f64, f64)>| {
            SafetyExecutor::builder(config.clone())
                .guardrails(Guardrails::default().with_bounds(b))
                .build()
                .map(|_| ())
        };
        assert_eq!(
            bounded(vec![(0.0, 1.0), (0.0, 1.0)]),
            Err(ConfigError::BoundsLength {
                expected: 1,
                got: 2
            })
        );
        assert_eq!(
            bounded(vec![(0.0, 1.0)]),
            Err(ConfigError::InitialOutOfBounds {
                index: 0,
                value: 2.0,
                min: 0.0,
                max: 1.0
            })
        );
        let _first = SafetyExecutor::builder(config.clone()).build().unwrap();
        assert_eq!(
            SafetyExecutor::builder(config.clone()).build().map(|_| ()),
            Err(ConfigError::WriterTaken)
        );
        assert_eq!(
            SafetyExecutor::builder(Arc::new(AtomicConfig::new(ParamVec::new())))
                .audit_capacity(0)
                .build()
                .map(|_| ()),
            Err(ConfigError::ZeroCapacity {
                what: "audit queue"
            })
        );
    }

    #[test]
    fn exported_state_restores_exactly_under_another_clock() {
        let mut r = rig(&[0.5, 0.5], permissive());
        r.ex.set_baseline().unwrap();
        r.ex.report_outcome(0, 1.0).unwrap();
        r.ex.report_outcome(0, 1.2).unwrap();
        for d in [0.02, -0.02, 0.02] {
            r.ex.apply(update(&[d, d])).unwrap();
            r.clock.advance(10 * MS);
        }
        r.ex.rollback().unwrap();
        r.ex.freeze();
        let state = r.ex.export_state();
        assert_eq!(state.stabilizing_for_us, 5_000_000);
        assert_eq!(state.rollback_ages_us, vec![0]);
        assert_eq!(state.reversal_ages_us[0], vec![20 * MS, 10 * MS]);

        // A new process whose clock starts elsewhere (with a past longer
        // than every age in the state).
        let config = Arc::new(AtomicConfig::with_generation(
            state.live.params.clone(),
            state.live.generation,
        ));
        let clock = ManualClock::new(7_000_077);
        let mut restored = SafetyExecutor::builder(config)
            .guardrails(permissive())
            .clock(clock.clone())
            .audit_sequence_start(1000)
            .restore(state.clone())
            .build()
            .unwrap();
        let again = restored.export_state();
        assert_eq!(
            again,
            ExecutorState {
                next_audit_seq: 1001,
                ..state.clone()
            }
        );
        let event = restored.audit_queue().try_dequeue().unwrap();
        assert_eq!(event.seq, 1000);
        assert!(matches!(event.details, AuditDetails::Restored { .. }));
        // Still frozen, still stabilising after resume.
        assert!(restored.apply(update(&[0.01, 0.0])).is_err());
        restored.resume().unwrap();
        assert!(matches!(
            restored.apply(update(&[0.01, 0.0])),
            Err(Violation::StabilizationPending {
                retry_at_us: 12_000_077
            })
        ));

        // A clock with no past: older events are treated as recent.
        let config = Arc::new(AtomicConfig::with_generation(
            state.live.params.clone(),
            state.live.generation,
        ));
        let mut young = SafetyExecutor::builder(config)
            .guardrails(permissive())
            .clock(ManualClock::new(15 * MS))
            .restore(state.clone())
            .build()
            .unwrap();
        assert_eq!(
            young.export_state().apply_ages_us,
            vec![15 * MS, 15 * MS, 10 * MS]
        );
    }

    #[test]
    fn inconsistent_states_are_refused() {
        let mut r = rig(&[0.5], Guardrails::default().with_bounds(vec![(0.0, 1.0)]));
        r.ex.apply(update(&[0.05])).unwrap();
        let state = r.ex.export_state();
        let build = |config: Arc<AtomicConfig>, state: ExecutorState| {
            SafetyExecutor::builder(config)
                .guardrails(Guardrails::default().with_bounds(vec![(0.0, 1.0)]))
                .restore(state)
                .build()
                .map(|_| ())
        };
        let fresh = || {
            Arc::new(AtomicConfig::with_generation(
                ParamVec::from_slice(&[0.55]),
                1,
            ))
        };
        // The configuration must hold the state's live values and generation.
        let other = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.55])));
        assert!(matches!(
            build(other, state.clone()),
            Err(ConfigError::InvalidState { .. })
        ));
        let mut bad = state.clone();
        bad.version = 99;
        assert!(matches!(
            build(fresh(), bad),
            Err(ConfigError::InvalidState { .. })
        ));
        let mut bad = state.clone();
        bad.centre = ParamVec::from_slice(&[f64::NAN]);
        assert!(matches!(
            build(fresh(), bad),
            Err(ConfigError::InvalidState { .. })
        ));
        let mut bad = state.clone();
        bad.directions.push(1);
        assert!(matches!(
            build(fresh(), bad),
            Err(ConfigError::InvalidState { .. })
        ));
        let mut bad = state.clone();
        bad.live.generation = u64::MAX;
        assert!(matches!(
            build(fresh(), bad),
            Err(ConfigError::InvalidState { reason }) if reason.contains("2^62")
        ));
        assert!(build(fresh(), state).is_ok());
    }

    /// The division-free fast path never passes a change the exact rule
    /// (`|change| / range <= limit`) would refuse: checked at the cap and a
    /// few ulps around it, for awkward limits and ranges.
    #[test]
    fn step_cap_never_admits_what_dividing_refuses() {
        let limits = [0.0, 1e-9, 0.05, 0.1, 0.3, 1.0 / 3.0, 0.7, 1.0, 7.5];
        let widths = [1e-300, 1e-12, 0.1, 1.0, 3.0, 1000.0 / 7.0, 1e9, 1e300];
        for &limit in &limits {
            for &width in &widths {
                let g = Guardrails {
                    max_delta_per_step: limit,
                    bounds: Some(vec![(-width / 2.0, width / 2.0)]),
                    ..Guardrails::default()
                };
                let range = g.range(0);
                let cap = step_cap(limit, range);
                let exact = limit * range;
                let mut candidates = vec![cap, exact];
                for start in [cap, exact] {
                    let (mut down, mut up) = (start, start);
                    for _ in 0..64 {
                        down = down.next_down();
                        up = up.next_up();
                        candidates.extend([down, up]);
                    }
                }
                for change in candidates.into_iter().filter(|c| *c >= 0.0) {
                    if change <= cap {
                        assert!(
                            change / range <= limit,
                            "limit {limit} range {range} change {change}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn turned_visits_set_bits_in_order_or_everything_beyond_64() {
        assert_eq!(turned(16, 0).count(), 0);
        assert_eq!(
            turned(16, 0b1000_0000_0010_0001).collect::<Vec<_>>(),
            [0, 5, 15]
        );
        assert_eq!(turned(64, 1 << 63).collect::<Vec<_>>(), [63]);
        assert_eq!(
            turned(65, 1).collect::<Vec<_>>(),
            (0..65).collect::<Vec<_>>()
        );
    }

    /// With more parameters than mask bits, a reversal of the last one is
    /// still counted and still refused past the limit.
    #[test]
    fn flips_are_counted_beyond_64_parameters() {
        const N: usize = 70;
        let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5; N])));
        let clock = ManualClock::new(0);
        let guardrails = Guardrails {
            direction_flip_limit: 1,
            min_interval_us: 0,
            ..Guardrails::default()
        };
        let mut ex = SafetyExecutor::builder(config)
            .guardrails(guardrails)
            .clock(clock.clone())
            .build()
            .unwrap();
        let mut step = |sign: f64| {
            clock.advance(SECOND_US);
            let mut delta = ParamVec::zeros(N);
            delta[N - 1] = sign * 0.01;
            ex.apply(Proposal::Update {
                iteration: 1,
                delta,
                gradient_estimate: ParamVec::new(),
            })
        };
        assert!(step(1.0).is_ok());
        assert!(step(-1.0).is_ok(), "first reversal is within the limit");
        assert!(matches!(
            step(1.0),
            Err(Violation::DirectionFlipViolation { index, .. }) if index == N - 1
        ));
    }
}
