//! Quality benchmark of the adaptive engine in a closed loop.
//!
//! Each digest is `f(live config) + N(0, sd²)`, one digest per evaluation
//! (`eval_window_digests = 1`), a manual clock advancing 200 ms per digest,
//! default guardrails with bounds, 30 seeds, budgets of 200 and 1,000
//! evaluations. For every problem it reports the median and IQR of
//! `L(final centre)/L(θ₀)`, the mean `L` over all evaluated points (regret),
//! and the proposals the executor refused, plus the rollbacks and safe-mode
//! latches the safety loop triggered. The drifting problem also reports
//! evaluations to recover after its optimum moves.
//!
//! ```text
//! cargo run --release -p hotpath --example quality
//! ```

use hotpath::{
    AdaptiveEngine, AdaptiveEngineConfig, AtomicConfig, Knob, ManualClock, ParamSpace, ParamVec,
    SafetyExecutor, SpsaConfig, TelemetryDigest,
};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use std::sync::Arc;

const SEEDS: u64 = 30;
const BUDGETS: [usize; 2] = [200, 1000];
const TICK_US: u64 = 200_000;

struct Problem {
    name: &'static str,
    dims: usize,
    noise_sd: f64,
    /// Loss at `theta` after `evals` evaluations (drift changes it mid-run).
    loss: fn(&[f64], usize) -> f64,
    /// Evaluation at which the optimum moves, if it does.
    drift_at: Option<usize>,
}

fn p1(theta: &[f64], _: usize) -> f64 {
    (theta[0] - 0.2).powi(2) + (theta[1] - 0.7).powi(2)
}

fn p2(theta: &[f64], _: usize) -> f64 {
    theta
        .iter()
        .enumerate()
        .map(|(i, t)| (t - (0.2 + 0.06 * i as f64)).powi(2))
        .sum()
}

fn p4(theta: &[f64], _: usize) -> f64 {
    let (u1, u2) = (4.0 * theta[0] - 2.0, 4.0 * theta[1] - 2.0);
    100.0 * (u2 - u1 * u1).powi(2) + (1.0 - u1).powi(2)
}

/// P1's bowl whose optimum jumps by 20 % of the range (0.2 in each
/// coordinate) at evaluation 500.
fn drifting(theta: &[f64], evals: usize) -> f64 {
    let shift = if evals >= DRIFT_AT { 0.2 } else { 0.0 };
    (theta[0] - 0.2 - shift).powi(2) + (theta[1] - 0.7 + shift).powi(2)
}
const DRIFT_AT: usize = 500;

