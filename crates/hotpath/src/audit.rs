//! The audit trail: [`AuditQueue`], a bounded lock-free queue of
//! [`AuditEvent`]s that the executor fills and a consumer thread drains.
//!
//! # Contract
//!
//! * Every decision of the [`SafetyExecutor`](crate::SafetyExecutor)
//!   produces exactly one event, enqueued **before** the decision takes
//!   effect, with a sequence number that increases by one per event.
//! * Event details are structured data ([`AuditDetails`]), built without
//!   allocation for configurations of up to
//!   [`INLINE_PARAMS`](crate::INLINE_PARAMS) parameters; formatting happens
//!   on the consumer's side.
//! * Nothing is dropped silently. The executor keeps the top eighth of the
//!   capacity (the *reserve*) for safety events (refusals, rollbacks, safe
//!   mode), and refuses any change whose event would have to use it
//!   (`Violation::AuditQueueFull`, which latches safe mode until the queue
//!   has drained to half its capacity). A safety event that finds even the
//!   reserve full is counted; the next event that gets through is preceded
//!   by an [`AuditDetails::EventsDropped`] record carrying the count, and
//!   dropped events take no sequence number, so numbering stays gap-free.
//!
//! The queue is a bounded lock-free ring (Vyukov's array queue, as in
//! crossbeam) whose slots are written and read in place; see
//! [`AuditQueue`] for why, and `audit/ring.rs` for the protocol and the
//! crate's only `unsafe` code.

mod ring;

use crate::error::ConfigError;
use crate::proposal::ProposalKind;
use crate::safe_mode::{ReasonSet, SafeModeExit, SafeModeReason};
use crate::violation::Violation;
use crate::ParamVec;
use ring::SlotRing;
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

/// The kind of an [`AuditEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum EventType {
    /// The executor took charge of the configuration.
    Started,
    /// The executor took charge again from a persisted state.
    Restored,
    /// A proposal changed the live configuration.
    Applied,
    /// A request was refused.
    Rejected,
    /// The baseline was restored.
    RolledBack,
    /// A baseline was recorded.
    BaselineSet,
    /// An outcome (objective) report was judged.
    Outcome,
    /// Safe mode latched for a reason.
    SafeModeEntered,
    /// A safe-mode reason exited by itself.
    SafeModeExited,
    /// An operator resumed from safe mode.
    Resumed,
    /// Events could not be recorded.
    EventsDropped,
    /// A decision of the adaptive engine.
    Engine,
}

impl EventType {
    /// Every event type, in declaration order: what a filter (`hotpath
    /// audit show --type`) offers, so a new type is never unfilterable.
    ///
    /// ```
    /// use hotpath::EventType;
    ///
    /// assert_eq!(EventType::ALL.len(), 12);
    /// assert_eq!(EventType::ALL[0], EventType::Started);
    /// ```
    pub const ALL: [EventType; 12] = [
        EventType::Started,
        EventType::Restored,
        EventType::Applied,
        EventType::Rejected,
        EventType::RolledBack,
        EventType::BaselineSet,
        EventType::Outcome,
        EventType::SafeModeEntered,
        EventType::SafeModeExited,
        EventType::Resumed,
        EventType::EventsDropped,
        EventType::Engine,
    ];

