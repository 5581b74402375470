//! [`EngineEvent`]: the adaptive engine's decisions as the audit trail
//! records them, and the [`EvalPhase`] they refer to.

use crate::violation::Violation;
use crate::ParamVec;
use serde::{Deserialize, Serialize};

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
    /// A gradient was estimated and the iterate moved by a step (the live
    /// configuration moves only when the iterate is committed).
    Gradient {
        /// SPSA iteration.
        iteration: u64,
        /// Perturbation that produced it.
        perturbation_id: u64,
        /// Objective at `θ + c·Δ` (θ the iterate).
        y_plus: f64,
        /// Objective at `θ − c·Δ`.
        y_minus: f64,
        /// Step added to the iterate (fractions of the ranges), after
        /// clipping.
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
