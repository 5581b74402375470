//! [`ExecutorState`]: the executor's governed state, for persistence and
//! restart recovery.
//!
//! The executor's clock is monotonic from an arbitrary origin (for
//! [`SystemClock`](crate::SystemClock), the process start), so absolute
//! times mean nothing to the next process. Every time-based item is stored
//! as an *age* or a *remaining duration* relative to the moment of export,
//! and re-anchored to the restoring executor's clock: a safe-mode timer with
//! 20 s left still has 20 s left after a restart (the downtime is not
//! credited, which errs on the safe side), a rollback 10 minutes before the
//! export still counts against the hourly circuit breaker, and the rate,
//! flip and budget windows keep what they held. An age larger than the
//! restoring clock's current reading (a clock that starts at zero has no
//! past) is shortened to it: the event is treated as more recent than it
//! was, which makes the limits stricter for a while, never looser.

use super::{Baseline, SafetyExecutor};
use crate::clock::Clock;
use crate::config_atomic::ConfigSnapshot;
use crate::safe_mode::{SafeModeExit, SafeModeReason};
use crate::space::ParamSpace;
use crate::ParamVec;
use serde::{Deserialize, Serialize};

/// Version of the [`ExecutorState`] layout; a restore refuses any other.
pub const EXECUTOR_STATE_VERSION: u32 = 1;

/// A latched safe-mode reason, with its exit relative to the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersistedLatch {
    /// The reason.
    pub reason: SafeModeReason,
    /// How it exits.
    pub exit: PersistedExit,
}

/// How a persisted safe-mode reason exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PersistedExit {
    /// By timer, this long after the restore.
    AfterUs(u64),
    /// Only by an operator's resume.
    Manual,
    /// When the audit queue has drained.
    QueueDrained,
}

/// Everything a [`SafetyExecutor`] governs, detached from its clock. Export
/// with [`SafetyExecutor::export_state`]; restore with
/// [`ExecutorBuilder::restore`](crate::ExecutorBuilder::restore).
///
/// ```
/// use hotpath::{AtomicConfig, Guardrails, ManualClock, ParamVec, Proposal, SafetyExecutor};
/// use std::sync::Arc;
///
/// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
/// let mut ex = SafetyExecutor::builder(config).clock(ManualClock::new(0)).build()?;
/// ex.set_baseline()?;
/// ex.apply(Proposal::Update { iteration: 1, delta: ParamVec::from_slice(&[0.05]),
///                             gradient_estimate: ParamVec::new() })?;
/// ex.freeze();
/// let state = ex.export_state();
/// drop(ex);
///
/// // Another process: the generation keeps rising, the baseline and the latch are kept.
/// let config = Arc::new(AtomicConfig::with_generation(state.live.params.clone(), state.live.generation));
/// let restored = SafetyExecutor::builder(config).clock(ManualClock::new(0)).restore(state).build()?;
/// assert_eq!(restored.snapshot().generation, 1);
/// assert!(restored.control_safety().is_latched());
/// assert!(restored.baseline().is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorState {
    /// Layout version ([`EXECUTOR_STATE_VERSION`]).
    pub version: u32,
    /// The live configuration.
    pub live: ConfigSnapshot,
    /// The committed centre.
    pub centre: ParamVec,
    /// Generation at which the centre was committed.
    pub centre_generation: u64,
    /// The baseline and its outcome statistics.
    pub baseline: Option<Baseline>,
    /// `true` while the centre is the baseline.
    pub centre_is_baseline: bool,
    /// Latched safe-mode reasons.
    pub safe_mode: Vec<PersistedLatch>,
    /// Ages of the applies in the rate window, oldest first.
    pub apply_ages_us: Vec<u64>,
    /// Per parameter: last committed direction (−1, 0, +1).
    pub directions: Vec<i8>,
    /// Per parameter: ages of the recent direction reversals.
    pub reversal_ages_us: Vec<Vec<u64>>,
    /// Per parameter: movement spent in the budget window (fraction of the
    /// range). Restored as spent at the moment of restore, so it frees a
    /// full window later.
    pub budget_spent: Vec<f64>,
    /// Ages of the rollbacks in the circuit breaker's hour.
    pub rollback_ages_us: Vec<u64>,
    /// Remaining stabilisation hold after a rollback.
    pub stabilizing_for_us: u64,
    /// Consecutive regressed reports since the last rollback.
    pub regressions_since_rollback: u32,
    /// Consecutive regressed reports across rollbacks.
    pub regressions_total: u32,
    /// Consecutive malformed proposals.
    pub consecutive_malformed: u32,
    /// Sequence number the next audit event gets.
    pub next_audit_seq: u64,
}

