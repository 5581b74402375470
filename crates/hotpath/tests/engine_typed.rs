//! The engine on typed knobs, in a closed loop through the public API:
//! integer probes that really change the integer, log-scale probes that are
//! ratios, a bandit that finds the best option of a choice (and the new one
//! after a change), and a mixed space tuned without a single refusal.

use hotpath::{
    AdaptiveEngine, AdaptiveEngineConfig, Guardrails, Knob, ManualClock, ParamSpace, ParamVec,
    Proposal, SafetyExecutor, SpsaConfig, TelemetryDigest,
};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use std::sync::Arc;

const TICK_US: u64 = 200_000;

fn engine(knobs: Vec<Knob>, seed: u64) -> (AdaptiveEngine<ManualClock>, ManualClock) {
    let space = Arc::new(ParamSpace::new(knobs).expect("valid space"));
    let config = Arc::new(hotpath::AtomicConfig::new(space.initial()));
    let clock = ManualClock::new(0);
    let executor = SafetyExecutor::builder(config)
        .space(space)
        .guardrails(Guardrails::default())
        .clock(clock.clone())
        .build()
        .expect("valid executor");
    let settings = AdaptiveEngineConfig {
        seed,
        spsa: SpsaConfig {
            eval_window_digests: 1,
            ..SpsaConfig::default()
        },
        ..AdaptiveEngineConfig::default()
    };
    let engine = AdaptiveEngine::with_executor(settings, executor).expect("valid engine");
    (engine, clock)
}

/// Small deterministic noise.
fn noise(rng: &mut ChaCha8Rng, sd: f64) -> f64 {
    ((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 2.0 * sd
}

/// Runs `evals` digests of `loss(live)`; calls `seen` with every proposal
/// the engine applied.
fn run(
    engine: &mut AdaptiveEngine<ManualClock>,
    clock: &ManualClock,
    evals: usize,
    loss: impl Fn(&[f64], usize) -> f64,
    mut seen: impl FnMut(&Proposal, &[f64], &[f64]),
) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut reader = engine.config().reader();
    for k in 0..evals {
        clock.advance(TICK_US);
        let live = reader.get().params.clone();
        let y = loss(&live, k) + noise(&mut rng, 0.001);
        let outcome = engine
            .step(TelemetryDigest::new(TICK_US, y, 1))
            .expect("finite");
        if let Some(Ok(_)) = outcome.applied {
            let after = reader.get().params.clone();
            seen(&outcome.proposal, engine.executor().centre(), &after);
        }
    }
}

#[test]
fn integer_probes_change_the_integer_and_find_the_optimum() {
    let (mut engine, clock) = engine(vec![Knob::int("workers", 1, 64, 8)], 3);
    let (mut pairs, mut plus) = (0, None);
    run(
        &mut engine,
        &clock,
        1000,
        |v, _| ((v[0] - 41.0) / 63.0).powi(2),
        |p, _, live| {
            assert_eq!(live[0].fract(), 0.0, "live {live:?}");
            match p {
                Proposal::ApplyPlus {
                    perturbation_id, ..
                } => plus = Some((*perturbation_id, live[0])),
                Proposal::ApplyMinus {
                    perturbation_id, ..
                } => {
                    if let Some((id, x)) = plus.take().filter(|(id, _)| id == perturbation_id) {
                        pairs += 1;
                        assert_ne!(x, live[0], "probes {id} that measured one integer twice");
                    }
                }
                _ => {}
            }
        },
    );
    assert!(pairs > 20, "{pairs} probe pairs");
    let centre = engine.executor().centre()[0];
    assert!((centre - 41.0).abs() <= 1.0, "ended at {centre}");
    assert_eq!(engine.executor().stats().refused, 0);
}

#[test]
fn log_knobs_are_probed_by_ratios_and_travel_decades() {
    // The optimum is two decades above the start.
    let (mut engine, clock) = engine(vec![Knob::real("ttl_s", 1.0, 10_000.0, 10.0).log()], 5);
    run(
        &mut engine,
        &clock,
        1000,
        |v, _| ((v[0].ln() - 1000f64.ln()) / 10_000f64.ln()).powi(2),
        |p, centre, live| {
            // A probe more than a step from the last one goes through the
            // centre first.
            if let (Proposal::ApplyPlus { .. }, false) = (p, live[0] == centre[0]) {
                let ratio = (live[0] / centre[0]).ln().abs() / 10_000f64.ln();
                assert!(
                    ratio > 0.0 && ratio <= 0.1 + 1e-9,
                    "probe of {ratio} of the log-range"
                );
            }
        },
    );
    let centre = engine.executor().centre()[0];
    assert!((centre / 1000.0).ln().abs() < 0.35, "ended at {centre}");
    assert_eq!(engine.executor().stats().refused, 0);
}

#[test]
fn the_bandit_finds_the_best_option_and_the_new_one_after_a_change() {
    let knobs = vec![
        Knob::choice("codec", ["none", "lz4", "zstd"], "none"),
        Knob::real("level", 0.0, 1.0, 0.5),
    ];
    let (mut engine, clock) = engine(knobs, 11);
    // Options cost 0.3 / 0.0 / 0.15 until evaluation 600, then 0.3 / 0.2 / 0.0.
    let cost = |option: usize, k: usize| match (option, k < 600) {
        (0, _) => 0.3,
        (1, true) | (2, false) => 0.0,
        (1, false) => 0.2,
        _ => 0.15,
    };
    let loss = move |v: &[f64], k: usize| cost(v[0] as usize, k) + (v[1] - 0.3).powi(2);
    run(&mut engine, &clock, 600, loss, |_, _, _| {});
    assert_eq!(engine.executor().centre()[0], 1.0, "lz4 is best first");
    let mut found = None;
    let mut reader = engine.config().reader();
    for k in 600..1000 {
        clock.advance(TICK_US);
        let live = reader.get().params.clone();
        engine
            .step(TelemetryDigest::new(TICK_US, loss(&live, k), 1))
            .expect("finite");
        if found.is_none() && engine.executor().centre()[0] == 2.0 {
            found = Some(k - 600);
        }
    }
    assert!(
        found.is_some_and(|e| e <= 200),
        "found zstd after {found:?} evaluations"
    );
    assert_eq!(engine.executor().centre()[0], 2.0);
    assert_eq!(engine.executor().stats().refused, 0);
}

#[test]
fn a_mixed_space_is_tuned_without_a_refusal() {
    let knobs = vec![
        Knob::int("batch", 1, 512, 64),
        Knob::real("linger_ms", 0.1, 100.0, 5.0).log(),
        Knob::choice("hash", ["fx", "sip", "xx"], "sip"),
        Knob::real("ratio", 0.0, 1.0, 0.5),
    ];
    let space = ParamSpace::new(knobs.clone()).expect("valid");
    let (mut engine, clock) = engine(knobs, 2);
    let loss = |v: &[f64], _: usize| {
        ((v[0] - 200.0) / 511.0).powi(2)
            + ((v[1].ln() - 0.5f64.ln()) / 1000f64.ln()).powi(2)
            + [0.05, 0.1, 0.0][v[2] as usize]
            + (v[3] - 0.8).powi(2)
    };
    run(&mut engine, &clock, 1000, loss, |_, _, live| {
        for (i, &v) in live.iter().enumerate() {
            assert!(space.admits(i, v), "knob {i} at {v}");
        }
    });
    let c = ParamVec::from_slice(engine.executor().centre());
    assert_eq!(engine.executor().stats().refused, 0);
    assert!(
        loss(&c, 0) < 0.25 * loss(&space.initial(), 0),
        "centre {c:?}"
    );
}
