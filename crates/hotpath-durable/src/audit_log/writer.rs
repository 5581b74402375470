//! The writer thread: drains the queue into the sink, following the fsync
//! policy, holding every line in memory until it is safe to let go of it.

use super::format::{encode_line, ChainHash, LogHead};
use super::sink::LogSink;
use super::{AuditLogError, AuditLogOptions, FsyncPolicy};
use hotpath::AuditQueue;
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// State shared by the writer thread and the [`AuditLog`](super::AuditLog)
/// handle. Sequence numbers are stored plus one, 0 meaning "none".
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) stop: AtomicBool,
    pub(crate) durable_seq: AtomicU64,
    pub(crate) written_seq: AtomicU64,
    pub(crate) next_seq: AtomicU64,
    pub(crate) events_written: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    pub(crate) write_errors: AtomicU64,
    pub(crate) encode_errors: AtomicU64,
    pub(crate) fsyncs: AtomicU64,
    pub(crate) rotations: AtomicU64,
    pub(crate) seq_anomalies: AtomicU64,
    pub(crate) pending: AtomicUsize,
    pub(crate) failing: AtomicBool,
    pub(crate) last_error: Mutex<Option<String>>,
    pub(crate) heads: Mutex<Heads>,
}

/// The committed end of the log, and the one event a caller asked to know
/// the hash of once it is committed (see [`AuditLog::committed_event`](super::AuditLog::committed_event)).
#[derive(Debug, Default)]
pub(crate) struct Heads {
    /// The last event committed (fsync'd, or written under `Never`).
    pub(crate) committed: Option<LogHead>,
    /// The seq asked about.
    pub(crate) watch: Option<u64>,
    /// That event, once committed.
    pub(crate) watched: Option<LogHead>,
}

impl Shared {
    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn heads(&self) -> std::sync::MutexGuard<'_, Heads> {
        self.heads.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Reads a seq stored plus one.
pub(crate) fn load_seq(cell: &AtomicU64) -> Option<u64> {
    cell.load(Ordering::Acquire).checked_sub(1)
}

fn store_seq(cell: &AtomicU64, seq: u64) {
    cell.store(seq.saturating_add(1), Ordering::Release);
}

/// One encoded line, kept until it is durable (or, under
/// [`FsyncPolicy::Never`], written).
struct Line {
    seq: u64,
    hash: ChainHash,
    bytes: Box<[u8]>,
    /// Counted in the stats already (it may be written twice, after a
    /// failed sync).
    counted: bool,
}

/// Which sink call failed.
#[derive(Debug, Clone, Copy)]
enum Op {
    Append,
    Sync,
    Truncate,
    Rotate,
}

/// The sink is failing: when to try again.
struct Failure {
    attempts: u64,
    retry_at: Instant,
    backoff: Duration,
}

pub(crate) struct Writer<S> {
    sink: S,
    queue: Arc<AuditQueue>,
    shared: Arc<Shared>,
    options: AuditLogOptions,
    /// Hash of the last line encoded.
    prev: ChainHash,
    /// The seq the next event should carry (`None`: a new log takes any).
    expected_seq: Option<u64>,
    /// `pending[..written]` are in the sink but not synced; the rest are
    /// not written yet.
    pending: VecDeque<Line>,
    written: usize,
    /// Bytes of the current segment the writer has appended.
    segment_len: u64,
    /// Bytes of the current segment known to be durable.
    synced_len: u64,
    /// When the oldest unsynced line was appended.
    unsynced_since: Option<Instant>,
    /// The sink may hold bytes past `segment_len` (a failed append or
    /// sync): truncate before appending.
    repair: bool,
    failure: Option<Failure>,
    /// Where lines are encoded (then copied out at their exact size).
    scratch: Vec<u8>,
    /// Where a write's lines are gathered.
    batch: Vec<u8>,
}

impl<S: LogSink> Writer<S> {
    pub(crate) fn new(
        sink: S,
        queue: Arc<AuditQueue>,
        shared: Arc<Shared>,
        options: AuditLogOptions,
        head: (Option<u64>, ChainHash),
        segment_len: u64,
    ) -> Self {
        let (last_seq, prev) = head;
        Self {
            sink,
            queue,
            shared,
            options,
            prev,
            expected_seq: last_seq.map(|s| s.saturating_add(1)),
            pending: VecDeque::new(),
            written: 0,
            segment_len,
            synced_len: segment_len,
            unsynced_since: None,
            repair: false,
            failure: None,
            scratch: Vec::new(),
            batch: Vec::new(),
        }
    }

