//! The executor's rules, one scenario each, through the public API only: a
//! `SafetyExecutor` on a `ManualClock`, judged by its receipts, refusals,
//! audit events, statistics and exported state. (The unit tests that need
//! the executor's private helpers stay in `src/executor.rs`.)

use hotpath::{
    AtomicConfig, AuditDetails, AuditEvent, Clock, ConfigError, EventType, ExecutorState,
    Guardrails, ManualClock, NoChangeReason, OutcomeVerdict, ParamVec, Proposal, RateRule,
    RollbackPolicy, SafeModeExit, SafeModeReason, SafetyExecutor, Violation,
};
use std::sync::Arc;

// Times are µs of the injected clock (crate docs, "Units"). The executor's
// own constants are private; these are the values its public docs state.
const MS: u64 = 1_000;
const SECOND_US: u64 = 1_000_000;
/// The circuit breaker counts rollbacks "in any hour"
/// (`RollbackPolicy::max_rollbacks_per_hour`).
const HOUR_US: u64 = 60 * 60 * SECOND_US;
/// `BudgetExhausted` exits "by timer, when the budget window has cleared
/// (65 s)" (`SafeModeReason` docs): 13 buckets of 5 s.
const BUDGET_CLEAR_US: u64 = 65 * SECOND_US;

struct Rig {
    ex: SafetyExecutor<ManualClock>,
    clock: ManualClock,
    config: Arc<AtomicConfig>,
}

fn rig_with(initial: &[f64], guardrails: Guardrails, policy: RollbackPolicy, cap: usize) -> Rig {
    let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(initial)));
    let clock = ManualClock::new(1_000_000);
    let ex = SafetyExecutor::builder(config.clone())
        .guardrails(guardrails)
        .rollback_policy(policy)
        .clock(clock.clone())
        .audit_capacity(cap)
        .build()
        .unwrap();
    Rig { ex, clock, config }
}

fn rig(initial: &[f64], guardrails: Guardrails) -> Rig {
    rig_with(initial, guardrails, RollbackPolicy::default(), 4096)
}

fn update(delta: &[f64]) -> Proposal {
    Proposal::Update {
        iteration: 7,
        delta: ParamVec::from_slice(delta),
        gradient_estimate: ParamVec::zeros(delta.len()),
    }
}

fn plus(delta: &[f64]) -> Proposal {
    Proposal::ApplyPlus {
        perturbation_id: 3,
        delta: ParamVec::from_slice(delta),
    }
}

fn minus(delta: &[f64]) -> Proposal {
    Proposal::ApplyMinus {
        perturbation_id: 3,
        delta: ParamVec::from_slice(delta),
    }
}

fn drain(ex: &SafetyExecutor<ManualClock>) -> Vec<AuditEvent> {
    std::iter::from_fn(|| ex.audit_queue().try_dequeue()).collect()
}

fn types(events: &[AuditEvent]) -> Vec<EventType> {
    events.iter().map(AuditEvent::event_type).collect()
}

/// A fast rig: no interval, 1000/s, so rules other than rate can be hit.
fn permissive() -> Guardrails {
    Guardrails {
        min_interval_us: 0,
        max_updates_per_second: 1000.0,
        ..Guardrails::default()
    }
}

#[test]
fn accepted_update_publishes_and_audits_before() {
    let mut r = rig(&[0.5, 0.5], Guardrails::default());
    let receipt = r.ex.apply(update(&[0.01, -0.01])).unwrap();
    assert_eq!((receipt.old_generation, receipt.new_generation), (0, 1));
    assert_eq!(r.config.load().params[..], [0.51, 0.49]);
    assert_eq!(r.ex.centre(), &[0.51, 0.49]);
    let events = drain(&r.ex);
    assert_eq!(types(&events), [EventType::Started, EventType::Applied]);
    assert_eq!(events[1].seq, 1);
    assert_eq!(events[1].generation, 1);
    assert_eq!(receipt.audit_seq, Some(1));
}

#[test]
fn no_change_is_a_no_op() {
    let mut r = rig(&[0.5], Guardrails::default());
    let receipt =
        r.ex.apply(Proposal::NoChange {
            reason: NoChangeReason::CollectingSamples,
        })
        .unwrap();
    assert_eq!(receipt.new_generation, 0);
    assert_eq!(receipt.audit_seq, None);
    assert_eq!(types(&drain(&r.ex)), [EventType::Started]);
}

