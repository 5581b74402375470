//! The values a `[[param]]` table's keys hold as written: a number
//! ([`Number`]: a TOML integer or float, kept apart so an integer knob's
//! bounds are exact), and `initial` ([`Initial`]: a number, or a choice's
//! option by name). Their own deserialisers word a wrong type as a TOML
//! user would ("expected a number"), never with a Rust type's name.

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;

/// A number as written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Number {
    /// A TOML integer.
    Int(i64),
    /// A TOML float.
    Float(f64),
}

impl Number {
    /// As an `f64` (integers beyond 2⁵³ rounded, which only a real knob
    /// accepts).
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }

    /// The whole number it is: an integer, or a float without a fraction
    /// (`64.0`) within ±2⁵³, where floats are exact.
    pub(crate) fn whole(self) -> Option<i64> {
        match self {
            Number::Int(i) => Some(i),
            Number::Float(f)
                if f.is_finite()
                    && f.fract() == 0.0
                    && f.abs() <= hotpath::MAX_EXACT_INT as f64 =>
            {
                Some(f as i64)
            }
            Number::Float(_) => None,
        }
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Int(i) => write!(f, "{i}"),
            Number::Float(x) => write!(f, "{}", hotpath::ShortFloat(*x)),
        }
    }
}

/// `initial` as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Initial {
    /// A number (a real or an integer knob's).
    Number(Number),
    /// A string (a choice knob's option).
    Option(String),
}

/// Accepts integers and floats, and strings when `strings` is set.
struct NumberVisitor {
    strings: bool,
}

impl NumberVisitor {
    fn number<E: de::Error>(&self, n: Number) -> Result<Initial, E> {
        Ok(Initial::Number(n))
    }
}

impl Visitor<'_> for NumberVisitor {
    type Value = Initial;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.strings {
            f.write_str("a number, or the name of one of a choice's options")
        } else {
            f.write_str("a number")
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Initial, E> {
        self.number(Number::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Initial, E> {
        match i64::try_from(v) {
            Ok(i) => self.number(Number::Int(i)),
            Err(_) => self.number(Number::Float(v as f64)),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Initial, E> {
        self.number(Number::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Initial, E> {
        if self.strings {
            Ok(Initial::Option(v.to_owned()))
        } else {
            Err(E::invalid_type(de::Unexpected::Str(v), &self))
        }
    }
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match deserializer.deserialize_any(NumberVisitor { strings: false })? {
            Initial::Number(n) => Ok(n),
            Initial::Option(_) => Err(de::Error::custom("expected a number")),
        }
    }
}

impl<'de> Deserialize<'de> for Initial {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NumberVisitor { strings: true })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Doc {
        n: Option<Number>,
        initial: Option<Initial>,
    }

    fn doc(text: &str) -> Result<Doc, String> {
        toml::from_str(text).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn numbers_keep_integers_apart_and_refuse_other_types_plainly() {
        assert_eq!(doc("n = 3").map(|d| d.n), Ok(Some(Number::Int(3))));
        assert_eq!(doc("n = 2.5").map(|d| d.n), Ok(Some(Number::Float(2.5))));
        assert_eq!(
            doc("n = \"x\"").map(|d| d.n),
            Err("invalid type: string \"x\", expected a number".into())
        );
        assert_eq!(
            doc("initial = \"lz4\"").map(|d| d.initial),
            Ok(Some(Initial::Option("lz4".into())))
        );
        let e = doc("initial = true").map(|d| d.initial).unwrap_err();
        assert_eq!(
            e,
            "invalid type: boolean `true`, expected a number, or the name of one of a choice's options"
        );
    }

    #[test]
    fn whole_numbers_are_integers_or_exact_floats() {
        assert_eq!(Number::Float(64.0).whole(), Some(64));
        assert_eq!(Number::Float(64.5).whole(), None);
        assert_eq!(Number::Float(1e300).whole(), None);
        assert_eq!(Number::Float(f64::NAN).whole(), None);
        assert_eq!(Number::Int(i64::MAX).whole(), Some(i64::MAX));
        assert_eq!(Number::Float(1e300).to_string(), "1e300");
    }
}
