//! Tier 1 benchmarks: hot-path reads (idle and under a writer on the other
//! core), `SafetyExecutor::apply` (accepted and refused) and the audit
//! queue. Run with `cargo bench -p hotpath --bench hotpath`; results and
//! their interpretation are in `BENCHMARKS.md` at the workspace root.
//!
//! Every group carries its own baselines, measured in the same run, so the
//! figures can be read as ratios rather than as absolute nanoseconds on a
//! noisy machine.
//!
//! Reads "touch" 16 values by folding their bit patterns with wrapping
//! integer adds: every value is loaded, and the reduction itself costs a few
//! cycles (a floating-point sum would add ~16 dependent `addsd`s, ~20 ns of
//! latency that has nothing to do with the read). `local_array_checksum`
//! measures that reduction alone.
//!
//! `std::hint::black_box` is used throughout, and every timed closure
//! returns a word or `()`: criterion 0.5 without its `real_blackbox`
//! feature implements its own `black_box` (also applied to the closure's
//! return value) as a `read_volatile`, which copies a large value such as a
//! 288-byte `Proposal` byte by byte and added ~130 ns to a harness that
//! costs 20 ns.
//!
//! Background threads (writers, the audit consumer) start when their
//! benchmark first runs, so a filtered-out benchmark starts none, and they
//! report how much they did when it ends.

use arc_swap::ArcSwap;
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion};
use crossbeam_queue::ArrayQueue;
use hotpath::{
    AtomicConfig, AuditDetails, AuditEvent, AuditQueue, ConfigSnapshot, EnqueueResult, Guardrails,
    ManualClock, ParamVec, Proposal, ProposalKind, SafetyExecutor, DEFAULT_AUDIT_CAPACITY,
};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::thread;
use std::time::{Duration, Instant};

const PARAMS: usize = 16;
/// Simulated time between two applies (1 ms): 1000 applies per simulated
/// second, exactly the permissive rate limit.
const TICK_US: u64 = 1_000;
/// Every delta component: far inside the step limit (0.1 of a range of 1)
/// and, at 1000 applies per second, 0.06 of the range per minute, inside the
/// default 0.5 budget. Always positive, so directions never flip.
const STEP: f64 = 1e-6;
const WARM_APPLIES: u64 = 1_000_000;

fn configure() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_millis(2500))
        .sample_size(50)
}

fn initial_values() -> Vec<f64> {
    (0..PARAMS).map(|i| 1.0 + i as f64).collect()
}

/// Touches every value; cheap and vectorisable (see the module docs).
#[inline(always)]
fn checksum(values: &[f64]) -> u64 {
    values
        .iter()
        .fold(0u64, |acc, v| acc.wrapping_add(v.to_bits()))
}

fn permissive() -> Guardrails {
    Guardrails {
        min_interval_us: 0,
        max_updates_per_second: 1000.0,
        ..Guardrails::default()
    }
}

/// A fresh executor over a fresh 16-parameter config, with a manual clock,
/// its audit queue drained of the `Started` event.
fn executor(
    guardrails: Guardrails,
    audit_capacity: usize,
) -> (
    SafetyExecutor<ManualClock>,
    ManualClock,
    Arc<AtomicConfig>,
    Arc<AuditQueue>,
) {
    let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&initial_values())));
    let clock = ManualClock::new(0);
    let executor = SafetyExecutor::builder(Arc::clone(&config))
        .guardrails(guardrails)
        .clock(clock.clone())
        .audit_capacity(audit_capacity)
        .build()
        .expect("bench guardrails are valid");
    let audit = Arc::clone(executor.audit_queue());
    while take_event(&audit) {}
    (executor, clock, config, audit)
}

/// Takes one audit event the way a consumer that keeps up does (the
/// durable log): read in place, no copy out. `true` if there was one.
#[inline(always)]
fn take_event(audit: &AuditQueue) -> bool {
    audit
        .try_dequeue_with(|event| {
            black_box(event);
        })
        .is_some()
}

/// Drives an executor the way the benchmarks do: one accepted `Update` of
/// +`STEP` on every parameter per simulated millisecond.
struct Driver {
    executor: SafetyExecutor<ManualClock>,
    clock: ManualClock,
    audit: Arc<AuditQueue>,
    now_us: u64,
    iteration: u64,
    delta: ParamVec,
}

