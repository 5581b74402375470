//! What each case's executor is built from: a [`Setup`] (parameters and
//! their bounds, guardrails, rollback policy, audit capacity, clock start,
//! how eager the audit consumer is, how hostile the proposer), generated
//! per [`Profile`].

use crate::SECOND;
use hotpath::{Guardrails, RollbackPolicy, MAX_TIME_US};
use proptest::prelude::*;

/// Everything the executor is built from.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    pub(crate) initial: Vec<f64>,
    pub(crate) initial_generation: u64,
    pub(crate) guardrails: Guardrails,
    pub(crate) policy: RollbackPolicy,
    pub(crate) audit_capacity: usize,
    pub(crate) clock_start: u64,
    /// The audit consumer keeps up: drain after every step.
    pub(crate) eager_consumer: bool,
    pub(crate) hostility: Hostility,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Profile {
    /// Presets with random variations, realistic time steps, any queue.
    Mixed,
    /// Fast rates, tiny time steps, small queues: the windows, flips, budget
    /// and audit reserve are hit constantly.
    Pressure,
}

/// How often the proposer sends malformed or hostile values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Hostility {
    Tame,
    Normal,
    Hostile,
}

fn preset_guardrails(i: u8) -> Guardrails {
    match i % 3 {
        0 => Guardrails::preset_conservative(),
        1 => Guardrails::preset_balanced(),
        _ => Guardrails::preset_aggressive(),
    }
}

fn preset_policy(i: u8) -> RollbackPolicy {
    match i % 3 {
        0 => RollbackPolicy::preset_conservative(),
        1 => RollbackPolicy::preset_balanced(),
        _ => RollbackPolicy::preset_aggressive(),
    }
}

/// One parameter: `(bounds, initial value)`.
fn param_strategy(bounded: bool) -> BoxedStrategy<(Option<(f64, f64)>, f64)> {
    if bounded {
        (
            prop_oneof![
                3 => -1e3..1e3f64,
                1 => Just(0.0f64),
                1 => -1e9..1e9f64,
            ],
            prop_oneof![
                2 => 1e-3..10.0f64,
                2 => 1.0..1e4f64,
                1 => Just(1.0f64),
                1 => 1e6..1e9f64,
            ],
            prop_oneof![
                4 => 0.0..=1.0f64,
                1 => Just(0.0f64),
                1 => Just(1.0f64),
                1 => Just(0.5f64),
            ],
        )
            .prop_map(|(min, width, pos)| {
                let max = min + width;
                let value = if pos >= 1.0 {
                    max
                } else {
                    (min + pos * (max - min)).clamp(min, max)
                };
                (Some((min, max)), value)
            })
            .boxed()
    } else {
        prop_oneof![
            4 => -10.0..10.0f64,
            1 => Just(0.0f64),
            1 => Just(-0.0f64),
            1 => -1e6..1e6f64,
            1 => 1e9..1e13f64,
        ]
        .prop_map(|v| (None, v))
        .boxed()
    }
}

fn guardrails_strategy(profile: Profile) -> BoxedStrategy<Guardrails> {
    let base = (
        0u8..3,
        prop::option::of(prop_oneof![1e-6..=1.0f64, Just(1.0f64), Just(0.5f64)]),
        prop::option::of(prop_oneof![
            1.0..=1000.0f64,
            Just(1000.0f64),
            Just(1.0f64),
            1.0..5.0f64
        ]),
        prop::option::of(prop_oneof![Just(0u64), 0..2 * SECOND, 0..1_000u64]),
        prop::option::of(0u32..=5),
        prop::option::of(prop_oneof![Just(0u64), 0..120 * SECOND]),
        prop::option::of(prop_oneof![1e-3..3.0f64, 0.05..1.0f64]),
        prop::option::of(1u32..=12),
        prop::option::of(1u32..=25),
    );
    match profile {
        Profile::Mixed => base
            .prop_map(
                |(preset, step, rate, interval, flips, cooldown, budget, regr, viol)| {
                    let p = preset_guardrails(preset);
                    Guardrails {
                        max_delta_per_step: step.unwrap_or(p.max_delta_per_step),
                        max_updates_per_second: rate.unwrap_or(p.max_updates_per_second),
                        min_interval_us: interval.unwrap_or(p.min_interval_us),
                        direction_flip_limit: flips.unwrap_or(p.direction_flip_limit),
                        cooldown_after_flip_us: cooldown.unwrap_or(p.cooldown_after_flip_us),
                        max_cumulative_delta_per_minute: budget
                            .unwrap_or(p.max_cumulative_delta_per_minute),
                        regression_count_limit: regr.unwrap_or(p.regression_count_limit),
                        violation_limit: viol.unwrap_or(p.violation_limit),
                        bounds: None,
                    }
                },
            )
            .boxed(),
        Profile::Pressure => (
            0u8..3,
            prop_oneof![1e-3..=1.0f64, Just(1.0f64), Just(0.1f64)],
            prop_oneof![50.0..=1000.0f64, Just(1000.0f64), 1.0..50.0f64],
            prop_oneof![4 => Just(0u64), 1 => 0..5_000u64],
            0u32..=5,
            prop_oneof![Just(0u64), 0..5 * SECOND],
            prop_oneof![1e-3..3.0f64, 0.05..1.0f64],
            1u32..=12,
            3u32..=25,
        )
            .prop_map(
                |(preset, step, rate, interval, flips, cooldown, budget, regr, viol)| Guardrails {
                    max_delta_per_step: step,
                    max_updates_per_second: rate,
                    min_interval_us: interval,
                    direction_flip_limit: flips,
                    cooldown_after_flip_us: cooldown,
                    max_cumulative_delta_per_minute: budget,
                    regression_count_limit: regr,
                    violation_limit: viol,
                    ..preset_guardrails(preset)
                },
            )
            .boxed(),
    }
}

