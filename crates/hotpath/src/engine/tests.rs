//! Unit tests of the engine's internals: the stages' transitions and the
//! hysteresis rule as the executor's bookkeeping drives it. Whole closed
//! loops are in `tests/engine.rs`.

use super::stage::{Gains, Measured, Phase, Stage};
use super::{AdaptiveEngine, AdaptiveEngineConfig};
use crate::audit::EvalPhase;
use crate::clock::ManualClock;
use crate::guardrails::Guardrails;
use crate::proposal::Proposal;
use crate::stats::RunningStats;
use crate::ParamVec;

fn noise(done: u32, values: &[f64], next: Gains) -> Stage {
    let mut windows = RunningStats::default();
    values.iter().for_each(|&v| windows.add(v));
    Stage::Noise {
        done,
        windows,
        next,
    }
}

fn gains(noise_sd: f64, pairs: u32) -> Gains {
    Gains {
        measured: Measured {
            noise_sd,
            gain: 0.0,
        },
        sum: ParamVec::from_slice(&[0.5, -0.5]),
        magnitude: 0.5 * f64::from(pairs),
        pairs,
    }
}

#[test]
fn noise_windows_lead_into_the_gain_stage_with_their_sd() {
    let mut stage = noise(3, &[1.0, 2.0, 3.0], gains(0.0, 0));
    assert_eq!(stage.eval_phase(Phase::Centre), EvalPhase::Calibrating);
    assert_eq!(stage.noise_measured(), Some(2.0));
    assert_eq!(stage, Stage::Gains(gains(1.0, 0)));
    assert_eq!(stage.eval_phase(Phase::Minus), EvalPhase::Minus);
    assert_eq!(stage.noise_measured(), None, "only once");
}

#[test]
fn a_restart_measures_the_noise_again_and_keeps_the_gradient_pairs() {
    let mut stage = Stage::Gains(gains(0.3, 1));
    stage.restart();
    assert_eq!(stage, noise(0, &[], gains(0.3, 1)));
    let mut counting = noise(2, &[1.0, 5.0], gains(0.3, 1));
    counting.restart();
    assert_eq!(counting, noise(0, &[], gains(0.3, 1)));
    let mut tuning = Stage::Tuning(Measured {
        noise_sd: 0.3,
        gain: 0.7,
    });
    tuning.restart();
    assert!(tuning.is_tuning());
}

#[test]
fn a_detour_ends_the_noise_windows_with_the_noise_measured_before() {
    let mut stage = noise(1, &[4.0], gains(0.3, 0));
    stage.end_noise();
    assert_eq!(stage, Stage::Gains(gains(0.3, 0)));
    let mut tuning = Stage::Tuning(Measured::default());
    tuning.end_noise();
    assert!(tuning.is_tuning(), "only the noise stage ends");
}

/// An engine at 0.5 in `[0, 1]` whose executor allows `flips` reversals a
/// minute; nothing is observed, so only the executor's state changes.
fn engine(flips: u32) -> (AdaptiveEngine<ManualClock>, ManualClock) {
    let clock = ManualClock::new(0);
    let guardrails = Guardrails {
        direction_flip_limit: flips,
        ..Guardrails::default()
    }
    .with_bounds(vec![(0.0, 1.0)]);
    let config = AdaptiveEngineConfig {
        guardrails,
        ..AdaptiveEngineConfig::default()
    };
    let initial = ParamVec::from_slice(&[0.5]);
    let engine = AdaptiveEngine::with_clock(config, initial, clock.clone()).expect("valid");
    (engine, clock)
}

/// Commits a move of `delta` on the executor, as a foreign proposal.
fn commit(engine: &mut AdaptiveEngine<ManualClock>, clock: &ManualClock, delta: f64) {
    clock.advance(1_000_000);
    let update = Proposal::Update {
        iteration: 0,
        delta: ParamVec::from_slice(&[delta]),
        gradient_estimate: ParamVec::new(),
    };
    engine
        .executor_mut()
        .apply(update)
        .expect("within the guardrails");
}

/// Whether a carry `carry`, equal to its average, commits.
fn commits_with(engine: &mut AdaptiveEngine<ManualClock>, carry: f64) -> bool {
    engine.carry[0] = carry;
    engine.average[0] = carry;
    engine.commits(0)
}

