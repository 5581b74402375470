//! [`TelemetryDigest`]: one summarised observation window, and [`Aggregation`]:
//! how the digests of one SPSA evaluation window are reduced to one number.
//!
//! A digest summarises `sample_count` raw measurements taken over `window_us`
//! microseconds into one `objective_value` (lower is better). Digests must pass
//! [`TelemetryDigest::validate`] before they reach the optimiser: a NaN or
//! infinite objective, an empty window or a non-finite constraint margin is a
//! typed [`DigestError`], never a panic.
//!
//! The optimiser collects several digests per perturbation and reduces them with
//! an [`Aggregation`], weighting each digest by its `sample_count` so that a
//! digest summarising 1 000 requests counts 1 000 times as much as one that
//! summarises a single request. The default, a 10 % weighted trimmed mean, is
//! robust to the occasional outlier window (a GC pause, a cold cache) while
//! still averaging out measurement noise. [`Aggregation::aggregate`] works in
//! place on a caller-owned buffer, so aggregating never allocates.

use crate::short_float::ShortFloat;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A compressed telemetry snapshot: the objective measured over one window.
///
/// The three fields of the original API (`window_us`, `objective_value`,
/// `sample_count`) are mandatory; the optional metadata is set with the
/// `with_*` builder methods and omitted from serialised output when absent, so
/// `{"window_us":..,"objective_value":..,"sample_count":..}` still deserialises.
///
/// ```
/// use hotpath::TelemetryDigest;
///
/// let d = TelemetryDigest::new(100_000, 1.25, 512)
///     .with_timestamp(7_000_000)
///     .with_generation(3);
/// assert!(d.validate().is_ok());
/// assert_eq!(d.generation, Some(3));
/// assert_eq!(d.constraint_margin, None);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TelemetryDigest {
    /// Duration of the observation window, in microseconds.
    pub window_us: u64,
    /// Objective over the window (typically the mean of the raw samples);
    /// lower is better.
    pub objective_value: f64,
    /// Number of raw samples summarised; the digest's weight in aggregation.
    pub sample_count: u64,
    /// End of the window on the caller's monotonic clock, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_us: Option<u64>,
    /// Configuration generation the window was measured under, so that digests
    /// straddling a config change can be recognised and discarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// Distance to the nearest constraint, in the caller's units: `>= 0` means
    /// every constraint held during the window, `< 0` means one was violated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraint_margin: Option<f64>,
}

// Digests are passed by value through queues on the hot path; keep them small.
const _: () = assert!(std::mem::size_of::<TelemetryDigest>() <= 128);

impl TelemetryDigest {
    /// A digest without optional metadata. Does not validate; see
    /// [`TelemetryDigest::validate`].
    ///
    /// ```
    /// use hotpath::TelemetryDigest;
    ///
    /// let d = TelemetryDigest::new(50_000, 0.8, 100);
    /// assert_eq!((d.window_us, d.objective_value, d.sample_count), (50_000, 0.8, 100));
    /// assert_eq!(d.timestamp_us, None);
    /// ```
    pub fn new(window_us: u64, objective_value: f64, sample_count: u64) -> Self {
        Self {
            window_us,
            objective_value,
            sample_count,
            timestamp_us: None,
            generation: None,
            constraint_margin: None,
        }
    }

    /// Sets the end-of-window timestamp (monotonic microseconds).
    ///
    /// ```
    /// use hotpath::TelemetryDigest;
    ///
    /// let d = TelemetryDigest::new(1_000, 1.0, 1).with_timestamp(42);
    /// assert_eq!(d.timestamp_us, Some(42));
    /// ```
    #[must_use]
    pub fn with_timestamp(mut self, timestamp_us: u64) -> Self {
        self.timestamp_us = Some(timestamp_us);
        self
    }

    /// Sets the configuration generation the window was measured under.
    ///
    /// ```
    /// use hotpath::TelemetryDigest;
    ///
    /// let d = TelemetryDigest::new(1_000, 1.0, 1).with_generation(9);
    /// assert_eq!(d.generation, Some(9));
    /// ```
    #[must_use]
    pub fn with_generation(mut self, generation: u64) -> Self {
        self.generation = Some(generation);
        self
    }

