//! [`Spsa`]: the online SPSA (Simultaneous Perturbation Stochastic
//! Approximation) optimiser core. Pure: no clock, no I/O, no configuration
//! writes. It proposes; the safety executor decides and applies.

use crate::telemetry::{Aggregation, AggregationError, DigestError, TelemetryDigest};
use crate::ParamVec;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Tuning of the SPSA evaluation windows and gain schedules.
///
/// The time fields are not used by [`Spsa`] itself (it has no clock); they
/// travel with it for the engine that drives it.
///
/// ```
/// use hotpath::SpsaConfig;
///
/// let config = SpsaConfig { eval_window_digests: 8, ..SpsaConfig::default() };
/// assert!(config.validate().is_ok());
/// assert_eq!(config.alpha, 0.602);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpsaConfig {
    /// Minimum digests to collect per perturbation. Must be `>= 1`.
    pub eval_window_digests: usize,
    /// Maximum time to wait for digests, in microseconds. Must be `>= 1`.
    pub eval_window_us: u64,
    /// Settle time after an apply before digests count, in microseconds. Must
    /// be shorter than `eval_window_us`, or no digest could ever count.
    pub settle_time_us: u64,
    /// Learning-rate decay exponent `α` in `a_k = a₀ / (k + 1 + A)^α`.
    /// Finite and `>= 0`.
    pub alpha: f64,
    /// Perturbation decay exponent `γ` in `c_k = c₀ / (k + 1)^γ`. Finite and `>= 0`.
    pub gamma: f64,
    /// Stability constant `A`. Finite and `>= 0`.
    pub stability_a: f64,
    /// How each evaluation window is reduced to one objective value. Optional
    /// in serialised form (defaults to a 10 % trimmed mean).
    #[serde(default)]
    pub aggregation: Aggregation,
}

impl Default for SpsaConfig {
    /// 5 digests, 500 ms window, 10 ms settle, `α = 0.602`, `γ = 0.101`,
    /// `A = 10`, 10 % trimmed mean.
    ///
    /// ```
    /// use hotpath::SpsaConfig;
    ///
    /// let c = SpsaConfig::default();
    /// assert_eq!((c.eval_window_digests, c.eval_window_us, c.settle_time_us), (5, 500_000, 10_000));
    /// assert_eq!((c.alpha, c.gamma, c.stability_a), (0.602, 0.101, 10.0));
    /// ```
    fn default() -> Self {
        Self {
            eval_window_digests: 5,
            eval_window_us: 500_000,
            settle_time_us: 10_000,
            alpha: 0.602,
            gamma: 0.101,
            stability_a: 10.0,
            aggregation: Aggregation::default(),
        }
    }
}

impl SpsaConfig {
    /// Checks every field; reports the first invalid one.
    ///
    /// # Errors
    ///
    /// A [`SpsaConfigError`] naming the first invalid field, in declaration order.
    ///
    /// ```
    /// use hotpath::{SpsaConfig, SpsaConfigError};
    ///
    /// let bad = SpsaConfig { alpha: f64::NAN, ..SpsaConfig::default() };
    /// assert!(matches!(bad.validate(), Err(SpsaConfigError::InvalidExponent { name: "alpha", .. })));
    /// ```
    pub fn validate(&self) -> Result<(), SpsaConfigError> {
        if self.eval_window_digests == 0 {
            return Err(SpsaConfigError::ZeroEvalWindowDigests);
        }
        if self.eval_window_us == 0 {
            return Err(SpsaConfigError::ZeroEvalWindowUs);
        }
        if self.settle_time_us >= self.eval_window_us {
            return Err(SpsaConfigError::SettleNotShorterThanWindow {
                settle_time_us: self.settle_time_us,
                eval_window_us: self.eval_window_us,
            });
        }
        for (name, value) in [("alpha", self.alpha), ("gamma", self.gamma)] {
            if !is_finite_non_negative(value) {
                return Err(SpsaConfigError::InvalidExponent { name, value });
            }
        }
        validate_stability_a(self.stability_a)?;
        self.aggregation.validate()?;
        Ok(())
    }

    /// The nearest valid configuration, used by [`Spsa::new`]:
    ///
    /// | field | invalid when | replaced by |
    /// |---|---|---|
    /// | `eval_window_digests` | `0` | `1` |
    /// | `eval_window_us` | `0` | default (`500_000`) |
    /// | `settle_time_us` | `>= eval_window_us` | `eval_window_us − 1` |
    /// | `alpha`, `gamma`, `stability_a` | NaN, ±∞ or negative | default |
    /// | `aggregation` | trim outside `[0, 0.5)` | [`Aggregation::sanitized`] |
    ///
    /// A valid configuration is returned unchanged.
    ///
    /// ```
    /// use hotpath::SpsaConfig;
    ///
    /// let bad = SpsaConfig { eval_window_digests: 0, gamma: -1.0, ..SpsaConfig::default() };
    /// let fixed = bad.sanitized();
    /// assert_eq!((fixed.eval_window_digests, fixed.gamma), (1, 0.101));
    /// assert!(fixed.validate().is_ok());
    /// ```
    #[must_use]
    pub fn sanitized(self) -> Self {
        let default = Self::default();
        let real = |value: f64, fallback: f64| {
            if is_finite_non_negative(value) {
                value
            } else {
                fallback
            }
        };
        let eval_window_us = if self.eval_window_us == 0 {
            default.eval_window_us
        } else {
            self.eval_window_us
        };
        Self {
            eval_window_digests: self.eval_window_digests.max(1),
            eval_window_us,
            settle_time_us: self.settle_time_us.min(eval_window_us - 1),
            alpha: real(self.alpha, default.alpha),
            gamma: real(self.gamma, default.gamma),
            stability_a: real(self.stability_a, default.stability_a),
            aggregation: self.aggregation.sanitized(),
        }
    }
}

/// Why a configuration, gain or checkpoint was rejected.
///
/// ```
/// use hotpath::{Spsa, SpsaConfig, SpsaConfigError};
///
/// let err = Spsa::try_new(1, 2, -0.1, 0.1, SpsaConfig::default()).unwrap_err();
/// assert!(matches!(err, SpsaConfigError::InvalidGain { name: "learning_rate", .. }));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Error)]
pub enum SpsaConfigError {
    /// `eval_window_digests` is zero.
    #[error("eval_window_digests must be at least 1")]
    ZeroEvalWindowDigests,
    /// `eval_window_us` is zero.
    #[error("eval_window_us must be at least 1")]
    ZeroEvalWindowUs,
    /// The settle time swallows the whole evaluation window.
    #[error(
        "settle_time_us ({settle_time_us}) must be shorter than eval_window_us ({eval_window_us})"
    )]
    SettleNotShorterThanWindow {
        /// The configured settle time.
        settle_time_us: u64,
        /// The configured window.
        eval_window_us: u64,
    },
    /// `alpha` or `gamma` is NaN, infinite or negative.
    #[error("{name} must be finite and >= 0, got {value}")]
    InvalidExponent {
        /// `"alpha"` or `"gamma"`.
        name: &'static str,
        /// The rejected value.
        value: f64,
    },
    /// The stability constant `A` is NaN, infinite or negative.
    #[error("stability_a must be finite and >= 0, got {0}")]
    InvalidStabilityA(f64),
    /// A gain `a₀` or `c₀` is NaN, infinite, zero or negative.
    #[error("{name} must be finite and > 0, got {value}")]
    InvalidGain {
        /// `"learning_rate"` or `"perturbation_scale"`.
        name: &'static str,
        /// The rejected value.
        value: f64,
    },
    /// The optimiser would tune no parameters.
    #[error("num_params must be at least 1")]
    NoParameters,
    /// The window aggregation is invalid.
    #[error("invalid aggregation: {0}")]
    Aggregation(#[from] AggregationError),
    /// A checkpoint was taken from an optimiser with a different dimension.
    #[error("checkpoint is for {found} parameters, this optimiser has {expected}")]
    CheckpointMismatch {
        /// This optimiser's `num_params`.
        expected: usize,
        /// The checkpoint's `num_params`.
        found: usize,
    },
}