#[test]
fn malformed_proposals_are_refused_untouched() {
    let mut r = rig(&[0.5, 0.5], Guardrails::default());
    let cases = [
        (
            update(&[0.01]),
            Violation::WrongLength {
                expected: 2,
                got: 1,
            },
        ),
        (
            update(&[0.01, 0.0, 0.0]),
            Violation::WrongLength {
                expected: 2,
                got: 3,
            },
        ),
        (update(&[0.0, f64::NAN]), Violation::NonFinite { index: 1 }),
        (
            update(&[f64::INFINITY, 0.0]),
            Violation::NonFinite { index: 0 },
        ),
    ];
    for (proposal, expected) in cases {
        assert_eq!(r.ex.apply(proposal), Err(expected));
    }
    assert_eq!(r.config.generation(), 0);
    let events = drain(&r.ex);
    assert_eq!(events.len(), 5);
    assert!(events[1..]
        .iter()
        .all(|e| e.event_type() == EventType::Rejected));
    assert_eq!(r.ex.stats().refused, 4);
}

#[test]
fn step_size_is_a_fraction_of_the_range() {
    let g = Guardrails::default().with_bounds(vec![(0.0, 1000.0)]);
    let mut r = rig(&[500.0], g);
    assert_eq!(
        r.ex.apply(update(&[150.0])),
        Err(Violation::DeltaTooLarge {
            index: 0,
            delta: 0.15,
            limit: 0.1
        })
    );
    assert!(r.ex.apply(update(&[100.0])).is_ok());
    assert_eq!(r.config.load().params[0], 600.0);
}

#[test]
fn out_of_bounds_is_rejected_not_clamped() {
    let g = Guardrails::default().with_bounds(vec![(0.0, 1.0)]);
    let mut r = rig(&[0.95], g);
    assert_eq!(
        r.ex.apply(update(&[0.08])),
        Err(Violation::OutOfBounds {
            index: 0,
            value: 0.95 + 0.08,
            min: 0.0,
            max: 1.0
        })
    );
    assert_eq!(r.config.load().params[0], 0.95);
}

#[test]
fn min_interval_then_per_second_window() {
    let mut r = rig(&[0.0], Guardrails::default());
    r.ex.apply(plus(&[0.01])).unwrap();
    r.clock.advance(50 * MS);
    assert_eq!(
        r.ex.apply(minus(&[-0.02])),
        Err(Violation::RateLimitExceeded {
            rule: RateRule::MinInterval,
            retry_at_us: 1_100_000
        })
    );
    r.clock.advance(50 * MS);
    assert!(r.ex.apply(minus(&[-0.02])).is_ok());

    let g = Guardrails {
        min_interval_us: 0,
        max_updates_per_second: 3.0,
        ..Guardrails::default()
    };
    let mut r = rig(&[0.0], g);
    let start = r.clock.now_us();
    for i in 0..3 {
        let d = if i % 2 == 0 { 0.01 } else { -0.01 };
        r.ex.apply(plus(&[d])).unwrap();
        r.clock.advance(MS);
    }
    assert_eq!(
        r.ex.apply(plus(&[0.01])),
        Err(Violation::RateLimitExceeded {
            rule: RateRule::PerSecond,
            retry_at_us: start + 1_000_000
        })
    );
    assert_eq!(r.ex.next_apply_at(), start + 1_000_000);
    r.clock.set(start + 1_000_000);
    assert!(r.ex.apply(plus(&[0.01])).is_ok());
}

#[test]
fn probes_stay_near_the_centre_and_spend_nothing() {
    let mut r = rig(&[0.5], permissive());
    // +c, then through the centre to −c in two legal steps, many times.
    for _ in 0..50 {
        r.ex.apply(plus(&[0.05])).unwrap();
        r.ex.apply(minus(&[-0.05])).unwrap();
        r.ex.apply(minus(&[-0.05])).unwrap();
        r.ex.apply(update(&[0.05])).unwrap();
        r.clock.advance(MS);
    }
    assert_eq!(r.ex.centre(), &[0.5]);
    assert!(!r.ex.control_safety().is_latched());
    assert!((r.ex.budget_remaining(0) - 0.5).abs() < 1e-9);
    // A probe may not stray further than one step from the centre.
    r.ex.apply(plus(&[0.1])).unwrap();
    assert_eq!(
        r.ex.apply(plus(&[0.05])),
        Err(Violation::ExcursionTooLarge {
            index: 0,
            excursion: 0.15000000000000002,
            limit: 0.1
        })
    );
}

