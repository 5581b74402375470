//! Unit tests of the optimiser: the state machine, the gradient estimate
//! against hand-computed values, convergence, gain schedules, the window,
//! checkpoints and validation.

use super::{Spsa, SpsaCheckpoint, SpsaConfig, SpsaConfigError, SpsaState};
use crate::telemetry::{Aggregation, AggregationError, DigestError, TelemetryDigest};
use crate::ParamVec;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

fn one_digest_config() -> SpsaConfig {
    SpsaConfig {
        eval_window_digests: 1,
        ..SpsaConfig::default()
    }
}

/// One full iteration against `objective` at `theta`; returns `(Δ, ĝ, update)`.
fn iterate(
    spsa: &mut Spsa,
    theta: &[f64],
    mut objective: impl FnMut(&[f64]) -> f64,
) -> (ParamVec, ParamVec, ParamVec) {
    let delta = spsa.generate_perturbation();
    let c = spsa.in_flight_scale().unwrap();
    let shifted = |sign: f64| -> Vec<f64> {
        theta
            .iter()
            .zip(delta.iter())
            .map(|(t, d)| t + sign * c * d)
            .collect()
    };
    spsa.record_objective(objective(&shifted(1.0)));
    assert_eq!(spsa.complete_eval_window(), None);
    spsa.record_objective(objective(&shifted(-1.0)));
    let (gradient, update) = spsa.complete_eval_window().unwrap();
    (delta, gradient, update)
}

#[test]
fn state_transitions_follow_the_diagram() {
    let mut spsa = Spsa::new(11, 3, 0.1, 0.05, SpsaConfig::default());
    assert_eq!(spsa.state(), &SpsaState::Ready);
    assert_eq!(spsa.complete_eval_window(), None);
    assert_eq!(spsa.state(), &SpsaState::Ready);

    let delta = spsa.generate_perturbation();
    assert_eq!(delta.len(), 3);
    match spsa.state() {
        SpsaState::WaitingPlus {
            perturbation_id,
            delta: d,
            accumulated,
        } => {
            assert_eq!(*perturbation_id, 0);
            assert_eq!(d, &delta);
            assert!(accumulated.is_empty());
        }
        other => panic!("expected WaitingPlus, got {other:?}"),
    }

    spsa.record_objective(2.0);
    assert_eq!(spsa.complete_eval_window(), None);
    match spsa.state() {
        SpsaState::WaitingMinus {
            perturbation_id,
            delta: d,
            y_plus,
            accumulated,
        } => {
            assert_eq!(*perturbation_id, 0);
            assert_eq!(d, &delta);
            assert_eq!(*y_plus, 2.0);
            assert!(accumulated.is_empty());
        }
        other => panic!("expected WaitingMinus, got {other:?}"),
    }

    spsa.record_objective(1.0);
    assert!(spsa.complete_eval_window().is_some());
    assert_eq!(spsa.state(), &SpsaState::Ready);
    assert_eq!(spsa.iteration(), 1);

    spsa.generate_perturbation();
    assert!(matches!(
        spsa.state(),
        SpsaState::WaitingPlus {
            perturbation_id: 1,
            ..
        }
    ));
}

#[test]
fn empty_windows_do_not_advance() {
    let mut spsa = Spsa::new(1, 2, 0.1, 0.05, SpsaConfig::default());
    spsa.generate_perturbation();
    let before = spsa.state().clone();
    assert_eq!(spsa.complete_eval_window(), None);
    assert_eq!(spsa.state(), &before);

    spsa.record_objective(1.0);
    spsa.complete_eval_window();
    let before = spsa.state().clone();
    assert_eq!(spsa.complete_eval_window(), None);
    assert_eq!(spsa.state(), &before);
    assert_eq!(spsa.iteration(), 0);
}

#[test]
fn generate_outside_ready_is_idempotent() {
    let mut spsa = Spsa::new(5, 4, 0.1, 0.05, SpsaConfig::default());
    let delta = spsa.generate_perturbation();
    spsa.record_objective(1.0);
    let pos = spsa.rng_word_pos();

    assert_eq!(spsa.generate_perturbation(), delta);
    assert_eq!(spsa.window_len(), 1);
    spsa.complete_eval_window();
    assert_eq!(spsa.generate_perturbation(), delta);
    assert_eq!(spsa.y_plus(), Some(1.0));
    assert_eq!(spsa.rng_word_pos(), pos);
}

