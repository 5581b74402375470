//! [`SafetyExecutor`]: the sole writer of the live configuration.
//!
//! The rules, their order and what they change are documented on
//! [`SafetyExecutor`]. The implementation is split by concern:
//!
//! * `mod.rs`: the executor's state, construction and `apply`;
//! * `accessors.rs`: read-only views (generation, centre, baseline, …);
//! * `builder.rs`: [`ExecutorBuilder`], validation at build time;
//! * `rules.rs`: the rules `apply` checks, one predicate each, in order;
//! * `accounting.rs`: what an accepted change spends (centre, rate window,
//!   direction history, budget) and what is left;
//! * `record.rs`: audit recording (rule 10), refusals, safe-mode latches;
//! * `outcome.rs`: baseline, outcome reports, rollback, freeze/resume;
//! * `receipts.rs`: receipts and counters handed back to callers;
//! * `persist.rs`: [`ExecutorState`] export and restore.

use crate::audit::{AuditQueue, RequestKind};
use crate::clock::{Clock, SystemClock};
use crate::config_atomic::{AtomicConfig, ConfigSnapshot, ConfigWriter};
use crate::error::ConfigError;
use crate::guardrails::Guardrails;
use crate::limits::{BudgetWindow, TimeRing};
use crate::proposal::Proposal;
use crate::rollback::RollbackPolicy;
use crate::safe_mode::{ControlSafety, SafeModeExit, SafeModeReason};
use crate::space::ParamSpace;
use crate::sync::Arc;
use crate::violation::Violation;
use crate::ParamVec;
use record::Priority;
use typed::Caps;

mod accessors;
mod accounting;
mod builder;
mod outcome;
mod persist;
mod receipts;
mod record;
mod rules;
mod typed;

pub use builder::{ExecutorBuilder, DEFAULT_AUDIT_CAPACITY};
pub use outcome::{Baseline, MIN_BASELINE_REPORTS};
pub use persist::{ExecutorState, PersistedExit, PersistedLatch, EXECUTOR_STATE_VERSION};
pub use receipts::{ApplyReceipt, ExecutorStats, OutcomeReceipt, RollbackReceipt};

const SECOND_US: u64 = 1_000_000;
const MINUTE_US: u64 = 60 * SECOND_US;
const HOUR_US: u64 = 60 * MINUTE_US;
/// Latest time the executor accepts from its clock (2⁶² µs, ~146,000
/// years). A reading beyond it is a clock fault: it is not used (with times
/// near `u64::MAX` the windows' `t + window` would saturate and stop
/// limiting anything), and safe mode (`ClockFault`) refuses changes until
/// the clock reads in range again.
pub const MAX_TIME_US: u64 = 1 << 62;

/// The executor's interface, for code generic over executors (a test
/// double, a recording wrapper). [`SafetyExecutor`] implements it with its
/// inherent methods.
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

