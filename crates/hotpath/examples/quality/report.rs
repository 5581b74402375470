//! Statistics over seeds and the table rows.

use crate::problems::{is_choice, unit_distance2, Problem, Target};
use crate::runners::Trace;
use hotpath::ParamSpace;

pub const BUDGETS: [usize; 2] = [200, 1000];

/// Evaluations within which a drift should be recovered (the quality
/// issue's target), counted beside the median.
const RECOVERY_TARGET: f64 = 50.0;

pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// One optimiser's figures on one problem, over all seeds.
pub struct Summary {
    /// Per budget: median, 25th and 75th percentile of L/L0.
    pub ratio: Vec<(f64, f64, f64)>,
    /// Median regret (mean evaluated loss) at the last budget.
    pub regret: f64,
    /// The problem's target: how many seeds reached it, and a detail.
    pub target: Option<(usize, String)>,
    pub refused: u64,
    pub rollbacks: u64,
    pub safe_mode: usize,
    pub circuit_breaker: usize,
    /// Runs whose final centre sits on a corner of the box.
    pub corners: usize,
}

/// `true` if every numeric knob of `centre` is at one of its bounds.
fn on_corner(space: &ParamSpace, centre: &[f64]) -> bool {
    (0..space.len()).filter(|&i| !is_choice(space, i)).all(|i| {
        let (min, max) = space.bounds(i);
        let tolerance = 1e-9 * space.range(i);
        (centre[i] - min).abs() <= tolerance || (centre[i] - max).abs() <= tolerance
    })
}

/// L/L0 at `budget`: the centre's loss over the start's, or, past a
/// change, over the centre's loss right after the change.
fn ratio(problem: &Problem, trace: &Trace, l0: f64, budget: usize) -> f64 {
    let end = trace.centre_loss[budget - 1];
    match problem.change_at {
        Some(at) if budget > at => end / trace.centre_loss[at],
        _ => end / l0,
    }
}

/// Evaluations after the change until the centre's loss is under
/// `threshold` (`None`: never).
fn recovery(problem: &Problem, trace: &Trace, threshold: f64) -> Option<usize> {
    let at = problem.change_at?;
    trace.centre_loss[at..].iter().position(|&l| l < threshold)
}

fn reached(problem: &Problem, space: &ParamSpace, trace: &Trace, budget: usize) -> Option<bool> {
    let optimum = (problem.optimum)(budget - 1);
    let centre = &trace.final_centre;
    match problem.target {
        Target::Ratio | Target::Recover { .. } => None,
        Target::LatticeNeighbour => Some(
            (0..space.len())
                .filter(|&i| !is_choice(space, i))
                .all(|i| (centre[i] - optimum[i]).abs() <= 1.0),
        ),
        Target::Within(d) => Some(unit_distance2(space, centre, &optimum).sqrt() <= d),
        Target::NewBestOption { index, within } => {
            let at = problem.change_at.unwrap_or(0);
            let best = (problem.optimum)(at)[index];
            let found = trace.centres[at..].iter().position(|c| c[index] == best);
            Some(found.is_some_and(|e| e <= within))
        }
    }
}

pub fn summarise(problem: &Problem, traces: &[Trace]) -> Summary {
    let space = ParamSpace::new((problem.knobs)()).expect("valid problem");
    let l0 = (problem.loss)(&space, &space.initial(), 0);
    let last = *BUDGETS.last().unwrap_or(&0);
    let ratio = BUDGETS
        .iter()
        .map(|&b| {
            let r = sorted(traces.iter().map(|t| ratio(problem, t, l0, b)).collect());
            (quantile(&r, 0.5), quantile(&r, 0.25), quantile(&r, 0.75))
        })
        .collect();
    let regret = quantile(
        &sorted(
            traces
                .iter()
                .map(|t| t.evaluated_loss.iter().sum::<f64>() / t.evaluated_loss.len() as f64)
                .collect(),
        ),
        0.5,
    );
    let target = match problem.target {
        Target::Recover { threshold } => {
            let rec = sorted(
                traces
                    .iter()
                    .map(|t| recovery(problem, t, threshold).map_or(f64::INFINITY, |e| e as f64))
                    .collect(),
            );
            let n = rec.iter().filter(|r| r.is_finite()).count();
            let quick = rec.iter().filter(|&&r| r <= RECOVERY_TARGET).count();
            Some((
                n,
                format!(
                    "median {} evaluations to recover, {quick} within {RECOVERY_TARGET}",
                    quantile(&rec, 0.5)
                ),
            ))
        }
        Target::Ratio => None,
        _ => {
            let n = traces
                .iter()
                .filter(|t| reached(problem, &space, t, last) == Some(true))
                .count();
            Some((n, String::new()))
        }
    };
    Summary {
        ratio,
        regret,
        target,
        refused: traces.iter().map(|t| t.refused).sum(),
        rollbacks: traces.iter().map(|t| t.rollbacks).sum(),
        safe_mode: traces.iter().filter(|t| t.safe_mode).count(),
        circuit_breaker: traces.iter().filter(|t| t.circuit_breaker).count(),
        corners: traces
            .iter()
            .filter(|t| on_corner(&space, &t.final_centre))
            .count(),
    }
}

pub fn row(problem: &Problem, optimiser: &str, s: &Summary, seeds: u64) {
    let ratios: Vec<String> = s
        .ratio
        .iter()
        .map(|(m, lo, hi)| format!("{m:.2e} [{lo:.1e}, {hi:.1e}]"))
        .collect();
    let target = s
        .target
        .as_ref()
        .map_or(String::new(), |(n, detail)| format!("{n}/{seeds} {detail}"));
    println!(
        "| {} | {optimiser} | {} | {:.3e} | {target} | {} / {} / {} / {} / {} |",
        problem.name,
        ratios.join(" | "),
        s.regret,
        s.refused,
        s.rollbacks,
        s.safe_mode,
        s.circuit_breaker,
        s.corners
    );
}
