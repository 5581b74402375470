//! Typed values and handles: how a knob's `f64` in the live configuration
//! reads as what it stands for, without a string lookup on the hot path.

use super::{KnobKind, ParamSpace};
use crate::config_atomic::ConfigSnapshot;
use std::fmt;

/// A knob's value as what it stands for: a real, an integer, or a
/// choice's option.
///
/// ```
/// use hotpath::Value;
///
/// assert_eq!(Value::Int(64).to_string(), "64");
/// assert_eq!(Value::Choice("zstd").to_string(), "zstd");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// A real knob's value.
    Real(f64),
    /// An integer knob's value.
    Int(i64),
    /// A choice knob's option.
    Choice(&'a str),
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Real(v) => write!(f, "{v}"),
            Value::Int(v) => write!(f, "{v}"),
            Value::Choice(o) => f.write_str(o),
        }
    }
}

impl serde::Serialize for Value<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Real(v) => s.serialize_f64(*v),
            Value::Int(v) => s.serialize_i64(*v),
            Value::Choice(o) => s.serialize_str(o),
        }
    }
}

/// Every knob's name and typed value ([`ParamSpace::named`]). Serialises
/// as a map `{name: value}`; displays as `name=value` pairs.
///
/// ```
/// use hotpath::{Knob, ParamSpace};
///
/// let space = ParamSpace::new(vec![Knob::int("batch", 1, 512, 64)])?;
/// let named = space.named(&[48.0]);
/// assert_eq!(named.iter().next(), Some(("batch", hotpath::Value::Int(48))));
/// # Ok::<(), hotpath::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct NamedValues<'a> {
    space: &'a ParamSpace,
    values: &'a [f64],
}

impl<'a> NamedValues<'a> {
    pub(super) fn new(space: &'a ParamSpace, values: &'a [f64]) -> Self {
        Self { space, values }
    }

    /// The pairs, in index order.
    ///
    /// ```
    /// use hotpath::{Knob, ParamSpace, Value};
    ///
    /// let space = ParamSpace::new(vec![Knob::real("x", 0.0, 1.0, 0.5)])?;
    /// let pairs: Vec<_> = space.named(&[0.25]).iter().collect();
    /// assert_eq!(pairs, [("x", Value::Real(0.25))]);
    /// # Ok::<(), hotpath::ConfigError>(())
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Value<'a>)> + 'a {
        let (space, values) = (self.space, self.values);
        values
            .iter()
            .enumerate()
            .map(move |(i, &v)| (space.name(i), space.value(i, v)))
    }
}

impl fmt::Display for NamedValues<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, value)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{name}={value}")?;
        }
        Ok(())
    }
}

impl serde::Serialize for NamedValues<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

/// A knob looked up by name and kind once, at set-up, to read it on the hot
/// path by index: [`RealKnob`], [`IntKnob`], [`ChoiceKnob`]. See
/// [`ConfigSnapshot::get`].
pub trait KnobHandle: Copy {
    /// What a read gives.
    type Value;
    /// The knob's index.
    fn index(self) -> usize;
    /// The value for the live encoding `raw`.
    fn decode(self, raw: f64) -> Self::Value;
}

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident, $value:ty, $decode:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(usize);

        impl KnobHandle for $name {
            type Value = $value;
            #[inline]
            fn index(self) -> usize {
                self.0
            }
            #[inline]
            fn decode(self, raw: f64) -> $value {
                $decode(raw)
            }
        }
    };
}

handle!(
    /// A real knob's handle ([`ParamSpace::real`]); reads an `f64`.
    RealKnob, f64, |raw: f64| raw
);
handle!(
    /// An integer knob's handle ([`ParamSpace::int`]); reads an `i64`.
    IntKnob, i64, |raw: f64| raw as i64
);
handle!(
    /// A choice knob's handle ([`ParamSpace::choice`]); reads the option's
    /// index (its name: [`ParamSpace::option`]).
    ChoiceKnob, usize, |raw: f64| raw as usize
);

/// Why [`ParamSpace::real`], [`int`](ParamSpace::int) or
/// [`choice`](ParamSpace::choice) found no such knob.
///
/// ```
/// use hotpath::{Knob, ParamSpace};
///
/// let space = ParamSpace::new(vec![Knob::real("ratio", 0.0, 1.0, 0.5)])?;
/// let err = space.int("ratio").unwrap_err();
/// assert_eq!(err.to_string(), "knob `ratio` is a real knob, not an integer knob");
/// # Ok::<(), hotpath::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KnobLookupError {
    /// No knob has that name.
    #[error("no knob is called `{name}`")]
    Missing {
        /// The name asked for.
        name: String,
    },
    /// The knob is of another kind.
    #[error("knob `{name}` is a {found} knob, not {wanted} knob")]
    WrongKind {
        /// The name asked for.
        name: String,
        /// Its kind.
        found: &'static str,
        /// The kind asked for, with its article.
        wanted: &'static str,
    },
}

