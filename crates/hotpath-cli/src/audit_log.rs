//! The audit log: **the seam for `hotpath-durable`**.
//!
//! Everything that writes or reads an audit log goes through this module:
//! [`create`] opens the log of a run, [`AuditSink::record`] takes each
//! event (the caller drains the executor's `AuditQueue` after every step,
//! in sequence order) and [`AuditSink::commit`] completes it; [`read`]
//! walks a log for `hotpath audit show`.
//!
//! Until the crash-safe, hash-chained log lands, the log is plain JSON
//! Lines: one serialised [`AuditEvent`] per line, written through an
//! [`OutputFile`] (so it appears under its name only when complete).

use crate::output::OutputFile;
use crate::CliError;
use hotpath::AuditEvent;
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// The log's file name inside an output directory.
pub const FILE_NAME: &str = "audit.jsonl";

/// Where a run's audit events go.
pub trait AuditSink {
    /// Appends one event (events arrive in sequence order).
    fn record(&mut self, event: &AuditEvent) -> Result<(), CliError>;
    /// Completes the log; returns its path.
    fn commit(self: Box<Self>) -> Result<PathBuf, CliError>;
}

/// Opens the audit log of a run in `dir` (which must exist).
pub fn create(dir: &Path) -> Result<Box<dyn AuditSink>, CliError> {
    Ok(Box::new(JsonlLog {
        out: OutputFile::create(&dir.join(FILE_NAME))?,
    }))
}

struct JsonlLog {
    out: OutputFile,
}

impl AuditSink for JsonlLog {
    fn record(&mut self, event: &AuditEvent) -> Result<(), CliError> {
        self.out.write_json_line(event)
    }

    fn commit(self: Box<Self>) -> Result<PathBuf, CliError> {
        self.out.commit()
    }
}

/// Moves every event queued by `engine`'s executor to `sink`, showing each
/// to `each` first (for summaries and live views).
pub fn drain<C: hotpath::Clock>(
    engine: &hotpath::AdaptiveEngine<C>,
    sink: &mut dyn AuditSink,
    mut each: impl FnMut(&AuditEvent) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let queue = engine.executor().audit_queue();
    while let Some(event) = queue.try_dequeue() {
        each(&event)?;
        sink.record(&event)?;
    }
    Ok(())
}

/// Calls `each` with every event of the log at `path`, in order.
pub fn read(
    path: &Path,
    mut each: impl FnMut(AuditEvent) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let file = std::fs::File::open(path).map_err(|e| CliError::read(path, e))?;
    let mut input = std::io::BufReader::new(file);
    let mut buf = Vec::new();
    let mut line = 0;
    loop {
        buf.clear();
        if input
            .read_until(b'\n', &mut buf)
            .map_err(|e| CliError::read(path, e))?
            == 0
        {
            return Ok(());
        }
        line += 1;
        let text = buf.trim_ascii();
        if text.is_empty() {
            continue;
        }
        let event =
            serde_json::from_slice::<AuditEvent>(text).map_err(|e| CliError::AuditLine {
                file: path.display().to_string(),
                line,
                message: format!("not an audit event: {}", crate::telemetry::json_error(&e)),
            })?;
        each(event)?;
    }
}