impl Driver {
    fn new(guardrails: Guardrails) -> (Self, Arc<AtomicConfig>) {
        Self::with_audit_capacity(guardrails, DEFAULT_AUDIT_CAPACITY)
    }

    fn with_audit_capacity(
        guardrails: Guardrails,
        audit_capacity: usize,
    ) -> (Self, Arc<AtomicConfig>) {
        let (executor, clock, config, audit) = executor(guardrails, audit_capacity);
        let driver = Self {
            executor,
            clock,
            audit,
            now_us: 0,
            iteration: 0,
            delta: ParamVec::from_slice(&[STEP; PARAMS]),
        };
        (driver, config)
    }

    /// Advances the clock one tick (a plain store, not the CAS of
    /// `ManualClock::advance`) and builds the proposal the caller would.
    #[inline(always)]
    fn next_proposal(&mut self) -> Proposal {
        self.proposal_after(TICK_US)
    }

    /// The same, `advance_us` later (0: the clock stands still).
    #[inline(always)]
    fn proposal_after(&mut self, advance_us: u64) -> Proposal {
        self.now_us += advance_us;
        self.clock.set(self.now_us);
        self.iteration += 1;
        Proposal::Update {
            iteration: self.iteration,
            delta: self.delta.clone(),
            gradient_estimate: ParamVec::new(),
        }
    }

    /// One apply, then drains every audit event. `true` if it published.
    fn apply_and_drain(&mut self) -> bool {
        let proposal = self.next_proposal();
        let published = self.executor.apply(proposal).is_ok();
        while take_event(&self.audit) {}
        published
    }
}

/// A thread that repeats `step` until stopped, counting the steps that
/// succeeded (publications, dequeued events) and those that did not.
struct Background {
    label: String,
    /// What a successful and an unsuccessful step are, for the report.
    outcomes: (&'static str, &'static str),
    /// Writers must have published; a consumer may find nothing to take.
    must_succeed: bool,
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<(u64, u64)>,
    started: Instant,
}

impl Background {
    /// Spawns the thread and returns once `step` has succeeded once, so the
    /// measurement never starts before the writer is running.
    fn spawn<F>(label: &str, step: F) -> Self
    where
        F: FnMut() -> bool + Send + 'static,
    {
        Self::spawn_with(label, true, step)
    }

    /// Spawns the thread and returns once it is running (a consumer cannot
    /// succeed before the measurement produces something).
    fn spawn_consumer<F>(label: &str, step: F) -> Self
    where
        F: FnMut() -> bool + Send + 'static,
    {
        Self::spawn_with(label, false, step)
    }

    fn spawn_with<F>(label: &str, wait_for_success: bool, mut step: F) -> Self
    where
        F: FnMut() -> bool + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let ready = Arc::new(AtomicBool::new(false));
        let handle = thread::Builder::new()
            .name(label.to_owned())
            .spawn({
                let (stop, ready) = (Arc::clone(&stop), Arc::clone(&ready));
                move || {
                    let (mut ok, mut failed) = (0u64, 0u64);
                    if !wait_for_success {
                        ready.store(true, Ordering::Release);
                    }
                    while !stop.load(Ordering::Relaxed) {
                        if step() {
                            ok += 1;
                            if ok == 1 {
                                ready.store(true, Ordering::Release);
                            }
                        } else {
                            failed += 1;
                        }
                    }
                    (ok, failed)
                }
            })
            .expect("spawn background thread");
        let started = Instant::now();
        while !ready.load(Ordering::Acquire) {
            if started.elapsed() > Duration::from_secs(10) {
                stop.store(true, Ordering::Relaxed);
                panic!("background thread {label} not ready after 10 s");
            }
            thread::yield_now();
        }
        Self {
            label: label.to_owned(),
            must_succeed: wait_for_success,
            outcomes: ("succeeded", "failed"),
            stop,
            handle,
            started,
        }
    }

    /// Names the two kinds of step in the report.
    fn reporting(mut self, succeeded: &'static str, failed: &'static str) -> Self {
        self.outcomes = (succeeded, failed);
        self
    }

    /// Stops the thread, prints what it did and returns (succeeded, failed).
    fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let (ok, failed) = self.handle.join().expect("background thread panicked");
        let secs = self.started.elapsed().as_secs_f64();
        eprintln!(
            "[background] {}: {ok} {}, {failed} {} in {secs:.2} s ({:.2} M/s)",
            self.label,
            self.outcomes.0,
            self.outcomes.1,
            ok as f64 / secs / 1e6
        );
        assert!(
            ok > 0 || !self.must_succeed,
            "background thread {} did nothing",
            self.label
        );
        (ok, failed)
    }
}

