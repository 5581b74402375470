//! Rust values as Python objects: typed knob values, named values and
//! JSON documents (status, audit details).

use hotpath::{AuditEvent, ParamSpace, Value};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

/// A knob's typed value: `int` for an integer knob, `str` for a choice,
/// `float` for a real.
pub fn value<'py>(py: Python<'py>, value: Value<'_>) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Real(v) => v.into_pyobject(py)?.into_any(),
        Value::Int(v) => v.into_pyobject(py)?.into_any(),
        Value::Choice(o) => PyString::new(py, o).into_any(),
    })
}

/// `{name: typed value}` of `values` (the live encoding) in `space`,
/// keyed by `names` (the space's names as Python strings, made once).
pub fn named<'py>(
    py: Python<'py>,
    space: &ParamSpace,
    names: &[Py<PyString>],
    values: &[f64],
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (i, (name, &raw)) in names.iter().zip(values).enumerate() {
        dict.set_item(name.bind(py), value(py, space.value(i, raw))?)?;
    }
    Ok(dict)
}

/// A move's size per knob, `{name: change}`: an `int` for an integer
/// knob and for a choice (options moved by), a `float` for a real.
pub fn delta<'py>(
    py: Python<'py>,
    space: &ParamSpace,
    names: &[Py<PyString>],
    delta: &[f64],
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (i, (name, &d)) in names.iter().zip(delta).enumerate() {
        let change = match space.knobs().get(i).map(hotpath::Knob::kind) {
            Some(hotpath::KnobKind::Real { .. }) | None => d.into_pyobject(py)?.into_any(),
            Some(_) if d.is_finite() => (d.round() as i64).into_pyobject(py)?.into_any(),
            Some(_) => d.into_pyobject(py)?.into_any(),
        };
        dict.set_item(name.bind(py), change)?;
    }
    Ok(dict)
}

/// The space's names as Python strings (interned: dictionary lookups by
/// a literal key then compare by identity first).
pub fn names(py: Python<'_>, space: &ParamSpace) -> Vec<Py<PyString>> {
    space
        .knobs()
        .iter()
        .map(|k| PyString::intern(py, k.name()).unbind())
        .collect()
}

/// A JSON document as Python objects (`dict`, `list`, `int`, `float`,
/// `str`, `bool`, `None`).
pub fn json<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => py.None().into_bound(py),
        J::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        J::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u.into_pyobject(py)?.into_any(),
            (None, Some(i)) => i.into_pyobject(py)?.into_any(),
            _ => n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
        },
        J::String(s) => PyString::new(py, s).into_any(),
        J::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json(py, item)?)?;
            }
            list.into_any()
        }
        J::Object(map) => {
            let dict = PyDict::new(py);
            for (key, item) in map {
                dict.set_item(key, json(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

/// The name of `value`'s variant: its `Debug` text up to the first
/// character that cannot be in an identifier (`NoBaseline`,
/// `DeltaTooLarge`, `Manual`), as the audit log spells it.
pub fn variant_name<T: std::fmt::Debug>(value: &T) -> String {
    let text = format!("{value:?}");
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    text[..end].to_string()
}

/// `text` as Python's `repr` writes a string (single quotes).
pub fn repr_str(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A list of strings as Python's `repr` writes it.
pub fn repr_list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| repr_str(s)).collect();
    format!("[{}]", items.join(", "))
}

/// One audit event as a `dict`: `seq`, `timestamp_us`, `generation`,
/// `type` (as `hotpath audit show --type` names it), `text` (its one line
/// for people) and `details` (as the audit log writes them).
pub fn event<'py>(py: Python<'py>, event: &AuditEvent) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("seq", event.seq)?;
    dict.set_item("timestamp_us", event.timestamp_us)?;
    dict.set_item("generation", event.generation)?;
    dict.set_item("type", event.event_type().name())?;
    dict.set_item("text", event.to_string())?;
    let details = serde_json::to_value(&event.details).unwrap_or(serde_json::Value::Null);
    dict.set_item("details", json(py, &details)?)?;
    Ok(dict)
}
