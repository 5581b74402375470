//! The executor's rules on integer, log-scale and choice knobs, one
//! scenario each through the public API, and a property test over random
//! mixed spaces and random (often hostile) proposals: whatever is proposed,
//! the live configuration only ever holds values of its knobs, every
//! refusal is typed and leaves it untouched, and every accepted change
//! respects the typed movement rules.

use hotpath::{
    AtomicConfig, Guardrails, Knob, KnobKind, ManualClock, ParamSpace, ParamVec, Proposal,
    SafeModeReason, SafetyExecutor, Violation,
};
use proptest::prelude::*;
use std::sync::Arc;

const MS: u64 = 1_000;

struct Rig {
    ex: SafetyExecutor<ManualClock>,
    clock: ManualClock,
    config: Arc<AtomicConfig>,
    space: Arc<ParamSpace>,
}

/// No interval and 1000/s, so rules other than the rate can be reached.
fn permissive() -> Guardrails {
    Guardrails {
        min_interval_us: 0,
        max_updates_per_second: 1000.0,
        ..Guardrails::default()
    }
}

fn rig(knobs: Vec<Knob>, guardrails: Guardrails) -> Rig {
    let space = Arc::new(ParamSpace::new(knobs).expect("valid space"));
    let config = Arc::new(AtomicConfig::new(space.initial()));
    let clock = ManualClock::new(1_000_000);
    let ex = SafetyExecutor::builder(config.clone())
        .space(space.clone())
        .guardrails(guardrails)
        .clock(clock.clone())
        .build()
        .expect("valid executor");
    Rig {
        ex,
        clock,
        config,
        space,
    }
}

fn update(delta: &[f64]) -> Proposal {
    Proposal::Update {
        iteration: 1,
        delta: ParamVec::from_slice(delta),
        gradient_estimate: ParamVec::new(),
    }
}

fn plus(delta: &[f64]) -> Proposal {
    Proposal::ApplyPlus {
        perturbation_id: 1,
        delta: ParamVec::from_slice(delta),
    }
}

impl Rig {
    /// Moves to `target` values (a delta from the live config), a ms later.
    fn to(&mut self, target: &[f64]) -> Result<(), Violation> {
        self.clock.advance(MS);
        let live = self.config.load().params;
        let delta: Vec<f64> = target.iter().zip(live.iter()).map(|(t, l)| t - l).collect();
        self.ex.apply(update(&delta)).map(|_| ())
    }
}

#[test]
fn integers_stay_on_their_grid_and_may_always_move_one_step() {
    // 1..4: one step is a third of the range, beyond the 10 % step limit.
    let mut r = rig(vec![Knob::int("replicas", 1, 4, 2)], permissive());
    assert_eq!(
        r.ex.apply(update(&[0.5])),
        Err(Violation::OffGrid {
            index: 0,
            value: 2.5
        })
    );
    assert_eq!(r.to(&[3.0]), Ok(()), "one grid step always passes");
    assert!(matches!(
        r.to(&[1.0]),
        Err(Violation::DeltaTooLarge { index: 0, .. })
    ));
    assert_eq!(r.config.load().params[0], 3.0);

    // A grid of 8: 12 is within the bounds and off the grid.
    let mut r = rig(vec![Knob::int("batch", 8, 512, 64).step(8)], permissive());
    assert_eq!(
        r.to(&[68.0]),
        Err(Violation::OffGrid {
            index: 0,
            value: 68.0
        })
    );
    assert_eq!(r.to(&[96.0]), Ok(()));
}