/// Group 1: hot-path reads with no writer.
fn read_idle(c: &mut Criterion) {
    let mut group = c.benchmark_group("read_idle");

    let atomic = AtomicU64::new(42);
    group.bench_function("atomic_u64_load", |b| {
        b.iter(|| black_box(&atomic).load(Ordering::Acquire))
    });

    let local: [f64; PARAMS] = std::array::from_fn(|i| 1.0 + i as f64);
    group.bench_function("local_array_checksum", |b| {
        b.iter(|| checksum(black_box(&local)))
    });

    let rwlock = RwLock::new(Arc::new(initial_values()));
    group.bench_function("rwlock_arc_vec", |b| {
        b.iter(|| {
            let guard = black_box(&rwlock)
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            checksum(&guard)
        })
    });

    let swap = ArcSwap::from_pointee(initial_values());
    group.bench_function("arc_swap_load", |b| {
        b.iter(|| checksum(&black_box(&swap).load()))
    });

    let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&initial_values())));
    let mut reader = config.reader();
    group.bench_function("hotpath_reader_get", |b| {
        b.iter(|| checksum(&black_box(&mut reader).get().params))
    });

    let mut buf = ParamVec::new();
    group.bench_function("hotpath_read_into", |b| {
        b.iter(|| {
            black_box(&config).read_into(&mut buf);
            checksum(black_box(&buf))
        })
    });

    // The `Arc`-returning reads: the baseline takes the shared `Arc` out of
    // an `RwLock<Arc<_>>` (read lock, clone, unlock), `snapshot()` out of
    // its per-generation cache. Both return an `Arc` the caller keeps.
    let snapshot = ConfigSnapshot {
        generation: 0,
        params: ParamVec::from_slice(&initial_values()),
    };
    let rwlock_snapshot = RwLock::new(Arc::new(snapshot));
    group.bench_function("rwlock_arc_snapshot_clone", |b| {
        b.iter(|| {
            let shared = Arc::clone(
                &black_box(&rwlock_snapshot)
                    .read()
                    .unwrap_or_else(PoisonError::into_inner),
            );
            checksum(&shared.params)
        })
    });
    group.bench_function("hotpath_snapshot", |b| {
        b.iter(|| checksum(&black_box(&config).snapshot().params))
    });

    group.finish();
}

/// Publication period of the paced writers: 2 µs, a rate every writer
/// below sustains while its reader runs, so the paced readers all face the
/// same write rate.
const PACE: Duration = Duration::from_micros(2);

/// Group 2: the same reads while a background thread publishes
/// continuously (one writer per benchmark, running for all of it), each
/// writer as fast as it can.
fn read_writer_active(c: &mut Criterion) {
    reads_under_writer(c, "read_writer_active", None);
}

/// Group 2b: the same with every writer paced to one publication per
/// [`PACE`], so the readers compare at an equal write rate.
fn read_writer_paced(c: &mut Criterion) {
    reads_under_writer(c, "read_writer_paced_2us", Some(PACE));
}

/// `step`, or `step` run at most once per `pace` (spinning in between, so
/// the writer's core stays busy either way).
fn paced<F>(pace: Option<Duration>, mut step: F) -> impl FnMut() -> bool + Send + 'static
where
    F: FnMut() -> bool + Send + 'static,
{
    let mut next = Instant::now();
    move || {
        if let Some(period) = pace {
            let mut now = Instant::now();
            while now < next {
                std::hint::spin_loop();
                now = Instant::now();
            }
            // A writer that fell behind does not burst to catch up.
            next = (next + period).max(now);
        }
        step()
    }
}

/// Benchmarks `read` while a background thread runs. The thread is started
/// when the benchmark first runs (not at all if it is filtered out), is
/// running before the first timed read, and is stopped and reported right
/// after the benchmark. Returns what the thread did, if it ran.
fn bench_under<S, R, O>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    spawn: S,
    mut read: R,
) -> Option<(u64, u64)>
where
    S: FnOnce() -> Background,
    R: FnMut() -> O,
{
    let mut spawn = Some(spawn);
    let mut background = None;
    group.bench_function(id, |b| {
        if let Some(spawn) = spawn.take() {
            background = Some(spawn());
        }
        b.iter(&mut read)
    });
    background.map(Background::finish)
}

