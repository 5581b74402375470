//! The optimisers compared, each in the same closed loop: one evaluation
//! per window, the same noise stream (the k-th evaluation of a seed gets
//! the same noise draw whichever optimiser asked for it), every evaluation
//! counted (centre windows and probes alike).

use crate::problems::Problem;
use hotpath::{
    AdaptiveEngine, AdaptiveEngineConfig, AtomicConfig, ManualClock, ParamSpace, SafetyExecutor,
    SpsaConfig, TelemetryDigest,
};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use std::sync::Arc;

pub const TICK_US: u64 = 200_000;

/// What one run of one optimiser produced.
pub struct Trace {
    /// Loss of the optimiser's current estimate (the engine's committed
    /// centre) after each evaluation.
    pub centre_loss: Vec<f64>,
    /// Loss of each evaluated point.
    pub evaluated_loss: Vec<f64>,
    /// The estimate's values at the end.
    pub final_centre: Vec<f64>,
    /// The estimate's values after each evaluation, for the typed targets
    /// (only kept for problems that need them).
    pub centres: Vec<Vec<f64>>,
    /// Executor refusals, rollbacks, runs ending in safe mode (the engine
    /// only).
    pub refused: u64,
    pub rollbacks: u64,
    pub safe_mode: bool,
    pub circuit_breaker: bool,
}

/// The k-th standard normal draw of a seed's noise stream.
struct Noise(ChaCha8Rng);

impl Noise {
    fn new(seed: u64) -> Self {
        Self(ChaCha8Rng::seed_from_u64(seed ^ 0x9E37_79B9_7F4A_7C15))
    }