/// Where the optimiser is in its iteration.
///
/// `accumulated` holds the window's `(objective, weight)` samples: the API
/// reference's `Vec<f64>` plus the sample count of each digest, which
/// [`Aggregation`] uses as its weight ([`Spsa::record_objective`] records weight 1).
///
/// ```
/// use hotpath::{Spsa, SpsaConfig, SpsaState};
///
/// let mut spsa = Spsa::new(7, 2, 0.1, 0.05, SpsaConfig::default());
/// assert_eq!(spsa.state(), &SpsaState::Ready);
/// spsa.generate_perturbation();
/// assert!(matches!(spsa.state(), SpsaState::WaitingPlus { perturbation_id: 0, .. }));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum SpsaState {
    /// Ready to start a new iteration.
    Ready,
    /// `+c_k·Δ` applied; collecting objective samples.
    WaitingPlus {
        /// Unique, increasing id of this perturbation.
        perturbation_id: u64,
        /// The ±1 direction `Δ`.
        delta: ParamVec,
        /// The window's `(objective, weight)` samples.
        accumulated: Vec<(f64, u64)>,
    },
    /// `−c_k·Δ` applied; collecting objective samples.
    WaitingMinus {
        /// Unique, increasing id of this perturbation.
        perturbation_id: u64,
        /// The ±1 direction `Δ`.
        delta: ParamVec,
        /// Aggregated objective of the `+` window.
        y_plus: f64,
        /// The window's `(objective, weight)` samples.
        accumulated: Vec<(f64, u64)>,
    },
}

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

/// The SPSA optimiser.
///
/// **Model.** To minimise an objective `y(θ)` over `p` parameters, iteration
/// `k` draws a random direction `Δ ∈ {−1, +1}ᵖ`, measures `y₊ = y(θ + c_k·Δ)`
/// and `y₋ = y(θ − c_k·Δ)`, and estimates the whole gradient from those two
/// measurements, `ĝᵢ = (y₊ − y₋) / (2·c_k·Δᵢ)`. The proposed update is
/// `−a_k·ĝ`. The gains decay as `a_k = a₀ / (k + 1 + A)^α` and
/// `c_k = c₀ / (k + 1)^γ` (Spall's defaults `α = 0.602`, `γ = 0.101`).
///
/// **State machine.** `Ready` —[`generate_perturbation`]→ `WaitingPlus` (the
/// caller applies `+c_k·Δ` and feeds objective samples) —[`complete_eval_window`]→
/// `WaitingMinus` (the caller applies `−c_k·Δ` and feeds samples)
/// —[`complete_eval_window`]→ `Ready`, returning `(ĝ, −a_k·ĝ)` and advancing
/// `k`. Each window is reduced to `y₊` or `y₋` by the configured
/// [`Aggregation`] (default: 10 % weighted trimmed mean).
///
/// **What is clamped rather than trusted.** Non-finite objective samples and
/// zero-weight samples are dropped and counted ([`Spsa::ignored_samples`]). An
/// update whose arithmetic overflows is replaced by zero and counted
/// ([`Spsa::degenerate_updates`]). [`Spsa::new`] never panics: invalid
/// configuration fields are replaced as in [`SpsaConfig::sanitized`], and an
/// invalid gain by `0`, which is inert rather than unsafe: `a₀ = 0` gives zero
/// updates, `c₀ = 0` zero perturbations and (as they carry no information)
/// zero updates. [`Spsa::try_new`] rejects such inputs instead.
///
/// **Allocation.** The window buffer is allocated once, with capacity
/// `eval_window_digests`, and moved between states (and parked in the
/// optimiser while `Ready`), so steady-state iterations do not allocate for up
/// to [`INLINE_PARAMS`](crate::param::INLINE_PARAMS) parameters. A window that
/// outgrows the buffer grows it once; the larger buffer is kept.
///
/// [`generate_perturbation`]: Spsa::generate_perturbation
/// [`complete_eval_window`]: Spsa::complete_eval_window
///
/// **Randomness.** `Δ` comes from `ChaCha8Rng::seed_from_u64(seed)`. Each
/// perturbation draws `⌈p / 64⌉` words with `next_u64`; component `i` is bit
/// `i % 64` (least significant first) of word `i / 64`, with bit `1 → +1.0`
/// and `0 → −1.0`; unused high bits of the last word are discarded. The same
/// seed therefore yields the same `Δ` sequence on every platform.
///
/// ```
/// use hotpath::{Spsa, SpsaConfig};
///
/// let config = SpsaConfig { eval_window_digests: 1, ..SpsaConfig::default() };
/// let mut spsa = Spsa::new(42, 2, 0.1, 0.05, config);
/// let objective = |theta: &[f64]| theta.iter().map(|t| t * t).sum::<f64>();
/// let mut theta = [1.0, -2.0];
/// for _ in 0..200 {
///     let delta = spsa.generate_perturbation();
///     let c = spsa.perturbation_scale(spsa.iteration());
///     let plus: Vec<f64> = theta.iter().zip(&*delta).map(|(t, d)| t + c * d).collect();
///     spsa.record_objective(objective(&plus));
///     spsa.complete_eval_window();
///     let minus: Vec<f64> = theta.iter().zip(&*delta).map(|(t, d)| t - c * d).collect();
///     spsa.record_objective(objective(&minus));
///     if let Some((_gradient, update)) = spsa.complete_eval_window() {
///         theta.iter_mut().zip(&*update).for_each(|(t, u)| *t += u);
///     }
/// }
/// assert!(objective(&theta) < 0.01 * objective(&[1.0, -2.0]));
/// ```
#[derive(Clone, Debug)]
pub struct Spsa {
    config: SpsaConfig,
    num_params: usize,
    seed: u64,
    rng: ChaCha8Rng,
    learning_rate: f64,
    perturbation_scale: f64,
    learning_rate_floor: f64,
    perturbation_scale_floor: f64,
    iteration: u64,
    next_perturbation_id: u64,
    state: SpsaState,
    /// The window buffer while `Ready`; moved into the state otherwise.
    spare: Vec<(f64, u64)>,
    /// `c_k` the in-flight perturbation was started with.
    in_flight_scale: f64,
    /// `y₋` of the last completed iteration.
    last_y_minus: Option<f64>,
    /// RNG position before the in-flight `Δ` was drawn (for checkpoints).
    in_flight_word_pos: u128,
    ignored_samples: u64,
    degenerate_updates: u64,
}