#[test]
fn the_hysteresis_commits_significant_carries_and_keeps_the_last_reversals() {
    let (mut engine, clock) = engine(2);
    // Recent steps of rms 0.005: after m steps, noise would add up to
    // 0.005·√m; a carry moves past twice that (and always past a quarter
    // of the step limit, 0.025: a sustained push).
    engine.step_sq[0] = 2.5e-5;
    engine.step_sq_weight[0] = 1.0;
    engine.carried[0] = 4;
    assert!(!commits_with(&mut engine, 0.0));
    assert!(!commits_with(&mut engine, 0.019), "within noise of 4 steps");
    assert!(
        commits_with(&mut engine, -0.021),
        "a first move, significant"
    );

    commit(&mut engine, &clock, 0.01);
    assert_eq!(engine.executor().last_direction(0), 1);
    engine.carried[0] = 4;
    assert!(commits_with(&mut engine, 0.021), "onward");
    assert!(
        !commits_with(&mut engine, -0.021),
        "a reversal no measured slope asks for keeps two"
    );
    engine.slope_sign[0] = 1.0; // a rising slope: steps go down
    assert!(
        commits_with(&mut engine, -0.021),
        "a reversal the slope asks for, with two left"
    );
    engine.carried[0] = 16;
    assert!(
        !commits_with(&mut engine, -0.024),
        "the same carry over more steps is noise"
    );

    commit(&mut engine, &clock, -0.02);
    assert_eq!(engine.executor_mut().flips_left(0), 1);
    engine.carried[0] = 4;
    engine.slope_sign[0] = -1.0;
    assert!(
        !commits_with(&mut engine, 0.5),
        "the minute's last reversal is kept for step control"
    );
    assert!(commits_with(&mut engine, -0.03), "onward still moves");

    engine.executor_mut().rollback().expect("a baseline is set");
    assert_eq!(engine.executor().last_direction(0), 0);
    assert!(
        commits_with(&mut engine, -0.05),
        "after a rollback, a first move again"
    );
}

#[test]
fn a_real_knob_commits_its_iterates_average_while_no_slope_is_measured() {
    let (mut engine, clock) = engine(3);
    for carry in [0.01, 0.03, 0.02] {
        engine.carry[0] = carry;
        engine.average_iterate();
    }
    assert!((engine.commit_offset(0) - 0.02).abs() < 1e-12, "the mean");
    engine.slope_sign[0] = -1.0;
    engine.carry[0] = 0.05;
    engine.average_iterate();
    assert_eq!(
        engine.commit_offset(0),
        0.05,
        "a measured slope: the iterate"
    );

    // A commit moves the centre, and the average (an offset from it) back.
    engine.slope_sign[0] = 0.0;
    engine.carry[0] = 0.07;
    engine.average_iterate(); // the mean of 0.05 and 0.07
    let before = engine.executor().centre().to_vec();
    commit(&mut engine, &clock, 0.04);
    engine.committed(&before);
    assert!((engine.commit_offset(0) - 0.02).abs() < 1e-9);
    assert!((engine.carry[0] - 0.03).abs() < 1e-9);

    engine.forget_slopes();
    engine.carry[0] = 0.01;
    engine.average_iterate();
    assert_eq!(
        engine.commit_offset(0),
        0.01,
        "a drift restarts the average"
    );
}

#[test]
fn integers_and_fixed_gains_commit_the_iterate() {
    let space = std::sync::Arc::new(
        crate::ParamSpace::new(vec![crate::Knob::int("n", 1, 64, 32)]).expect("valid"),
    );
    let atomic = std::sync::Arc::new(crate::AtomicConfig::new(space.initial()));
    let executor = crate::SafetyExecutor::builder(atomic)
        .space(space)
        .clock(ManualClock::new(0))
        .build()
        .expect("valid");
    let mut integer =
        AdaptiveEngine::with_executor(AdaptiveEngineConfig::default(), executor).expect("valid");
    let (mut fixed, _) = engine(3);
    fixed.config.calibration = None;
    for engine in [&mut integer, &mut fixed] {
        for carry in [0.1, 0.3] {
            engine.carry[0] = carry;
            engine.average_iterate();
        }
        assert_eq!(engine.commit_offset(0), 0.3);
    }
}

/// An engine tuning with measured noise `sigma`, its probe averages set.
fn tuning(sigma: f64, curvature: f64, slope_sq: Option<f64>) -> AdaptiveEngine<ManualClock> {
    let (mut engine, _) = engine(3);
    engine.stage = Stage::Tuning(Measured {
        noise_sd: sigma,
        gain: 1.0,
    });
    (engine.curvature, engine.curvature_weight) = (curvature, 1.0);
    if let Some(s) = slope_sq {
        (engine.slope_sq, engine.slope_sq_weight) = (s, 1.0);
    }
    engine.probe = ParamVec::from_slice(&[0.05]);
    engine
}

