//! `hotpath.Real`, `hotpath.Int`, `hotpath.Choice`: one typed knob each,
//! checked when it is made (its name, bounds, step, options and initial
//! value; names unique across knobs are checked by the `Engine`).

use crate::{convert, errors};
use hotpath::{Knob, KnobKind, ParamSpace, Scale};
use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;

/// `knob` checked on its own: the problem with its definition, as
/// `knob `NAME`: <the Rust KnobProblem's message>`.
fn checked(knob: Knob) -> PyResult<Knob> {
    match ParamSpace::new(vec![knob.clone()]) {
        Ok(_) => Ok(knob),
        Err(hotpath::ConfigError::InvalidKnob { problem, .. }) => {
            Err(errors::config(format!("knob `{}`: {problem}", knob.name())))
        }
        Err(e) => Err(errors::config(e)),
    }
}

/// An `int` argument of an integer knob; one beyond `i64` is a
/// `ConfigError` (what is beyond ±2^53 is refused by the knob's check).
fn int_arg(name: &str, what: &str, value: &Bound<'_, PyAny>) -> PyResult<i64> {
    match value.extract::<i64>() {
        Ok(v) => Ok(v),
        Err(e) if e.is_instance_of::<PyOverflowError>(value.py()) => {
            Err(errors::config(format!("knob `{name}`: {what}")))
        }
        Err(e) => Err(e),
    }
}

/// A real knob: `Real(name, min, max, initial, log=False)`.
#[pyclass(frozen, module = "hotpath")]
#[derive(Debug, Clone)]
pub struct Real {
    knob: Knob,
}

#[pymethods]
impl Real {
    #[new]
    #[pyo3(signature = (name, min, max, initial, log = false))]
    fn new(name: String, min: f64, max: f64, initial: f64, log: bool) -> PyResult<Self> {
        let knob = Knob::real(name, min, max, initial);
        let knob = if log { knob.log() } else { knob };
        Ok(Self {
            knob: checked(knob)?,
        })
    }

    /// The knob's name.
    #[getter]
    fn name(&self) -> &str {
        self.knob.name()
    }

    /// Lower bound.
    #[getter]
    fn min(&self) -> f64 {
        self.knob.bounds().map_or(f64::NEG_INFINITY, |b| b.0)
    }

    /// Upper bound.
    #[getter]
    fn max(&self) -> f64 {
        self.knob.bounds().map_or(f64::INFINITY, |b| b.1)
    }

    /// The value it starts at.
    #[getter]
    fn initial(&self) -> f64 {
        self.knob.initial()
    }

    /// `True` if it is searched on a log scale.
    #[getter]
    fn log(&self) -> bool {
        matches!(
            self.knob.kind(),
            KnobKind::Real {
                scale: Scale::Log,
                ..
            }
        )
    }

    fn __repr__(&self) -> String {
        let log = if self.log() { ", log=True" } else { "" };
        format!(
            "Real({}, {:?}, {:?}, {:?}{log})",
            convert::repr_str(self.name()),
            self.min(),
            self.max(),
            self.initial()
        )
    }
}

/// An integer knob: `Int(name, min, max, initial, log=False, step=1)`.
#[pyclass(frozen, module = "hotpath")]
#[derive(Debug, Clone)]
pub struct Int {
    knob: Knob,
}

#[pymethods]
impl Int {
    #[new]
    #[pyo3(signature = (name, min, max, initial, log = false, step = None))]
    fn new(
        name: String,
        min: &Bound<'_, PyAny>,
        max: &Bound<'_, PyAny>,
        initial: &Bound<'_, PyAny>,
        log: bool,
        step: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let bounds = hotpath::KnobProblem::BeyondExactIntegers.to_string();
        let min = int_arg(&name, &bounds, min)?;
        let max = int_arg(&name, &bounds, max)?;
        let off = hotpath::KnobProblem::Initial(hotpath::ValueProblem::OutOfBounds).to_string();
        let initial = int_arg(&name, &off, initial)?;
        let step = match step {
            Some(s) => {
                let what = "step must be at least 1 and at most max - min";
                int_arg(&name, what, s)?
            }
            None => 1,
        };
        let knob = Knob::int(name, min, max, initial).step(step);
        let knob = if log { knob.log() } else { knob };
        Ok(Self {
            knob: checked(knob)?,
        })
    }