    /// The type's name in kebab case (`rolled-back`), as filters take it.
    /// (The log's `"type"` field is the serde name, `RolledBack`.)
    ///
    /// ```
    /// use hotpath::EventType;
    ///
    /// assert_eq!(EventType::SafeModeEntered.name(), "safe-mode-entered");
    /// assert_eq!(EventType::RolledBack.to_string(), "rolled-back");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            EventType::Started => "started",
            EventType::Restored => "restored",
            EventType::Applied => "applied",
            EventType::Rejected => "rejected",
            EventType::RolledBack => "rolled-back",
            EventType::BaselineSet => "baseline-set",
            EventType::Outcome => "outcome",
            EventType::SafeModeEntered => "safe-mode-entered",
            EventType::SafeModeExited => "safe-mode-exited",
            EventType::Resumed => "resumed",
            EventType::EventsDropped => "events-dropped",
            EventType::Engine => "engine",
        }
    }

    /// What an event of this type records, in a few words (for help
    /// texts).
    ///
    /// ```
    /// use hotpath::EventType;
    ///
    /// assert_eq!(EventType::Applied.description(), "A change was applied");
    /// ```
    pub fn description(self) -> &'static str {
        match self {
            EventType::Started => "The executor took charge",
            EventType::Restored => "The executor took charge again from a saved state",
            EventType::Applied => "A change was applied",
            EventType::Rejected => "A request was refused",
            EventType::RolledBack => "The baseline was restored",
            EventType::BaselineSet => "A baseline was recorded",
            EventType::Outcome => "An objective report was judged",
            EventType::SafeModeEntered => "Safe mode latched",
            EventType::SafeModeExited => "A safe-mode reason cleared by itself",
            EventType::Resumed => "An operator resumed",
            EventType::EventsDropped => "Events were dropped",
            EventType::Engine => "A decision of the adaptive engine",
        }
    }
}

impl std::fmt::Display for EventType {
    /// [`name`](EventType::name).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of [`EventType::ALL`]'s.
///
/// ```
/// use hotpath::EventType;
///
/// let e = "rolledback".parse::<EventType>().unwrap_err();
/// assert!(e.to_string().starts_with("unknown event type `rolledback`, expected one of started,"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type `{name}`, expected one of {}", EventType::ALL.map(EventType::name).join(", "))]
pub struct UnknownEventType {
    /// The name given.
    pub name: String,
}

impl std::str::FromStr for EventType {
    type Err = UnknownEventType;

    /// Parses a [`name`](EventType::name) (`rolled-back`).
    ///
    /// # Errors
    ///
    /// [`UnknownEventType`] for any other string.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| UnknownEventType { name: s.to_owned() })
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

/// Which evaluation window an engine event refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EvalPhase {
    /// Measuring noise at the initial configuration.
    Calibrating,
    /// Measuring the committed centre.
    Centre,
    /// Measuring `θ + c·Δ`.
    Plus,
    /// Measuring `θ − c·Δ`.
    Minus,
}

/// A decision of the [`AdaptiveEngine`](crate::AdaptiveEngine), recorded with
/// its correlation ids (the event's `generation` is the third).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum EngineEvent {
    /// Gains were calibrated from measurements.
    Calibrated {
        /// Noise (standard deviation) of one window's aggregate at the start.
        noise_sd: f64,
        /// Mean |ĝᵢ| of the calibration gradient estimates.
        mean_gradient: f64,
        /// Chosen `c₀` (fraction of the range).
        perturbation_scale: f64,
        /// Chosen `a₀`.
        learning_rate: f64,
        /// Chosen stability constant `A`.
        stability_a: f64,
    },
    /// A gradient was estimated and a step planned.
    Gradient {
        /// SPSA iteration.
        iteration: u64,
        /// Perturbation that produced it.
        perturbation_id: u64,
        /// Objective at `θ + c·Δ`.
        y_plus: f64,
        /// Objective at `θ − c·Δ`.
        y_minus: f64,
        /// Planned step (fractions of the ranges), after clipping.
        step: ParamVec,
    },
    /// The last step raised the centre objective beyond the noise
    /// allowance: the engine moves back and shrinks later steps.
    StepRejected {
        /// SPSA iteration of the step.
        iteration: u64,
        /// Objective at the new centre.
        objective: f64,
        /// Objective at the previous centre.
        previous: f64,
        /// The multiplier of the learning rate after halving.
        gain_scale: f64,
    },
    /// The objective moved under a fixed configuration: the gain schedule
    /// restarted.
    DriftDetected {
        /// Objective of the previous centre, measured again.
        objective: f64,
        /// What it was before.
        previous: f64,
        /// The restarted `a₀`.
        learning_rate: f64,
    },
    /// An evaluation window did not fill in time.
    EvalTimeout {
        /// Which window.
        phase: EvalPhase,
        /// Timeouts in a row.
        consecutive: u32,
    },
    /// A constraint margin went negative.
    ConstraintViolated {
        /// The margin reported.
        margin: f64,
        /// `true` if below the emergency threshold (rolled back at once).
        emergency: bool,
    },
    /// Constraint margins are non-negative again; optimisation resumes.
    ConstraintCleared,
    /// A planned move would be refused for a reason waiting cannot cure;
    /// the iteration is abandoned and the engine returns to the centre.
    PlanAbandoned {
        /// What the executor would refuse it for.
        violation: Violation,
    },
}