#[test]
fn direction_flips_latch_thrashing_with_cooldown() {
    let mut r = rig(&[0.5], permissive());
    let mut d = 0.01;
    for _ in 0..4 {
        r.ex.apply(update(&[d])).unwrap(); // first move + 3 reversals
        d = -d;
        r.clock.advance(MS);
    }
    let now = r.clock.now_us();
    assert_eq!(
        r.ex.apply(update(&[d])),
        Err(Violation::DirectionFlipViolation {
            index: 0,
            flips: 4,
            limit: 3,
            cooldown_until_us: now + 30_000_000
        })
    );
    assert!(matches!(
        r.ex.apply(update(&[-d])),
        Err(Violation::InSafeMode {
            reason: SafeModeReason::Thrashing,
            until_us: Some(_)
        })
    ));
    r.clock.set(now + 30_000_000);
    // Cooldown over: moving on in the last direction passes, while a
    // reversal still counts against the same minute.
    assert!(matches!(
        r.ex.apply(update(&[d])),
        Err(Violation::DirectionFlipViolation { .. })
    ));
    r.clock.set(now + 60_000_000);
    assert!(r.ex.apply(update(&[-d])).is_ok());
    let t = types(&drain(&r.ex));
    assert!(t.contains(&EventType::SafeModeEntered));
    assert!(t.contains(&EventType::SafeModeExited));
}

#[test]
fn budget_latches_until_the_window_clears() {
    // Steps of 0.099 (0.1 would round above the step limit at 0.3).
    let mut r = rig(&[0.0], permissive());
    for _ in 0..5 {
        r.ex.apply(update(&[0.099])).unwrap();
        r.clock.advance(MS);
    }
    let now = r.clock.now_us();
    let err = r.ex.apply(update(&[0.099])).unwrap_err();
    assert!(matches!(
        err,
        Violation::CumulativeDeltaViolation { index: 0, .. }
    ));
    assert_eq!(
        r.ex.control_safety()
            .exit_of(SafeModeReason::BudgetExhausted),
        Some(SafeModeExit::At(now + BUDGET_CLEAR_US))
    );
    r.clock.set(now + BUDGET_CLEAR_US);
    assert!(r.ex.apply(update(&[0.099])).is_ok());
}

#[test]
fn freeze_blocks_everything_but_rollback_until_resume() {
    let mut r = rig(&[0.5], Guardrails::default());
    r.ex.set_baseline().unwrap();
    r.ex.apply(update(&[0.05])).unwrap();
    r.ex.freeze();
    r.clock.advance(10_000_000);
    assert_eq!(
        r.ex.apply(update(&[0.01])),
        Err(Violation::InSafeMode {
            reason: SafeModeReason::Manual,
            until_us: None
        })
    );
    let receipt = r.ex.rollback().unwrap();
    assert_eq!(receipt.new_generation, 2);
    assert!(r.config.load().params.bit_eq(&[0.5]));
    let cleared = r.ex.resume().unwrap();
    assert!(cleared.contains(SafeModeReason::Manual));
    r.clock
        .advance(RollbackPolicy::default().min_stable_time_us);
    assert!(r.ex.apply(update(&[0.01])).is_ok());
}

#[test]
fn rollback_needs_a_baseline_and_restores_bits() {
    let g = Guardrails {
        min_interval_us: 0,
        ..Guardrails::default()
    };
    let mut r = rig(&[0.1 + 0.2, -0.0], g);
    assert_eq!(r.ex.rollback(), Err(Violation::NoBaseline));
    r.ex.set_baseline().unwrap();
    r.ex.apply(update(&[0.07, 0.03])).unwrap();
    let receipt = r.ex.rollback().unwrap();
    assert_eq!((receipt.old_generation, receipt.new_generation), (1, 2));
    assert!(r.config.load().params.bit_eq(&[0.1 + 0.2, -0.0]));
    assert_eq!(r.ex.centre_generation(), 2);
    // Stabilisation hold after a rollback.
    let err = r.ex.apply(update(&[0.01, 0.0])).unwrap_err();
    assert_eq!(
        err,
        Violation::StabilizationPending {
            retry_at_us: r.clock.now_us() + 5_000_000
        }
    );
}

