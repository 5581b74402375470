//! `[[param]]`: the parameters, in index order, turned into
//! [`hotpath::Knob`]s.
//!
//! A table is read in two steps: [`RawParam`] is what may be written
//! (serde checks the keys and their types, in the first pass), and
//! [`Param::check`] what the values must satisfy for the knob's kind and
//! the knob it becomes (in the second pass, every problem at its key).
//!
//! ```toml
//! [[param]]
//! name = "batch_size"
//! type = "int"            # real (the default) | int | choice
//! scale = "log"           # linear (the default) | log (needs min > 0)
//! min = 1
//! max = 4096
//! step = 1                # integers only; the grid is min + k·step
//! initial = 64
//!
//! [[param]]
//! name = "codec"
//! type = "choice"
//! options = ["none", "lz4", "zstd"]
//! initial = "lz4"         # one of the options, by name
//! ```
//!
//! The kinds' rules are in `kind.rs`; how numbers and `initial` are read,
//! in `written.rs`. A key that does not apply to the knob's kind (`step`
//! on a real, `options` on an integer, `min` on a choice) is a problem at
//! that key rather than ignored, so a mistyped `type` is not silently a
//! real knob.

mod kind;
mod written;

pub(crate) use written::{Initial, Number};

use crate::diagnostic::{Part, Problem};
use crate::source::Origins;
use crate::structure::{from_value, join_path, serde_problem};
use hotpath::{Knob, Scale};
use serde::Deserialize;

/// `type`: what values the knob takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum KindName {
    /// A real number in `[min, max]`.
    #[default]
    Real,
    /// An integer `min + k·step` in `[min, max]`.
    Int,
    /// One of `options`.
    Choice,
}

impl KindName {
    /// The kind with its article, for messages: `an integer knob`.
    pub(crate) fn described(self) -> &'static str {
        match self {
            KindName::Real => "a real knob",
            KindName::Int => "an integer knob",
            KindName::Choice => "a choice knob",
        }
    }
}

/// One `[[param]]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "param")]
pub(crate) struct RawParam {
    name: String,
    #[serde(rename = "type", default)]
    kind: KindName,
    scale: Option<Scale>,
    min: Option<Number>,
    max: Option<Number>,
    step: Option<Number>,
    options: Option<Vec<String>>,
    initial: Initial,
}

/// A parameter whose values were checked: its knob, unless it has
/// problems (which were reported).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Param {
    pub(crate) name: String,
    pub(crate) knob: Option<Knob>,
}

/// Where the problems of parameter `index` go.
pub(crate) struct At<'a> {
    index: usize,
    origins: &'a Origins,
    problems: &'a mut Vec<Problem>,
}

impl At<'_> {
    /// A problem with `field`'s value (or, for a field not written, at
    /// its table).
    pub(crate) fn problem(&mut self, field: &str, message: impl Into<String>) {
        let key = format!("param[{}].{field}", self.index);
        self.problems
            .push(Problem::at(self.origins, key, Part::Value, message));
    }

    /// `value`, or a problem saying `kind` needs `field`.
    pub(crate) fn required<T: Clone>(
        &mut self,
        value: &Option<T>,
        field: &str,
        kind: KindName,
        needs: &str,
    ) -> Option<T> {
        if value.is_none() {
            self.problem(
                field,
                format!("missing: {} needs {needs}", kind.described()),
            );
        }
        value.clone()
    }
}

impl Param {
    /// Parameter `index`, checked against the ones before it: a unique
    /// non-empty name, then the rules of its kind. Problems go to
    /// `problems`; the parameter is returned either way, so later ones are
    /// checked too.
    fn check(
        index: usize,
        raw: RawParam,
        before: &[Param],
        origins: &Origins,
        problems: &mut Vec<Problem>,
    ) -> Param {
        let mut at = At {
            index,
            origins,
            problems,
        };
        let before_count = at.problems.len();
        let name = raw.name.trim().to_owned();
        if name.is_empty() {
            at.problem("name", "expected a non-empty name");
        } else if let Some(j) = before.iter().position(|q| q.name == name) {
            at.problem(
                "name",
                format!("duplicate name \"{name}\": param[{j}] already has it"),
            );
        }
        inapplicable(&mut at, &raw);
        let knob = match raw.kind {
            KindName::Real => kind::real(&mut at, &name, &raw),
            KindName::Int => kind::int(&mut at, &name, &raw),
            KindName::Choice => kind::choice(&mut at, &name, &raw),
        };
        let sound = at.problems.len() == before_count;
        Param {
            name,
            knob: knob.filter(|_| sound),
        }
    }

    /// Its initial value in the live encoding (NaN for a parameter with
    /// problems).
    pub(crate) fn initial(&self) -> f64 {
        self.knob.as_ref().map_or(f64::NAN, Knob::initial)
    }

    /// Its bounds in the live encoding, as the guardrails take them.
    pub(crate) fn bounds(&self) -> (f64, f64) {
        self.knob
            .as_ref()
            .and_then(Knob::bounds)
            .unwrap_or((f64::NEG_INFINITY, f64::INFINITY))
    }
}

/// The keys written that do not apply to the knob's kind, each a problem.
fn inapplicable(at: &mut At, raw: &RawParam) {
    let kind = raw.kind;
    let written = [
        ("scale", raw.scale.is_some()),
        ("min", raw.min.is_some()),
        ("max", raw.max.is_some()),
        ("step", raw.step.is_some()),
        ("options", raw.options.is_some()),
    ];
    for (field, present) in written {
        let message = match (kind, field) {
            _ if !present => continue,
            (KindName::Choice, _) if field != "options" => format!(
                "{field} does not apply to a choice knob (it takes options and an initial option)"
            ),
            (KindName::Real, "step") => {
                "step applies only to integer knobs (type = \"int\"); this is a real knob".into()
            }
            (KindName::Real | KindName::Int, "options") => format!(
                "options apply only to choice knobs (type = \"choice\"); this is {}",
                kind.described()
            ),
            _ => continue,
        };
        at.problem(field, message);
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
            "no parameters: add at least one [[param]] table: a name, an initial value, and min and max (or type = \"choice\" and its options)",
        ));
    }
    let mut params: Vec<Param> = Vec::with_capacity(raw.len());
    for (i, p) in raw.into_iter().enumerate() {
        let param = Param::check(i, p, &params, origins, problems);
        params.push(param);
    }
    params
}

#[cfg(test)]
mod tests;
