//! [`AuditEvent`] and its [`AuditDetails`]: what one audited decision
//! records, with the vocabulary of its details ([`RequestKind`],
//! [`RollbackReason`], [`OutcomeVerdict`]), its one-line rendering and the
//! in-place writers the executor uses on queue slots.

use super::{EngineEvent, EventType};
use crate::proposal::ProposalKind;
use crate::safe_mode::{ReasonSet, SafeModeExit, SafeModeReason};
use crate::space::ParamSpace;
use crate::violation::{Named, Violation};
use crate::ParamVec;
use serde::{Deserialize, Serialize};

/// One audited decision.
///
/// ```
/// use hotpath::{AuditDetails, AuditEvent, EventType, ParamVec};
///
/// let e = AuditEvent {
///     seq: 0,
///     timestamp_us: 0,
///     generation: 0,
///     details: AuditDetails::Started { params: ParamVec::from_slice(&[0.5]) },
/// };
/// assert_eq!(e.event_type(), EventType::Started);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Position in the executor's event sequence: 0, 1, 2, … without gaps.
    pub seq: u64,
    /// When the decision was taken (the executor's clock, µs).
    pub timestamp_us: u64,
    /// The live generation after the decision.
    pub generation: u64,
    /// What was decided, with its data.
    pub details: AuditDetails,
}

impl AuditEvent {
    /// Its line (its `Display`) with a refusal's parameter named by its
    /// knob in `space` (see [`Violation::named`]), for people.
    ///
    /// ```
    /// use hotpath::{AuditDetails, AuditEvent, Knob, ParamSpace, ParamVec, ProposalKind, RequestKind, Violation};
    ///
    /// let space = ParamSpace::new(vec![Knob::int("batch_size", 1, 512, 64)])?;
    /// let e = AuditEvent { seq: 7, timestamp_us: 10, generation: 3, details: AuditDetails::Rejected {
    ///     request: RequestKind::Proposal(ProposalKind::Update), correlation_id: 2,
    ///     violation: Violation::OffGrid { index: 0, value: 12.5 }, delta: ParamVec::from_slice(&[0.5]) } };
    /// assert_eq!(e.named(&space).to_string(),
    ///            "#7 t=10µs gen=3 REJECTED Proposal(Update) #2: batch_size would become 12.5, which is not on its grid");
    /// # Ok::<(), hotpath::ConfigError>(())
    /// ```
    pub fn named<'a>(&'a self, space: &'a ParamSpace) -> Named<'a, AuditEvent> {
        let index = match &self.details {
            AuditDetails::Rejected { violation, .. } => violation.index(),
            _ => None,
        };
        Named {
            item: self,
            index,
            space,
        }
    }

    /// The kind of event (the reference API's `event_type`), derived from the details
    /// so the two can never disagree.
    pub fn event_type(&self) -> EventType {
        match self.details {
            AuditDetails::Started { .. } => EventType::Started,
            AuditDetails::Restored { .. } => EventType::Restored,
            AuditDetails::Applied { .. } => EventType::Applied,
            AuditDetails::Rejected { .. } => EventType::Rejected,
            AuditDetails::RolledBack { .. } => EventType::RolledBack,
            AuditDetails::BaselineSet { .. } => EventType::BaselineSet,
            AuditDetails::Outcome { .. } => EventType::Outcome,
            AuditDetails::SafeModeEntered { .. } => EventType::SafeModeEntered,
            AuditDetails::SafeModeExited { .. } => EventType::SafeModeExited,
            AuditDetails::Resumed { .. } => EventType::Resumed,
            AuditDetails::EventsDropped { .. } => EventType::EventsDropped,
            AuditDetails::Engine { .. } => EventType::Engine,
        }
    }
}

/// One line, for people: `#seq t=…µs gen=… <what happened>`.
///
/// ```
/// use hotpath::{AuditDetails, AuditEvent, ParamVec};
///
/// let e = AuditEvent {
///     seq: 4,
///     timestamp_us: 1_500,
///     generation: 2,
///     details: AuditDetails::BaselineSet { baseline_generation: 2, params: ParamVec::from_slice(&[0.5]) },
/// };
/// assert_eq!(e.to_string(), "#4 t=1500µs gen=2 baseline set at gen 2: [0.5]");
/// ```
impl std::fmt::Display for AuditEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "#{} t={}µs gen={} ",
            self.seq, self.timestamp_us, self.generation
        )?;
        match &self.details {
            AuditDetails::Started { params } => write!(f, "started with {params:?}"),
            AuditDetails::Restored { params, safe_mode } => write!(
                f,
                "restored with {params:?}, safe mode {:?}",
                safe_mode.iter().collect::<Vec<_>>()
            ),
            AuditDetails::Applied {
                kind,
                correlation_id,
                delta,
                params,
                ..
            } => write!(
                f,
                "applied {kind:?} #{correlation_id}: delta {delta:?} -> {params:?}"
            ),
            AuditDetails::Rejected {
                request,
                correlation_id,
                violation,
                ..
            } => write!(f, "REJECTED {request:?} #{correlation_id}: {violation}"),
            AuditDetails::RolledBack { reason, params, .. } => {
                write!(f, "ROLLED BACK ({reason:?}) to {params:?}")
            }
            AuditDetails::BaselineSet {
                baseline_generation,
                params,
            } => write!(f, "baseline set at gen {baseline_generation}: {params:?}"),
            AuditDetails::Outcome {
                reported_generation,
                objective,
                verdict,
            } => write!(
                f,
                "outcome {objective} for gen {reported_generation}: {verdict:?}"
            ),
            AuditDetails::SafeModeEntered { reason, exit } => {
                write!(f, "SAFE MODE entered ({reason}), exit {exit:?}")
            }
            AuditDetails::SafeModeExited { reason } => write!(f, "safe mode exited ({reason})"),
            AuditDetails::Resumed { cleared } => {
                write!(
                    f,
                    "resumed by operator, cleared {:?}",
                    cleared.iter().collect::<Vec<_>>()
                )
            }
            AuditDetails::EventsDropped { count } => {
                write!(f, "{count} EVENTS DROPPED (queue full)")
            }
            AuditDetails::Engine { event } => write!(f, "engine: {event:?}"),
        }
    }
}