/// The sole actuator of an [`AtomicConfig`]: every change passes its
/// guardrails, safe mode, rollback policy and audit trail.
///
/// # What `apply` checks, in order
///
/// The first failing check refuses the proposal with its [`Violation`]:
///
/// 1. **Safe mode** (`InSafeMode`): any latched reason refuses everything
///    but rollback. Timer and queue-drain exits are evaluated first.
/// 2. **Shape**: `WrongLength`, then `NonFinite` (first offending index).
/// 3. **Step size** (`DeltaTooLarge`): the change actually applied,
///    `|(live[i] + delta[i]) − live[i]|` after rounding, is at most
///    `max_delta_per_step · range[i]` for every parameter, perturbations
///    included.
/// 4. **Bounds** (`OutOfBounds`): the result must be finite and within
///    `bounds`. The executor rejects, it never clamps: what is applied is
///    exactly what was proposed.
/// 5. **Excursion** (`ExcursionTooLarge`, probes only): the result stays
///    within `max_delta_per_step · range[i]` of the centre.
/// 6. **Stabilisation** (`StabilizationPending`): `min_stable_time_us` after
///    a rollback.
/// 7. **Rate** (`RateLimitExceeded`): `min_interval_us` since the last
///    apply, then at most ⌊`max_updates_per_second`⌋ applies in any 1 s.
/// 8. **Direction flips** (`DirectionFlipViolation`, `Update` only): the
///    committed move must not reverse a dimension more than
///    `direction_flip_limit` times per minute; otherwise safe mode
///    (`Thrashing`) for `cooldown_after_flip_us`.
/// 9. **Budget** (`CumulativeDeltaViolation`, `Update` only): committed
///    movement per dimension per minute within
///    `max_cumulative_delta_per_minute`; otherwise safe mode
///    (`BudgetExhausted`) until the window has cleared.
/// 10. **Audit** (`AuditQueueFull`): the decision's event must fit below the
///     queue's reserve; otherwise safe mode until it drains.
///
/// Content checks (2–5) come before timing checks (6–9) so that a proposal
/// that can never pass is reported as such, not as "retry later".
///
/// A refused proposal leaves the live config, the centre, the rate window,
/// the flip history and the budget untouched. What a refusal may change is
/// the safety state it reports: the latches of rules 8, 9 and 10, and the
/// count of consecutive malformed proposals (rules 2–5), which latches
/// `RepeatedViolations` at `Guardrails::violation_limit`.
///
/// # Centre and probes
///
/// The executor keeps the *centre*, the committed configuration. `Update`
/// moves it; `ApplyPlus`/`ApplyMinus` only move the live config around it
/// (see [`Proposal`]). Flip and budget accounting use the committed move
/// `new_centre − old_centre`; components smaller than 10⁻⁹ of the range are
/// rounding, not direction.
///
/// # Baseline, outcomes and rollback
///
/// * [`set_baseline`](SafetyExecutor::set_baseline) records the **centre**
///   (not a probe point) as the baseline.
/// * [`report_outcome`](SafetyExecutor::report_outcome) takes the objective
///   measured at the centre's generation (lower is better). While the centre
///   is the baseline, reports refine the baseline's mean and noise; otherwise
///   they are judged against it (see [`RollbackPolicy`]).
/// * `max_consecutive_regressions` consecutive regressed reports roll back
///   automatically. `Guardrails::regression_count_limit` counts consecutive
///   regressed reports *across* rollbacks (only an acceptable report resets
///   it): when the optimiser keeps regressing after being rolled back, safe
///   mode (`Regressions`) latches until an operator resumes.
/// * [`rollback`](SafetyExecutor::rollback) restores the baseline bit for
///   bit under a new generation. It passes in safe mode and is exempt from
///   the step, rate and budget rules (it returns to a known-good config);
///   it clears the direction memory and starts the `min_stable_time_us`
///   hold. A rollback that makes more than `max_rollbacks_per_hour` in an
///   hour still happens, then trips the circuit breaker (safe mode
///   `RollbackCircuitBreaker`, manual resume).
///
/// # Time
///
/// Time comes from the injected [`Clock`]. If it goes backwards the executor
/// uses the latest time it has seen instead (counted in
/// [`ExecutorStats::clock_regressions`]), so windows and timers never run in
/// reverse. A reading beyond [`MAX_TIME_US`] is not used at all: the
/// executor keeps its last good time and latches safe mode (`ClockFault`,
/// counted in [`ExecutorStats::clock_faults`]) until a reading is back in
/// range, so a glitched clock can neither saturate the windows (where they
/// would stop limiting) nor leave times in them that block every later
/// change. (A forward jump *within* range is taken as time passing: the
/// executor cannot tell it from a long pause, and a clock that then goes
/// back is clamped to it, which fails closed until the clock catches up.)
///
/// # Construction
///
/// [`SafetyExecutor::builder`] validates everything and returns a
/// [`ConfigError`] on bad settings. [`SafetyExecutor::new`] (also named
/// [`new_fail_closed`](SafetyExecutor::new_fail_closed)) never panics: on
/// bad settings it returns an executor that is latched in safe mode for
/// reason `Misconfigured` (fail closed), refuses every request, and reports
/// the error through [`misconfiguration`](SafetyExecutor::misconfiguration)
/// and a `tracing` error event.
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
    /// `false` while the clock's last reading was beyond `MAX_TIME_US`.
    clock_in_range: bool,
    /// The parameters' names, bounds and ranges.
    space: Arc<ParamSpace>,
    /// Per knob: the step rule's caps (see `typed::Caps`).
    caps: Caps,
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
    /// The fail-closed constructor (the API reference's `new`): Balanced
    /// rollback policy, system clock, a new audit queue of
    /// [`DEFAULT_AUDIT_CAPACITY`]. The same as
    /// [`new_fail_closed`](Self::new_fail_closed).
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

    /// [`new`](Self::new) under a name that says what it does on bad
    /// settings: it never fails, it fails closed.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, Guardrails, ParamVec, Proposal, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let bad = Guardrails { max_delta_per_step: 2.0, ..Guardrails::default() };
    /// let mut executor = SafetyExecutor::new_fail_closed(config, bad);
    /// assert!(executor.misconfiguration().is_some());
    /// let nudge = Proposal::Update { iteration: 1, delta: ParamVec::from_slice(&[0.01]),
    ///                                gradient_estimate: ParamVec::new() };
    /// assert!(executor.apply(nudge).is_err()); // refuses everything
    /// ```
    pub fn new_fail_closed(config: Arc<AtomicConfig>, guardrails: Guardrails) -> Self {
        Self::new(config, guardrails)
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
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ParamVec, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let ex = SafetyExecutor::builder(config).audit_capacity(256).build()?;
    /// assert_eq!(ex.audit_queue().capacity(), 256);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(config: Arc<AtomicConfig>) -> ExecutorBuilder<SystemClock> {
        ExecutorBuilder::new(config)
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
        let caps = Caps::new(&space, guardrails.max_delta_per_step);
        // Validation bounds these: rate ≤ 1000, flips as given (u32), and
        // rollbacks ≤ 1000, so every ring is allocated once, here.
        let rate = TimeRing::new(guardrails.max_updates_per_second as usize);
        let flips = (0..n)
            .map(|_| TimeRing::new(guardrails.direction_flip_limit as usize))
            .collect();
        let rollbacks = TimeRing::new(rollback_policy.max_rollbacks_per_hour as usize);
        // A first reading out of range is a fault like any other: the first
        // `now()` (the `Started` event) latches it.
        let latest_now = Some(clock.now_us())
            .filter(|&t| t <= MAX_TIME_US)
            .unwrap_or(0);
        Self {
            config,
            writer,
            misconfiguration: None,
            space,
            caps,
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
            clock_in_range: true,
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

    /// Applies a proposal through the guardrails (see [`SafetyExecutor`]
    /// for the rules and their order). On refusal nothing changes but the
    /// safety state the violation reports, and the refusal is audited.
    ///
    /// # Errors
    ///
    /// The first rule the proposal breaks, as a [`Violation`] carrying its
    /// context (index, value, limit, retry time).
    ///
    /// Allocation-free for up to 16 parameters.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ManualClock, ParamVec, Proposal, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let clock = ManualClock::new(1_000_000);
    /// let mut ex = SafetyExecutor::builder(config.clone()).clock(clock.clone()).build()?;
    /// let update = |d: f64| Proposal::Update { iteration: 1, delta: ParamVec::from_slice(&[d]),
    ///                                          gradient_estimate: ParamVec::new() };
    /// let receipt = ex.apply(update(0.05))?;
    /// assert_eq!((receipt.new_generation, config.load().params[0]), (1, 0.55));
    /// assert!(ex.apply(update(0.5)).is_err()); // a step of half the range is refused
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
        let (request, correlation_id) = (RequestKind::Proposal(kind), proposal.correlation_id());
        self.expire_safe_mode(now);
        if let Err(violation) = self.check(kind, delta, now) {
            return self.refuse(now, request, correlation_id, violation, delta);
        }
        let old_generation = self.live_generation;
        let recorded = self.record_with(now, Priority::Normal, |details, ex| {
            details.set_applied(kind, correlation_id, old_generation, delta, &ex.candidate);
        });
        let Some(seq) = recorded else {
            return self.refuse_queue_full(now, request, correlation_id, delta);
        };
        let new_generation = self.publish_candidate();
        self.account_applied(kind, now);
        Ok(ApplyReceipt {
            kind,
            old_generation,
            new_generation,
            timestamp_us: now,
            audit_seq: Some(seq),
        })
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

    /// The clock, never backwards and never beyond [`MAX_TIME_US`]. A
    /// reading going backwards gives the latest time seen instead
    /// (counted). A reading beyond `MAX_TIME_US` is a fault: the windows'
    /// `t + window` would saturate there and stop limiting, and times
    /// stored from it would block every later change once the clock came
    /// back. So it is not used at all: the executor keeps its last good
    /// time and latches `ClockFault`, which exits (both audited) at the
    /// first reading back in range.
    fn now(&mut self) -> u64 {
        let t = self.clock.now_us();
        if t > MAX_TIME_US {
            self.stats.clock_faults += 1;
            self.clock_in_range = false;
            let kept = self.latest_now;
            self.latch(kept, SafeModeReason::ClockFault, SafeModeExit::ClockInRange);
            return kept;
        }
        self.clock_in_range = true;
        if t < self.latest_now {
            self.stats.clock_regressions += 1;
            return self.latest_now;
        }
        self.latest_now = t;
        t
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
