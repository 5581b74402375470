//! What a user sees when a config is wrong: [`Diagnostic`]s located at
//! `FILE:LINE:COLUMN` (or at the `--set` that caused them), and the
//! internal [`Problem`] they are made from.

use crate::source::{Origin, Origins, Sources};
use hotpath::ShortFloat;
use std::fmt;
use std::ops::Range;

/// A byte range in one source.
pub(crate) type Span = Range<usize>;

/// One problem in a config: where, which key, what is expected.
///
/// ```
/// use hotpath_config::Diagnostic;
///
/// let d = Diagnostic {
///     location: "tuning.toml:7:22".into(),
///     key: Some("guardrails.max_delta_per_step".into()),
///     message: "expected a fraction of the range in (0, 1], got 2".into(),
/// };
/// assert_eq!(
///     d.to_string(),
///     "tuning.toml:7:22: guardrails.max_delta_per_step: expected a fraction of the range in (0, 1], got 2"
/// );
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// `file:line:column`, `file`, or `--set KEY=VALUE`.
    pub location: String,
    /// The key, e.g. `guardrails.max_delta_per_step` or `param[1].min`.
    pub key: Option<String>,
    /// What is wrong and what is expected.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{}: {key}: {}", self.location, self.message),
            None => write!(f, "{}: {}", self.location, self.message),
        }
    }
}

/// Every problem found in a config, one per line.
///
/// ```
/// use hotpath_config::parse;
/// use std::path::Path;
///
/// let text = "[[param]]\nname = \"a\"\nmin = 5\nmax = 1\ninitial = 2\n[rollback]\nregression_sigmas = -1\n";
/// let errors = parse("t.toml", text, Path::new(""), &[]).unwrap_err();
/// assert_eq!(errors.0.len(), 2);
/// assert_eq!(errors.to_string().lines().count(), 2);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigErrors(pub Vec<Diagnostic>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// 1-based line and column (in characters) of byte `offset` in `text`.
///
/// ```
/// use hotpath_config::line_column;
///
/// assert_eq!(line_column("ab\ncé d", 7), (2, 4));
/// ```
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// Which part of a key's entry a problem points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// The key itself (an unknown key).
    Key,
    /// Its value (a wrong type, an invalid value).
    Value,
}

/// A problem before it is located: where it came from and what it is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Problem {
    pub(crate) origin: Option<Origin>,
    pub(crate) key: Option<String>,
    pub(crate) message: String,
    /// A TOML syntax error (rather than a wrong key or type).
    pub(crate) from_parser: bool,
}

impl Problem {
    /// A problem with `key` (a key path of the format), located where the
    /// origins say it was written (`part` of it), or nowhere.
    pub(crate) fn at(
        origins: &Origins,
        key: impl Into<String>,
        part: Part,
        message: impl Into<String>,
    ) -> Self {
        let key = key.into();
        Self {
            origin: origins.locate(&key, part),
            key: (!key.is_empty()).then_some(key),
            message: message.into(),
            from_parser: false,
        }
    }

    /// A problem of the config as a whole (no key, no position).
    pub(crate) fn whole(message: impl Into<String>) -> Self {
        Self {
            origin: None,
            key: None,
            message: message.into(),
            from_parser: false,
        }
    }

    /// The same problem, now blamed on `origin` as a whole.
    pub(crate) fn blamed_on(mut self, origin: Origin) -> Self {
        self.origin = Some(origin);
        self
    }

    /// Where the problem is, in the user's words.
    pub(crate) fn diagnostic(self, sources: &Sources) -> Diagnostic {
        Diagnostic {
            location: sources.describe(self.origin.as_ref()),
            key: self.key,
            message: self.message,
        }
    }
}

/// One line, with Rust type names turned into what a TOML user writes.
pub(crate) fn friendly(message: &str) -> String {
    let mut m = message.trim().replace('\n', " ");
    for (from, to) in [
        ("expected f64", "expected a number"),
        ("expected u64", "expected a non-negative integer"),
        ("expected u32", "expected a non-negative integer below 2^32"),
        ("expected usize", "expected a non-negative integer"),
        ("expected struct param", "expected a [[param]] table"),
    ] {
        if let Some(stripped) = m.strip_suffix(from) {
            m = format!("{stripped}{to}");
        }
    }
    if let Some((head, table)) = m.rsplit_once("expected struct ") {
        m = format!("{head}expected a [{table}] table");
    }
    shorten_floats(&m)
}

/// serde writes a float it did not expect in full (`floating point
/// `1000…0``, 301 digits for 1e300): written as [`ShortFloat`] instead.
fn shorten_floats(message: &str) -> String {
    const MARK: &str = "floating point `";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(MARK) {
        let (before, after) = rest.split_at(at + MARK.len());
        out.push_str(before);
        let end = after.find('`').unwrap_or(after.len());
        match after[..end].parse::<f64>() {
            Ok(x) => out.push_str(&ShortFloat(x).to_string()),
            Err(_) => out.push_str(&after[..end]),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// serde's wording for an unknown key: `unknown field `x`, expected one
/// of `a`, `b``.
pub(crate) fn unknown_field(field: &str, expected: &[&str]) -> String {
    let quoted: Vec<String> = expected.iter().map(|e| format!("`{e}`")).collect();
    match quoted.as_slice() {
        [] => format!("unknown field `{field}`, there are no fields"),
        [one] => format!("unknown field `{field}`, expected {one}"),
        [a, b] => format!("unknown field `{field}`, expected {a} or {b}"),
        all => format!(
            "unknown field `{field}`, expected one of {}",
            all.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_serde_writes_in_full_are_shortened() {
        let long = format!(
            "invalid type: floating point `1{}.0`, expected u64",
            "0".repeat(300)
        );
        assert_eq!(
            friendly(&long),
            "invalid type: floating point `1e300`, expected a non-negative integer"
        );
        assert_eq!(
            friendly("invalid type: floating point `0.5`, expected u64"),
            "invalid type: floating point `0.5`, expected a non-negative integer"
        );
    }

    #[test]
    fn line_column_counts_characters() {
        assert_eq!(line_column("ab\ncé d", 7), (2, 4));
        assert_eq!(line_column("x", 99), (1, 2));
    }

    #[test]
    fn unknown_fields_are_worded_as_serde_words_them() {
        assert_eq!(
            unknown_field("x", &["a"]),
            "unknown field `x`, expected `a`"
        );
        assert_eq!(
            unknown_field("x", &["a", "b"]),
            "unknown field `x`, expected `a` or `b`"
        );
        assert_eq!(
            unknown_field("x", &["a", "b", "c"]),
            "unknown field `x`, expected one of `a`, `b`, `c`"
        );
    }
}