fn reads_under_writer(c: &mut Criterion, name: &str, pace: Option<Duration>) {
    let mut group = c.benchmark_group(name);

    let atomic = Arc::new(AtomicU64::new(0));
    let writer = || {
        let atomic = Arc::clone(&atomic);
        let mut v = 0u64;
        Background::spawn(
            &format!("{name}: atomic_u64_store"),
            paced(pace, move || {
                v += 1;
                atomic.store(v, Ordering::Release);
                true
            }),
        )
    };
    bench_under(&mut group, "atomic_u64_load", writer, || {
        black_box(&*atomic).load(Ordering::Acquire)
    });

    let rwlock = Arc::new(RwLock::new(Arc::new(initial_values())));
    let writer = || {
        let rwlock = Arc::clone(&rwlock);
        let mut v = 0.0;
        Background::spawn(
            &format!("{name}: rwlock_write"),
            paced(pace, move || {
                v += 1.0;
                let fresh = Arc::new(vec![v; PARAMS]);
                let old = {
                    let mut guard = rwlock.write().unwrap_or_else(PoisonError::into_inner);
                    std::mem::replace(&mut *guard, fresh)
                };
                drop(old);
                true
            }),
        )
    };
    bench_under(&mut group, "rwlock_arc_vec", writer, || {
        let guard = black_box(&*rwlock)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        checksum(&guard)
    });

    let swap = Arc::new(ArcSwap::from_pointee(initial_values()));
    let writer = || {
        let swap = Arc::clone(&swap);
        let mut v = 0.0;
        Background::spawn(
            &format!("{name}: arc_swap_store"),
            paced(pace, move || {
                v += 1.0;
                swap.store(Arc::new(vec![v; PARAMS]));
                true
            }),
        )
    };
    bench_under(&mut group, "arc_swap_load", writer, || {
        checksum(&black_box(&*swap).load())
    });

    // The hotpath writer is the real one: `SafetyExecutor::apply` in a loop
    // (1 simulated ms apart), draining its own audit queue.
    let hotpath_writer = |driver: Driver, label: &str| {
        let label = format!("{name}: {label}");
        move || {
            let mut driver = driver;
            Background::spawn(&label, paced(pace, move || driver.apply_and_drain()))
        }
    };

    let (driver, config) = Driver::new(permissive());
    let mut reader = config.reader();
    let ran = bench_under(
        &mut group,
        "hotpath_reader_get",
        hotpath_writer(driver, "executor_apply(reader_get)"),
        || checksum(&black_box(&mut reader).get().params),
    );
    if let Some((published, refused)) = ran {
        assert_eq!(refused, 0, "permissive applies must all pass");
        assert_eq!(config.generation(), published);
    }

    let (driver, config) = Driver::new(permissive());
    let mut buf = ParamVec::new();
    let ran = bench_under(
        &mut group,
        "hotpath_read_into",
        hotpath_writer(driver, "executor_apply(read_into)"),
        || {
            black_box(&*config).read_into(&mut buf);
            checksum(black_box(&buf))
        },
    );
    if let Some((published, refused)) = ran {
        assert_eq!(refused, 0, "permissive applies must all pass");
        assert_eq!(config.generation(), published);
    }

    group.finish();
}

