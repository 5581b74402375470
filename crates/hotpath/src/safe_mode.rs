//! Safe mode: [`ControlSafety`], the latch that stops every change but
//! rollback, and the [`SafeModeReason`]s it latches for.

use serde::{Deserialize, Serialize};

/// Why safe mode latched, and how each reason exits.
///
/// | reason | latched when | exits |
/// |--------|--------------|-------|
/// | `Thrashing` | a committed move would exceed `direction_flip_limit` | by timer, `cooldown_after_flip_us` later |
/// | `BudgetExhausted` | a committed move would exceed `max_cumulative_delta_per_minute` | by timer, when the budget window has cleared (65 s) |
/// | `Regressions` | `regression_count_limit` consecutive regressed outcomes | manual `resume` |
/// | `RollbackCircuitBreaker` | more than `max_rollbacks_per_hour` rollbacks | manual `resume` |
/// | `AuditQueueFull` | the audit queue refused an event | by itself, once the queue has drained to half its capacity |
/// | `RepeatedViolations` | `violation_limit` consecutive malformed proposals | manual `resume` |
/// | `TelemetryStalled` | the adaptive engine's evaluation windows timed out `max_eval_timeouts` times in a row | manual `resume` |
/// | `Manual` | `freeze` (the kill switch) | manual `resume` |
/// | `Misconfigured` | the executor was built from invalid settings | never: build a new executor |
/// | `ClockFault` | the clock read beyond [`MAX_TIME_US`](crate::MAX_TIME_US) | by itself, at the first reading back in range |
/// | `CoordinatorLost` | a fleet's leader lost its coordinator (etcd) and cannot publish: [`coordinator_lost`](crate::SafetyExecutor::coordinator_lost) | only by [`coordinator_regained`](crate::SafetyExecutor::coordinator_regained), once leadership is re-established |
///
/// Several reasons may be latched at once; safe mode lasts until all have
/// exited. `resume` clears every reason but `Misconfigured` and
/// `CoordinatorLost` (a condition that
/// persists, such as a full queue, latches again on the next attempt). Every
/// entry and exit is an audit event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SafeModeReason {
    /// Direction flip limit exceeded.
    Thrashing,
    /// Cumulative movement budget exceeded.
    BudgetExhausted,
    /// Outcomes kept regressing, across rollbacks.
    Regressions,
    /// Too many rollbacks in an hour.
    RollbackCircuitBreaker,
    /// The audit queue was full.
    AuditQueueFull,
    /// The proposer kept sending malformed proposals.
    RepeatedViolations,
    /// Telemetry stopped arriving: evaluation windows kept timing out.
    TelemetryStalled,
    /// An operator froze the executor.
    Manual,
    /// The executor's settings were invalid at construction.
    Misconfigured,
    /// The clock read beyond [`MAX_TIME_US`](crate::MAX_TIME_US); the
    /// executor kept its last good time and refuses changes until the
    /// clock reads in range again. (A [`ReasonSet`] is stored as bits in
    /// declaration order: new reasons are declared last.)
    ClockFault,
    /// A fleet's leader cannot reach its coordinator (etcd): it could not
    /// publish what it decides, so it decides nothing until it has
    /// re-established its leadership. Not part of the governed state (it
    /// belongs to this instance's connection) and not cleared by an
    /// operator's `resume`.
    CoordinatorLost,
}

impl SafeModeReason {
    /// Every reason, in declaration order.
    pub const ALL: [SafeModeReason; 11] = [
        SafeModeReason::Thrashing,
        SafeModeReason::BudgetExhausted,
        SafeModeReason::Regressions,
        SafeModeReason::RollbackCircuitBreaker,
        SafeModeReason::AuditQueueFull,
        SafeModeReason::RepeatedViolations,
        SafeModeReason::TelemetryStalled,
        SafeModeReason::Manual,
        SafeModeReason::Misconfigured,
        SafeModeReason::ClockFault,
        SafeModeReason::CoordinatorLost,
    ];

    fn bit(self) -> u16 {
        1 << (self as u8)
    }
}

impl std::fmt::Display for SafeModeReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SafeModeReason::Thrashing => "thrashing",
            SafeModeReason::BudgetExhausted => "movement budget exhausted",
            SafeModeReason::Regressions => "repeated regressions",
            SafeModeReason::RollbackCircuitBreaker => "rollback circuit breaker",
            SafeModeReason::AuditQueueFull => "audit queue full",
            SafeModeReason::RepeatedViolations => "repeated violations",
            SafeModeReason::TelemetryStalled => "telemetry stalled",
            SafeModeReason::Manual => "manual freeze",
            SafeModeReason::Misconfigured => "misconfigured",
            SafeModeReason::ClockFault => "clock out of range",
            SafeModeReason::CoordinatorLost => "fleet coordinator lost",
        })
    }
}