    /// The knob's name.
    #[getter]
    fn name(&self) -> &str {
        self.knob.name()
    }

    /// Lower bound, the first value of its grid.
    #[getter]
    fn min(&self) -> i64 {
        self.parts().0
    }

    /// Upper bound.
    #[getter]
    fn max(&self) -> i64 {
        self.parts().1
    }

    /// The distance between two of its values.
    #[getter]
    fn step(&self) -> i64 {
        self.parts().2
    }

    /// The value it starts at.
    #[getter]
    fn initial(&self) -> i64 {
        self.knob.initial() as i64
    }

    /// `True` if it is searched on a log scale.
    #[getter]
    fn log(&self) -> bool {
        self.parts().3
    }

    fn __repr__(&self) -> String {
        let log = if self.log() { ", log=True" } else { "" };
        let step = match self.step() {
            1 => String::new(),
            s => format!(", step={s}"),
        };
        format!(
            "Int({}, {}, {}, {}{log}{step})",
            convert::repr_str(self.name()),
            self.min(),
            self.max(),
            self.initial()
        )
    }
}

impl Int {
    fn parts(&self) -> (i64, i64, i64, bool) {
        match self.knob.kind() {
            KnobKind::Int {
                min,
                max,
                step,
                scale,
            } => (*min, *max, *step, *scale == Scale::Log),
            _ => (0, 0, 1, false),
        }
    }
}

/// A choice knob: `Choice(name, options, initial)`.
#[pyclass(frozen, module = "hotpath")]
#[derive(Debug, Clone)]
pub struct Choice {
    knob: Knob,
}

#[pymethods]
impl Choice {
    #[new]
    fn new(name: String, options: Vec<String>, initial: &str) -> PyResult<Self> {
        Ok(Self {
            knob: checked(Knob::choice(name, options, initial))?,
        })
    }

    /// The knob's name.
    #[getter]
    fn name(&self) -> &str {
        self.knob.name()
    }

    /// The options, in order.
    #[getter]
    fn options(&self) -> Vec<String> {
        match self.knob.kind() {
            KnobKind::Choice { options } => options.clone(),
            _ => Vec::new(),
        }
    }

    /// The option it starts at.
    #[getter]
    fn initial(&self) -> String {
        let options = self.options();
        options
            .get(self.knob.initial() as usize)
            .cloned()
            .unwrap_or_default()
    }

    fn __repr__(&self) -> String {
        format!(
            "Choice({}, {}, {})",
            convert::repr_str(self.name()),
            convert::repr_list(&self.options()),
            convert::repr_str(&self.initial())
        )
    }
}

/// The [`Knob`] of a `Real`, `Int` or `Choice`.
///
/// # Errors
///
/// `TypeError` for anything else.
pub fn knob_of(obj: &Bound<'_, PyAny>) -> PyResult<Knob> {
    if let Ok(k) = obj.cast::<Real>() {
        return Ok(k.get().knob.clone());
    }
    if let Ok(k) = obj.cast::<Int>() {
        return Ok(k.get().knob.clone());
    }
    if let Ok(k) = obj.cast::<Choice>() {
        return Ok(k.get().knob.clone());
    }
    let type_name = obj.get_type().name()?;
    Err(PyTypeError::new_err(format!(
        "knobs must be hotpath.Real, hotpath.Int or hotpath.Choice, not {type_name}"
    )))
}

/// The Python knob of `knob` (for `Engine.knobs`).
pub fn to_python<'py>(py: Python<'py>, knob: &Knob) -> PyResult<Bound<'py, PyAny>> {
    let knob = knob.clone();
    Ok(match knob.kind() {
        KnobKind::Real { .. } => Bound::new(py, Real { knob })?.into_any(),
        KnobKind::Int { .. } => Bound::new(py, Int { knob })?.into_any(),
        KnobKind::Choice { .. } => Bound::new(py, Choice { knob })?.into_any(),
    })
}
