//! Quality benchmark of the adaptive engine in a closed loop, against the
//! comparators a user would otherwise reach for.
//!
//! Every evaluation is one window of the live system: `loss(point) +
//! noise`, one digest, 200 ms of a manual clock. Problems (`problems.rs`):
//! a round bowl, a 10-D ill-conditioned quartic whose noise grows with the
//! loss, a 4-D bowl whose optimum jumps 20 % of the range at evaluation
//! 500, the Rosenbrock valley, and the typed-knob problems (integers,
//! log scale, a mixed space whose best option changes). Optimisers
//! (`runners.rs`): hotpath's engine with defaults and default guardrails;
//! textbook SPSA with Spall's gain rule, hand-tuned per problem (the best
//! of a grid of gains on ten held-out seeds) and no guardrails; BlueFin
//! one-point and two-point with its shipped defaults. All see the same
//! noise stream per seed and the same budget; every evaluation counts,
//! centre windows and probes alike.
//!
//! Reported per problem and optimiser, over 30 seeds: median and IQR of
//! `L(centre)/L0` at 200 and 1,000 evaluations (past a change, relative to
//! the centre's loss right after it), the median regret (mean true loss
//! over every evaluated point, probes included, at 1,000), the problem's
//! target (recovery after the drift; lattice point or neighbour; within
//! 0.1 of the log optimum; new best option within 200 evaluations), and
//! for the engine the executor's refusals / rollbacks / runs ending in
//! safe mode / circuit-breaker trips.
//!
//! ```text
//! cargo run --release -p hotpath --example quality
//! cargo run --release -p hotpath --example quality -- --first-seed 1000   # 30 other seeds
//! ```
//!
//! The engine's defaults were chosen on seeds 0..30; `--first-seed` reruns
//! the suite on 30 seeds from another start, to see that they hold there
//! (keep clear of 100..110, where textbook SPSA's gains are tuned).

mod problems;
mod report;
mod runners;

use problems::Problem;
use report::{row, summarise, BUDGETS};
use runners::{SpsaGains, Trace};

const SEEDS: u64 = 30;
/// Seeds the textbook SPSA gains are chosen on, disjoint from the ones
/// reported.
const TUNING_SEEDS: std::ops::Range<u64> = 100..110;

fn traces(first: u64, f: impl Fn(u64) -> Trace) -> Vec<Trace> {
    (first..first + SEEDS).map(f).collect()
}

/// The first reported seed: `--first-seed N`, else 0.
fn first_seed() -> Result<u64, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => Ok(0),
        [flag, n] if flag == "--first-seed" => n
            .parse()
            .map_err(|_| format!("--first-seed: expected a seed, got {n:?}")),
        _ => Err("usage: quality [--first-seed N]".into()),
    }
}

/// Textbook SPSA's gains for `problem`: the best median `L/L0` at the
/// last budget over a grid, on the tuning seeds.
fn tuned_gains(problem: &Problem) -> SpsaGains {
    let budget = *BUDGETS.last().unwrap_or(&0);
    let mut best: Option<(f64, SpsaGains)> = None;
    for a in [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0] {
        for c in [0.01, 0.02, 0.05, 0.1, 0.2] {
            let gains = SpsaGains {
                a,
                c,
                big_a: 0.1 * budget as f64 / 2.0,
            };
            let runs: Vec<Trace> = TUNING_SEEDS
                .map(|s| runners::spsa(problem, s, budget, gains, problem.change_at.is_some()))
                .collect();
            let score = summarise(problem, &runs)
                .ratio
                .last()
                .map_or(f64::INFINITY, |r| r.0);
            if best.is_none_or(|(b, _)| score < b) {
                best = Some((score, gains));
            }
        }
    }
    best.map_or(
        SpsaGains {
            a: 0.1,
            c: 0.05,
            big_a: 50.0,
        },
        |(_, g)| g,
    )
}

fn main() {
    let first = match first_seed() {
        Ok(first) => first,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let budget = *BUDGETS.last().unwrap_or(&0);
    println!(
        "| problem | optimiser | L/L0 at {} | L/L0 at {} | median regret | target | refused / rollbacks / safe mode / breaker / on a corner |",
        BUDGETS[0], BUDGETS[1]
    );
    println!("|---|---|---:|---:|---:|---|---|");
    for problem in problems::suite() {
        let keep = problem.change_at.is_some();
        let engine = traces(first, |s| runners::engine(&problem, s, budget, keep));
        row(
            &problem,
            "hotpath (defaults)",
            &summarise(&problem, &engine),
            SEEDS,
        );
        let gains = tuned_gains(&problem);
        let spsa = traces(first, |s| runners::spsa(&problem, s, budget, gains, keep));
        let label = format!(
            "textbook SPSA a={} c={} A={}",
            gains.a, gains.c, gains.big_a
        );
        row(&problem, &label, &summarise(&problem, &spsa), SEEDS);
        let one = traces(first, |s| {
            runners::bluefin(&problem, s, budget, false, keep)
        });
        row(
            &problem,
            "BlueFin one-point",
            &summarise(&problem, &one),
            SEEDS,
        );
        let two = traces(first, |s| runners::bluefin(&problem, s, budget, true, keep));
        row(
            &problem,
            "BlueFin two-point",
            &summarise(&problem, &two),
            SEEDS,
        );
    }
}
