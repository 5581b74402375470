//! Recorded telemetry: JSON Lines, one digest per line.
//!
//! ```text
//! {"t_us": 1200000, "objective": 3.25, "samples": 480}
//! {"t_us": 1300000, "objective": 3.10, "samples": 512, "generation": 4, "margin": 0.2, "window_us": 100000}
//! ```
//!
//! | field | type | required | meaning |
//! |-------|------|----------|---------|
//! | `t_us` | integer ≥ 0 | yes | end of the measurement window, µs on the service's monotonic clock; never decreasing; at most 2⁶² |
//! | `objective` | number | yes | the objective over the window, lower is better; finite |
//! | `samples` | integer ≥ 1 | yes | raw measurements summarised (the digest's weight) |
//! | `generation` | integer ≥ 0 | no | config generation the window was measured under |
//! | `margin` | number | no | constraint margin: ≥ 0 feasible, < 0 violated; finite |
//! | `window_us` | integer ≥ 0 | no | length of the window, µs (informational) |
//!
//! Each line is one JSON object (an array, even with the fields in order,
//! is refused). Other fields are refused (a misspelt optional field would
//! otherwise be silently ignored). Lines holding only whitespace are ignored. `null`
//! means an optional field is absent. JSON cannot carry NaN or ∞; the
//! strings `"NaN"`, `"inf"` and numbers too large for an `f64` are refused.
//!
//! A running service reports the same digests with `t_us` optional and
//! an `instance` field: [`parse_report`] (`hotpath serve`'s
//! `POST /v1/telemetry`).
//!
//! ```
//! use hotpath_config::telemetry::DigestReader;
//!
//! let text = "{\"t_us\": 5, \"objective\": 1.5, \"samples\": 3}\n{\"t_us\": 4, \"objective\": 1, \"samples\": 1}\n";
//! let mut reader = DigestReader::new(text.as_bytes(), "d.jsonl");
//! let (line, digest) = reader.next_digest()?.expect("a line").expect("valid");
//! assert_eq!((line, digest.objective_value), (1, 1.5));
//! let bad = reader.next_digest()?.expect("a line").unwrap_err();
//! assert!(bad.to_string().starts_with("d.jsonl:2: t_us 4 is earlier"));
//! assert!(reader.next_digest()?.is_none());
//! assert_eq!((reader.stats().digests, reader.stats().skipped), (1, 1));
//! # Ok::<(), std::io::Error>(())
//! ```

use hotpath::{TelemetryDigest, MAX_TIME_US};
use serde::Deserialize;
use std::io::BufRead;

mod report;
pub use report::{
    instance_problem, parse_report, Framing, ReportError, Reported, MAX_INSTANCE_LEN,
};

/// A telemetry line that cannot be used: `file:line[:column]: message`.
///
/// ```
/// use hotpath_config::telemetry::BadLine;
///
/// let bad = BadLine { file: "d.jsonl".into(), line: 3, column: Some(7), message: "malformed JSON: EOF".into() };
/// assert_eq!(bad.to_string(), "d.jsonl:3:7: malformed JSON: EOF");
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}:{line}{}: {message}", column.map(|c| format!(":{c}")).unwrap_or_default())]
pub struct BadLine {
    /// The telemetry file.
    pub file: String,
    /// 1-based line number.
    pub line: u64,
    /// 1-based column (bytes), when the JSON parser knows it.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// A finite `f64`: JSON numbers only, with a message that says so.
#[derive(Clone, Copy)]
struct Finite(f64);

impl<'de> Deserialize<'de> for Finite {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Finite;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a finite number")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Finite, E> {
                if v.is_finite() {
                    Ok(Finite(v))
                } else {
                    Err(E::invalid_value(serde::de::Unexpected::Float(v), &self))
                }
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Finite, E> {
                Ok(Finite(v as f64))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Finite, E> {
                Ok(Finite(v as f64))
            }
        }
        deserializer.deserialize_f64(Visitor)
    }
}

/// A non-negative integer (`u64`), with a message that says so.
#[derive(Clone, Copy)]
struct Count(u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Count;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a non-negative integer")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Count, E> {
                Ok(Count(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Count, E> {
                u64::try_from(v)
                    .map(Count)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }
        }
        deserializer.deserialize_u64(Visitor)
    }
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a JSON object with t_us, objective and samples"
)]
struct RawLine {
    t_us: Count,
    objective: Finite,
    samples: Count,
    #[serde(default)]
    generation: Option<Count>,
    #[serde(default)]
    margin: Option<Finite>,
    #[serde(default)]
    window_us: Option<Count>,
}

/// What serde would take for a digest although it is not one: an array
/// (the fields in order). A digest is an object.
const ARRAY_REFUSED: &str =
    "expected a JSON object {\"t_us\": …, \"objective\": …, \"samples\": …}, got an array";

