//! [`Proposal`]: what a proposer asks the executor to do.

use crate::ParamVec;
use serde::{Deserialize, Serialize};

/// A requested change of the live configuration, produced by the adaptive
/// proposer (or by hand) and judged by
/// [`SafetyExecutor::apply`](crate::SafetyExecutor::apply).
///
/// # Deltas and the centre
///
/// Every `delta` is **relative to the live configuration** at the time of
/// `apply`: the new live value of parameter `i` is `live[i] + delta[i]`.
///
/// The executor distinguishes the *centre* (the committed configuration)
/// from *probes* around it:
///
/// * `ApplyPlus` / `ApplyMinus` are SPSA probes: they move the live config
///   but leave the centre where it is. They must stay within
///   `max_delta_per_step` of the centre, and they neither count as direction
///   flips nor spend the cumulative budget, because they are undone.
/// * `Update` commits: the live config after it becomes the new centre, and
///   the move *from the old centre* is what counts for flips and budget.
///   An `Update` whose result equals the centre returns from a probe without
///   committing anything.
///
/// ```
/// use hotpath::{ParamVec, Proposal};
///
/// let p = Proposal::Update {
///     iteration: 1,
///     delta: ParamVec::from_slice(&[0.01, -0.01]),
///     gradient_estimate: ParamVec::from_slice(&[0.1, -0.1]),
/// };
/// assert_eq!(p.delta().map(|d| d.len()), Some(2));
/// assert!(p.is_commit());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Proposal {
    /// No change needed.
    NoChange {
        /// Why the proposer is not moving.
        reason: NoChangeReason,
    },
    /// Move to the `+c·Δ` probe point (SPSA phase 1).
    ApplyPlus {
        /// Correlates the probe with its evaluation and audit events.
        perturbation_id: u64,
        /// Change relative to the live configuration.
        delta: ParamVec,
    },
    /// Move to the `−c·Δ` probe point (SPSA phase 2).
    ApplyMinus {
        /// Correlates the probe with its evaluation and audit events.
        perturbation_id: u64,
        /// Change relative to the live configuration.
        delta: ParamVec,
    },
    /// Commit a new centre after SPSA gradient estimation.
    Update {
        /// Optimiser iteration.
        iteration: u64,
        /// Change relative to the live configuration.
        delta: ParamVec,
        /// The gradient estimate behind this step, kept for the audit trail.
        gradient_estimate: ParamVec,
    },
}

impl Proposal {
    /// The proposal's kind, without its data.
    pub fn kind(&self) -> ProposalKind {
        match self {
            Proposal::NoChange { .. } => ProposalKind::NoChange,
            Proposal::ApplyPlus { .. } => ProposalKind::ApplyPlus,
            Proposal::ApplyMinus { .. } => ProposalKind::ApplyMinus,
            Proposal::Update { .. } => ProposalKind::Update,
        }
    }

    /// The change it asks for, if any.
    pub fn delta(&self) -> Option<&ParamVec> {
        match self {
            Proposal::NoChange { .. } => None,
            Proposal::ApplyPlus { delta, .. }
            | Proposal::ApplyMinus { delta, .. }
            | Proposal::Update { delta, .. } => Some(delta),
        }
    }

    /// The correlation id: the perturbation id of a probe, the iteration of
    /// an update, 0 for `NoChange`.
    pub fn correlation_id(&self) -> u64 {
        match self {
            Proposal::NoChange { .. } => 0,
            Proposal::ApplyPlus {
                perturbation_id, ..
            }
            | Proposal::ApplyMinus {
                perturbation_id, ..
            } => *perturbation_id,
            Proposal::Update { iteration, .. } => *iteration,
        }
    }

    /// `true` for `Update`, the only kind that moves the centre.
    pub fn is_commit(&self) -> bool {
        matches!(self, Proposal::Update { .. })
    }
}

/// The kind of a [`Proposal`], as recorded in audit events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProposalKind {
    /// [`Proposal::NoChange`].
    NoChange,
    /// [`Proposal::ApplyPlus`].
    ApplyPlus,
    /// [`Proposal::ApplyMinus`].
    ApplyMinus,
    /// [`Proposal::Update`].
    Update,
}

/// Why a proposer returned [`Proposal::NoChange`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum NoChangeReason {
    /// Still collecting objective samples for the current evaluation window.
    CollectingSamples,
    /// Within the settle time after the last apply; samples are discarded.
    Settling,
    /// The evaluation window did not fill within its time limit.
    EvalTimeout,
    /// The executor is in safe mode; the proposer waits.
    SafeMode,
    /// The last move was refused; it will be retried when allowed.
    WaitingForExecutor,
    /// A constraint is violated; optimisation is paused.
    ConstraintViolated,
}
