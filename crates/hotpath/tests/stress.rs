//! Real threads: readers on every core while the executor applies, half of
//! them through `ConfigReader::get`, half through the shared
//! `AtomicConfig::snapshot`. Every published vector has all values equal,
//! so a torn read would show mixed values; generations and values must
//! never go backwards for a reader.

use hotpath::{AtomicConfig, Guardrails, ManualClock, ParamVec, Proposal, SafetyExecutor};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const N: usize = 16;
const APPLIES: u64 = 50_000;

#[test]
fn readers_see_whole_monotonic_snapshots_while_the_executor_applies() {
    let config = Arc::new(AtomicConfig::new(ParamVec::zeros(N)));
    let clock = ManualClock::new(0);
    let guardrails = Guardrails {
        min_interval_us: 0,
        max_updates_per_second: 1000.0,
        max_cumulative_delta_per_minute: 1.0,
        ..Guardrails::default()
    };
    let mut executor = SafetyExecutor::builder(config.clone())
        .guardrails(guardrails)
        .clock(clock.clone())
        .build()
        .expect("valid settings");
    let done = Arc::new(AtomicBool::new(false));
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let readers: Vec<_> = (0..threads)
        .map(|thread| {
            let config = config.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                let mut reader = config.reader();
                let (mut last_generation, mut last_value, mut reads) = (0, 0.0, 0u64);
                while !done.load(Ordering::Relaxed) {
                    let shared;
                    let snap = if thread % 2 == 1 {
                        shared = config.snapshot();
                        &*shared
                    } else {
                        reader.get()
                    };
                    let first = snap.params[0];
                    assert!(
                        snap.params.iter().all(|v| v.to_bits() == first.to_bits()),
                        "torn snapshot at generation {}: {:?}",
                        snap.generation,
                        snap.params
                    );
                    assert!(snap.generation >= last_generation);
                    assert!(first >= last_value);
                    last_generation = snap.generation;
                    last_value = first;
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let audit = executor.audit_queue().clone();
    for _ in 0..APPLIES {
        clock.advance(1_000);
        executor
            .apply(Proposal::Update {
                iteration: 0,
                delta: ParamVec::from_slice(&[1e-6; N]),
                gradient_estimate: ParamVec::zeros(N),
            })
            .expect("within the guardrails");
        while audit.try_dequeue().is_some() {}
    }
    done.store(true, Ordering::Relaxed);
    let reads: u64 = readers.into_iter().map(|t| t.join().expect("reader")).sum();
    assert!(reads > 0);
    assert_eq!(config.generation(), APPLIES);
}
