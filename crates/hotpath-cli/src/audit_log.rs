//! The audit log of a run: `hotpath_durable`'s hash-chained, crash-safe
//! `AuditLog`, in the directory `audit/` of the output directory.
//!
//! Writing it is the [`hotpath_host::Host`]'s business: the executor
//! writes to its own queue, and the host drains that queue after every
//! call and forwards each event to the log's writer thread (replay waits
//! for the log, `WhenFull::Wait`; the demo lets the log's backpressure
//! reach the executor, `WhenFull::Hold`). The command reads the events
//! through a subscription to count and show them.
//!
//! Reading a log back (`hotpath audit show`, `verify`) goes through
//! `hotpath_durable`'s [`LogReader`], which checks the chain as it reads:
//! see [`read`] and [`resolve`].

use crate::named::{self, Digits};
use crate::CliError;
use hotpath::{AuditDetails, AuditEvent, ParamSpace};
use hotpath_durable::audit_log::LogRecord;
use hotpath_durable::LogReader;
use std::path::{Path, PathBuf};

/// The log's directory name inside an output directory.
pub const DIR_NAME: &str = hotpath_host::AUDIT_DIR;

/// The log `path` names for `hotpath audit`: `path` itself (a log directory
/// or one `audit.NNNNNNNNNN.jsonl` file), or `path/audit` when `path` is a
/// run's output directory (one holding an `audit` directory and no log
/// files of its own).
pub fn resolve(path: &Path) -> PathBuf {
    let inner = path.join(DIR_NAME);
    if path.is_dir() && inner.is_dir() && !holds_log_files(path) {
        inner
    } else {
        path.to_path_buf()
    }
}

/// `true` if `dir` holds a file named like a log file.
fn holds_log_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_str().is_some_and(is_log_file_name))
    })
}

/// `audit.<10 digits>.jsonl`.
fn is_log_file_name(name: &str) -> bool {
    name.strip_prefix("audit.")
        .and_then(|n| n.strip_suffix(".jsonl"))
        .is_some_and(|digits| digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// Calls `each` with every line of the log at `path` (see [`resolve`]), in
/// order, verifying the chain as it goes: the first line that is not a
/// sound link stops the walk with an error naming its file and line.
/// Returns what was read. A directory without log files is an error (most
/// likely the wrong directory), although an empty log is a sound one.
pub fn read(
    path: &Path,
    mut each: impl FnMut(&LogRecord) -> Result<(), CliError>,
) -> Result<hotpath_durable::VerifyReport, CliError> {
    let mut reader = LogReader::open(path)?;
    for record in reader.by_ref() {
        each(&record?)?;
    }
    let report = reader.report();
    if report.files == 0 {
        return Err(CliError::NoAuditLog {
            path: path.to_path_buf(),
        });
    }
    Ok(report)
}

/// An event of the log, for display and filtering: the [`AuditEvent`], or,
/// for the rare event JSON cannot carry (a non-finite number, written as
/// `null`), what the line holds.
pub enum Shown {
    /// The event.
    Event(Box<AuditEvent>),
    /// Seq, timestamp, generation and the raw details.
    Raw {
        /// Timestamp (µs).
        timestamp_us: u64,
        /// The line, as `#seq t=…µs gen=… <details JSON>`.
        text: String,
    },
}

impl Shown {
    /// Decodes `record`'s event.
    pub fn of(record: &LogRecord) -> Self {
        match record.audit_event() {
            Ok(event) => Shown::Event(Box::new(event)),
            Err(_) => {
                let field = |name: &str| record.event.get(name).and_then(serde_json::Value::as_u64);
                let details = record
                    .event
                    .get("details")
                    .map_or_else(String::new, serde_json::Value::to_string);
                let timestamp_us = field("timestamp_us").unwrap_or(0);
                Shown::Raw {
                    timestamp_us,
                    text: format!(
                        "#{} t={}µs gen={} {details}",
                        record.seq,
                        timestamp_us,
                        field("generation").unwrap_or(0)
                    ),
                }
            }
        }
    }

    /// The executor's timestamp (µs).
    pub fn timestamp_us(&self) -> u64 {
        match self {
            Shown::Event(e) => e.timestamp_us,
            Shown::Raw { timestamp_us, .. } => *timestamp_us,
        }
    }
}

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shown::Event(e) => write!(f, "{e}"),
            Shown::Raw { text, .. } => f.write_str(text),
        }
    }
}

