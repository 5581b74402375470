//! Telemetry *reported* by a running service (the body of `hotpath serve`'s
//! `POST /v1/telemetry`): the replay format with `t_us` optional and an
//! optional `instance`, one digest or several as JSON Lines.
//!
//! ```text
//! {"objective": 3.25, "samples": 480, "generation": 7, "instance": "api-1"}
//! {"t_us": 1300000, "objective": 3.10, "samples": 512, "generation": 7, "instance": "api-2", "margin": 0.2}
//! ```
//!
//! | field | type | required | meaning |
//! |-------|------|----------|---------|
//! | `objective` | number | yes | the objective over the window, lower is better; finite |
//! | `samples` | integer ≥ 1 | yes | raw measurements summarised (the digest's weight) |
//! | `t_us` | integer ≥ 0 | no | end of the window on the *reporting instance's* clock, at most 2⁶²; never decreasing per instance within one body |
//! | `generation` | integer ≥ 0 | no | config generation the window was measured under |
//! | `margin` | number | no | constraint margin: ≥ 0 feasible, < 0 violated; finite |
//! | `window_us` | integer ≥ 0 | no | length of the window, µs (informational) |
//! | `instance` | string | no | the reporting replica: 1 to [`MAX_INSTANCE_LEN`] characters of `A-Z a-z 0-9 . _ : -`, starting with a letter or digit |
//!
//! As in the replay format, other fields are refused, `null` means an
//! optional field is absent, and lines holding only whitespace are
//! ignored. A body is accepted or refused as a whole: [`parse_report`]
//! returns every digest or the first bad line, with its line number, the
//! field it concerns (when there is one) and the column (when the JSON
//! parser knows it).
//!
//! ```
//! use hotpath_config::telemetry::{parse_report, Framing};
//!
//! let body = b"{\"objective\": 1.5, \"samples\": 3, \"instance\": \"a\"}\n\n{\"objective\": 2, \"samples\": 1}\n";
//! let digests = parse_report(body, Framing::Lines).expect("valid");
//! assert_eq!(digests.len(), 2);
//! assert_eq!((digests[0].line, digests[0].instance.as_deref()), (1, Some("a")));
//! assert_eq!(digests[1].line, 3);
//!
//! let bad = parse_report(b"{\"objective\": 1, \"samples\": 0}", Framing::Single).unwrap_err();
//! assert_eq!((bad.line, bad.field.as_deref()), (1, Some("samples")));
//! assert_eq!(bad.to_string(), "line 1: samples: samples must be at least 1");
//! ```

use super::{json_error, Finite};
use hotpath::{TelemetryDigest, MAX_TIME_US};
use serde::Deserialize;
use std::collections::HashMap;

/// The longest `instance` accepted, in bytes.
pub const MAX_INSTANCE_LEN: usize = 64;

/// How a report body is framed.
///
/// ```
/// use hotpath_config::telemetry::{parse_report, Framing};
///
/// // One object may span lines when the body is one JSON document.
/// let pretty = b"{\n  \"objective\": 1.0,\n  \"samples\": 2\n}\n";
/// assert_eq!(parse_report(pretty, Framing::Single).map(|d| d.len()), Ok(1));
/// assert!(parse_report(pretty, Framing::Lines).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// The whole body is one JSON object (`application/json`).
    Single,
    /// One JSON object per line (`application/x-ndjson`).
    Lines,
}

/// One reported digest: where it was in the body, the reporting instance,
/// and the digest (its `timestamp_us` set only when `t_us` was given).
///
/// ```
/// use hotpath_config::telemetry::{parse_report, Framing};
///
/// let d = &parse_report(b"{\"objective\": 4, \"samples\": 9, \"t_us\": 7}", Framing::Single).expect("valid")[0];
/// assert_eq!((d.digest.objective_value, d.digest.sample_count, d.digest.timestamp_us), (4.0, 9, Some(7)));
/// assert_eq!(d.instance, None);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Reported {
    /// 1-based line of the body the digest was on (its first line for
    /// [`Framing::Single`]).
    pub line: u64,
    /// The `instance` field.
    pub instance: Option<String>,
    /// The digest.
    pub digest: TelemetryDigest,
}

