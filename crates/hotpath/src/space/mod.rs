//! [`ParamSpace`]: the one table of what each parameter is.
//!
//! A knob's name, kind, bounds and range are defined here once, at set-up,
//! and shared (as an `Arc<ParamSpace>`) by everything that needs them: the
//! executor's rules measure every move as a fraction of [`range`], the
//! engine plans in the same units, and front ends (config files, the CLI,
//! the audit tools, typed reads) map names to indices through
//! [`index_of`] or a typed handle.
//!
//! The per-knob numbers the executor's one-pass check reads (range, its
//! inverse, bounds, bounds clamped to finite values) are derived once, when
//! the space is built, and stored as one contiguous array each, so a check
//! neither searches nor divides in the common case.
//!
//! * `knob.rs`: [`Knob`], [`KnobKind`], [`Scale`] and what can be wrong
//!   with a definition;
//! * `value.rs`: typed values and handles, for reads and reports;
//! * `geometry.rs`: moves measured in coordinates, for the engine.
//!
//! [`range`]: ParamSpace::range
//! [`index_of`]: ParamSpace::index_of

mod geometry;
mod knob;
mod value;

pub use knob::{Knob, KnobKind, KnobProblem, Scale, ValueProblem, MAX_EXACT_INT, MAX_OPTIONS};
pub use value::{ChoiceKnob, IntKnob, KnobHandle, KnobLookupError, NamedValues, RealKnob, Value};

use crate::error::ConfigError;
use crate::guardrails::Guardrails;
use crate::ParamVec;

/// The most knobs a space may have. Each costs the executor a few words
/// per array and a flip ring; a governed control loop over more than this
/// is not one loop.
pub const MAX_PARAMS: usize = 4096;

/// The knobs of a configuration, in index order, with the constants every
/// rule derives from them. Built once; shared by the
/// [`SafetyExecutor`](crate::SafetyExecutor) and the
/// [`AdaptiveEngine`](crate::AdaptiveEngine).
///
/// # Coordinates and units
///
/// Each knob has a *coordinate*: its value on a linear scale, the value's
/// natural logarithm on a log scale, the option's index for a choice. A
/// knob's [`range`](Self::range) is the width of its coordinate (`max −
/// min`, `ln(max / min)`, or 1 for an unbounded real), and every movement
/// rule of the executor is a fraction of it. [`to_unit`](Self::to_unit)
/// maps a value into `[0, 1]`, the optimiser's coordinates.
///
/// # Invariants (checked by [`new`](Self::new))
///
/// * at most [`MAX_PARAMS`] knobs; names non-empty and unique;
/// * every knob's definition and initial value valid (see
///   [`KnobProblem`]).
///
/// ```
/// use hotpath::{Knob, ParamSpace};
///
/// let space = ParamSpace::new(vec![
///     Knob::int("batch_size", 1, 512, 64),
///     Knob::real("linger_ms", 0.5, 50.0, 5.0).log(),
/// ])?;
/// assert_eq!(space.len(), 2);
/// assert_eq!(space.index_of("linger_ms"), Some(1));
/// assert_eq!(space.range(0), 511.0);
/// assert!((space.range(1) - 100f64.ln()).abs() < 1e-12);
/// # Ok::<(), hotpath::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpace {
    knobs: Box<[Knob]>,
    /// The coordinate's width, or 1 without bounds.
    range: Box<[f64]>,
    /// `1 / range`: move accounting multiplies.
    inv_range: Box<[f64]>,
    /// The coordinate of the lower bound (0 without bounds).
    coord_min: Box<[f64]>,
    /// The bounds as reported in `OutOfBounds` (±∞ without bounds).
    min: Box<[f64]>,
    max: Box<[f64]>,
    /// The bounds clamped to finite values: `lo ≤ v ≤ hi` alone also
    /// rejects NaN and ±∞, which no bound admits.
    lo: Box<[f64]>,
    hi: Box<[f64]>,
    /// Knobs on a log scale, knobs with a grid (integers and choices), and
    /// choices: the executor's one pass treats these apart.
    log: Box<[usize]>,
    grid: Box<[usize]>,
    choices: Box<[usize]>,
}

