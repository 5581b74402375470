//! [`EngineState`]: what the engine has learnt, exported for a restart and
//! restored from it.

use super::bandit::BanditState;
use super::stage::{Measured, Stage};
use super::{AdaptiveEngine, EngineError, MIN_GAIN_SCALE};
use crate::clock::Clock;
use crate::error::ConfigError;
use crate::spsa::SpsaCheckpoint;
use crate::ParamVec;
use serde::{Deserialize, Serialize};

/// Version of the [`EngineState`] layout; a restore refuses any other.
pub const ENGINE_STATE_VERSION: u32 = 1;

/// What the engine has learnt, for persistence and restart: the SPSA
/// iteration and RNG position, and the calibrated gains. Export with
/// [`AdaptiveEngine::export_state`], restore with
/// [`AdaptiveEngine::restore_state`]. An in-flight iteration is not kept:
/// the restored engine starts from a centre window. Nor are the running
/// averages the steps and probes are sized by (per-knob gains and mean
/// gradients, the curvature and slope along the probes): they start
/// afresh, SPSA's scheduled `c` sizing the probes until the first pair
/// around the centre measures the curvature again (a few evaluations):
/// what they described is the world before the restart, which may have
/// changed meanwhile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineState {
    /// Layout version ([`ENGINE_STATE_VERSION`]).
    pub version: u32,
    /// SPSA iteration, RNG stream position and gains.
    pub spsa: SpsaCheckpoint,
    /// `true` once calibration finished.
    pub calibrated: bool,
    /// Measured noise (standard deviation of a window's aggregate).
    pub noise_sd: f64,
    /// `a₀` as calibrated.
    pub calibrated_gain: f64,
    /// Step control's multiplier of `a_k`.
    pub gain_scale: f64,
    /// The last centre known to satisfy the constraints.
    pub last_feasible: ParamVec,
    /// What each choice knob's bandit has learnt (absent in states written
    /// before choice knobs existed, and not written without choice knobs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bandits: Vec<BanditState>,
}

impl<C: Clock> AdaptiveEngine<C> {
    /// What the engine has learnt (see [`EngineState`]).
    ///
    /// ```
    /// use hotpath::{AdaptiveEngine, AdaptiveEngineConfig, ManualClock, ParamVec, ENGINE_STATE_VERSION};
    ///
    /// let config = AdaptiveEngineConfig::bounded(vec![(0.0, 1.0)]);
    /// let initial = ParamVec::from_slice(&[0.5]);
    /// let engine = AdaptiveEngine::with_clock(config, initial, ManualClock::new(0))?;
    /// let state = engine.export_state();
    /// assert_eq!((state.version, state.calibrated), (ENGINE_STATE_VERSION, false));
    /// assert_eq!(&state.last_feasible[..], &[0.5]);
    /// # Ok::<(), hotpath::EngineError>(())
    /// ```
    pub fn export_state(&self) -> EngineState {
        let measured = self.stage.measured();
        EngineState {
            version: ENGINE_STATE_VERSION,
            spsa: self.spsa.checkpoint(),
            calibrated: self.stage.is_tuning(),
            noise_sd: measured.noise_sd,
            calibrated_gain: measured.gain,
            gain_scale: self.gain_scale,
            last_feasible: self.last_feasible.clone(),
            bandits: self.bandits.clone(),
        }
    }

    /// Resumes from an exported [`EngineState`]: the next perturbations are
    /// the ones the exporting engine would have drawn, with its gains. Any
    /// iteration in flight here is abandoned; the engine starts with a
    /// centre window (noise windows, if the state was not calibrated). On
    /// error nothing changes.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidState`] (as [`EngineError::Config`]) for a
    /// state of another version or number of parameters, or with
    /// non-finite or negative values; [`EngineError::Spsa`] for an SPSA
    /// checkpoint the optimiser refuses.
    ///
    /// ```
    /// use hotpath::{AdaptiveEngine, AdaptiveEngineConfig, ManualClock, ParamVec, TelemetryDigest};
    ///
    /// let config = AdaptiveEngineConfig::bounded(vec![(0.0, 1.0)]);
    /// let clock = ManualClock::new(0);
    /// let mut a = AdaptiveEngine::with_clock(config.clone(), ParamVec::from_slice(&[0.5]), clock.clone())?;
    /// for i in 0..40 {
    ///     clock.advance(100_000);
    ///     a.step(TelemetryDigest::new(100_000, 1.0 + 0.01 * (i % 3) as f64, 10))?;
    /// }
    /// let saved = a.export_state();
    /// let mut b = AdaptiveEngine::with_clock(config, ParamVec::from_slice(&[0.5]), ManualClock::new(0))?;
    /// b.restore_state(saved.clone())?;
    /// assert_eq!(b.export_state(), saved);
    ///
    /// let future = hotpath::EngineState { version: 99, ..saved };
    /// assert!(b.restore_state(future).is_err());
    /// # Ok::<(), hotpath::EngineError>(())
    /// ```
    pub fn restore_state(&mut self, state: EngineState) -> Result<(), EngineError> {
        let n = self.executor.space().len();
        let finite = [state.noise_sd, state.calibrated_gain, state.gain_scale];
        if state.version != ENGINE_STATE_VERSION
            || state.last_feasible.len() != n
            || !state.last_feasible.is_finite()
            || finite.iter().any(|v| !(v.is_finite() && *v >= 0.0))
        {
            return Err(ConfigError::InvalidState {
                reason: "engine state has another version, size or non-finite values",
            }
            .into());
        }
        let fresh = super::bandits_of(self.executor.space());
        let bandits = if state.bandits.is_empty() {
            fresh
        } else if state.bandits.len() == fresh.len()
            && state
                .bandits
                .iter()
                .zip(&fresh)
                .all(|(s, f)| s.index == f.index && s.fits(f.sums.len()))
        {
            state.bandits
        } else {
            return Err(ConfigError::InvalidState {
                reason: "engine state's choice bandits do not fit the parameter space",
            }
            .into());
        };
        self.spsa.restore(&state.spsa)?;
        let measured = Measured {
            noise_sd: state.noise_sd,
            gain: state.calibrated_gain,
        };
        self.stage = Stage::restored(state.calibrated, measured, n);
        self.gain_scale = state.gain_scale.clamp(MIN_GAIN_SCALE, 1.0);
        self.last_feasible = state.last_feasible;
        self.bandits = bandits;
        self.forget_sizing();
        self.restart_at_centre();
        Ok(())
    }
}
