//! Proves the hot path allocation-free in steady state: a counting global
//! allocator counts allocations made by *this thread* while reads, accepted
//! and refused applies, outcome reports, snapshots and audit enqueue/dequeue
//! run with 16 parameters, while the in-place audit path runs with 32, and
//! while typed reads and `AtomicConfig::snapshot` run on an unchanged
//! configuration.

use hotpath::{
    AtomicConfig, AuditQueue, EnqueueResult, Guardrails, Knob, ManualClock, ParamSpace, ParamVec,
    Proposal, SafetyExecutor,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

struct CountingAllocator;

thread_local! {
    // `const` initialisation: no lazy allocation inside the allocator.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        // SAFETY: forwards the caller's layout to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        // SAFETY: as for `alloc`/`dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

const N: usize = 16;

fn update(step: f64) -> Proposal {
    Proposal::Update {
        iteration: 1,
        delta: ParamVec::from_slice(&[step; N]),
        gradient_estimate: ParamVec::from_slice(&[0.0; N]),
    }
}

#[test]
fn the_counter_sees_allocations() {
    let count = allocations_during(|| drop(std::hint::black_box(Box::new(7u64))));
    assert_eq!(count, 1);
    let spilled = allocations_during(|| drop(std::hint::black_box(ParamVec::zeros(N + 1))));
    assert_eq!(spilled, 1, "more than 16 parameters spill to the heap");
}

#[test]
fn steady_state_hot_path_does_not_allocate() {
    let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5; N])));
    let clock = ManualClock::new(0);
    let guardrails = Guardrails {
        min_interval_us: 500,
        max_updates_per_second: 1000.0,
        ..Guardrails::default()
    };
    let mut executor = SafetyExecutor::builder(config.clone())
        .guardrails(guardrails)
        .clock(clock.clone())
        .audit_capacity(1024)
        .build()
        .expect("valid settings");
    let audit = executor.audit_queue().clone();
    let mut reader = config.reader();
    let mut buf = ParamVec::zeros(N);
    executor.set_baseline().expect("baseline");

    // Warm-up outside the measurement: first use of every path.
    clock.advance(1_000);
    executor.apply(update(1e-6)).expect("accepted");
    while audit.try_dequeue().is_some() {}

    let mut sum = 0.0;
    let count = allocations_during(|| {
        for i in 0..10_000u64 {
            clock.advance(1_000);
            let receipt = executor.apply(update(1e-6)).expect("accepted");
            // Refused: too large, then too soon (same instant).
            assert!(executor.apply(update(0.5)).is_err());
            assert!(executor.apply(update(1e-6)).is_err());
            if i % 100 == 0 {
                assert!(executor.report_outcome(receipt.new_generation, 1.0).is_ok());
            }
            sum += reader.get().params[0];
            sum += config.load().params[1];
            config.read_into(&mut buf);
            sum += buf[2];
            sum += executor.snapshot().params[3];
            while let Some(event) = audit.try_dequeue() {
                assert!(audit.enqueue(event).eq(&EnqueueResult::Enqueued));
                let again = audit.try_dequeue().expect("just enqueued");
                sum += again.seq as f64;
            }
        }
    });
    assert!(sum > 0.0);
    assert_eq!(executor.stats().applied, 10_001);
    assert_eq!(count, 0, "hot path allocated {count} times");
}

#[test]
fn audit_queue_round_trip_does_not_allocate() {
    let queue = AuditQueue::new(64);
    let event = hotpath::AuditEvent {
        seq: 0,
        timestamp_us: 0,
        generation: 1,
        details: hotpath::AuditDetails::Applied {
            kind: hotpath::ProposalKind::Update,
            correlation_id: 1,
            previous_generation: 0,
            delta: ParamVec::from_slice(&[0.1; N]),
            params: ParamVec::from_slice(&[0.2; N]),
        },
    };
    let count = allocations_during(|| {
        for _ in 0..10_000 {
            assert_eq!(queue.enqueue(event.clone()), EnqueueResult::Enqueued);
            assert!(queue.try_dequeue().is_some());
        }
    });
    assert_eq!(count, 0);
}