impl ParamSpace {
    /// Checks `knobs` (see the invariants above) and derives the constants.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidKnob`] naming the first offending index and
    /// what is wrong with it; [`ConfigError::TooManyParams`] beyond
    /// [`MAX_PARAMS`].
    ///
    /// ```
    /// use hotpath::{ConfigError, Knob, KnobProblem, ParamSpace};
    ///
    /// let twice = ParamSpace::new(vec![Knob::unbounded("a", 0.0), Knob::unbounded("a", 0.0)]);
    /// assert_eq!(
    ///     twice,
    ///     Err(ConfigError::InvalidKnob { index: 1, problem: KnobProblem::DuplicateName { first: 0 } })
    /// );
    /// ```
    pub fn new(knobs: Vec<Knob>) -> Result<Self, ConfigError> {
        if knobs.len() > MAX_PARAMS {
            return Err(ConfigError::TooManyParams {
                count: knobs.len(),
                limit: MAX_PARAMS,
            });
        }
        for (index, knob) in knobs.iter().enumerate() {
            let duplicate = knobs[..index].iter().position(|k| k.name == knob.name);
            let problem = knob
                .problem()
                .or(duplicate.map(|first| KnobProblem::DuplicateName { first }));
            if let Some(problem) = problem {
                return Err(ConfigError::InvalidKnob { index, problem });
            }
        }
        Ok(Self::derive(knobs))
    }

    /// `num_params` unbounded real knobs named `p0`, `p1`, … starting at 0:
    /// what [`Guardrails`] without `bounds` describe.
    ///
    /// ```
    /// use hotpath::ParamSpace;
    ///
    /// let space = ParamSpace::unbounded(3);
    /// assert_eq!((space.len(), space.name(2), space.range(2)), (3, "p2", 1.0));
    /// ```
    pub fn unbounded(num_params: usize) -> Self {
        let knobs = (0..num_params).map(|i| Knob::unbounded(format!("p{i}"), 0.0));
        Self::derive(knobs.collect())
    }

    /// The space [`Guardrails::bounds`] describes for a configuration
    /// starting at `initial`: real knobs named `p0`, `p1`, …, bounded as
    /// given, or unbounded when the guardrails have no bounds.
    ///
    /// # Errors
    ///
    /// [`ConfigError::BoundsLength`] if the bounds do not number
    /// `initial.len()`; [`ConfigError::InvalidKnob`] for a bad pair of
    /// bounds or an initial value outside them.
    ///
    /// ```
    /// use hotpath::{Guardrails, ParamSpace};
    ///
    /// let g = Guardrails::default().with_bounds(vec![(0.0, 10.0)]);
    /// let space = ParamSpace::from_guardrails(&g, &[5.0])?;
    /// assert_eq!((space.name(0), space.range(0)), ("p0", 10.0));
    /// assert_eq!(ParamSpace::from_guardrails(&Guardrails::default(), &[0.0, 0.0])?.range(1), 1.0);
    /// # Ok::<(), hotpath::ConfigError>(())
    /// ```
    pub fn from_guardrails(guardrails: &Guardrails, initial: &[f64]) -> Result<Self, ConfigError> {
        let knobs = match &guardrails.bounds {
            Some(bounds) if bounds.len() != initial.len() => {
                return Err(ConfigError::BoundsLength {
                    expected: initial.len(),
                    got: bounds.len(),
                })
            }
            Some(bounds) => bounds
                .iter()
                .zip(initial)
                .enumerate()
                .map(|(i, (&(min, max), &v))| Knob::real(format!("p{i}"), min, max, v))
                .collect(),
            None => initial
                .iter()
                .enumerate()
                .map(|(i, &v)| Knob::unbounded(format!("p{i}"), v))
                .collect(),
        };
        Self::new(knobs)
    }

