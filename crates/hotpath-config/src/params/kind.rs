//! The rules of each kind of `[[param]]`: what a real, an integer and a
//! choice knob need, each problem worded for the key that has it. They
//! are the rules of [`hotpath::Knob`] (which the space checks again when it
//! is built), said in the file's terms: a log scale's `min`, an integer
//! knob's grid, a choice's options by name.

use super::{At, Initial, KindName, Number, RawParam};
use hotpath::ShortFloat;
use hotpath::{Knob, KnobKind, Scale, MAX_EXACT_INT, MAX_OPTIONS};

/// Options a message lists before `…`.
const LISTED: usize = 8;

/// A real knob: finite `min < max` with a finite width, `initial` a
/// number within them, and `min > 0` on a log scale.
pub(super) fn real(at: &mut At, name: &str, raw: &RawParam) -> Option<Knob> {
    let kind = KindName::Real;
    let min = at.required(&raw.min, "min", kind, "min and max");
    let max = at.required(&raw.max, "max", kind, "min and max");
    let initial = number_initial(at, &raw.initial);
    let (min, max, initial) = (min?.as_f64(), max?.as_f64(), initial?.as_f64());
    let mut finite = true;
    for (field, v) in [("min", min), ("max", max), ("initial", initial)] {
        if !v.is_finite() {
            finite = false;
            at.problem(field, format!("expected a finite number, got {v}"));
        }
    }
    if !finite {
        return None;
    }
    let scale = raw.scale.unwrap_or_default();
    let (lo, hi, v) = (ShortFloat(min), ShortFloat(max), ShortFloat(initial));
    if min >= max {
        at.problem("min", format!("min ({lo}) must be less than max ({hi})"));
    } else if !(max - min).is_finite() {
        at.problem(
            "min",
            format!(
                "the range from min {lo} to max {hi} overflows: max - min must be a finite number"
            ),
        );
    } else if scale == Scale::Log && min <= 0.0 {
        at.problem("min", log_needs_positive(lo));
    } else if !(min..=max).contains(&initial) {
        at.problem(
            "initial",
            format!("expected a value within [{lo}, {hi}], got {v}"),
        );
    } else {
        return Some(Knob::new(name, KnobKind::Real { min, max, scale }, initial));
    }
    None
}

/// An integer knob: whole `min < max` within ±2⁵³, a whole `step` from 1
/// to `max − min` (1 if not written), `initial` on the grid `min +
/// k·step` within the bounds, and `min > 0` on a log scale.
pub(super) fn int(at: &mut At, name: &str, raw: &RawParam) -> Option<Knob> {
    let kind = KindName::Int;
    let min = at.required(&raw.min, "min", kind, "min and max");
    let max = at.required(&raw.max, "max", kind, "min and max");
    let min = min.and_then(|n| bound(at, "min", n));
    let max = max.and_then(|n| bound(at, "max", n));
    let step = match raw.step {
        None => Some(1),
        Some(n) => match n.whole() {
            Some(s) if s >= 1 => Some(s),
            _ => {
                at.problem("step", format!("expected a whole number ≥ 1, got {n}"));
                None
            }
        },
    };
    let initial = number_initial(at, &raw.initial).and_then(|n| {
        let whole = n.whole();
        if whole.is_none() {
            at.problem(
                "initial",
                format!("expected a whole number (this is an integer knob), got {n}"),
            );
        }
        whole
    });
    let (min, max, step, initial) = (min?, max?, step?, initial?);
    let scale = raw.scale.unwrap_or_default();
    if min >= max {
        at.problem("min", format!("min ({min}) must be less than max ({max})"));
    } else if step > max - min {
        at.problem(
            "step",
            format!("step {step} is wider than the range from min {min} to max {max}"),
        );
    } else if scale == Scale::Log && min <= 0 {
        at.problem("min", log_needs_positive(ShortFloat(min as f64)));
    } else if !(min..=max).contains(&initial) {
        at.problem(
            "initial",
            format!("expected a value within [{min}, {max}], got {initial}"),
        );
    } else if (initial - min) % step != 0 {
        let below = initial - (initial - min) % step;
        at.problem(
            "initial",
            format!(
                "expected a value on the grid min + k × step ({min}, {}, …), got {initial}: the nearest are {below} and {}",
                min + step,
                below + step
            ),
        );
    } else {
        let kind = KnobKind::Int {
            min,
            max,
            step,
            scale,
        };
        return Some(Knob::new(name, kind, initial as f64));
    }
    None
}