/// Group 2c: the same reads while a second reader on the other core reads
/// the same structure continuously, and nobody writes: what readers cost
/// each other. A `RwLock` read takes the lock (atomic read-modify-writes on
/// the one lock word both readers share) and arc-swap's `load` updates
/// shared debt slots; a `ConfigReader` only loads.
fn read_reader_active(c: &mut Criterion) {
    let mut group = c.benchmark_group("read_reader_active");
    let name = "read_reader_active";

    let rwlock = Arc::new(RwLock::new(Arc::new(initial_values())));
    let read_rwlock = |rwlock: &RwLock<Arc<Vec<f64>>>| {
        let guard = black_box(rwlock)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        checksum(&guard)
    };
    let other = || {
        let rwlock = Arc::clone(&rwlock);
        Background::spawn(&format!("{name}: rwlock_read"), move || {
            black_box(read_rwlock(&rwlock));
            true
        })
    };
    bench_under(&mut group, "rwlock_arc_vec", other, || read_rwlock(&rwlock));

    let swap = Arc::new(ArcSwap::from_pointee(initial_values()));
    let other = || {
        let swap = Arc::clone(&swap);
        Background::spawn(&format!("{name}: arc_swap_load"), move || {
            black_box(checksum(&black_box(&*swap).load()));
            true
        })
    };
    bench_under(&mut group, "arc_swap_load", other, || {
        checksum(&black_box(&*swap).load())
    });

    let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&initial_values())));
    let other = || {
        let mut reader = config.reader();
        Background::spawn(&format!("{name}: hotpath_reader_get"), move || {
            black_box(checksum(&black_box(&mut reader).get().params));
            true
        })
    };
    let mut reader = config.reader();
    bench_under(&mut group, "hotpath_reader_get", other, || {
        checksum(&black_box(&mut reader).get().params)
    });

    group.finish();
}

/// How often the production-shaped writer publishes: the most the executor
/// admits (`max_updates_per_second` is at most 1000).
const PRODUCTION_WRITE_PERIOD: Duration = Duration::from_millis(1);

/// A thread's loop in the production shape: it reads continuously, like
/// every hot-path thread, and every [`PRODUCTION_WRITE_PERIOD`] it also
/// publishes, like the executor sharing a core with them. The clock is
/// looked at every 64 reads.
fn read_and_publish<R, W>(mut read: R, mut publish: W) -> impl FnMut() -> bool + Send + 'static
where
    R: FnMut() + Send + 'static,
    W: FnMut() -> bool + Send + 'static,
{
    let mut next = Instant::now();
    let mut reads = 0u32;
    move || {
        read();
        reads = reads.wrapping_add(1);
        if reads % 64 == 0 && Instant::now() >= next {
            next += PRODUCTION_WRITE_PERIOD;
            return publish();
        }
        false
    }
}

/// Group 2d: the deployment shape on two cores. The measured reader is on
/// one core; on the other, a thread reads the same structure continuously
/// (a second hot-path thread) and publishes once per millisecond (the
/// executor at its rate limit), every structure with the same loop. The
/// background thread counts publications as successes.
fn read_production_shape(c: &mut Criterion) {
    let mut group = c.benchmark_group("read_production_shape");
    let name = "read_production_shape";

    let rwlock = Arc::new(RwLock::new(Arc::new(initial_values())));
    let read_rwlock = |rwlock: &RwLock<Arc<Vec<f64>>>| {
        let guard = black_box(rwlock)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        checksum(&guard)
    };
    let other = || {
        let (r, w) = (Arc::clone(&rwlock), Arc::clone(&rwlock));
        let mut v = 0.0;
        Background::spawn(
            &format!("{name}: rwlock read + write/ms"),
            read_and_publish(
                move || {
                    black_box(read_rwlock(&r));
                },
                move || {
                    v += 1.0;
                    let fresh = Arc::new(vec![v; PARAMS]);
                    let old = {
                        let mut guard = w.write().unwrap_or_else(PoisonError::into_inner);
                        std::mem::replace(&mut *guard, fresh)
                    };
                    drop(old);
                    true
                },
            ),
        )
        .reporting("publications", "other reads")
    };
    bench_under(&mut group, "rwlock_arc_vec", other, || read_rwlock(&rwlock));

    let swap = Arc::new(ArcSwap::from_pointee(initial_values()));
    let other = || {
        let (r, w) = (Arc::clone(&swap), Arc::clone(&swap));
        let mut v = 0.0;
        Background::spawn(
            &format!("{name}: arc_swap load + store/ms"),
            read_and_publish(
                move || {
                    black_box(checksum(&black_box(&*r).load()));
                },
                move || {
                    v += 1.0;
                    w.store(Arc::new(vec![v; PARAMS]));
                    true
                },
            ),
        )
        .reporting("publications", "other reads")
    };
    bench_under(&mut group, "arc_swap_load", other, || {
        checksum(&black_box(&*swap).load())
    });

    let (driver, config) = Driver::new(permissive());
    let other = || {
        let mut reader = config.reader();
        let mut driver = driver;
        Background::spawn(
            &format!("{name}: reader_get + apply/ms"),
            read_and_publish(
                move || {
                    black_box(checksum(&black_box(&mut reader).get().params));
                },
                move || driver.apply_and_drain(),
            ),
        )
        .reporting("publications", "other reads")
    };
    let mut reader = config.reader();
    let ran = bench_under(&mut group, "hotpath_reader_get", other, || {
        checksum(&black_box(&mut reader).get().params)
    });
    if let Some((published, _)) = ran {
        assert_eq!(config.generation(), published);
    }

    group.finish();
}