    /// The thread's body: runs until asked to stop, then writes (and,
    /// unless the policy is `Never`, syncs) everything it holds and
    /// everything queued, giving up after the shutdown timeout.
    pub(crate) fn run(mut self) -> Result<(), AuditLogError> {
        let mut deadline = None;
        loop {
            let stopping = self.shared.stop.load(Ordering::Acquire);
            if stopping && deadline.is_none() {
                deadline = Some(Instant::now() + self.options.shutdown_timeout);
            }
            let taken = self.fill();
            let now = Instant::now();
            if self.failure.as_ref().is_none_or(|f| now >= f.retry_at) {
                match self.step(stopping, now) {
                    Ok(()) => self.recovered(),
                    Err((op, error)) => self.failed(op, &error, now),
                }
            }
            if stopping {
                if self.pending.is_empty() && self.queue.is_empty() {
                    return Ok(());
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(self.give_up());
                }
            }
            if taken == 0 {
                std::thread::park_timeout(self.idle_time(Instant::now()));
            }
        }
    }

    /// Encodes queued events while there is room; returns how many.
    fn fill(&mut self) -> usize {
        let mut taken = 0;
        while self.pending.len() < self.options.max_pending_events {
            // Encoded in place, in the queue's slot: the executor's next
            // in-place write into it then reuses the event's storage.
            let queue = &self.queue;
            let encoded = queue.try_dequeue_with(|event| {
                if let Some(expected) = self.expected_seq.filter(|&e| e != event.seq) {
                    self.shared.seq_anomalies.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        expected,
                        found = event.seq,
                        "audit log: event out of sequence (written anyway; verify will report the gap)"
                    );
                }
                let (hash, error) = encode_line(event, &self.prev, &mut self.scratch);
                if let Some(error) = error {
                    self.shared.encode_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(seq = event.seq, %error, "audit log: event not serialisable; recorded as text");
                }
                self.prev = hash;
                (event.seq, hash)
            });
            let Some((seq, hash)) = encoded else {
                break;
            };
            self.expected_seq = Some(seq.saturating_add(1));
            self.shared
                .next_seq
                .store(seq.saturating_add(1), Ordering::Release);
            self.pending.push_back(Line {
                seq,
                hash,
                bytes: self.scratch.as_slice().into(),
                counted: false,
            });
            taken += 1;
        }
        self.shared
            .pending
            .store(self.pending.len(), Ordering::Relaxed);
        taken
    }

    /// Writes what is unwritten and syncs when the policy says so.
    fn step(&mut self, stopping: bool, now: Instant) -> Result<(), (Op, io::Error)> {
        if self.repair {
            self.sink
                .truncate(self.segment_len)
                .map_err(|e| (Op::Truncate, e))?;
            self.repair = false;
        }
        while self.written < self.pending.len() {
            let first = self.pending[self.written].bytes.len() as u64;
            if self.segment_len > 0 && self.segment_len + first > self.options.max_file_bytes {
                self.rotate()?;
            }
            self.append_batch()?;
        }
        let sync_due = match self.options.fsync {
            FsyncPolicy::Every | FsyncPolicy::Never => false,
            FsyncPolicy::GroupCommit { interval_ms } => {
                self.written > 0
                    && (stopping
                        || self.pending.len() >= self.options.max_pending_events
                        || self.unsynced_since.is_some_and(|t| {
                            now.duration_since(t) >= Duration::from_millis(interval_ms)
                        }))
            }
        };
        if sync_due {
            self.sync()?;
        }
        Ok(())
    }

    /// Appends the next unwritten lines that fit in the segment (one under
    /// `Every`, then synced), as one write.
    fn append_batch(&mut self) -> Result<(), (Op, io::Error)> {
        self.batch.clear();
        let mut len = self.segment_len;
        let mut end = self.written;
        for line in self.pending.range(self.written..) {
            let fits = len + line.bytes.len() as u64 <= self.options.max_file_bytes;
            if end > self.written && (!fits || self.options.fsync == FsyncPolicy::Every) {
                break;
            }
            self.batch.extend_from_slice(&line.bytes);
            len += line.bytes.len() as u64;
            end += 1;
        }
        if let Err(e) = self.sink.append(&self.batch) {
            self.repair = true;
            return Err((Op::Append, e));
        }
        self.segment_len = len;
        let mut new_events = 0;
        let mut new_bytes = 0;
        for line in self.pending.range_mut(self.written..end) {
            if !line.counted {
                line.counted = true;
                new_events += 1;
                new_bytes += line.bytes.len() as u64;
            }
        }
        self.shared
            .events_written
            .fetch_add(new_events, Ordering::Relaxed);
        self.shared
            .bytes_written
            .fetch_add(new_bytes, Ordering::Relaxed);
        store_seq(&self.shared.written_seq, self.pending[end - 1].seq);
        self.written = end;
        self.unsynced_since.get_or_insert_with(Instant::now);
        match self.options.fsync {
            FsyncPolicy::Never => self.release(),
            FsyncPolicy::Every => self.sync()?,
            FsyncPolicy::GroupCommit { .. } => {}
        }
        Ok(())
    }

