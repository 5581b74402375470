//! Knobs and their values as the command shows them to people: by name,
//! typed (an integer as an integer, a choice as its option), the one place
//! the CLI's reports, `audit show` and the demo's view format them.
//!
//! ```
//! use hotpath::{Knob, ParamSpace};
//! use hotpath_cli::named::{changes, values, Digits};
//!
//! let space = ParamSpace::new(vec![
//!     Knob::int("batch_size", 1, 64, 48),
//!     Knob::real("linger_ms", 0.1, 6.0, 2.0).log(),
//!     Knob::choice("encoding", ["json", "csv", "varint"], "csv"),
//! ])?;
//! assert_eq!(values(&space, &[48.0, 2.0, 1.0], Digits::Two), "batch_size=48 linger_ms=2.00 encoding=csv");
//! assert_eq!(
//!     changes(&space, &[48.0, 2.0, 1.0], &[52.0, 2.0, 2.0], Digits::Two),
//!     "batch_size 48 -> 52, encoding csv -> varint"
//! );
//! # Ok::<(), hotpath::ConfigError>(())
//! ```

use hotpath::ShortFloat;
use hotpath::{Knob, KnobKind, ParamSpace, Scale, Value};
use std::fmt::Write as _;

/// How many digits a real value is shown with (integers and options are
/// always shown whole).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digits {
    /// The shortest decimal that reads back as the same `f64` (exponent
    /// notation for the very large and small): for audit tools.
    Exact,
    /// At most six decimals, trailing zeros dropped: for summaries.
    Six,
    /// Two decimals, or three significant digits below 1 (a log-scale
    /// knob's small values move in the third): for the live view.
    Two,
}

/// `value` as text: a real with `digits`, an integer whole, a choice as
/// its option.
///
/// ```
/// use hotpath::Value;
/// use hotpath_cli::named::{value, Digits};
///
/// assert_eq!(value(Value::Real(2.0 / 3.0), Digits::Six), "0.666667");
/// assert_eq!(value(Value::Real(1e300), Digits::Exact), "1e300");
/// assert_eq!(value(Value::Real(2.5), Digits::Two), "2.50");
/// assert_eq!(value(Value::Real(0.2587), Digits::Two), "0.259");
/// assert_eq!(value(Value::Real(0.012345), Digits::Two), "0.0123");
/// assert_eq!(value(Value::Int(52), Digits::Two), "52");
/// assert_eq!(value(Value::Choice("lz4"), Digits::Two), "lz4");
/// ```
pub fn value(value: Value<'_>, digits: Digits) -> String {
    match (value, digits) {
        (Value::Real(x), Digits::Exact) => ShortFloat(x).to_string(),
        (Value::Real(x), Digits::Six) => short(x),
        (Value::Real(x), Digits::Two) if x.abs() >= 1.0 || x == 0.0 => format!("{x:.2}"),
        (Value::Real(x), Digits::Two) => {
            let decimals = (2.0 - x.abs().log10().floor()).clamp(2.0, 17.0) as usize;
            format!("{x:.decimals$}")
        }
        (other, _) => other.to_string(),
    }
}

/// Every knob as `name=value`, separated by spaces.
///
/// ```
/// use hotpath::{Knob, ParamSpace};
/// use hotpath_cli::named::{values, Digits};
///
/// let space = ParamSpace::new(vec![Knob::int("n", 1, 9, 3), Knob::choice("c", ["a", "b"], "a")])?;
/// assert_eq!(values(&space, &[4.0, 1.0], Digits::Exact), "n=4 c=b");
/// # Ok::<(), hotpath::ConfigError>(())
/// ```
pub fn values(space: &ParamSpace, live: &[f64], digits: Digits) -> String {
    let mut text = String::new();
    for (i, (name, v)) in space.named(live).iter().enumerate() {
        let sep = if i == 0 { "" } else { " " };
        let _ = write!(text, "{sep}{name}={}", value(v, digits));
    }
    text
}

