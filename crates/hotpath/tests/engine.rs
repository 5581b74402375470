//! Whole scenarios of the adaptive engine driving the executor in a closed
//! loop with a manual clock.

use hotpath::{
    AdaptiveEngine, AdaptiveEngineConfig, AuditDetails, AuditEvent, Clock, DigestError,
    EngineError, EngineEvent, ManualClock, NoChangeReason, ParamVec, Proposal, RollbackReason,
    SafeModeReason, SpsaConfig, TelemetryDigest,
};

const TICK_US: u64 = 200_000;

fn config(dims: usize) -> AdaptiveEngineConfig {
    AdaptiveEngineConfig {
        spsa: SpsaConfig {
            eval_window_digests: 1,
            ..SpsaConfig::default()
        },
        seed: 7,
        ..AdaptiveEngineConfig::bounded(vec![(0.0, 1.0); dims])
    }
}

fn engine(dims: usize) -> (AdaptiveEngine<ManualClock>, ManualClock) {
    let clock = ManualClock::new(0);
    let engine = AdaptiveEngine::with_clock(
        config(dims),
        ParamVec::from_slice(&vec![0.5; dims]),
        clock.clone(),
    )
    .expect("valid settings");
    (engine, clock)
}

fn bowl(p: &[f64]) -> f64 {
    (p[0] - 0.2).powi(2) + (p[1] - 0.7).powi(2)
}

fn drain(engine: &AdaptiveEngine<ManualClock>) -> Vec<AuditEvent> {
    let queue = engine.executor().audit_queue().clone();
    std::iter::from_fn(|| queue.try_dequeue()).collect()
}

/// One closed-loop tick: the digest measures the live configuration.
fn tick(engine: &mut AdaptiveEngine<ManualClock>, clock: &ManualClock) -> Proposal {
    clock.advance(TICK_US);
    let live = engine.config().load().params;
    engine
        .step(TelemetryDigest::new(TICK_US, bowl(&live), 10))
        .expect("valid digest")
        .proposal
}

#[test]
fn converges_on_a_noiseless_bowl_without_refusals() {
    let (mut engine, clock) = engine(2);
    for _ in 0..600 {
        tick(&mut engine, &clock);
    }
    let centre = engine.executor().centre().to_vec();
    assert!(
        bowl(&centre) < 1e-3 * bowl(&[0.5, 0.5]),
        "centre {centre:?}"
    );
    assert_eq!(engine.stats().refused, 0);
    assert_eq!(engine.executor().stats().refused, 0);
    assert!(engine.noise_sd().is_some());
}

#[test]
fn observe_alone_never_changes_the_live_config() {
    let (mut engine, clock) = engine(2);
    let mut moves = 0;
    for _ in 0..50 {
        clock.advance(TICK_US);
        let p = engine
            .observe(TelemetryDigest::new(TICK_US, 1.0, 1))
            .expect("valid");
        moves += usize::from(!matches!(p, Proposal::NoChange { .. }));
        assert_eq!(engine.config().generation(), 0);
    }
    assert!(moves > 0, "the engine did decide to move");
}

/// The two probes of a pair are `θ ± cΔ` around the iterate `θ` (the
/// committed centre moved by what the engine has not committed yet), with
/// each knob's probe size the engine's own, and both stay within the probe
/// excursion limit of the centre (a minus probe more than a step away goes
/// through the centre first).
#[test]
fn probes_are_measured_at_plus_and_minus_c_delta_around_the_iterate() {
    let (mut engine, clock) = engine(2);
    let mut plus: Option<(u64, Vec<f64>)> = None;
    let mut checked = 0;
    for _ in 0..300 {
        let proposal = tick(&mut engine, &clock);
        let live = engine.config().load().params.to_vec();
        let delta = match engine.spsa().state() {
            hotpath::SpsaState::WaitingPlus { delta, .. }
            | hotpath::SpsaState::WaitingMinus { delta, .. } => delta.clone(),
            hotpath::SpsaState::Ready => continue,
        };
        let centre = engine.executor().centre().to_vec();
        match proposal {
            Proposal::ApplyPlus {
                perturbation_id, ..
            } => plus = Some((perturbation_id, live)),
            Proposal::ApplyMinus { .. } if live == centre => {} // the hop through it
            Proposal::ApplyMinus {
                perturbation_id, ..
            } => {
                let Some((id, p)) = plus.take() else { continue };
                if id != perturbation_id {
                    continue;
                }
                for i in 0..2 {
                    let half = (p[i] - live[i]) / 2.0;
                    assert!(
                        half * delta[i] > 0.0 && half.abs() < 0.1,
                        "pair {p:?} / {live:?}, Δ {delta:?}"
                    );
                    let iterate = (p[i] + live[i]) / 2.0;
                    assert!(
                        (iterate - centre[i]).abs() + half.abs() <= 0.1 + 1e-12,
                        "iterate {iterate} ± {half} centre {centre:?}"
                    );
                }
                checked += 1;
            }
            _ => {}
        }
    }
    assert!(checked > 30, "{checked} pairs");
}