#[test]
fn delta_bits_follow_the_documented_layout() {
    let seed = 0x00DE_C0DE;
    let mut spsa = Spsa::new(seed, 70, 0.1, 0.05, SpsaConfig::default());
    let delta = spsa.generate_perturbation();

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let words = [rng.next_u64(), rng.next_u64()];
    for (i, d) in delta.iter().enumerate() {
        let bit = (words[i / 64] >> (i % 64)) & 1;
        assert_eq!(*d, if bit == 1 { 1.0 } else { -1.0 }, "component {i}");
    }
    // Two u64 draws = four 32-bit words.
    assert_eq!(spsa.rng_word_pos(), 4);
    // Both signs occur (a constant Δ would mean the bits are not used).
    assert!(delta.contains(&1.0) && delta.contains(&-1.0));
}

#[test]
fn gradient_matches_central_difference_in_one_dimension() {
    // f(θ) = 3θ²: (f(θ + cΔ) − f(θ − cΔ)) / (2cΔ) = 6θ exactly = f'(θ).
    let mut spsa = Spsa::new(2, 1, 0.1, 0.05, one_digest_config());
    let theta = 0.7;
    let (_, gradient, update) = iterate(&mut spsa, &[theta], |t| 3.0 * t[0] * t[0]);
    assert!(close(gradient[0], 6.0 * theta), "{}", gradient[0]);
    assert!(close(update[0], -spsa.learning_rate(0) * 6.0 * theta));
    assert!(update[0] < 0.0, "a positive slope must move θ down");
}

#[test]
fn gradient_matches_spsa_formula_on_a_quadratic() {
    // f(θ) = Σ bᵢθᵢ²; f(θ+cΔ) − f(θ−cΔ) = 2c·Δᵀ∇f, so ĝᵢ = Δᵀ∇f / Δᵢ.
    let b = [1.0, 2.0, 0.5, 4.0];
    let theta = [0.3, -0.2, 1.0, 0.1];
    let f = |t: &[f64]| t.iter().zip(b).map(|(t, b)| b * t * t).sum::<f64>();
    let mut spsa = Spsa::new(9, 4, 0.2, 0.1, one_digest_config());
    let (delta, gradient, update) = iterate(&mut spsa, &theta, f);

    let directional: f64 = (0..4).map(|j| 2.0 * b[j] * theta[j] * delta[j]).sum();
    let a0 = spsa.learning_rate(0);
    for i in 0..4 {
        let expected = directional / delta[i];
        assert!(
            close(gradient[i], expected),
            "{i}: {} vs {expected}",
            gradient[i]
        );
        assert!(close(update[i], -a0 * expected));
    }
}

#[test]
fn converges_on_a_noisy_quadratic() {
    let target = [0.5, -0.25, 0.75, 0.0];
    let mut noise = ChaCha8Rng::seed_from_u64(99);
    let mut theta = [0.0; 4];
    let mut spsa = Spsa::new(4, 4, 0.3, 0.1, one_digest_config());
    for _ in 0..400 {
        let mut sample = |t: &[f64]| {
            let n = (noise.next_u32() as f64 / u32::MAX as f64 - 0.5) * 0.01;
            t.iter()
                .zip(target)
                .map(|(t, c)| (t - c).powi(2))
                .sum::<f64>()
                + n
        };
        let (_, _, update) = iterate(&mut spsa, &theta, &mut sample);
        theta
            .iter_mut()
            .zip(update.iter())
            .for_each(|(t, u)| *t += u);
    }
    let dist: f64 = theta.iter().zip(target).map(|(t, c)| (t - c).powi(2)).sum();
    assert!(dist < 1e-3, "distance² {dist}, θ = {theta:?}");
}

#[test]
fn gain_schedules_match_hand_computed_values() {
    let spsa = Spsa::new(0, 1, 0.1, 0.2, SpsaConfig::default());
    // a₀ / (k + 1 + 10)^0.602 and c₀ / (k + 1)^0.101, computed independently.
    assert!(close(spsa.learning_rate(0), 0.023_609_218_065_474_107));
    assert!(close(spsa.learning_rate(1), 0.022_404_377_924_347_463));
    assert!(close(spsa.learning_rate(9), 0.016_473_274_777_594_173));
    assert_eq!(spsa.perturbation_scale(0), 0.2);
    assert!(close(spsa.perturbation_scale(1), 0.186_477_297_287_366_5));
    assert!(close(spsa.perturbation_scale(9), 0.158_500_266_096_094_36));

    let harmonic = SpsaConfig {
        alpha: 1.0,
        gamma: 1.0,
        stability_a: 0.0,
        ..SpsaConfig::default()
    };
    let spsa = Spsa::new(0, 1, 1.0, 1.0, harmonic);
    for k in 0..10u64 {
        assert_eq!(spsa.learning_rate(k), 1.0 / (k + 1) as f64);
        assert_eq!(spsa.perturbation_scale(k), 1.0 / (k + 1) as f64);
    }
    let a = spsa.learning_rate(u64::MAX);
    assert!(a.is_finite() && a > 0.0);
}

