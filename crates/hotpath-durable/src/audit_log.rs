//! The audit log: every [`AuditEvent`](hotpath::AuditEvent) of a
//! [`SafetyExecutor`](hotpath::SafetyExecutor), appended by a background
//! thread to hash-chained JSON Lines files that survive crashes and show
//! tampering.
//!
//! [`AuditLog::open`] recovers the log in a directory (cutting a torn final
//! line) and starts a writer thread that drains the executor's
//! [`AuditQueue`] into it; [`verify`] checks a log; [`LogReader`] reads one
//! back. The executor never waits for the log: the queue between them is
//! lock-free and bounded, and when the log falls behind the executor
//! refuses changes instead (see [Backpressure](#backpressure-and-failures)).
//!
//! ```
//! use hotpath::{AtomicConfig, ParamVec, Proposal, SafetyExecutor};
//! use hotpath_durable::audit_log::{verify, AuditLog, AuditLogOptions};
//! use std::sync::Arc;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let dir = dir.path();
//! let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
//! let mut executor = SafetyExecutor::builder(config).build()?;
//! let log = AuditLog::open(dir, AuditLogOptions::default(), executor.audit_queue().clone())?;
//! executor.apply(Proposal::Update {
//!     iteration: 1,
//!     delta: ParamVec::from_slice(&[0.05]),
//!     gradient_estimate: ParamVec::new(),
//! })?;
//! let stats = log.shutdown()?; // writes, fsyncs and joins
//! assert_eq!(stats.durable_seq, Some(1)); // Started (0) and Applied (1)
//! assert_eq!(verify(dir)?.events, 2);
//! # Ok(())
//! # }
//! ```
//!
//! # Files
//!
//! A log is a directory holding `audit.0000000001.jsonl`,
//! `audit.0000000002.jsonl`, … (a 10-digit index from 1; the highest is
//! being written) and `audit.lock`, which the open log holds an advisory
//! lock on so that two writers cannot fork the chain. Other files are
//! ignored. The files are append-only: the writer only ever appends, and
//! cuts only bytes it wrote and could not make durable (see
//! [`LogSink`]) or, on open, a torn final line.
//!
//! # The line format
//!
//! One line per event, UTF-8, no whitespace, exactly these five fields in
//! this order:
//!
//! ```text
//! {"seq":<seq>,"type":"<type>","prev":"<64 hex>","event":<event>,"hash":"<64 hex>"}\n
//! ```
//!
//! * `seq`: the event's sequence number (equal to `event.seq`).
//! * `type`: the event's [`EventType`](hotpath::EventType) (equal to the
//!   single key of `event.details`).
//! * `prev`: the `hash` of the line before it in the chain, which continues
//!   across files; `"000…0"` (64 zeros, [`ChainHash::GENESIS`]) on the first
//!   line of a log.
//! * `event`: the [`AuditEvent`](hotpath::AuditEvent) as serde_json writes
//!   it: `{"seq":…,"timestamp_us":…,"generation":…,"details":{"<type>":{…}}}`
//!   with the executor's timestamp (µs), the generation after the decision
//!   and the structured details (proposal kind and correlation id, delta,
//!   resulting params, violation with its context, safe-mode reason, …).
//!   JSON has no NaN or infinity: a non-finite number (in the delta of a
//!   refused NaN proposal, say) is written as `null`.
//! * `hash`: SHA-256 of the line's **body**, in lowercase hex. The body is
//!   the line's bytes from its opening `{` up to, not including,
//!   `,"hash":"`; it contains `prev`, so each hash covers the whole chain
//!   before it.
//!
//! For example (shortened hashes):
//!
//! ```text
//! {"seq":0,"type":"Started","prev":"0000…0000","event":{"seq":0,"timestamp_us":17,"generation":0,"details":{"Started":{"params":[0.5]}}},"hash":"9f2c…61ab"}
//! {"seq":1,"type":"Applied","prev":"9f2c…61ab","event":{"seq":1,"timestamp_us":180,"generation":1,"details":{"Applied":{"kind":"Update","correlation_id":1,"previous_generation":0,"delta":[0.05],"params":[0.55]}}},"hash":"03d7…e410"}
//! ```
//!
//! Anyone can check a log without this crate: every line ends with the
//! 76 bytes `,"hash":"<64 hex>"}\n`, and
//!
//! ```text
//! import glob, hashlib, json
//! prev = "0" * 64
//! for path in sorted(glob.glob("audit.*.jsonl")):
//!     for n, line in enumerate(open(path, "rb"), 1):
//!         record = json.loads(line)
//!         assert line.endswith(b',"hash":"%s"}\n' % record["hash"].encode()), (path, n)
//!         assert hashlib.sha256(line[:-76]).hexdigest() == record["hash"], (path, n)
//!         assert record["prev"] == prev, (path, n)
//!         prev = record["hash"]
//! ```
//!
//! # What the chain proves
//!
//! [`verify`] checks every line's fields and hash, every `prev` against the
//! previous line's hash (the genesis hash first), and that sequence numbers
//! go up by one. Editing a line breaks its hash; deleting, inserting or
//! moving lines breaks the link at the first line out of place; cutting a
//! line in the middle makes it malformed. [`VerifyError`] names the file and
//! line of the first problem.
//!
//! The chain is not keyed: someone who can rewrite the files can compute a
//! new chain from the point they changed, and a cut at the very end leaves
//! a shorter valid chain. To catch those, keep the head somewhere the
//! writer of the files cannot reach: [`VerifyReport::last_hash`] and
//! `last_seq` from a periodic `verify`, shipped to another system. Any
//! later log must extend that head.
//!
//! # Fsync policies
//!
//! [`FsyncPolicy`] says when the writer calls `fdatasync`:
//!
//! * `Every`: after every event (one write and one fsync per event): the
//!   slowest, and nothing is ever waiting for a sync.
//! * `GroupCommit { interval_ms }` (the default, 10 ms): events are written
//!   as soon as they are dequeued (so they survive a crash of the process)
//!   and synced together once the oldest unsynced one has waited
//!   `interval_ms`, or when `max_pending_events` are held.
//! * `Never`: written, never synced by the writer (the OS writes them back
//!   when it likes; they survive a process crash, not a power cut).
//!
//! [`AuditLog::durable_seq`] is the highest seq known to be fsync'd: after
//! a crash or power cut, the log holds at least every event up to it.
//! [`AuditLog::written_seq`] is the highest seq handed to the OS.
//!
//! # Rotation
//!
//! When the next line would make the current file larger than
//! [`AuditLogOptions::max_file_bytes`], the writer syncs the file, creates
//! the next one (and fsyncs the directory) and goes on there; the first
//! line of the new file carries the last hash of the old one. A line never
//! spans two files; a line larger than the limit gets a file of its own.
//!
//! # Crash recovery
//!
//! [`AuditLog::open`] on an existing log reads the last file and checks
//! each line and its link. If the **final** line is torn, that is what an
//! interrupted write leaves (no newline, as a crash mid-write leaves it, or
//! bytes that are not JSON, as a power cut can leave an unwritten block:
//! [`LineDefect::is_torn_write`]), it is cut, and the cut is reported in
//! [`OpenReport::truncations`] and by a `tracing` warning. If the file is
//! then empty, the file before it is examined the same way. Anything else
//! is not a torn write but tampering or disk corruption, and `open` refuses
//! it ([`AuditLogError::Corrupt`], naming the file and line) rather than
//! cut evidence: damage followed by more lines, and a complete final line
//! that parses but does not verify (an edited line whose hash no longer
//! matches, a copied line whose link is wrong, a seq beyond the ceiling). The chain then continues from the
//! last valid line: [`OpenReport::last_hash`] is the next line's `prev`, and
//! [`AuditLog::next_seq`] the seq the next event should carry. `open`
//! fsyncs what it found, so `durable_seq` starts at the recovered last seq.
//!
//! # Backpressure and failures
//!
//! The writer takes events from the queue only while it holds fewer than
//! [`AuditLogOptions::max_pending_events`] lines that are not yet durable.
//! If the sink fails (disk full, I/O error) or stalls, the writer keeps
//! those lines, retries with exponential backoff
//! (`retry_backoff_min`..`retry_backoff_max`), counts each failure in
//! [`AuditLogStats::write_errors`] and reports it through `tracing` (error
//! on the first failure, warnings while it lasts, info on recovery). It never
//! drops a line. Meanwhile the executor's queue fills: the executor refuses
//! changes and latches safe mode (`AuditQueueFull`) by itself, the data plane
//! keeps reading its config, and once the writer catches up and the queue
//! drains to its high-water mark the executor leaves safe mode. Events the
//! executor could not queue are counted by it and reported in an
//! `EventsDropped` line.
//!
//! A failed append is undone (the segment is cut back to where it was)
//! before it is retried; a failed fsync cuts everything written since the
//! last successful one and writes it again, because after a failed fsync
//! the OS may have dropped those pages without saying so again. See
//! [`LogSink`] for the contract, and [`AuditLog::open_with`] to wrap the
//! file sink (fault injection, metrics). Shutdown waits for a failing sink
//! at most [`AuditLogOptions::shutdown_timeout`] (then reports what it
//! could not write), and for a hung one 100 ms more.
//!
//! # Sequence numbers across restarts
//!
//! (`hotpath-host`'s `Host::open` does all of this, with the state file;
//! what follows is for embedding this crate alone.)
//!
//! Lines must carry consecutive sequence numbers. An executor restarted
//! over an existing log must continue from [`AuditLog::next_seq`]
//! (`ExecutorBuilder::audit_sequence_start(log.next_seq())`, with the log
//! opened on the queue before the executor is built); an event
//! out of sequence is still written (never dropped), counted in
//! [`AuditLogStats::seq_anomalies`] and logged, and [`verify`] reports it as
//! a [`VerifyError::SequenceGap`].
//!
//! ```
//! use hotpath::{AtomicConfig, AuditQueue, ParamVec, SafetyExecutor, DEFAULT_AUDIT_CAPACITY};
//! use hotpath_durable::audit_log::{verify, AuditLog, AuditLogOptions};
//! use std::sync::Arc;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let dir = dir.path();
//! for _run in 0..2 {
//!     // The queue, then the log (recovered), then the executor.
//!     let queue = Arc::new(AuditQueue::new(DEFAULT_AUDIT_CAPACITY));
//!     let log = AuditLog::open(dir, AuditLogOptions::default(), Arc::clone(&queue))?;
//!     let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
//!     let executor = SafetyExecutor::builder(config)
//!         .audit_queue(queue)
//!         .audit_sequence_start(log.next_seq())
//!         .build()?; // its first event continues the log's numbering
//!     drop(executor);
//!     log.shutdown()?;
//! }
//! let report = verify(dir)?; // two `Started` events, seq 0 and 1
//! assert_eq!((report.first_seq, report.last_seq), (Some(0), Some(1)));
//! # Ok(())
//! # }
//! ```

