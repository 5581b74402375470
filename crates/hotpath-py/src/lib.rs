//! # hotpath-py: `import hotpath`
//!
//! The Python binding of [`hotpath`], built by maturin into the extension
//! module `hotpath._hotpath`; the package `hotpath` (in `python/`) re-exports
//! it with the exceptions and the HTTP client, which are plain Python.
//!
//! * [`knobs`]: `Real`, `Int`, `Choice`, each a [`hotpath::Knob`];
//! * [`policy`]: `Guardrails` and `RollbackPolicy`, the presets with keyword
//!   overrides;
//! * [`engine`]: `Engine`, a [`hotpath_host::Host`] behind a mutex (durable
//!   with a data directory), and [`core`], the part of it that needs no
//!   Python (the native benchmark runs it);
//! * [`reader`]: `Reader` and `Snapshot`, lock-free reads of the live
//!   configuration;
//! * [`decision`]: `Decision` and `Violation`, what a step or a refusal
//!   tells;
//! * [`errors`]: every Rust error as the package's typed exception, with
//!   its `Display` as the message;
//! * [`convert`]: typed values and JSON as Python objects.
//!
//! Nothing here panics on what Python passes in: every fallible call
//! returns a `PyResult`, and a poisoned mutex (a panic elsewhere) is
//! recovered, not propagated.

pub mod convert;
pub mod core;
pub mod decision;
pub mod engine;
pub mod errors;
pub mod knobs;
pub mod policy;
pub mod reader;

use pyo3::prelude::*;

/// The extension module `hotpath._hotpath`.
#[pymodule]
fn _hotpath(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<knobs::Real>()?;
    m.add_class::<knobs::Int>()?;
    m.add_class::<knobs::Choice>()?;
    m.add_class::<policy::Guardrails>()?;
    m.add_class::<policy::RollbackPolicy>()?;
    m.add_class::<engine::Engine>()?;
    m.add_class::<reader::Reader>()?;
    m.add_class::<reader::Snapshot>()?;
    m.add_class::<decision::Decision>()?;
    m.add_class::<decision::Violation>()?;
    m.add_function(wrap_pyfunction!(engine::bench_native_steps, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