fn kind_name(kind: &KnobKind) -> &'static str {
    match kind {
        KnobKind::Real { .. } => "real",
        KnobKind::Int { .. } => "integer",
        KnobKind::Choice { .. } => "choice",
    }
}

impl ParamSpace {
    fn lookup(
        &self,
        name: &str,
        wanted: &'static str,
        fits: fn(&KnobKind) -> bool,
    ) -> Result<usize, KnobLookupError> {
        let Some(index) = self.index_of(name) else {
            return Err(KnobLookupError::Missing { name: name.into() });
        };
        let kind = &self.knobs[index].kind;
        if fits(kind) {
            Ok(index)
        } else {
            Err(KnobLookupError::WrongKind {
                name: name.into(),
                found: kind_name(kind),
                wanted,
            })
        }
    }

    /// The handle of the real knob called `name`.
    ///
    /// # Errors
    ///
    /// [`KnobLookupError`] if there is none or it is of another kind.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, Knob, ParamSpace};
    ///
    /// let space = ParamSpace::new(vec![Knob::real("linger_ms", 0.1, 100.0, 5.0).log()])?;
    /// let linger = space.real("linger_ms")?;
    /// let config = AtomicConfig::new(space.initial());
    /// assert_eq!(config.load().get(linger), 5.0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn real(&self, name: &str) -> Result<RealKnob, KnobLookupError> {
        self.lookup(name, "a real", |k| matches!(k, KnobKind::Real { .. }))
            .map(RealKnob)
    }

    /// The handle of the integer knob called `name`.
    ///
    /// # Errors
    ///
    /// [`KnobLookupError`] if there is none or it is of another kind.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, Knob, ParamSpace};
    ///
    /// let space = ParamSpace::new(vec![Knob::int("batch_size", 1, 512, 64)])?;
    /// let batch = space.int("batch_size")?;
    /// let mut reader = std::sync::Arc::new(AtomicConfig::new(space.initial())).reader();
    /// let n: i64 = reader.get().get(batch);
    /// assert_eq!(n, 64);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn int(&self, name: &str) -> Result<IntKnob, KnobLookupError> {
        self.lookup(name, "an integer", |k| matches!(k, KnobKind::Int { .. }))
            .map(IntKnob)
    }

    /// The handle of the choice knob called `name`.
    ///
    /// # Errors
    ///
    /// [`KnobLookupError`] if there is none or it is of another kind.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, Knob, ParamSpace};
    ///
    /// let space = ParamSpace::new(vec![Knob::choice("codec", ["none", "lz4", "zstd"], "lz4")])?;
    /// let codec = space.choice("codec")?;
    /// let index = AtomicConfig::new(space.initial()).load().get(codec);
    /// assert_eq!(space.option(codec, index), Some("lz4"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn choice(&self, name: &str) -> Result<ChoiceKnob, KnobLookupError> {
        self.lookup(name, "a choice", |k| matches!(k, KnobKind::Choice { .. }))
            .map(ChoiceKnob)
    }

    /// The name of option `index` of a choice knob.
    ///
    /// ```
    /// use hotpath::{Knob, ParamSpace};
    ///
    /// let space = ParamSpace::new(vec![Knob::choice("codec", ["none", "lz4"], "none")])?;
    /// let codec = space.choice("codec")?;
    /// assert_eq!((space.option(codec, 1), space.option(codec, 2)), (Some("lz4"), None));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn option(&self, knob: ChoiceKnob, index: usize) -> Option<&str> {
        match &self.knobs.get(knob.0)?.kind {
            KnobKind::Choice { options } => options.get(index).map(String::as_str),
            _ => None,
        }
    }
}

impl ConfigSnapshot {
    /// The typed value of a knob, by its handle: an index and a conversion,
    /// no lookup, no allocation. A handle of another space reads as NaN
    /// (real) or 0 past this snapshot's end.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, Knob, ParamSpace};
    ///
    /// let space = ParamSpace::new(vec![Knob::int("workers", 1, 64, 8)])?;
    /// let workers = space.int("workers")?;
    /// assert_eq!(AtomicConfig::new(space.initial()).load().get(workers), 8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn get<H: KnobHandle>(&self, knob: H) -> H::Value {
        knob.decode(self.params.get(knob.index()).copied().unwrap_or(f64::NAN))
    }
}