/// Standard normal by Box–Muller from the seeded stream.
fn gaussian(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

struct Run {
    /// `L(centre)/L(θ₀)` at each budget.
    ratio: Vec<f64>,
    /// Mean `L` over evaluated points up to each budget.
    regret: Vec<f64>,
    refused: u64,
    rollbacks: u64,
    safe_mode: bool,
    rejected: u64,
    /// Evaluations after the drift until `L(centre)` is back under 10 % of
    /// its value right after the move.
    recovery: Option<usize>,
}

fn run(problem: &Problem, seed: u64, config: &AdaptiveEngineConfig) -> Run {
    let clock = ManualClock::new(0);
    let initial = ParamVec::from_slice(&vec![0.5; problem.dims]);
    let mut engine = AdaptiveEngine::with_clock(
        AdaptiveEngineConfig {
            seed,
            ..config.clone()
        },
        initial.clone(),
        clock.clone(),
    )
    .expect("valid benchmark settings");
    let mut noise = ChaCha8Rng::seed_from_u64(seed ^ 0x9E37_79B9_7F4A_7C15);
    let l0 = (problem.loss)(&initial, 0);
    let mut reader = engine.config().reader();
    let (mut ratio, mut regret, mut sum) = (Vec::new(), Vec::new(), 0.0);
    let mut recovery = None;
    let mut after_drift = None;
    for evals in 0..*BUDGETS.last().unwrap_or(&0) {
        clock.advance(TICK_US);
        let live = reader.get().params.clone();
        let l = (problem.loss)(&live, evals);
        sum += l;
        let y = l + problem.noise_sd * gaussian(&mut noise);
        engine
            .step(TelemetryDigest::new(TICK_US, y, 1))
            .expect("finite telemetry");
        let centre_loss = (problem.loss)(engine.executor().centre(), evals);
        if let Some(at) = problem.drift_at {
            if evals == at {
                after_drift = Some(centre_loss);
            }
            if let (Some(start), None) = (after_drift, recovery) {
                if evals > at && centre_loss < 0.1 * start {
                    recovery = Some(evals - at);
                }
            }
        }
        if BUDGETS.contains(&(evals + 1)) {
            let reference = if problem.drift_at.is_some_and(|at| evals >= at) {
                after_drift.unwrap_or(l0)
            } else {
                l0
            };
            ratio.push(centre_loss / reference);
            regret.push(sum / (evals + 1) as f64);
        }
    }
    Run {
        ratio,
        regret,
        refused: engine.executor().stats().refused,
        rollbacks: engine.executor().stats().rollbacks,
        safe_mode: engine.executor().control_safety().is_latched(),
        rejected: engine.stats().steps_rejected,
        recovery,
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn summarise(label: &str, problem: &Problem, config: &AdaptiveEngineConfig) {
    let runs: Vec<Run> = (0..SEEDS).map(|seed| run(problem, seed, config)).collect();
    for (b, budget) in BUDGETS.iter().enumerate() {
        let mut ratios: Vec<f64> = runs.iter().map(|r| r.ratio[b]).collect();
        ratios.sort_by(f64::total_cmp);
        let mut regrets: Vec<f64> = runs.iter().map(|r| r.regret[b]).collect();
        regrets.sort_by(f64::total_cmp);
        println!(
            "| {} | {label} | {budget} | {:.2e} | [{:.2e}, {:.2e}] | {:.3e} |{}",
            problem.name,
            quantile(&ratios, 0.5),
            quantile(&ratios, 0.25),
            quantile(&ratios, 0.75),
            quantile(&regrets, 0.5),
            if b == BUDGETS.len() - 1 {
                format!(" {} |", runs.iter().map(|r| r.refused).sum::<u64>())
            } else {
                " |".to_owned()
            }
        );
    }
    println!(
        "|   | {label}: {} {} rollbacks, {} runs ending in safe mode, {} steps rejected by step control (all runs) | | | | |",
        problem.name,
        runs.iter().map(|r| r.rollbacks).sum::<u64>(),
        runs.iter().filter(|r| r.safe_mode).count(),
        runs.iter().map(|r| r.rejected).sum::<u64>()
    );
    if problem.drift_at.is_some() {
        let mut rec: Vec<f64> = runs
            .iter()
            .map(|r| r.recovery.map_or(f64::INFINITY, |e| e as f64))
            .collect();
        rec.sort_by(f64::total_cmp);
        let recovered = rec.iter().filter(|r| r.is_finite()).count();
        println!(
            "|   | {label}: evaluations to recover (L back under 10 % of its post-drift value): median {}, IQR [{}, {}], recovered in {recovered}/{SEEDS} runs | | | | |",
            quantile(&rec, 0.5),
            quantile(&rec, 0.25),
            quantile(&rec, 0.75)
        );
    }
}

fn main() {
    let problems = [
        Problem {
            name: "P1",
            dims: 2,
            noise_sd: 0.001,
            loss: p1,
            drift_at: None,
        },
        Problem {
            name: "P2",
            dims: 10,
            noise_sd: 0.001,
            loss: p2,
            drift_at: None,
        },
        Problem {
            name: "P4",
            dims: 2,
            noise_sd: 0.01,
            loss: p4,
            drift_at: None,
        },
        Problem {
            name: "drift",
            dims: 2,
            noise_sd: 0.001,
            loss: drifting,
            drift_at: Some(DRIFT_AT),
        },
    ];
    let spsa = SpsaConfig {
        eval_window_digests: 1,
        ..SpsaConfig::default()
    };
    let calibrated = |dims: usize| AdaptiveEngineConfig {
        spsa: spsa.clone(),
        ..AdaptiveEngineConfig::bounded(vec![(0.0, 1.0); dims])
    };
    let fixed = |dims: usize| AdaptiveEngineConfig {
        calibration: None,
        ..calibrated(dims)
    };
    println!(
        "| problem | gains | budget | median L/L0 | IQR | median regret | refused (all runs) |"
    );
    println!("|---|---|---:|---:|---|---:|---:|");
    for problem in &problems {
        summarise("calibrated (default)", problem, &calibrated(problem.dims));
        summarise("fixed a0=0.1 c0=0.04", problem, &fixed(problem.dims));
    }
    println!();
    typed::table(&spsa);
}

/// The typed-knob problems: integer, log-scale, and a mixed space whose
/// choice's best option changes halfway.
mod typed {
    use super::*;

    pub(super) struct TypedProblem {
        pub(super) name: &'static str,
        pub(super) knobs: fn() -> Vec<Knob>,
        /// The optimum at evaluation `evals` (it moves for the choice).
        pub(super) optimum: fn(usize) -> Vec<f64>,
        /// Loss of `theta` at evaluation `evals` on `space`.
        pub(super) loss: fn(&ParamSpace, &[f64], usize) -> f64,
        /// Evaluation at which the choice's best option changes.
        pub(super) change_at: Option<usize>,
        /// Whether a run's final centre counts as reaching the target.
        pub(super) reached: fn(&ParamSpace, &[f64], &[f64]) -> bool,
    }

    /// Squared distance from `theta` to `optimum` in unit coordinates over
    /// the numeric knobs.
    fn unit_distance2(space: &ParamSpace, theta: &[f64], optimum: &[f64]) -> f64 {
        (0..space.len())
            .filter(|&i| !matches!(space.knobs()[i].kind(), hotpath::KnobKind::Choice { .. }))
            .map(|i| (space.to_unit(i, theta[i]) - space.to_unit(i, optimum[i])).powi(2))
            .sum()
    }

    fn int_knobs() -> Vec<Knob> {
        vec![
            Knob::int("a", 1, 64, 8),
            Knob::int("b", 1, 64, 56),
            Knob::int("c", 1, 4096, 1024).log(),
            Knob::int("d", 1, 4096, 64).log(),
        ]
    }

    /// Lattice points whose neighbours the noise lets one tell apart: the
    /// bowl is `INT_CURVATURE · Σ(u − u*)²` in unit coordinates, so one
    /// grid step from the optimum costs 0.025 (linear 1..64), 0.0092 (12 on
    /// the log scale) and 0.048 (5), against noise of sd 0.001. (Around
    /// 300 on a 1..4096 log scale a step costs 1.6·10⁻⁴: no method could
    /// tell 300 from 301 through that noise.)
    fn int_optimum(_: usize) -> Vec<f64> {
        vec![23.0, 41.0, 12.0, 5.0]
    }

    const INT_CURVATURE: f64 = 100.0;

    fn log_knobs() -> Vec<Knob> {
        vec![Knob::real("ttl_s", 1.0, 10_000.0, 10.0).log()]
    }

    fn log_optimum(_: usize) -> Vec<f64> {
        vec![1000.0]
    }

    fn mixed_knobs() -> Vec<Knob> {
        vec![
            Knob::real("ratio", 0.0, 1.0, 0.5),
            Knob::int("batch", 1, 64, 16),
            Knob::choice("codec", ["none", "lz4", "zstd"], "none"),
        ]
    }

    const CHANGE_AT: usize = 500;

    fn mixed_optimum(evals: usize) -> Vec<f64> {
        vec![0.3, 40.0, if evals < CHANGE_AT { 1.0 } else { 2.0 }]
    }

    /// What each codec costs before and after the change.
    fn codec_cost(option: f64, evals: usize) -> f64 {
        let costs = if evals < CHANGE_AT {
            [0.3, 0.0, 0.15]
        } else {
            [0.3, 0.2, 0.0]
        };
        costs.get(option as usize).copied().unwrap_or(1.0)
    }

    fn bowl(space: &ParamSpace, theta: &[f64], optimum: &[f64]) -> f64 {
        unit_distance2(space, theta, optimum)
    }

    /// Every integer within one grid step of the optimum.
    fn lattice_neighbour(_: &ParamSpace, theta: &[f64], optimum: &[f64]) -> bool {
        theta.iter().zip(optimum).all(|(t, o)| (t - o).abs() <= 1.0)
    }

    fn within_tenth(space: &ParamSpace, theta: &[f64], optimum: &[f64]) -> bool {
        unit_distance2(space, theta, optimum).sqrt() <= 0.1
    }

    pub(super) fn problems() -> [TypedProblem; 3] {
        [
            TypedProblem {
                name: "I4 int (2 linear 1..64, 2 log 1..4096)",
                knobs: int_knobs,
                optimum: int_optimum,
                loss: |space, theta, evals| INT_CURVATURE * bowl(space, theta, &int_optimum(evals)),
                change_at: None,
                reached: lattice_neighbour,
            },
            TypedProblem {
                name: "L1 log (optimum two decades up)",
                knobs: log_knobs,
                optimum: log_optimum,
                loss: |space, theta, evals| bowl(space, theta, &log_optimum(evals)),
                change_at: None,
                reached: within_tenth,
            },
            TypedProblem {
                name: "M3 mixed (real, int, 3-option choice changing at 500)",
                knobs: mixed_knobs,
                optimum: mixed_optimum,
                loss: |space, theta, evals| {
                    bowl(space, theta, &mixed_optimum(evals)) + codec_cost(theta[2], evals)
                },
                change_at: Some(CHANGE_AT),
                reached: |_, theta, optimum| theta[2] == optimum[2],
            },
        ]
    }

    struct TypedRun {
        distance: f64,
        regret: f64,
        reached: bool,
        /// Evaluations after the change until the centre holds the new best
        /// option.
        found_after: Option<usize>,
        refused: u64,
    }

    fn run(problem: &TypedProblem, seed: u64, spsa: &SpsaConfig, budget: usize) -> TypedRun {
        let space = Arc::new(ParamSpace::new((problem.knobs)()).expect("valid problem"));
        let clock = ManualClock::new(0);
        let executor = SafetyExecutor::builder(Arc::new(AtomicConfig::new(space.initial())))
            .space(space.clone())
            .clock(clock.clone())
            .build()
            .expect("valid executor");
        let settings = AdaptiveEngineConfig {
            seed,
            spsa: spsa.clone(),
            ..AdaptiveEngineConfig::default()
        };
        let mut engine = AdaptiveEngine::with_executor(settings, executor).expect("valid engine");
        let mut noise = ChaCha8Rng::seed_from_u64(seed ^ 0x9E37_79B9_7F4A_7C15);
        let mut reader = engine.config().reader();
        let (mut sum, mut found_after) = (0.0, None);
        for evals in 0..budget {
            clock.advance(TICK_US);
            let live = reader.get().params.clone();
            let l = (problem.loss)(&space, &live, evals);
            sum += l;
            let y = l + 0.001 * gaussian(&mut noise);
            engine
                .step(TelemetryDigest::new(TICK_US, y, 1))
                .expect("finite telemetry");
            // A real deployment drains the trail; a full queue would refuse.
            while engine
                .executor()
                .audit_queue()
                .try_dequeue_with(|_| ())
                .is_some()
            {}
            if let Some(at) = problem.change_at {
                let centre = engine.executor().centre();
                let best = (problem.optimum)(evals);
                if evals >= at && found_after.is_none() && (problem.reached)(&space, centre, &best)
                {
                    found_after = Some(evals - at);
                }
            }
        }
        let centre = engine.executor().centre().to_vec();
        let optimum = (problem.optimum)(budget - 1);
        TypedRun {
            distance: unit_distance2(&space, &centre, &optimum).sqrt(),
            regret: sum / budget as f64,
            reached: match problem.change_at {
                Some(at) if budget > at => found_after.is_some_and(|e| e <= 200),
                _ => (problem.reached)(&space, &centre, &optimum),
            },
            found_after,
            refused: engine.executor().stats().refused,
        }
    }

    pub(super) fn table(spsa: &SpsaConfig) {
        println!("| typed problem | budget | median distance (unit) | IQR | median regret | target reached | refused |");
        println!("|---|---:|---:|---|---:|---:|---:|");
        for problem in &problems() {
            for &budget in &BUDGETS {
                let runs: Vec<TypedRun> = (0..SEEDS)
                    .map(|seed| run(problem, seed, spsa, budget))
                    .collect();
                let mut d: Vec<f64> = runs.iter().map(|r| r.distance).collect();
                d.sort_by(f64::total_cmp);
                let mut g: Vec<f64> = runs.iter().map(|r| r.regret).collect();
                g.sort_by(f64::total_cmp);
                let reached = runs.iter().filter(|r| r.reached).count();
                let mut target = format!("{reached}/{SEEDS}");
                if problem.change_at.is_some() {
                    let mut f: Vec<f64> = runs
                        .iter()
                        .map(|r| r.found_after.map_or(f64::INFINITY, |e| e as f64))
                        .collect();
                    f.sort_by(f64::total_cmp);
                    target = format!(
                        "{target} (median {} evaluations after the change)",
                        quantile(&f, 0.5)
                    );
                }
                println!(
                    "| {} | {budget} | {:.3} | [{:.3}, {:.3}] | {:.3e} | {target} | {} |",
                    problem.name,
                    quantile(&d, 0.5),
                    quantile(&d, 0.25),
                    quantile(&d, 0.75),
                    quantile(&g, 0.5),
                    runs.iter().map(|r| r.refused).sum::<u64>()
                );
            }
        }
    }
}