impl Spsa {
    /// A new optimiser in `Ready` at iteration 0. Never panics: the
    /// configuration is [sanitised](SpsaConfig::sanitized), and a gain that is
    /// NaN, infinite, zero or negative is replaced by `0.0`, which is inert
    /// rather than unsafe (`a₀ = 0`: zero updates; `c₀ = 0`: zero
    /// perturbations and zero updates). `num_params == 0` gives an optimiser of
    /// empty vectors.
    ///
    /// ```
    /// use hotpath::{Spsa, SpsaConfig};
    ///
    /// let spsa = Spsa::new(42, 4, 0.1, 0.05, SpsaConfig::default());
    /// assert_eq!((spsa.num_params(), spsa.iteration()), (4, 0));
    ///
    /// let inert = Spsa::new(42, 4, f64::NAN, 0.05, SpsaConfig::default());
    /// assert_eq!(inert.gains(), (0.0, 0.05));
    /// ```
    pub fn new(
        seed: u64,
        num_params: usize,
        learning_rate: f64,
        perturbation_scale: f64,
        config: SpsaConfig,
    ) -> Self {
        let gain = |g: f64| if is_valid_gain(g) { g } else { 0.0 };
        let config = config.sanitized();
        Self {
            spare: Vec::with_capacity(config.eval_window_digests),
            config,
            num_params,
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed),
            learning_rate: gain(learning_rate),
            perturbation_scale: gain(perturbation_scale),
            learning_rate_floor: 0.0,
            perturbation_scale_floor: 0.0,
            iteration: 0,
            next_perturbation_id: 0,
            state: SpsaState::Ready,
            in_flight_scale: 0.0,
            last_y_minus: None,
            in_flight_word_pos: 0,
            ignored_samples: 0,
            degenerate_updates: 0,
        }
    }

    /// Like [`Spsa::new`], but rejects an invalid configuration, gain or
    /// `num_params == 0` instead of clamping.
    ///
    /// # Errors
    ///
    /// Any error of [`SpsaConfig::validate`];
    /// [`SpsaConfigError::InvalidGain`] for a gain that is not finite and `> 0`;
    /// [`SpsaConfigError::NoParameters`] for `num_params == 0`.
    ///
    /// ```
    /// use hotpath::{Spsa, SpsaConfig, SpsaConfigError};
    ///
    /// assert!(Spsa::try_new(1, 2, 0.1, 0.05, SpsaConfig::default()).is_ok());
    /// assert_eq!(
    ///     Spsa::try_new(1, 0, 0.1, 0.05, SpsaConfig::default()).unwrap_err(),
    ///     SpsaConfigError::NoParameters
    /// );
    /// ```
    pub fn try_new(
        seed: u64,
        num_params: usize,
        learning_rate: f64,
        perturbation_scale: f64,
        config: SpsaConfig,
    ) -> Result<Self, SpsaConfigError> {
        config.validate()?;
        validate_gains(learning_rate, perturbation_scale)?;
        if num_params == 0 {
            return Err(SpsaConfigError::NoParameters);
        }
        Ok(Self::new(
            seed,
            num_params,
            learning_rate,
            perturbation_scale,
            config,
        ))
    }

    /// Starts an iteration: draws a ±1 vector `Δ` (see the type-level docs for
    /// the exact bit layout), moves `Ready → WaitingPlus` and returns `Δ`. The
    /// caller applies `+c_k·Δ` with `c_k` from [`Spsa::in_flight_scale`].
    ///
    /// Outside `Ready` it returns the in-flight `Δ` unchanged and changes
    /// nothing (no RNG draw, no samples dropped), so a retried call is
    /// harmless. Use [`Spsa::abort_iteration`] to give up on an iteration.
    ///
    /// ```
    /// use hotpath::{Spsa, SpsaConfig};
    ///
    /// let mut spsa = Spsa::new(3, 5, 0.1, 0.05, SpsaConfig::default());
    /// let delta = spsa.generate_perturbation();
    /// assert!(delta.iter().all(|d| *d == 1.0 || *d == -1.0));
    /// assert_eq!(spsa.generate_perturbation(), delta);
    /// ```
    pub fn generate_perturbation(&mut self) -> ParamVec {
        match &self.state {
            SpsaState::WaitingPlus { delta, .. } | SpsaState::WaitingMinus { delta, .. } => {
                delta.clone()
            }
            SpsaState::Ready => {
                self.in_flight_word_pos = self.rng.get_word_pos();
                self.in_flight_scale = self.perturbation_scale(self.iteration);
                let delta = self.draw_delta();
                let perturbation_id = self.next_perturbation_id;
                self.next_perturbation_id = self.next_perturbation_id.wrapping_add(1);
                self.state = SpsaState::WaitingPlus {
                    perturbation_id,
                    delta: delta.clone(),
                    accumulated: std::mem::take(&mut self.spare),
                };
                delta
            }
        }
    }

    /// Records one objective sample (lower is better) with weight 1. Same as
    /// [`Spsa::record_weighted`]`(value, 1)`.
    ///
    /// ```
    /// use hotpath::{Spsa, SpsaConfig};
    ///
    /// let mut spsa = Spsa::new(3, 2, 0.1, 0.05, SpsaConfig::default());
    /// spsa.record_objective(1.0); // Ready: ignored
    /// assert_eq!(spsa.ignored_samples(), 1);
    /// spsa.generate_perturbation();
    /// spsa.record_objective(1.0);
    /// spsa.record_objective(f64::NAN); // never stored
    /// assert_eq!(spsa.ignored_samples(), 2);
    /// ```
    pub fn record_objective(&mut self, value: f64) {
        self.record_weighted(value, 1);
    }

    /// Records one objective sample with a weight (normally the digest's
    /// `sample_count`). Samples are only stored while waiting on a window; in
    /// `Ready`, or with a NaN/±∞ value, or with weight 0, the sample is
    /// dropped and counted in [`Spsa::ignored_samples`].
    ///
    /// ```
    /// use hotpath::{Spsa, SpsaConfig};
    ///
    /// let mut spsa = Spsa::new(3, 2, 0.1, 0.05, SpsaConfig::default());
    /// spsa.generate_perturbation();
    /// spsa.record_weighted(2.0, 100);
    /// spsa.record_weighted(9.0, 0);
    /// assert_eq!(spsa.ignored_samples(), 1);
    /// ```
    pub fn record_weighted(&mut self, value: f64, weight: u64) {
        match &mut self.state {
            SpsaState::WaitingPlus { accumulated, .. }
            | SpsaState::WaitingMinus { accumulated, .. }
                if value.is_finite() && weight > 0 =>
            {
                accumulated.push((value, weight));
            }
            _ => self.ignored_samples = self.ignored_samples.saturating_add(1),
        }
    }

    /// Validates a digest and records its objective weighted by its sample
    /// count. An invalid digest is counted as ignored and its error returned;
    /// a valid one is subject to the same rules as [`Spsa::record_weighted`].
    ///
    /// # Errors
    ///
    /// The [`DigestError`] from [`TelemetryDigest::validate`]; the digest is not recorded.
    ///
    /// ```
    /// use hotpath::{Spsa, SpsaConfig};
    /// use hotpath::TelemetryDigest;
    ///
    /// let mut spsa = Spsa::new(3, 2, 0.1, 0.05, SpsaConfig::default());
    /// spsa.generate_perturbation();
    /// assert!(spsa.record_digest(&TelemetryDigest::new(1_000, 0.5, 40)).is_ok());
    /// assert!(spsa.record_digest(&TelemetryDigest::new(1_000, 0.5, 0)).is_err());
    /// assert_eq!(spsa.ignored_samples(), 1);
    /// ```
    pub fn record_digest(&mut self, digest: &TelemetryDigest) -> Result<(), DigestError> {
        if let Err(e) = digest.validate() {
            self.ignored_samples = self.ignored_samples.saturating_add(1);
            return Err(e);
        }
        self.record_weighted(digest.objective_value, digest.sample_count);
        Ok(())
    }

    /// `true` once the current window holds at least `eval_window_digests`
    /// samples; always `false` in `Ready`.
    ///
    /// ```
    /// use hotpath::{Spsa, SpsaConfig};
    ///
    /// let config = SpsaConfig { eval_window_digests: 2, ..SpsaConfig::default() };
    /// let mut spsa = Spsa::new(3, 2, 0.1, 0.05, config);
    /// spsa.generate_perturbation();
    /// spsa.record_objective(1.0);
    /// assert!(!spsa.has_enough_samples());
    /// spsa.record_objective(1.1);
    /// assert!(spsa.has_enough_samples());
    /// ```
    pub fn has_enough_samples(&self) -> bool {
        self.window_len() >= self.config.eval_window_digests
    }

    /// Closes the current evaluation window.
    ///
    /// * `WaitingPlus`: `y₊` = aggregate of the window, moves to
    ///   `WaitingMinus`, returns `None`.
    /// * `WaitingMinus`: `y₋` = aggregate, returns `Some((ĝ, −a_k·ĝ))` with
    ///   `ĝᵢ = (y₊ − y₋) / (2·c_k·Δᵢ)`, increments `k`, moves to `Ready`.
    ///   `c_k` is the scale the perturbation was started with; `a_k` uses the
    ///   current gain. If the arithmetic overflows (or `c_k` is 0), `ĝ` and the
    ///   update are all zeros and [`Spsa::degenerate_updates`] is incremented.
    /// * `Ready`, or an empty window: returns `None` and changes nothing. The
    ///   caller may close a window early (fewer than `eval_window_digests`
    ///   samples, e.g. on timeout) but not an empty one; to give up, call
    ///   [`Spsa::abort_iteration`].
    ///
    /// ```
    /// use hotpath::{Spsa, SpsaConfig, SpsaState};
    ///
    /// let mut spsa = Spsa::new(9, 1, 0.1, 0.5, SpsaConfig::default());
    /// let delta = spsa.generate_perturbation();
    /// spsa.record_objective(3.0);
    /// assert_eq!(spsa.complete_eval_window(), None);
    /// assert_eq!(spsa.y_plus(), Some(3.0));
    /// spsa.record_objective(1.0);
    /// let (gradient, update) = spsa.complete_eval_window().unwrap();
    /// // (3 − 1) / (2 · 0.5 · Δ₀) = 2·Δ₀, since Δ₀ = ±1
    /// assert_eq!(gradient[0], 2.0 * delta[0]);
    /// assert_eq!(update[0], -spsa.learning_rate(0) * gradient[0]);
    /// assert_eq!((spsa.state(), spsa.iteration()), (&SpsaState::Ready, 1));
    /// ```
    pub fn complete_eval_window(&mut self) -> Option<(ParamVec, ParamVec)> {
        let aggregation = self.config.aggregation;
        match std::mem::replace(&mut self.state, SpsaState::Ready) {
            SpsaState::Ready => None,
            SpsaState::WaitingPlus {
                perturbation_id,
                delta,
                mut accumulated,
            } => {
                let y_plus = aggregation.aggregate(&mut accumulated);
                self.state = match y_plus {
                    Some(y_plus) => {
                        accumulated.clear();
                        SpsaState::WaitingMinus {
                            perturbation_id,
                            delta,
                            y_plus,
                            accumulated,
                        }
                    }
                    None => SpsaState::WaitingPlus {
                        perturbation_id,
                        delta,
                        accumulated,
                    },
                };
                None
            }
            SpsaState::WaitingMinus {
                perturbation_id,
                delta,
                y_plus,
                mut accumulated,
            } => match aggregation.aggregate(&mut accumulated) {
                Some(y_minus) => {
                    accumulated.clear();
                    self.spare = accumulated;
                    self.last_y_minus = Some(y_minus);
                    let result = self.gradient_step(&delta, y_plus, y_minus);
                    self.iteration = self.iteration.saturating_add(1);
                    Some(result)
                }
                None => {
                    self.state = SpsaState::WaitingMinus {
                        perturbation_id,
                        delta,
                        y_plus,
                        accumulated,
                    };
                    None
                }
            },
        }
    }

    /// Abandons the in-flight iteration (e.g. the executor refused to apply
    /// the perturbation, or no digest arrived in time): drops its samples and
    /// returns to `Ready` without advancing `k`. The next
    /// [`Spsa::generate_perturbation`] draws a fresh `Δ`. Returns `false` if
    /// there was nothing to abort.
    ///
    /// ```
    /// use hotpath::{Spsa, SpsaConfig, SpsaState};
    ///
    /// let mut spsa = Spsa::new(3, 2, 0.1, 0.05, SpsaConfig::default());
    /// spsa.generate_perturbation();
    /// assert!(spsa.abort_iteration());
    /// assert_eq!((spsa.state(), spsa.iteration()), (&SpsaState::Ready, 0));
    /// assert!(!spsa.abort_iteration());
    /// ```
    pub fn abort_iteration(&mut self) -> bool {
        match std::mem::replace(&mut self.state, SpsaState::Ready) {
            SpsaState::Ready => false,
            SpsaState::WaitingPlus {
                mut accumulated, ..
            }
            | SpsaState::WaitingMinus {
                mut accumulated, ..
            } => {
                accumulated.clear();
                self.spare = accumulated;
                true
            }
        }
    }

    /// Learning rate `a_k = max(a₀ / (k + 1 + A)^α, floor)`; the floor is 0
    /// unless set by [`Spsa::set_gain_floors`].
    ///
    /// ```
    /// use hotpath::{Spsa, SpsaConfig};
    ///
    /// let config = SpsaConfig { alpha: 1.0, stability_a: 0.0, ..SpsaConfig::default() };
    /// let spsa = Spsa::new(0, 1, 1.5, 0.1, config);
    /// assert_eq!(spsa.learning_rate(2), 0.5); // 1.5 / 3
    /// ```
    pub fn learning_rate(&self, k: u64) -> f64 {
        let base = k as f64 + 1.0 + self.config.stability_a;
        (self.learning_rate / base.powf(self.config.alpha)).max(self.learning_rate_floor)
    }

    /// Perturbation scale `c_k = max(c₀ / (k + 1)^γ, floor)`; the floor is 0
    /// unless set by [`Spsa::set_gain_floors`].
    ///
    /// ```
    /// use hotpath::{Spsa, SpsaConfig};
    ///
    /// let config = SpsaConfig { gamma: 1.0, ..SpsaConfig::default() };
    /// let spsa = Spsa::new(0, 1, 0.1, 0.4, config);
    /// assert_eq!(spsa.perturbation_scale(3), 0.1); // 0.4 / 4
    /// ```
    pub fn perturbation_scale(&self, k: u64) -> f64 {
        (self.perturbation_scale / (k as f64 + 1.0).powf(self.config.gamma))
            .max(self.perturbation_scale_floor)
    }

    /// Replaces the gains `a₀` and `c₀` (e.g. after calibrating them with
    /// Spall's rules from measured noise and a first gradient). Both must be
    /// finite and `> 0`; on error nothing changes. A new `c₀` applies from the
    /// next perturbation (the in-flight one finishes with the `c_k` it was
    /// applied with); a new `a₀` applies to the next update.
    ///
    /// # Errors
    ///
    /// [`SpsaConfigError::InvalidGain`] for the first gain that is not finite and `> 0`.
    ///
    /// ```
    /// use hotpath::{Spsa, SpsaConfig};
    ///
    /// let mut spsa = Spsa::new(0, 1, 0.1, 0.1, SpsaConfig::default());
    /// assert!(spsa.set_gains(0.5, 0.02).is_ok());
    /// assert!(spsa.set_gains(f64::INFINITY, 0.02).is_err());
    /// assert_eq!(spsa.gains(), (0.5, 0.02));
    /// ```
    pub fn set_gains(
        &mut self,
        learning_rate: f64,
        perturbation_scale: f64,
    ) -> Result<(), SpsaConfigError> {
        validate_gains(learning_rate, perturbation_scale)?;
        self.learning_rate = learning_rate;
        self.perturbation_scale = perturbation_scale;
        Ok(())
    }

    /// Sets lower bounds for `a_k` and `c_k`. Decaying gains converge on a
    /// fixed optimum but stop tracking one that drifts; floors keep a
    /// minimum of both (constant-gain SPSA in the limit), which is what a
    /// long-running controller needs. Both must be finite and `>= 0`; on
    /// error nothing changes.
    ///
    /// # Errors
    ///
    /// [`SpsaConfigError::InvalidGain`] for a floor that is negative or not finite.
    ///
    /// ```
    /// use hotpath::{Spsa, SpsaConfig};
    ///
    /// let mut spsa = Spsa::new(0, 1, 0.1, 0.1, SpsaConfig::default());
    /// spsa.set_gain_floors(0.01, 0.05).unwrap();
    /// assert_eq!(spsa.learning_rate(1_000_000), 0.01);
    /// assert_eq!(spsa.perturbation_scale(1_000_000), 0.05);
    /// assert_eq!(spsa.perturbation_scale(0), 0.1);
    /// ```
    pub fn set_gain_floors(
        &mut self,
        learning_rate_floor: f64,
        perturbation_scale_floor: f64,
    ) -> Result<(), SpsaConfigError> {
        for (name, value) in [
            ("learning_rate_floor", learning_rate_floor),
            ("perturbation_scale_floor", perturbation_scale_floor),
        ] {
            if !is_finite_non_negative(value) {
                return Err(SpsaConfigError::InvalidGain { name, value });
            }
        }
        self.learning_rate_floor = learning_rate_floor;
        self.perturbation_scale_floor = perturbation_scale_floor;
        Ok(())
    }

    /// Replaces the stability constant `A` (Spall: about 10 % of the expected
    /// number of iterations). Must be finite and `>= 0`; on error nothing changes.
    ///
    /// # Errors
    ///
    /// [`SpsaConfigError::InvalidStabilityA`] if `stability_a` is NaN, infinite or negative.
    ///
    /// ```
    /// use hotpath::{Spsa, SpsaConfig};
    ///
    /// let mut spsa = Spsa::new(0, 1, 0.1, 0.1, SpsaConfig::default());
    /// assert!(spsa.set_stability_a(50.0).is_ok());
    /// assert!(spsa.set_stability_a(-1.0).is_err());
    /// assert_eq!(spsa.config().stability_a, 50.0);
    /// ```
    pub fn set_stability_a(&mut self, stability_a: f64) -> Result<(), SpsaConfigError> {
        validate_stability_a(stability_a)?;
        self.config.stability_a = stability_a;
        Ok(())
    }

    /// The current gains `(a₀, c₀)`.
    ///
    /// ```
    /// use hotpath::{Spsa, SpsaConfig};
    ///
    /// let spsa = Spsa::new(0, 1, 0.1, 0.2, SpsaConfig::default());
    /// assert_eq!(spsa.gains(), (0.1, 0.2));
    /// ```
    pub fn gains(&self) -> (f64, f64) {
        (self.learning_rate, self.perturbation_scale)
    }

    /// The (sanitised) configuration in force.
    ///
    /// ```
    /// use hotpath::{Spsa, SpsaConfig};
    ///
    /// let config = SpsaConfig { eval_window_digests: 0, ..SpsaConfig::default() };
    /// assert_eq!(Spsa::new(0, 1, 0.1, 0.1, config).config().eval_window_digests, 1);
    /// ```
    pub fn config(&self) -> &SpsaConfig {
        &self.config
    }

    /// Completed iterations `k`.
    ///
    /// ```
    /// use hotpath::{Spsa, SpsaConfig};
    ///
    /// assert_eq!(Spsa::new(0, 1, 0.1, 0.1, SpsaConfig::default()).iteration(), 0);
    /// ```
    pub fn iteration(&self) -> u64 {
        self.iteration
    }

    /// The current state.
    ///
    /// ```
    /// use hotpath::{Spsa, SpsaConfig, SpsaState};
    ///
    /// let spsa = Spsa::new(0, 1, 0.1, 0.1, SpsaConfig::default());
    /// assert_eq!(spsa.state(), &SpsaState::Ready);
    /// ```
    pub fn state(&self) -> &SpsaState {
        &self.state
    }

    /// Dimension `p`.
    ///
    /// ```
    /// use hotpath::{Spsa, SpsaConfig};
    ///
    /// assert_eq!(Spsa::new(0, 6, 0.1, 0.1, SpsaConfig::default()).num_params(), 6);
    /// ```
    pub fn num_params(&self) -> usize {
        self.num_params
    }

    /// The seed the RNG was created from.
    ///
    /// ```
    /// use hotpath::{Spsa, SpsaConfig};
    ///
    /// assert_eq!(Spsa::new(77, 1, 0.1, 0.1, SpsaConfig::default()).seed(), 77);
    /// ```
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Samples dropped so far: recorded in `Ready`, non-finite, zero-weight,
    /// or from an invalid digest.
    ///
    /// ```
    /// use hotpath::{Spsa, SpsaConfig};
    ///
    /// let mut spsa = Spsa::new(0, 1, 0.1, 0.1, SpsaConfig::default());
    /// spsa.record_objective(1.0);
    /// assert_eq!(spsa.ignored_samples(), 1);
    /// ```
    pub fn ignored_samples(&self) -> u64 {
        self.ignored_samples
    }

    /// Iterations whose update was replaced by zeros because the gradient or
    /// the step was not finite.
    ///
    /// ```
    /// use hotpath::{Spsa, SpsaConfig};
    ///
    /// let mut spsa = Spsa::new(0, 1, 0.1, 0.1, SpsaConfig::default());
    /// spsa.generate_perturbation();
    /// spsa.record_objective(f64::MAX);
    /// spsa.complete_eval_window();
    /// spsa.record_objective(-f64::MAX); // y₊ − y₋ overflows
    /// let (gradient, update) = spsa.complete_eval_window().unwrap();
    /// assert_eq!((gradient[0], update[0], spsa.degenerate_updates()), (0.0, 0.0, 1));
    /// ```
    pub fn degenerate_updates(&self) -> u64 {
        self.degenerate_updates
    }

    /// `y₊` while in `WaitingMinus`.
    ///
    /// ```
    /// use hotpath::{Spsa, SpsaConfig};
    ///
    /// let mut spsa = Spsa::new(0, 1, 0.1, 0.1, SpsaConfig::default());
    /// assert_eq!(spsa.y_plus(), None);
    /// spsa.generate_perturbation();
    /// spsa.record_objective(4.0);
    /// spsa.complete_eval_window();
    /// assert_eq!(spsa.y_plus(), Some(4.0));
    /// ```
    pub fn y_plus(&self) -> Option<f64> {
        match self.state {
            SpsaState::WaitingMinus { y_plus, .. } => Some(y_plus),
            _ => None,
        }
    }

    /// `y₋` of the last completed iteration, if any.
    ///
    /// ```
    /// use hotpath::{Spsa, SpsaConfig};
    ///
    /// let mut spsa = Spsa::new(9, 1, 0.1, 0.5, SpsaConfig::default());
    /// spsa.generate_perturbation();
    /// spsa.record_objective(3.0);
    /// spsa.complete_eval_window();
    /// spsa.record_objective(1.0);
    /// spsa.complete_eval_window();
    /// assert_eq!(spsa.y_minus(), Some(1.0));
    /// ```
    pub fn y_minus(&self) -> Option<f64> {
        self.last_y_minus
    }

    /// `c_k` of the in-flight perturbation (fixed when it was generated); the
    /// caller applies `±c_k·Δ`. `None` in `Ready`.
    ///
    /// ```
    /// use hotpath::{Spsa, SpsaConfig};
    ///
    /// let mut spsa = Spsa::new(0, 1, 0.1, 0.1, SpsaConfig::default());
    /// assert_eq!(spsa.in_flight_scale(), None);
    /// spsa.generate_perturbation();
    /// assert_eq!(spsa.in_flight_scale(), Some(spsa.perturbation_scale(0)));
    /// ```
    pub fn in_flight_scale(&self) -> Option<f64> {
        match self.state {
            SpsaState::Ready => None,
            _ => Some(self.in_flight_scale),
        }
    }

    /// Samples in the current window (0 in `Ready`).
    ///
    /// ```
    /// use hotpath::{Spsa, SpsaConfig};
    ///
    /// let mut spsa = Spsa::new(0, 1, 0.1, 0.1, SpsaConfig::default());
    /// spsa.generate_perturbation();
    /// spsa.record_objective(1.0);
    /// assert_eq!(spsa.window_len(), 1);
    /// ```
    pub fn window_len(&self) -> usize {
        match &self.state {
            SpsaState::Ready => 0,
            SpsaState::WaitingPlus { accumulated, .. }
            | SpsaState::WaitingMinus { accumulated, .. } => accumulated.len(),
        }
    }

    /// Current `ChaCha8` stream position, in 32-bit words.
    ///
    /// ```
    /// use hotpath::{Spsa, SpsaConfig};
    ///
    /// let mut spsa = Spsa::new(0, 3, 0.1, 0.1, SpsaConfig::default());
    /// assert_eq!(spsa.rng_word_pos(), 0);
    /// spsa.generate_perturbation(); // one u64 = two words
    /// assert_eq!(spsa.rng_word_pos(), 2);
    /// ```
    pub fn rng_word_pos(&self) -> u128 {
        self.rng.get_word_pos()
    }

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

    /// Draws `Δ`: bit `i % 64` of the `(i / 64)`-th `next_u64` word, 1 → +1.
    fn draw_delta(&mut self) -> ParamVec {
        let mut delta = ParamVec::new();
        let mut word = 0;
        for i in 0..self.num_params {
            if i % 64 == 0 {
                word = self.rng.next_u64();
            }
            delta.push(if (word >> (i % 64)) & 1 == 1 {
                1.0
            } else {
                -1.0
            });
        }
        delta
    }

    /// `(ĝ, −a_k·ĝ)` for the finished iteration; zeros if not finite.
    fn gradient_step(&mut self, delta: &[f64], y_plus: f64, y_minus: f64) -> (ParamVec, ParamVec) {
        let mut g = (y_plus - y_minus) / (2.0 * self.in_flight_scale);
        let mut step = self.learning_rate(self.iteration) * g;
        if !(g.is_finite() && step.is_finite()) {
            self.degenerate_updates = self.degenerate_updates.saturating_add(1);
            g = 0.0;
            step = 0.0;
        }
        // Δᵢ = ±1, so dividing by Δᵢ is multiplying by it (exactly).
        let gradient = delta.iter().map(|d| g * d).collect();
        let update = delta.iter().map(|d| -step * d).collect();
        (gradient, update)
    }
}