/// In place, the queue's slots keep their vectors' storage: once every slot
/// has held an event, an executor with more parameters than fit inline
/// (whose events therefore carry heap vectors) audits accepted and refused
/// applies, drained with `try_dequeue_with`, without allocating. Proposals
/// are built before the measurement (building one allocates at this size).
#[test]
fn in_place_audit_reuses_slot_storage_beyond_inline_capacity() {
    const WIDE: usize = 2 * N;
    const CAPACITY: usize = 8;
    const APPLIES: usize = 2_000;
    let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5; WIDE])));
    let clock = ManualClock::new(0);
    let guardrails = Guardrails {
        min_interval_us: 0,
        max_updates_per_second: 1000.0,
        violation_limit: u32::MAX,
        ..Guardrails::default()
    };
    let mut executor = SafetyExecutor::builder(config)
        .guardrails(guardrails)
        .clock(clock.clone())
        .audit_capacity(CAPACITY)
        .build()
        .expect("valid settings");
    let audit = executor.audit_queue().clone();
    let proposal = |step: f64| Proposal::Update {
        iteration: 1,
        delta: ParamVec::from_slice(&[step; WIDE]),
        gradient_estimate: ParamVec::new(),
    };
    let mut run = |proposals: &mut Vec<Proposal>, checks: &mut u64| {
        for p in proposals.drain(..) {
            clock.advance(1_000);
            let _ = executor.apply(p);
            while let Some(params) = audit.try_dequeue_with(|event| match &event.details {
                hotpath::AuditDetails::Applied { params, .. } => params.len(),
                hotpath::AuditDetails::Rejected { delta, .. } => delta.len(),
                _ => WIDE,
            }) {
                assert_eq!(params, WIDE);
                *checks += 1;
            }
        }
    };
    // Alternating accepted and refused (too large) applies: every slot holds
    // both kinds of event in turn. Warm-up: a few laps of the queue.
    let batch = |n: usize| -> Vec<Proposal> {
        (0..n)
            .map(|i| proposal(if i % 2 == 0 { 1e-6 } else { 0.5 }))
            .collect()
    };
    let mut checks = 0;
    run(&mut batch(4 * CAPACITY), &mut checks);
    let mut proposals = batch(APPLIES);
    let count = allocations_during(|| run(&mut proposals, &mut checks));
    // One event per apply, plus the executor's `Started`.
    assert_eq!(checks, (4 * CAPACITY + APPLIES + 1) as u64);
    assert!(executor.stats().applied > 0 && executor.stats().refused > 0);
    assert_eq!(count, 0, "in-place audit allocated {count} times");
}

#[test]
fn steady_state_engine_step_does_not_allocate() {
    use hotpath::{AdaptiveEngine, AdaptiveEngineConfig, SpsaConfig, TelemetryDigest};

    let clock = ManualClock::new(0);
    let config = AdaptiveEngineConfig {
        spsa: SpsaConfig {
            eval_window_digests: 3,
            ..SpsaConfig::default()
        },
        ..AdaptiveEngineConfig::bounded(vec![(0.0, 1.0); N])
    };
    let mut engine =
        AdaptiveEngine::with_clock(config, ParamVec::from_slice(&[0.5; N]), clock.clone())
            .expect("valid settings");
    let audit = engine.executor().audit_queue().clone();
    let mut reader = engine.config().reader();
    let mut step = |engine: &mut AdaptiveEngine<ManualClock>| {
        clock.advance(100_000);
        let live = reader.get();
        let loss: f64 = live.params.iter().map(|p| (p - 0.3) * (p - 0.3)).sum();
        engine
            .step(TelemetryDigest::new(100_000, loss, 10).with_generation(live.generation))
            .expect("valid digest");
        while audit.try_dequeue().is_some() {}
    };
    // Calibration and the first iterations happen outside the measurement.
    for _ in 0..100 {
        step(&mut engine);
    }
    let gradients = engine.stats().gradients;
    let count = allocations_during(|| {
        for _ in 0..2_000 {
            step(&mut engine);
        }
    });
    assert!(
        engine.stats().gradients > gradients + 100,
        "the engine kept iterating"
    );
    assert_eq!(count, 0, "engine step allocated {count} times");
}

#[test]
fn typed_reads_and_shared_snapshots_do_not_allocate() {
    let space = ParamSpace::new(vec![
        Knob::int("batch_size", 1, 512, 64),
        Knob::real("linger_ms", 0.1, 100.0, 5.0).log(),
        Knob::choice("codec", ["none", "lz4", "zstd"], "lz4"),
    ])
    .expect("valid space");
    let (batch, linger, codec) = (
        space.int("batch_size").expect("int"),
        space.real("linger_ms").expect("real"),
        space.choice("codec").expect("choice"),
    );
    let config = Arc::new(AtomicConfig::new(space.initial()));
    let mut reader = config.reader();
    // Warm up: the first snapshot of a generation allocates its shared Arc.
    let first = config.snapshot();
    let mut sum = 0.0;
    let allocations = allocations_during(|| {
        for _ in 0..10_000 {
            let snap = reader.get();
            let n: i64 = snap.get(batch);
            sum += n as f64 + snap.get(linger) + snap.get(codec) as f64;
            let shared = config.snapshot();
            sum += shared.get(batch) as f64;
            sum += space
                .option(codec, shared.get(codec))
                .map_or(0.0, |o| o.len() as f64);
        }
    });
    assert_eq!(allocations, 0, "typed reads and snapshot() allocated");
    assert!(Arc::ptr_eq(&first, &config.snapshot()));
    assert!(sum > 0.0);
}