mod fleet;
mod format;
mod recover;
mod sink;
mod verify;
mod writer;

pub use fleet::{verify_fleet, AbandonedTail, FleetReport};
pub use format::{encode, ChainHash, LineDefect, LogHead};
pub use recover::{OpenReport, Truncation};
pub use sink::{FileSink, LogSink};
pub use verify::{verify, LogReader, LogRecord, SegmentDefect, VerifyError, VerifyReport};

use hotpath::AuditQueue;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;
use writer::{load_seq, Shared, Writer};

/// The lock file in a log directory.
const LOCK_FILE: &str = "audit.lock";
/// How much longer than `shutdown_timeout` shutdown waits for the writer
/// to finish its last sink call.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(100);

/// When the writer fsyncs. See the [module docs](self#fsync-policies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// After every event.
    Every,
    /// Once the oldest unsynced event has waited this long (or the writer
    /// holds `max_pending_events`).
    GroupCommit {
        /// The longest an event waits for its fsync, in ms (at most
        /// [`MAX_GROUP_COMMIT_MS`]).
        interval_ms: u64,
    },
    /// Never: the OS decides when data reaches the disk.
    Never,
}

impl Default for FsyncPolicy {
    /// Group commit every 10 ms.
    fn default() -> Self {
        FsyncPolicy::GroupCommit { interval_ms: 10 }
    }
}

