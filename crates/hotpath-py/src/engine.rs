//! `hotpath.Engine`: the governed engine, a [`Core`] (a
//! [`hotpath_host::Host`] and its audit history) behind a mutex.
//!
//! # Threads
//!
//! The engine is safe to share between threads. Every call that reaches
//! the host (`step`, the operator calls, `status`, `audit`, `close`)
//! releases the GIL first, then takes the mutex, so a step in one thread
//! never stops other Python threads, and two calls never interleave.
//! Readers (`engine.reader()`) never take the mutex: they read the live
//! configuration lock-free (see [`crate::reader`]).

use crate::convert;
use crate::core::{self, Core, Digest, EngineClock, Settings, DEFAULT_AUDIT_HISTORY};
use crate::decision::Decision;
use crate::errors::{self, Kind};
use crate::knobs;
use crate::policy::{Guardrails, RollbackPolicy, U64};
use crate::reader::{Reader, Snapshot, Source};
use hotpath::{ManualClock, ParamSpace, SystemClock};
use hotpath_host::{HostError, HostOptions, Resume, ShutdownPolicy, WhenFull};
use pyo3::prelude::*;
use pyo3::types::PyList;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

/// A call on an engine that was closed.
struct Closed;

/// How the engine is opened, whatever its settings came from.
struct Opening {
    space: Arc<ParamSpace>,
    settings: hotpath::AdaptiveEngineConfig,
    data_dir: Option<PathBuf>,
    manual_clock: bool,
    resume: Resume,
    audit_history: usize,
}

/// The governed engine: an online optimiser whose every change goes
/// through the safety executor, with its audit trail, durable in
/// `data_dir` if one is given.
#[pyclass(frozen, module = "hotpath")]
pub struct Engine {
    core: Mutex<Option<Core>>,
    source: Arc<Source>,
    clock: EngineClock,
    opened: serde_json::Value,
    data_dir: Option<PathBuf>,
}

impl Engine {
    fn open(py: Python<'_>, o: Opening) -> PyResult<Self> {
        let clock = match o.manual_clock {
            true => EngineClock::Manual(ManualClock::new(0)),
            false => EngineClock::System(SystemClock::new()),
        };
        let mut options = match &o.data_dir {
            Some(dir) => HostOptions::in_dir(dir),
            None => HostOptions::in_memory(),
        };
        options.resume = o.resume;
        // A manual clock is for runs that must be a function of their
        // inputs: wait for the log rather than let backpressure decide.
        if o.manual_clock {
            options.when_full = WhenFull::Wait;
        }
        let space = Arc::clone(&o.space);
        let opening_clock = clock.clone();
        let core = py
            .detach(move || Core::open(space, o.settings, options, opening_clock, o.audit_history))
            .map_err(|e| errors::host(e, &o.space))?;
        let report = core.open_report();
        let opened = serde_json::json!({
            "restored": report.restored.is_some(),
            "generation": report.generation,
            "first_seq": report.first_seq,
            "truncations": report.log.as_ref().map_or(0, |l| l.truncations.len()),
            "truncated_bytes": report.log.as_ref().map_or(0, |l| l.truncated_bytes),
        });
        let source = Arc::new(Source {
            config: Arc::clone(core.host().config()),
            names: convert::names(py, &o.space),
            space: o.space,
        });
        Ok(Self {
            core: Mutex::new(Some(core)),
            source,
            clock,
            opened,
            data_dir: o.data_dir,
        })
    }

    /// Runs `f` on the core with the GIL released and the mutex held.
    fn with_core<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Core) -> Result<T, HostError> + Send,
    ) -> PyResult<T> {
        let result = py.detach(|| {
            let mut guard = self.core.lock().unwrap_or_else(PoisonError::into_inner);
            match guard.as_mut() {
                Some(core) => Ok(f(core)),
                None => Err(Closed),
            }
        });
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(errors::host(e, &self.source.space)),
            Err(Closed) => Err(errors::closed()),
        }
    }
}

