//! [`SpsaCheckpoint`]: what [`Spsa::checkpoint`] saves and
//! [`Spsa::restore`] resumes from.

use super::config::{is_finite_non_negative, validate_stability_a};
use super::gains::validate_gains;
use super::{Spsa, SpsaConfigError, SpsaState};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use serde::{Deserialize, Serialize};

/// Everything needed to resume an optimiser after a restart: the iteration
/// count, the run-time gains and the RNG stream position.
///
/// A checkpoint taken mid-iteration records the RNG position from *before*
/// that iteration's `Δ` was drawn: the in-flight iteration (whose samples were
/// measured against a configuration the restarted process no longer has) is
/// dropped, and redone with the same `Δ` after [`Spsa::restore`].
/// Perturbation ids are never reused, so the redone iteration gets a new id.
/// The diagnostic counters are not part of a checkpoint.
///
/// ```
/// use hotpath::{Spsa, SpsaCheckpoint, SpsaConfig};
///
/// let spsa = Spsa::new(42, 3, 0.1, 0.05, SpsaConfig::default());
/// let json = serde_json::to_string(&spsa.checkpoint()).unwrap();
/// let back: SpsaCheckpoint = serde_json::from_str(&json).unwrap();
/// assert_eq!(back, spsa.checkpoint());
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpsaCheckpoint {
    /// The seed the RNG was created from.
    pub seed: u64,
    /// Dimension of the optimiser.
    pub num_params: usize,
    /// Completed iterations `k`.
    pub iteration: u64,
    /// Id the next perturbation will get.
    pub next_perturbation_id: u64,
    /// `ChaCha8` stream position in 32-bit words ([`ChaCha8Rng::get_word_pos`]).
    pub rng_word_pos: u128,
    /// Learning-rate gain `a₀`.
    pub learning_rate: f64,
    /// Perturbation gain `c₀`.
    pub perturbation_scale: f64,
    /// Stability constant `A`.
    pub stability_a: f64,
    /// Lower bound on `a_k` (see [`Spsa::set_gain_floors`]).
    #[serde(default)]
    pub learning_rate_floor: f64,
    /// Lower bound on `c_k` (see [`Spsa::set_gain_floors`]).
    #[serde(default)]
    pub perturbation_scale_floor: f64,
}

impl Spsa {
    /// Snapshot for [`Spsa::restore`]; see [`SpsaCheckpoint`] for how an
    /// in-flight iteration is handled.
    ///
    /// ```
    /// use hotpath::{Spsa, SpsaConfig};
    ///
    /// let spsa = Spsa::new(5, 2, 0.1, 0.1, SpsaConfig::default());
    /// let cp = spsa.checkpoint();
    /// assert_eq!((cp.seed, cp.iteration, cp.rng_word_pos), (5, 0, 0));
    /// ```
    pub fn checkpoint(&self) -> SpsaCheckpoint {
        let rng_word_pos = match self.state {
            SpsaState::Ready => self.rng.get_word_pos(),
            _ => self.in_flight_word_pos,
        };
        SpsaCheckpoint {
            seed: self.seed,
            num_params: self.num_params,
            iteration: self.iteration,
            next_perturbation_id: self.next_perturbation_id,
            rng_word_pos,
            learning_rate: self.learning_rate,
            perturbation_scale: self.perturbation_scale,
            stability_a: self.config.stability_a,
            learning_rate_floor: self.learning_rate_floor,
            perturbation_scale_floor: self.perturbation_scale_floor,
        }
    }

    /// Resumes from a checkpoint: reseeds and repositions the RNG, restores
    /// `k`, the gains and `A`, and returns to `Ready` (dropping any in-flight
    /// iteration). The next perturbations are those the checkpointed optimiser
    /// would have drawn. On error (dimension mismatch, invalid gain or `A`)
    /// nothing changes.
    ///
    /// # Errors
    ///
    /// [`SpsaConfigError::CheckpointMismatch`] if the dimensions differ;
    /// [`SpsaConfigError::InvalidGain`] or [`SpsaConfigError::InvalidStabilityA`] for a
    /// corrupt checkpoint.
    ///
    /// ```
    /// use hotpath::{Spsa, SpsaConfig};
    ///
    /// let mut a = Spsa::new(5, 4, 0.1, 0.1, SpsaConfig::default());
    /// a.generate_perturbation();
    /// a.abort_iteration();
    /// let mut b = Spsa::new(0, 4, 0.1, 0.1, SpsaConfig::default());
    /// b.restore(&a.checkpoint()).unwrap();
    /// assert_eq!(b.generate_perturbation(), a.generate_perturbation());
    /// ```
    pub fn restore(&mut self, checkpoint: &SpsaCheckpoint) -> Result<(), SpsaConfigError> {
        if checkpoint.num_params != self.num_params {
            return Err(SpsaConfigError::CheckpointMismatch {
                expected: self.num_params,
                found: checkpoint.num_params,
            });
        }
        validate_gains(checkpoint.learning_rate, checkpoint.perturbation_scale)?;
        validate_stability_a(checkpoint.stability_a)?;
        if !(is_finite_non_negative(checkpoint.learning_rate_floor)
            && is_finite_non_negative(checkpoint.perturbation_scale_floor))
        {
            return Err(SpsaConfigError::InvalidGain {
                name: "gain floor",
                value: checkpoint
                    .learning_rate_floor
                    .min(checkpoint.perturbation_scale_floor),
            });
        }
        self.abort_iteration();
        self.seed = checkpoint.seed;
        self.rng = ChaCha8Rng::seed_from_u64(checkpoint.seed);
        self.rng.set_word_pos(checkpoint.rng_word_pos);
        self.iteration = checkpoint.iteration;
        self.next_perturbation_id = checkpoint.next_perturbation_id;
        self.learning_rate = checkpoint.learning_rate;
        self.perturbation_scale = checkpoint.perturbation_scale;
        self.config.stability_a = checkpoint.stability_a;
        self.learning_rate_floor = checkpoint.learning_rate_floor;
        self.perturbation_scale_floor = checkpoint.perturbation_scale_floor;
        Ok(())
    }
}