#[test]
fn log_knobs_are_governed_in_log_units() {
    // ln(10_000) · 0.1 = 0.92: one step may multiply by up to e^0.92 ≈ 2.5.
    let mut r = rig(
        vec![Knob::real("ttl_s", 1.0, 10_000.0, 10.0).log()],
        permissive(),
    );
    assert_eq!(r.to(&[24.0]), Ok(()));
    let refused = r.to(&[24.0 * 3.0]).unwrap_err();
    match refused {
        Violation::DeltaTooLarge {
            index: 0, delta, ..
        } => {
            assert!(
                (delta - 3f64.ln() / 10_000f64.ln()).abs() < 1e-12,
                "{delta}"
            );
        }
        other => panic!("expected DeltaTooLarge, got {other:?}"),
    }
    // A value the logarithm cannot take is out of bounds, not a huge step.
    assert!(matches!(
        r.to(&[-1.0]),
        Err(Violation::OutOfBounds { index: 0, .. })
    ));
    // The same ratio is the same step anywhere in the range.
    let mut high = rig(
        vec![Knob::real("ttl_s", 1.0, 10_000.0, 4_000.0).log()],
        permissive(),
    );
    assert!(matches!(
        high.to(&[4_000.0 / 3.0]),
        Err(Violation::DeltaTooLarge { index: 0, .. })
    ));
    assert_eq!(high.to(&[4_000.0 / 2.4]), Ok(()));
}

#[test]
fn a_choice_switches_one_at_a_time_exempt_from_the_step_size() {
    let codec = Knob::choice("codec", ["none", "lz4", "zstd"], "none");
    let hash = Knob::choice("hash", ["fx", "sip"], "fx");
    let mut r = rig(
        vec![codec, hash, Knob::real("x", 0.0, 1.0, 0.5)],
        permissive(),
    );
    // none → zstd moves the index by the whole range: a switch, not a step.
    assert_eq!(r.to(&[2.0, 0.0, 0.5]), Ok(()));
    assert_eq!(
        r.to(&[1.0, 1.0, 0.5]),
        Err(Violation::TooManySwitches { index: 1, limit: 1 })
    );
    assert_eq!(
        r.to(&[1.5, 0.0, 0.5]),
        Err(Violation::OffGrid {
            index: 0,
            value: 1.5
        })
    );
    assert!(matches!(
        r.to(&[3.0, 0.0, 0.5]),
        Err(Violation::OutOfBounds { index: 0, .. })
    ));
    // A probe may switch one choice away from the centre, not two.
    assert!(r.ex.apply(plus(&[0.0, 1.0, 0.0])).is_ok());
    assert_eq!(
        r.ex.apply(plus(&[-1.0, 0.0, 0.0])),
        Err(Violation::TooManySwitches { index: 1, limit: 1 })
    );
    assert_eq!(
        r.space.named(&r.config.load().params).to_string(),
        "codec=zstd hash=sip x=0.5"
    );
}

#[test]
fn choice_switches_count_as_reversals_and_spend_the_budget() {
    let mut r = rig(
        vec![Knob::choice("codec", ["none", "lz4", "zstd"], "none")],
        Guardrails {
            max_cumulative_delta_per_minute: 1.0,
            ..permissive()
        },
    );
    // The first switch sets a direction; each later one reverses it. The
    // flip limit (3 a minute) allows three more.
    for target in [1.0, 2.0, 0.0, 1.0] {
        assert_eq!(r.to(&[target]), Ok(()), "switch to {target}");
    }
    assert!(matches!(
        r.to(&[2.0]),
        Err(Violation::DirectionFlipViolation {
            index: 0,
            flips: 4,
            limit: 3,
            ..
        })
    ));
    assert!(r
        .ex
        .control_safety()
        .reasons()
        .contains(SafeModeReason::Thrashing));
    assert!(
        (r.ex.budget_remaining(0) - 0.6).abs() < 1e-12,
        "four switches of 0.1 each"
    );
}