/// The space of a list of `Real`, `Int` and `Choice` knobs.
fn space_of(knobs: &[Bound<'_, PyAny>]) -> PyResult<Arc<ParamSpace>> {
    let knobs = knobs
        .iter()
        .map(knobs::knob_of)
        .collect::<PyResult<Vec<_>>>()?;
    Ok(Arc::new(ParamSpace::new(knobs).map_err(errors::config)?))
}

/// The `audit_history` argument: up to 2^20 events (0 keeps one; `None`,
/// [`DEFAULT_AUDIT_HISTORY`]).
fn history_arg(value: Option<&Bound<'_, PyAny>>) -> PyResult<usize> {
    let max = hotpath::MAX_AUDIT_CAPACITY as u64;
    match value.filter(|v| !v.is_none()) {
        Some(v) => Ok(errors::unsigned(Kind::Config, "audit_history", v, max)? as usize),
        None => Ok(DEFAULT_AUDIT_HISTORY),
    }
}

fn resume_of(resume: &str) -> PyResult<Resume> {
    match resume {
        "fresh" => Ok(Resume::Fresh),
        "if_present" => Ok(Resume::IfPresent),
        "require" => Ok(Resume::Require),
        other => Err(errors::config(format!(
            "resume = {other:?} is invalid: expected \"fresh\", \"if_present\" or \"require\""
        ))),
    }
}

/// An optional unsigned argument of a digest.
fn digest_arg(field: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    value
        .filter(|v| !v.is_none())
        .map(|v| errors::unsigned(Kind::Digest, field, v, U64))
        .transpose()
}

#[pymethods]
impl Engine {
    #[new]
    #[pyo3(signature = (
        knobs, guardrails = None, rollback = None, seed = None, data_dir = None, *,
        manual_clock = false, eval_window_digests = None, eval_window_us = None,
        settle_time_us = None, calibration = true, resume = "if_present", audit_history = None,
    ))]
    #[allow(clippy::too_many_arguments)] // the settings, as keywords
    fn new(
        py: Python<'_>,
        knobs: Vec<Bound<'_, PyAny>>,
        guardrails: Option<PyRef<'_, Guardrails>>,
        rollback: Option<PyRef<'_, RollbackPolicy>>,
        seed: Option<&Bound<'_, PyAny>>,
        data_dir: Option<PathBuf>,
        manual_clock: bool,
        eval_window_digests: Option<&Bound<'_, PyAny>>,
        eval_window_us: Option<&Bound<'_, PyAny>>,
        settle_time_us: Option<&Bound<'_, PyAny>>,
        calibration: bool,
        resume: &str,
        audit_history: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let space = space_of(&knobs)?;
        let defaults = Settings::default();
        let number = |field: &str, v: Option<&Bound<'_, PyAny>>, default: u64| -> PyResult<u64> {
            match v.filter(|v| !v.is_none()) {
                Some(v) => errors::unsigned(Kind::Config, field, v, U64),
                None => Ok(default),
            }
        };
        let settings = Settings {
            guardrails: guardrails.map_or(defaults.guardrails.clone(), |g| g.inner.clone()),
            rollback: rollback.map_or(defaults.rollback, |r| r.inner),
            seed: number("seed", seed, defaults.seed)?,
            eval_window_digests: number(
                "eval_window_digests",
                eval_window_digests,
                defaults.eval_window_digests as u64,
            )? as usize,
            eval_window_us: number("eval_window_us", eval_window_us, defaults.eval_window_us)?,
            settle_time_us: number("settle_time_us", settle_time_us, defaults.settle_time_us)?,
            calibration,
        };
        let settings = settings.engine(&space);
        settings
            .validate(space.len())
            .map_err(|e| errors::engine(&e))?;
        Self::open(
            py,
            Opening {
                space,
                settings,
                data_dir,
                manual_clock,
                resume: resume_of(resume)?,
                audit_history: history_arg(audit_history)?,
            },
        )
    }

    /// An engine from a tuning config (the TOML the `hotpath` command
    /// reads), with `overrides` as `KEY=VALUE` strings (its `--set`).
    #[staticmethod]
    #[pyo3(signature = (
        path, data_dir = None, *, overrides = None, manual_clock = false,
        resume = "if_present", audit_history = None,
    ))]
    fn from_config(
        py: Python<'_>,
        path: PathBuf,
        data_dir: Option<PathBuf>,
        overrides: Option<Vec<String>>,
        manual_clock: bool,
        resume: &str,
        audit_history: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let overrides = overrides
            .unwrap_or_default()
            .iter()
            .map(|o| hotpath_config::Override::parse(o).map_err(errors::config))
            .collect::<PyResult<Vec<_>>>()?;
        let config = hotpath_config::load(&path, &overrides).map_err(errors::config)?;
        Self::open(
            py,
            Opening {
                space: Arc::clone(&config.space),
                settings: config.engine,
                data_dir,
                manual_clock,
                resume: resume_of(resume)?,
                audit_history: history_arg(audit_history)?,
            },
        )
    }

    /// A reader of the live configuration for the hot path (lock-free;
    /// safe to share between threads).
    fn reader(&self) -> Reader {
        Reader::new(Arc::clone(&self.source))
    }

    /// The live configuration now, as a new `Snapshot`.
    fn snapshot(&self, py: Python<'_>) -> PyResult<Py<Snapshot>> {
        Reader::load(py, &self.source)
    }

    /// The live generation (lock-free).
    #[getter]
    fn generation(&self) -> u64 {
        self.source.config.generation()
    }

    /// The knobs, in order.
    #[getter]
    fn knobs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let knobs = self
            .source
            .space
            .knobs()
            .iter()
            .map(|k| knobs::to_python(py, k))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, knobs)
    }

    /// The knobs' names, in order.
    #[getter]
    fn names(&self) -> Vec<String> {
        let knobs = self.source.space.knobs();
        knobs.iter().map(|k| k.name().to_owned()).collect()
    }

    /// What opening found: `restored` (a state file was resumed),
    /// `generation` (the first one), `first_seq` (of the first audit
    /// event), `truncations` and `truncated_bytes` (a torn log end cut).
    #[getter]
    fn opened<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::json(py, &self.opened)
    }

    /// The data directory (`audit/`, `state.json`), or `None` in memory.
    #[getter]
    fn data_dir(&self) -> Option<PathBuf> {
        self.data_dir.clone()
    }

    /// The engine's clock, µs.
    #[getter]
    fn now_us(&self) -> u64 {
        hotpath::Clock::now_us(&self.clock)
    }

    /// Moves the manual clock forward by `us` (`manual_clock=True` only).
    fn advance_clock(&self, us: &Bound<'_, PyAny>) -> PyResult<()> {
        let us: u64 = errors::unsigned(Kind::Config, "us", us, U64)?;
        match &self.clock {
            EngineClock::Manual(clock) => {
                clock.advance(us);
                Ok(())
            }
            EngineClock::System(_) => Err(errors::config(
                "advance_clock needs an engine made with manual_clock=True",
            )),
        }
    }

    /// Feeds one digest (the objective, lower is better, over `samples`
    /// samples) to the engine, which decides and, if it moves, applies
    /// through the executor. Releases the GIL while the engine works.
    #[pyo3(signature = (
        objective, samples, *, generation = None, margin = None, window_us = None, t_us = None,
    ))]
    #[allow(clippy::too_many_arguments)] // the digest's fields, as keywords
    fn step(
        &self,
        py: Python<'_>,
        objective: f64,
        samples: &Bound<'_, PyAny>,
        generation: Option<&Bound<'_, PyAny>>,
        margin: Option<f64>,
        window_us: Option<&Bound<'_, PyAny>>,
        t_us: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Decision> {
        let digest = Digest {
            objective,
            samples: errors::unsigned(Kind::Digest, "samples", samples, U64)?,
            generation: digest_arg("generation", generation)?,
            margin,
            window_us: digest_arg("window_us", window_us)?,
            t_us: digest_arg("t_us", t_us)?,
        };
        let stepped = self.with_core(py, |core| core.step(digest))?;
        Ok(Decision::new(stepped, Arc::clone(&self.source)))
    }

    /// An operator's move through the executor, judged by the same
    /// guardrails as the engine's: `values` is `{name: typed value}` for
    /// the knobs to move (the others stay). The receipt (`kind`,
    /// `old_generation`, `new_generation`, `timestamp_us`, `audit_seq`);
    /// `Refused` with the violation if the executor refuses it. The engine
    /// restarts its iteration from the new centre.
    fn propose<'py>(
        &self,
        py: Python<'py>,
        values: &Bound<'py, pyo3::types::PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let space = &self.source.space;
        let mut targets = Vec::with_capacity(values.len());
        for (name, value) in values {
            let name: String = name.extract()?;
            let Some(index) = space.index_of(&name) else {
                return Err(errors::config(format!("no knob is called `{name}`")));
            };
            let target = match space.knobs()[index].kind() {
                hotpath::KnobKind::Choice { .. } => {
                    let option: String = value.extract()?;
                    space
                        .encode(index, hotpath::Value::Choice(&option))
                        .map_err(|p| errors::config(format!("{name} = {option:?} {p}")))?
                }
                _ => value.extract::<f64>()?,
            };
            targets.push((index, target));
        }
        let receipt = self.with_core(py, |core| {
            core.operate(|h| {
                let live = h.config().load().params;
                let mut delta = hotpath::ParamVec::zeros(live.len());
                for &(index, target) in &targets {
                    if let (Some(d), Some(v)) = (delta.get_mut(index), live.get(index)) {
                        *d = target - v;
                    }
                }
                h.apply(hotpath::Proposal::Update {
                    iteration: 0,
                    delta,
                    gradient_estimate: hotpath::ParamVec::new(),
                })
            })
        })?;
        let value = serde_json::to_value(receipt).unwrap_or(serde_json::Value::Null);
        convert::json(py, &value)
    }

    /// The manual kill switch: safe mode until `resume()`.
    fn freeze(&self, py: Python<'_>) -> PyResult<()> {
        self.with_core(py, |core| core.operate(|h| h.freeze()))
    }

    /// Clears the manual latches; the names of the reasons cleared.
    fn resume(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let cleared = self.with_core(py, |core| core.operate(|h| h.resume()))?;
        Ok(cleared.iter().map(|r| convert::variant_name(&r)).collect())
    }

    /// Restores the baseline; the receipt (`reason`, `old_generation`,
    /// `new_generation`, `timestamp_us`, `circuit_breaker_tripped`, …).
    fn rollback<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let receipt = self.with_core(py, |core| core.operate(|h| h.rollback()))?;
        let value = serde_json::to_value(receipt).unwrap_or(serde_json::Value::Null);
        convert::json(py, &value)
    }

    /// Records the live centre as the new baseline; its generation.
    fn set_baseline(&self, py: Python<'_>) -> PyResult<u64> {
        self.with_core(py, |core| core.operate(|h| h.set_baseline()))
    }

    /// Saves the state file now; its path, or `None` in memory.
    fn save_state(&self, py: Python<'_>) -> PyResult<Option<PathBuf>> {
        self.with_core(py, |core| core.operate(|h| h.save_state()))
    }

    /// The engine's state as a `dict`: `generation` and `values`,
    /// `centre`, `baseline`, `safe_mode` (`active`, `reasons`), `engine`
    /// (`stage`, `iteration`, `noise_sd`), `counts`, `audit`, `clock_us`.
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (status, values) = self.with_core(py, |core| Ok(core.status()))?;
        let status = convert::json(py, &status)?;
        let (space, names) = (&self.source.space, &self.source.names);
        let named = |v: &[f64]| convert::named(py, space, names, v);
        status.set_item("values", named(&values.live)?)?;
        status
            .get_item("centre")?
            .set_item("values", named(&values.centre)?)?;
        if let Some(baseline) = &values.baseline {
            status
                .get_item("baseline")?
                .set_item("values", named(baseline)?)?;
        }
        Ok(status)
    }

    /// The audit events after seq `after` (all it holds without it),
    /// oldest first, at most `limit`: dicts of `seq`, `timestamp_us`,
    /// `generation`, `type`, `text` and `details`.
    #[pyo3(signature = (after = None, limit = None))]
    fn audit<'py>(
        &self,
        py: Python<'py>,
        after: Option<&Bound<'py, PyAny>>,
        limit: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let number = |field: &str, v: Option<&Bound<'py, PyAny>>| {
            v.filter(|v| !v.is_none())
                .map(|v| errors::unsigned(Kind::Config, field, v, u64::MAX))
                .transpose()
        };
        let after = number("after", after)?;
        let limit = number("limit", limit)?.map(|l| usize::try_from(l).unwrap_or(usize::MAX));
        let events = self.with_core(py, |core| Ok(core.audit(after, limit)))?;
        let items = events
            .iter()
            .map(|e| convert::event(py, e))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    /// Shuts down: rolls back first if asked, hands the log every event
    /// and closes it, saves the final state if asked. A summary `dict`;
    /// `None` if the engine was closed already.
    #[pyo3(signature = (*, rollback_to_baseline = false, save_state = true))]
    fn close<'py>(
        &self,
        py: Python<'py>,
        rollback_to_baseline: bool,
        save_state: bool,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let policy = ShutdownPolicy {
            rollback_to_baseline,
            save_state,
        };
        let summary = py.detach(|| {
            let mut guard = self.core.lock().unwrap_or_else(PoisonError::into_inner);
            guard.take().map(|core| core.shutdown(policy))
        });
        match summary {
            None => Ok(None),
            Some(Ok(summary)) => Ok(Some(convert::json(py, &summary)?)),
            Some(Err(e)) => Err(errors::host(e, &self.source.space)),
        }
    }

    /// `True` once `close()` was called.
    #[getter]
    fn closed(&self, py: Python<'_>) -> bool {
        py.detach(|| {
            let guard = self.core.lock().unwrap_or_else(PoisonError::into_inner);
            guard.is_none()
        })
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<()> {
        self.close(py, false, true).map(drop)
    }

    fn __repr__(&self) -> String {
        let dir = match &self.data_dir {
            Some(dir) => format!(
                ", data_dir={}",
                convert::repr_str(&dir.display().to_string())
            ),
            None => String::new(),
        };
        format!(
            "Engine(knobs={}, generation={}{dir})",
            convert::repr_list(&self.names()),
            self.generation()
        )
    }
}

/// Runs `n` steps of the benchmark's digest loop natively on an
/// in-memory engine over `knobs` (see `hotpath-py/benches`); the seconds
/// it took. The GIL is released meanwhile.
#[pyfunction(name = "_bench_native_steps")]
#[pyo3(signature = (knobs, n, seed = 0))]
pub fn bench_native_steps(
    py: Python<'_>,
    knobs: Vec<Bound<'_, PyAny>>,
    n: u64,
    seed: u64,
) -> PyResult<f64> {
    let space = space_of(&knobs)?;
    let run = Arc::clone(&space);
    py.detach(move || core::native_steps(run, seed, n))
        .map_err(|e| errors::host(e, &space))
}
