//! Failures a hostile or careless caller found in the core, one test each:
//! ceilings on capacities and counters, clocks that jump out of range, a
//! move that overflows, and rollbacks to where the configuration already
//! is. Each failed before its fix.

use hotpath::{
    AdaptiveEngine, AdaptiveEngineConfig, AtomicConfig, AuditDetails, AuditQueue, ConfigError,
    EngineEvent, EventType, ManualClock, ParamVec, Proposal, SafeModeReason, SafetyExecutor,
    TelemetryDigest, Violation, MAX_AUDIT_CAPACITY, MAX_AUDIT_SEQ, MAX_TIME_US,
};
use std::sync::Arc;

fn config(values: &[f64]) -> Arc<AtomicConfig> {
    Arc::new(AtomicConfig::new(ParamVec::from_slice(values)))
}

fn update(d: f64) -> Proposal {
    Proposal::Update {
        iteration: 1,
        delta: ParamVec::from_slice(&[d]),
        gradient_estimate: ParamVec::new(),
    }
}

fn events(ex: &SafetyExecutor<ManualClock>) -> Vec<AuditDetails> {
    std::iter::from_fn(|| ex.audit_queue().try_dequeue())
        .map(|e| e.details)
        .collect()
}

#[test]
fn capacities_beyond_their_ceiling_are_errors_not_aborts() {
    for capacity in [MAX_AUDIT_CAPACITY + 1, 1 << 32, usize::MAX] {
        assert!(matches!(
            AuditQueue::try_new(capacity),
            Err(ConfigError::CapacityTooLarge { .. })
        ));
        let built = SafetyExecutor::builder(config(&[0.5]))
            .audit_capacity(capacity)
            .build();
        assert!(matches!(built, Err(ConfigError::CapacityTooLarge { .. })));
        let settings = AdaptiveEngineConfig {
            audit_capacity: capacity,
            ..AdaptiveEngineConfig::bounded(vec![(0.0, 1.0)])
        };
        assert!(matches!(
            settings.validate(1),
            Err(hotpath::EngineError::Config(ConfigError::InvalidField {
                field: "audit_capacity",
                ..
            }))
        ));
        // The fail-closed constructor fails closed instead of aborting.
        let engine = AdaptiveEngine::new(settings, ParamVec::from_slice(&[0.5]));
        assert!(engine.misconfiguration().is_some());
    }
    assert_eq!(AuditQueue::new(usize::MAX).capacity(), MAX_AUDIT_CAPACITY);
}

#[test]
fn audit_numbering_and_restored_counters_have_ceilings() {
    let start = SafetyExecutor::builder(config(&[0.5]))
        .audit_sequence_start(u64::MAX)
        .build();
    assert_eq!(
        start.map(|_| ()),
        Err(ConfigError::BeyondCeiling {
            what: "audit_sequence_start",
            got: u64::MAX
        })
    );
    let mut ex = SafetyExecutor::builder(config(&[0.5]))
        .clock(ManualClock::new(0))
        .build()
        .unwrap();
    let state = ex.export_state();
    let restore = |state: hotpath::ExecutorState| {
        let again = Arc::new(AtomicConfig::with_generation(
            state.live.params.clone(),
            state.live.generation,
        ));
        SafetyExecutor::builder(again)
            .restore(state)
            .build()
            .map(|_| ())
    };
    let mut bad = state.clone();
    bad.next_audit_seq = MAX_AUDIT_SEQ + 1;
    assert!(matches!(
        restore(bad),
        Err(ConfigError::InvalidState { .. })
    ));
    let mut bad = state.clone();
    bad.regressions_since_rollback = u32::MAX;
    assert!(matches!(
        restore(bad),
        Err(ConfigError::InvalidState { .. })
    ));
    assert!(restore(state).is_ok());
}