#[test]
fn bad_digests_are_errors_that_change_nothing() {
    let (mut engine, clock) = engine(2);
    clock.advance(TICK_US);
    engine
        .observe(TelemetryDigest::new(TICK_US, 1.0, 1).with_timestamp(clock.now_us()))
        .expect("valid");
    let before = engine.stats();
    assert!(matches!(
        engine.observe(TelemetryDigest::new(TICK_US, f64::NAN, 1)),
        Err(EngineError::Digest(DigestError::NonFiniteObjective(_)))
    ));
    assert!(matches!(
        engine.observe(TelemetryDigest::new(TICK_US, f64::INFINITY, 1)),
        Err(EngineError::Digest(_))
    ));
    assert_eq!(
        engine.observe(TelemetryDigest::new(TICK_US, 1.0, 0)),
        Err(EngineError::Digest(DigestError::ZeroSampleCount))
    );
    assert!(matches!(
        engine.observe(TelemetryDigest::new(TICK_US, 1.0, 1).with_timestamp(1)),
        Err(EngineError::TimestampWentBackwards { .. })
    ));
    assert_eq!(engine.stats(), before);
    assert_eq!(engine.config().generation(), 0);
}

#[test]
fn stale_and_settling_digests_are_discarded_and_counted() {
    let clock = ManualClock::new(0);
    let mut engine = AdaptiveEngine::with_clock(
        AdaptiveEngineConfig {
            spsa: SpsaConfig {
                eval_window_digests: 1,
                settle_time_us: 50_000,
                ..SpsaConfig::default()
            },
            ..config(2)
        },
        ParamVec::from_slice(&[0.5, 0.5]),
        clock.clone(),
    )
    .expect("valid");
    // Calibration windows at generation 0, then the first probe is applied.
    let mut applied_at = None;
    for _ in 0..10 {
        clock.advance(TICK_US);
        let out = engine
            .step(
                TelemetryDigest::new(TICK_US, 1.0, 1).with_generation(engine.config().generation()),
            )
            .expect("valid");
        if let Some(Ok(receipt)) = out.applied {
            applied_at = Some(receipt);
            break;
        }
    }
    let receipt = applied_at.expect("a probe was applied");
    // Inside the settle time: discarded.
    let settling = engine
        .observe(
            TelemetryDigest::new(TICK_US, 9.0, 1).with_timestamp(receipt.timestamp_us + 10_000),
        )
        .expect("valid");
    assert_eq!(
        settling,
        Proposal::NoChange {
            reason: NoChangeReason::Settling
        }
    );
    assert_eq!(engine.stats().discarded_settling, 1);
    // Settled, but measured at the old generation: discarded.
    let stale = engine
        .observe(
            TelemetryDigest::new(TICK_US, 9.0, 1)
                .with_timestamp(receipt.timestamp_us + 100_000)
                .with_generation(receipt.old_generation),
        )
        .expect("valid");
    assert_eq!(
        stale,
        Proposal::NoChange {
            reason: NoChangeReason::CollectingSamples
        }
    );
    assert_eq!(engine.stats().discarded_stale, 1);
}

#[test]
fn timeouts_abandon_the_window_and_three_latch_safe_mode() {
    let (mut engine, clock) = engine(2);
    let mut timeouts = 0;
    for _ in 0..3 {
        // Nothing arrives for 2 s; then one digest inside the settle time of
        // nothing — the window (500 ms) has expired.
        clock.advance(2_000_000);
        let p = engine
            .observe(TelemetryDigest::new(TICK_US, 1.0, 1).with_generation(u64::MAX))
            .expect("valid");
        if p == (Proposal::NoChange {
            reason: NoChangeReason::EvalTimeout,
        }) {
            timeouts += 1;
        }
    }
    assert_eq!(timeouts, 3);
    assert!(engine
        .executor()
        .control_safety()
        .reasons()
        .contains(SafeModeReason::TelemetryStalled));
    let events = drain(&engine);
    let noted = events
        .iter()
        .filter(|e| {
            matches!(
                e.details,
                AuditDetails::Engine {
                    event: EngineEvent::EvalTimeout { .. }
                }
            )
        })
        .count();
    assert_eq!(noted, 3);
}

