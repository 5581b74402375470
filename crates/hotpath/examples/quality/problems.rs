//! The problem suite: loss functions over typed spaces, their noise, their
//! optimum and what counts as reaching it.

use hotpath::{Knob, KnobKind, ParamSpace};

/// One benchmark problem. Losses are functions of the live values (what a
/// service measures); every optimiser sees `loss + noise`.
pub struct Problem {
    pub name: &'static str,
    pub knobs: fn() -> Vec<Knob>,
    /// True loss of values `theta` after `evals` evaluations.
    pub loss: fn(&ParamSpace, &[f64], usize) -> f64,
    /// Standard deviation of one evaluation's noise at `theta`.
    pub noise_sd: fn(&ParamSpace, &[f64]) -> f64,
    /// The optimum after `evals` evaluations.
    pub optimum: fn(usize) -> Vec<f64>,
    /// When the optimum (or the best option) moves, if it does.
    pub change_at: Option<usize>,
    /// How a run is judged beyond L/L0 (the typed problems' targets).
    pub target: Target,
}

/// What a problem's target is, besides the ratio and the regret.
#[derive(Clone, Copy, PartialEq)]
pub enum Target {
    /// Only L/L0 and regret.
    Ratio,
    /// Live loss back under `threshold` after the change (recovery).
    Recover { threshold: f64 },
    /// Every integer within one grid step of the optimum at the end.
    LatticeNeighbour,
    /// Within this distance (unit coordinates) of the optimum at the end.
    Within(f64),
    /// The choice knob `index` holds the new best option within `within`
    /// evaluations of the change.
    NewBestOption { index: usize, within: usize },
}

pub const CHANGE_AT: usize = 500;

/// Squared distance to `optimum` in unit coordinates over numeric knobs.
pub fn unit_distance2(space: &ParamSpace, theta: &[f64], optimum: &[f64]) -> f64 {
    (0..space.len())
        .filter(|&i| !is_choice(space, i))
        .map(|i| (space.to_unit(i, theta[i]) - space.to_unit(i, optimum[i])).powi(2))
        .sum()
}

pub fn is_choice(space: &ParamSpace, i: usize) -> bool {
    matches!(space.knobs()[i].kind(), KnobKind::Choice { .. })
}

fn unit(space: &ParamSpace, theta: &[f64]) -> Vec<f64> {
    (0..space.len())
        .map(|i| space.to_unit(i, theta[i]))
        .collect()
}

fn reals(n: usize) -> Vec<Knob> {
    (0..n)
        .map(|i| Knob::real(format!("x{i}"), 0.0, 1.0, 0.5))
        .collect()
}

fn constant_noise<const MICRO: u32>(_: &ParamSpace, _: &[f64]) -> f64 {
    MICRO as f64 * 1e-6
}

/// P1: a round 2-D bowl.
fn p1(space: &ParamSpace, t: &[f64], _: usize) -> f64 {
    let u = unit(space, t);
    (u[0] - 0.2).powi(2) + (u[1] - 0.7).powi(2)
}

/// Q10: a 10-D ill-conditioned quartic-type bowl: curvatures spread over
/// three decades plus quartic walls, optimum off-centre; its noise grows
/// with the loss (θ-dependent), as a latency's variance grows with it.
fn q10(space: &ParamSpace, t: &[f64], _: usize) -> f64 {
    let u = unit(space, t);
    (0..10)
        .map(|i| {
            let w = 10f64.powf(i as f64 / 3.0); // 1 … 1000
            let d = u[i] - (0.25 + 0.05 * i as f64);
            w * d * d / 100.0 + 10.0 * d.powi(4)
        })
        .sum()
}

fn q10_optimum(_: usize) -> Vec<f64> {
    (0..10).map(|i| 0.25 + 0.05 * i as f64).collect()
}

fn q10_noise(space: &ParamSpace, t: &[f64]) -> f64 {
    0.001 * (1.0 + 10.0 * q10(space, t, 0))
}

/// D4: a 4-D bowl whose optimum moves by 20 % of the range at evaluation
/// 500; the start is away from both optima.
fn d4(space: &ParamSpace, t: &[f64], evals: usize) -> f64 {
    let u = unit(space, t);
    let o = d4_optimum(evals);
    u.iter().zip(&o).map(|(a, b)| (a - b).powi(2)).sum()
}

fn d4_optimum(evals: usize) -> Vec<f64> {
    let shift = if evals >= CHANGE_AT { 0.2 } else { 0.0 };
    vec![0.3 + shift, 0.6 - shift, 0.35 + shift, 0.65 - shift]
}

fn d4_knobs() -> Vec<Knob> {
    (0..4)
        .map(|i| Knob::real(format!("x{i}"), 0.0, 1.0, 0.9))
        .collect()
}