#[test]
fn window_is_aggregated_with_configured_aggregation() {
    let mut spsa = Spsa::new(1, 2, 0.1, 0.05, SpsaConfig::default());
    spsa.generate_perturbation();
    for v in [100.0, 3.0, 1.0, 4.0, 2.0] {
        spsa.record_objective(v);
    }
    assert!(spsa.has_enough_samples());
    spsa.complete_eval_window();
    // 10 % trim of 5 equal weights: (0.5·1 + 2 + 3 + 4 + 0.5·100) / 4
    assert!(close(spsa.y_plus().unwrap(), 59.5 / 4.0));

    let median = SpsaConfig {
        aggregation: Aggregation::Median,
        ..SpsaConfig::default()
    };
    let mut spsa = Spsa::new(1, 2, 0.1, 0.05, median);
    spsa.generate_perturbation();
    spsa.record_weighted(1.0, 10);
    spsa.record_weighted(50.0, 1);
    spsa.record_digest(&TelemetryDigest::new(1_000, 2.0, 30))
        .unwrap();
    spsa.complete_eval_window();
    assert_eq!(spsa.y_plus(), Some(2.0));
}

#[test]
fn non_finite_and_misplaced_samples_are_ignored_and_counted() {
    let mut spsa = Spsa::new(1, 2, 0.1, 0.05, SpsaConfig::default());
    spsa.record_objective(1.0);
    assert_eq!(spsa.ignored_samples(), 1);

    spsa.generate_perturbation();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        spsa.record_objective(bad);
    }
    spsa.record_weighted(1.0, 0);
    assert_eq!(spsa.window_len(), 0);
    assert_eq!(spsa.ignored_samples(), 5);
    let bad_digest = TelemetryDigest::new(1_000, f64::NAN, 3);
    assert!(matches!(
        spsa.record_digest(&bad_digest),
        Err(DigestError::NonFiniteObjective(_))
    ));
    assert_eq!(
        spsa.record_digest(&TelemetryDigest::new(1_000, 1.0, 0)),
        Err(DigestError::ZeroSampleCount)
    );
    assert_eq!(spsa.ignored_samples(), 7);

    spsa.record_objective(3.0);
    spsa.complete_eval_window();
    assert_eq!(spsa.y_plus(), Some(3.0));
}

#[test]
fn overflowing_update_is_zeroed_and_counted() {
    let mut spsa = Spsa::new(1, 3, 0.1, 0.05, one_digest_config());
    spsa.generate_perturbation();
    spsa.record_objective(f64::MAX);
    spsa.complete_eval_window();
    spsa.record_objective(-f64::MAX);
    let (gradient, update) = spsa.complete_eval_window().unwrap();
    assert!(gradient.iter().chain(update.iter()).all(|v| *v == 0.0));
    assert_eq!(spsa.degenerate_updates(), 1);
    assert_eq!(spsa.iteration(), 1);
}

#[test]
fn same_seed_same_run_different_seed_different_deltas() {
    let f = |t: &[f64]| t.iter().map(|x| (x - 0.3).powi(2)).sum::<f64>();
    let run = |seed| {
        let mut spsa = Spsa::new(seed, 8, 0.1, 0.05, one_digest_config());
        let mut theta = [0.0; 8];
        let mut trace = Vec::new();
        for _ in 0..20 {
            let (delta, gradient, update) = iterate(&mut spsa, &theta, f);
            theta
                .iter_mut()
                .zip(update.iter())
                .for_each(|(t, u)| *t += u);
            trace.push((delta, gradient, update));
        }
        trace
    };
    let (a, b) = (run(7), run(7));
    for ((da, ga, ua), (db, gb, ub)) in a.iter().zip(&b) {
        assert!(da.bit_eq(db) && ga.bit_eq(gb) && ua.bit_eq(ub));
    }
    let c = run(8);
    assert!(a.iter().zip(&c).any(|(x, y)| x.0 != y.0));
}

fn deltas(spsa: &mut Spsa, n: usize) -> Vec<ParamVec> {
    (0..n)
        .map(|_| {
            let d = spsa.generate_perturbation();
            spsa.abort_iteration();
            d
        })
        .collect()
}