/// Settings of an [`AuditLog`].
///
/// ```
/// use hotpath_durable::audit_log::{AuditLogOptions, FsyncPolicy};
///
/// let options = AuditLogOptions {
///     fsync: FsyncPolicy::Every,
///     max_file_bytes: 16 << 20,
///     ..AuditLogOptions::default()
/// };
/// assert_eq!(options.max_pending_events, 4096);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLogOptions {
    /// When to fsync (default: group commit every 10 ms).
    pub fsync: FsyncPolicy,
    /// Size at which a file is rotated, in bytes (default 64 MiB; at least
    /// 1).
    pub max_file_bytes: u64,
    /// Most lines the writer holds that are not yet durable (default 4096;
    /// 1 to [`MAX_PENDING_EVENTS`]). While it holds this many it takes nothing from the
    /// queue; this bounds its memory when the sink fails.
    pub max_pending_events: usize,
    /// How long the writer sleeps when the queue is empty (default 1 ms;
    /// more than 0, at most [`MAX_POLL_INTERVAL`]). The executor does not wake it: this is the latency
    /// between an event being queued and being written.
    pub poll_interval: Duration,
    /// First wait before retrying a failed write (default 1 ms; more than
    /// 0). Doubles on each failure in a row.
    pub retry_backoff_min: Duration,
    /// Longest wait between retries (default 1 s; at least
    /// `retry_backoff_min`, at most [`MAX_WAIT`]).
    pub retry_backoff_max: Duration,
    /// How long [`AuditLog::shutdown`] keeps retrying a failing sink before
    /// it gives up and reports what it could not write (default 10 s, at
    /// most [`MAX_WAIT`]). A
    /// sink call that has not returned 100 ms after that is not waited for
    /// ([`AuditLogError::WriterStuck`]).
    pub shutdown_timeout: Duration,
}