/// R2: the Rosenbrock valley on [−2, 2]², minimum at (1, 1).
fn r2(space: &ParamSpace, t: &[f64], _: usize) -> f64 {
    let u = unit(space, t);
    let (x, y) = (4.0 * u[0] - 2.0, 4.0 * u[1] - 2.0);
    100.0 * (y - x * x).powi(2) + (1.0 - x).powi(2)
}

fn r2_optimum(_: usize) -> Vec<f64> {
    vec![0.75, 0.75]
}

/// I4: a 4-D integer bowl (two linear 1..64, two log-scaled 1..4096),
/// steep enough that the optimal lattice point and its neighbours differ
/// by more than the noise (at 300 on a 1..4096 log scale neighbours differ
/// by 1.6·10⁻⁴: no method could tell them apart through noise of 0.001).
fn i4_knobs() -> Vec<Knob> {
    vec![
        Knob::int("a", 1, 64, 8),
        Knob::int("b", 1, 64, 56),
        Knob::int("c", 1, 4096, 1024).log(),
        Knob::int("d", 1, 4096, 64).log(),
    ]
}

fn i4_optimum(_: usize) -> Vec<f64> {
    vec![23.0, 41.0, 12.0, 5.0]
}

fn i4(space: &ParamSpace, t: &[f64], evals: usize) -> f64 {
    100.0 * unit_distance2(space, t, &i4_optimum(evals))
}

/// L1: a log-scaled real whose optimum sits two decades above the start.
fn l1_knobs() -> Vec<Knob> {
    vec![Knob::real("ttl_s", 1.0, 10_000.0, 10.0).log()]
}

fn l1_optimum(_: usize) -> Vec<f64> {
    vec![1000.0]
}

fn l1(space: &ParamSpace, t: &[f64], evals: usize) -> f64 {
    unit_distance2(space, t, &l1_optimum(evals))
}

/// M3: a real, an integer and a three-option choice whose best option
/// changes at evaluation 500.
fn m3_knobs() -> Vec<Knob> {
    vec![
        Knob::real("ratio", 0.0, 1.0, 0.5),
        Knob::int("batch", 1, 64, 16),
        Knob::choice("codec", ["none", "lz4", "zstd"], "none"),
    ]
}

fn m3_optimum(evals: usize) -> Vec<f64> {
    vec![0.3, 40.0, if evals < CHANGE_AT { 1.0 } else { 2.0 }]
}

fn m3(space: &ParamSpace, t: &[f64], evals: usize) -> f64 {
    let costs = if evals < CHANGE_AT {
        [0.3, 0.0, 0.15]
    } else {
        [0.3, 0.2, 0.0]
    };
    let codec = costs.get(t[2] as usize).copied().unwrap_or(1.0);
    unit_distance2(space, t, &m3_optimum(evals)) + codec
}

pub fn suite() -> Vec<Problem> {
    vec![
        Problem {
            name: "P1 2-D bowl",
            knobs: || reals(2),
            loss: p1,
            noise_sd: constant_noise::<1000>,
            optimum: |_| vec![0.2, 0.7],
            change_at: None,
            target: Target::Ratio,
        },
        Problem {
            name: "Q10 10-D ill-conditioned quartic, noise grows with L",
            knobs: || reals(10),
            loss: q10,
            noise_sd: q10_noise,
            optimum: q10_optimum,
            change_at: None,
            target: Target::Ratio,
        },
        Problem {
            name: "D4 4-D drift of 20 % at 500, start away",
            knobs: d4_knobs,
            loss: d4,
            noise_sd: constant_noise::<1000>,
            optimum: d4_optimum,
            change_at: Some(CHANGE_AT),
            target: Target::Recover { threshold: 0.01 },
        },
        Problem {
            name: "R2 Rosenbrock valley",
            knobs: || reals(2),
            loss: r2,
            noise_sd: constant_noise::<10000>,
            optimum: r2_optimum,
            change_at: None,
            target: Target::Ratio,
        },
        Problem {
            name: "I4 integers (2 linear 1..64, 2 log 1..4096)",
            knobs: i4_knobs,
            loss: i4,
            noise_sd: constant_noise::<1000>,
            optimum: i4_optimum,
            change_at: None,
            target: Target::LatticeNeighbour,
        },
        Problem {
            name: "L1 log real, optimum two decades up",
            knobs: l1_knobs,
            loss: l1,
            noise_sd: constant_noise::<1000>,
            optimum: l1_optimum,
            change_at: None,
            target: Target::Within(0.1),
        },
        Problem {
            name: "M3 mixed, best option changes at 500",
            knobs: m3_knobs,
            loss: m3,
            noise_sd: constant_noise::<1000>,
            optimum: m3_optimum,
            change_at: Some(CHANGE_AT),
            target: Target::NewBestOption {
                index: 2,
                within: 200,
            },
        },
    ]
}
