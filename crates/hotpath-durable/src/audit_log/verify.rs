//! Reading and verifying a log: [`LogReader`], [`verify`].

use super::format::{list_files, parse_file_name, parse_line, ChainHash, LineDefect};
use hotpath::{AuditEvent, EventType};
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The first thing wrong with a log, with the file and line (1-based, per
/// file) where it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A file or directory could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// What could not be read.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The path given is a file whose name is not `audit.<10 digits>.jsonl`.
    #[error("{} is not an audit log file (audit.NNNNNNNNNN.jsonl)", path.display())]
    NotALogFile {
        /// The path.
        path: PathBuf,
    },
    /// A line is not a valid link of the chain: the first such line.
    #[error("{}:{line}: {defect}", file.display())]
    Line {
        /// The file.
        file: PathBuf,
        /// Its line number, from 1.
        line: u64,
        /// What is wrong.
        defect: LineDefect,
    },
    /// A fleet's log (see [`verify_fleet`](super::verify_fleet)) has a
    /// segment that does not continue any line of the directories given,
    /// or a second segment starting from the genesis.
    #[error("{}: {defect}", file.display())]
    Segment {
        /// The segment's file.
        file: PathBuf,
        /// What is wrong.
        defect: SegmentDefect,
    },
    /// The chain is intact but the events' sequence numbers are not
    /// consecutive (a gap, a repeat or a step back): the log was fed by an
    /// executor that did not continue the numbering.
    #[error("{}:{line}: sequence gap: expected seq {expected}, found {found}", file.display())]
    SequenceGap {
        /// The file.
        file: PathBuf,
        /// Its line number, from 1.
        line: u64,
        /// The previous line's seq + 1.
        expected: u64,
        /// The line's seq.
        found: u64,
    },
}

impl VerifyError {
    /// The file and line the error is about, if it is about a line.
    ///
    /// ```
    /// use hotpath_durable::audit_log::verify;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// std::fs::write(dir.path().join("audit.0000000001.jsonl"), "not a line\n")?;
    /// let error = verify(dir.path()).unwrap_err();
    /// let (file, line) = error.location().ok_or("no location")?;
    /// assert!(file.ends_with("audit.0000000001.jsonl"));
    /// assert_eq!(line, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn location(&self) -> Option<(&Path, u64)> {
        match self {
            VerifyError::Line { file, line, .. } | VerifyError::SequenceGap { file, line, .. } => {
                Some((file, *line))
            }
            VerifyError::Segment { file, .. } => Some((file, 1)),
            VerifyError::Io { .. } | VerifyError::NotALogFile { .. } => None,
        }
    }
}

/// Why a segment of a fleet's log does not fit its chain.
///
/// ```
/// use hotpath_durable::audit_log::{ChainHash, SegmentDefect};
///
/// let d = SegmentDefect::Unattached { seq: 7, prev: ChainHash::GENESIS };
/// assert!(d.to_string().starts_with("starts at seq 7 continuing"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SegmentDefect {
    /// It continues a line that no file given holds at the seq before its
    /// first (a segment, or a directory, is missing).
    Unattached {
        /// Its first seq.
        seq: u64,
        /// Its first line's `prev`.
        prev: ChainHash,
    },
    /// It starts from the genesis, like another file: two chains.
    SecondGenesis {
        /// The other file.
        other: PathBuf,
    },
}

impl std::fmt::Display for SegmentDefect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unattached { seq, prev } => write!(
                f,
                "starts at seq {seq} continuing line {prev}, which no file given holds at seq {}: a segment or a directory is missing",
                seq.saturating_sub(1)
            ),
            Self::SecondGenesis { other } => write!(
                f,
                "starts a chain from the genesis, as {} does: these are two logs, not one",
                other.display()
            ),
        }
    }
}

