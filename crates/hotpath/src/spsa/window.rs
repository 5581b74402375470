//! Objective samples into the evaluation window: what is recorded, with
//! what weight, and what is dropped and counted instead.

use super::{Spsa, SpsaState};
use crate::telemetry::{DigestError, TelemetryDigest};

impl Spsa {
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
}
