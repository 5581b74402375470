//! `hotpath.Decision` (what one `Engine.step` did) and `hotpath.Violation`
//! (why the executor refused something). Both keep the Rust values and
//! build their Python views when asked, so a step costs no more than it
//! must.

use crate::convert;
use crate::core::Stepped;
use crate::reader::Source;
use hotpath::{ParamSpace, Proposal};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::sync::Arc;

/// Why the executor refused a proposal or a request: its `kind` (the
/// Rust variant's name, as in the audit log), its `message` and its
/// `fields`.
#[pyclass(frozen, module = "hotpath")]
#[derive(Debug, Clone)]
pub struct Violation {
    violation: hotpath::Violation,
    space: Arc<ParamSpace>,
}

impl Violation {
    /// The view of `violation` over `space` (to name its knob).
    pub fn new(violation: hotpath::Violation, space: Arc<ParamSpace>) -> Self {
        Self { violation, space }
    }
}

#[pymethods]
impl Violation {
    /// The kind of violation: `DeltaTooLarge`, `RateLimitExceeded`,
    /// `InSafeMode`, `NoBaseline`, … (as in the audit log).
    #[getter]
    fn kind(&self) -> String {
        convert::variant_name(&self.violation)
    }

    /// The library's message, its knob named
    /// ([`Violation::named`](hotpath::Violation::named)).
    #[getter]
    fn message(&self) -> String {
        self.violation.named(&self.space).to_string()
    }

    /// The violation's data (`index`, `limit`, `retry_at_us`, …), with
    /// `knob`, the knob's name, where it names an index.
    #[getter]
    fn fields<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let value = serde_json::to_value(self.violation).unwrap_or(serde_json::Value::Null);
        let dict = PyDict::new(py);
        if let serde_json::Value::Object(outer) = value {
            for inner in outer.values() {
                if let serde_json::Value::Object(fields) = inner {
                    for (key, v) in fields {
                        dict.set_item(key, convert::json(py, v)?)?;
                    }
                }
            }
        }
        if let Some(index) = dict.get_item("index")? {
            let index: usize = index.extract()?;
            dict.set_item("knob", self.space.name(index))?;
        }
        Ok(dict)
    }

    /// `{"kind", "message", "fields"}`.
    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("kind", self.kind())?;
        d.set_item("message", self.message())?;
        d.set_item("fields", self.fields(py)?)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!("Violation({}: {})", self.kind(), self.message())
    }

    fn __str__(&self) -> String {
        self.message()
    }
}

/// What one `Engine.step` did: what the engine proposed (`kind`, `delta`),
/// whether the executor applied it, the violation if it refused it, and
/// the live generation after.
#[pyclass(frozen, module = "hotpath")]
pub struct Decision {
    stepped: Stepped,
    source: Arc<Source>,
}

impl Decision {
    /// The decision of `stepped`, named by `source`.
    pub fn new(stepped: Stepped, source: Arc<Source>) -> Self {
        Self { stepped, source }
    }

    fn names(&self) -> &[Py<PyString>] {
        &self.source.names
    }

    fn space(&self) -> &Arc<ParamSpace> {
        &self.source.space
    }

    fn proposal(&self) -> &Proposal {
        &self.stepped.outcome.proposal
    }
}

#[pymethods]
impl Decision {
    /// `NoChange`, `ApplyPlus`, `ApplyMinus` (the two probes of an SPSA
    /// iteration) or `Update` (the committed step), as in the audit log.
    #[getter]
    fn kind(&self) -> String {
        convert::variant_name(&self.proposal().kind())
    }

    /// Why nothing was proposed (`CollectingSamples`, `Settling`,
    /// `EvalTimeout`, `SafeMode`, `WaitingForExecutor`,
    /// `ConstraintViolated`); `None` for a move.
    #[getter]
    fn reason(&self) -> Option<String> {
        match self.proposal() {
            Proposal::NoChange { reason } => Some(convert::variant_name(reason)),
            _ => None,
        }
    }

    /// The SPSA iteration of an update, the perturbation of a probe (0 for
    /// no change).
    #[getter]
    fn correlation_id(&self) -> u64 {
        self.proposal().correlation_id()
    }

    /// The proposed change per knob, `{name: change}` (an `int` for integer
    /// and choice knobs, a `float` for reals), relative to the live values
    /// before the step; `None` for no change.
    #[getter]
    fn delta<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        match self.proposal().delta() {
            Some(d) => Ok(Some(convert::delta(py, self.space(), self.names(), d)?)),
            None => Ok(None),
        }
    }

    /// The values proposed, `{name: typed value}` (the live values before
    /// the step plus the delta); `None` for no change.
    #[getter]
    fn proposed<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(delta) = self.proposal().delta() else {
            return Ok(None);
        };
        let target: Vec<f64> = self
            .stepped
            .before
            .iter()
            .zip(delta.iter())
            .map(|(v, d)| v + d)
            .collect();
        Ok(Some(convert::named(
            py,
            self.space(),
            self.names(),
            &target,
        )?))
    }

    /// The gradient estimate of an update, `{name: float}` (in the knobs'
    /// unit coordinates); `None` otherwise.
    #[getter]
    fn gradient<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Proposal::Update {
            gradient_estimate, ..
        } = self.proposal()
        else {
            return Ok(None);
        };
        let dict = PyDict::new(py);
        for (name, g) in self.names().iter().zip(gradient_estimate.iter()) {
            dict.set_item(name.bind(py), *g)?;
        }
        Ok(Some(dict))
    }

    /// `True` if the executor applied the move.
    #[getter]
    fn applied(&self) -> bool {
        matches!(self.stepped.outcome.applied, Some(Ok(_)))
    }

    /// Why the executor refused the move; `None` if it applied it or there
    /// was none.
    #[getter]
    fn violation(&self) -> Option<Violation> {
        match &self.stepped.outcome.applied {
            Some(Err(v)) => Some(Violation::new(*v, Arc::clone(self.space()))),
            _ => None,
        }
    }

    /// The live generation after the step.
    #[getter]
    fn generation(&self) -> u64 {
        self.stepped.generation
    }

    /// Every field as plain Python values (for logs, JSON, comparisons).
    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("kind", self.kind())?;
        d.set_item("reason", self.reason())?;
        d.set_item("correlation_id", self.correlation_id())?;
        d.set_item("delta", self.delta(py)?)?;
        d.set_item("proposed", self.proposed(py)?)?;
        d.set_item("gradient", self.gradient(py)?)?;
        d.set_item("applied", self.applied())?;
        let violation = match self.violation() {
            Some(v) => Some(v.as_dict(py)?),
            None => None,
        };
        d.set_item("violation", violation)?;
        d.set_item("generation", self.generation())?;
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let what = match (self.reason(), self.delta(py)?) {
            (Some(reason), _) => format!("reason={reason}"),
            (None, Some(delta)) => format!("delta={}", delta.repr()?),
            (None, None) => String::new(),
        };
        let verdict = match self.violation() {
            Some(v) => format!(", refused={}", v.kind()),
            None if self.applied() => ", applied".to_string(),
            None => String::new(),
        };
        Ok(format!(
            "Decision({} {what}{verdict}, generation={})",
            self.kind(),
            self.generation()
        ))
    }
}