/// The data of an [`AuditEvent`]: enough to answer "what changed, when and
/// why" and to replay the live configuration from the first event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum AuditDetails {
    /// The executor took charge; `params` are the live values.
    Started {
        /// Live values at start.
        params: ParamVec,
    },
    /// The executor took charge again from a persisted state; `params` are
    /// the live values, `safe_mode` the reasons still latched.
    Restored {
        /// Live values at restore.
        params: ParamVec,
        /// Safe-mode reasons restored.
        safe_mode: ReasonSet,
    },
    /// A proposal was applied.
    Applied {
        /// Which kind of proposal.
        kind: ProposalKind,
        /// Perturbation id or iteration.
        correlation_id: u64,
        /// Generation before the change.
        previous_generation: u64,
        /// The proposal's delta.
        delta: ParamVec,
        /// The live values after the change.
        params: ParamVec,
    },
    /// A request was refused; nothing changed but the safety state the
    /// violation documents.
    Rejected {
        /// What was refused.
        request: RequestKind,
        /// Perturbation id or iteration (0 when not a proposal).
        correlation_id: u64,
        /// Why.
        violation: Violation,
        /// The proposal's delta (empty when not a proposal).
        delta: ParamVec,
    },
    /// The baseline was restored bit for bit.
    RolledBack {
        /// Why.
        reason: RollbackReason,
        /// Generation before the rollback.
        previous_generation: u64,
        /// The restored values.
        params: ParamVec,
    },
    /// The centre was recorded as the baseline.
    BaselineSet {
        /// The centre's generation.
        baseline_generation: u64,
        /// The baseline values.
        params: ParamVec,
    },
    /// An outcome report was judged.
    Outcome {
        /// The generation it was reported for.
        reported_generation: u64,
        /// The objective (lower is better).
        objective: f64,
        /// The verdict.
        verdict: OutcomeVerdict,
    },
    /// Safe mode latched.
    SafeModeEntered {
        /// Why.
        reason: SafeModeReason,
        /// How it will exit.
        exit: SafeModeExit,
    },
    /// A safe-mode reason exited by itself (timer or drained queue).
    SafeModeExited {
        /// Which reason.
        reason: SafeModeReason,
    },
    /// An operator resumed; these reasons were cleared.
    Resumed {
        /// Cleared reasons.
        cleared: ReasonSet,
    },
    /// This many events could not be recorded since the previous event.
    EventsDropped {
        /// How many.
        count: u64,
    },
    /// A decision of the [`AdaptiveEngine`](crate::AdaptiveEngine).
    Engine {
        /// What it decided.
        event: EngineEvent,
    },
}

impl AuditDetails {
    /// Makes `self` an `Applied` record, reusing its vectors' storage if it
    /// already is one (the executor's in-place write into a queue slot).
    #[inline]
    pub(crate) fn set_applied(
        &mut self,
        kind: ProposalKind,
        correlation_id: u64,
        previous_generation: u64,
        delta: &[f64],
        params: &[f64],
    ) {
        if let AuditDetails::Applied {
            kind: k,
            correlation_id: c,
            previous_generation: p,
            delta: d,
            params: v,
        } = self
        {
            *k = kind;
            *c = correlation_id;
            *p = previous_generation;
            d.copy_from(delta);
            v.copy_from(params);
        } else {
            *self = AuditDetails::Applied {
                kind,
                correlation_id,
                previous_generation,
                delta: ParamVec::from_slice(delta),
                params: ParamVec::from_slice(params),
            };
        }
    }

    /// Makes `self` a `Rejected` record, reusing its delta's storage if it
    /// already is one.
    #[inline]
    pub(crate) fn set_rejected(
        &mut self,
        request: RequestKind,
        correlation_id: u64,
        violation: Violation,
        delta: &[f64],
    ) {
        if let AuditDetails::Rejected {
            request: r,
            correlation_id: c,
            violation: v,
            delta: d,
        } = self
        {
            *r = request;
            *c = correlation_id;
            *v = violation;
            d.copy_from(delta);
        } else {
            *self = AuditDetails::Rejected {
                request,
                correlation_id,
                violation,
                delta: ParamVec::from_slice(delta),
            };
        }
    }
}

/// What a refused request was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RequestKind {
    /// `apply` of a proposal of this kind.
    Proposal(ProposalKind),
    /// `rollback`.
    Rollback,
    /// `set_baseline`.
    SetBaseline,
    /// `report_outcome`.
    Outcome,
}

/// Why a rollback happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RollbackReason {
    /// Requested through [`rollback`](crate::SafetyExecutor::rollback).
    Manual,
    /// `max_consecutive_regressions` regressed outcomes.
    Regressions,
    /// A constraint was violated beyond its emergency threshold.
    ConstraintEmergency,
}

/// The verdict on one outcome report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum OutcomeVerdict {
    /// The centre is the baseline: the report refines the baseline's mean
    /// and noise estimate.
    BaselineSample,
    /// Not judged: no baseline, or too few baseline reports to know its
    /// noise yet.
    Unjudged,
    /// Within the allowance of the baseline.
    Acceptable,
    /// Worse than the baseline by more than the allowance.
    Regressed {
        /// Consecutive regressed reports so far, across rollbacks.
        consecutive: u32,
    },
}