impl Default for AuditLogOptions {
    fn default() -> Self {
        Self {
            fsync: FsyncPolicy::default(),
            max_file_bytes: 64 << 20,
            max_pending_events: 4096,
            poll_interval: Duration::from_millis(1),
            retry_backoff_min: Duration::from_millis(1),
            retry_backoff_max: Duration::from_secs(1),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// The most lines [`AuditLogOptions::max_pending_events`] may hold:
/// [`hotpath::MAX_AUDIT_CAPACITY`], the largest queue an executor has.
///
/// ```
/// use hotpath_durable::audit_log::{AuditLogOptions, MAX_PENDING_EVENTS};
///
/// let over = AuditLogOptions { max_pending_events: MAX_PENDING_EVENTS + 1, ..AuditLogOptions::default() };
/// assert!(over.validate().is_err());
/// ```
pub const MAX_PENDING_EVENTS: usize = hotpath::MAX_AUDIT_CAPACITY;
/// The longest [`AuditLogOptions::poll_interval`]: 1 s.
///
/// ```
/// use hotpath_durable::audit_log::{AuditLogOptions, MAX_POLL_INTERVAL};
///
/// let slow = AuditLogOptions { poll_interval: MAX_POLL_INTERVAL, ..AuditLogOptions::default() };
/// assert!(slow.validate().is_ok());
/// ```
pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The longest group commit interval ([`FsyncPolicy::GroupCommit`]): 60 s.
///
/// ```
/// use hotpath_durable::audit_log::{AuditLogOptions, FsyncPolicy, MAX_GROUP_COMMIT_MS};
///
/// let fsync = FsyncPolicy::GroupCommit { interval_ms: MAX_GROUP_COMMIT_MS + 1 };
/// assert!(AuditLogOptions { fsync, ..AuditLogOptions::default() }.validate().is_err());
/// ```
pub const MAX_GROUP_COMMIT_MS: u64 = 60_000;
/// The longest [`AuditLogOptions::retry_backoff_max`] and
/// [`AuditLogOptions::shutdown_timeout`]: 1 hour.
///
/// ```
/// use hotpath_durable::audit_log::{AuditLogOptions, MAX_WAIT};
///
/// let patient = AuditLogOptions { shutdown_timeout: MAX_WAIT, ..AuditLogOptions::default() };
/// assert!(patient.validate().is_ok());
/// ```
pub const MAX_WAIT: Duration = Duration::from_secs(3600);

impl AuditLogOptions {
    /// Checks every setting is within its documented range.
    ///
    /// ```
    /// use hotpath_durable::audit_log::{AuditLogError, AuditLogOptions};
    /// use std::time::Duration;
    ///
    /// assert!(AuditLogOptions::default().validate().is_ok());
    /// let forever = AuditLogOptions { shutdown_timeout: Duration::MAX, ..AuditLogOptions::default() };
    /// assert!(matches!(forever.validate(), Err(AuditLogError::InvalidOptions { .. })));
    /// ```
    ///
    /// # Errors
    ///
    /// [`AuditLogError::InvalidOptions`] naming the first setting out of
    /// range.
    pub fn validate(&self) -> Result<(), AuditLogError> {
        let reason = if self.max_file_bytes == 0 {
            "max_file_bytes must be at least 1"
        } else if self.max_pending_events == 0 {
            "max_pending_events must be at least 1"
        } else if self.max_pending_events > MAX_PENDING_EVENTS {
            "max_pending_events must be at most MAX_PENDING_EVENTS (2^20)"
        } else if self.poll_interval.is_zero() {
            "poll_interval must be more than 0"
        } else if self.poll_interval > MAX_POLL_INTERVAL {
            "poll_interval must be at most MAX_POLL_INTERVAL (1 s)"
        } else if self.retry_backoff_min.is_zero() {
            "retry_backoff_min must be more than 0"
        } else if self.retry_backoff_max < self.retry_backoff_min {
            "retry_backoff_max must be at least retry_backoff_min"
        } else if self.retry_backoff_max > MAX_WAIT {
            "retry_backoff_max must be at most MAX_WAIT (1 hour)"
        } else if self.shutdown_timeout > MAX_WAIT {
            "shutdown_timeout must be at most MAX_WAIT (1 hour)"
        } else if matches!(self.fsync, FsyncPolicy::GroupCommit { interval_ms } if interval_ms > MAX_GROUP_COMMIT_MS)
        {
            "the group commit interval must be at most MAX_GROUP_COMMIT_MS (60 s)"
        } else {
            return Ok(());
        };
        Err(AuditLogError::InvalidOptions { reason })
    }
}

/// Counters of an [`AuditLog`], from [`AuditLog::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditLogStats {
    /// Events written to the sink (each counted once, even if a failed
    /// fsync made the writer write it again).
    pub events_written: u64,
    /// Bytes of those events.
    pub bytes_written: u64,
    /// Failed sink calls (appends, fsyncs, truncations, rotations).
    pub write_errors: u64,
    /// Events serde could not serialise, recorded as text instead (see the
    /// [module docs](self#the-line-format); none of `hotpath`'s events do
    /// this today).
    pub encode_errors: u64,
    /// Successful fsyncs.
    pub fsyncs: u64,
    /// Files started by rotation.
    pub rotations: u64,
    /// Events whose seq was not the previous one + 1 (written anyway).
    pub seq_anomalies: u64,
    /// Lines held in memory, not yet durable.
    pub pending_events: usize,
    /// `true` while the sink is failing and the writer is retrying.
    pub failing: bool,
    /// Highest seq handed to the sink.
    pub written_seq: Option<u64>,
    /// Highest seq known to be fsync'd.
    pub durable_seq: Option<u64>,
    /// The last event committed, with its hash (see
    /// [`AuditLog::committed`]).
    pub committed: Option<LogHead>,
}

/// Why an [`AuditLog`] could not be opened or shut down cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditLogError {
    /// An [`AuditLogOptions`] value is out of range.
    #[error("invalid audit log options: {reason}")]
    InvalidOptions {
        /// Which and why.
        reason: &'static str,
    },
    /// A file or directory of the log could not be created, read or
    /// repaired.
    #[error("audit log I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Another open [`AuditLog`] (in this process or another) holds the
    /// directory.
    #[error("the audit log in {} is already open", dir.display())]
    Locked {
        /// The directory.
        dir: PathBuf,
    },
    /// The log is damaged before its final line: not a torn write, so it is
    /// not cut. Inspect it with [`verify`].
    #[error("the audit log is damaged before its end, not opening it: {0}")]
    Corrupt(#[source] VerifyError),
    /// The writer thread could not be started.
    #[error("cannot start the audit log writer: {0}")]
    Spawn(#[source] io::Error),
    /// Shutdown timed out with events the sink did not take.
    #[error("audit log shut down with {unwritten} events not written (last error: {})", last_error.as_deref().unwrap_or("none"))]
    Unflushed {
        /// Events held by the writer or still queued.
        unwritten: usize,
        /// The sink's last error.
        last_error: Option<String>,
    },
    /// The writer thread panicked.
    #[error("the audit log writer panicked")]
    WriterPanicked,
    /// The writer did not finish within the shutdown timeout because a
    /// sink call did not return (a hung disk). It is left running and keeps
    /// the directory locked until the call returns.
    #[error("the audit log writer is blocked in a write or fsync; left running after {waited:?}")]
    WriterStuck {
        /// How long shutdown waited.
        waited: Duration,
    },
}

/// A running audit log: a writer thread draining an [`AuditQueue`] into
/// the log directory. See the [module docs](self).
///
/// Dropping it shuts it down like [`shutdown`](Self::shutdown), logging
/// any error.
#[derive(Debug)]
pub struct AuditLog {
    dir: PathBuf,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<(), AuditLogError>>>,
    /// Closed by the writer thread when it ends.
    finished: mpsc::Receiver<()>,
    shutdown_timeout: Duration,
    report: OpenReport,
}

impl AuditLog {
    /// Opens (creating it if needed) the log in `dir`, recovers it (see
    /// [crash recovery](self#crash-recovery)) and starts the writer thread
    /// draining `queue`.
    ///
    /// ```
    /// use hotpath::AuditQueue;
    /// use hotpath_durable::audit_log::{AuditLog, AuditLogOptions};
    /// use std::sync::Arc;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let queue = Arc::new(AuditQueue::new(1024));
    /// let log = AuditLog::open(dir.path(), AuditLogOptions::default(), queue)?;
    /// assert_eq!(log.open_report().files, 0); // a new log
    /// assert_eq!(log.next_seq(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn open(
        dir: impl AsRef<Path>,
        options: AuditLogOptions,
        queue: Arc<AuditQueue>,
    ) -> Result<Self, AuditLogError> {
        Self::open_with(dir, options, queue, |file| file)
    }

    /// [`open`](Self::open), with the writer writing through
    /// `wrap(file_sink)`: the seam for fault injection and instrumentation
    /// (see [`LogSink`]).
    pub fn open_with<S, F>(
        dir: impl AsRef<Path>,
        options: AuditLogOptions,
        queue: Arc<AuditQueue>,
        wrap: F,
    ) -> Result<Self, AuditLogError>
    where
        S: LogSink,
        F: FnOnce(FileSink) -> S,
    {
        Self::start(dir.as_ref(), options, queue, wrap, None)
    }

    /// Opens the log in `dir` (recovering it like [`open`](Self::open))
    /// and writes a new **segment** there: a chain continuing from `from`
    /// (the last event of another writer's log; `None`: the genesis), not
    /// from this directory's own last line. The segment is a file of its
    /// own (the next index; the current file only if it is empty), so the
    /// files before it stay intact and verify on their own.
    ///
    /// This is how the leaders of a fleet write one chain between them,
    /// each in its own directory: a new leader continues from the head
    /// the last one published. [`verify_fleet`] checks such a chain
    /// across the directories; [`verify`] of one directory reports the
    /// link between its segments as broken. The [`OpenReport`]'s
    /// `last_seq` and `last_hash` are `from`'s (the next event continues
    /// them), its `last_generation` this directory's own.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, AuditQueue, ParamVec, SafetyExecutor};
    /// use hotpath_durable::audit_log::{verify, verify_fleet, AuditLog, AuditLogOptions};
    /// use std::sync::Arc;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (a, b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    /// let mut head = None;
    /// for dir in [a.path(), b.path(), a.path()] {     // three terms, two directories
    ///     let queue = Arc::new(AuditQueue::new(64));
    ///     let log = AuditLog::open_segment(dir, AuditLogOptions::default(), queue.clone(), head)?;
    ///     let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    ///     let executor = SafetyExecutor::builder(config).audit_queue(queue)
    ///         .audit_sequence_start(log.next_seq()).build()?;
    ///     drop(executor);
    ///     head = log.shutdown()?.committed;
    /// }
    /// let fleet = verify_fleet(&[a.path(), b.path()])?;
    /// assert_eq!((fleet.chain.events, fleet.chain.last_seq, fleet.segments), (3, Some(2), 3));
    /// assert!(verify(a.path()).is_err());             // one directory alone has a hole
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open); [`AuditLogError::Io`] if the new file
    /// cannot be made, or exists and is not empty.
    pub fn open_segment(
        dir: impl AsRef<Path>,
        options: AuditLogOptions,
        queue: Arc<AuditQueue>,
        from: Option<LogHead>,
    ) -> Result<Self, AuditLogError> {
        Self::start(dir.as_ref(), options, queue, |file| file, Some(from))
    }

    /// Opens, recovers and starts the writer: continuing the directory's
    /// own chain, or (`segment`) a new segment from the head given.
    fn start<S, F>(
        dir: &Path,
        options: AuditLogOptions,
        queue: Arc<AuditQueue>,
        wrap: F,
        segment: Option<Option<LogHead>>,
    ) -> Result<Self, AuditLogError>
    where
        S: LogSink,
        F: FnOnce(FileSink) -> S,
    {
        options.validate()?;
        let dir = dir.to_path_buf();
        let io_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| AuditLogError::Io { path, source }
        };
        if !dir.is_dir() {
            std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
            let parent = dir
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            sink::sync_dir(parent).map_err(io_error(parent))?;
        }
        let lock = lock_dir(&dir)?;
        let mut recovered = recover::recover(&dir)?;
        if let Some(from) = segment {
            recovered = recover::new_segment(&dir, recovered, from)?;
        }
        let mut file_sink =
            FileSink::open(&dir, recovered.current_index).map_err(io_error(&dir))?;
        // What the log holds now is what durable_seq starts from.
        file_sink
            .sync()
            .map_err(io_error(&recovered.report.current_file))?;
        let report = recovered.report;
        let shutdown_timeout = options.shutdown_timeout;
        let shared = Arc::new(Shared::default());
        if let Some(seq) = report.last_seq {
            // Stored plus one; a recovered seq is at most 2^62.
            shared
                .durable_seq
                .store(seq.saturating_add(1), Ordering::Release);
            shared
                .written_seq
                .store(seq.saturating_add(1), Ordering::Release);
        }
        shared.next_seq.store(report.next_seq(), Ordering::Release);
        shared.heads().committed = report.last_seq.map(|seq| LogHead {
            seq,
            hash: report.last_hash,
        });
        let writer = Writer::new(
            wrap(file_sink),
            queue,
            Arc::clone(&shared),
            options,
            (report.last_seq, report.last_hash),
            recovered.current_len,
        );
        let (finished_tx, finished) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("hotpath-audit-log".into())
            .spawn(move || {
                let result = writer.run();
                // The directory stays locked for as long as the writer may
                // write, even if shutdown gave up waiting for it.
                drop(lock);
                drop(finished_tx);
                result
            })
            .map_err(AuditLogError::Spawn)?;
        Ok(Self {
            dir,
            shared,
            thread: Some(thread),
            finished,
            shutdown_timeout,
            report,
        })
    }

