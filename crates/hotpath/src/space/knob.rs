//! [`Knob`]: one tunable parameter — its name, its kind and where it
//! starts — and the problems a knob's definition can have.

use crate::short_float::ShortFloat;
use serde::{Deserialize, Serialize};

/// Integers up to this magnitude are exact in an `f64` (2⁵³): integer knobs
/// are limited to it, so a live value is always the integer it stands for.
pub const MAX_EXACT_INT: i64 = 1 << 53;

/// The most options a choice knob may have. A choice is searched by
/// trying options one at a time under the executor's rate and flip rules;
/// far more than this could never all be tried.
pub const MAX_OPTIONS: usize = 256;

/// How a numeric knob is searched and how far a move of it counts.
///
/// On a `Linear` scale a move's size is `|Δvalue| / (max − min)`; on a
/// `Log` scale it is `|Δ ln value| / ln(max / min)`, so a 10 % step of a
/// TTL bounded to `[1 s, 1 h]` multiplies it by at most `3600^0.1 ≈ 2.3`
/// wherever it is. `Log` needs `min > 0`.
///
/// ```
/// use hotpath::{Knob, Scale};
///
/// let ttl = Knob::real("ttl_s", 1.0, 3600.0, 60.0).log();
/// assert!(matches!(ttl.kind(), hotpath::KnobKind::Real { scale: Scale::Log, .. }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    /// Moves measured in the value itself.
    #[default]
    Linear,
    /// Moves measured in the value's logarithm.
    Log,
}

/// What values a knob takes. The live configuration holds every kind as an
/// `f64`: reals as themselves, integers as exact integers, choices as the
/// index of the option.
///
/// ```
/// use hotpath::{Knob, KnobKind, Scale};
///
/// let workers = Knob::int("workers", 1, 64, 8);
/// assert_eq!(
///     workers.kind(),
///     &KnobKind::Int { min: 1, max: 64, step: 1, scale: Scale::Linear }
/// );
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum KnobKind {
    /// A real number in `[min, max]`. Both bounds infinite (linear scale
    /// only) makes an unbounded knob, whose moves are measured against a
    /// range of 1.
    Real {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
        /// How moves are measured.
        scale: Scale,
    },
    /// An integer `min + k·step` (k ≥ 0) no greater than `max`.
    Int {
        /// Lower bound, the first value of the grid.
        min: i64,
        /// Upper bound.
        max: i64,
        /// Distance between two values of the grid, ≥ 1.
        step: i64,
        /// How moves are measured.
        scale: Scale,
    },
    /// One of a list of named options, held as its index.
    Choice {
        /// The options, in index order.
        options: Vec<String>,
    },
}

/// One tunable parameter: a name, a [`KnobKind`] and an initial value (in
/// the live encoding: see [`KnobKind`]). Checked when the
/// [`ParamSpace`](crate::ParamSpace) is built.
///
/// ```
/// use hotpath::{Knob, ParamSpace};
///
/// let space = ParamSpace::new(vec![
///     Knob::int("batch_size", 1, 512, 64),
///     Knob::real("linger_ms", 0.1, 100.0, 5.0).log(),
///     Knob::choice("codec", ["none", "lz4", "zstd"], "lz4"),
/// ])?;
/// assert_eq!(&space.initial()[..], &[64.0, 5.0, 1.0]);
/// # Ok::<(), hotpath::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Knob {
    pub(super) name: String,
    pub(super) kind: KnobKind,
    pub(super) initial: f64,
}

impl Knob {
    /// A real knob in `[min, max]` on a linear scale, starting at
    /// `initial`.
    ///
    /// ```
    /// use hotpath::Knob;
    ///
    /// assert_eq!(Knob::real("ratio", 0.0, 1.0, 0.5).initial(), 0.5);
    /// ```
    pub fn real(name: impl Into<String>, min: f64, max: f64, initial: f64) -> Self {
        let scale = Scale::Linear;
        Self::new(name, KnobKind::Real { min, max, scale }, initial)
    }