/// A knob of a random kind, with an initial value of that kind.
fn knob(i: usize) -> impl Strategy<Value = Knob> {
    prop_oneof![
        (-100.0..100.0f64, 0.5..50.0f64, 0.0..1.0f64).prop_map(move |(min, w, u)| Knob::real(
            format!("r{i}"),
            min,
            min + w,
            min + u * w
        )),
        (-3.0..1.0f64, 0.2..4.0f64, 0.0..1.0f64).prop_map(move |(lo, decades, u)| {
            let (min, ratio) = (10f64.powf(lo), 10f64.powf(decades));
            Knob::real(format!("l{i}"), min, min * ratio, min * ratio.powf(u)).log()
        }),
        (-50i64..50, 1i64..40, 1i64..5, 0.0..1.0f64).prop_map(move |(min, k, step, u)| {
            let n = (u * k as f64) as i64;
            Knob::int(format!("i{i}"), min, min + k * step, min + n * step).step(step)
        }),
        (1i64..20, 2i64..4096, 0.0..1.0f64).prop_map(move |(min, ratio, u)| {
            let max = min * ratio;
            let initial = (min as f64 * (ratio as f64).powf(u)).round() as i64;
            Knob::int(format!("g{i}"), min, max, initial.clamp(min, max)).log()
        }),
        (2usize..6, 0usize..6).prop_map(move |(k, init)| {
            let options: Vec<String> = (0..k).map(|o| format!("o{o}")).collect();
            let initial = options[init % k].clone();
            Knob::choice(format!("c{i}"), options, &initial)
        }),
    ]
}

fn space() -> impl Strategy<Value = Vec<Knob>> {
    (1usize..7).prop_flat_map(|n| (0..n).map(knob).collect::<Vec<_>>())
}

/// A target for one knob, relative to its range: often a small move,
/// sometimes a grid point, sometimes garbage.
fn target() -> impl Strategy<Value = (u8, f64)> {
    (0u8..7, -1.5..1.5f64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn live_values_are_always_values_of_their_knobs(
        knobs in space(),
        steps in prop::collection::vec((prop::collection::vec(target(), 7), 0u8..3, 0u64..400), 1..60),
    ) {
        let mut r = rig(knobs, Guardrails { direction_flip_limit: 1000, ..permissive() });
        let space = r.space.clone();
        let limit = r.ex.guardrails().max_delta_per_step;
        for (targets, kind, advance_ms) in steps {
            r.clock.advance(advance_ms * MS);
            let before = r.config.load();
            let centre = r.ex.centre().to_vec();
            let delta: Vec<f64> = (0..space.len()).map(|i| {
                let (how, u) = targets[i];
                let (v, range) = (before.params[i], space.range(i));
                let raw = match how {
                    0 => space.from_unit(i, space.to_unit(i, v) + 0.05 * u),
                    1 => space.snap(i, space.from_unit(i, space.to_unit(i, v) + 0.1 * u)),
                    5 if u.abs() > 1.0 => space.from_unit(i, space.to_unit(i, v) + 0.2 * u.signum() * (u.abs() - 1.0) + 0.1 * u.signum()),
                    2 => space.snap(i, v + u.signum()),
                    3 => v + u * range,
                    4 => space.snap(i, space.from_unit(i, (u + 1.5) / 3.0)),
                    _ => f64::NAN,
                };
                raw - v
            }).collect();
            let proposal = match kind {
                0 => update(&delta),
                1 => plus(&delta),
                _ => Proposal::ApplyMinus { perturbation_id: 1, delta: ParamVec::from_slice(&delta) },
            };
            let result = r.ex.apply(proposal);
            let after = r.config.load();
            prop_assert_eq!(space.knobs().iter().enumerate()
                .find(|(i, _)| !space.admits(*i, after.params[*i])).map(|(i, _)| i), None,
                "live {:?}", after.params);
            match result {
                Err(_) => prop_assert!(after.params.bit_eq(&before.params) && after.generation == before.generation),
                Ok(_) => {
                    let mut switched = 0;
                    for (i, (knob, &c)) in space.knobs().iter().zip(&centre).enumerate() {
                        let (a, b) = (before.params[i], after.params[i]);
                        match knob.kind() {
                            KnobKind::Choice { .. } => switched += usize::from(b != c),
                            kind => {
                                let one_step = matches!(kind, KnobKind::Int { step, .. } if (b - a).abs() <= *step as f64);
                                let moved = (space.to_unit(i, b) - space.to_unit(i, a)).abs();
                                prop_assert!(one_step || moved <= limit * (1.0 + 1e-9), "knob {} moved {} of its range", i, moved);
                            }
                        }
                    }
                    prop_assert!(switched <= 1, "{} choices away from the centre", switched);
                }
            }
        }
    }
}