#[test]
fn a_clock_reading_out_of_range_fails_safe_and_recovers() {
    let clock = ManualClock::new(1_000_000);
    let mut ex = SafetyExecutor::builder(config(&[0.5]))
        .clock(clock.clone())
        .build()
        .unwrap();
    ex.apply(update(0.01)).unwrap();
    clock.set(u64::MAX); // one glitched reading
    assert!(matches!(
        ex.apply(update(0.01)),
        Err(Violation::InSafeMode {
            reason: SafeModeReason::ClockFault,
            ..
        })
    ));
    assert_eq!(ex.now_us(), 1_000_000, "the last good time is kept");
    clock.set(2_000_000); // the clock is back
    assert!(ex.apply(update(0.01)).is_ok(), "changes resume");
    assert_eq!(ex.stats().clock_faults, 2);
    let trail: Vec<EventType> = std::iter::from_fn(|| ex.audit_queue().try_dequeue())
        .map(|e| e.event_type())
        .collect();
    let entered = trail.iter().position(|t| *t == EventType::SafeModeEntered);
    let exited = trail.iter().position(|t| *t == EventType::SafeModeExited);
    assert!(entered < exited && entered.is_some(), "{trail:?}");
    assert!(!ex.control_safety().is_latched());
    // No time from the glitch was stored: the rate window admits at once.
    assert!(ex.next_apply_at() <= 2_100_000);
    let _ = MAX_TIME_US;
}

#[test]
fn a_move_that_overflows_is_out_of_bounds_not_a_large_step() {
    let mut ex = SafetyExecutor::builder(config(&[f64::MAX]))
        .clock(ManualClock::new(0))
        .build()
        .unwrap();
    assert!(matches!(
        ex.apply(update(f64::MAX)),
        Err(Violation::OutOfBounds { index: 0, value, .. }) if value == f64::INFINITY
    ));
}

#[test]
fn a_rollback_to_where_the_config_already_is_publishes_and_counts_nothing() {
    let clock = ManualClock::new(0);
    let config = config(&[0.5]);
    let mut ex = SafetyExecutor::builder(config.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    ex.set_baseline().unwrap();
    events(&ex);
    for _ in 0..20 {
        clock.advance(1_000);
        let receipt = ex.rollback().unwrap();
        assert_eq!(
            (receipt.new_generation, receipt.audit_seq),
            (0, None),
            "{receipt:?}"
        );
    }
    assert_eq!(config.generation(), 0);
    assert!(events(&ex).is_empty());
    assert!(!ex.control_safety().is_latched(), "no circuit breaker");
    assert_eq!(ex.stats().rollbacks, 0);
    // Away from the baseline, a rollback is real again.
    clock.advance(10_000_000);
    ex.apply(update(0.05)).unwrap();
    assert!(ex.rollback().unwrap().audit_seq.is_some());
}

#[test]
fn a_persistent_emergency_at_the_baseline_does_not_churn() {
    let clock = ManualClock::new(0);
    let settings = AdaptiveEngineConfig {
        spsa: hotpath::SpsaConfig {
            eval_window_digests: 1,
            ..Default::default()
        },
        ..AdaptiveEngineConfig::bounded(vec![(0.0, 1.0)])
    };
    let mut engine =
        AdaptiveEngine::with_clock(settings, ParamVec::from_slice(&[0.5]), clock.clone()).unwrap();
    let generation = engine.config().generation();
    for _ in 0..50 {
        clock.advance(100_000);
        let digest = TelemetryDigest::new(100_000, 1.0, 10).with_constraint_margin(-10.0);
        engine.step(digest).unwrap();
    }
    assert_eq!(engine.config().generation(), generation);
    let audit = engine.executor().audit_queue();
    let trail: Vec<AuditDetails> = std::iter::from_fn(|| audit.try_dequeue())
        .map(|e| e.details)
        .collect();
    let emergencies = trail
        .iter()
        .filter(|d| {
            matches!(
                d,
                AuditDetails::Engine {
                    event: EngineEvent::ConstraintViolated {
                        emergency: true,
                        ..
                    }
                }
            )
        })
        .count();
    assert_eq!(emergencies, 1, "{trail:?}");
    assert!(!trail
        .iter()
        .any(|d| matches!(d, AuditDetails::RolledBack { .. })));
}
