//! `hotpath.Guardrails` and `hotpath.RollbackPolicy`: the presets
//! (`balanced()`, `conservative()`, `aggressive()`) with any field
//! overridden by keyword, checked by the library when made.
//!
//! Every field of [`hotpath::Guardrails`] is a keyword but `bounds`, which
//! come from the knobs (as in the TOML config); every field of
//! [`hotpath::RollbackPolicy`] is one.

use crate::errors::{self, Kind};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

pub(crate) const U32: u64 = u32::MAX as u64;
pub(crate) const U64: u64 = u64::MAX;

/// `k1=v1, k2=v2, …` of `fields`, as a constructor call writes them.
fn keywords(fields: &Bound<'_, PyDict>) -> PyResult<String> {
    let mut parts = Vec::with_capacity(fields.len());
    for (key, value) in fields {
        parts.push(format!("{}={}", key.str()?, value.repr()?));
    }
    Ok(parts.join(", "))
}

/// `TypeError` for a keyword no field has, as Python words it.
fn unknown(class: &str, key: &str) -> PyErr {
    PyTypeError::new_err(format!(
        "{class}() got an unexpected keyword argument '{key}'"
    ))
}

/// The guardrails: how far, how often and how erratically the executor
/// lets the live configuration move.
#[pyclass(frozen, module = "hotpath", eq)]
#[derive(Debug, Clone, PartialEq)]
pub struct Guardrails {
    /// The library's guardrails (no bounds).
    pub inner: hotpath::Guardrails,
}

impl Guardrails {
    fn made(base: hotpath::Guardrails, overrides: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let mut g = base;
        for (key, value) in overrides.into_iter().flatten() {
            let key: String = key.extract()?;
            match key.as_str() {
                "max_delta_per_step" => g.max_delta_per_step = value.extract()?,
                "max_updates_per_second" => g.max_updates_per_second = value.extract()?,
                "min_interval_us" => {
                    g.min_interval_us =
                        errors::unsigned(Kind::Config, "min_interval_us", &value, U64)?
                }
                "direction_flip_limit" => {
                    g.direction_flip_limit =
                        errors::unsigned(Kind::Config, "direction_flip_limit", &value, U32)? as u32
                }
                "cooldown_after_flip_us" => {
                    g.cooldown_after_flip_us =
                        errors::unsigned(Kind::Config, "cooldown_after_flip_us", &value, U64)?
                }
                "max_cumulative_delta_per_minute" => {
                    g.max_cumulative_delta_per_minute = value.extract()?
                }
                "regression_count_limit" => {
                    g.regression_count_limit =
                        errors::unsigned(Kind::Config, "regression_count_limit", &value, U32)?
                            as u32
                }
                "violation_limit" => {
                    g.violation_limit =
                        errors::unsigned(Kind::Config, "violation_limit", &value, U32)? as u32
                }
                other => return Err(unknown("Guardrails", other)),
            }
        }
        g.bounds = None;
        g.validate().map_err(errors::config)?;
        Ok(Self { inner: g })
    }
}

#[pymethods]
impl Guardrails {
    /// The balanced preset (the library's defaults) with `overrides`.
    #[new]
    #[pyo3(signature = (**overrides))]
    fn new(overrides: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        Self::made(hotpath::Guardrails::preset_balanced(), overrides)
    }

    /// The balanced preset (the library's defaults) with `overrides`.
    #[staticmethod]
    #[pyo3(signature = (**overrides))]
    fn balanced(overrides: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        Self::made(hotpath::Guardrails::preset_balanced(), overrides)
    }

    /// Small steps, slow rate: the conservative preset with `overrides`.
    #[staticmethod]
    #[pyo3(signature = (**overrides))]
    fn conservative(overrides: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        Self::made(hotpath::Guardrails::preset_conservative(), overrides)
    }

    /// Large steps, fast rate: the aggressive preset with `overrides`.
    #[staticmethod]
    #[pyo3(signature = (**overrides))]
    fn aggressive(overrides: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        Self::made(hotpath::Guardrails::preset_aggressive(), overrides)
    }

    /// A copy with `overrides`.
    #[pyo3(signature = (**overrides))]
    fn replace(&self, overrides: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        Self::made(self.inner.clone(), overrides)
    }

    /// The most a live change may move a knob, as a fraction of its range.
    #[getter]
    fn max_delta_per_step(&self) -> f64 {
        self.inner.max_delta_per_step
    }

    /// The most changes in any second.
    #[getter]
    fn max_updates_per_second(&self) -> f64 {
        self.inner.max_updates_per_second
    }

    /// The least time between two changes (µs).
    #[getter]
    fn min_interval_us(&self) -> u64 {
        self.inner.min_interval_us
    }

    /// Reversals of a knob's committed direction allowed in any minute.
    #[getter]
    fn direction_flip_limit(&self) -> u32 {
        self.inner.direction_flip_limit
    }

    /// How long updates are refused after too many reversals (µs).
    #[getter]
    fn cooldown_after_flip_us(&self) -> u64 {
        self.inner.cooldown_after_flip_us
    }

    /// The movement budget per knob and minute, as a fraction of its range.
    #[getter]
    fn max_cumulative_delta_per_minute(&self) -> f64 {
        self.inner.max_cumulative_delta_per_minute
    }

