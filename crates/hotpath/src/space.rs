//! [`ParamSpace`]: the one table of what each parameter is.
//!
//! A parameter's name, bounds and range are defined here once, at set-up,
//! and shared (as an `Arc<ParamSpace>`) by everything that needs them: the
//! executor's rules measure every move as a fraction of [`range`], the
//! engine plans in the same units, and front ends (config files, the CLI,
//! the audit tools) map names to indices through [`index_of`].
//!
//! The per-parameter numbers the executor's one-pass check reads (range,
//! its inverse, bounds, bounds clamped to finite values) are derived once,
//! when the space is built, and stored as one contiguous array each, so a
//! check neither searches nor divides in the common case.
//!
//! [`range`]: ParamSpace::range
//! [`index_of`]: ParamSpace::index_of

use crate::error::ConfigError;
use crate::guardrails::Guardrails;

/// One tunable parameter: its name and, if it has them, its bounds.
///
/// ```
/// use hotpath::Knob;
///
/// let batch = Knob::bounded("batch_size", 1.0, 512.0);
/// assert_eq!(batch.name(), "batch_size");
/// assert_eq!(batch.bounds(), Some((1.0, 512.0)));
/// assert_eq!(Knob::unbounded("gain").bounds(), None);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Knob {
    name: String,
    bounds: Option<(f64, f64)>,
}

impl Knob {
    /// A parameter confined to `[min, max]`; its range is `max − min`.
    /// Checked when the [`ParamSpace`] is built.
    ///
    /// ```
    /// use hotpath::{Knob, ParamSpace};
    ///
    /// let space = ParamSpace::new(vec![Knob::bounded("ttl_s", 1.0, 3600.0)])?;
    /// assert_eq!(space.range(0), 3599.0);
    /// # Ok::<(), hotpath::ConfigError>(())
    /// ```
    pub fn bounded(name: impl Into<String>, min: f64, max: f64) -> Self {
        Self {
            name: name.into(),
            bounds: Some((min, max)),
        }
    }

    /// A parameter without bounds; movement limits take its range as 1.
    ///
    /// ```
    /// use hotpath::{Knob, ParamSpace};
    ///
    /// let space = ParamSpace::new(vec![Knob::unbounded("gain")])?;
    /// assert_eq!(space.range(0), 1.0); // limits are fractions of 1
    /// # Ok::<(), hotpath::ConfigError>(())
    /// ```
    pub fn unbounded(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            bounds: None,
        }
    }

    /// Its name.
    ///
    /// ```
    /// use hotpath::Knob;
    ///
    /// assert_eq!(Knob::unbounded("gain").name(), "gain");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its bounds, if it has them.
    ///
    /// ```
    /// use hotpath::Knob;
    ///
    /// assert_eq!(Knob::bounded("ttl_s", 1.0, 3600.0).bounds(), Some((1.0, 3600.0)));
    /// ```
    pub fn bounds(&self) -> Option<(f64, f64)> {
        self.bounds
    }
}

/// The parameters of a configuration, in index order, with the constants
/// every rule derives from them. Built once; shared by the
/// [`SafetyExecutor`](crate::SafetyExecutor) and the
/// [`AdaptiveEngine`](crate::AdaptiveEngine).
///
/// # Invariants (checked by [`new`](Self::new))
///
/// * names are non-empty and unique;
/// * bounds are finite with `min < max` and a finite width `max − min`.
///
/// ```
/// use hotpath::{Knob, ParamSpace};
///
/// let space = ParamSpace::new(vec![
///     Knob::bounded("batch_size", 1.0, 512.0),
///     Knob::bounded("linger_ms", 0.5, 50.0),
/// ])?;
/// assert_eq!(space.len(), 2);
/// assert_eq!(space.index_of("linger_ms"), Some(1));
/// assert_eq!(space.range(0), 511.0);
/// assert_eq!(space.bounds(1), (0.5, 50.0));
/// # Ok::<(), hotpath::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpace {
    knobs: Box<[Knob]>,
    /// The bounds' width, or 1 without bounds.
    range: Box<[f64]>,
    /// `1 / range`: move accounting multiplies.
    inv_range: Box<[f64]>,
    /// The bounds as reported in `OutOfBounds` (±∞ without bounds).
    min: Box<[f64]>,
    max: Box<[f64]>,
    /// The bounds clamped to finite values: `lo ≤ v ≤ hi` alone also
    /// rejects NaN and ±∞, which no bound admits.
    lo: Box<[f64]>,
    hi: Box<[f64]>,
}