/// What [`verify`] found in a sound log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Log files read.
    pub files: usize,
    /// Lines (events) read.
    pub events: u64,
    /// Seq of the first event, `None` for an empty log.
    pub first_seq: Option<u64>,
    /// Seq of the last event, `None` for an empty log.
    pub last_seq: Option<u64>,
    /// The `prev` the chain starts from: [`ChainHash::GENESIS`], unless a
    /// single file other than the first was verified.
    pub first_prev: ChainHash,
    /// Hash of the last line (the chain's head). Keep it somewhere else
    /// to detect a later truncation of the log (see the [module
    /// docs](super#what-the-chain-proves)).
    pub last_hash: ChainHash,
}

/// One verified line of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// The file it is in.
    pub file: Arc<Path>,
    /// Its line number in that file, from 1.
    pub line: u64,
    /// The event's sequence number.
    pub seq: u64,
    /// The event's type.
    pub event_type: EventType,
    /// The line's hash.
    pub hash: ChainHash,
    /// The event as written (an [`AuditEvent`] serialised by serde_json).
    pub event: serde_json::Value,
}

impl LogRecord {
    /// The event as an [`AuditEvent`]. Fails for the few events that
    /// carried a non-finite number (a refused NaN proposal, say): JSON has no
    /// NaN, so serde_json wrote `null`, which [`event`](Self::event) shows.
    pub fn audit_event(&self) -> Result<AuditEvent, serde_json::Error> {
        serde_json::from_value(self.event.clone())
    }
}

/// Reads a log line by line, verifying as it goes: an iterator of
/// [`LogRecord`]s that yields the first [`VerifyError`] and then ends.
/// [`verify`] is this reader run to the end.
///
/// ```
/// use hotpath::{AtomicConfig, EventType, ParamVec, SafetyExecutor};
/// use hotpath_durable::audit_log::{AuditLog, AuditLogOptions, LogReader};
/// use std::sync::Arc;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
/// let executor = SafetyExecutor::builder(config).build()?;
/// let log = AuditLog::open(dir.path(), AuditLogOptions::default(), executor.audit_queue().clone())?;
/// log.shutdown()?;
///
/// let records = LogReader::open(dir.path())?.collect::<Result<Vec<_>, _>>()?;
/// assert_eq!(records.len(), 1);
/// assert_eq!(records[0].event_type, EventType::Started);
/// assert_eq!(records[0].audit_event()?.seq, 0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct LogReader {
    files: std::vec::IntoIter<PathBuf>,
    current: Option<(Arc<Path>, BufReader<File>)>,
    files_read: usize,
    line: u64,
    buf: Vec<u8>,
    /// `None` until the first line, when verifying a single file that does
    /// not start the chain.
    prev: Option<ChainHash>,
    first_prev: ChainHash,
    first_seq: Option<u64>,
    last_seq: Option<u64>,
    events: u64,
    done: bool,
}