/// A set of [`SafeModeReason`]s (a bit set; `Copy`, no allocation).
///
/// ```
/// use hotpath::{ReasonSet, SafeModeReason};
///
/// let mut set = ReasonSet::EMPTY;
/// set.insert(SafeModeReason::Manual);
/// assert!(set.contains(SafeModeReason::Manual));
/// assert_eq!(set.iter().collect::<Vec<_>>(), vec![SafeModeReason::Manual]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReasonSet(u16);

impl ReasonSet {
    /// No reasons.
    pub const EMPTY: ReasonSet = ReasonSet(0);

    /// Adds a reason.
    pub fn insert(&mut self, reason: SafeModeReason) {
        self.0 |= reason.bit();
    }

    /// `true` if `reason` is in the set.
    pub fn contains(self, reason: SafeModeReason) -> bool {
        self.0 & reason.bit() != 0
    }

    /// `true` if the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The reasons in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = SafeModeReason> {
        SafeModeReason::ALL
            .into_iter()
            .filter(move |r| self.contains(*r))
    }
}

/// How a latched reason ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SafeModeExit {
    /// By itself at this time (µs).
    At(u64),
    /// Only by [`resume`](crate::SafetyExecutor::resume).
    Manual,
    /// By itself, once the audit queue has drained to its high-water mark.
    QueueDrained,
    /// By itself, once the clock reads in range again.
    ClockInRange,
    /// Never.
    Never,
    /// Once a fleet's leader has re-established its leadership
    /// ([`coordinator_regained`](crate::SafetyExecutor::coordinator_regained)).
    CoordinatorRegained,
}

impl SafeModeExit {
    /// The exit's stable name in JSON views (`hotpath serve`'s status, the
    /// Python binding's `status()`): `timer`, `manual`, `queue_drained`,
    /// `clock_in_range`, `never`, `coordinator`. Stable because operators'
    /// dashboards and scripts match on it.
    ///
    /// ```
    /// use hotpath::SafeModeExit;
    ///
    /// assert_eq!(SafeModeExit::At(5).name(), "timer");
    /// assert_eq!(SafeModeExit::CoordinatorRegained.name(), "coordinator");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            SafeModeExit::At(_) => "timer",
            SafeModeExit::Manual => "manual",
            SafeModeExit::QueueDrained => "queue_drained",
            SafeModeExit::ClockInRange => "clock_in_range",
            SafeModeExit::Never => "never",
            SafeModeExit::CoordinatorRegained => "coordinator",
        }
    }

    /// When the exit happens by itself (µs), for [`At`](SafeModeExit::At).
    ///
    /// ```
    /// use hotpath::SafeModeExit;
    ///
    /// assert_eq!(SafeModeExit::At(5).at_us(), Some(5));
    /// assert_eq!(SafeModeExit::Manual.at_us(), None);
    /// ```
    pub fn at_us(self) -> Option<u64> {
        match self {
            SafeModeExit::At(t) => Some(t),
            _ => None,
        }
    }
}

/// The safe-mode latch of a [`SafetyExecutor`](crate::SafetyExecutor).
/// Read it through [`SafetyExecutor::control_safety`](crate::SafetyExecutor::control_safety);
/// only the executor changes it.
///
/// ```
/// use hotpath::{AtomicConfig, Guardrails, ParamVec, SafeModeReason, SafetyExecutor};
/// use std::sync::Arc;
///
/// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
/// let mut executor = SafetyExecutor::new(config, Guardrails::default());
/// executor.freeze();
/// assert!(executor.control_safety().is_latched());
/// assert!(executor.control_safety().reasons().contains(SafeModeReason::Manual));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ControlSafety {
    exits: [Option<SafeModeExit>; SafeModeReason::ALL.len()],
    /// The reasons whose exit is `Some`, kept in step by `latch` and
    /// `clear`: every `apply` asks `is_latched`, and one word answers it.
    latched: ReasonSet,
}

impl ControlSafety {
    /// `true` while any reason is latched.
    #[inline]
    pub fn is_latched(&self) -> bool {
        !self.latched.is_empty()
    }

    /// The latched reasons.
    pub fn reasons(&self) -> ReasonSet {
        self.latched
    }