/// One non-blank line: its number and digest, or why it is unusable
/// (see [`DigestReader::next_digest`]).
pub type Line = Result<(u64, TelemetryDigest), BadLine>;

/// Counts kept while reading (see the [module example](self)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Lines read (blank ones included).
    pub lines: u64,
    /// Digests returned.
    pub digests: u64,
    /// Bad lines skipped (`--skip-bad-lines`).
    pub skipped: u64,
}

/// Reads digests from JSON Lines, reusing one line buffer (see the
/// [module example](self)).
pub struct DigestReader<R> {
    input: R,
    file: String,
    buf: Vec<u8>,
    line: u64,
    last_t: Option<u64>,
    stats: ReadStats,
}

impl<R: BufRead> DigestReader<R> {
    /// Reads from `input`; `file` names it in messages.
    ///
    /// ```
    /// let reader = hotpath_config::telemetry::DigestReader::new(&b""[..], "empty.jsonl");
    /// assert_eq!(reader.stats().lines, 0);
    /// ```
    pub fn new(input: R, file: impl Into<String>) -> Self {
        Self {
            input,
            file: file.into(),
            buf: Vec::with_capacity(256),
            line: 0,
            last_t: None,
            stats: ReadStats::default(),
        }
    }

    /// The next line: `Ok(None)` at the end, `Err` for an unreadable file,
    /// `Ok(Some(Err(bad)))` for a bad line (the caller skips or stops).
    /// A bad line does not move the timestamp check forward.
    ///
    /// # Errors
    ///
    /// The input's read error.
    ///
    /// ```
    /// let mut r = hotpath_config::telemetry::DigestReader::new(&b"\n  \n"[..], "blank.jsonl");
    /// assert!(r.next_digest()?.is_none()); // blank lines are not lines
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn next_digest(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            self.buf.clear();
            if self.input.read_until(b'\n', &mut self.buf)? == 0 {
                return Ok(None);
            }
            self.line += 1;
            self.stats.lines += 1;
            let text = self.buf.trim_ascii();
            if text.is_empty() {
                continue;
            }
            let offset = offset_of(&self.buf, text);
            let array = text.first() == Some(&b'[');
            let parsed = match serde_json::from_slice::<RawLine>(text) {
                Ok(_) if array => Err(self.bad(Some(offset + 1), ARRAY_REFUSED.into())),
                Ok(line) => self.check(line),
                Err(e) if array && e.is_data() => {
                    Err(self.bad(Some(offset + 1), ARRAY_REFUSED.into()))
                }
                Err(e) => {
                    let column = (e.column() > 0).then(|| e.column() + offset);
                    Err(self.bad(column, json_error(&e)))
                }
            };
            match &parsed {
                Ok((_, d)) => {
                    self.stats.digests += 1;
                    self.last_t = d.timestamp_us;
                }
                Err(_) => self.stats.skipped += 1,
            }
            return Ok(Some(parsed));
        }
    }

    fn check(&self, line: RawLine) -> Line {
        let (t_us, samples) = (line.t_us.0, line.samples.0);
        if samples == 0 {
            return Err(self.bad(None, "samples must be at least 1".into()));
        }
        if t_us > MAX_TIME_US {
            return Err(self.bad(
                None,
                format!("t_us {t_us} is beyond the latest time accepted, 2^62 µs"),
            ));
        }
        if let Some(previous) = self.last_t.filter(|&p| t_us < p) {
            return Err(self.bad(
                None,
                format!(
                    "t_us {t_us} is earlier than the previous digest's {previous}: timestamps must not go backwards"
                ),
            ));
        }
        let window_us = line.window_us.map_or(0, |w| w.0);
        let mut d = TelemetryDigest::new(window_us, line.objective.0, samples).with_timestamp(t_us);
        if let Some(g) = line.generation {
            d = d.with_generation(g.0);
        }
        if let Some(m) = line.margin {
            d = d.with_constraint_margin(m.0);
        }
        Ok((self.line, d))
    }

    /// A bad-line error at the current line.
    ///
    /// ```
    /// let r = hotpath_config::telemetry::DigestReader::new(&b""[..], "d.jsonl");
    /// assert_eq!(r.bad(None, "refused".into()).to_string(), "d.jsonl:0: refused");
    /// ```
    pub fn bad(&self, column: Option<usize>, message: String) -> BadLine {
        BadLine {
            file: self.file.clone(),
            line: self.line,
            column,
            message,
        }
    }

    /// Counts so far. `skipped` counts every bad line returned (see the
    /// [module example](self)).
    pub fn stats(&self) -> ReadStats {
        self.stats
    }
}