impl LogReader {
    /// Reads `path`: a log directory (every `audit.*.jsonl` file in it, in
    /// order, as one chain from the genesis hash), or one log file (its
    /// chain starting from the genesis hash if it is file 1, otherwise from
    /// its first line's `prev`).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, VerifyError> {
        let path = path.as_ref();
        let io_error = |source| VerifyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let metadata = std::fs::metadata(path).map_err(io_error)?;
        let (files, prev) = if metadata.is_dir() {
            let files = list_files(path).map_err(io_error)?;
            (
                files.into_iter().map(|(_, p)| p).collect(),
                Some(ChainHash::GENESIS),
            )
        } else {
            let index = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(parse_file_name)
                .ok_or_else(|| VerifyError::NotALogFile {
                    path: path.to_path_buf(),
                })?;
            let prev = (index == 1).then_some(ChainHash::GENESIS);
            (vec![path.to_path_buf()], prev)
        };
        Ok(Self::of(files, prev))
    }

    /// One file of a fleet's log: a segment, whose chain starts from its
    /// first line's `prev` whatever its index.
    pub(crate) fn segment(file: PathBuf) -> Self {
        Self::of(vec![file], None)
    }

    fn of(files: Vec<PathBuf>, prev: Option<ChainHash>) -> Self {
        Self {
            files: files.into_iter(),
            current: None,
            files_read: 0,
            line: 0,
            buf: Vec::new(),
            prev,
            first_prev: ChainHash::GENESIS,
            first_seq: None,
            last_seq: None,
            events: 0,
            done: false,
        }
    }

    /// What has been read so far, as a report: after the reader has ended
    /// without error, the report on the whole log.
    pub fn report(&self) -> VerifyReport {
        VerifyReport {
            files: self.files_read,
            events: self.events,
            first_seq: self.first_seq,
            last_seq: self.last_seq,
            first_prev: self.first_prev,
            last_hash: self.prev.unwrap_or(self.first_prev),
        }
    }

    /// The next line, or `None` at the end of the last file.
    fn next_record(&mut self) -> Result<Option<LogRecord>, VerifyError> {
        loop {
            let (path, reader) = match &mut self.current {
                Some(current) => current,
                None => {
                    let Some(path) = self.files.next() else {
                        return Ok(None);
                    };
                    let file = File::open(&path).map_err(|source| VerifyError::Io {
                        path: path.clone(),
                        source,
                    })?;
                    self.files_read += 1;
                    self.line = 0;
                    self.current.insert((Arc::from(path), BufReader::new(file)))
                }
            };
            self.buf.clear();
            let n = reader
                .read_until(b'\n', &mut self.buf)
                .map_err(|source| VerifyError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
            if n == 0 {
                self.current = None;
                continue;
            }
            self.line += 1;
            let file = Arc::clone(path);
            let line = self.line;
            let fail = |defect| VerifyError::Line {
                file: file.to_path_buf(),
                line,
                defect,
            };
            let Some(content) = self.buf.strip_suffix(b"\n") else {
                return Err(fail(LineDefect::Incomplete { bytes: n as u64 }));
            };
            let parsed = parse_line(content).map_err(fail)?;
            let expected = *self.prev.get_or_insert(parsed.prev);
            if parsed.prev != expected {
                return Err(fail(LineDefect::BrokenLink {
                    expected,
                    found: parsed.prev,
                }));
            }
            if let Some(last) = self.last_seq {
                let expected = last.saturating_add(1);
                if parsed.seq != expected {
                    return Err(VerifyError::SequenceGap {
                        file: file.to_path_buf(),
                        line,
                        expected,
                        found: parsed.seq,
                    });
                }
            }
            if self.events == 0 {
                self.first_prev = parsed.prev;
                self.first_seq = Some(parsed.seq);
            }
            self.events += 1;
            self.last_seq = Some(parsed.seq);
            self.prev = Some(parsed.hash);
            return Ok(Some(LogRecord {
                file,
                line,
                seq: parsed.seq,
                event_type: parsed.event_type,
                hash: parsed.hash,
                event: parsed.event,
            }));
        }
    }
}

impl Iterator for LogReader {
    type Item = Result<LogRecord, VerifyError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.next_record().transpose();
        if !matches!(next, Some(Ok(_))) {
            self.done = true;
        }
        next
    }
}

/// Verifies a log directory (or one log file, see [`LogReader::open`]):
/// every line well-formed and hashing to its stated hash, every `prev` the
/// hash of the line before it (the genesis hash first), and sequence
/// numbers consecutive. Returns the counts, or the first problem with its
/// file and line.
///
/// A log that is still being written may end in a line being written
/// (`LineDefect::Incomplete`); a log reopened after a crash has its torn
/// tail cut by [`AuditLog::open`](super::AuditLog::open).
///
/// ```
/// use hotpath_durable::audit_log::{verify, ChainHash};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let report = verify(dir.path())?; // an empty log is a sound one
/// assert_eq!((report.files, report.events, report.last_seq), (0, 0, None));
/// assert_eq!(report.last_hash, ChainHash::GENESIS);
/// # Ok(())
/// # }
/// ```
pub fn verify(path: impl AsRef<Path>) -> Result<VerifyReport, VerifyError> {
    let mut reader = LogReader::open(path)?;
    for record in reader.by_ref() {
        record?;
    }
    Ok(reader.report())
}