/// The result of [`AuditQueue::enqueue`].
#[must_use]
#[derive(Debug, Clone, PartialEq)]
// Boxing the returned event would allocate on the full path; the size
// difference only costs a copy.
#[allow(clippy::large_enum_variant)]
pub enum EnqueueResult {
    /// The event is in the queue.
    Enqueued,
    /// The queue was full; the event is handed back.
    Full(AuditEvent),
}

/// Bounded, lock-free queue of audit events.
///
/// Multi-producer, multi-consumer, one allocation at construction. Every
/// slot holds an initialised event for the queue's whole life, so events
/// can be **written and read in place**: [`enqueue_with`](Self::enqueue_with)
/// overwrites a slot (reusing its parameter vectors' storage) and
/// [`try_dequeue_with`](Self::try_dequeue_with) lends the event to a
/// closure. That is how the executor and the durable log use it: an event
/// is copied once on its way through (by-value queues cost 55 ns per
/// 320-byte event, see BENCHMARKS.md). [`enqueue`](Self::enqueue) and
/// [`try_dequeue`](Self::try_dequeue) are the by-value convenience forms.
///
/// ```
/// use hotpath::{AuditDetails, AuditEvent, AuditQueue, EnqueueResult, ParamVec};
///
/// let queue = AuditQueue::new(2);
/// let event = AuditEvent {
///     seq: 0,
///     timestamp_us: 10,
///     generation: 0,
///     details: AuditDetails::EventsDropped { count: 0 },
/// };
/// assert_eq!(queue.enqueue(event.clone()), EnqueueResult::Enqueued);
/// assert_eq!(queue.try_dequeue(), Some(event));
/// assert_eq!(queue.try_dequeue(), None);
/// ```
#[derive(Debug)]
pub struct AuditQueue {
    ring: SlotRing<AuditEvent>,
}

/// What a slot holds before its first event.
fn empty_event() -> AuditEvent {
    AuditEvent {
        seq: 0,
        timestamp_us: 0,
        generation: 0,
        details: AuditDetails::EventsDropped { count: 0 },
    }
}

impl AuditQueue {
    /// A queue holding up to `capacity` events. A capacity of 0 is clamped
    /// to 1 (use [`try_new`](Self::try_new) to have it refused instead).
    pub fn new(capacity: usize) -> Self {
        Self {
            ring: SlotRing::new(capacity, empty_event),
        }
    }

    /// A queue holding up to `capacity` events; `ZeroCapacity` for 0.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroCapacity`] for a capacity of 0.
    ///
    /// ```
    /// use hotpath::AuditQueue;
    ///
    /// assert!(AuditQueue::try_new(0).is_err());
    /// assert_eq!(AuditQueue::try_new(8).unwrap().capacity(), 8);
    /// ```
    pub fn try_new(capacity: usize) -> Result<Self, ConfigError> {
        if capacity == 0 {
            return Err(ConfigError::ZeroCapacity {
                what: "audit queue",
            });
        }
        Ok(Self::new(capacity))
    }

    /// Adds an event if there is room; hands it back if not. Lock-free and
    /// allocation-free either way.
    pub fn enqueue(&self, event: AuditEvent) -> EnqueueResult {
        let mut pending = Some(event);
        self.ring.push_with(self.capacity(), |slot| {
            if let Some(event) = pending.take() {
                *slot = event;
            }
        });
        match pending {
            None => EnqueueResult::Enqueued,
            Some(event) => EnqueueResult::Full(event),
        }
    }