/// Group 3: `apply` with 16 parameters, accepted and refused.
///
/// Unless noted, the audit queue is drained by the benchmarking thread
/// itself: every apply below produces exactly one event, so each iteration
/// takes exactly one event (in place, `take_event`), whose cost with the
/// executor's in-place enqueue `audit_queue/in_place_enqueue_dequeue`
/// measures on its own.
fn apply(c: &mut Criterion) {
    let mut group = c.benchmark_group("apply");

    // What every apply iteration below pays besides `apply` itself: the
    // clock store and building the proposal (one inline ParamVec clone).
    let (mut driver, _config) = Driver::new(permissive());
    group.bench_function("harness_overhead", |b| {
        b.iter(|| black_box(&driver.next_proposal()).kind())
    });

    let accepted_same_thread = |driver: &mut Driver| {
        let proposal = driver.next_proposal();
        let receipt = driver.executor.apply(proposal);
        take_event(&driver.audit);
        black_box(&receipt);
    };
    let check_all_accepted = |driver: &Driver, config: &AtomicConfig, ran: bool| {
        if ran {
            let stats = driver.executor.stats();
            assert_eq!(stats.refused, 0, "{stats:?}");
            assert!(stats.applied > 0 && driver.audit.is_empty(), "{stats:?}");
            assert_eq!(config.generation(), stats.applied);
        }
    };

    let (mut driver, config) = Driver::new(permissive());
    let mut ran = false;
    group.bench_function("accepted_drain_same_thread", |b| {
        ran = true;
        b.iter(|| accepted_same_thread(&mut driver))
    });
    check_all_accepted(&driver, &config, ran);

    // The same executor after 10^6 accepted applies at full speed (done
    // before the first timed iteration, untimed).
    let (mut driver, config) = Driver::new(permissive());
    let mut ran = false;
    group.bench_function("accepted_after_1e6_drain_same_thread", |b| {
        if !ran {
            ran = true;
            let started = Instant::now();
            for _ in 0..WARM_APPLIES {
                assert!(driver.apply_and_drain(), "warm-up apply refused");
            }
            eprintln!(
                "[setup] {WARM_APPLIES} warm-up applies (apply + drain) in {:.3} s",
                started.elapsed().as_secs_f64()
            );
        }
        b.iter(|| accepted_same_thread(&mut driver))
    });
    check_all_accepted(&driver, &config, ran);

    // Accepted, audit queue drained outside the timed region: criterion
    // builds a batch of proposals untimed (draining the queue first), then
    // times only `apply` on each (and moving each proposal out of the
    // batch), so this is `apply` including its enqueue but no dequeue.
    // Batches of 256 proposals (74 KB) stay in L2 and far below the reserve
    // of the default queue (4096).
    let (mut driver, config) = Driver::new(permissive());
    let mut ran = false;
    group.bench_function("accepted_drain_untimed", |b| {
        ran = true;
        b.iter_batched(
            || {
                while take_event(&driver.audit) {}
                driver.iteration += 1;
                Proposal::Update {
                    iteration: driver.iteration,
                    delta: driver.delta.clone(),
                    gradient_estimate: ParamVec::new(),
                }
            },
            |proposal| {
                driver.now_us += TICK_US;
                driver.clock.set(driver.now_us);
                black_box(&driver.executor.apply(proposal));
            },
            BatchSize::NumIterations(256),
        )
    });
    while take_event(&driver.audit) {}
    check_all_accepted(&driver, &config, ran);

    // Accepted, audit queue drained by a consumer thread spinning on the
    // other core (the deployment shape: the queue's slots move between
    // cores). On a shared 2-core VM the consumer can be descheduled for a
    // time slice; a queue of 65536 events (~21 MB) absorbs ~30 ms of that
    // at full apply speed. Refusals (queue full) are reported, not fatal.
    let (mut driver, _config) = Driver::with_audit_capacity(permissive(), 1 << 16);
    let audit = Arc::clone(&driver.audit);
    let consumer =
        move || Background::spawn_consumer("apply: audit_consumer", move || take_event(&audit));
    let ran = bench_under(
        &mut group,
        "accepted_drain_consumer_thread",
        consumer,
        || {
            let proposal = driver.next_proposal();
            black_box(&driver.executor.apply(proposal));
        },
    );
    let stats = driver.executor.stats();
    if ran.is_some() && stats.refused > 0 {
        eprintln!(
            "[warning] consumer fell behind: {} of {} applies refused (queue full), \
             figures include them: {stats:?}",
            stats.refused,
            stats.applied + stats.refused
        );
    }

    // Accepted, one parameter reversing direction on every apply (round
    // robin), as SPSA updates do: the flip rule's ordered check and the
    // direction bookkeeping run every time. 4 simulated ms per apply, so
    // each parameter reverses every 64 ms (937 per minute, under the
    // maximum flip limit of 1000 set here).
    let guardrails = Guardrails {
        direction_flip_limit: hotpath::MAX_FLIP_LIMIT,
        ..permissive()
    };
    let (mut driver, config) = Driver::new(guardrails);
    assert!(driver.apply_and_drain(), "first apply sets every direction");
    let mut reversing = 0;
    let mut ran = false;
    group.bench_function("accepted_one_reversal_per_apply", |b| {
        ran = true;
        b.iter(|| {
            driver.delta[reversing] = -driver.delta[reversing];
            reversing = (reversing + 1) % PARAMS;
            let proposal = driver.proposal_after(4 * TICK_US);
            black_box(&driver.executor.apply(proposal));
            take_event(&driver.audit);
        })
    });
    check_all_accepted(&driver, &config, ran);

    // Refused for `DeltaTooLarge` on the last parameter, so the step check
    // scans all 16. Malformed refusals count towards `violation_limit`,
    // which would latch safe mode after 10 and turn every later refusal
    // into a cheaper `InSafeMode`; the limit is raised to keep measuring
    // `DeltaTooLarge`.
    let guardrails = Guardrails {
        violation_limit: u32::MAX,
        ..permissive()
    };
    let (mut driver, config) = Driver::new(guardrails);
    driver.delta[PARAMS - 1] = 0.5;
    let mut ran = false;
    group.bench_function("refused_delta_too_large", |b| {
        ran = true;
        b.iter(|| {
            let proposal = driver.next_proposal();
            black_box(&driver.executor.apply(proposal));
            take_event(&driver.audit);
        })
    });
    if ran {
        let stats = driver.executor.stats();
        assert!(stats.applied == 0 && stats.refused > 0, "{stats:?}");
        assert!(driver.audit.is_empty() && config.generation() == 0);
        assert!(driver.executor.control_safety().reasons().is_empty());
    }

    // Refused for `RateLimitExceeded` (min interval 1 s, the clock standing
    // still after one accepted apply): every content check passes first.
    let guardrails = Guardrails {
        min_interval_us: 1_000_000,
        ..permissive()
    };
    let (mut driver, _config) = Driver::new(guardrails);
    assert!(driver.apply_and_drain(), "first apply must pass");
    let mut ran = false;
    group.bench_function("refused_rate_limit_min_interval", |b| {
        ran = true;
        b.iter(|| {
            let proposal = driver.proposal_after(0);
            black_box(&driver.executor.apply(proposal));
            take_event(&driver.audit);
        })
    });
    if ran {
        let stats = driver.executor.stats();
        assert!(stats.applied == 1 && stats.refused > 0, "{stats:?}");
        assert!(driver.audit.is_empty(), "{stats:?}");
        assert_eq!(stats.clock_regressions, 0, "{stats:?}");
    }

    group.finish();
}