/// serde_json's message without its position (reported separately), and
/// marked as malformed JSON unless the JSON was fine but its content not.
///
/// ```
/// use hotpath_config::telemetry::json_error;
///
/// let e = serde_json::from_str::<u64>("1 2").unwrap_err();
/// assert_eq!(json_error(&e), "malformed JSON: trailing characters");
/// let e = serde_json::from_str::<u64>("{}").unwrap_err();
/// assert_eq!(json_error(&e), "invalid type: map, expected u64");
/// ```
pub fn json_error(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = message.strip_suffix(&suffix).unwrap_or(&message);
    match e.classify() {
        serde_json::error::Category::Data => message.to_string(),
        _ => format!("malformed JSON: {message}"),
    }
}

/// Bytes of leading whitespace trimmed off `line` to get `text`.
fn offset_of(line: &[u8], text: &[u8]) -> usize {
    (text.as_ptr() as usize).saturating_sub(line.as_ptr() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &str) -> Vec<Result<(u64, TelemetryDigest), String>> {
        let mut r = DigestReader::new(input.as_bytes(), "d.jsonl");
        let mut out = Vec::new();
        while let Some(item) = r.next_digest().expect("in memory") {
            out.push(item.map_err(|e| e.to_string()));
        }
        out
    }

    #[test]
    fn reads_required_and_optional_fields() {
        let out = read_all(
            "{\"t_us\":5,\"objective\":1.5,\"samples\":3}\n\n  {\"t_us\":5,\"objective\":2,\"samples\":1,\"generation\":4,\"margin\":-0.25,\"window_us\":100}\r\n",
        );
        let (line, d) = out[1].clone().unwrap();
        assert_eq!(line, 3);
        assert_eq!(d.generation, Some(4));
        assert_eq!(d.constraint_margin, Some(-0.25));
        assert_eq!(d.window_us, 100);
        assert_eq!(d.objective_value, 2.0);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn bad_lines_name_the_line_and_the_problem() {
        let out = read_all(concat!(
            "{\"t_us\":10,\"objective\":1,\"samples\":1}\n",
            "{\"t_us\":11,\"objective\":\"NaN\",\"samples\":1}\n",
            "{\"t_us\":12,\"objective\":1e999,\"samples\":1}\n",
            "{\"t_us\":13,\"objective\":1,\"samples\":0}\n",
            "{\"t_us\":9,\"objective\":1,\"samples\":1}\n",
            "{\"t_us\":14,\"objective\":1,\"samples\":1,\"extra\":1}\n",
            "{\"t_us\":14,\"objective\":1\n",
            "{\"t_us\":15,\"objective\":1,\"samples\":1}\n",
        ));
        let errors: Vec<String> = out.iter().filter_map(|r| r.clone().err()).collect();
        assert_eq!(
            errors,
            vec![
                "d.jsonl:2:28: invalid type: string \"NaN\", expected a finite number",
                "d.jsonl:3:28: malformed JSON: number out of range",
                "d.jsonl:4: samples must be at least 1",
                "d.jsonl:5: t_us 9 is earlier than the previous digest's 10: timestamps must not go backwards",
                "d.jsonl:6:44: unknown field `extra`, expected one of `t_us`, `objective`, `samples`, `generation`, `margin`, `window_us`",
                "d.jsonl:7:24: malformed JSON: EOF while parsing an object",
            ]
        );
        assert!(out.last().unwrap().is_ok());
    }

    #[test]
    fn only_objects_are_digests_and_messages_name_no_rust_types() {
        let out = read_all(concat!(
            "[1000,1.5,10]\n",
            "[1000]\n",
            "  5\n",
            "null\n",
            "{\"t_us\":-1,\"objective\":1,\"samples\":1}\n",
            "{\"t_us\":1.5,\"objective\":1,\"samples\":1}\n",
            "{\"t_us\":10,\"objective\":1,\"samples\":3,\"generation\":\"a\"}\n",
        ));
        let mut errors: Vec<String> = out.iter().filter_map(|r| r.clone().err()).collect();
        assert_eq!(errors.len(), 7, "{out:?}");
        assert_eq!(errors.remove(1), "d.jsonl:2:1: expected a JSON object {\"t_us\": …, \"objective\": …, \"samples\": …}, got an array");
        assert_eq!(
            errors[..3],
            [
                "d.jsonl:1:1: expected a JSON object {\"t_us\": …, \"objective\": …, \"samples\": …}, got an array",
                "d.jsonl:3:3: invalid type: integer `5`, expected a JSON object with t_us, objective and samples",
                "d.jsonl:4:4: invalid type: null, expected a JSON object with t_us, objective and samples",
            ]
        );
        assert_eq!(
            errors[3],
            "d.jsonl:5:10: invalid value: integer `-1`, expected a non-negative integer"
        );
        for e in &errors {
            assert!(
                !e.contains("RawLine") && !e.contains("u64") && !e.contains("struct"),
                "{e}"
            );
        }
    }
}