/// Events with the knobs named and typed (`hotpath audit show --config`):
/// the events that carry values show them as `name=value`, an applied
/// change as the knobs it moved (`batch_size 48 -> 52`); the others read
/// as [`Shown`] does. It follows the live values from event to event (so a
/// change shows exactly what it moved from), and, until it has seen them,
/// works them out from the change's delta.
pub struct Named<'a> {
    space: &'a ParamSpace,
    config: &'a Path,
    live: Option<Vec<f64>>,
}

impl<'a> Named<'a> {
    /// Names the values of `space`, read from `config`.
    pub fn new(space: &'a ParamSpace, config: &'a Path) -> Self {
        Self {
            space,
            config,
            live: None,
        }
    }

    /// The line for `record` (its event decoded as by [`Shown::of`]),
    /// after which the live values are where the event left them.
    ///
    /// # Errors
    ///
    /// [`CliError::ConfigMismatch`] if the event's values do not number
    /// the config's parameters.
    pub fn line(&mut self, record: &LogRecord) -> Result<String, CliError> {
        let event = match Shown::of(record) {
            Shown::Event(event) => event,
            raw => return Ok(raw.to_string()),
        };
        let values = match &event.details {
            AuditDetails::Started { params }
            | AuditDetails::Restored { params, .. }
            | AuditDetails::Applied { params, .. }
            | AuditDetails::RolledBack { params, .. }
            | AuditDetails::BaselineSet { params, .. } => params,
            // A refusal names its knob; the rest have nothing to name.
            _ => return Ok(event.named(self.space).to_string()),
        };
        if values.len() != self.space.len() {
            return Err(CliError::ConfigMismatch {
                file: record.file.to_path_buf(),
                line: record.line,
                values: values.len(),
                config: self.config.to_path_buf(),
                params: self.space.len(),
            });
        }
        let space = self.space;
        let all = |v: &[f64]| named::values(space, v, Digits::Exact);
        let what = match &event.details {
            AuditDetails::Started { params } => format!("started with {}", all(params)),
            AuditDetails::Restored { params, safe_mode } => format!(
                "restored with {}, safe mode {:?}",
                all(params),
                safe_mode.iter().collect::<Vec<_>>()
            ),
            AuditDetails::Applied {
                kind,
                correlation_id,
                delta,
                params,
                ..
            } => {
                let before = match self.live.take() {
                    Some(live) => live,
                    None => named::before(space, params, delta),
                };
                let moved = named::changes(space, &before, params, Digits::Exact);
                format!("applied {kind:?} #{correlation_id}: {moved}")
            }
            AuditDetails::RolledBack { reason, params, .. } => {
                format!("ROLLED BACK ({reason:?}) to {}", all(params))
            }
            AuditDetails::BaselineSet {
                baseline_generation,
                params,
            } => format!("baseline set at gen {baseline_generation}: {}", all(params)),
            _ => return Ok(event.to_string()),
        };
        self.live = Some(values.to_vec());
        Ok(format!(
            "#{} t={}µs gen={} {what}",
            event.seq, event.timestamp_us, event.generation
        ))
    }
}

/// `true` if `dir` holds nothing but what an audit log consists of (log
/// files and the lock file): a log a new run may replace.
pub fn is_replaceable(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.filter_map(Result::ok).all(|e| {
            e.file_type().is_ok_and(|t| t.is_file())
                && e.file_name()
                    .to_str()
                    .is_some_and(|n| n == "audit.lock" || is_log_file_name(n))
        })
    })
}