fn is_finite_non_negative(value: f64) -> bool {
    value.is_finite() && value >= 0.0
}

fn is_valid_gain(value: f64) -> bool {
    value.is_finite() && value > 0.0
}

fn validate_gains(learning_rate: f64, perturbation_scale: f64) -> Result<(), SpsaConfigError> {
    for (name, value) in [
        ("learning_rate", learning_rate),
        ("perturbation_scale", perturbation_scale),
    ] {
        if !is_valid_gain(value) {
            return Err(SpsaConfigError::InvalidGain { name, value });
        }
    }
    Ok(())
}

fn validate_stability_a(stability_a: f64) -> Result<(), SpsaConfigError> {
    if is_finite_non_negative(stability_a) {
        Ok(())
    } else {
        Err(SpsaConfigError::InvalidStabilityA(stability_a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    fn one_digest_config() -> SpsaConfig {
        SpsaConfig {
            eval_window_digests: 1,
            ..SpsaConfig::default()
        }
    }

    /// One full iteration against `objective` at `theta`; returns `(Δ, ĝ, update)`.
    fn iterate(
        spsa: &mut Spsa,
        theta: &[f64],
        mut objective: impl FnMut(&[f64]) -> f64,
    ) -> (ParamVec, ParamVec, ParamVec) {
        let delta = spsa.generate_perturbation();
        let c = spsa.in_flight_scale().unwrap();
        let shifted = |sign: f64| -> Vec<f64> {
            theta
                .iter()
                .zip(delta.iter())
                .map(|(t, d)| t + sign * c * d)
                .collect()
        };
        spsa.record_objective(objective(&shifted(1.0)));
        assert_eq!(spsa.complete_eval_window(), None);
        spsa.record_objective(objective(&shifted(-1.0)));
        let (gradient, update) = spsa.complete_eval_window().unwrap();
        (delta, gradient, update)
    }

    #[test]
    fn state_transitions_follow_the_diagram() {
        let mut spsa = Spsa::new(11, 3, 0.1, 0.05, SpsaConfig::default());
        assert_eq!(spsa.state(), &SpsaState::Ready);
        assert_eq!(spsa.complete_eval_window(), None);
        assert_eq!(spsa.state(), &SpsaState::Ready);

        let delta = spsa.generate_perturbation();
        assert_eq!(delta.len(), 3);
        match spsa.state() {
            SpsaState::WaitingPlus {
                perturbation_id,
                delta: d,
                accumulated,
            } => {
                assert_eq!(*perturbation_id, 0);
                assert_eq!(d, &delta);
                assert!(accumulated.is_empty());
            }
            other => panic!("expected WaitingPlus, got {other:?}"),
        }

        spsa.record_objective(2.0);
        assert_eq!(spsa.complete_eval_window(), None);
        match spsa.state() {
            SpsaState::WaitingMinus {
                perturbation_id,
                delta: d,
                y_plus,
                accumulated,
            } => {
                assert_eq!(*perturbation_id, 0);
                assert_eq!(d, &delta);
                assert_eq!(*y_plus, 2.0);
                assert!(accumulated.is_empty());
            }
            other => panic!("expected WaitingMinus, got {other:?}"),
        }

        spsa.record_objective(1.0);
        assert!(spsa.complete_eval_window().is_some());
        assert_eq!(spsa.state(), &SpsaState::Ready);
        assert_eq!(spsa.iteration(), 1);

        spsa.generate_perturbation();
        assert!(matches!(
            spsa.state(),
            SpsaState::WaitingPlus {
                perturbation_id: 1,
                ..
            }
        ));
    }

    #[test]
    fn empty_windows_do_not_advance() {
        let mut spsa = Spsa::new(1, 2, 0.1, 0.05, SpsaConfig::default());
        spsa.generate_perturbation();
        let before = spsa.state().clone();
        assert_eq!(spsa.complete_eval_window(), None);
        assert_eq!(spsa.state(), &before);

        spsa.record_objective(1.0);
        spsa.complete_eval_window();
        let before = spsa.state().clone();
        assert_eq!(spsa.complete_eval_window(), None);
        assert_eq!(spsa.state(), &before);
        assert_eq!(spsa.iteration(), 0);
    }

    #[test]
    fn generate_outside_ready_is_idempotent() {
        let mut spsa = Spsa::new(5, 4, 0.1, 0.05, SpsaConfig::default());
        let delta = spsa.generate_perturbation();
        spsa.record_objective(1.0);
        let pos = spsa.rng_word_pos();

        assert_eq!(spsa.generate_perturbation(), delta);
        assert_eq!(spsa.window_len(), 1);
        spsa.complete_eval_window();
        assert_eq!(spsa.generate_perturbation(), delta);
        assert_eq!(spsa.y_plus(), Some(1.0));
        assert_eq!(spsa.rng_word_pos(), pos);
    }

    #[test]
    fn delta_bits_follow_the_documented_layout() {
        let seed = 0x00DE_C0DE;
        let mut spsa = Spsa::new(seed, 70, 0.1, 0.05, SpsaConfig::default());
        let delta = spsa.generate_perturbation();

        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let words = [rng.next_u64(), rng.next_u64()];
        for (i, d) in delta.iter().enumerate() {
            let bit = (words[i / 64] >> (i % 64)) & 1;
            assert_eq!(*d, if bit == 1 { 1.0 } else { -1.0 }, "component {i}");
        }
        // Two u64 draws = four 32-bit words.
        assert_eq!(spsa.rng_word_pos(), 4);
        // Both signs occur (a constant Δ would mean the bits are not used).
        assert!(delta.contains(&1.0) && delta.contains(&-1.0));
    }

    #[test]
    fn gradient_matches_central_difference_in_one_dimension() {
        // f(θ) = 3θ²: (f(θ + cΔ) − f(θ − cΔ)) / (2cΔ) = 6θ exactly = f'(θ).
        let mut spsa = Spsa::new(2, 1, 0.1, 0.05, one_digest_config());
        let theta = 0.7;
        let (_, gradient, update) = iterate(&mut spsa, &[theta], |t| 3.0 * t[0] * t[0]);
        assert!(close(gradient[0], 6.0 * theta), "{}", gradient[0]);
        assert!(close(update[0], -spsa.learning_rate(0) * 6.0 * theta));
        assert!(update[0] < 0.0, "a positive slope must move θ down");
    }

    #[test]
    fn gradient_matches_spsa_formula_on_a_quadratic() {
        // f(θ) = Σ bᵢθᵢ²; f(θ+cΔ) − f(θ−cΔ) = 2c·Δᵀ∇f, so ĝᵢ = Δᵀ∇f / Δᵢ.
        let b = [1.0, 2.0, 0.5, 4.0];
        let theta = [0.3, -0.2, 1.0, 0.1];
        let f = |t: &[f64]| t.iter().zip(b).map(|(t, b)| b * t * t).sum::<f64>();
        let mut spsa = Spsa::new(9, 4, 0.2, 0.1, one_digest_config());
        let (delta, gradient, update) = iterate(&mut spsa, &theta, f);

        let directional: f64 = (0..4).map(|j| 2.0 * b[j] * theta[j] * delta[j]).sum();
        let a0 = spsa.learning_rate(0);
        for i in 0..4 {
            let expected = directional / delta[i];
            assert!(
                close(gradient[i], expected),
                "{i}: {} vs {expected}",
                gradient[i]
            );
            assert!(close(update[i], -a0 * expected));
        }
    }

    #[test]
    fn converges_on_a_noisy_quadratic() {
        let target = [0.5, -0.25, 0.75, 0.0];
        let mut noise = ChaCha8Rng::seed_from_u64(99);
        let mut theta = [0.0; 4];
        let mut spsa = Spsa::new(4, 4, 0.3, 0.1, one_digest_config());
        for _ in 0..400 {
            let mut sample = |t: &[f64]| {
                let n = (noise.next_u32() as f64 / u32::MAX as f64 - 0.5) * 0.01;
                t.iter()
                    .zip(target)
                    .map(|(t, c)| (t - c).powi(2))
                    .sum::<f64>()
                    + n
            };
            let (_, _, update) = iterate(&mut spsa, &theta, &mut sample);
            theta
                .iter_mut()
                .zip(update.iter())
                .for_each(|(t, u)| *t += u);
        }
        let dist: f64 = theta.iter().zip(target).map(|(t, c)| (t - c).powi(2)).sum();
        assert!(dist < 1e-3, "distance² {dist}, θ = {theta:?}");
    }

    #[test]
    fn gain_schedules_match_hand_computed_values() {
        let spsa = Spsa::new(0, 1, 0.1, 0.2, SpsaConfig::default());
        // a₀ / (k + 1 + 10)^0.602 and c₀ / (k + 1)^0.101, computed independently.
        assert!(close(spsa.learning_rate(0), 0.023_609_218_065_474_107));
        assert!(close(spsa.learning_rate(1), 0.022_404_377_924_347_463));
        assert!(close(spsa.learning_rate(9), 0.016_473_274_777_594_173));
        assert_eq!(spsa.perturbation_scale(0), 0.2);
        assert!(close(spsa.perturbation_scale(1), 0.186_477_297_287_366_5));
        assert!(close(spsa.perturbation_scale(9), 0.158_500_266_096_094_36));

        let harmonic = SpsaConfig {
            alpha: 1.0,
            gamma: 1.0,
            stability_a: 0.0,
            ..SpsaConfig::default()
        };
        let spsa = Spsa::new(0, 1, 1.0, 1.0, harmonic);
        for k in 0..10u64 {
            assert_eq!(spsa.learning_rate(k), 1.0 / (k + 1) as f64);
            assert_eq!(spsa.perturbation_scale(k), 1.0 / (k + 1) as f64);
        }
        let a = spsa.learning_rate(u64::MAX);
        assert!(a.is_finite() && a > 0.0);
    }

    #[test]
    fn window_is_aggregated_with_configured_aggregation() {
        let mut spsa = Spsa::new(1, 2, 0.1, 0.05, SpsaConfig::default());
        spsa.generate_perturbation();
        for v in [100.0, 3.0, 1.0, 4.0, 2.0] {
            spsa.record_objective(v);
        }
        assert!(spsa.has_enough_samples());
        spsa.complete_eval_window();
        // 10 % trim of 5 equal weights: (0.5·1 + 2 + 3 + 4 + 0.5·100) / 4
        assert!(close(spsa.y_plus().unwrap(), 59.5 / 4.0));

        let median = SpsaConfig {
            aggregation: Aggregation::Median,
            ..SpsaConfig::default()
        };
        let mut spsa = Spsa::new(1, 2, 0.1, 0.05, median);
        spsa.generate_perturbation();
        spsa.record_weighted(1.0, 10);
        spsa.record_weighted(50.0, 1);
        spsa.record_digest(&TelemetryDigest::new(1_000, 2.0, 30))
            .unwrap();
        spsa.complete_eval_window();
        assert_eq!(spsa.y_plus(), Some(2.0));
    }

    #[test]
    fn non_finite_and_misplaced_samples_are_ignored_and_counted() {
        let mut spsa = Spsa::new(1, 2, 0.1, 0.05, SpsaConfig::default());
        spsa.record_objective(1.0);
        assert_eq!(spsa.ignored_samples(), 1);

        spsa.generate_perturbation();
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            spsa.record_objective(bad);
        }
        spsa.record_weighted(1.0, 0);
        assert_eq!(spsa.window_len(), 0);
        assert_eq!(spsa.ignored_samples(), 5);
        let bad_digest = TelemetryDigest::new(1_000, f64::NAN, 3);
        assert!(matches!(
            spsa.record_digest(&bad_digest),
            Err(DigestError::NonFiniteObjective(_))
        ));
        assert_eq!(
            spsa.record_digest(&TelemetryDigest::new(1_000, 1.0, 0)),
            Err(DigestError::ZeroSampleCount)
        );
        assert_eq!(spsa.ignored_samples(), 7);

        spsa.record_objective(3.0);
        spsa.complete_eval_window();
        assert_eq!(spsa.y_plus(), Some(3.0));
    }

    #[test]
    fn overflowing_update_is_zeroed_and_counted() {
        let mut spsa = Spsa::new(1, 3, 0.1, 0.05, one_digest_config());
        spsa.generate_perturbation();
        spsa.record_objective(f64::MAX);
        spsa.complete_eval_window();
        spsa.record_objective(-f64::MAX);
        let (gradient, update) = spsa.complete_eval_window().unwrap();
        assert!(gradient.iter().chain(update.iter()).all(|v| *v == 0.0));
        assert_eq!(spsa.degenerate_updates(), 1);
        assert_eq!(spsa.iteration(), 1);
    }

    #[test]
    fn same_seed_same_run_different_seed_different_deltas() {
        let f = |t: &[f64]| t.iter().map(|x| (x - 0.3).powi(2)).sum::<f64>();
        let run = |seed| {
            let mut spsa = Spsa::new(seed, 8, 0.1, 0.05, one_digest_config());
            let mut theta = [0.0; 8];
            let mut trace = Vec::new();
            for _ in 0..20 {
                let (delta, gradient, update) = iterate(&mut spsa, &theta, f);
                theta
                    .iter_mut()
                    .zip(update.iter())
                    .for_each(|(t, u)| *t += u);
                trace.push((delta, gradient, update));
            }
            trace
        };
        let (a, b) = (run(7), run(7));
        for ((da, ga, ua), (db, gb, ub)) in a.iter().zip(&b) {
            assert!(da.bit_eq(db) && ga.bit_eq(gb) && ua.bit_eq(ub));
        }
        let c = run(8);
        assert!(a.iter().zip(&c).any(|(x, y)| x.0 != y.0));
    }

    fn deltas(spsa: &mut Spsa, n: usize) -> Vec<ParamVec> {
        (0..n)
            .map(|_| {
                let d = spsa.generate_perturbation();
                spsa.abort_iteration();
                d
            })
            .collect()
    }

    #[test]
    fn restore_at_ready_continues_the_identical_sequence() {
        let mut a = Spsa::new(21, 5, 0.1, 0.05, one_digest_config());
        let f = |t: &[f64]| t.iter().map(|x| x * x).sum::<f64>();
        for _ in 0..3 {
            iterate(&mut a, &[0.1; 5], f);
        }
        a.set_gains(0.4, 0.02).unwrap();
        a.set_stability_a(3.0).unwrap();
        let json = serde_json::to_string(&a.checkpoint()).unwrap();
        let checkpoint: SpsaCheckpoint = serde_json::from_str(&json).unwrap();
        assert_eq!(checkpoint, a.checkpoint());

        let mut b = Spsa::new(0, 5, 1.0, 1.0, one_digest_config());
        b.restore(&checkpoint).unwrap();
        assert_eq!(b.iteration(), 3);
        assert_eq!(b.gains(), (0.4, 0.02));
        assert_eq!(b.config().stability_a, 3.0);
        assert_eq!(b.learning_rate(3), a.learning_rate(3));

        let (ra, rb) = (iterate(&mut a, &[0.2; 5], f), iterate(&mut b, &[0.2; 5], f));
        assert!(ra.0.bit_eq(&rb.0) && ra.1.bit_eq(&rb.1) && ra.2.bit_eq(&rb.2));
        assert_eq!(deltas(&mut a, 10), deltas(&mut b, 10));
    }

    #[test]
    fn restore_mid_iteration_redoes_it_with_the_same_delta() {
        let mut a = Spsa::new(33, 3, 0.1, 0.05, SpsaConfig::default());
        deltas(&mut a, 2);
        let in_flight = a.generate_perturbation();
        a.record_objective(1.0);
        let checkpoint = a.checkpoint();

        let mut b = Spsa::new(33, 3, 0.1, 0.05, SpsaConfig::default());
        b.generate_perturbation();
        b.restore(&checkpoint).unwrap();
        assert_eq!(b.state(), &SpsaState::Ready);
        assert_eq!(b.generate_perturbation(), in_flight);
        // Ids are never reused.
        assert!(matches!(
            b.state(),
            SpsaState::WaitingPlus {
                perturbation_id: 3,
                ..
            }
        ));
        a.abort_iteration();
        b.abort_iteration();
        assert_eq!(deltas(&mut a, 5), deltas(&mut b, 5));
    }

    #[test]
    fn restore_rejects_mismatched_or_invalid_checkpoints() {
        let source = Spsa::new(1, 3, 0.1, 0.05, SpsaConfig::default());
        let mut target = Spsa::new(2, 4, 0.1, 0.05, SpsaConfig::default());
        target.generate_perturbation();
        let before = target.state().clone();
        assert_eq!(
            target.restore(&source.checkpoint()),
            Err(SpsaConfigError::CheckpointMismatch {
                expected: 4,
                found: 3
            })
        );
        let bad = SpsaCheckpoint {
            num_params: 4,
            learning_rate: f64::NAN,
            ..source.checkpoint()
        };
        assert!(matches!(
            target.restore(&bad),
            Err(SpsaConfigError::InvalidGain { .. })
        ));
        assert_eq!(target.state(), &before);
        assert_eq!(target.seed(), 2);
    }

    #[test]
    fn window_buffer_is_reused_across_iterations() {
        let mut spsa = Spsa::new(1, 2, 0.1, 0.05, SpsaConfig::default());
        let buffer = |spsa: &Spsa| match spsa.state() {
            SpsaState::WaitingPlus { accumulated, .. }
            | SpsaState::WaitingMinus { accumulated, .. } => {
                (accumulated.as_ptr(), accumulated.capacity())
            }
            SpsaState::Ready => panic!("no window in Ready"),
        };
        spsa.generate_perturbation();
        let first = buffer(&spsa);
        assert_eq!(first.1, 5);
        for _ in 0..3 {
            spsa.generate_perturbation();
            assert_eq!(buffer(&spsa), first);
            for v in 0..5 {
                spsa.record_objective(v as f64);
            }
            spsa.complete_eval_window();
            assert_eq!(buffer(&spsa), first);
            for v in 0..5 {
                spsa.record_objective(v as f64);
            }
            spsa.complete_eval_window();
        }
    }

    #[test]
    fn new_clamps_invalid_inputs_to_an_inert_optimiser() {
        let config = SpsaConfig {
            eval_window_digests: 0,
            eval_window_us: 0,
            settle_time_us: u64::MAX,
            alpha: f64::NAN,
            gamma: f64::INFINITY,
            stability_a: -1.0,
            aggregation: Aggregation::TrimmedMean { trim_fraction: 0.9 },
        };
        let mut spsa = Spsa::new(1, 2, f64::NAN, -1.0, config);
        let c = spsa.config();
        assert_eq!(c.eval_window_digests, 1);
        assert_eq!(c.eval_window_us, 500_000);
        assert_eq!(c.settle_time_us, 499_999);
        assert_eq!((c.alpha, c.gamma, c.stability_a), (0.602, 0.101, 10.0));
        assert_eq!(c.aggregation, Aggregation::Median);
        assert!(c.validate().is_ok());
        assert_eq!(spsa.gains(), (0.0, 0.0));

        // c_k = 0 gives no information: zero gradient, zero update, no panic.
        let (_, gradient, update) = iterate(&mut spsa, &[0.0, 0.0], |t| t[0]);
        assert!(gradient.iter().chain(update.iter()).all(|v| *v == 0.0));

        let empty = Spsa::new(1, 0, 0.1, 0.1, SpsaConfig::default());
        assert_eq!(empty.clone().generate_perturbation().len(), 0);
    }

    #[test]
    fn validation_reports_each_invalid_field() {
        let base = SpsaConfig::default();
        let cases = [
            (
                SpsaConfig {
                    eval_window_digests: 0,
                    ..base.clone()
                },
                SpsaConfigError::ZeroEvalWindowDigests,
            ),
            (
                SpsaConfig {
                    eval_window_us: 0,
                    ..base.clone()
                },
                SpsaConfigError::ZeroEvalWindowUs,
            ),
            (
                SpsaConfig {
                    settle_time_us: 500_000,
                    ..base.clone()
                },
                SpsaConfigError::SettleNotShorterThanWindow {
                    settle_time_us: 500_000,
                    eval_window_us: 500_000,
                },
            ),
            (
                SpsaConfig {
                    gamma: -0.1,
                    ..base.clone()
                },
                SpsaConfigError::InvalidExponent {
                    name: "gamma",
                    value: -0.1,
                },
            ),
            (
                SpsaConfig {
                    stability_a: f64::INFINITY,
                    ..base.clone()
                },
                SpsaConfigError::InvalidStabilityA(f64::INFINITY),
            ),
            (
                SpsaConfig {
                    aggregation: Aggregation::TrimmedMean { trim_fraction: 0.5 },
                    ..base.clone()
                },
                SpsaConfigError::Aggregation(AggregationError::InvalidTrimFraction(0.5)),
            ),
        ];
        for (config, expected) in cases {
            assert_eq!(config.validate(), Err(expected));
            assert!(config.clone().sanitized().validate().is_ok());
            assert!(Spsa::try_new(1, 1, 0.1, 0.1, config).is_err());
        }
        assert!(base.validate().is_ok());
        assert_eq!(base.clone().sanitized(), base);
        for (a, c) in [
            (0.0, 0.1),
            (0.1, 0.0),
            (f64::NAN, 0.1),
            (0.1, f64::INFINITY),
        ] {
            assert!(matches!(
                Spsa::try_new(1, 1, a, c, SpsaConfig::default()),
                Err(SpsaConfigError::InvalidGain { .. })
            ));
        }
    }

    #[test]
    fn config_serde_round_trips_and_accepts_seed_fields_only() {
        let config = SpsaConfig::default();
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(serde_json::from_str::<SpsaConfig>(&json).unwrap(), config);
        let seed_form = r#"{"eval_window_digests":5,"eval_window_us":500000,
            "settle_time_us":10000,"alpha":0.602,"gamma":0.101,"stability_a":10.0}"#;
        assert_eq!(
            serde_json::from_str::<SpsaConfig>(seed_form).unwrap(),
            config
        );
    }

    #[test]
    fn set_gains_mid_iteration_keeps_the_applied_scale() {
        let mut spsa = Spsa::new(1, 1, 0.1, 0.5, one_digest_config());
        let delta = spsa.generate_perturbation();
        spsa.record_objective(3.0);
        spsa.complete_eval_window();
        spsa.set_gains(0.2, 0.01).unwrap();
        assert_eq!(spsa.in_flight_scale(), Some(0.5));
        spsa.record_objective(1.0);
        let (gradient, update) = spsa.complete_eval_window().unwrap();
        // (3 − 1) / (2 · 0.5 · Δ) with the old c₀; the new a₀ applies.
        assert_eq!(gradient[0], 2.0 * delta[0]);
        assert_eq!(update[0], -spsa.learning_rate(0) * gradient[0]);
        assert!(close(spsa.learning_rate(0), 0.2 / 11f64.powf(0.602)));
        spsa.generate_perturbation();
        assert_eq!(spsa.in_flight_scale(), Some(spsa.perturbation_scale(1)));
    }
}
