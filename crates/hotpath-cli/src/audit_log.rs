//! The audit log of a run: `hotpath_durable`'s hash-chained, crash-safe
//! [`AuditLog`], in the directory `audit/` of the output directory.
//!
//! The executor writes its events to its own [`AuditQueue`]. The command
//! drains that queue itself after every step ([`RunLog::drain`]), so that it
//! can count the events for its summary and show them live, and forwards
//! each event, in sequence order, to a second queue that the [`AuditLog`]'s
//! writer thread drains into the files. What happens when the log falls
//! behind and that queue is full is the [`WhenFull`] policy:
//!
//! * [`WhenFull::Wait`] (replay): the command waits for room, so the
//!   executor never sees a full queue and the run stays a function of its
//!   inputs. A log that takes nothing for [`STALL_TIMEOUT`] is an error.
//! * [`WhenFull::Hold`] (demo): the event stays where it is and the command
//!   stops draining, so the executor's own queue fills and it refuses
//!   changes in `AuditQueueFull` safe mode until the log catches up, exactly
//!   as with a service writing to a slow disk.
//!
//! [`RunLog::finish`] forwards what is left, shuts the writer down (writing
//! and, unless the fsync policy is `Never`, syncing everything) and returns
//! what it wrote. Reading a log back (`hotpath audit show`, `verify`) goes
//! through `hotpath_durable`'s [`LogReader`], which checks the chain as it
//! reads: see [`read`] and [`resolve`].

use crate::CliError;
use hotpath::{AuditEvent, AuditQueue, EnqueueResult};
use hotpath_durable::audit_log::LogRecord;
use hotpath_durable::{AuditLog, AuditLogOptions, AuditLogStats, LogReader, OpenReport};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The log's directory name inside an output directory.
pub const DIR_NAME: &str = "audit";

/// How long [`WhenFull::Wait`] waits for a log that takes no event before
/// it gives up.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// What [`RunLog::drain`] does with an event when the log's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Wait for room (at most [`STALL_TIMEOUT`] without progress).
    Wait,
    /// Keep the event and stop draining the executor's queue until the log
    /// has room (backpressure reaches the executor).
    Hold,
}

/// A run's durable audit log, fed from the executor's queue.
///
/// Dropped without [`finish`](Self::finish) (a run stopping on an error), it
/// still hands the log what the executor had queued (waiting at most a
/// second for room), then shuts the log down: the decisions a run took are
/// in its log even when the run fails.
pub struct RunLog {
    // Dropped before `log`, so that what it forwards on drop is written.
    feed: Feed,
    log: AuditLog,
}

/// The forwarding half of a [`RunLog`].
struct Feed {
    /// The queue the log's writer drains.
    queue: Arc<AuditQueue>,
    /// The executor's queue, once drained.
    source: Option<Arc<AuditQueue>>,
    /// An event taken from the executor that the log had no room for
    /// (`Hold` only).
    held: Option<AuditEvent>,
    when_full: WhenFull,
    /// Events forwarded by this run.
    forwarded: u64,
}

impl RunLog {
    /// Opens (creating or recovering it) the log in `dir` with a queue of
    /// `capacity` events.
    pub fn open(
        dir: &Path,
        options: AuditLogOptions,
        capacity: usize,
        when_full: WhenFull,
    ) -> Result<Self, CliError> {
        let queue = Arc::new(AuditQueue::new(capacity));
        let log = AuditLog::open(dir, options, Arc::clone(&queue))?;
        Ok(Self {
            feed: Feed {
                queue,
                source: None,
                held: None,
                when_full,
                forwarded: 0,
            },
            log,
        })
    }

    /// What opening the log found (earlier events, cut torn lines).
    pub fn open_report(&self) -> &OpenReport {
        self.log.open_report()
    }

    /// The seq the executor's first event must carry to continue the chain.
    pub fn next_seq(&self) -> u64 {
        self.log.next_seq()
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        self.log.dir()
    }

