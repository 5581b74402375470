//! `GET /v1/knobs`: what each knob is (its kind, bounds, scale, grid or
//! options and initial value), for a page or a client that shows or
//! checks values. Built once from the [`ParamSpace`]: knobs do not change
//! while the server runs.

use hotpath::{KnobKind, ParamSpace, Scale, Value};
use serde::Serialize;

/// One knob as the API describes it.
///
/// ```
/// use hotpath::{Knob, ParamSpace};
/// use hotpath_server::KnobView;
///
/// let space = ParamSpace::new(vec![Knob::int("batch", 1, 4096, 64).log()])?;
/// let view = KnobView::of(&space, 0);
/// assert_eq!((view.kind, view.scale, view.min, view.max), ("int", Some("log"), Some(1.0), Some(4096.0)));
/// # Ok::<(), hotpath::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KnobView {
    /// The knob's name, as in `values`.
    pub name: String,
    /// `real`, `int` or `choice`.
    pub kind: &'static str,
    /// `linear` or `log` (numeric knobs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<&'static str>,
    /// Lower bound (numeric knobs; absent for an unbounded real).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Upper bound (numeric knobs; absent for an unbounded real).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Distance between two values of an integer knob's grid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<i64>,
    /// A choice's options, in index order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<String>>,
    /// The initial value, typed as in `values`.
    pub initial: serde_json::Value,
}

impl KnobView {
    /// The view of knob `index` of `space` (an index out of range gives an
    /// unbounded real without a name).
    pub fn of(space: &ParamSpace, index: usize) -> Self {
        let Some(knob) = space.knobs().get(index) else {
            return Self::real(String::new(), None, (f64::NEG_INFINITY, f64::INFINITY));
        };
        let initial = typed(space.value(index, knob.initial()));
        let name = knob.name().to_string();
        let view = match knob.kind() {
            KnobKind::Real { min, max, scale } => Self::real(name, Some(*scale), (*min, *max)),
            KnobKind::Int {
                min,
                max,
                step,
                scale,
            } => Self {
                kind: "int",
                step: Some(*step),
                ..Self::real(name, Some(*scale), (*min as f64, *max as f64))
            },
            KnobKind::Choice { options } => Self {
                kind: "choice",
                scale: None,
                options: Some(options.clone()),
                ..Self::real(name, None, (f64::NEG_INFINITY, f64::INFINITY))
            },
        };
        Self { initial, ..view }
    }

    fn real(name: String, scale: Option<Scale>, (min, max): (f64, f64)) -> Self {
        Self {
            name,
            kind: "real",
            scale: scale.map(|s| match s {
                Scale::Linear => "linear",
                Scale::Log => "log",
            }),
            min: min.is_finite().then_some(min),
            max: max.is_finite().then_some(max),
            step: None,
            options: None,
            initial: serde_json::Value::Null,
        }
    }
}

fn typed(value: Value<'_>) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

#[derive(Serialize)]
struct Body {
    knobs: Vec<KnobView>,
}

/// `{"knobs": [KnobView, …]}` of `space`, in index order.
pub(crate) fn knobs_json(space: &ParamSpace) -> String {
    let knobs = (0..space.len()).map(|i| KnobView::of(space, i)).collect();
    serde_json::to_string(&Body { knobs }).unwrap_or_else(|_| String::from(r#"{"knobs":[]}"#))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotpath::Knob;

    #[test]
    fn every_kind_is_described_with_typed_values() {
        let space = ParamSpace::new(vec![
            Knob::real("linger_ms", 0.1, 100.0, 5.0).log(),
            Knob::int("workers", 2, 32, 8).step(2),
            Knob::choice("codec", ["none", "lz4"], "lz4"),
            Knob::unbounded("gain", 0.5),
        ])
        .expect("space");
        let json: serde_json::Value =
            serde_json::from_str(&knobs_json(&space)).expect("valid JSON");
        let expected = serde_json::json!({"knobs": [
            {"name": "linger_ms", "kind": "real", "scale": "log", "min": 0.1, "max": 100.0, "initial": 5.0},
            {"name": "workers", "kind": "int", "scale": "linear", "min": 2.0, "max": 32.0, "step": 2, "initial": 8},
            {"name": "codec", "kind": "choice", "options": ["none", "lz4"], "initial": "lz4"},
            {"name": "gain", "kind": "real", "scale": "linear", "initial": 0.5},
        ]});
        assert_eq!(json, expected);
    }
}