/// The first bad line of a report body: `line N: FIELD: message`.
///
/// ```
/// use hotpath_config::telemetry::ReportError;
///
/// let e = ReportError { line: 2, column: Some(5), field: Some("objective".into()), message: "expected a finite number".into() };
/// assert_eq!(e.to_string(), "line 2: objective: expected a finite number");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {}{message}", field.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct ReportError {
    /// 1-based line number in the body.
    pub line: u64,
    /// 1-based column (bytes, within the line), when the JSON parser knows it.
    pub column: Option<usize>,
    /// The field the problem concerns, when there is one.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReport {
    #[serde(default)]
    t_us: Option<u64>,
    objective: Finite,
    samples: u64,
    #[serde(default)]
    generation: Option<u64>,
    #[serde(default)]
    margin: Option<Finite>,
    #[serde(default)]
    window_us: Option<u64>,
    #[serde(default)]
    instance: Option<String>,
}

/// Parses a report body: every digest, in order, or the first bad line
/// (the body is then refused as a whole). Blank lines are skipped.
///
/// # Errors
///
/// [`ReportError`] for the first line that is not valid UTF-8, not a JSON
/// object, has an unknown, missing or ill-typed field, a value out of
/// range (zero `samples`, `t_us` beyond 2⁶², a malformed `instance`), or
/// a `t_us` earlier than the same instance's previous line.
///
/// ```
/// use hotpath_config::telemetry::{parse_report, Framing};
///
/// let body = b"{\"objective\": 1, \"samples\": 1, \"t_us\": 9}\n{\"objective\": 1, \"samples\": 1, \"t_us\": 8}\n";
/// let e = parse_report(body, Framing::Lines).unwrap_err();
/// assert_eq!((e.line, e.field.as_deref()), (2, Some("t_us")));
/// ```
pub fn parse_report(body: &[u8], framing: Framing) -> Result<Vec<Reported>, ReportError> {
    let mut out = Vec::new();
    let mut last_t: HashMap<Option<String>, u64> = HashMap::new();
    let mut push = |origin: u64, line: u64, text: &[u8]| -> Result<(), ReportError> {
        let reported = parse_one(origin, line, text)?;
        if let Some(t) = reported.digest.timestamp_us {
            let previous = last_t.entry(reported.instance.clone()).or_insert(t);
            if t < *previous {
                let message = format!(
                    "t_us {t} is earlier than this instance's previous digest's {previous}: timestamps must not go backwards"
                );
                return Err(at(line, None, Some("t_us"), message));
            }
            *previous = t;
        }
        out.push(reported);
        Ok(())
    };
    match framing {
        Framing::Single => {
            let start = body.iter().take_while(|b| b.is_ascii_whitespace()).count();
            let line = 1 + body[..start].iter().filter(|&&b| b == b'\n').count() as u64;
            push(1, line, body)?;
        }
        Framing::Lines => {
            for (i, text) in body.split(|&b| b == b'\n').enumerate() {
                if !text.trim_ascii().is_empty() {
                    push(i as u64 + 1, i as u64 + 1, text)?;
                }
            }
        }
    }
    Ok(out)
}

/// One JSON document holding one digest: `text` starts on line `origin`
/// of the body, the document on line `line`.
fn parse_one(origin: u64, line: u64, text: &[u8]) -> Result<Reported, ReportError> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let raw: RawReport = match serde_path_to_error::deserialize(&mut de) {
        Ok(raw) => raw,
        Err(e) => return Err(from_json(origin, e.path().to_string(), e.inner())),
    };
    if let Err(e) = de.end() {
        return Err(from_json(origin, ".".into(), &e));
    }
    check(line, raw)
}

/// A serde error as a [`ReportError`]: the field from the path (or the
/// message, for a missing or unknown field), the position from serde.
fn from_json(first_line: u64, path: String, e: &serde_json::Error) -> ReportError {
    let message = json_error(e);
    let named = || {
        let (_, rest) = message.split_once('`')?;
        let (name, _) = rest.split_once('`')?;
        Some(name.to_string())
    };
    let field = match path.as_str() {
        "." | "" => named().filter(|_| message.contains(" field `")),
        _ => Some(path),
    };
    let line = first_line + (e.line().max(1) as u64 - 1);
    ReportError {
        line,
        column: (e.column() > 0).then_some(e.column()),
        field,
        message,
    }
}

