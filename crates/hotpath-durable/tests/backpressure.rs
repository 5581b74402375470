//! Fault injection: a sink that fails (disk full, failed fsync, a write cut
//! half-way) or stalls drives a real `SafetyExecutor` into `AuditQueueFull`
//! safe mode, the executor never waits for the disk, and once the sink
//! recovers the executor leaves safe mode by itself. At the end the log
//! verifies and holds every sequence number exactly once, with
//! `EventsDropped` lines accounting for every event the executor counted as
//! dropped.

use hotpath::{
    AtomicConfig, AuditDetails, AuditEvent, AuditQueue, EnqueueResult, ManualClock, OutcomeVerdict,
    ParamVec, Proposal, SafeModeReason, SafetyExecutor, Violation,
};
use hotpath_durable::audit_log::{
    verify, AuditLog, AuditLogError, AuditLogOptions, FileSink, FsyncPolicy, LogReader, LogSink,
};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

mod common;

// ---------------------------------------------------------------------------
// The faulty sink
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Healthy,
    /// Every append and fsync fails: a full or broken disk.
    Fail,
    /// Appends write half their bytes, then fail.
    FailMidWrite,
    /// Appends succeed, fsyncs fail.
    FailSync,
    /// Every append takes this long.
    Stall(Duration),
}

#[derive(Clone)]
struct Faults(Arc<Mutex<Mode>>);

impl Faults {
    fn new() -> Self {
        Self(Arc::new(Mutex::new(Mode::Healthy)))
    }

    fn set(&self, mode: Mode) {
        *self.0.lock().unwrap() = mode;
    }

    fn get(&self) -> Mode {
        *self.0.lock().unwrap()
    }
}

struct FaultySink {
    inner: FileSink,
    faults: Faults,
}

/// A log on `dir` whose file sink misbehaves as `faults` says.
fn open_faulty(
    dir: &std::path::Path,
    options: AuditLogOptions,
    queue: &Arc<AuditQueue>,
    faults: &Faults,
) -> AuditLog {
    let faults = faults.clone();
    AuditLog::open_with(dir, options, Arc::clone(queue), move |inner| FaultySink {
        inner,
        faults,
    })
    .unwrap()
}

fn disk_full() -> io::Error {
    io::Error::new(
        io::ErrorKind::StorageFull,
        "no space left on device (injected)",
    )
}

impl LogSink for FaultySink {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self.faults.get() {
            Mode::Fail => Err(disk_full()),
            Mode::FailMidWrite => {
                self.inner.append(&bytes[..bytes.len() / 2])?;
                Err(disk_full())
            }
            Mode::Stall(time) => {
                std::thread::sleep(time);
                self.inner.append(bytes)
            }
            Mode::Healthy | Mode::FailSync => self.inner.append(bytes),
        }
    }

    fn sync(&mut self) -> io::Result<()> {
        match self.faults.get() {
            Mode::Fail | Mode::FailSync => Err(io::Error::other("fsync: I/O error (injected)")),
            _ => self.inner.sync(),
        }
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.inner.truncate(len)
    }

    fn rotate(&mut self) -> io::Result<()> {
        match self.faults.get() {
            Mode::Fail => Err(disk_full()),
            _ => self.inner.rotate(),
        }
    }
}

// ---------------------------------------------------------------------------
// Counting tracing events of this crate (the writer runs on its own thread,
// so the subscriber is global)
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Counts {
    errors: AtomicU64,
    warnings: AtomicU64,
}

