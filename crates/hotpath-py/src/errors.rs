//! Every Rust error as one of the package's exceptions, with the error's
//! `Display` as its message.
//!
//! The exception classes are plain Python (`hotpath/_errors.py`: one
//! hierarchy under `hotpath.Error`, shared with the HTTP client); they are
//! looked up once and kept. The mapping:
//!
//! | Rust | Python |
//! |------|--------|
//! | `ConfigError`, `EngineError::Config`/`Spsa`, `LoadError`, `HostError::Options`/`InvalidOption` | `ConfigError` (also a `ValueError`) |
//! | `EngineError::Digest`, `EngineError::TimestampWentBackwards` | `DigestError` (also a `ValueError`) |
//! | `Violation` (`HostError::Refused`) | `Refused`, with the violation |
//! | `StateError`, `HostError::NoState`/`Restore`/`Io` | `StateError` |
//! | `AuditLogError`, `HostError::AuditStalled`/`NotLogged` | `AuditLogError` |
//! | a call on a closed engine | `ClosedError` (also a `RuntimeError`) |

use hotpath::{EngineError, ParamSpace};
use hotpath_host::HostError;
use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use std::sync::Arc;

/// The package's exception classes, by what they stand for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `hotpath.Error`, the base.
    Error,
    /// `hotpath.ConfigError`: a knob, policy, setting or config file.
    Config,
    /// `hotpath.DigestError`: a digest the engine refused.
    Digest,
    /// `hotpath.Refused`: the executor refused a request.
    Refused,
    /// `hotpath.StateError`: the state file or data directory.
    State,
    /// `hotpath.AuditLogError`: the durable audit log.
    AuditLog,
    /// `hotpath.ClosedError`: the engine was closed.
    Closed,
}

impl Kind {
    /// The class's name in `hotpath._errors`.
    fn class_name(self) -> &'static str {
        match self {
            Kind::Error => "Error",
            Kind::Config => "ConfigError",
            Kind::Digest => "DigestError",
            Kind::Refused => "Refused",
            Kind::State => "StateError",
            Kind::AuditLog => "AuditLogError",
            Kind::Closed => "ClosedError",
        }
    }
}

/// The module that defines the classes, imported once.
static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn class<'py>(py: Python<'py>, kind: Kind) -> PyResult<Bound<'py, PyType>> {
    let module = ERRORS.get_or_try_init(py, || py.import("hotpath._errors").map(Bound::unbind))?;
    Ok(module.bind(py).getattr(kind.class_name())?.cast_into()?)
}

/// An exception of `kind` built from `args` (the message first). If the
/// class cannot be had (the package is broken), the import's error.
fn build<'py, A>(py: Python<'py>, kind: Kind, args: A) -> PyErr
where
    A: pyo3::call::PyCallArgs<'py>,
{
    match class(py, kind).and_then(|c| c.call1(args)) {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}

/// An exception of `kind` with `message`.
pub fn error(kind: Kind, message: impl Into<String>) -> PyErr {
    let message = message.into();
    Python::attach(|py| build(py, kind, (message,)))
}

/// `hotpath.ConfigError` with the Rust error's message.
pub fn config(e: impl std::fmt::Display) -> PyErr {
    error(Kind::Config, e.to_string())
}

/// The exception of an [`EngineError`]: a refused digest or bad settings.
pub fn engine(e: &EngineError) -> PyErr {
    match e {
        EngineError::Digest(_) | EngineError::TimestampWentBackwards { .. } => {
            error(Kind::Digest, e.to_string())
        }
        _ => error(Kind::Config, e.to_string()),
    }
}

/// `hotpath.Refused` carrying the violation (`exc.violation`).
pub fn refused(violation: hotpath::Violation, space: &Arc<ParamSpace>) -> PyErr {
    let message = format!("refused: {}", violation.named(space));
    let view = crate::decision::Violation::new(violation, Arc::clone(space));
    Python::attach(|py| match Py::new(py, view) {
        Ok(view) => build(py, Kind::Refused, (message, view)),
        Err(e) => e,
    })
}

/// The exception of a [`HostError`] (see the module's table).
pub fn host(e: HostError, space: &Arc<ParamSpace>) -> PyErr {
    let kind = match &e {
        HostError::Refused(violation) => return refused(*violation, space),
        HostError::Digest(inner) | HostError::Engine(inner) => return engine(inner),
        HostError::Options(_) | HostError::InvalidOption { .. } => Kind::Config,
        HostError::State(_)
        | HostError::NoState { .. }
        | HostError::Restore { .. }
        | HostError::Io { .. } => Kind::State,
        HostError::AuditLog(_) | HostError::AuditStalled { .. } | HostError::NotLogged { .. } => {
            Kind::AuditLog
        }
        _ => Kind::Error,
    };
    error(kind, e.to_string())
}

/// `hotpath.ClosedError`: the engine was closed.
pub fn closed() -> PyErr {
    error(Kind::Closed, "the engine is closed")
}

/// An unsigned integer argument of at most `max`: a negative or larger
/// `int` is an exception of `kind` worded as the library words its own
/// (`FIELD = VALUE is invalid: expected an integer in [0, MAX]`); what is
/// not an `int` is a `TypeError`.
pub fn unsigned(kind: Kind, field: &str, value: &Bound<'_, PyAny>, max: u64) -> PyResult<u64> {
    let invalid = || {
        let shown = value.str().map(|s| s.to_string()).unwrap_or_default();
        error(
            kind,
            format!("{field} = {shown} is invalid: expected an integer in [0, {max}]"),
        )
    };
    match value.extract::<u64>() {
        Ok(v) if v <= max => Ok(v),
        Ok(_) => Err(invalid()),
        Err(e) if e.is_instance_of::<PyOverflowError>(value.py()) => Err(invalid()),
        Err(e) => Err(e),
    }
}