impl ParamSpace {
    /// Checks `knobs` (see the invariants above) and derives the constants.
    ///
    /// # Errors
    ///
    /// [`ConfigError::EmptyName`], [`ConfigError::DuplicateName`] or
    /// [`ConfigError::InvalidBounds`], naming the first offending index.
    ///
    /// ```
    /// use hotpath::{ConfigError, Knob, ParamSpace};
    ///
    /// let twice = ParamSpace::new(vec![Knob::unbounded("a"), Knob::unbounded("a")]);
    /// assert_eq!(twice, Err(ConfigError::DuplicateName { index: 1, first: 0 }));
    /// ```
    pub fn new(knobs: Vec<Knob>) -> Result<Self, ConfigError> {
        for (index, knob) in knobs.iter().enumerate() {
            if knob.name.is_empty() {
                return Err(ConfigError::EmptyName { index });
            }
            if let Some(first) = knobs[..index].iter().position(|k| k.name == knob.name) {
                return Err(ConfigError::DuplicateName { index, first });
            }
            if let Some((min, max)) = knob.bounds {
                if !valid_bounds(min, max) {
                    return Err(ConfigError::InvalidBounds { index, min, max });
                }
            }
        }
        Ok(Self::derive(knobs))
    }

    /// The derived columns of knobs already checked.
    fn derive(knobs: Vec<Knob>) -> Self {
        let column = |f: &dyn Fn(Option<(f64, f64)>) -> f64| {
            knobs.iter().map(|k| f(k.bounds)).collect::<Box<[f64]>>()
        };
        let (neg, pos) = (f64::NEG_INFINITY, f64::INFINITY);
        Self {
            range: column(&|b| b.map_or(1.0, |(min, max)| max - min)),
            inv_range: column(&|b| 1.0 / b.map_or(1.0, |(min, max)| max - min)),
            min: column(&|b| b.map_or(neg, |(min, _)| min)),
            max: column(&|b| b.map_or(pos, |(_, max)| max)),
            lo: column(&|b| b.map_or(neg, |(min, _)| min).max(f64::MIN)),
            hi: column(&|b| b.map_or(pos, |(_, max)| max).min(f64::MAX)),
            knobs: knobs.into_boxed_slice(),
        }
    }

    /// `num_params` unbounded parameters named `p0`, `p1`, …: what
    /// [`Guardrails`] without `bounds` describe.
    ///
    /// ```
    /// use hotpath::ParamSpace;
    ///
    /// let space = ParamSpace::unbounded(3);
    /// assert_eq!((space.len(), space.name(2), space.range(2)), (3, "p2", 1.0));
    /// ```
    pub fn unbounded(num_params: usize) -> Self {
        let knobs = (0..num_params).map(|i| Knob::unbounded(format!("p{i}")));
        Self::derive(knobs.collect())
    }

    /// The space [`Guardrails::bounds`] describes for `num_params`
    /// parameters, named `p0`, `p1`, …: bounded as given, or unbounded
    /// when the guardrails have no bounds.
    ///
    /// # Errors
    ///
    /// [`ConfigError::BoundsLength`] if the bounds do not number
    /// `num_params`; [`ConfigError::InvalidBounds`] for a bad pair.
    ///
    /// ```
    /// use hotpath::{Guardrails, ParamSpace};
    ///
    /// let g = Guardrails::default().with_bounds(vec![(0.0, 10.0)]);
    /// let space = ParamSpace::from_guardrails(&g, 1)?;
    /// assert_eq!((space.name(0), space.range(0)), ("p0", 10.0));
    /// assert_eq!(ParamSpace::from_guardrails(&Guardrails::default(), 2)?.range(1), 1.0);
    /// # Ok::<(), hotpath::ConfigError>(())
    /// ```
    pub fn from_guardrails(
        guardrails: &Guardrails,
        num_params: usize,
    ) -> Result<Self, ConfigError> {
        let knobs = match &guardrails.bounds {
            Some(bounds) if bounds.len() != num_params => {
                return Err(ConfigError::BoundsLength {
                    expected: num_params,
                    got: bounds.len(),
                })
            }
            Some(bounds) => bounds
                .iter()
                .enumerate()
                .map(|(i, &(min, max))| Knob::bounded(format!("p{i}"), min, max))
                .collect(),
            None => return Ok(Self::unbounded(num_params)),
        };
        Self::new(knobs)
    }

