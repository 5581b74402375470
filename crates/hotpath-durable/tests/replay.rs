//! Property: random executor operation sequences with the log attached;
//! after shutdown, replaying the log's `Started`, `Applied` and `RolledBack`
//! events reproduces the executor's final generation and parameters, bit
//! for bit, and every change in the log moves the generation by one.

use hotpath::{
    AtomicConfig, AuditDetails, EventType, Guardrails, ManualClock, ParamVec, Proposal,
    SafetyExecutor,
};
use hotpath_durable::audit_log::{verify, AuditLog, AuditLogOptions, LogReader};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use std::sync::Arc;

#[derive(Debug, Clone)]
enum Op {
    /// Kind 0: ApplyPlus, 1: ApplyMinus, 2: Update.
    Apply {
        kind: u8,
        delta: [f64; 2],
    },
    Rollback,
    SetBaseline,
    Outcome {
        objective: f64,
        stale: bool,
    },
    Freeze,
    Resume,
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    // Mostly within the step limit (0.1 of the range), some too large,
    // some NaN.
    let component = || {
        prop_oneof![
            8 => -0.1f64..0.1,
            1 => -0.5f64..0.5,
            1 => Just(f64::NAN),
        ]
    };
    prop_oneof![
        10 => (0u8..3, component(), component())
            .prop_map(|(kind, a, b)| Op::Apply { kind, delta: [a, b] }),
        1 => Just(Op::Rollback),
        1 => Just(Op::SetBaseline),
        3 => (0.5f64..2.0, prop::bool::weighted(0.2))
            .prop_map(|(objective, stale)| Op::Outcome { objective, stale }),
        1 => Just(Op::Freeze),
        1 => Just(Op::Resume),
        8 => prop_oneof![3 => 0u64..300_000, 1 => 0u64..70_000_000].prop_map(Op::Advance),
    ]
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5, 0.5])));
    let clock = ManualClock::new(0);
    let mut executor = SafetyExecutor::builder(config)
        .guardrails(Guardrails::default().with_bounds(vec![(0.0, 1.0), (0.0, 1.0)]))
        .clock(clock.clone())
        .audit_capacity(4096)
        .build()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let log = AuditLog::open(
        dir.path(),
        AuditLogOptions::default(),
        executor.audit_queue().clone(),
    )
    .map_err(|e| TestCaseError::fail(e.to_string()))?;

    for (i, op) in ops.iter().enumerate() {
        let id = i as u64;
        // Refusals are expected; what matters is what the log says.
        match op {
            Op::Apply { kind, delta } => {
                let delta = ParamVec::from_slice(delta);
                let proposal = match kind {
                    0 => Proposal::ApplyPlus {
                        perturbation_id: id,
                        delta,
                    },
                    1 => Proposal::ApplyMinus {
                        perturbation_id: id,
                        delta,
                    },
                    _ => Proposal::Update {
                        iteration: id,
                        delta,
                        gradient_estimate: ParamVec::new(),
                    },
                };
                let _ = executor.apply(proposal);
            }
            Op::Rollback => {
                let _ = executor.rollback();
            }
            Op::SetBaseline => {
                let _ = executor.set_baseline();
            }
            Op::Outcome { objective, stale } => {
                let generation = executor.centre_generation() + u64::from(*stale);
                let _ = executor.report_outcome(generation, *objective);
            }
            Op::Freeze => executor.freeze(),
            Op::Resume => {
                let _ = executor.resume();
            }
            Op::Advance(us) => clock.advance(*us),
        }
    }
    let expected = executor.snapshot();
    prop_assert_eq!(executor.stats().audit_dropped, 0);
    drop(executor);
    let stats = log
        .shutdown()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;

    let report = verify(dir.path()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(report.events, stats.events_written);
    let mut generation = None;
    let mut params = ParamVec::new();
    for record in LogReader::open(dir.path()).map_err(|e| TestCaseError::fail(e.to_string()))? {
        let record = record.map_err(|e| TestCaseError::fail(e.to_string()))?;
        if !matches!(
            record.event_type,
            EventType::Started | EventType::Applied | EventType::RolledBack
        ) {
            continue;
        }
        let event = record
            .audit_event()
            .map_err(|e| TestCaseError::fail(format!("seq {}: {e}", record.seq)))?;
        match event.details {
            AuditDetails::Started { params: p } => {
                prop_assert_eq!(generation, None, "a second Started");
                params = p;
            }
            AuditDetails::Applied {
                params: p,
                previous_generation,
                ..
            }
            | AuditDetails::RolledBack {
                params: p,
                previous_generation,
                ..
            } => {
                prop_assert_eq!(generation, Some(previous_generation));
                prop_assert_eq!(event.generation, previous_generation + 1);
                params = p;
            }
            _ => unreachable!("filtered by type"),
        }
        generation = Some(event.generation);
    }
    prop_assert_eq!(generation, Some(expected.generation));
    prop_assert!(
        params.bit_eq(&expected.params),
        "replayed {:?}, executor has {:?}",
        params,
        expected.params
    );
    Ok(())
}

proptest! {
    // Failing cases are kept next to this file (`replay.proptest-regressions`)
    // and run first next time.
    #![proptest_config(ProptestConfig {
        cases: 128,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn replaying_the_log_reproduces_the_final_config(ops in prop::collection::vec(op(), 1..150)) {
        run(&ops)?;
    }
}