#[test]
fn rollback_circuit_breaker_needs_manual_resume() {
    let mut r = rig(&[0.5], Guardrails::default());
    r.ex.set_baseline().unwrap();
    // Each rollback returns from a real move (one to where the config
    // already is changes nothing and does not count).
    for i in 0..5 {
        r.clock.advance(6 * SECOND_US); // past the 5 s stabilisation hold
        r.ex.apply(update(&[0.01])).unwrap();
        let receipt = r.ex.rollback().unwrap();
        assert_eq!(receipt.circuit_breaker_tripped, i == 4, "rollback {i}");
    }
    r.clock.advance(2 * HOUR_US);
    assert!(matches!(
        r.ex.apply(update(&[0.01])),
        Err(Violation::InSafeMode {
            reason: SafeModeReason::RollbackCircuitBreaker,
            until_us: None
        })
    ));
    r.ex.resume().unwrap();
    assert!(r.ex.apply(update(&[0.01])).is_ok());
}

#[test]
fn regressions_roll_back_then_latch_across_rollbacks() {
    let g = Guardrails {
        min_interval_us: 0,
        ..Guardrails::default()
    };
    let policy = RollbackPolicy {
        min_stable_time_us: 0,
        ..RollbackPolicy::default()
    };
    let mut r = rig_with(&[0.5], g, policy, 4096);
    assert_eq!(
        r.ex.report_outcome(0, 1.0).unwrap().verdict,
        OutcomeVerdict::Unjudged
    );
    r.ex.set_baseline().unwrap();
    assert_eq!(
        r.ex.report_outcome(0, 1.0).unwrap().verdict,
        OutcomeVerdict::BaselineSample
    );
    r.ex.report_outcome(0, 1.1).unwrap();
    let b = r.ex.baseline().unwrap();
    assert_eq!(b.reports(), 2);
    assert!((b.mean() - 1.05).abs() < 1e-12);
    // Allowance: max(2 · sd, 1% of 1.05) = 2 · 0.0707 = 0.141.
    r.clock.advance(MS);
    let g = r.ex.apply(update(&[0.05])).unwrap().new_generation;
    assert_eq!(
        r.ex.report_outcome(g, 1.15).unwrap().verdict,
        OutcomeVerdict::Acceptable
    );
    for k in 1..=3 {
        let o = r.ex.report_outcome(g, 2.0).unwrap();
        assert_eq!(o.verdict, OutcomeVerdict::Regressed { consecutive: k });
        assert_eq!(o.rollback.is_some(), k == 3);
        assert!(!o.safe_mode_latched);
    }
    // Rolled back; the next step regresses too, and the count carries
    // across the rollback up to regression_count_limit (6).
    r.clock.advance(MS);
    let g = r.ex.apply(update(&[-0.05])).unwrap().new_generation;
    for k in 4..=6 {
        let o = r.ex.report_outcome(g, 2.0).unwrap();
        assert_eq!(o.verdict, OutcomeVerdict::Regressed { consecutive: k });
        assert_eq!(o.rollback.is_some(), k == 6);
        assert_eq!(o.safe_mode_latched, k == 6);
    }
    assert!(r
        .ex
        .control_safety()
        .reasons()
        .contains(SafeModeReason::Regressions));
}

#[test]
fn bad_outcome_reports_are_refused() {
    let mut r = rig(&[0.5], Guardrails::default());
    assert_eq!(
        r.ex.report_outcome(0, f64::NAN),
        Err(Violation::NonFiniteObjective)
    );
    assert_eq!(
        r.ex.report_outcome(5, 1.0),
        Err(Violation::StaleOutcome {
            reported: 5,
            centre: 0
        })
    );
    // A probe does not move the centre: reports still name the centre.
    r.ex.apply(plus(&[0.05])).unwrap();
    assert!(r.ex.report_outcome(0, 1.0).is_ok());
}

#[test]
fn repeated_malformed_proposals_latch() {
    let mut r = rig(
        &[0.5],
        Guardrails {
            violation_limit: 3,
            ..Guardrails::default()
        },
    );
    for _ in 0..3 {
        assert!(r.ex.apply(update(&[0.5])).is_err());
    }
    assert!(r
        .ex
        .control_safety()
        .reasons()
        .contains(SafeModeReason::RepeatedViolations));
}

