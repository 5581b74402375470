//! The gain schedules `a_k = max(a₀ / (k + 1 + A)^α, floor)` and
//! `c_k = max(c₀ / (k + 1)^γ, floor)`: the gains `a₀` and `c₀`, their
//! floors and the stability constant `A`, and how each is validated.

use super::config::{is_finite_non_negative, validate_stability_a};
use super::{Spsa, SpsaConfigError};

impl Spsa {
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
}

pub(super) fn is_valid_gain(value: f64) -> bool {
    value.is_finite() && value > 0.0
}

pub(super) fn validate_gains(
    learning_rate: f64,
    perturbation_scale: f64,
) -> Result<(), SpsaConfigError> {
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