    /// What opening found and repaired.
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// The seq the next event should carry: one more than the last event
    /// written (or, before any, than the last event found at open); 0 for a
    /// new log. An executor restarted over this log must number its events
    /// from here.
    pub fn next_seq(&self) -> u64 {
        self.shared.next_seq.load(Ordering::Acquire)
    }

    /// The highest seq known to be fsync'd (`None` before any). Every
    /// event up to it survives a crash or a power cut.
    pub fn durable_seq(&self) -> Option<u64> {
        load_seq(&self.shared.durable_seq)
    }

    /// The highest seq handed to the OS (`None` before any): it survives a
    /// crash of the process, not necessarily a power cut.
    pub fn written_seq(&self) -> Option<u64> {
        load_seq(&self.shared.written_seq)
    }

    /// The counters.
    pub fn stats(&self) -> AuditLogStats {
        let s = &self.shared;
        let count = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        AuditLogStats {
            events_written: count(&s.events_written),
            bytes_written: count(&s.bytes_written),
            write_errors: count(&s.write_errors),
            encode_errors: count(&s.encode_errors),
            fsyncs: count(&s.fsyncs),
            rotations: count(&s.rotations),
            seq_anomalies: count(&s.seq_anomalies),
            pending_events: s.pending.load(Ordering::Relaxed),
            failing: s.failing.load(Ordering::Acquire),
            written_seq: self.written_seq(),
            durable_seq: self.durable_seq(),
            committed: self.committed(),
        }
    }