    /// The derived columns of knobs already checked.
    fn derive(knobs: Vec<Knob>) -> Self {
        let bounds: Vec<Option<(f64, f64)>> = knobs.iter().map(Knob::bounds).collect();
        let is_log: Vec<bool> = knobs
            .iter()
            .map(|k| k.scale() == knob::Scale::Log)
            .collect();
        let coord = |i: usize, v: f64| if is_log[i] { v.ln() } else { v };
        let column = |f: &dyn Fn(usize, Option<(f64, f64)>) -> f64| {
            bounds
                .iter()
                .enumerate()
                .map(|(i, &b)| f(i, b))
                .collect::<Box<[f64]>>()
        };
        let range = column(&|i, b| b.map_or(1.0, |(min, max)| coord(i, max) - coord(i, min)));
        let indices = |keep: &dyn Fn(&Knob) -> bool| {
            (0..knobs.len())
                .filter(|&i| keep(&knobs[i]))
                .collect::<Box<[usize]>>()
        };
        let (neg, pos) = (f64::NEG_INFINITY, f64::INFINITY);
        Self {
            inv_range: range.iter().map(|r| 1.0 / r).collect(),
            range,
            coord_min: column(&|i, b| b.map_or(0.0, |(min, _)| coord(i, min))),
            min: column(&|_, b| b.map_or(neg, |(min, _)| min)),
            max: column(&|_, b| b.map_or(pos, |(_, max)| max)),
            lo: column(&|_, b| b.map_or(neg, |(min, _)| min).max(f64::MIN)),
            hi: column(&|_, b| b.map_or(pos, |(_, max)| max).min(f64::MAX)),
            log: indices(&|k| k.scale() == knob::Scale::Log),
            grid: indices(&|k| k.grid_step().is_some()),
            choices: indices(&|k| matches!(k.kind, KnobKind::Choice { .. })),
            knobs: knobs.into_boxed_slice(),
        }
    }

    /// Number of knobs.
    ///
    /// ```
    /// use hotpath::ParamSpace;
    ///
    /// assert_eq!(ParamSpace::unbounded(4).len(), 4);
    /// ```
    pub fn len(&self) -> usize {
        self.knobs.len()
    }