    /// An integer knob `min, min + 1, …, max` on a linear scale, starting at
    /// `initial`.
    ///
    /// ```
    /// use hotpath::Knob;
    ///
    /// assert_eq!(Knob::int("workers", 1, 64, 8).initial(), 8.0);
    /// ```
    pub fn int(name: impl Into<String>, min: i64, max: i64, initial: i64) -> Self {
        let kind = KnobKind::Int {
            min,
            max,
            step: 1,
            scale: Scale::Linear,
        };
        Self::new(name, kind, initial as f64)
    }

    /// A choice among `options`, starting at the option named `initial`
    /// (a name that is not an option is refused when the space is built).
    ///
    /// ```
    /// use hotpath::Knob;
    ///
    /// assert_eq!(Knob::choice("codec", ["none", "lz4", "zstd"], "zstd").initial(), 2.0);
    /// ```
    pub fn choice<S: Into<String>>(
        name: impl Into<String>,
        options: impl IntoIterator<Item = S>,
        initial: &str,
    ) -> Self {
        let options: Vec<String> = options.into_iter().map(Into::into).collect();
        let index = options.iter().position(|o| o == initial);
        let initial = index.map_or(f64::NAN, |i| i as f64);
        Self::new(name, KnobKind::Choice { options }, initial)
    }

    /// A real knob without bounds, starting at `initial`; its moves are
    /// measured against a range of 1.
    ///
    /// ```
    /// use hotpath::{Knob, ParamSpace};
    ///
    /// let space = ParamSpace::new(vec![Knob::unbounded("gain", 0.0)])?;
    /// assert_eq!(space.range(0), 1.0);
    /// # Ok::<(), hotpath::ConfigError>(())
    /// ```
    pub fn unbounded(name: impl Into<String>, initial: f64) -> Self {
        Self::real(name, f64::NEG_INFINITY, f64::INFINITY, initial)
    }

    /// A knob of any kind.
    ///
    /// ```
    /// use hotpath::{Knob, KnobKind, Scale};
    ///
    /// let even = Knob::new("threads", KnobKind::Int { min: 2, max: 32, step: 2, scale: Scale::Linear }, 8.0);
    /// assert_eq!(even.name(), "threads");
    /// ```
    pub fn new(name: impl Into<String>, kind: KnobKind, initial: f64) -> Self {
        Self {
            name: name.into(),
            kind,
            initial,
        }
    }

    /// The same knob searched on a log scale (real and integer knobs; a
    /// choice is unchanged).
    ///
    /// ```
    /// use hotpath::{Knob, KnobKind, Scale};
    ///
    /// let batch = Knob::int("batch", 1, 4096, 64).log();
    /// assert!(matches!(batch.kind(), KnobKind::Int { scale: Scale::Log, .. }));
    /// ```
    pub fn log(mut self) -> Self {
        if let KnobKind::Real { scale, .. } | KnobKind::Int { scale, .. } = &mut self.kind {
            *scale = Scale::Log;
        }
        self
    }

    /// The same integer knob on a grid of `step` (other kinds unchanged).
    ///
    /// ```
    /// use hotpath::{Knob, KnobKind};
    ///
    /// let batch = Knob::int("batch", 8, 512, 64).step(8);
    /// assert!(matches!(batch.kind(), KnobKind::Int { step: 8, .. }));
    /// ```
    pub fn step(mut self, step: i64) -> Self {
        if let KnobKind::Int { step: s, .. } = &mut self.kind {
            *s = step;
        }
        self
    }

    /// Its name.
    ///
    /// ```
    /// use hotpath::Knob;
    ///
    /// assert_eq!(Knob::unbounded("gain", 0.0).name(), "gain");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its kind.
    ///
    /// ```
    /// use hotpath::{Knob, KnobKind};
    ///
    /// assert!(matches!(Knob::int("n", 1, 9, 3).kind(), KnobKind::Int { .. }));
    /// ```
    pub fn kind(&self) -> &KnobKind {
        &self.kind
    }

