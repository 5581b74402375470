//! The engine's stages, each with its own data: measuring the noise,
//! measuring the gradient's scale, tuning. Together they are the one
//! encoding of calibration; the evaluation within an iteration ([`Phase`])
//! is kept apart (see there why).

use crate::audit::EvalPhase;
use crate::stats::RunningStats;
use crate::ParamVec;
use serde::{Deserialize, Serialize};

/// What an engine is doing, as a status page or a binding shows it
/// ([`AdaptiveEngine::stage`](super::AdaptiveEngine::stage)).
///
/// ```
/// use hotpath::EngineStage;
///
/// assert_eq!(EngineStage::Calibrating.name(), "calibrating");
/// assert_eq!(serde_json::to_string(&EngineStage::Tuning).unwrap(), "\"tuning\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineStage {
    /// Measuring its noise and its gradient's scale, to size its gains
    /// (only with [`calibration`](super::AdaptiveEngineConfig::calibration)).
    Calibrating,
    /// Tuning with known gains.
    Tuning,
    /// Failed closed at construction: it proposes nothing
    /// ([`AdaptiveEngine::misconfiguration`](super::AdaptiveEngine::misconfiguration)).
    Misconfigured,
}

impl EngineStage {
    /// The stage's name, as it is serialised.
    ///
    /// ```
    /// assert_eq!(hotpath::EngineStage::Misconfigured.name(), "misconfigured");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Self::Calibrating => "calibrating",
            Self::Tuning => "tuning",
            Self::Misconfigured => "misconfigured",
        }
    }
}

/// What calibration has measured: carried from stage to stage, and
/// exported in [`EngineState`](super::EngineState).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Measured {
    /// `σ`, the standard deviation of one window's aggregate (0 until
    /// measured).
    pub(super) noise_sd: f64,
    /// `a₀` as calibrated, from which drift restarts the schedule (0 until
    /// calibrated).
    pub(super) gain: f64,
}

/// The gradient pairs measured so far to size `a₀`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Gains {
    pub(super) measured: Measured,
    /// Sum of the pairs' gradient estimates; their mean is the first step.
    pub(super) sum: ParamVec,
    /// Sum over the pairs of `mean |ĝᵢ|`.
    pub(super) magnitude: f64,
    pub(super) pairs: u32,
}

impl Gains {
    fn new(num_params: usize, measured: Measured) -> Self {
        Self {
            measured,
            sum: ParamVec::zeros(num_params),
            magnitude: 0.0,
            pairs: 0,
        }
    }

    /// Adds one pair's gradient estimate; returns the number of pairs.
    pub(super) fn add(&mut self, gradient: &[f64]) -> u32 {
        for (sum, g) in self.sum.iter_mut().zip(gradient) {
            *sum += g;
        }
        self.magnitude +=
            gradient.iter().map(|g| g.abs()).sum::<f64>() / gradient.len().max(1) as f64;
        self.pairs += 1;
        self.pairs
    }
}

/// Where the engine is in learning its gains. Without calibration it is
/// tuning from the start, with the fixed gains.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Stage {
    /// Centre windows at the start measure `σ`: `done` of `noise_windows`
    /// so far. `next` is the gain stage they lead into: the gradient pairs
    /// it already holds (see [`restart`](Stage::restart)) and the noise
    /// measured before.
    Noise {
        done: u32,
        windows: RunningStats,
        next: Gains,
    },
    /// Probe pairs measure the gradient's scale, to size `a₀`.
    Gains(Gains),
    /// The gains are known: every gradient is a step.
    Tuning(Measured),
}

impl Stage {
    /// The first stage: noise windows with calibration, else tuning.
    pub(super) fn first(calibrating: bool, num_params: usize) -> Self {
        if calibrating {
            Self::noise(Gains::new(num_params, Measured::default()))
        } else {
            Self::Tuning(Measured::default())
        }
    }

    /// The stage a restored [`EngineState`](super::EngineState) resumes:
    /// tuning if it was calibrated, else noise windows from the start.
    pub(super) fn restored(calibrated: bool, measured: Measured, num_params: usize) -> Self {
        if calibrated {
            Self::Tuning(measured)
        } else {
            Self::noise(Gains::new(num_params, measured))
        }
    }

    fn noise(next: Gains) -> Self {
        Self::Noise {
            done: 0,
            windows: RunningStats::default(),
            next,
        }
    }

    /// What calibration has measured so far.
    pub(super) fn measured(&self) -> Measured {
        match self {
            Self::Noise { next, .. } => next.measured,
            Self::Gains(gains) => gains.measured,
            Self::Tuning(measured) => *measured,
        }
    }

    /// `true` once the gains are known.
    pub(super) fn is_tuning(&self) -> bool {
        matches!(self, Self::Tuning(_))
    }

    /// The centre moved behind the engine's back (a rollback, a foreign
    /// proposal): `σ` is measured again at the new centre from the first
    /// window. Gradient pairs already measured are kept for `a₀`; tuning
    /// stays tuning.
    pub(super) fn restart(&mut self) {
        match self {
            Self::Noise { done, windows, .. } => {
                *done = 0;
                *windows = RunningStats::default();
            }
            Self::Gains(gains) => *self = Self::noise(std::mem::take(gains)),
            Self::Tuning(_) => {}
        }
    }

    /// The noise windows are done: `σ` is their standard deviation, and the
    /// gain stage begins. Returns their mean, the centre's objective.
    pub(super) fn noise_measured(&mut self) -> Option<f64> {
        let Self::Noise { windows, next, .. } = self else {
            return None;
        };
        let mean = windows.mean();
        let mut gains = std::mem::take(next);
        gains.measured.noise_sd = windows.sd();
        *self = Self::Gains(gains);
        Some(mean)
    }

    /// A plan moved the engine during the noise windows (the only such plan
    /// is a constraint's detour): the windows end there, unmeasured, and
    /// the gain stage goes on with the noise measured before (0 at the
    /// start, so step control then allows only rounding). This is how the
    /// engine has always behaved; measuring the remaining windows after the
    /// detour would be better, and would change its results.
    pub(super) fn end_noise(&mut self) {
        if let Self::Noise { next, .. } = self {
            *self = Self::Gains(std::mem::take(next));
        }
    }

    /// The audit trail's name for a window of `phase` in this stage.
    pub(super) fn eval_phase(&self, phase: Phase) -> EvalPhase {
        match (self, phase) {
            (Self::Noise { .. }, _) => EvalPhase::Calibrating,
            (_, Phase::Centre) => EvalPhase::Centre,
            (_, Phase::Plus) => EvalPhase::Plus,
            (_, Phase::Minus) => EvalPhase::Minus,
        }
    }

    /// A short name, for `Debug`.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Self::Noise { .. } => "noise",
            Self::Gains(_) => "gains",
            Self::Tuning(_) => "tuning",
        }
    }
}

/// The evaluation within an iteration: what the open window measures.
///
/// Kept apart from [`Stage`] on purpose: measuring the gains and tuning run
/// the same iterations (centre, `θ + cΔ`, `θ − cΔ`) and differ only in what
/// a finished gradient is used for, so a phase inside each stage would
/// double every match on it. In the noise stage the windows are centre
/// windows (`Centre`); `Plus` and `Minus` are entered only by completing a
/// plan, which ends that stage ([`Stage::end_noise`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Phase {
    /// At the committed centre `θ`.
    Centre,
    /// At `θ + cΔ`.
    Plus,
    /// At `θ − cΔ`.
    Minus,
}