fn policy_strategy(profile: Profile) -> BoxedStrategy<RollbackPolicy> {
    let stable = match profile {
        Profile::Mixed => prop_oneof![Just(0u64), 0..10 * SECOND, 0..50_000u64].boxed(),
        Profile::Pressure => prop_oneof![Just(0u64), 0..SECOND, 0..2_000u64].boxed(),
    };
    (
        0u8..3,
        prop::option::of(1u32..=6),
        prop::option::of(0u32..=12),
        prop::option::of(stable),
        prop::option::of(0.0..4.0f64),
        prop::option::of(prop_oneof![Just(0.0f64), 0.0..0.1f64]),
    )
        .prop_map(|(preset, regr, per_hour, stable, sigmas, tolerance)| {
            let p = preset_policy(preset);
            RollbackPolicy {
                max_consecutive_regressions: regr.unwrap_or(p.max_consecutive_regressions),
                max_rollbacks_per_hour: per_hour.unwrap_or(p.max_rollbacks_per_hour),
                min_stable_time_us: stable.unwrap_or(p.min_stable_time_us),
                regression_sigmas: sigmas.unwrap_or(p.regression_sigmas),
                regression_tolerance: tolerance.unwrap_or(p.regression_tolerance),
            }
        })
        .boxed()
}

pub(crate) fn setup_strategy(profile: Profile) -> BoxedStrategy<Setup> {
    let capacity = match profile {
        Profile::Mixed => prop_oneof![
            3 => 16usize..=64,
            1 => Just(16usize),
            1 => 65usize..1024,
            3 => Just(4096usize),
        ]
        .boxed(),
        Profile::Pressure => prop_oneof![3 => 16usize..=64, 1 => Just(16usize)].boxed(),
    };
    (1usize..=16, any::<bool>())
        .prop_flat_map(move |(n, bounded)| {
            (
                prop::collection::vec(param_strategy(bounded), n),
                prop_oneof![4 => Just(0u64), 1 => 0..1_000_000u64],
                guardrails_strategy(profile),
                policy_strategy(profile),
                capacity.clone(),
                prop_oneof![
                    Just(0u64),
                    Just(SECOND),
                    0..1_000_000_000_000u64,
                    // The edge of the executor's time range: windows and
                    // timers must keep limiting right up to it. (Readings
                    // beyond it are clock faults, `clock_faults` below.)
                    (0..10 * SECOND).prop_map(|x| MAX_TIME_US - x),
                ],
                prop::bool::weighted(0.3),
                prop_oneof![
                    2 => Just(Hostility::Tame),
                    2 => Just(Hostility::Normal),
                    1 => Just(Hostility::Hostile),
                ],
            )
        })
        .prop_map(
            |(
                params,
                initial_generation,
                mut guardrails,
                policy,
                audit_capacity,
                clock_start,
                eager,
                hostility,
            )| {
                let bounded = params.iter().all(|(b, _)| b.is_some());
                guardrails.bounds =
                    bounded.then(|| params.iter().map(|(b, _)| b.unwrap()).collect());
                Setup {
                    initial: params.iter().map(|(_, v)| *v).collect(),
                    initial_generation,
                    guardrails,
                    policy,
                    audit_capacity,
                    clock_start,
                    eager_consumer: eager,
                    hostility,
                }
            },
        )
        .boxed()
}