    /// Its initial value, in the live encoding (an integer as itself, a
    /// choice as its option's index; NaN for a choice whose initial option
    /// does not exist).
    ///
    /// ```
    /// use hotpath::Knob;
    ///
    /// assert_eq!(Knob::choice("c", ["a", "b"], "b").initial(), 1.0);
    /// ```
    pub fn initial(&self) -> f64 {
        self.initial
    }

    /// Its bounds as `f64`s in the live encoding (`(0, options − 1)` for a
    /// choice); `None` for an unbounded real.
    ///
    /// ```
    /// use hotpath::Knob;
    ///
    /// assert_eq!(Knob::int("n", 1, 9, 3).bounds(), Some((1.0, 9.0)));
    /// assert_eq!(Knob::choice("c", ["a", "b", "c"], "a").bounds(), Some((0.0, 2.0)));
    /// assert_eq!(Knob::unbounded("g", 0.0).bounds(), None);
    /// ```
    pub fn bounds(&self) -> Option<(f64, f64)> {
        match &self.kind {
            KnobKind::Real { min, max, .. } if min.is_infinite() && max.is_infinite() => None,
            KnobKind::Real { min, max, .. } => Some((*min, *max)),
            KnobKind::Int { min, max, .. } => Some((*min as f64, *max as f64)),
            KnobKind::Choice { options } => Some((0.0, options.len().saturating_sub(1) as f64)),
        }
    }

    /// The knob's scale (`Linear` for a choice).
    pub(super) fn scale(&self) -> Scale {
        match &self.kind {
            KnobKind::Real { scale, .. } | KnobKind::Int { scale, .. } => *scale,
            KnobKind::Choice { .. } => Scale::Linear,
        }
    }

    /// The distance between two of its values (1 for a choice's indices),
    /// or `None` for a real knob, which has no grid.
    pub(super) fn grid_step(&self) -> Option<f64> {
        match &self.kind {
            KnobKind::Real { .. } => None,
            KnobKind::Int { step, .. } => Some(*step as f64),
            KnobKind::Choice { .. } => Some(1.0),
        }
    }

    /// Checks the definition and the initial value.
    pub(super) fn problem(&self) -> Option<KnobProblem> {
        if self.name.is_empty() {
            return Some(KnobProblem::EmptyName);
        }
        let kind_problem = match &self.kind {
            KnobKind::Real { min, max, scale } => real_problem(*min, *max, *scale),
            KnobKind::Int {
                min,
                max,
                step,
                scale,
            } => int_problem(*min, *max, *step, *scale),
            KnobKind::Choice { options } => choice_problem(options),
        };
        kind_problem.or_else(|| self.value_problem(self.initial).map(KnobProblem::Initial))
    }

    /// Why `value` (live encoding) is not a value of this knob, if it is
    /// not.
    pub(super) fn value_problem(&self, value: f64) -> Option<ValueProblem> {
        let within = match self.bounds() {
            Some((min, max)) => value >= min && value <= max,
            None => value.is_finite(),
        };
        if !within {
            return Some(ValueProblem::OutOfBounds);
        }
        let on_grid = match &self.kind {
            KnobKind::Real { .. } => true,
            KnobKind::Int { min, step, .. } => {
                value.fract() == 0.0 && (value as i64 - min) % step == 0
            }
            KnobKind::Choice { .. } => value.fract() == 0.0,
        };
        (!on_grid).then_some(ValueProblem::OffGrid)
    }
}

fn real_problem(min: f64, max: f64, scale: Scale) -> Option<KnobProblem> {
    let unbounded = min == f64::NEG_INFINITY && max == f64::INFINITY;
    if unbounded && scale == Scale::Linear {
        return None;
    }
    if !crate::space::valid_bounds(min, max) {
        return Some(KnobProblem::InvalidBounds { min, max });
    }
    (scale == Scale::Log && min <= 0.0).then_some(KnobProblem::LogNeedsPositiveMin { min })
}