#[test]
fn a_refused_move_is_retried_after_safe_mode() {
    let (mut engine, clock) = engine(2);
    // Run until a move is proposed, then freeze before applying it.
    let proposal = loop {
        clock.advance(TICK_US);
        let p = engine
            .observe(TelemetryDigest::new(TICK_US, 1.0, 1))
            .expect("valid");
        if !matches!(p, Proposal::NoChange { .. }) {
            break p;
        }
    };
    engine.executor_mut().freeze();
    assert!(engine.apply(proposal.clone()).is_err());
    assert_eq!(engine.stats().refused, 1);
    clock.advance(TICK_US);
    assert_eq!(
        engine
            .observe(TelemetryDigest::new(TICK_US, 1.0, 1))
            .expect("valid"),
        Proposal::NoChange {
            reason: NoChangeReason::SafeMode
        }
    );
    engine.executor_mut().resume().expect("resume");
    clock.advance(TICK_US);
    let again = engine
        .observe(TelemetryDigest::new(TICK_US, 1.0, 1))
        .expect("valid");
    assert_eq!(again, proposal, "the same move is offered again");
    assert!(engine.apply(again).is_ok());
}

#[test]
fn negative_margin_pauses_and_emergency_rolls_back() {
    let (mut engine, clock) = engine(2);
    for _ in 0..60 {
        tick(&mut engine, &clock);
    }
    assert_ne!(engine.executor().centre(), &[0.5, 0.5]);
    drain(&engine);
    // A mildly negative margin: the engine stops and heads back.
    clock.advance(TICK_US);
    let p = engine
        .step(TelemetryDigest::new(TICK_US, 0.1, 1).with_constraint_margin(-0.1))
        .expect("valid");
    assert!(!matches!(p.proposal, Proposal::ApplyPlus { .. }));
    let events = drain(&engine);
    assert!(events.iter().any(|e| matches!(
        e.details,
        AuditDetails::Engine {
            event: EngineEvent::ConstraintViolated {
                emergency: false,
                ..
            }
        }
    )));
    // An emergency: rolled back to the baseline at once.
    clock.advance(TICK_US);
    let p = engine
        .step(TelemetryDigest::new(TICK_US, 0.1, 1).with_constraint_margin(-0.9))
        .expect("valid");
    assert_eq!(
        p.proposal,
        Proposal::NoChange {
            reason: NoChangeReason::ConstraintViolated
        }
    );
    assert_eq!(engine.executor().centre(), &[0.5, 0.5]);
    let events = drain(&engine);
    assert!(events.iter().any(|e| matches!(
        e.details,
        AuditDetails::RolledBack {
            reason: RollbackReason::ConstraintEmergency,
            ..
        }
    )));
}

#[test]
fn same_seed_and_digests_give_byte_identical_proposals_and_audit() {
    let run = || {
        let (mut engine, clock) = engine(3);
        let mut noise = 0x2545_f491_4f6c_dd1du64;
        let mut out = String::new();
        for i in 0..400 {
            clock.advance(TICK_US);
            // A deterministic pseudo-noise stream shared by both runs.
            noise ^= noise << 13;
            noise ^= noise >> 7;
            noise ^= noise << 17;
            let live = engine.config().load().params;
            let y = bowl(&live) + live[2] * 0.1 + (noise % 1000) as f64 * 1e-6;
            let margin = if i == 250 { -0.2 } else { 0.5 };
            let step = engine
                .step(TelemetryDigest::new(TICK_US, y, 5).with_constraint_margin(margin))
                .expect("valid");
            out += &serde_json::to_string(&step.proposal).expect("serialise");
            out.push('\n');
            for event in drain(&engine) {
                out += &serde_json::to_string(&event).expect("serialise");
                out.push('\n');
            }
        }
        out
    };
    let (a, b) = (run(), run());
    assert!(a.lines().count() > 1000);
    assert!(a.contains("Gradient") && a.contains("Calibrated"));
    assert_eq!(a, b);
}

#[test]
fn invalid_settings_fail_closed_or_report() {
    let bad = AdaptiveEngineConfig {
        perturbation_scale: f64::NAN,
        ..config(2)
    };
    assert!(AdaptiveEngine::with_clock(
        bad.clone(),
        ParamVec::from_slice(&[0.5, 0.5]),
        ManualClock::new(0)
    )
    .is_err());
    let mut engine = AdaptiveEngine::new(bad, ParamVec::from_slice(&[0.5, 0.5]));
    assert!(engine.misconfiguration().is_some());
    for _ in 0..20 {
        let out = engine
            .step(TelemetryDigest::new(TICK_US, 1.0, 1))
            .expect("valid");
        assert_eq!(
            out.proposal,
            Proposal::NoChange {
                reason: NoChangeReason::SafeMode
            }
        );
    }
    assert_eq!(engine.config().generation(), 0);
    assert!(AdaptiveEngine::with_clock(config(2), ParamVec::new(), ManualClock::new(0)).is_err());
}