    /// Syncs the segment; on success the written lines are durable and let
    /// go, on failure they are cut and will be written again.
    fn sync(&mut self) -> Result<(), (Op, io::Error)> {
        match self.sink.sync() {
            Ok(()) => {
                self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
                self.synced_len = self.segment_len;
                if self.written > 0 {
                    store_seq(&self.shared.durable_seq, self.pending[self.written - 1].seq);
                }
                self.release();
                Ok(())
            }
            Err(e) => {
                // What was appended since the last sync may be lost: it
                // is cut and written again.
                self.segment_len = self.synced_len;
                self.written = 0;
                let durable = self.shared.durable_seq.load(Ordering::Acquire);
                self.shared.written_seq.store(durable, Ordering::Release);
                self.unsynced_since = None;
                self.repair = true;
                Err((Op::Sync, e))
            }
        }
    }

    /// Lets go of the written lines: they are committed (durable, or
    /// written under `Never`).
    fn release(&mut self) {
        if let Some(last) = self.written.checked_sub(1).map(|i| &self.pending[i]) {
            let mut heads = self.shared.heads();
            heads.committed = Some(LogHead {
                seq: last.seq,
                hash: last.hash,
            });
            if let Some(watch) = heads.watch {
                if let Some(line) = self.pending.range(..self.written).find(|l| l.seq == watch) {
                    heads.watched = Some(LogHead {
                        seq: line.seq,
                        hash: line.hash,
                    });
                }
            }
        }
        self.pending.drain(..self.written);
        self.written = 0;
        self.unsynced_since = None;
        self.shared
            .pending
            .store(self.pending.len(), Ordering::Relaxed);
    }

    /// Ends the segment (its unsynced lines synced first) and starts the
    /// next.
    fn rotate(&mut self) -> Result<(), (Op, io::Error)> {
        if self.written > 0 {
            self.sync()?;
        }
        self.sink.rotate().map_err(|e| (Op::Rotate, e))?;
        self.shared.rotations.fetch_add(1, Ordering::Relaxed);
        self.segment_len = 0;
        self.synced_len = 0;
        Ok(())
    }

    fn failed(&mut self, op: Op, error: &io::Error, now: Instant) {
        self.shared.write_errors.fetch_add(1, Ordering::Relaxed);
        self.shared.failing.store(true, Ordering::Release);
        *self
            .shared
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(format!("{op:?}: {error}"));
        let backoff = match &self.failure {
            None => self.options.retry_backoff_min,
            Some(f) => (f.backoff * 2).min(self.options.retry_backoff_max),
        };
        let attempts = self
            .failure
            .as_ref()
            .map_or(1, |f| f.attempts.saturating_add(1));
        let pending = self.pending.len();
        if attempts == 1 {
            tracing::error!(
                ?op, %error, pending,
                "audit log: write failed; holding events in memory and retrying (the executor's queue fills meanwhile)"
            );
        } else {
            tracing::warn!(?op, %error, attempts, ?backoff, pending, "audit log: still failing");
        }
        self.failure = Some(Failure {
            attempts,
            retry_at: now + backoff,
            backoff,
        });
    }

    fn recovered(&mut self) {
        if let Some(failure) = self.failure.take() {
            self.shared.failing.store(false, Ordering::Release);
            tracing::info!(
                failed_attempts = failure.attempts,
                "audit log: writing again"
            );
        }
    }

    /// How long to wait when the queue gave nothing: until the next retry
    /// or group commit, at most the poll interval.
    fn idle_time(&self, now: Instant) -> Duration {
        let mut wait = self.options.poll_interval;
        if let Some(failure) = &self.failure {
            wait = wait.min(failure.retry_at.saturating_duration_since(now));
        }
        if let (FsyncPolicy::GroupCommit { interval_ms }, Some(since)) =
            (self.options.fsync, self.unsynced_since)
        {
            let due = since + Duration::from_millis(interval_ms);
            wait = wait.min(due.saturating_duration_since(now));
        }
        wait
    }

    fn give_up(&self) -> AuditLogError {
        let unwritten = self.pending.len() + self.queue.len();
        let last_error = self.shared.last_error();
        tracing::error!(
            unwritten,
            ?last_error,
            "audit log: shut down with events not durably written"
        );
        AuditLogError::Unflushed {
            unwritten,
            last_error,
        }
    }
}