    /// Adds an event written in place: `write` gets the slot, which still
    /// holds an **earlier event** (or a placeholder), and must set every
    /// field. Reusing the slot's storage is the point: assigning a
    /// [`ParamVec`] with [`ParamVec::copy_from`] copies only the values and
    /// never allocates once the slot has held a vector that long. `false`,
    /// without calling `write`, if the queue is full.
    ///
    /// ```
    /// use hotpath::{AuditDetails, AuditQueue, ParamVec};
    ///
    /// let queue = AuditQueue::new(4);
    /// let params = [0.25, 0.5];
    /// let written = queue.enqueue_with(|event| {
    ///     event.seq = 0;
    ///     event.timestamp_us = 10;
    ///     event.generation = 1;
    ///     match &mut event.details {
    ///         AuditDetails::BaselineSet { baseline_generation, params: p } => {
    ///             *baseline_generation = 1;
    ///             p.copy_from(&params);
    ///         }
    ///         other => {
    ///             *other = AuditDetails::BaselineSet {
    ///                 baseline_generation: 1,
    ///                 params: ParamVec::from_slice(&params),
    ///             }
    ///         }
    ///     }
    /// });
    /// assert!(written);
    /// assert_eq!(queue.try_dequeue_with(|e| e.to_string()).unwrap(),
    ///            "#0 t=10µs gen=1 baseline set at gen 1: [0.25, 0.5]");
    /// ```
    #[inline]
    pub fn enqueue_with(&self, write: impl FnOnce(&mut AuditEvent)) -> bool {
        self.ring.push_with(self.capacity(), write)
    }

    /// [`enqueue_with`](Self::enqueue_with), only if fewer than `limit`
    /// events are queued: how the executor keeps the reserve for safety
    /// events.
    #[inline]
    pub(crate) fn enqueue_below(&self, limit: usize, write: impl FnOnce(&mut AuditEvent)) -> bool {
        self.ring.push_with(limit, write)
    }

    /// Takes the oldest event, if any, moving it out of its slot (which gets
    /// a placeholder). Never allocates; but the next in-place write into
    /// that slot then builds its vectors afresh, which allocates beyond
    /// [`INLINE_PARAMS`](crate::INLINE_PARAMS) parameters. Consumers that
    /// keep up with an executor should read in place with
    /// [`try_dequeue_with`](Self::try_dequeue_with).
    pub fn try_dequeue(&self) -> Option<AuditEvent> {
        self.ring
            .pop_with_mut(|slot| std::mem::replace(slot, empty_event()))
    }

    /// Takes the oldest event, if any, lending it to `read` in place; the
    /// slot is freed when `read` returns (or panics). Keep `read` short:
    /// producers that reach this slot wait for it.
    ///
    /// ```
    /// use hotpath::{AuditDetails, AuditEvent, AuditQueue, EventType};
    ///
    /// let queue = AuditQueue::new(2);
    /// let _ = queue.enqueue(AuditEvent {
    ///     seq: 7,
    ///     timestamp_us: 0,
    ///     generation: 0,
    ///     details: AuditDetails::EventsDropped { count: 3 },
    /// });
    /// assert_eq!(queue.try_dequeue_with(|e| (e.seq, e.event_type())),
    ///            Some((7, EventType::EventsDropped)));
    /// assert_eq!(queue.try_dequeue_with(|e| e.seq), None);
    /// ```
    #[inline]
    pub fn try_dequeue_with<R>(&self, read: impl FnOnce(&AuditEvent) -> R) -> Option<R> {
        self.ring.pop_with(read)
    }

    /// Events currently queued.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// `true` if no event is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Maximum number of queued events.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// Queue length at or below which an `AuditQueueFull` safe mode exits:
    /// half the capacity.
    pub fn high_water_mark(&self) -> usize {
        self.capacity() / 2
    }