/// Group 4: the audit queue alone.
fn audit_queue(c: &mut Criterion) {
    let mut group = c.benchmark_group("audit_queue");
    let values = ParamVec::from_slice(&initial_values());
    let delta = ParamVec::from_slice(&[STEP; PARAMS]);
    let event = AuditEvent {
        seq: 1,
        timestamp_us: 1_000,
        generation: 1,
        details: AuditDetails::Applied {
            kind: ProposalKind::Update,
            correlation_id: 1,
            previous_generation: 0,
            delta: delta.clone(),
            params: values.clone(),
        },
    };
    eprintln!(
        "[info] size_of::<AuditEvent>() = {} bytes, size_of::<Proposal>() = {} bytes",
        std::mem::size_of::<AuditEvent>(),
        std::mem::size_of::<Proposal>()
    );

    // The seed's by-value API: the same event moves in, and a copy of it
    // comes out (`try_dequeue` clones the slot's event, which stays for
    // the next in-place writer); no allocation at 16 parameters.
    let queue = AuditQueue::new(DEFAULT_AUDIT_CAPACITY);
    let mut slot = Some(event.clone());
    group.bench_function("enqueue_dequeue", |b| {
        b.iter(|| {
            let event = slot.take().expect("event came back last iteration");
            if let EnqueueResult::Full(_) = queue.enqueue(event) {
                panic!("queue of 4096 holding one event is full");
            }
            slot = queue.try_dequeue();
            black_box(&slot);
        })
    });

    // As the executor does it: the event is written in place into the
    // slot (reusing the vectors of the `Applied` event already there) and
    // the consumer reads it in place; `black_box` on the reference makes
    // the event observable without copying it out.
    group.bench_function("in_place_enqueue_dequeue", |b| {
        b.iter(|| {
            let written = queue.enqueue_with(|event| {
                event.seq = 1;
                event.timestamp_us = 1_000;
                event.generation = 1;
                match &mut event.details {
                    AuditDetails::Applied {
                        kind,
                        correlation_id,
                        previous_generation,
                        delta: d,
                        params: p,
                    } => {
                        *kind = ProposalKind::Update;
                        *correlation_id = 1;
                        *previous_generation = 0;
                        d.copy_from(black_box(&delta));
                        p.copy_from(black_box(&values));
                    }
                    other => {
                        *other = AuditDetails::Applied {
                            kind: ProposalKind::Update,
                            correlation_id: 1,
                            previous_generation: 0,
                            delta: delta.clone(),
                            params: values.clone(),
                        }
                    }
                }
            });
            assert!(written, "queue of 4096 holding one event is full");
            black_box(queue.try_dequeue_with(|event| {
                black_box(event);
            }));
        })
    });

    // By value (the seed's API): building the event clones two ParamVecs,
    // `try_dequeue` copies it out of the slot.
    group.bench_function("build_enqueue_dequeue", |b| {
        b.iter(|| {
            let event = AuditEvent {
                seq: 1,
                timestamp_us: 1_000,
                generation: 1,
                details: AuditDetails::Applied {
                    kind: ProposalKind::Update,
                    correlation_id: 1,
                    previous_generation: 0,
                    delta: black_box(&delta).clone(),
                    params: black_box(&values).clone(),
                },
            };
            if let EnqueueResult::Full(_) = queue.enqueue(event) {
                panic!("queue of 4096 holding one event is full");
            }
            black_box(&queue.try_dequeue());
        })
    });

    // Baselines: crossbeam's `ArrayQueue` (the same protocol as
    // `AuditQueue`'s ring, and what it wrapped until the ring wrote in
    // place) carrying a `u64` (the protocol alone) and a plain 320-byte
    // array (the size of an `AuditEvent`, moved by value).
    let words = ArrayQueue::<u64>::new(DEFAULT_AUDIT_CAPACITY);
    group.bench_function("crossbeam_u64_push_pop", |b| {
        let mut x = 0u64;
        b.iter(|| {
            x = x.wrapping_add(1);
            if words.push(black_box(x)).is_err() {
                panic!("queue of 4096 holding one word is full");
            }
            black_box(words.pop())
        })
    });

    const EVENT_WORDS: usize = std::mem::size_of::<AuditEvent>() / 8;
    let blobs = ArrayQueue::<[u64; EVENT_WORDS]>::new(DEFAULT_AUDIT_CAPACITY);
    let mut blob = Some([7u64; EVENT_WORDS]);
    group.bench_function("crossbeam_event_sized_array_push_pop", |b| {
        b.iter(|| {
            let value = blob.take().expect("array came back last iteration");
            if blobs.push(value).is_err() {
                panic!("queue of 4096 holding one array is full");
            }
            blob = blobs.pop();
            black_box(&blob);
        })
    });

    group.finish();
}

criterion_group! {
    name = hotpath_benches;
    config = configure();
    targets = read_idle, read_writer_active, read_writer_paced, read_reader_active,
        read_production_shape, apply, audit_queue
}
criterion_main!(hotpath_benches);