    /// Number of parameters.
    ///
    /// ```
    /// use hotpath::ParamSpace;
    ///
    /// assert_eq!(ParamSpace::unbounded(4).len(), 4);
    /// ```
    pub fn len(&self) -> usize {
        self.knobs.len()
    }

    /// `true` for a space of no parameters.
    ///
    /// ```
    /// use hotpath::ParamSpace;
    ///
    /// assert!(ParamSpace::unbounded(0).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.knobs.is_empty()
    }

    /// The parameters, in index order.
    ///
    /// ```
    /// use hotpath::ParamSpace;
    ///
    /// let space = ParamSpace::unbounded(2);
    /// let names: Vec<&str> = space.knobs().iter().map(|k| k.name()).collect();
    /// assert_eq!(names, ["p0", "p1"]);
    /// ```
    pub fn knobs(&self) -> &[Knob] {
        &self.knobs
    }

    /// Parameter `index`'s name (empty past the end).
    ///
    /// ```
    /// use hotpath::{Knob, ParamSpace};
    ///
    /// let space = ParamSpace::new(vec![Knob::bounded("batch", 1.0, 64.0)])?;
    /// assert_eq!((space.name(0), space.name(9)), ("batch", ""));
    /// # Ok::<(), hotpath::ConfigError>(())
    /// ```
    pub fn name(&self, index: usize) -> &str {
        self.knobs.get(index).map_or("", |k| k.name.as_str())
    }

    /// The index of the parameter called `name`.
    ///
    /// ```
    /// use hotpath::{Knob, ParamSpace};
    ///
    /// let space = ParamSpace::new(vec![Knob::unbounded("a"), Knob::unbounded("b")])?;
    /// assert_eq!((space.index_of("b"), space.index_of("c")), (Some(1), None));
    /// # Ok::<(), hotpath::ConfigError>(())
    /// ```
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.knobs.iter().position(|k| k.name == name)
    }

    /// Parameter `index`'s range: its bounds' width, or 1 without bounds
    /// (and past the end). Every movement limit is a fraction of it.
    ///
    /// ```
    /// use hotpath::{Knob, ParamSpace};
    ///
    /// let space = ParamSpace::new(vec![Knob::bounded("batch", 16.0, 1024.0), Knob::unbounded("g")])?;
    /// assert_eq!((space.range(0), space.range(1)), (1008.0, 1.0));
    /// # Ok::<(), hotpath::ConfigError>(())
    /// ```
    pub fn range(&self, index: usize) -> f64 {
        self.range.get(index).copied().unwrap_or(1.0)
    }

    /// Parameter `index`'s bounds, `(−∞, +∞)` without bounds (and past the
    /// end).
    ///
    /// ```
    /// use hotpath::{Knob, ParamSpace};
    ///
    /// let space = ParamSpace::new(vec![Knob::bounded("batch", 16.0, 1024.0), Knob::unbounded("g")])?;
    /// assert_eq!(space.bounds(0), (16.0, 1024.0));
    /// assert_eq!(space.bounds(1), (f64::NEG_INFINITY, f64::INFINITY));
    /// # Ok::<(), hotpath::ConfigError>(())
    /// ```
    pub fn bounds(&self, index: usize) -> (f64, f64) {
        match (self.min.get(index), self.max.get(index)) {
            (Some(&min), Some(&max)) => (min, max),
            _ => (f64::NEG_INFINITY, f64::INFINITY),
        }
    }

    /// `true` if `value` is finite and within parameter `index`'s bounds.
    ///
    /// ```
    /// use hotpath::{Knob, ParamSpace};
    ///
    /// let space = ParamSpace::new(vec![Knob::bounded("batch", 16.0, 1024.0)])?;
    /// assert!(space.admits(0, 16.0) && !space.admits(0, 15.9) && !space.admits(0, f64::NAN));
    /// # Ok::<(), hotpath::ConfigError>(())
    /// ```
    pub fn admits(&self, index: usize, value: f64) -> bool {
        let (min, max) = self.bounds(index);
        value.is_finite() && value >= min && value <= max
    }

    /// The bounds in [`Guardrails::bounds`]'s form: `Some` when every
    /// parameter is bounded.
    ///
    /// ```
    /// use hotpath::{Knob, ParamSpace};
    ///
    /// let bounded = ParamSpace::new(vec![Knob::bounded("batch", 16.0, 1024.0)])?;
    /// assert_eq!(bounded.guardrail_bounds(), Some(vec![(16.0, 1024.0)]));
    /// assert_eq!(ParamSpace::unbounded(1).guardrail_bounds(), None);
    /// # Ok::<(), hotpath::ConfigError>(())
    /// ```
    pub fn guardrail_bounds(&self) -> Option<Vec<(f64, f64)>> {
        self.knobs.iter().map(|k| k.bounds).collect()
    }

    /// The first index whose value is not finite or outside its bounds,
    /// for a vector of this space's length.
    pub(crate) fn first_outside(&self, values: &[f64]) -> Option<usize> {
        (0..self.len()).find(|&i| !self.admits(i, values.get(i).copied().unwrap_or(f64::NAN)))
    }

    pub(crate) fn ranges(&self) -> &[f64] {
        &self.range
    }

    pub(crate) fn inv_ranges(&self) -> &[f64] {
        &self.inv_range
    }

    /// The lower bounds clamped to finite values.
    pub(crate) fn finite_lows(&self) -> &[f64] {
        &self.lo
    }

    /// The upper bounds clamped to finite values.
    pub(crate) fn finite_highs(&self) -> &[f64] {
        &self.hi
    }
}