impl<C: Clock> SafetyExecutor<C> {
    /// The governed state now, detached from the clock (see
    /// [`ExecutorState`]). A `Misconfigured` latch is not exported: it
    /// belongs to this executor's settings, not to the governed state.
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
    /// ex.apply(update(0.05))?;
    /// let state = ex.export_state();
    /// assert_eq!((state.live.generation, state.apply_ages_us.len()), (1, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn export_state(&mut self) -> ExecutorState {
        let now = self.now();
        let age = move |t: u64| now.saturating_sub(t);
        let safe_mode = SafeModeReason::ALL
            .into_iter()
            .filter_map(|reason| {
                let exit = match self.control_safety.exit_of(reason)? {
                    SafeModeExit::At(t) => PersistedExit::AfterUs(t.saturating_sub(now)),
                    SafeModeExit::Manual => PersistedExit::Manual,
                    SafeModeExit::QueueDrained => PersistedExit::QueueDrained,
                    // These belong to this executor, not to the governed
                    // state: its settings, its clock's last reading, its
                    // connection to a fleet's coordinator.
                    SafeModeExit::Never
                    | SafeModeExit::ClockInRange
                    | SafeModeExit::CoordinatorRegained => return None,
                };
                Some(PersistedLatch { reason, exit })
            })
            .collect();
        self.budget.advance(now);
        ExecutorState {
            version: EXECUTOR_STATE_VERSION,
            live: ConfigSnapshot {
                generation: self.live_generation,
                params: self.live.clone(),
            },
            centre: self.centre.clone(),
            centre_generation: self.centre_generation,
            baseline: self.baseline.clone(),
            centre_is_baseline: self.centre_is_baseline,
            safe_mode,
            apply_ages_us: self.rate.times().map(age).collect(),
            directions: self.directions.iter().map(|&d| d as i8).collect(),
            reversal_ages_us: self
                .flips
                .iter()
                .map(|ring| ring.times().map(age).collect())
                .collect(),
            budget_spent: (0..self.centre.len())
                .map(|i| self.budget.total(i))
                .collect(),
            rollback_ages_us: self.rollbacks.times().map(age).collect(),
            stabilizing_for_us: self.stable_until_us.saturating_sub(now),
            regressions_since_rollback: self.regressions_since_rollback,
            regressions_total: self.regressions_total,
            consecutive_malformed: self.consecutive_malformed,
            next_audit_seq: self.next_seq,
        }
    }

    /// Loads `state` into a freshly assembled executor (called by the
    /// builder after validating it).
    pub(crate) fn load_state(&mut self, state: ExecutorState) {
        let now = self.now();
        let at = move |age: u64| now.saturating_sub(age);
        self.centre.copy_from(&state.centre);
        self.centre_generation = state.centre_generation;
        self.baseline = state.baseline;
        self.centre_is_baseline = state.centre_is_baseline;
        for latch in state.safe_mode {
            let exit = match latch.exit {
                PersistedExit::AfterUs(remaining) => {
                    SafeModeExit::At(now.saturating_add(remaining))
                }
                PersistedExit::Manual => SafeModeExit::Manual,
                PersistedExit::QueueDrained => SafeModeExit::QueueDrained,
            };
            self.control_safety.latch(latch.reason, exit);
        }
        // Ages are oldest first, so times come out in order.
        for age in state.apply_ages_us {
            self.rate.push(at(age));
        }
        for (slot, direction) in self.directions.iter_mut().zip(state.directions) {
            *slot = f64::from(direction.signum());
        }
        for (ring, ages) in self.flips.iter_mut().zip(state.reversal_ages_us) {
            for age in ages {
                ring.push(at(age));
            }
        }
        self.budget.advance(now);
        for (i, spent) in state.budget_spent.into_iter().enumerate() {
            self.budget.spend(i, spent);
        }
        for age in state.rollback_ages_us {
            self.rollbacks.push(at(age));
        }
        self.stable_until_us = now.saturating_add(state.stabilizing_for_us);
        self.regressions_since_rollback = state.regressions_since_rollback;
        self.regressions_total = state.regressions_total;
        self.consecutive_malformed = state.consecutive_malformed;
        self.next_seq = state.next_audit_seq;
    }
}

impl ExecutorState {
    /// Checks the state fits `space`: version, lengths, finiteness, bounds.
    pub(crate) fn check(&self, space: &ParamSpace) -> Result<(), &'static str> {
        if self.version != EXECUTOR_STATE_VERSION {
            return Err("unsupported state version");
        }
        let n = self.live.params.len();
        let lengths = [
            self.centre.len(),
            self.directions.len(),
            self.reversal_ages_us.len(),
            self.budget_spent.len(),
        ];
        if lengths.iter().any(|&l| l != n)
            || self
                .baseline
                .as_ref()
                .is_some_and(|b| b.snapshot.params.len() != n)
        {
            return Err("parameter count differs between parts of the state");
        }
        let within = |v: &[f64]| space.first_invalid(v).is_none();
        if !within(&self.live.params) || !within(&self.centre) {
            return Err("live or centre values are not values of their knobs (finite, in bounds, on the grid)");
        }
        if self
            .baseline
            .as_ref()
            .is_some_and(|b| !within(&b.snapshot.params))
        {
            return Err(
                "baseline values are not values of their knobs (finite, in bounds, on the grid)",
            );
        }
        if self
            .budget_spent
            .iter()
            .any(|s| !(s.is_finite() && *s >= 0.0))
        {
            return Err("budget values are not finite and non-negative");
        }
        if self.centre_generation > self.live.generation {
            return Err("centre generation is ahead of the live generation");
        }
        if self.live.generation > crate::config_atomic::MAX_GENERATION {
            return Err("live generation is beyond 2^62");
        }
        if self.next_audit_seq > crate::audit::MAX_AUDIT_SEQ {
            return Err("next audit sequence number is beyond 2^62");
        }
        if self.regressions_since_rollback > self.regressions_total {
            return Err("more regressions since the last rollback than in total");
        }
        Ok(())
    }
}
