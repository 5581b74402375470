//! The governed actuator at work: reader threads on the hot path, one
//! governed writer running a scripted mix of good and bad proposals, and an
//! audit consumer printing every decision as it happens.
//!
//! ```text
//! cargo run --release --example governed
//! ```

use hotpath::{
    AtomicConfig, Guardrails, ParamVec, Proposal, RollbackPolicy, SafetyExecutor, Violation,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Knobs: batch size in [1, 512], worker count in [1, 64].
const INITIAL: [f64; 2] = [16.0, 8.0];
const BOUNDS: [(f64, f64); 2] = [(1.0, 512.0), (1.0, 64.0)];

fn update(iteration: u64, delta: [f64; 2]) -> Proposal {
    Proposal::Update {
        iteration,
        delta: ParamVec::from_slice(&delta),
        gradient_estimate: ParamVec::zeros(2),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&INITIAL)));
    let mut executor = SafetyExecutor::builder(config.clone())
        .guardrails(Guardrails::preset_balanced().with_bounds(BOUNDS.to_vec()))
        .rollback_policy(RollbackPolicy {
            min_stable_time_us: 300_000,
            ..RollbackPolicy::preset_balanced()
        })
        .build()?;
    let started = Instant::now();

    // Hot-path readers: one ConfigReader per thread, one atomic load per read.
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (config, stop) = (config.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut reader = config.reader();
                let (mut reads, mut changes, mut last) = (0u64, 0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    let snap = reader.get();
                    // The "work" a request would do with its knobs.
                    std::hint::black_box(snap.params[0] * snap.params[1]);
                    if snap.generation != last {
                        changes += 1;
                        last = snap.generation;
                    }
                    reads += 1;
                }
                (reads, changes)
            })
        })
        .collect();

    // The audit consumer: prints each decision as a line.
    let audit = executor.audit_queue().clone();
    let printer = {
        let stop = stop.clone();
        std::thread::spawn(move || loop {
            match audit.try_dequeue() {
                Some(event) => println!("audit  {event}"),
                None if stop.load(Ordering::Relaxed) => break,
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        })
    };

    let mut refusals: BTreeMap<&'static str, u32> = BTreeMap::new();
    let mut count = |result: Result<_, Violation>| {
        if let Err(v) = result {
            *refusals.entry(violation_name(&v)).or_default() += 1;
        }
    };
    let pause = |ms| std::thread::sleep(Duration::from_millis(ms));

    executor.set_baseline()?;
    for (objective, generation) in [(10.0, 0), (10.2, 0), (9.8, 0)] {
        executor.report_outcome(generation, objective)?;
    }
    // Below the lower bound (16 − 20 < 1): rejected, never clamped.
    count(executor.apply(update(1, [-20.0, 0.0])).map(|_| ()));
    // Good steps, each 120 ms apart (Balanced: at least 100 ms).
    for i in 2..=5 {
        pause(120);
        count(executor.apply(update(i, [16.0, 1.0])).map(|_| ()));
    }
    // Too soon after the last apply, too large (> 10% of the 511-wide
    // range), not a number.
    count(executor.apply(update(6, [8.0, 0.0])).map(|_| ()));
    pause(120);
    count(executor.apply(update(7, [80.0, 0.0])).map(|_| ()));
    count(executor.apply(update(8, [f64::NAN, 0.0])).map(|_| ()));
    // SPSA-style probes around the centre: they do not spend the budget.
    pause(120);
    let probe = |id, d: [f64; 2], plus: bool| {
        let delta = ParamVec::from_slice(&d);
        if plus {
            Proposal::ApplyPlus {
                perturbation_id: id,
                delta,
            }
        } else {
            Proposal::ApplyMinus {
                perturbation_id: id,
                delta,
            }
        }
    };
    count(executor.apply(probe(1, [20.0, 2.0], true)).map(|_| ()));
    pause(120);
    count(executor.apply(probe(1, [-40.0, -4.0], false)).map(|_| ()));
    // Kill switch: everything but rollback is refused until resume.
    pause(120);
    executor.freeze();
    count(executor.apply(update(9, [20.0, 2.0])).map(|_| ()));
    executor.resume()?;
    // The latest centre keeps regressing: automatic rollback to the baseline.
    pause(120);
    let generation = executor.apply(update(10, [20.0, 2.0]))?.new_generation;
    for _ in 0..3 {
        let receipt = executor.report_outcome(generation, 14.0)?;
        if let Some(rollback) = receipt.rollback {
            println!(
                "writer rolled back automatically to gen {}",
                rollback.new_generation
            );
        }
    }
    count(executor.apply(update(11, [4.0, 0.0])).map(|_| ())); // stabilising
    pause(400);
    count(executor.apply(update(12, [4.0, 0.0])).map(|_| ()));

    pause(50);
    stop.store(true, Ordering::Relaxed);
    let mut total_reads = 0;
    for (i, reader) in readers.into_iter().enumerate() {
        let (reads, changes) = reader.join().map_err(|_| "reader panicked")?;
        println!("reader {i}: {reads} reads, saw {changes} generation changes");
        total_reads += reads;
    }
    printer.join().map_err(|_| "printer panicked")?;
    let stats = executor.stats();
    let snap = executor.snapshot();
    println!(
        "\nafter {:.1} s: {} applied, {} refused {:?}, {} rollback(s), {} reads on the hot path",
        started.elapsed().as_secs_f64(),
        stats.applied,
        stats.refused,
        refusals,
        stats.rollbacks,
        total_reads
    );
    println!(
        "live config: gen {} batch_size={} workers={}",
        snap.generation, snap.params[0], snap.params[1]
    );
    Ok(())
}

fn violation_name(v: &Violation) -> &'static str {
    match v {
        Violation::DeltaTooLarge { .. } => "DeltaTooLarge",
        Violation::RateLimitExceeded { .. } => "RateLimitExceeded",
        Violation::NonFinite { .. } => "NonFinite",
        Violation::OutOfBounds { .. } => "OutOfBounds",
        Violation::InSafeMode { .. } => "InSafeMode",
        Violation::StabilizationPending { .. } => "StabilizationPending",
        Violation::ExcursionTooLarge { .. } => "ExcursionTooLarge",
        _ => "other",
    }
}