#[test]
fn probes_cost_ten_sigmas_within_the_floor_the_step_limit_and_the_need() {
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12 * b;
    // Cost: c = √(10σ/h), within [¼·min_perturbation, 0.999·step limit].
    let shallow = tuning(0.001, 2.0, None);
    assert!(close(shallow.probe_target(), (0.01f64 / 2.0).sqrt()));
    assert!(close(
        tuning(0.001, 200.0, None).probe_target(),
        0.01f64.sqrt() / 200f64.sqrt()
    ));
    assert_eq!(tuning(0.001, 2e5, None).probe_target(), 0.005, "the floor");
    assert!(
        close(tuning(0.001, -1.0, None).probe_target(), 0.0999),
        "no curvature: the cap"
    );
    // Need: a slope of 1 is measured to 10 noise sds with probes of
    // 10·√2·σ/2 (its noise part, σ²/(2c²) at c = 0.05, taken off first).
    let steep = tuning(0.001, 2.0, Some(1.0 + 1e-6 / (2.0 * 0.0025)));
    let needed = 10.0 * std::f64::consts::SQRT_2 * 0.001 / 2.0;
    assert!(
        close(steep.probe_target(), needed),
        "{}",
        steep.probe_target()
    );
    // Before the curvature is measured: SPSA's scheduled c.
    let (fresh, _) = engine(3);
    assert_eq!(fresh.probe_target(), fresh.spsa.perturbation_scale(0));
}

#[test]
fn a_steady_mean_gradient_grows_the_gain_and_noise_or_a_turn_shrinks_it() {
    let (mut engine, _) = engine(3);
    for _ in 0..40 {
        engine.adapt_gain(0, 1.0, 1.0);
    }
    assert_eq!(
        engine.step_gain[0],
        super::GAIN_MAX,
        "a real slope speeds up"
    );
    for k in 0..40 {
        engine.adapt_gain(0, if k % 2 == 0 { 3.0 } else { -3.0 }, 3.0);
    }
    assert_eq!(engine.step_gain[0], super::GAIN_MIN, "noise settles down");
    let before = engine.step_gain[0];
    engine.step_gain[0] = 2.0;
    let turned = (0..40).find(|_| {
        engine.adapt_gain(0, -1.0, 1.0);
        engine.last_push[0] < 0.0
    });
    assert!(turned.is_some() && before == super::GAIN_MIN);
    assert!(
        engine.step_gain[0] < 2.0,
        "a turn falls: {}",
        engine.step_gain[0]
    );
}

#[test]
fn a_restore_forgets_what_steps_and_probes_were_sized_by() {
    let mut engine = tuning(0.001, 2.0, Some(1.0));
    engine.step_gain[0] = 4.0;
    engine.momentum[0] = 0.5;
    let state = engine.export_state();
    engine.restore_state(state).expect("its own state");
    assert_eq!(
        (engine.curvature_weight, engine.slope_sq_weight),
        (0.0, 0.0)
    );
    assert_eq!((engine.step_gain[0], engine.momentum[0]), (1.0, 0.0));
    assert_eq!(
        engine.probe_target(),
        engine.spsa.perturbation_scale(engine.spsa.iteration())
    );
}

#[test]
fn steps_stop_short_of_the_minimum_the_measured_curvature_implies() {
    // h = 2: a gain of at most 1/(2h) = 1/4, so a gradient of 0.2 allows
    // a step of 0.05 either way.
    let curved = tuning(0.001, 2.0, None);
    let gradient = ParamVec::from_slice(&[0.2]);
    for (planned, limited) in [(-0.08, -0.05), (0.08, 0.05), (-0.01, -0.01)] {
        let mut step = ParamVec::from_slice(&[planned]);
        curved.limit_by_curvature(&mut step, &gradient);
        assert!((step[0] - limited).abs() < 1e-15, "{planned}: {}", step[0]);
    }
    // No positive curvature measured (or not yet tuning): nothing limited.
    for flat in [tuning(0.001, -1.0, None), engine(3).0] {
        let mut step = ParamVec::from_slice(&[-0.08]);
        flat.limit_by_curvature(&mut step, &gradient);
        assert_eq!(step[0], -0.08);
    }
}