    /// Sets the constraint margin (`>= 0` satisfied, `< 0` violated).
    ///
    /// ```
    /// use hotpath::TelemetryDigest;
    ///
    /// let d = TelemetryDigest::new(1_000, 1.0, 1).with_constraint_margin(-0.5);
    /// assert_eq!(d.constraint_margin, Some(-0.5));
    /// ```
    #[must_use]
    pub fn with_constraint_margin(mut self, margin: f64) -> Self {
        self.constraint_margin = Some(margin);
        self
    }

    /// Checks that the digest can be fed to the optimiser. Reports the first
    /// problem found, in field order: objective, sample count, margin.
    ///
    /// # Errors
    ///
    /// The first [`DigestError`] found.
    ///
    /// ```
    /// use hotpath::{DigestError, TelemetryDigest};
    ///
    /// assert!(TelemetryDigest::new(1_000, 1.0, 10).validate().is_ok());
    /// assert!(matches!(
    ///     TelemetryDigest::new(1_000, f64::NAN, 10).validate(),
    ///     Err(DigestError::NonFiniteObjective(_))
    /// ));
    /// assert_eq!(
    ///     TelemetryDigest::new(1_000, 1.0, 0).validate(),
    ///     Err(DigestError::ZeroSampleCount)
    /// );
    /// ```
    pub fn validate(&self) -> Result<(), DigestError> {
        if !self.objective_value.is_finite() {
            return Err(DigestError::NonFiniteObjective(self.objective_value));
        }
        if self.sample_count == 0 {
            return Err(DigestError::ZeroSampleCount);
        }
        match self.constraint_margin {
            Some(m) if !m.is_finite() => Err(DigestError::NonFiniteConstraintMargin(m)),
            _ => Ok(()),
        }
    }
}

/// Why a [`TelemetryDigest`] was rejected by [`TelemetryDigest::validate`].
///
/// ```
/// use hotpath::{DigestError, TelemetryDigest};
///
/// let err = TelemetryDigest::new(1_000, 1.0, 5)
///     .with_constraint_margin(f64::INFINITY)
///     .validate()
///     .unwrap_err();
/// assert_eq!(err, DigestError::NonFiniteConstraintMargin(f64::INFINITY));
/// assert_eq!(err.to_string(), "constraint margin is not finite: inf");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Error)]
pub enum DigestError {
    /// `objective_value` is NaN or ±∞.
    #[error("objective value is not finite: {}", ShortFloat(*.0))]
    NonFiniteObjective(f64),
    /// `sample_count` is zero: the window summarises nothing.
    #[error("digest summarises zero samples")]
    ZeroSampleCount,
    /// `constraint_margin` is present but NaN or ±∞.
    #[error("constraint margin is not finite: {}", ShortFloat(*.0))]
    NonFiniteConstraintMargin(f64),
}

/// How the `(value, weight)` samples of one evaluation window are reduced to a
/// single objective. Weights are sample counts.
///
/// Definitions, on the samples sorted by value `x₁ ≤ … ≤ xₙ` with weights
/// `wᵢ > 0`, total `W = Σwᵢ`, and sample `i` occupying the interval
/// `[Cᵢ₋₁, Cᵢ)` of cumulative weight (`Cᵢ = w₁ + … + wᵢ`, `C₀ = 0`):
///
/// * **`TrimmedMean { trim_fraction: t }`** removes weight `tW` from each end
///   and averages what is left: each sample keeps the part of its interval
///   that overlaps `[tW, W − tW]` (so a sample straddling a cut contributes
///   fractionally), and the result is `Σ xᵢ·keptᵢ / Σ keptᵢ`. Valid for
///   `0 ≤ t < 0.5`.
/// * **`Mean`** is the weighted mean `Σ xᵢwᵢ / W` (a trimmed mean with `t = 0`).
/// * **`Median`** is the `xᵢ` of the first sample with `Cᵢ ≥ W/2`. Tie rule:
///   when `Cᵢ = W/2` exactly (the weight splits evenly), the result is the
///   midpoint of `xᵢ` and `xᵢ₊₁`, as for an unweighted median of an even count.
///
/// Out-of-range trim fractions are rejected by [`Aggregation::validate`]; at
/// aggregation time they are clamped as described in
/// [`Aggregation::sanitized`], so aggregation itself never fails.
///
/// ```
/// use hotpath::Aggregation;
///
/// let mut window = [(10.0, 1), (1.0, 1), (2.0, 1), (3.0, 1)];
/// assert_eq!(Aggregation::Median.aggregate(&mut window), Some(2.5));
/// assert_eq!(Aggregation::Mean.aggregate(&mut window), Some(4.0));
/// // Trimming 25 % of the weight from each end drops 1.0 and 10.0.
/// let trimmed = Aggregation::TrimmedMean { trim_fraction: 0.25 };
/// assert_eq!(trimmed.aggregate(&mut window), Some(2.5));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Aggregation {
    /// Weighted mean after trimming `trim_fraction` of the total weight from
    /// each end.
    TrimmedMean {
        /// Fraction of the total weight cut from each end, in `[0, 0.5)`.
        trim_fraction: f64,
    },
    /// Weighted median.
    Median,
    /// Weighted mean.
    Mean,
}

