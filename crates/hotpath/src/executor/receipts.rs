//! What the executor hands back: receipts for applied changes, rollbacks
//! and outcome reports, and its monitoring counters.

use crate::audit::{OutcomeVerdict, RollbackReason};
use crate::proposal::ProposalKind;
use serde::{Deserialize, Serialize};

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
    /// Generation of the restored baseline (equal to `old_generation` if
    /// the configuration was already there).
    pub new_generation: u64,
    /// When (µs).
    pub timestamp_us: u64,
    /// Sequence number of its audit event; `None` when the live
    /// configuration and the centre already were the baseline: such a
    /// rollback changes nothing, so it publishes nothing, records nothing
    /// and does not count towards the circuit breaker.
    pub audit_seq: Option<u64>,
    /// `true` if this rollback tripped the circuit breaker.
    pub circuit_breaker_tripped: bool,
}

/// What [`SafetyExecutor::report_outcome`](crate::SafetyExecutor::report_outcome) concluded and did.
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
    /// Clock readings beyond [`MAX_TIME_US`](crate::MAX_TIME_US) (each
    /// ignored; see `SafeModeReason::ClockFault`).
    pub clock_faults: u64,
}