    /// `true` for a space of no knobs.
    ///
    /// ```
    /// use hotpath::ParamSpace;
    ///
    /// assert!(ParamSpace::unbounded(0).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.knobs.is_empty()
    }

    /// The knobs, in index order.
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

    /// Knob `index`'s name (empty past the end).
    ///
    /// ```
    /// use hotpath::{Knob, ParamSpace};
    ///
    /// let space = ParamSpace::new(vec![Knob::int("batch", 1, 64, 8)])?;
    /// assert_eq!((space.name(0), space.name(9)), ("batch", ""));
    /// # Ok::<(), hotpath::ConfigError>(())
    /// ```
    pub fn name(&self, index: usize) -> &str {
        self.knobs.get(index).map_or("", |k| k.name.as_str())
    }

    /// The index of the knob called `name`.
    ///
    /// ```
    /// use hotpath::{Knob, ParamSpace};
    ///
    /// let space = ParamSpace::new(vec![Knob::unbounded("a", 0.0), Knob::unbounded("b", 0.0)])?;
    /// assert_eq!((space.index_of("b"), space.index_of("c")), (Some(1), None));
    /// # Ok::<(), hotpath::ConfigError>(())
    /// ```
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.knobs.iter().position(|k| k.name == name)
    }

    /// The initial values, in the live encoding.
    ///
    /// ```
    /// use hotpath::{Knob, ParamSpace};
    ///
    /// let space = ParamSpace::new(vec![Knob::int("n", 1, 9, 3), Knob::choice("c", ["x", "y"], "y")])?;
    /// assert_eq!(&space.initial()[..], &[3.0, 1.0]);
    /// # Ok::<(), hotpath::ConfigError>(())
    /// ```
    pub fn initial(&self) -> ParamVec {
        self.knobs.iter().map(|k| k.initial).collect()
    }

    /// Knob `index`'s range: the width of its coordinate (see the type's
    /// docs), or 1 without bounds (and past the end). Every movement limit
    /// is a fraction of it.
    ///
    /// ```
    /// use hotpath::{Knob, ParamSpace};
    ///
    /// let space = ParamSpace::new(vec![
    ///     Knob::real("batch", 16.0, 1024.0, 64.0),
    ///     Knob::real("ttl", 1.0, 1000.0, 10.0).log(),
    ///     Knob::unbounded("g", 0.0),
    /// ])?;
    /// assert_eq!((space.range(0), space.range(2)), (1008.0, 1.0));
    /// assert!((space.range(1) - 1000f64.ln()).abs() < 1e-12);
    /// # Ok::<(), hotpath::ConfigError>(())
    /// ```
    pub fn range(&self, index: usize) -> f64 {
        self.range.get(index).copied().unwrap_or(1.0)
    }

    /// Knob `index`'s bounds in the live encoding, `(−∞, +∞)` without
    /// bounds (and past the end).
    ///
    /// ```
    /// use hotpath::{Knob, ParamSpace};
    ///
    /// let space = ParamSpace::new(vec![Knob::real("batch", 16.0, 1024.0, 64.0), Knob::unbounded("g", 0.0)])?;
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

    /// `true` if `value` is a value of knob `index`: finite, within its
    /// bounds and on its grid.
    ///
    /// ```
    /// use hotpath::{Knob, ParamSpace};
    ///
    /// let space = ParamSpace::new(vec![Knob::int("batch", 16, 1024, 64).step(16)])?;
    /// assert!(space.admits(0, 32.0));
    /// assert!(!space.admits(0, 33.0) && !space.admits(0, 15.0) && !space.admits(0, f64::NAN));
    /// # Ok::<(), hotpath::ConfigError>(())
    /// ```
    pub fn admits(&self, index: usize, value: f64) -> bool {
        self.value_problem(index, value).is_none()
    }

    /// Why `value` is not a value of knob `index` (or of no knob, past the
    /// end), if it is not.
    ///
    /// ```
    /// use hotpath::{Knob, ParamSpace, ValueProblem};
    ///
    /// let space = ParamSpace::new(vec![Knob::int("workers", 1, 64, 8)])?;
    /// assert_eq!(space.value_problem(0, 12.5), Some(ValueProblem::OffGrid));
    /// assert_eq!(space.value_problem(0, 65.0), Some(ValueProblem::OutOfBounds));
    /// # Ok::<(), hotpath::ConfigError>(())
    /// ```
    pub fn value_problem(&self, index: usize, value: f64) -> Option<ValueProblem> {
        match self.knobs.get(index) {
            Some(knob) => knob.value_problem(value),
            None => Some(ValueProblem::OutOfBounds),
        }
    }

    /// The bounds in [`Guardrails::bounds`]'s form: `Some` when every knob
    /// is bounded.
    ///
    /// ```
    /// use hotpath::{Knob, ParamSpace};
    ///
    /// let bounded = ParamSpace::new(vec![Knob::real("batch", 16.0, 1024.0, 64.0)])?;
    /// assert_eq!(bounded.guardrail_bounds(), Some(vec![(16.0, 1024.0)]));
    /// assert_eq!(ParamSpace::unbounded(1).guardrail_bounds(), None);
    /// # Ok::<(), hotpath::ConfigError>(())
    /// ```
    pub fn guardrail_bounds(&self) -> Option<Vec<(f64, f64)>> {
        self.knobs.iter().map(Knob::bounds).collect()
    }

    /// `value` of knob `index` in the optimiser's unit coordinates: `[0, 1]`
    /// across the bounds (on a log scale, in the logarithm), the value
    /// itself for an unbounded real.
    ///
    /// ```
    /// use hotpath::{Knob, ParamSpace};
    ///
    /// let space = ParamSpace::new(vec![Knob::real("ttl", 1.0, 10_000.0, 100.0).log()])?;
    /// assert!((space.to_unit(0, 100.0) - 0.5).abs() < 1e-12); // two decades of four
    /// # Ok::<(), hotpath::ConfigError>(())
    /// ```
    pub fn to_unit(&self, index: usize, value: f64) -> f64 {
        (self.coord(index, value) - self.coord_min(index)) * self.inv_range(index)
    }

    /// The inverse of [`to_unit`](Self::to_unit), not snapped to a grid
    /// (see [`snap`](Self::snap)).
    ///
    /// ```
    /// use hotpath::{Knob, ParamSpace};
    ///
    /// let space = ParamSpace::new(vec![Knob::real("ttl", 1.0, 10_000.0, 100.0).log()])?;
    /// assert!((space.from_unit(0, 0.75) - 1000.0).abs() < 1e-9);
    /// # Ok::<(), hotpath::ConfigError>(())
    /// ```
    pub fn from_unit(&self, index: usize, unit: f64) -> f64 {
        self.value_of_coord(index, self.coord_min(index) + unit * self.range(index))
    }

    /// The value of knob `index` nearest to `value`: clamped into the
    /// bounds and, for an integer or a choice, rounded to the grid (the
    /// nearest grid value in coordinates, so on a log scale rounding is by
    /// ratio). A real knob's value is only clamped. NaN gives the lower
    /// bound (0 for an unbounded real).
    ///
    /// ```
    /// use hotpath::{Knob, ParamSpace};
    ///
    /// let space = ParamSpace::new(vec![Knob::int("batch", 8, 512, 64).step(8)])?;
    /// assert_eq!((space.snap(0, 29.0), space.snap(0, 3.0), space.snap(0, 9e9)), (32.0, 8.0, 512.0));
    /// # Ok::<(), hotpath::ConfigError>(())
    /// ```
    pub fn snap(&self, index: usize, value: f64) -> f64 {
        let Some(knob) = self.knobs.get(index) else {
            return value;
        };
        let (min, max) = self.bounds(index);
        if value.is_nan() {
            return if min.is_finite() { min } else { 0.0 };
        }
        let clamped = value.clamp(min, max);
        let Some(step) = knob.grid_step() else {
            return clamped;
        };
        let last = min + ((max - min) / step).floor() * step;
        let below = (min + ((clamped - min) / step).floor() * step).min(last);
        let above = (below + step).min(last);
        let nearer = |a: f64, b: f64| {
            let (ua, ub) = (self.coord(index, a), self.coord(index, b));
            let u = self.coord(index, clamped);
            if (u - ua).abs() <= (ub - u).abs() {
                a
            } else {
                b
            }
        };
        nearer(below, above)
    }

    /// The typed value of knob `index` for `value` in the live encoding.
    ///
    /// ```
    /// use hotpath::{Knob, ParamSpace, Value};
    ///
    /// let space = ParamSpace::new(vec![Knob::int("n", 1, 9, 3), Knob::choice("c", ["lz4", "zstd"], "zstd")])?;
    /// assert_eq!(space.value(0, 3.0), Value::Int(3));
    /// assert_eq!(space.value(1, 1.0), Value::Choice("zstd"));
    /// # Ok::<(), hotpath::ConfigError>(())
    /// ```
    pub fn value(&self, index: usize, value: f64) -> Value<'_> {
        match self.knobs.get(index).map(|k| &k.kind) {
            Some(KnobKind::Int { .. }) => Value::Int(value as i64),
            Some(KnobKind::Choice { options }) => match options.get(value as usize) {
                Some(option) if value >= 0.0 => Value::Choice(option),
                _ => Value::Real(value),
            },
            _ => Value::Real(value),
        }
    }

    /// Every knob's name and typed value, for reports: serialises as a map
    /// `{name: value}` (integers as integers, choices as their option).
    ///
    /// ```
    /// use hotpath::{Knob, ParamSpace};
    ///
    /// let space = ParamSpace::new(vec![Knob::int("batch", 1, 512, 64), Knob::choice("codec", ["lz4", "zstd"], "lz4")])?;
    /// assert_eq!(space.named(&[48.0, 1.0]).to_string(), "batch=48 codec=zstd");
    /// # Ok::<(), hotpath::ConfigError>(())
    /// ```
    pub fn named<'a>(&'a self, values: &'a [f64]) -> NamedValues<'a> {
        NamedValues::new(self, values)
    }

    /// The live encoding of a typed value for knob `index` (an option's
    /// index for a choice given by name).
    ///
    /// # Errors
    ///
    /// The [`ValueProblem`] if it is not one of the knob's values (a name
    /// that is not an option is `OutOfBounds`).
    ///
    /// ```
    /// use hotpath::{Knob, ParamSpace, Value, ValueProblem};
    ///
    /// let space = ParamSpace::new(vec![Knob::choice("codec", ["lz4", "zstd"], "lz4")])?;
    /// assert_eq!(space.encode(0, Value::Choice("zstd")), Ok(1.0));
    /// assert_eq!(space.encode(0, Value::Choice("gzip")), Err(ValueProblem::OutOfBounds));
    /// # Ok::<(), hotpath::ConfigError>(())
    /// ```
    pub fn encode(&self, index: usize, value: Value<'_>) -> Result<f64, ValueProblem> {
        let raw = match (self.knobs.get(index).map(|k| &k.kind), value) {
            (Some(KnobKind::Choice { options }), Value::Choice(name)) => options
                .iter()
                .position(|o| o == name)
                .map_or(f64::NAN, |i| i as f64),
            (_, Value::Choice(_)) => f64::NAN,
            (_, Value::Int(i)) => i as f64,
            (_, Value::Real(v)) => v,
        };
        match self.value_problem(index, raw) {
            Some(problem) => Err(problem),
            None => Ok(raw),
        }
    }

    /// The first index whose value is not a value of its knob (not finite,
    /// out of bounds or off the grid), for a vector of this space's length.
    pub(crate) fn first_invalid(&self, values: &[f64]) -> Option<(usize, ValueProblem)> {
        (0..self.len()).find_map(|i| {
            let value = values.get(i).copied().unwrap_or(f64::NAN);
            self.value_problem(i, value).map(|p| (i, p))
        })
    }

    /// A value's coordinate: itself, or its logarithm on a log scale.
    #[inline]
    pub(crate) fn coord(&self, index: usize, value: f64) -> f64 {
        if self.is_log(index) {
            value.ln()
        } else {
            value
        }
    }

    /// The inverse of [`coord`](Self::coord).
    #[inline]
    pub(crate) fn value_of_coord(&self, index: usize, coord: f64) -> f64 {
        if self.is_log(index) {
            coord.exp()
        } else {
            coord
        }
    }

    fn is_log(&self, index: usize) -> bool {
        self.knobs
            .get(index)
            .is_some_and(|k| k.scale() == knob::Scale::Log)
    }

    fn coord_min(&self, index: usize) -> f64 {
        self.coord_min.get(index).copied().unwrap_or(0.0)
    }

    fn inv_range(&self, index: usize) -> f64 {
        self.inv_range.get(index).copied().unwrap_or(1.0)
    }

    /// The distance between two grid values of knob `index` (1 for a
    /// choice), or `None` for a real knob.
    pub(crate) fn grid_step(&self, index: usize) -> Option<f64> {
        self.knobs.get(index).and_then(Knob::grid_step)
    }

    /// `true` if every knob is a real on a linear scale: the executor's one
    /// pass then needs nothing else.
    pub(crate) fn is_plain(&self) -> bool {
        self.log.is_empty() && self.grid.is_empty()
    }

    /// Knobs on a log scale.
    pub(crate) fn log_indices(&self) -> &[usize] {
        &self.log
    }

    /// Knobs with a grid (integers and choices).
    pub(crate) fn grid_indices(&self) -> &[usize] {
        &self.grid
    }

    /// Choice knobs.
    pub(crate) fn choice_indices(&self) -> &[usize] {
        &self.choices
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
mod tests;
