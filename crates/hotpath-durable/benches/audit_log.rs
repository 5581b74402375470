//! Audit log benchmarks. Run with
//! `cargo bench -p hotpath-durable --bench audit_log`.
//!
//! * `audit_log_sustained/<policy>`: events per second from the queue to
//!   disk. Each sample queues a run of `Applied` events (16 parameters, the
//!   inline maximum; the line size is printed) as fast as the queue takes
//!   them and ends when the last one is durable (or, under `never`,
//!   written), so the time includes the final fsync.
//! * `apply_with_audit_log/{no_consumer,discarding_consumer,audit_log}`:
//!   the latency of `SafetyExecutor::apply` (16 parameters, every apply
//!   accepted). Only the applies are timed, in batches of 256; between
//!   batches the queue is brought back to at most 1024 events, untimed:
//!   by the benchmarking thread itself (`no_consumer`), by a thread that
//!   drops the events (`discarding_consumer`), or by the audit log's writer
//!   (`audit_log`, default options). The writer still has that backlog to
//!   write while the next batch is timed, so the figure includes whatever
//!   its work costs `apply` (shared caches, the queue's cache lines, the
//!   second core).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hotpath::{
    AtomicConfig, AuditDetails, AuditEvent, AuditQueue, EnqueueResult, Guardrails, ManualClock,
    ParamVec, Proposal, ProposalKind, SafetyExecutor,
};
use hotpath_durable::audit_log::{AuditLog, AuditLogOptions, FsyncPolicy};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PARAMS: usize = 16;
/// Simulated time between two applies: 1000 per simulated second, the
/// permissive rate limit.
const TICK_US: u64 = 1_000;
/// Far inside the step limit and the per-minute budget; always positive,
/// so directions never flip and every apply is accepted.
const STEP: f64 = 1e-6;
const BATCH: u64 = 256;
const BACKLOG: usize = 1024;
const QUEUE: usize = 1 << 16;

fn applied_event(seq: u64) -> AuditEvent {
    let params: ParamVec = (0..PARAMS)
        .map(|i| 1.0 + i as f64 + seq as f64 * STEP)
        .collect();
    AuditEvent {
        seq,
        timestamp_us: seq * TICK_US,
        generation: seq,
        details: AuditDetails::Applied {
            kind: ProposalKind::Update,
            correlation_id: seq,
            previous_generation: seq.saturating_sub(1),
            delta: ParamVec::from_slice(&[STEP; PARAMS]),
            params,
        },
    }
}

fn sustained(c: &mut Criterion) {
    let mut group = c.benchmark_group("audit_log_sustained");
    group.throughput(Throughput::Elements(1));
    for (name, fsync) in [
        (
            "group_commit_10ms",
            FsyncPolicy::GroupCommit { interval_ms: 10 },
        ),
        ("every", FsyncPolicy::Every),
        ("never", FsyncPolicy::Never),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let queue = Arc::new(AuditQueue::new(QUEUE));
        let options = AuditLogOptions {
            fsync,
            ..AuditLogOptions::default()
        };
        let log =
            AuditLog::open(dir.path(), options, Arc::clone(&queue)).expect("open the audit log");
        let template = applied_event(1);
        let mut next = 0u64;
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let mut event = template.clone();
                    event.seq = next;
                    next += 1;
                    while let EnqueueResult::Full(back) = queue.enqueue(event) {
                        event = back;
                        std::thread::yield_now();
                    }
                }
                let last = next - 1;
                let done = || match fsync {
                    FsyncPolicy::Never => log.written_seq() == Some(last),
                    _ => log.durable_seq() == Some(last),
                };
                while !done() {
                    std::thread::sleep(Duration::from_micros(50));
                }
                start.elapsed()
            })
        });
        let stats = log.shutdown().expect("clean shutdown");
        if stats.events_written > 0 {
            eprintln!(
                "[{name}] {} events, {:.0} bytes per line, {} fsyncs, {} files",
                stats.events_written,
                stats.bytes_written as f64 / stats.events_written as f64,
                stats.fsyncs,
                stats.rotations + 1
            );
        }
    }
    group.finish();
}

struct Driver {
    executor: SafetyExecutor<ManualClock>,
    clock: ManualClock,
    queue: Arc<AuditQueue>,
    now_us: u64,
    iteration: u64,
    delta: ParamVec,
}

