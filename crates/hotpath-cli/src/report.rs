//! Counting what a run decided, for its summary.

use hotpath::{
    AuditDetails, AuditEvent, NoChangeReason, ProposalKind, RollbackReason, SafeModeReason,
    StepOutcome, Violation,
};
use std::collections::BTreeMap;
use std::fmt;

/// What a run proposed (from the engine's decisions) and what the executor
/// did (from the audit events).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// `NoChange` decisions by reason.
    pub no_change: BTreeMap<&'static str, u64>,
    /// Moves proposed, by kind.
    pub moves: BTreeMap<&'static str, u64>,
    /// Proposals applied.
    pub applied: u64,
    /// Requests refused, by violation.
    pub refused: BTreeMap<&'static str, u64>,
    /// Rollbacks, by reason.
    pub rollbacks: BTreeMap<&'static str, u64>,
    /// Safe-mode entries, by reason.
    pub safe_mode: BTreeMap<&'static str, u64>,
}

impl Tally {
    /// Counts one engine decision.
    pub fn step(&mut self, outcome: &StepOutcome) {
        match &outcome.proposal {
            hotpath::Proposal::NoChange { reason } => {
                *self.no_change.entry(no_change_name(*reason)).or_default() += 1;
            }
            p => *self.moves.entry(kind_name(p.kind())).or_default() += 1,
        }
    }

    /// Counts one audit event.
    pub fn event(&mut self, event: &AuditEvent) {
        match &event.details {
            AuditDetails::Applied { .. } => self.applied += 1,
            AuditDetails::Rejected { violation, .. } => {
                *self.refused.entry(violation_name(violation)).or_default() += 1;
            }
            AuditDetails::RolledBack { reason, .. } => {
                *self.rollbacks.entry(rollback_name(*reason)).or_default() += 1;
            }
            AuditDetails::SafeModeEntered { reason, .. } => {
                *self.safe_mode.entry(safe_mode_name(*reason)).or_default() += 1;
            }
            _ => {}
        }
    }

    /// Total refusals.
    pub fn refusals(&self) -> u64 {
        self.refused.values().sum()
    }

    /// Total rollbacks.
    pub fn rollback_count(&self) -> u64 {
        self.rollbacks.values().sum()
    }
}

/// `total (a 1, b 2)`, or `0`.
pub struct Breakdown<'a>(pub &'a BTreeMap<&'static str, u64>);

impl fmt::Display for Breakdown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total: u64 = self.0.values().sum();
        write!(f, "{total}")?;
        if total > 0 {
            f.write_str(" (")?;
            for (i, (name, n)) in self.0.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{name} {n}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  moves proposed   {}", Breakdown(&self.moves))?;
        writeln!(f, "  no change        {}", Breakdown(&self.no_change))?;
        writeln!(f, "  applied          {}", self.applied)?;
        writeln!(f, "  refused          {}", Breakdown(&self.refused))?;
        writeln!(f, "  rollbacks        {}", Breakdown(&self.rollbacks))?;
        write!(
            f,
            "  safe mode        entered {}",
            Breakdown(&self.safe_mode)
        )
    }
}

/// A proposal kind's name.
pub fn kind_name(kind: ProposalKind) -> &'static str {
    match kind {
        ProposalKind::NoChange => "no change",
        ProposalKind::ApplyPlus => "probe +",
        ProposalKind::ApplyMinus => "probe -",
        ProposalKind::Update => "update",
    }
}

/// Why the engine did not move.
pub fn no_change_name(reason: NoChangeReason) -> &'static str {
    match reason {
        NoChangeReason::CollectingSamples => "collecting samples",
        NoChangeReason::Settling => "settling",
        NoChangeReason::EvalTimeout => "evaluation timeout",
        NoChangeReason::SafeMode => "safe mode",
        NoChangeReason::WaitingForExecutor => "waiting for executor",
        NoChangeReason::ConstraintViolated => "constraint violated",
        _ => "other",
    }
}

/// A violation's rule.
pub fn violation_name(v: &Violation) -> &'static str {
    match v {
        Violation::DeltaTooLarge { .. } => "delta too large",
        Violation::RateLimitExceeded { .. } => "rate limit",
        Violation::DirectionFlipViolation { .. } => "direction flips",
        Violation::CumulativeDeltaViolation { .. } => "movement budget",
        Violation::InSafeMode { .. } => "in safe mode",
        Violation::AuditQueueFull { .. } => "audit queue full",
        Violation::NoBaseline => "no baseline",
        Violation::WrongLength { .. } => "wrong length",
        Violation::NonFinite { .. } => "non-finite",
        Violation::OutOfBounds { .. } => "out of bounds",
        Violation::ExcursionTooLarge { .. } => "excursion too large",
        Violation::StabilizationPending { .. } => "stabilising",
        Violation::NonFiniteObjective => "non-finite objective",
        Violation::StaleOutcome { .. } => "stale outcome",
        _ => "other",
    }
}

/// Why a rollback happened.
pub fn rollback_name(reason: RollbackReason) -> &'static str {
    match reason {
        RollbackReason::Manual => "manual",
        RollbackReason::Regressions => "regressions",
        RollbackReason::ConstraintEmergency => "constraint emergency",
        _ => "other",
    }
}

/// Why safe mode latched.
pub fn safe_mode_name(reason: SafeModeReason) -> &'static str {
    match reason {
        SafeModeReason::Thrashing => "thrashing",
        SafeModeReason::BudgetExhausted => "budget exhausted",
        SafeModeReason::Regressions => "regressions",
        SafeModeReason::RollbackCircuitBreaker => "circuit breaker",
        SafeModeReason::AuditQueueFull => "audit queue full",
        SafeModeReason::RepeatedViolations => "repeated violations",
        SafeModeReason::TelemetryStalled => "telemetry stalled",
        SafeModeReason::Manual => "manual",
        SafeModeReason::Misconfigured => "misconfigured",
        SafeModeReason::ClockFault => "clock fault",
        SafeModeReason::CoordinatorLost => "coordinator lost",
    }
}