impl Default for Aggregation {
    /// A 10 % weighted trimmed mean.
    ///
    /// ```
    /// use hotpath::Aggregation;
    ///
    /// assert_eq!(Aggregation::default(), Aggregation::TrimmedMean { trim_fraction: 0.10 });
    /// ```
    fn default() -> Self {
        Self::TrimmedMean {
            trim_fraction: Self::DEFAULT_TRIM_FRACTION,
        }
    }
}

impl Aggregation {
    /// Trim fraction of [`Aggregation::default`].
    ///
    /// ```
    /// assert_eq!(hotpath::Aggregation::DEFAULT_TRIM_FRACTION, 0.10);
    /// ```
    pub const DEFAULT_TRIM_FRACTION: f64 = 0.10;

    /// A validated trimmed mean.
    ///
    /// # Errors
    ///
    /// [`AggregationError::InvalidTrimFraction`] if `trim_fraction` is NaN or outside `[0, 0.5)`.
    ///
    /// ```
    /// use hotpath::{Aggregation, AggregationError};
    ///
    /// assert!(Aggregation::trimmed_mean(0.2).is_ok());
    /// assert_eq!(
    ///     Aggregation::trimmed_mean(0.5),
    ///     Err(AggregationError::InvalidTrimFraction(0.5))
    /// );
    /// ```
    pub fn trimmed_mean(trim_fraction: f64) -> Result<Self, AggregationError> {
        let aggregation = Self::TrimmedMean { trim_fraction };
        aggregation.validate().map(|()| aggregation)
    }

    /// Checks that a trimmed mean's fraction lies in `[0, 0.5)`. `Median` and
    /// `Mean` are always valid.
    ///
    /// # Errors
    ///
    /// [`AggregationError::InvalidTrimFraction`] for a trim outside `[0, 0.5)`.
    ///
    /// ```
    /// use hotpath::Aggregation;
    ///
    /// assert!(Aggregation::Median.validate().is_ok());
    /// assert!(Aggregation::TrimmedMean { trim_fraction: f64::NAN }.validate().is_err());
    /// assert!(Aggregation::TrimmedMean { trim_fraction: -0.1 }.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), AggregationError> {
        match *self {
            Self::TrimmedMean { trim_fraction } if !(0.0..0.5).contains(&trim_fraction) => {
                Err(AggregationError::InvalidTrimFraction(trim_fraction))
            }
            _ => Ok(()),
        }
    }

    /// The nearest valid aggregation, used by [`Aggregation::aggregate`] so it
    /// never fails: a trim fraction `>= 0.5` (including +∞) becomes `Median`
    /// (the trimmed mean's limit), a negative one (including −∞) becomes
    /// `Mean` (no trimming), and NaN becomes the default 10 % trim.
    ///
    /// ```
    /// use hotpath::Aggregation;
    ///
    /// let t = |f| Aggregation::TrimmedMean { trim_fraction: f };
    /// assert_eq!(t(0.7).sanitized(), Aggregation::Median);
    /// assert_eq!(t(-1.0).sanitized(), Aggregation::Mean);
    /// assert_eq!(t(f64::NAN).sanitized(), Aggregation::default());
    /// assert_eq!(t(0.2).sanitized(), t(0.2));
    /// ```
    #[must_use]
    pub fn sanitized(self) -> Self {
        match self {
            Self::TrimmedMean { trim_fraction: t } if t.is_nan() => Self::default(),
            Self::TrimmedMean { trim_fraction: t } if t >= 0.5 => Self::Median,
            Self::TrimmedMean { trim_fraction: t } if t < 0.0 => Self::Mean,
            other => other,
        }
    }

    /// Reduces `(value, weight)` samples to one value, in place and without
    /// allocating. Returns `None` when no sample has a finite value and a
    /// positive weight.
    ///
    /// Samples with a NaN/±∞ value or a zero weight are skipped (they should
    /// have been rejected by [`TelemetryDigest::validate`]; skipping them keeps
    /// one bad reading from poisoning the window). The slice is reordered: on
    /// return its valid samples come first, sorted by value with
    /// [`f64::total_cmp`]. The result always lies within the range of the
    /// valid values.
    ///
    /// ```
    /// use hotpath::Aggregation;
    ///
    /// // A window of three digests; the middle one summarises most samples.
    /// let mut window = [(1.0, 10), (2.0, 80), (f64::NAN, 5), (9.0, 10)];
    /// assert_eq!(Aggregation::Median.aggregate(&mut window), Some(2.0));
    /// assert_eq!(Aggregation::Mean.aggregate(&mut []), None);
    /// ```
    pub fn aggregate(&self, values: &mut [(f64, u64)]) -> Option<f64> {
        let valid = partition_valid(values);
        let (&(min, _), &(max, _)) = (valid.first()?, valid.last()?);
        let result = match self.sanitized() {
            // A trim so close to 0.5 that rounding leaves no weight is the median's limit.
            Self::TrimmedMean { trim_fraction } => {
                trimmed_mean(valid, trim_fraction).or_else(|| median(valid))
            }
            Self::Mean => trimmed_mean(valid, 0.0),
            Self::Median => median(valid),
        }?;
        // Rounding can push a weighted average an ulp outside the data.
        Some(result.clamp(min, max))
    }
}