    /// The last event the log has committed, with its line's hash:
    /// fsync'd under [`FsyncPolicy::Every`] and
    /// [`FsyncPolicy::GroupCommit`] (it survives a power cut), handed to the
    /// OS under [`FsyncPolicy::Never`] (it survives a crash of the
    /// process). At open, the recovered last event; `None` for a log
    /// without events.
    ///
    /// ```
    /// use hotpath::AuditQueue;
    /// use hotpath_durable::audit_log::{AuditLog, AuditLogOptions};
    /// use std::sync::Arc;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let log = AuditLog::open(dir.path(), AuditLogOptions::default(), Arc::new(AuditQueue::new(16)))?;
    /// assert_eq!(log.committed(), None); // a new log
    /// # Ok(())
    /// # }
    /// ```
    pub fn committed(&self) -> Option<LogHead> {
        self.shared.heads().committed
    }

    /// Event `seq` and its line's hash once the log has committed it (see
    /// [`committed`](Self::committed)), `None` before. The log remembers
    /// the hash of the last seq asked about as it commits it, so ask as
    /// soon as the event is queued, then poll: this is how a state file is
    /// saved as a checkpoint of the log only once the events it covers
    /// are committed (`hotpath-host` does it). `None` also for a seq that
    /// was committed before it was asked about, unless it is still the
    /// last one committed.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ParamVec, SafetyExecutor};
    /// use hotpath_durable::audit_log::{AuditLog, AuditLogOptions, FsyncPolicy};
    /// use std::sync::Arc;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let executor = SafetyExecutor::builder(config).build()?; // queues `Started`, seq 0
    /// let options = AuditLogOptions { fsync: FsyncPolicy::Every, ..AuditLogOptions::default() };
    /// let log = AuditLog::open(dir.path(), options, executor.audit_queue().clone())?;
    /// let started = loop {
    ///     if let Some(head) = log.committed_event(0) { break head; }
    ///     std::thread::sleep(std::time::Duration::from_millis(1));
    /// };
    /// assert_eq!(started.seq, 0);
    /// let stats = log.shutdown()?;
    /// assert_eq!(stats.committed, Some(started));
    /// # Ok(())
    /// # }
    /// ```
    pub fn committed_event(&self, seq: u64) -> Option<LogHead> {
        let mut heads = self.shared.heads();
        if let Some(head) = heads.watched.filter(|h| h.seq == seq) {
            return Some(head);
        }
        if let Some(head) = heads.committed.filter(|h| h.seq == seq) {
            return Some(head);
        }
        if heads.watch != Some(seq) {
            heads.watch = Some(seq);
            heads.watched = None;
        }
        None
    }