    /// How `reason` will exit, if it is latched.
    pub fn exit_of(&self, reason: SafeModeReason) -> Option<SafeModeExit> {
        self.exits[reason as usize]
    }

    /// The first latched reason and, if it ends by timer, when.
    pub fn first(&self) -> Option<(SafeModeReason, Option<u64>)> {
        SafeModeReason::ALL.into_iter().find_map(|r| {
            self.exits[r as usize].map(|exit| match exit {
                SafeModeExit::At(t) => (r, Some(t)),
                _ => (r, None),
            })
        })
    }

    /// Latches `reason`. A timer on an already-latched reason is extended,
    /// never shortened; a manual exit is never downgraded to a timer.
    pub(crate) fn latch(&mut self, reason: SafeModeReason, exit: SafeModeExit) {
        let slot = &mut self.exits[reason as usize];
        *slot = match (*slot, exit) {
            (Some(SafeModeExit::At(a)), SafeModeExit::At(b)) => Some(SafeModeExit::At(a.max(b))),
            (Some(old @ (SafeModeExit::Manual | SafeModeExit::Never)), _) => Some(old),
            _ => Some(exit),
        };
        self.latched.insert(reason);
    }

    /// The reasons that would exit at `now` given whether the audit queue has
    /// drained and whether the clock's last reading was in range; does not
    /// clear them (the executor clears each once its exit event is
    /// recorded).
    pub(crate) fn due(&self, now_us: u64, queue_drained: bool, clock_in_range: bool) -> ReasonSet {
        let mut set = ReasonSet::EMPTY;
        for reason in SafeModeReason::ALL {
            let due = match self.exits[reason as usize] {
                Some(SafeModeExit::At(t)) => now_us >= t,
                Some(SafeModeExit::QueueDrained) => queue_drained,
                Some(SafeModeExit::ClockInRange) => clock_in_range,
                _ => false,
            };
            if due {
                set.insert(reason);
            }
        }
        set
    }

    /// Every latched reason that a resume may clear: not `Misconfigured`
    /// (a property of the settings), not `CoordinatorLost` (cleared only
    /// once the leadership it depends on is re-established).
    pub(crate) fn resumable(&self) -> ReasonSet {
        let mut set = self.reasons();
        set.0 &= !(SafeModeReason::Misconfigured.bit() | SafeModeReason::CoordinatorLost.bit());
        set
    }

    pub(crate) fn clear(&mut self, reasons: ReasonSet) {
        for reason in reasons.iter() {
            self.exits[reason as usize] = None;
        }
        self.latched.0 &= !reasons.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_extend_and_expire() {
        let mut s = ControlSafety::default();
        s.latch(SafeModeReason::Thrashing, SafeModeExit::At(100));
        s.latch(SafeModeReason::Thrashing, SafeModeExit::At(50));
        assert_eq!(
            s.exit_of(SafeModeReason::Thrashing),
            Some(SafeModeExit::At(100))
        );
        assert!(s.due(99, false, true).is_empty());
        assert!(s.due(100, false, true).contains(SafeModeReason::Thrashing));
        s.clear(s.due(100, false, true));
        assert!(!s.is_latched());
    }

    #[test]
    fn manual_is_not_downgraded_and_misconfigured_is_not_resumable() {
        let mut s = ControlSafety::default();
        s.latch(SafeModeReason::Manual, SafeModeExit::Manual);
        s.latch(SafeModeReason::Manual, SafeModeExit::At(1));
        assert_eq!(
            s.exit_of(SafeModeReason::Manual),
            Some(SafeModeExit::Manual)
        );
        s.latch(SafeModeReason::Misconfigured, SafeModeExit::Never);
        let r = s.resumable();
        assert!(r.contains(SafeModeReason::Manual));
        assert!(!r.contains(SafeModeReason::Misconfigured));
        assert_eq!(s.first(), Some((SafeModeReason::Manual, None)));
    }

    #[test]
    fn queue_reason_waits_for_drain() {
        let mut s = ControlSafety::default();
        s.latch(SafeModeReason::AuditQueueFull, SafeModeExit::QueueDrained);
        assert!(s.due(u64::MAX, false, true).is_empty());
        assert!(s
            .due(0, true, true)
            .contains(SafeModeReason::AuditQueueFull));
    }

    #[test]
    fn clock_fault_waits_for_a_reading_in_range() {
        let mut s = ControlSafety::default();
        s.latch(SafeModeReason::ClockFault, SafeModeExit::ClockInRange);
        assert!(s.due(u64::MAX, true, false).is_empty());
        assert!(s.due(0, false, true).contains(SafeModeReason::ClockFault));
    }
}