/// A seq range for messages: `a..=b`, or `none`.
pub fn seq_range(first: Option<u64>, last: Option<u64>) -> String {
    match (first, last) {
        (Some(a), Some(b)) => format!("{a}..={b}"),
        _ => "none".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotpath::EventType;
    use hotpath_durable::audit_log::ChainHash;
    use std::sync::Arc;

    fn record(event: serde_json::Value) -> LogRecord {
        LogRecord {
            file: Arc::from(Path::new("audit.0000000001.jsonl")),
            line: 3,
            seq: 2,
            event_type: EventType::Rejected,
            hash: ChainHash::GENESIS,
            event,
        }
    }

    #[test]
    fn events_json_cannot_carry_are_shown_raw() {
        // A refused NaN proposal: serde_json wrote the NaN as null.
        let shown = Shown::of(&record(serde_json::json!({
            "seq": 2, "timestamp_us": 1500, "generation": 4,
            "details": {"Rejected": {"delta": [null, 1.0]}}
        })));
        assert_eq!(shown.timestamp_us(), 1500);
        assert_eq!(
            shown.to_string(),
            "#2 t=1500µs gen=4 {\"Rejected\":{\"delta\":[null,1.0]}}"
        );
    }

    #[test]
    fn decodable_events_use_hotpaths_display() {
        let shown = Shown::of(&record(serde_json::json!({
            "seq": 0, "timestamp_us": 7, "generation": 0,
            "details": {"Started": {"params": [64.0, 4.0]}}
        })));
        assert_eq!(shown.to_string(), "#0 t=7µs gen=0 started with [64.0, 4.0]");
    }

    #[test]
    fn named_events_show_typed_values_and_what_moved() {
        let space = ParamSpace::new(vec![
            hotpath::Knob::int("batch_size", 1, 64, 48),
            hotpath::Knob::choice("encoding", ["json", "csv"], "csv"),
        ])
        .expect("valid");
        let mut named = Named::new(&space, Path::new("t.toml"));
        let applied = serde_json::json!({
            "seq": 5, "timestamp_us": 9, "generation": 2,
            "details": {"Applied": {"kind": "Update", "correlation_id": 3,
                "previous_generation": 1, "delta": [4.0, -1.0], "params": [52.0, 0.0]}}
        });
        // Before any values were seen: worked out from the delta.
        assert_eq!(
            named.line(&record(applied.clone())).expect("line"),
            "#5 t=9µs gen=2 applied Update #3: batch_size 48 -> 52, encoding csv -> json"
        );
        let started = serde_json::json!({
            "seq": 0, "timestamp_us": 7, "generation": 0,
            "details": {"Started": {"params": [50.0, 1.0]}}
        });
        assert_eq!(
            named.line(&record(started)).expect("line"),
            "#0 t=7µs gen=0 started with batch_size=50 encoding=csv"
        );
        // Then from the live values followed.
        assert_eq!(
            named.line(&record(applied)).expect("line"),
            "#5 t=9µs gen=2 applied Update #3: batch_size 50 -> 52, encoding csv -> json"
        );
        let refused = serde_json::json!({
            "seq": 6, "timestamp_us": 9, "generation": 2,
            "details": {"Rejected": {"request": {"Proposal": "Update"}, "correlation_id": 4,
                "violation": {"OffGrid": {"index": 0, "value": 12.5}}, "delta": [0.5, 0.0]}}
        });
        assert_eq!(
            named.line(&record(refused)).expect("line"),
            "#6 t=9µs gen=2 REJECTED Proposal(Update) #4: batch_size would become 12.5, which is not on its grid"
        );
        let other = serde_json::json!({
            "seq": 0, "timestamp_us": 7, "generation": 0,
            "details": {"Started": {"params": [50.0]}}
        });
        let e = named.line(&record(other)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "audit.0000000001.jsonl:3: the event has 1 values but t.toml declares 2 parameters: not this log's config"
        );
    }

    #[test]
    fn only_log_files_make_a_directory_replaceable() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(is_replaceable(dir.path()));
        std::fs::write(dir.path().join("audit.lock"), b"").expect("write");
        std::fs::write(dir.path().join("audit.0000000001.jsonl"), b"").expect("write");
        assert!(is_replaceable(dir.path()));
        std::fs::write(dir.path().join("audit.jsonl"), b"").expect("write");
        assert!(!is_replaceable(dir.path()));
        std::fs::remove_file(dir.path().join("audit.jsonl")).expect("remove");
        std::fs::write(dir.path().join("notes.txt"), b"mine").expect("write");
        assert!(!is_replaceable(dir.path()));
        assert!(!is_replaceable(&dir.path().join("missing")));
    }
}