#[test]
fn full_audit_queue_refuses_latches_and_recovers() {
    // Capacity 16: ordinary events stop at 14, safe mode exits at ≤ 8.
    let mut r = rig_with(&[0.0], permissive(), RollbackPolicy::default(), 16);
    let mut applied = 0;
    let err = loop {
        let d = if applied % 2 == 0 { 0.01 } else { -0.01 };
        match r.ex.apply(plus(&[d])) {
            Ok(_) => applied += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(err, Violation::AuditQueueFull { capacity: 16 });
    assert_eq!(applied, 13); // Started + 13 applies = 14 = threshold
    let generation = r.config.generation();
    // Refusals keep coming (and use the reserve) until it is exhausted.
    for _ in 0..5 {
        assert!(r.ex.apply(plus(&[0.0])).is_err());
    }
    assert_eq!(r.config.generation(), generation);
    assert!(r.ex.stats().audit_dropped > 0);
    // Drain: the next apply exits safe mode and passes.
    let first = drain(&r.ex);
    assert!(r.ex.apply(plus(&[0.0])).is_ok());
    let rest = drain(&r.ex);
    let all: Vec<_> = first.iter().chain(&rest).collect();
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.seq, i as u64, "gap-free sequence");
    }
    let rest_types = types(&rest);
    assert_eq!(
        rest_types,
        [
            EventType::EventsDropped,
            EventType::SafeModeExited,
            EventType::Applied
        ]
    );
    match rest[0].details {
        AuditDetails::EventsDropped { count } => assert_eq!(count, r.ex.stats().audit_dropped),
        _ => unreachable!(),
    }
}

#[test]
fn clock_going_backwards_is_clamped() {
    let mut r = rig(&[0.0], Guardrails::default());
    r.ex.apply(plus(&[0.01])).unwrap();
    r.clock.set(0);
    assert!(matches!(
        r.ex.apply(minus(&[-0.01])),
        Err(Violation::RateLimitExceeded {
            rule: RateRule::MinInterval,
            ..
        })
    ));
    assert_eq!(r.ex.stats().clock_regressions, 1);
}

#[test]
fn misconfiguration_fails_closed() {
    let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    let bad = Guardrails {
        max_delta_per_step: -1.0,
        ..Guardrails::default()
    };
    let mut ex = SafetyExecutor::new(config.clone(), bad);
    assert!(matches!(
        ex.misconfiguration(),
        Some(ConfigError::InvalidField { .. })
    ));
    assert!(matches!(
        ex.apply(update(&[0.01])),
        Err(Violation::InSafeMode {
            reason: SafeModeReason::Misconfigured,
            ..
        })
    ));
    assert!(ex.set_baseline().is_err());
    assert!(ex.rollback().is_err());
    ex.resume().unwrap();
    assert!(ex.apply(update(&[0.01])).is_err());
    assert_eq!(config.generation(), 0);
}

#[test]
fn builder_reports_each_error() {
    let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[2.0])));
    let bounded = |b: Vec<(f64, f64)>| {
        SafetyExecutor::builder(config.clone())
            .guardrails(Guardrails::default().with_bounds(b))
            .build()
            .map(|_| ())
    };
    assert_eq!(
        bounded(vec![(0.0, 1.0), (0.0, 1.0)]),
        Err(ConfigError::BoundsLength {
            expected: 1,
            got: 2
        })
    );
    assert_eq!(
        bounded(vec![(0.0, 1.0)]),
        Err(ConfigError::InitialOutOfBounds {
            index: 0,
            value: 2.0,
            min: 0.0,
            max: 1.0
        })
    );
    let _first = SafetyExecutor::builder(config.clone()).build().unwrap();
    assert_eq!(
        SafetyExecutor::builder(config.clone()).build().map(|_| ()),
        Err(ConfigError::WriterTaken)
    );
    assert_eq!(
        SafetyExecutor::builder(Arc::new(AtomicConfig::new(ParamVec::new())))
            .audit_capacity(0)
            .build()
            .map(|_| ()),
        Err(ConfigError::ZeroCapacity {
            what: "audit queue"
        })
    );
}