fn int_problem(min: i64, max: i64, step: i64, scale: Scale) -> Option<KnobProblem> {
    if min.abs() > MAX_EXACT_INT || max.abs() > MAX_EXACT_INT {
        return Some(KnobProblem::BeyondExactIntegers);
    }
    if min >= max {
        return Some(KnobProblem::InvalidBounds {
            min: min as f64,
            max: max as f64,
        });
    }
    if step < 1 || step > max - min {
        return Some(KnobProblem::InvalidStep { step });
    }
    (scale == Scale::Log && min <= 0)
        .then_some(KnobProblem::LogNeedsPositiveMin { min: min as f64 })
}

fn choice_problem(options: &[String]) -> Option<KnobProblem> {
    if options.len() < 2 || options.len() > MAX_OPTIONS {
        return Some(KnobProblem::OptionCount {
            count: options.len(),
        });
    }
    for (index, option) in options.iter().enumerate() {
        if option.is_empty() {
            return Some(KnobProblem::EmptyOption { index });
        }
        if let Some(first) = options[..index].iter().position(|o| o == option) {
            return Some(KnobProblem::DuplicateOption { index, first });
        }
    }
    None
}

/// What is wrong with a knob's definition (see
/// [`ConfigError::InvalidKnob`](crate::ConfigError::InvalidKnob)).
///
/// ```
/// use hotpath::{ConfigError, Knob, KnobProblem, ParamSpace};
///
/// let ttl = Knob::real("ttl_s", 0.0, 3600.0, 60.0).log();
/// assert_eq!(
///     ParamSpace::new(vec![ttl]),
///     Err(ConfigError::InvalidKnob { index: 0, problem: KnobProblem::LogNeedsPositiveMin { min: 0.0 } })
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum KnobProblem {
    /// The name is empty.
    #[error("its name is empty")]
    EmptyName,
    /// Another knob has the same name.
    #[error("it has the same name as params[{first}]")]
    DuplicateName {
        /// The index of the first knob with that name.
        first: usize,
    },
    /// The bounds are not finite with `min < max` and a finite width (a
    /// real knob may instead have both bounds infinite: unbounded).
    #[error("bounds ({}, {}) are not finite with min < max", ShortFloat(*min), ShortFloat(*max))]
    InvalidBounds {
        /// Lower bound given.
        min: f64,
        /// Upper bound given.
        max: f64,
    },
    /// A log scale needs a positive lower bound.
    #[error("a log scale needs min > 0, got min = {}", ShortFloat(*min))]
    LogNeedsPositiveMin {
        /// Lower bound given.
        min: f64,
    },
    /// An integer bound beyond ±2⁵³, where `f64` stops being exact.
    #[error("integer bounds must lie within ±2^53")]
    BeyondExactIntegers,
    /// An integer step below 1 or wider than the range.
    #[error("step = {step} must be at least 1 and at most max - min")]
    InvalidStep {
        /// Step given.
        step: i64,
    },
    /// A choice needs between 2 and [`MAX_OPTIONS`] options.
    #[error("a choice needs 2 to 256 options, got {count}")]
    OptionCount {
        /// Options given.
        count: usize,
    },
    /// An option's name is empty.
    #[error("options[{index}] is empty")]
    EmptyOption {
        /// Option index.
        index: usize,
    },
    /// Two options have the same name.
    #[error("options[{index}] repeats options[{first}]")]
    DuplicateOption {
        /// The later option's index.
        index: usize,
        /// The first option with that name.
        first: usize,
    },
    /// The initial value is not a value of the knob.
    #[error("initial value {0}")]
    Initial(ValueProblem),
}

/// Why a value is not one of a knob's values.
///
/// ```
/// use hotpath::ValueProblem;
///
/// assert_eq!(ValueProblem::OffGrid.to_string(), "is not on the knob's grid (an integer of its step, an option's index)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ValueProblem {
    /// Outside the bounds, or not finite (for a choice: not an option).
    #[error("is outside the bounds or not finite (or not an option)")]
    OutOfBounds,
    /// Within the bounds but not a value of the grid.
    #[error("is not on the knob's grid (an integer of its step, an option's index)")]
    OffGrid,
}