#[test]
fn restore_at_ready_continues_the_identical_sequence() {
    let mut a = Spsa::new(21, 5, 0.1, 0.05, one_digest_config());
    let f = |t: &[f64]| t.iter().map(|x| x * x).sum::<f64>();
    for _ in 0..3 {
        iterate(&mut a, &[0.1; 5], f);
    }
    a.set_gains(0.4, 0.02).unwrap();
    a.set_stability_a(3.0).unwrap();
    let json = serde_json::to_string(&a.checkpoint()).unwrap();
    let checkpoint: SpsaCheckpoint = serde_json::from_str(&json).unwrap();
    assert_eq!(checkpoint, a.checkpoint());

    let mut b = Spsa::new(0, 5, 1.0, 1.0, one_digest_config());
    b.restore(&checkpoint).unwrap();
    assert_eq!(b.iteration(), 3);
    assert_eq!(b.gains(), (0.4, 0.02));
    assert_eq!(b.config().stability_a, 3.0);
    assert_eq!(b.learning_rate(3), a.learning_rate(3));

    let (ra, rb) = (iterate(&mut a, &[0.2; 5], f), iterate(&mut b, &[0.2; 5], f));
    assert!(ra.0.bit_eq(&rb.0) && ra.1.bit_eq(&rb.1) && ra.2.bit_eq(&rb.2));
    assert_eq!(deltas(&mut a, 10), deltas(&mut b, 10));
}

#[test]
fn restore_mid_iteration_redoes_it_with_the_same_delta() {
    let mut a = Spsa::new(33, 3, 0.1, 0.05, SpsaConfig::default());
    deltas(&mut a, 2);
    let in_flight = a.generate_perturbation();
    a.record_objective(1.0);
    let checkpoint = a.checkpoint();

    let mut b = Spsa::new(33, 3, 0.1, 0.05, SpsaConfig::default());
    b.generate_perturbation();
    b.restore(&checkpoint).unwrap();
    assert_eq!(b.state(), &SpsaState::Ready);
    assert_eq!(b.generate_perturbation(), in_flight);
    // Ids are never reused.
    assert!(matches!(
        b.state(),
        SpsaState::WaitingPlus {
            perturbation_id: 3,
            ..
        }
    ));
    a.abort_iteration();
    b.abort_iteration();
    assert_eq!(deltas(&mut a, 5), deltas(&mut b, 5));
}

#[test]
fn restore_rejects_mismatched_or_invalid_checkpoints() {
    let source = Spsa::new(1, 3, 0.1, 0.05, SpsaConfig::default());
    let mut target = Spsa::new(2, 4, 0.1, 0.05, SpsaConfig::default());
    target.generate_perturbation();
    let before = target.state().clone();
    assert_eq!(
        target.restore(&source.checkpoint()),
        Err(SpsaConfigError::CheckpointMismatch {
            expected: 4,
            found: 3
        })
    );
    let bad = SpsaCheckpoint {
        num_params: 4,
        learning_rate: f64::NAN,
        ..source.checkpoint()
    };
    assert!(matches!(
        target.restore(&bad),
        Err(SpsaConfigError::InvalidGain { .. })
    ));
    assert_eq!(target.state(), &before);
    assert_eq!(target.seed(), 2);
}

#[test]
fn window_buffer_is_reused_across_iterations() {
    let mut spsa = Spsa::new(1, 2, 0.1, 0.05, SpsaConfig::default());
    let buffer = |spsa: &Spsa| match spsa.state() {
        SpsaState::WaitingPlus { accumulated, .. }
        | SpsaState::WaitingMinus { accumulated, .. } => {
            (accumulated.as_ptr(), accumulated.capacity())
        }
        SpsaState::Ready => panic!("no window in Ready"),
    };
    spsa.generate_perturbation();
    let first = buffer(&spsa);
    assert_eq!(first.1, 5);
    for _ in 0..3 {
        spsa.generate_perturbation();
        assert_eq!(buffer(&spsa), first);
        for v in 0..5 {
            spsa.record_objective(v as f64);
        }
        spsa.complete_eval_window();
        assert_eq!(buffer(&spsa), first);
        for v in 0..5 {
            spsa.record_objective(v as f64);
        }
        spsa.complete_eval_window();
    }
}