/// A choice knob: 2 to [`MAX_OPTIONS`] non-empty, distinct options, and
/// `initial` one of them, by name.
pub(super) fn choice(at: &mut At, name: &str, raw: &RawParam) -> Option<Knob> {
    let needs = "its options, e.g. options = [\"crc32\", \"sha256\"]";
    let options = at.required(&raw.options, "options", KindName::Choice, needs)?;
    let mut sound = true;
    if !(2..=MAX_OPTIONS).contains(&options.len()) {
        sound = false;
        at.problem(
            "options",
            format!("expected 2 to {MAX_OPTIONS} options, got {}", options.len()),
        );
    }
    for (j, option) in options.iter().enumerate() {
        let field = format!("options[{j}]");
        if option.trim().is_empty() {
            sound = false;
            at.problem(&field, "expected a non-empty option name");
        } else if let Some(first) = options[..j].iter().position(|o| o == option) {
            sound = false;
            at.problem(
                &field,
                format!("duplicate option \"{option}\": options[{first}] already has it"),
            );
        }
    }
    let initial = match &raw.initial {
        // No options to name: the count's problem says it all.
        _ if options.is_empty() => None,
        Initial::Option(o) if options.contains(o) => Some(o.as_str()),
        Initial::Option(o) => {
            at.problem(
                "initial",
                format!(
                    "expected one of the options ({}), got \"{o}\"",
                    listed(&options)
                ),
            );
            None
        }
        Initial::Number(n) => {
            at.problem(
                "initial",
                format!(
                    "expected one of the options as a string ({}), got the number {n}",
                    listed(&options)
                ),
            );
            None
        }
    };
    let initial = initial.filter(|_| sound)?;
    Some(Knob::choice(name, options.iter().cloned(), initial))
}

/// `initial` as a number, or a problem: a string is a choice's option.
fn number_initial(at: &mut At, initial: &Initial) -> Option<Number> {
    match initial {
        Initial::Number(n) => Some(*n),
        Initial::Option(o) => {
            at.problem(
                "initial",
                format!(
                    "expected a number, got the string \"{o}\" (options by name are for choice knobs: type = \"choice\")"
                ),
            );
            None
        }
    }
}

/// An integer knob's bound: a whole number within ±2⁵³.
fn bound(at: &mut At, field: &str, n: Number) -> Option<i64> {
    match n.whole() {
        Some(v) if v.unsigned_abs() <= MAX_EXACT_INT.unsigned_abs() => Some(v),
        Some(_) => {
            at.problem(
                field,
                format!("expected an integer within ±2^53 ({MAX_EXACT_INT}), got {n}"),
            );
            None
        }
        None => {
            at.problem(
                field,
                format!("expected a whole number (this is an integer knob), got {n}"),
            );
            None
        }
    }
}

fn log_needs_positive(min: ShortFloat) -> String {
    format!("a log scale (scale = \"log\") needs min > 0, got {min}")
}

/// `"a", "b", "c"`, the first [`LISTED`] of them.
fn listed(options: &[String]) -> String {
    let mut quoted: Vec<String> = options
        .iter()
        .take(LISTED)
        .map(|o| format!("\"{o}\""))
        .collect();
    if options.len() > LISTED {
        quoted.push("…".into());
    }
    quoted.join(", ")
}