impl Driver {
    fn new() -> Self {
        let config = Arc::new(AtomicConfig::new(
            (0..PARAMS).map(|i| 1.0 + i as f64).collect(),
        ));
        let clock = ManualClock::new(0);
        let executor = SafetyExecutor::builder(config)
            .guardrails(Guardrails {
                min_interval_us: 0,
                max_updates_per_second: 1000.0,
                ..Guardrails::default()
            })
            .clock(clock.clone())
            .audit_capacity(QUEUE)
            .build()
            .expect("valid guardrails");
        let queue = Arc::clone(executor.audit_queue());
        Self {
            executor,
            clock,
            queue,
            now_us: 0,
            iteration: 0,
            delta: ParamVec::from_slice(&[STEP; PARAMS]),
        }
    }

    /// Times `iters` applies in batches; `settle` brings the queue back
    /// to at most `BACKLOG` events between batches, untimed.
    fn timed_applies(&mut self, iters: u64, settle: impl Fn(&AuditQueue)) -> Duration {
        let mut timed = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let n = left.min(BATCH);
            let start = Instant::now();
            for _ in 0..n {
                self.now_us += TICK_US;
                self.clock.set(self.now_us);
                self.iteration += 1;
                let receipt = self.executor.apply(Proposal::Update {
                    iteration: self.iteration,
                    delta: self.delta.clone(),
                    gradient_estimate: ParamVec::new(),
                });
                black_box(&receipt);
            }
            timed += start.elapsed();
            settle(&self.queue);
            left -= n;
        }
        timed
    }

    fn check(&self, name: &str) {
        let stats = self.executor.stats();
        assert_eq!(stats.refused, 0, "[{name}] refusals: {stats:?}");
        if stats.applied > 0 {
            eprintln!("[{name}] {} applies, none refused", stats.applied);
        }
    }
}

fn apply(c: &mut Criterion) {
    let mut group = c.benchmark_group("apply_with_audit_log");

    // No other thread: the benchmarking thread drains the queue itself
    // between batches.
    let mut driver = Driver::new();
    group.bench_function("no_consumer", |b| {
        b.iter_custom(|iters| {
            driver.timed_applies(iters, |queue| {
                while queue.len() > BACKLOG {
                    black_box(queue.try_dequeue_with(|event| {
                        black_box(event);
                    }));
                }
            })
        })
    });
    driver.check("no_consumer");

    // A consumer thread that drops the events, polling like the writer
    // (1 ms sleeps when the queue is empty): the queue's cross-core cost
    // without the log's work.
    let mut driver = Driver::new();
    let stop = Arc::new(AtomicBool::new(false));
    let consumer = {
        let queue = Arc::clone(&driver.queue);
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // In place, as the log's writer reads.
                while queue
                    .try_dequeue_with(|event| {
                        black_box(event);
                    })
                    .is_some()
                {}
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    group.bench_function("discarding_consumer", |b| {
        b.iter_custom(|iters| driver.timed_applies(iters, wait_for_backlog))
    });
    stop.store(true, Ordering::Relaxed);
    consumer.join().expect("consumer thread");
    driver.check("discarding_consumer");

    // The audit log, group commit every 10 ms (the default options).
    let mut driver = Driver::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let log = AuditLog::open(
        dir.path(),
        AuditLogOptions::default(),
        Arc::clone(&driver.queue),
    )
    .expect("open the audit log");
    group.bench_function("audit_log", |b| {
        b.iter_custom(|iters| driver.timed_applies(iters, wait_for_backlog))
    });
    driver.check("audit_log");
    drop(driver);
    let stats = log.shutdown().expect("clean shutdown");
    if stats.events_written > 1 {
        eprintln!(
            "[audit_log] {} events written, {} fsyncs, {} write errors",
            stats.events_written, stats.fsyncs, stats.write_errors
        );
    }
    group.finish();
}

/// Waits (yielding) until another thread has brought the queue back to
/// the backlog.
fn wait_for_backlog(queue: &AuditQueue) {
    while queue.len() > BACKLOG {
        std::thread::yield_now();
    }
}

fn configure_sustained() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(20)
}

/// Short: with the log attached every timed apply is an event the writer
/// must put on disk (~3.5 µs each against ~0.4 µs per apply), so wall time
/// is about ten times what is measured: ~3 M events, ~1.5 GB written, ~10 s
/// for this configuration.
fn configure_apply() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20)
}

criterion_group! {
    name = sustained_benches;
    config = configure_sustained();
    targets = sustained
}
criterion_group! {
    name = apply_benches;
    config = configure_apply();
    targets = apply
}
criterion_main!(sustained_benches, apply_benches);