/// Finite bounds with `min < max` and a width that is itself finite (so
/// `(f64::MIN, f64::MAX)`, whose width overflows, is refused).
pub(crate) fn valid_bounds(min: f64, max: f64) -> bool {
    min.is_finite() && max.is_finite() && min < max && (max - min).is_finite()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_columns_match_the_bounds() {
        let space =
            ParamSpace::new(vec![Knob::bounded("a", -2.0, 6.0), Knob::unbounded("b")]).unwrap();
        assert_eq!(space.ranges(), &[8.0, 1.0]);
        assert_eq!(space.inv_ranges(), &[0.125, 1.0]);
        assert_eq!(space.bounds(1), (f64::NEG_INFINITY, f64::INFINITY));
        assert_eq!(space.finite_lows(), &[-2.0, f64::MIN]);
        assert_eq!(space.finite_highs(), &[6.0, f64::MAX]);
        assert_eq!(space.guardrail_bounds(), None);
        assert_eq!(space.first_outside(&[7.0, 0.0]), Some(0));
        assert_eq!(space.first_outside(&[6.0, f64::NAN]), Some(1));
        assert_eq!(space.first_outside(&[6.0, 1e300]), None);
    }

    #[test]
    fn each_bad_knob_is_named() {
        let cases = [
            (
                vec![Knob::unbounded("")],
                ConfigError::EmptyName { index: 0 },
            ),
            (
                vec![Knob::bounded("a", 0.0, 1.0), Knob::bounded("b", 1.0, 1.0)],
                ConfigError::InvalidBounds {
                    index: 1,
                    min: 1.0,
                    max: 1.0,
                },
            ),
            (
                vec![Knob::bounded("a", f64::MIN, f64::MAX)],
                ConfigError::InvalidBounds {
                    index: 0,
                    min: f64::MIN,
                    max: f64::MAX,
                },
            ),
        ];
        for (knobs, expected) in cases {
            assert_eq!(ParamSpace::new(knobs), Err(expected));
        }
        let nan = ParamSpace::new(vec![Knob::bounded("a", f64::NAN, 1.0)]);
        assert!(matches!(
            nan,
            Err(ConfigError::InvalidBounds { index: 0, .. })
        ));
    }

    #[test]
    fn guardrail_bounds_round_trip() {
        let g = Guardrails::default().with_bounds(vec![(1.0, 2.0), (3.0, 5.0)]);
        let space = ParamSpace::from_guardrails(&g, 2).unwrap();
        assert_eq!(space.guardrail_bounds(), g.bounds);
        assert_eq!(
            ParamSpace::from_guardrails(&g, 3),
            Err(ConfigError::BoundsLength {
                expected: 3,
                got: 2
            })
        );
    }
}
