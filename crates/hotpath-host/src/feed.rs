//! The executor's audit events on their way to the durable log.
//!
//! The executor writes to its own [`AuditQueue`]; the host drains it after
//! every call and forwards each event, in sequence order, to a second
//! queue that the [`AuditLog`]'s writer thread drains into the files. What
//! happens when that queue is full is the [`WhenFull`] policy.

use crate::error::HostError;
use crate::options::{HostOptions, WhenFull};
use hotpath::{AuditEvent, AuditQueue, EnqueueResult};
use hotpath_durable::audit_log::LogHead;
use hotpath_durable::{AuditLog, AuditLogStats, OpenReport};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long, by default ([`HostOptions::stall_timeout`]), the host waits
/// for a log that makes no progress before it gives up
/// ([`HostError::AuditStalled`]).
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a host dropped without shutdown waits for room to hand the
/// log what the executor had queued.
const DROP_DEADLINE: Duration = Duration::from_secs(1);

/// The durable log and the forwarding to it.
pub(crate) struct Feed {
    /// The queue the log's writer drains.
    queue: Arc<AuditQueue>,
    /// An event taken from the executor that the log had no room for
    /// (`Hold` only).
    held: Option<AuditEvent>,
    pub(crate) when_full: WhenFull,
    /// How long to wait for a log that makes no progress.
    stall_timeout: Duration,
    /// Events forwarded so far.
    pub(crate) forwarded: u64,
    log: AuditLog,
}

/// What the log did, once shut down.
///
/// ```
/// # use hotpath_host::LogSummary;
/// fn events(summary: &LogSummary) -> u64 { summary.forwarded }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSummary {
    /// The log directory.
    pub dir: PathBuf,
    /// Events this host handed to the log.
    pub forwarded: u64,
    /// The writer's final counters.
    pub stats: AuditLogStats,
}

impl Feed {
    /// Opens (creating or recovering it) the log in `dir` with a queue of
    /// `capacity` events.
    pub(crate) fn open(dir: &Path, options: &HostOptions) -> Result<Self, HostError> {
        Self::start(dir, options, None)
    }

    /// Opens the log in `dir` and starts a new segment there, continuing
    /// the chain from `from` (see
    /// [`AuditLog::open_segment`](hotpath_durable::AuditLog::open_segment)).
    pub(crate) fn open_segment(
        dir: &Path,
        options: &HostOptions,
        from: Option<LogHead>,
    ) -> Result<Self, HostError> {
        Self::start(dir, options, Some(from))
    }

    fn start(
        dir: &Path,
        options: &HostOptions,
        segment: Option<Option<LogHead>>,
    ) -> Result<Self, HostError> {
        let queue = Arc::new(
            AuditQueue::try_new(options.log_queue_capacity).map_err(|e| {
                HostError::InvalidOption {
                    option: "log_queue_capacity",
                    reason: e.to_string(),
                }
            })?,
        );
        let log = match segment {
            None => AuditLog::open(dir, options.log.clone(), Arc::clone(&queue))?,
            Some(from) => {
                AuditLog::open_segment(dir, options.log.clone(), Arc::clone(&queue), from)?
            }
        };
        Ok(Self {
            queue,
            held: None,
            when_full: options.when_full,
            stall_timeout: options.stall_timeout,
            forwarded: 0,
            log,
        })
    }

    pub(crate) fn open_report(&self) -> &OpenReport {
        self.log.open_report()
    }

    pub(crate) fn log(&self) -> &AuditLog {
        &self.log
    }

    /// Forwards the held event, if any; `false` if it is still held.
    pub(crate) fn release(&mut self) -> Result<bool, HostError> {
        match self.held.take() {
            Some(event) => self.forward(event),
            None => Ok(true),
        }
    }

    /// Hands `event` to the log's queue; `false` if it is held instead.
    pub(crate) fn forward(&mut self, event: AuditEvent) -> Result<bool, HostError> {
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
            if now.duration_since(progress) >= self.stall_timeout {
                return Err(self.stalled());
            }
        }
    }

    /// The error for a log that made no progress for the stall timeout.
    fn stalled(&self) -> HostError {
        HostError::AuditStalled {
            dir: self.log.dir().to_path_buf(),
            waited: self.stall_timeout,
            last_error: self.log.last_error(),
        }
    }

    /// Event `seq` with its hash once the log has committed it.
    pub(crate) fn committed_event(&self, seq: u64) -> Option<LogHead> {
        self.log.committed_event(seq)
    }

    /// The last event the log has committed.
    pub(crate) fn committed(&self) -> Option<LogHead> {
        self.log.committed()
    }

    /// Waits until the log has committed event `seq` (everything before
    /// it handed over already); its hash.
    pub(crate) fn wait_committed(&self, seq: u64) -> Result<LogHead, HostError> {
        let mut progress = Instant::now();
        let mut last = self.log.committed();
        loop {
            if let Some(head) = self.log.committed_event(seq) {
                return Ok(head);
            }
            let committed = self.log.committed();
            if committed.is_some_and(|c| c.seq > seq) {
                return Err(HostError::NotLogged { seq });
            }
            let now = Instant::now();
            if committed != last {
                progress = now;
                last = committed;
            }
            if now.duration_since(progress) >= self.stall_timeout {
                return Err(self.stalled());
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Stops the writer after it has written everything (and synced it,
    /// unless the fsync policy is `Never`). Forward everything first.
    pub(crate) fn finish(self) -> Result<LogSummary, HostError> {
        let dir = self.log.dir().to_path_buf();
        let forwarded = self.forwarded;
        let stats = self.log.shutdown()?;
        Ok(LogSummary {
            dir,
            forwarded,
            stats,
        })
    }

    /// For a host dropped without shutdown (a run stopping on an error):
    /// hands the log what `source` (the executor's queue) still holds,
    /// waiting at most a second for room, so the decisions taken are in
    /// the log even when the run fails. The log shuts down when dropped.
    pub(crate) fn abandon(mut self, source: &AuditQueue) {
        let deadline = Instant::now() + DROP_DEADLINE;
        let mut next = self.held.take().or_else(|| source.try_dequeue());
        while let Some(event) = next {
            next = match self.queue.enqueue(event) {
                EnqueueResult::Enqueued => source.try_dequeue(),
                EnqueueResult::Full(_) if Instant::now() >= deadline => {
                    let lost = 1 + source.len();
                    tracing::warn!(
                        lost,
                        dir = %self.log.dir().display(),
                        "audit events could not be handed to the audit log"
                    );
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