#[test]
fn exported_state_restores_exactly_under_another_clock() {
    let mut r = rig(&[0.5, 0.5], permissive());
    r.ex.set_baseline().unwrap();
    r.ex.report_outcome(0, 1.0).unwrap();
    r.ex.report_outcome(0, 1.2).unwrap();
    for d in [0.02, -0.02, 0.02] {
        r.ex.apply(update(&[d, d])).unwrap();
        r.clock.advance(10 * MS);
    }
    r.ex.rollback().unwrap();
    r.ex.freeze();
    let state = r.ex.export_state();
    assert_eq!(state.stabilizing_for_us, 5_000_000);
    assert_eq!(state.rollback_ages_us, vec![0]);
    assert_eq!(state.reversal_ages_us[0], vec![20 * MS, 10 * MS]);

    // A new process whose clock starts elsewhere (with a past longer
    // than every age in the state).
    let config = Arc::new(AtomicConfig::with_generation(
        state.live.params.clone(),
        state.live.generation,
    ));
    let clock = ManualClock::new(7_000_077);
    let mut restored = SafetyExecutor::builder(config)
        .guardrails(permissive())
        .clock(clock.clone())
        .audit_sequence_start(1000)
        .restore(state.clone())
        .build()
        .unwrap();
    let again = restored.export_state();
    assert_eq!(
        again,
        ExecutorState {
            next_audit_seq: 1001,
            ..state.clone()
        }
    );
    let event = restored.audit_queue().try_dequeue().unwrap();
    assert_eq!(event.seq, 1000);
    assert!(matches!(event.details, AuditDetails::Restored { .. }));
    // Still frozen, still stabilising after resume.
    assert!(restored.apply(update(&[0.01, 0.0])).is_err());
    restored.resume().unwrap();
    assert!(matches!(
        restored.apply(update(&[0.01, 0.0])),
        Err(Violation::StabilizationPending {
            retry_at_us: 12_000_077
        })
    ));

    // A clock with no past: older events are treated as recent.
    let config = Arc::new(AtomicConfig::with_generation(
        state.live.params.clone(),
        state.live.generation,
    ));
    let mut young = SafetyExecutor::builder(config)
        .guardrails(permissive())
        .clock(ManualClock::new(15 * MS))
        .restore(state.clone())
        .build()
        .unwrap();
    assert_eq!(
        young.export_state().apply_ages_us,
        vec![15 * MS, 15 * MS, 10 * MS]
    );
}

#[test]
fn inconsistent_states_are_refused() {
    let mut r = rig(&[0.5], Guardrails::default().with_bounds(vec![(0.0, 1.0)]));
    r.ex.apply(update(&[0.05])).unwrap();
    let state = r.ex.export_state();
    let build = |config: Arc<AtomicConfig>, state: ExecutorState| {
        SafetyExecutor::builder(config)
            .guardrails(Guardrails::default().with_bounds(vec![(0.0, 1.0)]))
            .restore(state)
            .build()
            .map(|_| ())
    };
    let fresh = || {
        Arc::new(AtomicConfig::with_generation(
            ParamVec::from_slice(&[0.55]),
            1,
        ))
    };
    // The configuration must hold the state's live values and generation.
    let other = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.55])));
    assert!(matches!(
        build(other, state.clone()),
        Err(ConfigError::InvalidState { .. })
    ));
    let mut bad = state.clone();
    bad.version = 99;
    assert!(matches!(
        build(fresh(), bad),
        Err(ConfigError::InvalidState { .. })
    ));
    let mut bad = state.clone();
    bad.centre = ParamVec::from_slice(&[f64::NAN]);
    assert!(matches!(
        build(fresh(), bad),
        Err(ConfigError::InvalidState { .. })
    ));
    let mut bad = state.clone();
    bad.directions.push(1);
    assert!(matches!(
        build(fresh(), bad),
        Err(ConfigError::InvalidState { .. })
    ));
    let mut bad = state.clone();
    bad.live.generation = u64::MAX;
    assert!(matches!(
        build(fresh(), bad),
        Err(ConfigError::InvalidState { reason }) if reason.contains("2^62")
    ));
    assert!(build(fresh(), state).is_ok());
}

/// With more parameters than mask bits, a reversal of the last one is
/// still counted and still refused past the limit.
#[test]
fn flips_are_counted_beyond_64_parameters() {
    const N: usize = 70;
    let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5; N])));
    let clock = ManualClock::new(0);
    let guardrails = Guardrails {
        direction_flip_limit: 1,
        min_interval_us: 0,
        ..Guardrails::default()
    };
    let mut ex = SafetyExecutor::builder(config)
        .guardrails(guardrails)
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut step = |sign: f64| {
        clock.advance(SECOND_US);
        let mut delta = ParamVec::zeros(N);
        delta[N - 1] = sign * 0.01;
        ex.apply(Proposal::Update {
            iteration: 1,
            delta,
            gradient_estimate: ParamVec::new(),
        })
    };
    assert!(step(1.0).is_ok());
    assert!(step(-1.0).is_ok(), "first reversal is within the limit");
    assert!(matches!(
        step(1.0),
        Err(Violation::DirectionFlipViolation { index, .. }) if index == N - 1
    ));
}