    /// The sink's last error, if it ever failed.
    pub fn last_error(&self) -> Option<String> {
        self.shared.last_error()
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops the writer after it has written (and, unless the policy is
    /// `Never`, fsync'd) everything it holds and everything queued, and
    /// returns the final counters. Stop the executor first: events queued
    /// after the writer found the queue empty stay in the queue. If the
    /// sink keeps failing for
    /// [`shutdown_timeout`](AuditLogOptions::shutdown_timeout), returns
    /// [`AuditLogError::Unflushed`] with the number of events not written;
    /// if a sink call hangs, [`AuditLogError::WriterStuck`].
    pub fn shutdown(mut self) -> Result<AuditLogStats, AuditLogError> {
        self.stop()?;
        Ok(self.stats())
    }

    fn stop(&mut self) -> Result<(), AuditLogError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        self.shared.stop.store(true, Ordering::Release);
        thread.thread().unpark();
        // The writer gives up retrying after the timeout; a sink call that
        // never returns is not waited for beyond it.
        let waited = self.shutdown_timeout + SHUTDOWN_GRACE;
        if let Err(mpsc::RecvTimeoutError::Timeout) = self.finished.recv_timeout(waited) {
            tracing::error!(
                ?waited,
                "audit log writer blocked in the sink; leaving it running"
            );
            return Err(AuditLogError::WriterStuck { waited });
        }
        thread.join().map_err(|_| AuditLogError::WriterPanicked)?
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            tracing::error!(%error, dir = %self.dir.display(), "audit log dropped with an error");
        }
    }
}

/// Takes the directory's advisory lock (released when the file closes,
/// also when the process dies).
fn lock_dir(dir: &Path) -> Result<File, AuditLogError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| AuditLogError::Io {
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(AuditLogError::Locked {
            dir: dir.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(AuditLogError::Io { path, source }),
    }
}
