//! [`Spsa`]: the online SPSA (Simultaneous Perturbation Stochastic
//! Approximation) optimiser core. Pure: no clock, no I/O, no configuration
//! writes. It proposes; the safety executor decides and applies.
//!
//! One `impl Spsa` block per concern, each in its file:
//!
//! * `mod.rs`: [`Spsa`] and [`SpsaState`]: construction, the state machine
//!   (perturbation, closing a window, abort, the gradient step) and the
//!   accessors;
//! * `window.rs`: objective samples into the evaluation window;
//! * `gains.rs`: the gain schedules `a_k` and `c_k`: gains, floors, `A`;
//! * `config.rs`: [`SpsaConfig`], its validation and sanitising,
//!   [`SpsaConfigError`];
//! * `checkpoint.rs`: [`SpsaCheckpoint`], checkpoint and restore;
//! * `tests.rs`: unit tests.

mod checkpoint;
mod config;
mod gains;
#[cfg(test)]
mod tests;
mod window;

pub use checkpoint::SpsaCheckpoint;
pub use config::{SpsaConfig, SpsaConfigError, MAX_EVAL_WINDOW_DIGESTS};

#[cfg(doc)]
use crate::telemetry::Aggregation;
use crate::ParamVec;
use gains::{is_valid_gain, validate_gains};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

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