struct CountingSubscriber(&'static Counts);

impl tracing::Subscriber for CountingSubscriber {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let meta = event.metadata();
        if meta.target().starts_with("hotpath_durable") {
            match *meta.level() {
                tracing::Level::ERROR => self.0.errors.fetch_add(1, Ordering::Relaxed),
                tracing::Level::WARN => self.0.warnings.fetch_add(1, Ordering::Relaxed),
                _ => 0,
            };
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn tracing_counts() -> &'static Counts {
    static COUNTS: OnceLock<&'static Counts> = OnceLock::new();
    COUNTS.get_or_init(|| {
        let counts: &'static Counts = Box::leak(Box::default());
        tracing::subscriber::set_global_default(CountingSubscriber(counts))
            .expect("no other global subscriber in this test binary");
        counts
    })
}

// ---------------------------------------------------------------------------
// The executor under test
// ---------------------------------------------------------------------------

struct Rig {
    executor: SafetyExecutor<ManualClock>,
    clock: ManualClock,
    config: Arc<AtomicConfig>,
    queue: Arc<AuditQueue>,
    log: AuditLog,
    faults: Faults,
    /// (audit seq, new generation, params) of every accepted apply.
    applied: Vec<(u64, u64, Vec<f64>)>,
    i: u64,
    _dir: tempfile::TempDir,
}

impl Rig {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (executor, clock, config) = common::fast_executor(64);
        let queue = Arc::clone(executor.audit_queue());
        let faults = Faults::new();
        let options = AuditLogOptions {
            fsync: FsyncPolicy::GroupCommit { interval_ms: 2 },
            max_pending_events: 16,
            retry_backoff_min: Duration::from_millis(1),
            retry_backoff_max: Duration::from_millis(10),
            ..AuditLogOptions::default()
        };
        let log = open_faulty(dir.path(), options, &queue, &faults);
        Self {
            executor,
            clock,
            config,
            queue,
            log,
            faults,
            applied: Vec::new(),
            i: 0,
            _dir: dir,
        }
    }

    /// One probe of ±0.01, 1.1 ms after the previous one.
    fn apply(&mut self) -> Result<(), Violation> {
        self.i += 1;
        self.clock.advance(1_100);
        let step = if self.i.is_multiple_of(2) {
            -0.01
        } else {
            0.01
        };
        let receipt = self.executor.apply(Proposal::ApplyPlus {
            perturbation_id: self.i,
            delta: ParamVec::from_slice(&[step, step]),
        })?;
        let seq = receipt.audit_seq.expect("an apply is audited");
        let params = self.config.load().params.to_vec();
        self.applied.push((seq, receipt.new_generation, params));
        Ok(())
    }

    fn wait(&self, what: &str, done: impl Fn(&Self) -> bool) {
        let start = Instant::now();
        while !done(self) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "timed out waiting for {what}: {:?}",
                self.log.stats()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn in_audit_safe_mode(&self) -> bool {
        self.executor
            .control_safety()
            .reasons()
            .contains(SafeModeReason::AuditQueueFull)
    }
}

/// Healthy, then `mode` until the executor is in `AuditQueueFull` safe mode
/// and has dropped events, then healthy again until it is out; checks the
/// log holds everything exactly once.
fn through_a_fault(mode: Mode) -> Rig {
    let mut rig = Rig::new();
    let counts = tracing_counts();
    let errors_before = counts.errors.load(Ordering::Relaxed);
    for _ in 0..20 {
        rig.apply().unwrap();
    }
    rig.wait("the healthy phase to be durable", |r| {
        r.log.durable_seq() == r.applied.last().map(|a| a.0)
    });

    // The fault: the writer holds its 16 lines, the queue fills, the
    // executor refuses and latches safe mode. It never waits for the disk.
    rig.faults.set(mode);
    let generation_before = rig.config.generation();
    let mut slowest = Duration::ZERO;
    let refusal = loop {
        let start = Instant::now();
        let result = rig.apply();
        slowest = slowest.max(start.elapsed());
        if let Err(violation) = result {
            break violation;
        }
        assert!(rig.applied.len() < 1_000, "the queue never filled");
    };
    assert!(
        matches!(refusal, Violation::AuditQueueFull { capacity: 64 }),
        "{refusal:?}"
    );
    assert!(rig.in_audit_safe_mode());
    // Safety events use the reserve, then are counted as dropped.
    for _ in 0..40 {
        let start = Instant::now();
        let refused = rig.apply();
        slowest = slowest.max(start.elapsed());
        assert!(
            matches!(
                refused,
                Err(Violation::InSafeMode {
                    reason: SafeModeReason::AuditQueueFull,
                    ..
                })
            ),
            "{refused:?}"
        );
    }
    assert!(rig.executor.stats().audit_dropped > 0);
    // The data plane reads on; nothing changed while refusing.
    let mut reader = rig.config.reader();
    assert_eq!(reader.get().generation, rig.config.generation());
    assert!(rig.config.generation() > generation_before);
    if let Mode::Stall(time) = mode {
        assert!(
            slowest < time,
            "apply waited {slowest:?} for a stalled disk"
        );
    } else {
        rig.wait("write errors to be counted", |r| {
            r.log.stats().write_errors > 0
        });
        assert!(rig.log.stats().failing);
        assert!(rig.log.last_error().is_some());
        assert!(counts.errors.load(Ordering::Relaxed) > errors_before);
    }

    // Recovery: the writer catches up, the queue drains to its high-water
    // mark, and the next apply leaves safe mode and goes through.
    rig.faults.set(Mode::Healthy);
    rig.wait("the queue to drain", |r| {
        r.queue.len() <= r.queue.high_water_mark()
    });
    rig.apply().unwrap();
    assert!(!rig.in_audit_safe_mode());
    for _ in 0..10 {
        rig.apply().unwrap();
    }
    rig
}

/// Shuts the rig down and checks the log against the executor.
fn check_log(rig: Rig) {
    let last_seq = rig.applied.last().map(|a| a.0);
    let dropped = rig.executor.stats().audit_dropped;
    let dir = rig.log.dir().to_path_buf();
    drop(rig.executor);
    let stats = rig.log.shutdown().unwrap();
    assert!(!stats.failing);
    assert_eq!(stats.seq_anomalies, 0);

    // Every seq from 0 exactly once (verify checks consecutiveness), up to
    // the last apply, which was the last decision.
    let report = verify(&dir).unwrap();
    assert_eq!((report.first_seq, report.last_seq), (Some(0), last_seq));
    assert_eq!(Some(report.events - 1), last_seq);
    assert_eq!(stats.events_written, report.events);

    let events: Vec<AuditEvent> = LogReader::open(&dir)
        .unwrap()
        .map(|r| r.unwrap().audit_event().unwrap())
        .collect();
    let mut reported_dropped = 0;
    let (mut entered, mut exited) = (false, false);
    for event in &events {
        match &event.details {
            AuditDetails::EventsDropped { count } => reported_dropped += count,
            AuditDetails::SafeModeEntered { reason, .. } => {
                entered |= *reason == SafeModeReason::AuditQueueFull
            }
            AuditDetails::SafeModeExited { reason } => {
                exited |= *reason == SafeModeReason::AuditQueueFull
            }
            _ => {}
        }
    }
    assert_eq!(reported_dropped, dropped);
    assert!(entered && exited);
    for (seq, generation, params) in &rig.applied {
        let event = &events[*seq as usize];
        assert_eq!(event.generation, *generation);
        match &event.details {
            AuditDetails::Applied { params: logged, .. } => assert_eq!(&logged[..], &params[..]),
            other => panic!("seq {seq} should be an apply: {other:?}"),
        }
    }
}

#[test]
fn a_failing_disk_latches_audit_safe_mode_and_loses_nothing() {
    let rig = through_a_fault(Mode::Fail);
    check_log(rig);
}

#[test]
fn a_write_cut_half_way_is_undone_and_written_again() {
    let rig = through_a_fault(Mode::FailMidWrite);
    check_log(rig);
}

#[test]
fn failed_fsyncs_rewrite_what_they_could_not_make_durable() {
    let rig = through_a_fault(Mode::FailSync);
    assert!(rig.log.stats().fsyncs > 0);
    check_log(rig);
}

#[test]
fn a_stalled_disk_latches_audit_safe_mode_without_blocking_the_executor() {
    let rig = through_a_fault(Mode::Stall(Duration::from_millis(300)));
    check_log(rig);
}

#[test]
fn shutdown_reports_what_a_dead_disk_kept_it_from_writing() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(AuditQueue::new(64));
    let faults = Faults::new();
    faults.set(Mode::Fail);
    let options = AuditLogOptions {
        shutdown_timeout: Duration::from_millis(50),
        retry_backoff_max: Duration::from_millis(5),
        ..AuditLogOptions::default()
    };
    let log = open_faulty(dir.path(), options, &queue, &faults);
    for seq in 0..5 {
        let event = AuditEvent {
            seq,
            timestamp_us: seq,
            generation: 0,
            details: AuditDetails::Outcome {
                reported_generation: 0,
                objective: 1.0,
                verdict: OutcomeVerdict::Unjudged,
            },
        };
        assert_eq!(queue.enqueue(event), EnqueueResult::Enqueued);
    }
    match log.shutdown() {
        Err(AuditLogError::Unflushed {
            unwritten,
            last_error,
        }) => {
            assert_eq!(unwritten, 5);
            assert!(last_error.unwrap().contains("no space left"));
        }
        other => panic!("expected Unflushed, got {other:?}"),
    }
    assert_eq!(verify(dir.path()).unwrap().events, 0);
}

#[test]
fn shutdown_does_not_wait_for_a_hung_disk_and_the_directory_stays_locked() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(AuditQueue::new(64));
    let faults = Faults::new();
    faults.set(Mode::Stall(Duration::from_millis(800)));
    let options = AuditLogOptions {
        shutdown_timeout: Duration::from_millis(50),
        ..AuditLogOptions::default()
    };
    let log = open_faulty(dir.path(), options, &queue, &faults);
    let event = AuditEvent {
        seq: 0,
        timestamp_us: 0,
        generation: 0,
        details: AuditDetails::EventsDropped { count: 0 },
    };
    assert_eq!(queue.enqueue(event), EnqueueResult::Enqueued);
    let start = Instant::now();
    while log.stats().pending_events == 0 {
        assert!(start.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(20)); // inside the stalled append
    let start = Instant::now();
    let result = log.shutdown();
    assert!(
        matches!(result, Err(AuditLogError::WriterStuck { .. })),
        "{result:?}"
    );
    assert!(start.elapsed() < Duration::from_millis(600));
    // The stuck writer may still write: nobody else may open the log.
    let second = AuditLog::open(dir.path(), AuditLogOptions::default(), Arc::clone(&queue));
    assert!(
        matches!(second, Err(AuditLogError::Locked { .. })),
        "{second:?}"
    );
    // When the call returns, the writer finishes and lets go.
    let start = Instant::now();
    let reopened = loop {
        match AuditLog::open(dir.path(), AuditLogOptions::default(), Arc::clone(&queue)) {
            Ok(log) => break log,
            Err(AuditLogError::Locked { .. }) if start.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("{e}"),
        }
    };
    reopened.shutdown().unwrap();
    assert_eq!(verify(dir.path()).unwrap().last_seq, Some(0));
}
