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

use crate::CliError;
use hotpath::AuditEvent;
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