    /// Moves the events queued by `engine`'s executor to the log, showing
    /// each to `each` (once, when it is taken from the executor's queue).
    /// An event `each` fails on is still forwarded.
    pub fn drain<C: hotpath::Clock>(
        &mut self,
        engine: &hotpath::AdaptiveEngine<C>,
        mut each: impl FnMut(&AuditEvent) -> Result<(), CliError>,
    ) -> Result<(), CliError> {
        let feed = &mut self.feed;
        let queue = engine.executor().audit_queue();
        if feed.source.is_none() {
            feed.source = Some(Arc::clone(queue));
        }
        if let Some(event) = feed.held.take() {
            if !feed.forward(event, &self.log)? {
                return Ok(());
            }
        }
        while let Some(event) = queue.try_dequeue() {
            let shown = each(&event);
            let forwarded = feed.forward(event, &self.log)?;
            shown?;
            if !forwarded {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Drains the executor one last time (waiting for room whatever the
    /// policy), then stops the log's writer after it has written everything
    /// (and synced it, unless the policy is `Never`). Call it after the
    /// executor's last decision.
    pub fn finish<C: hotpath::Clock>(
        mut self,
        engine: &hotpath::AdaptiveEngine<C>,
        each: impl FnMut(&AuditEvent) -> Result<(), CliError>,
    ) -> Result<Finished, CliError> {
        self.feed.when_full = WhenFull::Wait;
        if let Some(event) = self.feed.held.take() {
            self.feed.forward(event, &self.log)?;
        }
        self.drain(engine, each)?;
        let RunLog { mut feed, log } = self;
        feed.source = None;
        let forwarded = feed.forwarded;
        drop(feed);
        let dir = log.dir().to_path_buf();
        let stats = log.shutdown()?;
        Ok(Finished {
            dir,
            forwarded,
            stats,
        })
    }
}

impl Feed {
    /// Hands `event` to the log's queue; `false` if it is held instead.
    fn forward(&mut self, event: AuditEvent, log: &AuditLog) -> Result<bool, CliError> {
        let mut event = match self.queue.enqueue(event) {
            EnqueueResult::Enqueued => {
                self.forwarded += 1;
                return Ok(true);
            }
            EnqueueResult::Full(event) => event,
        };
        if self.when_full == WhenFull::Hold {
            self.held = Some(event);
            return Ok(false);
        }
        let mut progress = Instant::now();
        let mut queued = self.queue.len();
        let mut spins = 0u32;
        loop {
            // The writer wakes at least every poll interval (1 ms).
            if spins < 64 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(200));
            }
            spins += 1;
            event = match self.queue.enqueue(event) {
                EnqueueResult::Enqueued => {
                    self.forwarded += 1;
                    return Ok(true);
                }
                EnqueueResult::Full(event) => event,
            };
            let now = Instant::now();
            if self.queue.len() < queued {
                progress = now;
            }
            queued = self.queue.len();
            if now.duration_since(progress) >= STALL_TIMEOUT {
                return Err(CliError::AuditStalled {
                    dir: log.dir().to_path_buf(),
                    waited: STALL_TIMEOUT,
                    last_error: log.last_error(),
                });
            }
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        let Some(source) = self.source.take() else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut next = self.held.take().or_else(|| source.try_dequeue());
        while let Some(event) = next {
            next = match self.queue.enqueue(event) {
                EnqueueResult::Enqueued => source.try_dequeue(),
                EnqueueResult::Full(_) if Instant::now() >= deadline => {
                    let lost = 1 + source.len();
                    eprintln!("warning: {lost} audit events could not be handed to the audit log");
                    return;
                }
                EnqueueResult::Full(event) => {
                    std::thread::sleep(Duration::from_micros(200));
                    Some(event)
                }
            };
        }
    }
}

/// What [`RunLog::finish`] wrote.
#[derive(Debug)]
pub struct Finished {
    /// The log directory.
    pub dir: PathBuf,
    /// Events of this run.
    pub forwarded: u64,
    /// The writer's final counters.
    pub stats: AuditLogStats,
}

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
    fn a_run_that_fails_still_logs_what_the_executor_queued() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("audit");
        let mut run =
            RunLog::open(&log, AuditLogOptions::default(), 64, WhenFull::Hold).expect("open");
        let mut engine = hotpath::AdaptiveEngine::with_clock(
            hotpath::AdaptiveEngineConfig::bounded(vec![(0.0, 1.0)]),
            hotpath::ParamVec::from_slice(&[0.5]),
            hotpath::ManualClock::new(0),
        )
        .expect("engine");
        let mut seen = 0;
        run.drain(&engine, |_| {
            seen += 1;
            Ok(())
        })
        .expect("drain");
        assert_eq!(seen, 2, "started, baseline set");
        engine.executor_mut().rollback().expect("rollback");
        // No drain, no finish: the run stops here.
        drop(run);
        let report = hotpath_durable::verify(&log).expect("sound");
        assert_eq!((report.events, report.last_seq), (3, Some(2)));
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