/// Why an [`Aggregation`] was rejected by [`Aggregation::validate`].
///
/// ```
/// use hotpath::{Aggregation, AggregationError};
///
/// let err = Aggregation::trimmed_mean(0.6).unwrap_err();
/// assert_eq!(err, AggregationError::InvalidTrimFraction(0.6));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Error)]
pub enum AggregationError {
    /// The trim fraction is NaN or outside `[0, 0.5)`.
    #[error("trim fraction must be in [0, 0.5), got {}", ShortFloat(*.0))]
    InvalidTrimFraction(f64),
}

/// Moves the samples with a finite value and a positive weight to the front,
/// sorts them by value and returns them.
fn partition_valid(values: &mut [(f64, u64)]) -> &mut [(f64, u64)] {
    let mut n = 0;
    for i in 0..values.len() {
        let (x, w) = values[i];
        if x.is_finite() && w > 0 {
            values.swap(n, i);
            n += 1;
        }
    }
    let valid = &mut values[..n];
    valid.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    valid
}

/// Weighted trimmed mean of sorted, valid samples; `trim` in `[0, 0.5)`.
/// `None` when no weight survives the trim.
fn trimmed_mean(sorted: &[(f64, u64)], trim: f64) -> Option<f64> {
    // Cumulative weights in u128 are exact; only the cut points are fractional.
    let total = sorted.iter().map(|&(_, w)| u128::from(w)).sum::<u128>() as f64;
    let lo = trim * total;
    let hi = total - lo;
    let span = hi - lo;
    let (mut cum, mut acc, mut kept_sum) = (0u128, 0.0, 0.0);
    for &(x, w) in sorted {
        let start = cum as f64;
        cum += u128::from(w);
        let kept = (cum as f64).min(hi) - start.max(lo);
        if kept > 0.0 {
            // Weights as fractions of the kept span (<= 1) keep x·f from overflowing.
            let f = kept / span;
            acc += x * f;
            kept_sum += f;
        }
    }
    (kept_sum > 0.0).then(|| acc / kept_sum)
}