    /// Consecutive regressed reports that latch safe mode.
    #[getter]
    fn regression_count_limit(&self) -> u32 {
        self.inner.regression_count_limit
    }

    /// Consecutive malformed or out-of-envelope proposals that latch safe
    /// mode.
    #[getter]
    fn violation_limit(&self) -> u32 {
        self.inner.violation_limit
    }

    /// Every field, `{name: value}`.
    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let g = &self.inner;
        let d = PyDict::new(py);
        d.set_item("max_delta_per_step", g.max_delta_per_step)?;
        d.set_item("max_updates_per_second", g.max_updates_per_second)?;
        d.set_item("min_interval_us", g.min_interval_us)?;
        d.set_item("direction_flip_limit", g.direction_flip_limit)?;
        d.set_item("cooldown_after_flip_us", g.cooldown_after_flip_us)?;
        d.set_item(
            "max_cumulative_delta_per_minute",
            g.max_cumulative_delta_per_minute,
        )?;
        d.set_item("regression_count_limit", g.regression_count_limit)?;
        d.set_item("violation_limit", g.violation_limit)?;
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("Guardrails({})", keywords(&self.as_dict(py)?)?))
    }
}

/// The rollback policy: when the executor returns to the baseline by
/// itself.
#[pyclass(frozen, module = "hotpath", eq)]
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackPolicy {
    /// The library's policy.
    pub inner: hotpath::RollbackPolicy,
}

impl RollbackPolicy {
    fn made(
        base: hotpath::RollbackPolicy,
        overrides: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let mut p = base;
        for (key, value) in overrides.into_iter().flatten() {
            let key: String = key.extract()?;
            match key.as_str() {
                "max_consecutive_regressions" => {
                    p.max_consecutive_regressions =
                        errors::unsigned(Kind::Config, "max_consecutive_regressions", &value, U32)?
                            as u32
                }
                "max_rollbacks_per_hour" => {
                    p.max_rollbacks_per_hour =
                        errors::unsigned(Kind::Config, "max_rollbacks_per_hour", &value, U32)?
                            as u32
                }
                "min_stable_time_us" => {
                    p.min_stable_time_us =
                        errors::unsigned(Kind::Config, "min_stable_time_us", &value, U64)?
                }
                "regression_sigmas" => p.regression_sigmas = value.extract()?,
                "regression_tolerance" => p.regression_tolerance = value.extract()?,
                other => return Err(unknown("RollbackPolicy", other)),
            }
        }
        p.validate().map_err(errors::config)?;
        Ok(Self { inner: p })
    }
}

#[pymethods]
impl RollbackPolicy {
    /// The balanced preset (the library's defaults) with `overrides`.
    #[new]
    #[pyo3(signature = (**overrides))]
    fn new(overrides: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        Self::made(hotpath::RollbackPolicy::preset_balanced(), overrides)
    }

    /// The balanced preset (the library's defaults) with `overrides`.
    #[staticmethod]
    #[pyo3(signature = (**overrides))]
    fn balanced(overrides: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        Self::made(hotpath::RollbackPolicy::preset_balanced(), overrides)
    }

    /// Quick to roll back: the conservative preset with `overrides`.
    #[staticmethod]
    #[pyo3(signature = (**overrides))]
    fn conservative(overrides: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        Self::made(hotpath::RollbackPolicy::preset_conservative(), overrides)
    }

    /// Tolerant of regressions: the aggressive preset with `overrides`.
    #[staticmethod]
    #[pyo3(signature = (**overrides))]
    fn aggressive(overrides: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        Self::made(hotpath::RollbackPolicy::preset_aggressive(), overrides)
    }

    /// A copy with `overrides`.
    #[pyo3(signature = (**overrides))]
    fn replace(&self, overrides: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        Self::made(self.inner, overrides)
    }

    /// Consecutive regressed reports that trigger a rollback.
    #[getter]
    fn max_consecutive_regressions(&self) -> u32 {
        self.inner.max_consecutive_regressions
    }

    /// Rollbacks in any hour beyond which the circuit breaker latches safe
    /// mode.
    #[getter]
    fn max_rollbacks_per_hour(&self) -> u32 {
        self.inner.max_rollbacks_per_hour
    }

    /// After a rollback, no update until this long has passed (µs).
    #[getter]
    fn min_stable_time_us(&self) -> u64 {
        self.inner.min_stable_time_us
    }

    /// Baseline standard deviations an objective may exceed the baseline
    /// mean by before it counts as a regression.
    #[getter]
    fn regression_sigmas(&self) -> f64 {
        self.inner.regression_sigmas
    }

    /// The least allowance, as a fraction of the baseline mean's magnitude.
    #[getter]
    fn regression_tolerance(&self) -> f64 {
        self.inner.regression_tolerance
    }

    /// Every field, `{name: value}`.
    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let p = &self.inner;
        let d = PyDict::new(py);
        d.set_item("max_consecutive_regressions", p.max_consecutive_regressions)?;
        d.set_item("max_rollbacks_per_hour", p.max_rollbacks_per_hour)?;
        d.set_item("min_stable_time_us", p.min_stable_time_us)?;
        d.set_item("regression_sigmas", p.regression_sigmas)?;
        d.set_item("regression_tolerance", p.regression_tolerance)?;
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("RollbackPolicy({})", keywords(&self.as_dict(py)?)?))
    }
}