/// The knobs that differ between `before` and `after`, as `name before ->
/// after`, separated by commas; `no change` when none does.
///
/// ```
/// use hotpath::{Knob, ParamSpace};
/// use hotpath_cli::named::{changes, Digits};
///
/// let space = ParamSpace::new(vec![Knob::int("n", 1, 9, 3), Knob::real("x", 0.0, 1.0, 0.5)])?;
/// assert_eq!(changes(&space, &[3.0, 0.5], &[4.0, 0.5], Digits::Two), "n 3 -> 4");
/// assert_eq!(changes(&space, &[3.0, 0.5], &[3.0, 0.5], Digits::Two), "no change");
/// # Ok::<(), hotpath::ConfigError>(())
/// ```
pub fn changes(space: &ParamSpace, before: &[f64], after: &[f64], digits: Digits) -> String {
    let mut text = String::new();
    for (i, (b, a)) in before.iter().zip(after).enumerate() {
        if b.to_bits() == a.to_bits() {
            continue;
        }
        let sep = if text.is_empty() { "" } else { ", " };
        let (b, a) = (space.value(i, *b), space.value(i, *a));
        let _ = write!(
            text,
            "{sep}{} {} -> {}",
            space.name(i),
            value(b, digits),
            value(a, digits)
        );
    }
    if text.is_empty() {
        text.push_str("no change");
    }
    text
}

/// The values before a change that left `after` by `delta`, for when they
/// were not seen: `after − delta`, on the knob's grid for an integer or a
/// choice (where the subtraction is exact anyway), so only a real may show
/// a rounding error.
///
/// ```
/// use hotpath::{Knob, ParamSpace};
/// use hotpath_cli::named::before;
///
/// let space = ParamSpace::new(vec![Knob::int("n", 1, 9, 3)])?;
/// assert_eq!(before(&space, &[4.0], &[1.0]), [3.0]);
/// # Ok::<(), hotpath::ConfigError>(())
/// ```
pub fn before(space: &ParamSpace, after: &[f64], delta: &[f64]) -> Vec<f64> {
    after
        .iter()
        .zip(delta)
        .enumerate()
        .map(|(i, (a, d))| match space.knobs().get(i).map(Knob::kind) {
            Some(KnobKind::Int { .. } | KnobKind::Choice { .. }) => space.snap(i, a - d),
            _ => a - d,
        })
        .collect()
}

/// What a knob is, in the config file's words: `integer in [1, 512], from
/// 64`, `real in [0.5, 50], log scale, from 10`, `choice of none, lz4,
/// zstd, from lz4`.
///
/// ```
/// use hotpath::Knob;
/// use hotpath_cli::named::knob;
///
/// assert_eq!(knob(&Knob::int("w", 2, 32, 8).step(2)), "integer in [2, 32], step 2, from 8");
/// assert_eq!(knob(&Knob::real("t", 0.5, 50.0, 10.0).log()), "real in [0.5, 50], log scale, from 10");
/// assert_eq!(knob(&Knob::choice("c", ["none", "lz4"], "lz4")), "choice of none, lz4, from lz4");
/// ```
pub fn knob(knob: &Knob) -> String {
    let scale = |s: Scale| if s == Scale::Log { ", log scale" } else { "" };
    let initial = knob.initial();
    match knob.kind() {
        KnobKind::Real { min, max, scale: s } => format!(
            "real in [{}, {}]{}, from {}",
            ShortFloat(*min),
            ShortFloat(*max),
            scale(*s),
            ShortFloat(initial)
        ),
        KnobKind::Int {
            min,
            max,
            step,
            scale: s,
        } => {
            let step = if *step == 1 {
                String::new()
            } else {
                format!(", step {step}")
            };
            format!(
                "integer in [{min}, {max}]{step}{}, from {}",
                scale(*s),
                initial as i64
            )
        }
        KnobKind::Choice { options } => {
            let start = options.get(initial as usize).map_or("?", String::as_str);
            format!("choice of {}, from {start}", options.join(", "))
        }
    }
}

/// `x` with at most six decimals, without trailing zeros (in exponent
/// notation beyond `1e16`, [`ShortFloat`]).
///
/// ```
/// use hotpath_cli::named::short;
///
/// assert_eq!(short(53.181188051), "53.181188");
/// assert_eq!(short(-0.0000001), "0");
/// ```
pub fn short(x: f64) -> String {
    if x.abs() >= 1e16 {
        return ShortFloat(x).to_string();
    }
    let s = format!("{x:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_numbers() {
        assert_eq!(short(64.0), "64");
        assert_eq!(short(53.181188051), "53.181188");
        assert_eq!(short(-0.0000001), "0");
        assert_eq!(short(0.5), "0.5");
        assert_eq!(short(-f64::MAX), "-1.7976931348623157e308");
    }

    #[test]
    fn values_that_are_no_option_of_their_choice_show_as_numbers() {
        let space = ParamSpace::new(vec![Knob::choice("c", ["a", "b"], "a")]).expect("valid");
        assert_eq!(values(&space, &[7.0], Digits::Exact), "c=7");
        assert_eq!(changes(&space, &[0.0], &[7.0], Digits::Exact), "c a -> 7");
    }
}