    fn next(&mut self) -> f64 {
        let u1 = ((self.0.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let u2 = (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// Evaluates `theta` (values) at evaluation `k`: the true loss and the
/// noisy measurement.
fn evaluate(
    problem: &Problem,
    space: &ParamSpace,
    theta: &[f64],
    k: usize,
    noise: &mut Noise,
) -> (f64, f64) {
    let l = (problem.loss)(space, theta, k);
    (l, l + (problem.noise_sd)(space, theta) * noise.next())
}

fn space_of(problem: &Problem) -> Arc<ParamSpace> {
    Arc::new(ParamSpace::new((problem.knobs)()).expect("valid problem"))
}

/// hotpath's engine with default settings and default (balanced)
/// guardrails; one digest per window.
pub fn engine(problem: &Problem, seed: u64, budget: usize, keep_centres: bool) -> Trace {
    let space = space_of(problem);
    let clock = ManualClock::new(0);
    let executor = SafetyExecutor::builder(Arc::new(AtomicConfig::new(space.initial())))
        .space(space.clone())
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
    let mut engine = AdaptiveEngine::with_executor(settings, executor).expect("valid engine");
    let mut noise = Noise::new(seed);
    let mut reader = engine.config().reader();
    let mut trace = Trace::new(budget);
    for k in 0..budget {
        clock.advance(TICK_US);
        let live = reader.get().params.clone();
        let (l, y) = evaluate(problem, &space, &live, k, &mut noise);
        engine
            .step(TelemetryDigest::new(TICK_US, y, 1))
            .expect("finite telemetry");
        // A deployment drains the trail; a full queue would refuse changes.
        while engine
            .executor()
            .audit_queue()
            .try_dequeue_with(|_| ())
            .is_some()
        {}
        let centre = engine.executor().centre();
        trace.push(l, (problem.loss)(&space, centre, k), centre, keep_centres);
    }
    let ex = engine.executor();
    trace.final_centre = ex.centre().to_vec();
    trace.refused = ex.stats().refused;
    trace.rollbacks = ex.stats().rollbacks;
    let reasons = ex.control_safety().reasons();
    trace.safe_mode = !reasons.is_empty();
    trace.circuit_breaker = reasons.contains(hotpath::SafeModeReason::RollbackCircuitBreaker);
    trace
}

/// Textbook SPSA (Spall 1998): `a_k = a/(k+1+A)^0.602`, `c_k =
/// c/(k+1)^0.101`, ±1 Bernoulli Δ, in unit coordinates clamped to [0, 1],
/// two evaluations per iteration, no guardrails. Integer and choice knobs
/// are rounded to their grid when evaluated.
#[derive(Clone, Copy, Debug)]
pub struct SpsaGains {
    pub a: f64,
    pub c: f64,
    pub big_a: f64,
}

pub fn spsa(problem: &Problem, seed: u64, budget: usize, gains: SpsaGains, keep: bool) -> Trace {
    let space = space_of(problem);
    let n = space.len();
    let mut theta: Vec<f64> = (0..n)
        .map(|i| space.to_unit(i, space.initial()[i]))
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut noise = Noise::new(seed);
    let mut trace = Trace::new(budget);
    let mut k = 0usize;
    let mut iteration = 0f64;
    while k < budget {
        let c = gains.c / (iteration + 1.0).powf(0.101);
        let a = gains.a / (iteration + 1.0 + gains.big_a).powf(0.602);
        let delta: Vec<f64> = (0..n)
            .map(|_| if rng.next_u32() & 1 == 0 { -1.0 } else { 1.0 })
            .collect();
        let point = |sign: f64| -> Vec<f64> {
            (0..n)
                .map(|i| values_of(&space, i, (theta[i] + sign * c * delta[i]).clamp(0.0, 1.0)))
                .collect()
        };
        let mut ys = [0.0; 2];
        for (j, sign) in [1.0, -1.0].into_iter().enumerate() {
            if k >= budget {
                break;
            }
            let x = point(sign);
            let (l, y) = evaluate(problem, &space, &x, k, &mut noise);
            ys[j] = y;
            let centre = centre_values(&space, &theta);
            trace.push(l, (problem.loss)(&space, &centre, k), &centre, keep);
            k += 1;
        }
        for i in 0..n {
            let g = (ys[0] - ys[1]) / (2.0 * c * delta[i]);
            theta[i] = (theta[i] - a * g).clamp(0.0, 1.0);
        }
        iteration += 1.0;
    }
    trace.final_centre = centre_values(&space, &theta);
    trace
}

/// BlueFin, the optimiser of SelfTune / OPPerTune (NSDI 2023/2024), from
/// its published description with its shipped defaults: a random unit
/// direction `u`, the centre clipped to `[δ, 1 − δ]` in unit coordinates,
/// gradient `d·Δr·u / (feedback·δ)` on the reward `r = −y`, RMSprop steps,
/// `η = 0.01`, `δ = 0.1`. One-point feedback evaluates `θ + δu` once
/// (`Δr = r`); two-point evaluates `θ ± δu` and divides the reward
/// difference by the larger `|r|`.
pub fn bluefin(problem: &Problem, seed: u64, budget: usize, two_point: bool, keep: bool) -> Trace {
    const ETA: f64 = 0.01;
    const DELTA: f64 = 0.1;
    const BETA: f64 = 0.9;
    const EPS: f64 = 1e-8;
    let space = space_of(problem);
    let n = space.len();
    let d = n as f64;
    let mut theta: Vec<f64> = (0..n)
        .map(|i| {
            space
                .to_unit(i, space.initial()[i])
                .clamp(DELTA, 1.0 - DELTA)
        })
        .collect();
    let mut v = vec![0.0; n];
    let mut gauss = Noise(ChaCha8Rng::seed_from_u64(seed ^ 0xB1FE));
    let mut noise = Noise::new(seed);
    let mut trace = Trace::new(budget);
    let mut k = 0usize;
    while k < budget {
        let mut u: Vec<f64> = (0..n).map(|_| gauss.next()).collect();
        let norm = u.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        u.iter_mut().for_each(|x| *x /= norm);
        let at = |sign: f64| -> Vec<f64> {
            (0..n)
                .map(|i| values_of(&space, i, (theta[i] + sign * DELTA * u[i]).clamp(0.0, 1.0)))
                .collect()
        };
        let signs: &[f64] = if two_point { &[1.0, -1.0] } else { &[1.0] };
        let mut rewards = Vec::with_capacity(2);
        for &sign in signs {
            if k >= budget {
                break;
            }
            let x = at(sign);
            let (l, y) = evaluate(problem, &space, &x, k, &mut noise);
            rewards.push(-y);
            let centre = centre_values(&space, &theta);
            trace.push(l, (problem.loss)(&space, &centre, k), &centre, keep);
            k += 1;
        }
        if rewards.len() < signs.len() {
            break;
        }
        let scale = if two_point {
            let (rp, rm) = (rewards[0], rewards[1]);
            (rp - rm) / (2.0 * DELTA * rp.abs().max(rm.abs()).max(1e-12))
        } else {
            rewards[0] / DELTA
        };
        for i in 0..n {
            let g = d * scale * u[i];
            v[i] = BETA * v[i] + (1.0 - BETA) * g * g;
            theta[i] = (theta[i] + ETA * g / (v[i].sqrt() + EPS)).clamp(DELTA, 1.0 - DELTA);
        }
    }
    trace.final_centre = centre_values(&space, &theta);
    trace
}

/// Knob `i`'s value at unit coordinate `u`, on its grid.
fn values_of(space: &ParamSpace, i: usize, u: f64) -> f64 {
    space.snap(i, space.from_unit(i, u))
}

fn centre_values(space: &ParamSpace, theta: &[f64]) -> Vec<f64> {
    (0..space.len())
        .map(|i| values_of(space, i, theta[i]))
        .collect()
}

impl Trace {
    fn new(budget: usize) -> Self {
        Self {
            centre_loss: Vec::with_capacity(budget),
            evaluated_loss: Vec::with_capacity(budget),
            final_centre: Vec::new(),
            centres: Vec::new(),
            refused: 0,
            rollbacks: 0,
            safe_mode: false,
            circuit_breaker: false,
        }
    }

    fn push(&mut self, evaluated: f64, centre_loss: f64, centre: &[f64], keep: bool) {
        self.evaluated_loss.push(evaluated);
        self.centre_loss.push(centre_loss);
        if keep {
            self.centres.push(centre.to_vec());
        }
    }
}