    /// Queue length from which ordinary (non-safety) events are refused:
    /// capacity minus the reserve of one eighth (rounded down).
    pub fn reserve_threshold(&self) -> usize {
        self.capacity() - self.capacity() / 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64) -> AuditEvent {
        AuditEvent {
            seq,
            timestamp_us: seq,
            generation: 0,
            details: AuditDetails::EventsDropped { count: 0 },
        }
    }

    #[test]
    fn every_event_type_is_listed_and_named_once() {
        // Exhaustive: a new variant does not compile until it is placed here,
        // and then the assertion below needs it in `ALL`.
        let position = |t: EventType| match t {
            EventType::Started => 0,
            EventType::Restored => 1,
            EventType::Applied => 2,
            EventType::Rejected => 3,
            EventType::RolledBack => 4,
            EventType::BaselineSet => 5,
            EventType::Outcome => 6,
            EventType::SafeModeEntered => 7,
            EventType::SafeModeExited => 8,
            EventType::Resumed => 9,
            EventType::EventsDropped => 10,
            EventType::Engine => 11,
        };
        for (i, t) in EventType::ALL.into_iter().enumerate() {
            assert_eq!(position(t), i, "{t:?}");
            assert_eq!(t.name().parse::<EventType>(), Ok(t));
            assert_eq!(t.to_string(), t.name());
        }
        assert!("RolledBack".parse::<EventType>().is_err());
    }

    #[test]
    fn zero_capacity_is_clamped_or_refused() {
        assert_eq!(AuditQueue::new(0).capacity(), 1);
        assert_eq!(
            AuditQueue::try_new(0).unwrap_err(),
            ConfigError::ZeroCapacity {
                what: "audit queue"
            }
        );
    }

    #[test]
    fn full_queue_hands_the_event_back_in_fifo_order() {
        let q = AuditQueue::new(2);
        assert_eq!(q.enqueue(event(0)), EnqueueResult::Enqueued);
        assert_eq!(q.enqueue(event(1)), EnqueueResult::Enqueued);
        assert_eq!(q.enqueue(event(2)), EnqueueResult::Full(event(2)));
        assert_eq!(q.try_dequeue().map(|e| e.seq), Some(0));
        assert_eq!(q.try_dequeue().map(|e| e.seq), Some(1));
        assert!(q.is_empty());
    }

    #[test]
    fn reserve_and_high_water_marks() {
        let q = AuditQueue::new(16);
        assert_eq!(q.reserve_threshold(), 14);
        assert_eq!(q.high_water_mark(), 8);
        for i in 0..14 {
            assert!(q.enqueue_below(q.reserve_threshold(), |e| *e = event(i)));
        }
        assert!(!q.enqueue_below(q.reserve_threshold(), |e| *e = event(14)));
        assert_eq!(q.enqueue(event(14)), EnqueueResult::Enqueued);
    }

    #[test]
    fn events_round_trip_through_json() {
        let e = AuditEvent {
            seq: 3,
            timestamp_us: 7,
            generation: 2,
            details: AuditDetails::Rejected {
                request: RequestKind::Proposal(ProposalKind::Update),
                correlation_id: 9,
                violation: Violation::NonFinite { index: 1 },
                delta: ParamVec::from_slice(&[0.0, 1.0]),
            },
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<AuditEvent>(&json).unwrap(), e);
    }

    #[test]
    fn consumer_thread_sees_every_event_in_order() {
        let q = std::sync::Arc::new(AuditQueue::new(64));
        let consumer = {
            let q = q.clone();
            std::thread::spawn(move || {
                let mut next = 0;
                while next < 10_000 {
                    if let Some(e) = q.try_dequeue() {
                        assert_eq!(e.seq, next);
                        next += 1;
                    }
                }
            })
        };
        let mut seq = 0;
        while seq < 10_000 {
            if q.enqueue(event(seq)) == EnqueueResult::Enqueued {
                seq += 1;
            }
        }
        consumer.join().unwrap();
    }
}
