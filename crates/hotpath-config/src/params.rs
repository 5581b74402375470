//! `[[param]]`: the parameters, in index order, turned into
//! [`hotpath::Knob`]s.
//!
//! A table is read in two steps: [`RawParam`] is what may be written
//! (serde checks the keys and their types), [`Param::check`] what the
//! values must satisfy, and [`Param::knob`] the knob it becomes. The next
//! kinds of knob (`type = "int" | "choice"`, `scale = "log"`, `step`,
//! `options`) are new optional fields of `RawParam`, checked in
//! `Param::check` and mapped in `Param::knob`.

use crate::diagnostic::{Part, Problem};
use crate::source::Origins;
use crate::structure::{from_value, join_path, serde_problem};
use hotpath::Knob;
use hotpath::ShortFloat;
use serde::Deserialize;

/// One `[[param]]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "param")]
pub(crate) struct RawParam {
    name: String,
    min: f64,
    max: f64,
    initial: f64,
}

/// A parameter whose values were checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Param {
    pub(crate) name: String,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) initial: f64,
}

impl Param {
    /// Parameter `index`, checked against the ones before it: a unique
    /// non-empty name, finite `min < max`, `initial` within them. Problems
    /// go to `problems`; the parameter is returned either way, so later
    /// ones are checked too.
    fn check(
        index: usize,
        raw: RawParam,
        before: &[Param],
        origins: &Origins,
        problems: &mut Vec<Problem>,
    ) -> Param {
        let key = |field: &str| format!("param[{index}].{field}");
        let mut problem = |field: &str, message: String| {
            problems.push(Problem::at(origins, key(field), Part::Value, message));
        };
        let name = raw.name.trim();
        if name.is_empty() {
            problem("name", "expected a non-empty name".into());
        } else if let Some(j) = before.iter().position(|q| q.name == name) {
            problem(
                "name",
                format!("duplicate name \"{name}\": param[{j}] already has it"),
            );
        }
        let mut finite = true;
        for (field, v) in [("min", raw.min), ("max", raw.max), ("initial", raw.initial)] {
            if !v.is_finite() {
                finite = false;
                problem(field, format!("expected a finite number, got {v}"));
            }
        }
        let (min, max, initial) = (raw.min, raw.max, raw.initial);
        let (lo, hi, at) = (ShortFloat(min), ShortFloat(max), ShortFloat(initial));
        if finite && min >= max {
            problem("min", format!("min ({lo}) must be less than max ({hi})"));
        } else if finite && !(max - min).is_finite() {
            problem(
                "min",
                format!("the range from min {lo} to max {hi} overflows: max - min must be a finite number"),
            );
        } else if finite && !(min..=max).contains(&initial) {
            problem(
                "initial",
                format!("expected a value within [{lo}, {hi}], got {at}"),
            );
        }
        Param {
            name: name.to_owned(),
            min,
            max,
            initial,
        }
    }

    /// The knob this parameter is.
    pub(crate) fn knob(&self) -> Knob {
        Knob::real(self.name.clone(), self.min, self.max, self.initial)
    }
}

fn read(value: &toml::Value, origins: &Origins) -> Result<Vec<RawParam>, Problem> {
    from_value::<Vec<RawParam>>(value)
        .map_err(|(path, message)| serde_problem(origins, join_path("param", &path), &message))
}

/// The parameters of the merged config (its `param` value, if any),
/// checked; every problem goes to `problems`.
pub(crate) fn build(
    value: Option<&toml::Value>,
    origins: &Origins,
    problems: &mut Vec<Problem>,
) -> Vec<Param> {
    let raw = match value.map(|v| read(v, origins)) {
        None => Vec::new(),
        Some(Ok(raw)) => raw,
        Some(Err(problem)) => {
            problems.push(problem);
            return Vec::new();
        }
    };
    if raw.is_empty() {
        problems.push(Problem::whole(
            "no parameters: add at least one [[param]] table with name, min, max and initial",
        ));
    }
    let mut params: Vec<Param> = Vec::with_capacity(raw.len());
    for (i, p) in raw.into_iter().enumerate() {
        let param = Param::check(i, p, &params, origins, problems);
        params.push(param);
    }
    params
}