#[test]
fn new_clamps_invalid_inputs_to_an_inert_optimiser() {
    let config = SpsaConfig {
        eval_window_digests: 0,
        eval_window_us: 0,
        settle_time_us: u64::MAX,
        alpha: f64::NAN,
        gamma: f64::INFINITY,
        stability_a: -1.0,
        aggregation: Aggregation::TrimmedMean { trim_fraction: 0.9 },
    };
    let mut spsa = Spsa::new(1, 2, f64::NAN, -1.0, config);
    let c = spsa.config();
    assert_eq!(c.eval_window_digests, 1);
    assert_eq!(c.eval_window_us, 500_000);
    assert_eq!(c.settle_time_us, 499_999);
    assert_eq!((c.alpha, c.gamma, c.stability_a), (0.602, 0.101, 10.0));
    assert_eq!(c.aggregation, Aggregation::Median);
    assert!(c.validate().is_ok());
    assert_eq!(spsa.gains(), (0.0, 0.0));

    // c_k = 0 gives no information: zero gradient, zero update, no panic.
    let (_, gradient, update) = iterate(&mut spsa, &[0.0, 0.0], |t| t[0]);
    assert!(gradient.iter().chain(update.iter()).all(|v| *v == 0.0));

    let empty = Spsa::new(1, 0, 0.1, 0.1, SpsaConfig::default());
    assert_eq!(empty.clone().generate_perturbation().len(), 0);
}

#[test]
fn validation_reports_each_invalid_field() {
    let base = SpsaConfig::default();
    let cases = [
        (
            SpsaConfig {
                eval_window_digests: 0,
                ..base.clone()
            },
            SpsaConfigError::ZeroEvalWindowDigests,
        ),
        (
            SpsaConfig {
                eval_window_us: 0,
                ..base.clone()
            },
            SpsaConfigError::ZeroEvalWindowUs,
        ),
        (
            SpsaConfig {
                settle_time_us: 500_000,
                ..base.clone()
            },
            SpsaConfigError::SettleNotShorterThanWindow {
                settle_time_us: 500_000,
                eval_window_us: 500_000,
            },
        ),
        (
            SpsaConfig {
                gamma: -0.1,
                ..base.clone()
            },
            SpsaConfigError::InvalidExponent {
                name: "gamma",
                value: -0.1,
            },
        ),
        (
            SpsaConfig {
                stability_a: f64::INFINITY,
                ..base.clone()
            },
            SpsaConfigError::InvalidStabilityA(f64::INFINITY),
        ),
        (
            SpsaConfig {
                aggregation: Aggregation::TrimmedMean { trim_fraction: 0.5 },
                ..base.clone()
            },
            SpsaConfigError::Aggregation(AggregationError::InvalidTrimFraction(0.5)),
        ),
    ];
    for (config, expected) in cases {
        assert_eq!(config.validate(), Err(expected));
        assert!(config.clone().sanitized().validate().is_ok());
        assert!(Spsa::try_new(1, 1, 0.1, 0.1, config).is_err());
    }
    assert!(base.validate().is_ok());
    assert_eq!(base.clone().sanitized(), base);
    for (a, c) in [
        (0.0, 0.1),
        (0.1, 0.0),
        (f64::NAN, 0.1),
        (0.1, f64::INFINITY),
    ] {
        assert!(matches!(
            Spsa::try_new(1, 1, a, c, SpsaConfig::default()),
            Err(SpsaConfigError::InvalidGain { .. })
        ));
    }
}

#[test]
fn config_serde_round_trips_and_accepts_seed_fields_only() {
    let config = SpsaConfig::default();
    let json = serde_json::to_string(&config).unwrap();
    assert_eq!(serde_json::from_str::<SpsaConfig>(&json).unwrap(), config);
    let seed_form = r#"{"eval_window_digests":5,"eval_window_us":500000,
            "settle_time_us":10000,"alpha":0.602,"gamma":0.101,"stability_a":10.0}"#;
    assert_eq!(
        serde_json::from_str::<SpsaConfig>(seed_form).unwrap(),
        config
    );
}

#[test]
fn set_gains_mid_iteration_keeps_the_applied_scale() {
    let mut spsa = Spsa::new(1, 1, 0.1, 0.5, one_digest_config());
    let delta = spsa.generate_perturbation();
    spsa.record_objective(3.0);
    spsa.complete_eval_window();
    spsa.set_gains(0.2, 0.01).unwrap();
    assert_eq!(spsa.in_flight_scale(), Some(0.5));
    spsa.record_objective(1.0);
    let (gradient, update) = spsa.complete_eval_window().unwrap();
    // (3 − 1) / (2 · 0.5 · Δ) with the old c₀; the new a₀ applies.
    assert_eq!(gradient[0], 2.0 * delta[0]);
    assert_eq!(update[0], -spsa.learning_rate(0) * gradient[0]);
    assert!(close(spsa.learning_rate(0), 0.2 / 11f64.powf(0.602)));
    spsa.generate_perturbation();
    assert_eq!(spsa.in_flight_scale(), Some(spsa.perturbation_scale(1)));
}