fn check(line: u64, raw: RawReport) -> Result<Reported, ReportError> {
    if raw.samples == 0 {
        return Err(at(
            line,
            None,
            Some("samples"),
            "samples must be at least 1".into(),
        ));
    }
    if let Some(t) = raw.t_us.filter(|&t| t > MAX_TIME_US) {
        let message = format!("t_us {t} is beyond the latest time accepted, 2^62 µs");
        return Err(at(line, None, Some("t_us"), message));
    }
    if let Some(instance) = &raw.instance {
        if let Some(problem) = instance_problem(instance) {
            return Err(at(line, None, Some("instance"), problem));
        }
    }
    let mut digest = TelemetryDigest::new(raw.window_us.unwrap_or(0), raw.objective.0, raw.samples);
    if let Some(t) = raw.t_us {
        digest = digest.with_timestamp(t);
    }
    if let Some(g) = raw.generation {
        digest = digest.with_generation(g);
    }
    if let Some(m) = raw.margin {
        digest = digest.with_constraint_margin(m.0);
    }
    Ok(Reported {
        line,
        instance: raw.instance,
        digest,
    })
}

/// Why `name` is not a valid `instance`, if it is not.
///
/// ```
/// use hotpath_config::telemetry::instance_problem;
///
/// assert_eq!(instance_problem("api-1.eu:8080"), None);
/// assert!(instance_problem("").is_some());
/// assert!(instance_problem("_other").is_some());
/// assert!(instance_problem("a b").is_some());
/// ```
pub fn instance_problem(name: &str) -> Option<String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
    if name.is_empty() || name.len() > MAX_INSTANCE_LEN {
        Some(format!(
            "instance must be 1 to {MAX_INSTANCE_LEN} characters, got {}",
            name.len()
        ))
    } else if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) || !name.chars().all(allowed) {
        Some("instance must start with a letter or digit and hold only A-Z a-z 0-9 . _ : -".into())
    } else {
        None
    }
}

fn at(line: u64, column: Option<usize>, field: Option<&str>, message: String) -> ReportError {
    ReportError {
        line,
        column,
        field: field.map(str::to_string),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_error(body: &str) -> ReportError {
        parse_report(body.as_bytes(), Framing::Lines).expect_err("bad body")
    }

    #[test]
    fn errors_name_the_line_and_field() {
        let cases = [
            ("{\"objective\":\"NaN\",\"samples\":1}", Some("objective")),
            ("{\"objective\":1}", Some("samples")),
            ("{\"objective\":1,\"samples\":1,\"extra\":2}", Some("extra")),
            ("{\"objective\":1,\"samples\":-1}", Some("samples")),
            (
                "{\"objective\":1,\"samples\":1,\"instance\":\"a b\"}",
                Some("instance"),
            ),
            (
                "{\"objective\":1,\"samples\":1,\"instance\":7}",
                Some("instance"),
            ),
            ("[1,2]", None),
            ("{\"objective\":1,\"samples\":1} x", None),
        ];
        for (line, field) in cases {
            let body = format!("{{\"objective\":1,\"samples\":1}}\n{line}\n");
            let e = first_error(&body);
            assert_eq!((e.line, e.field.as_deref()), (2, field), "{line}: {e}");
        }
    }

    #[test]
    fn single_framing_reports_the_line_inside_the_document() {
        let e = parse_report(
            b"\n{\n\"objective\": 1,\n\"samples\": \"x\"\n}",
            Framing::Single,
        )
        .expect_err("bad");
        assert_eq!((e.line, e.field.as_deref()), (4, Some("samples")));
        assert!(parse_report(b"{} {}", Framing::Single).is_err());
    }

    #[test]
    fn instances_keep_their_own_clocks() {
        let body = "{\"objective\":1,\"samples\":1,\"t_us\":9,\"instance\":\"a\"}\n{\"objective\":1,\"samples\":1,\"t_us\":3,\"instance\":\"b\"}\n";
        assert_eq!(
            parse_report(body.as_bytes(), Framing::Lines).map(|d| d.len()),
            Ok(2)
        );
    }
}