/// An optimum outside the box drives the centre against the bounds, where
/// probe targets and full-size steps meet rounding: every applied move must
/// still change something, and the engine must keep iterating.
#[test]
fn at_the_bounds_every_move_changes_something_and_iterations_continue() {
    let (mut engine, clock) = engine(2);
    let corner = |p: &[f64]| (p[0] + 0.2).powi(2) + (p[1] - 1.2).powi(2);
    let mut applied = 0;
    for _ in 0..1500 {
        clock.advance(TICK_US);
        let live = engine.config().load().params;
        let out = engine
            .step(TelemetryDigest::new(TICK_US, corner(&live), 10))
            .expect("valid");
        if let Some(Ok(_)) = out.applied {
            let delta = out.proposal.delta().expect("a move");
            assert!(
                delta.iter().any(|d| *d != 0.0),
                "zero move applied: {:?}",
                out.proposal
            );
            applied += 1;
        }
    }
    assert!(applied > 900);
    assert!(engine.stats().gradients > 300);
    let centre = engine.executor().centre().to_vec();
    assert!(centre[0] < 0.1 && centre[1] > 0.9, "centre {centre:?}");
    let abandoned = drain(&engine)
        .iter()
        .filter(|e| {
            matches!(
                e.details,
                AuditDetails::Engine {
                    event: EngineEvent::PlanAbandoned { .. }
                }
            )
        })
        .count();
    assert_eq!(abandoned, 0);
}

#[test]
fn the_audit_queue_must_hold_the_engines_first_two_events() {
    let initial = ParamVec::from_slice(&[0.5]);
    for capacity in [0, 1] {
        let small = AdaptiveEngineConfig {
            audit_capacity: capacity,
            ..config(1)
        };
        let refused = AdaptiveEngine::with_clock(small, initial.clone(), ManualClock::new(0));
        assert!(
            matches!(
                refused,
                Err(EngineError::Config(hotpath::ConfigError::InvalidField {
                    field: "audit_capacity",
                    ..
                }))
            ),
            "capacity {capacity}: {refused:?}"
        );
    }
    let two = AdaptiveEngineConfig {
        audit_capacity: 2,
        ..config(1)
    };
    let engine = AdaptiveEngine::with_clock(two, initial, ManualClock::new(0)).expect("capacity 2");
    let queue = engine.executor().audit_queue();
    let first: Vec<AuditEvent> = std::iter::from_fn(|| queue.try_dequeue()).collect();
    assert!(
        matches!(
            first.as_slice(),
            [
                AuditEvent {
                    details: AuditDetails::Started { .. },
                    ..
                },
                AuditEvent {
                    details: AuditDetails::BaselineSet { .. },
                    ..
                },
            ]
        ),
        "{first:?}"
    );
}

#[test]
fn a_window_beyond_the_digest_limit_is_refused_not_allocated() {
    let huge = AdaptiveEngineConfig {
        spsa: SpsaConfig {
            eval_window_digests: hotpath::MAX_EVAL_WINDOW_DIGESTS + 1,
            ..SpsaConfig::default()
        },
        ..config(1)
    };
    let refused =
        AdaptiveEngine::with_clock(huge, ParamVec::from_slice(&[0.5]), ManualClock::new(0));
    assert!(matches!(
        refused,
        Err(EngineError::Spsa(
            hotpath::SpsaConfigError::TooManyEvalWindowDigests { .. }
        ))
    ));
}

/// Probes are sized from what the engine measures: near the optimum of a
/// shallow, noisy bowl they grow past SPSA's scheduled `c` (the gradient's
/// noise falls as `1/c`), on a steep one they stay small (they would cost
/// users more than the noise).
#[test]
fn probe_sizes_follow_the_curvature_against_the_noise() {
    let largest_probe = |curvature: f64| {
        let (mut engine, clock) = engine(2);
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut largest: f64 = 0.0;
        for k in 0..800 {
            clock.advance(TICK_US);
            let live = engine.config().load().params;
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let noise = 0.006 * ((rng >> 11) as f64 / (1u64 << 53) as f64 - 0.5);
            let y = curvature * bowl(&live) + noise;
            engine
                .step(TelemetryDigest::new(TICK_US, y, 10))
                .expect("valid digest");
            if k >= 400 {
                let centre = engine.executor().centre();
                let away = live.iter().zip(centre).map(|(l, c)| (l - c).abs());
                largest = away.fold(largest, f64::max);
            }
        }
        assert_eq!(engine.executor().stats().refused, 0);
        largest
    };
    let shallow = largest_probe(1.0);
    let steep = largest_probe(1000.0);
    assert!(shallow > 0.06 && shallow <= 0.1, "shallow: {shallow}");
    assert!(steep < 0.02, "steep: {steep}");
}