/// Weighted median of sorted, valid samples; `None` if there are none.
fn median(sorted: &[(f64, u64)]) -> Option<f64> {
    let total: u128 = sorted.iter().map(|&(_, w)| u128::from(w)).sum();
    let mut cum = 0u128;
    for (i, &(x, w)) in sorted.iter().enumerate() {
        cum += u128::from(w);
        if 2 * cum >= total {
            return Some(match sorted.get(i + 1) {
                // Halving first avoids overflow; the clamp undoes subnormal rounding.
                Some(&(next, _)) if 2 * cum == total => (x / 2.0 + next / 2.0).clamp(x, next),
                _ => x,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn digest_validation_reports_each_problem() {
        let ok = TelemetryDigest::new(1_000, 2.0, 3).with_constraint_margin(0.0);
        assert_eq!(ok.validate(), Ok(()));
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let d = TelemetryDigest::new(1_000, bad, 3);
            assert!(matches!(
                d.validate(),
                Err(DigestError::NonFiniteObjective(v)) if v.to_bits() == bad.to_bits()
            ));
            let d = TelemetryDigest::new(1_000, 1.0, 3).with_constraint_margin(bad);
            assert!(matches!(
                d.validate(),
                Err(DigestError::NonFiniteConstraintMargin(_))
            ));
        }
        assert_eq!(
            TelemetryDigest::new(1_000, 1.0, 0).validate(),
            Err(DigestError::ZeroSampleCount)
        );
        // The objective is checked first.
        assert!(matches!(
            TelemetryDigest::new(1_000, f64::NAN, 0).validate(),
            Err(DigestError::NonFiniteObjective(_))
        ));
    }

    #[test]
    fn digest_serde_omits_absent_metadata_and_accepts_seed_form() {
        let d = TelemetryDigest::new(10, 1.5, 2);
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(
            json,
            r#"{"window_us":10,"objective_value":1.5,"sample_count":2}"#
        );
        assert_eq!(serde_json::from_str::<TelemetryDigest>(&json).unwrap(), d);

        let full = d
            .with_timestamp(5)
            .with_generation(6)
            .with_constraint_margin(0.25);
        let back: TelemetryDigest =
            serde_json::from_str(&serde_json::to_string(&full).unwrap()).unwrap();
        assert_eq!(back, full);
    }

    #[test]
    fn aggregation_serde_is_tagged() {
        let json = serde_json::to_string(&Aggregation::default()).unwrap();
        assert_eq!(json, r#"{"kind":"trimmed_mean","trim_fraction":0.1}"#);
        let median: Aggregation = serde_json::from_str(r#"{"kind":"median"}"#).unwrap();
        assert_eq!(median, Aggregation::Median);
    }

    #[test]
    fn trim_fraction_validation() {
        for ok in [0.0, 0.1, 0.49] {
            assert!(Aggregation::trimmed_mean(ok).is_ok());
        }
        for bad in [-0.01, 0.5, 1.0, f64::NAN, f64::INFINITY] {
            assert!(Aggregation::trimmed_mean(bad).is_err());
        }
    }

    #[test]
    fn weighted_mean_by_hand() {
        // (1·1 + 2·3 + 6·4) / 8 = 31 / 8
        let mut w = [(6.0, 4), (1.0, 1), (2.0, 3)];
        assert_eq!(Aggregation::Mean.aggregate(&mut w), Some(31.0 / 8.0));
    }

    #[test]
    fn weighted_trimmed_mean_cuts_fractional_weight() {
        // Sorted: 1.0 [0,1), 2.0 [1,4), 6.0 [4,8); W = 8, trim 0.25 cuts 2 each end.
        // Kept interval [2, 6): 2.0 keeps 2 (of 3), 6.0 keeps 2 (of 4), 1.0 none.
        // (2·2 + 6·2) / 4 = 4.0
        let mut w = [(6.0, 4), (1.0, 1), (2.0, 3)];
        let agg = Aggregation::TrimmedMean {
            trim_fraction: 0.25,
        };
        assert_eq!(agg.aggregate(&mut w), Some(4.0));

        // Default 10 % on five equal digests: cut 0.5 weight from each end.
        // (0.5·1 + 2 + 3 + 4 + 0.5·100) / 4 = 59.5 / 4
        let mut w = [(100.0, 1), (3.0, 1), (1.0, 1), (4.0, 1), (2.0, 1)];
        let got = Aggregation::default().aggregate(&mut w).unwrap();
        assert!(close(got, 59.5 / 4.0), "{got}");
    }

    #[test]
    fn trimmed_mean_near_half_tends_to_median() {
        let mut w = [(1.0, 1), (2.0, 1), (50.0, 1)];
        let agg = Aggregation::TrimmedMean {
            trim_fraction: 0.499_999,
        };
        let got = agg.aggregate(&mut w).unwrap();
        assert!((got - 2.0).abs() < 1e-9, "{got}");
    }

    #[test]
    fn weighted_median_by_hand_and_tie_rule() {
        // W = 8, half = 4: cumulative 1, 4 → exactly half at 2.0 → midpoint with 6.0.
        let mut w = [(6.0, 4), (1.0, 1), (2.0, 3)];
        assert_eq!(Aggregation::Median.aggregate(&mut w), Some(4.0));
        // W = 9: cumulative 1, 4, 9 → first past 4.5 is 6.0.
        let mut w = [(6.0, 5), (1.0, 1), (2.0, 3)];
        assert_eq!(Aggregation::Median.aggregate(&mut w), Some(6.0));
        // Unweighted odd count.
        let mut w = [(3.0, 1), (1.0, 1), (2.0, 1)];
        assert_eq!(Aggregation::Median.aggregate(&mut w), Some(2.0));
        // Single sample.
        assert_eq!(Aggregation::Median.aggregate(&mut [(7.0, 2)]), Some(7.0));
    }

    #[test]
    fn median_midpoint_of_extremes_does_not_overflow() {
        let mut w = [(f64::MAX, 1), (-f64::MAX, 1)];
        assert_eq!(Aggregation::Median.aggregate(&mut w), Some(0.0));
        let mut w = [(f64::MAX, 1), (f64::MAX, 1)];
        assert_eq!(Aggregation::Mean.aggregate(&mut w), Some(f64::MAX));
    }

    #[test]
    fn non_finite_and_zero_weight_samples_are_skipped() {
        let mut w = [
            (f64::NAN, 1),
            (f64::INFINITY, 1),
            (1.0, 1),
            (f64::NEG_INFINITY, 1),
            (3.0, 1),
            (1000.0, 0),
        ];
        assert_eq!(Aggregation::Mean.aggregate(&mut w), Some(2.0));
        // Valid samples now lead, sorted.
        assert_eq!(&w[..2], &[(1.0, 1), (3.0, 1)]);

        let mut only_bad = [(f64::NAN, 3), (5.0, 0)];
        assert_eq!(Aggregation::Median.aggregate(&mut only_bad), None);
        assert_eq!(Aggregation::default().aggregate(&mut []), None);
    }

    #[test]
    fn huge_weights_do_not_overflow() {
        let mut w = [(1.0, u64::MAX), (3.0, u64::MAX), (2.0, u64::MAX)];
        assert_eq!(Aggregation::Median.aggregate(&mut w), Some(2.0));
        let got = Aggregation::Mean.aggregate(&mut w).unwrap();
        assert!(close(got, 2.0), "{got}");
    }

    #[test]
    fn invalid_trim_is_clamped_at_aggregation_time() {
        let mut w = [(1.0, 1), (2.0, 1), (10.0, 1)];
        let t = |f| Aggregation::TrimmedMean { trim_fraction: f };
        assert_eq!(t(0.9).aggregate(&mut w), Some(2.0));
        assert_eq!(t(-3.0).aggregate(&mut w), Some(13.0 / 3.0));
        assert_eq!(
            t(f64::NAN).aggregate(&mut w),
            Aggregation::default().aggregate(&mut w)
        );
    }

    fn any_aggregation() -> impl Strategy<Value = Aggregation> {
        prop_oneof![
            Just(Aggregation::Median),
            Just(Aggregation::Mean),
            any::<f64>().prop_map(|trim_fraction| Aggregation::TrimmedMean { trim_fraction }),
            (0.0..0.5f64).prop_map(|trim_fraction| Aggregation::TrimmedMean { trim_fraction }),
        ]
    }

    fn any_sample() -> impl Strategy<Value = (f64, u64)> {
        let value = prop_oneof![
            4 => -1e6..1e6f64,
            2 => any::<f64>(),
            1 => Just(f64::NAN),
            1 => Just(f64::INFINITY),
            1 => Just(f64::NEG_INFINITY),
        ];
        let weight = prop_oneof![4 => 0..100u64, 1 => any::<u64>()];
        (value, weight)
    }

    proptest! {
        #[test]
        fn aggregate_never_panics_and_stays_in_range(
            aggregation in any_aggregation(),
            mut samples in proptest::collection::vec(any_sample(), 0..40),
        ) {
            let valid = samples.iter().filter(|(x, w)| x.is_finite() && *w > 0);
            let min = valid.clone().map(|s| s.0).fold(f64::INFINITY, f64::min);
            let max = valid.clone().map(|s| s.0).fold(f64::NEG_INFINITY, f64::max);
            let any_valid = valid.count() > 0;

            let got = aggregation.aggregate(&mut samples);
            match got {
                Some(r) => {
                    prop_assert!(any_valid);
                    prop_assert!(r.is_finite());
                    prop_assert!(min <= r && r <= max, "{} not in [{}, {}]", r, min, max);
                }
                None => prop_assert!(!any_valid),
            }
        }
    }
}
