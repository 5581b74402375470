//! `hotpath.Reader` and `hotpath.Snapshot`: the hot path's reads of the
//! live configuration.
//!
//! A reader reads the engine's [`AtomicConfig`] directly, never taking the
//! engine's mutex, so a read never waits for a step. While the generation
//! is unchanged, `get()` is one atomic load and returns the snapshot it
//! returned last (the same object); a new generation builds one new
//! snapshot. Readers are safe to share between threads: the cache is
//! behind a `try_lock`, and a reader that finds it taken builds its own
//! snapshot instead of waiting.

use crate::convert;
use hotpath::{AtomicConfig, ParamSpace};
use pyo3::exceptions::PyKeyError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::sync::{Arc, Mutex};

/// One generation of the live configuration, with its typed values:
/// `int` for integer knobs, `str` for choices, `float` for reals.
/// Immutable; `snap["batch_size"]` reads a value.
#[pyclass(frozen, module = "hotpath", mapping)]
pub struct Snapshot {
    generation: u64,
    values: Py<PyDict>,
}

impl Snapshot {
    /// The snapshot of `params` at `generation`.
    pub fn new(
        py: Python<'_>,
        space: &ParamSpace,
        names: &[Py<PyString>],
        generation: u64,
        params: &[f64],
    ) -> PyResult<Self> {
        Ok(Self {
            generation,
            values: convert::named(py, space, names, params)?.unbind(),
        })
    }
}

#[pymethods]
impl Snapshot {
    /// The generation: rises by one with every change of the live config.
    #[getter]
    fn generation(&self) -> u64 {
        self.generation
    }

    /// Every knob's typed value, `{name: value}` (a new `dict` each time).
    #[getter]
    fn values<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.values.bind(py).copy()
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match self.values.bind(py).get_item(name)? {
            Some(value) => Ok(value),
            None => Err(PyKeyError::new_err(name.clone().unbind())),
        }
    }

    /// The value of knob `name`, or `default` if there is none.
    #[pyo3(signature = (name, default = None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Ok(match self.values.bind(py).get_item(name)? {
            Some(value) => value,
            None => default.unwrap_or_else(|| py.None().into_bound(py)),
        })
    }

    fn __contains__(&self, py: Python<'_>, name: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.values.bind(py).contains(name)
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        self.values.bind(py).len()
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.values
            .bind(py)
            .as_any()
            .try_iter()
            .map(Bound::into_any)
    }

    /// The knobs' names, in order.
    fn keys<'py>(&self, py: Python<'py>) -> Bound<'py, pyo3::types::PyList> {
        self.values.bind(py).keys()
    }

    /// `(name, value)` pairs, in order.
    fn items<'py>(&self, py: Python<'py>) -> Bound<'py, pyo3::types::PyList> {
        self.values.bind(py).items()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Snapshot(generation={}, values={})",
            self.generation,
            self.values.bind(py).repr()?
        ))
    }
}

/// What the engine's readers share: the live config and how to name its
/// values.
#[derive(Debug)]
pub struct Source {
    /// The live configuration (the executor is its only writer).
    pub config: Arc<AtomicConfig>,
    /// The knobs.
    pub space: Arc<ParamSpace>,
    /// Their names as Python strings.
    pub names: Vec<Py<PyString>>,
}

/// A reader of the live configuration, for the hot path. Safe to share
/// between threads; never waits for the engine.
#[pyclass(frozen, module = "hotpath")]
pub struct Reader {
    source: Arc<Source>,
    cache: Mutex<Option<(u64, Py<Snapshot>)>>,
}

impl Reader {
    /// A reader of `source`.
    pub fn new(source: Arc<Source>) -> Self {
        Self {
            source,
            cache: Mutex::new(None),
        }
    }

    /// The current snapshot, built now.
    pub fn load(py: Python<'_>, source: &Source) -> PyResult<Py<Snapshot>> {
        let loaded = source.config.load();
        let snapshot = Snapshot::new(
            py,
            &source.space,
            &source.names,
            loaded.generation,
            &loaded.params,
        )?;
        Py::new(py, snapshot)
    }
}

#[pymethods]
impl Reader {
    /// The live configuration: the same `Snapshot` object as the last call
    /// while the generation is unchanged, a new one after a change.
    fn get(&self, py: Python<'_>) -> PyResult<Py<Snapshot>> {
        let generation = self.source.config.generation();
        if let Ok(cache) = self.cache.try_lock() {
            if let Some((cached, snapshot)) = cache.as_ref() {
                if *cached == generation {
                    return Ok(snapshot.clone_ref(py));
                }
            }
        }
        let snapshot = Self::load(py, &self.source)?;
        let loaded = snapshot.get().generation;
        if let Ok(mut cache) = self.cache.try_lock() {
            *cache = Some((loaded, snapshot.clone_ref(py)));
        }
        Ok(snapshot)
    }

    /// The live generation (one atomic load; no snapshot is built).
    #[getter]
    fn generation(&self) -> u64 {
        self.source.config.generation()
    }

    fn __repr__(&self) -> String {
        format!("Reader(generation={})", self.source.config.generation())
    }
}
