//! The thrash guard: steps accumulate per parameter and commit only past a
//! reversal hysteresis.

use super::{
    AdaptiveEngine, Plan, COMMIT_EVERY, CURVATURE_TRUST, FLIPS_KEPT, FLIPS_KEPT_UNPUSHED,
    GAIN_DECAY, GAIN_DOWN, GAIN_MAX, GAIN_MIN, GAIN_UP, MOMENTUM, MOMENTUM_SIGMAS, SIGNIFICANCE,
    STEP_MARGIN,
};
use crate::audit::EngineEvent;
use crate::clock::Clock;
use crate::ParamVec;

impl<C: Clock> AdaptiveEngine<C> {
    /// Books a gradient step (fractions of the range): limited to the
    /// trust radius (L2) and the step limit, and added to the carry, the
    /// iterate's distance from the committed centre. The next probes are
    /// taken around the iterate (see [`plan_probe`](Self::plan_probe));
    /// the carry is committed as an `Update` only every `COMMIT_EVERY`
    /// iterations, or sooner when it nears the probe excursion limit (see
    /// [`should_commit`](Self::should_commit)).
    ///
    /// Committing the sum of several SPSA steps instead of each one is the
    /// thrash guard: near an optimum SPSA's steps change sign at random, the
    /// executor allows few reversals of committed moves per parameter per
    /// minute, and the sum of a few steps reverses far less often than
    /// each. At a commit a parameter moves only past a hysteresis threshold,
    /// by its carry or the carry's average (see `averaging.rs`), and never
    /// with the minute's last allowed reversal (kept for step control to
    /// undo a bad step), nor the last two without a measured slope behind
    /// the reversal: see [`commits`](Self::commits).
    pub(super) fn plan_update(
        &mut self,
        mut step: ParamVec,
        gradient: ParamVec,
        y_plus: f64,
        y_minus: f64,
        perturbation_id: u64,
    ) {
        let limit = STEP_MARGIN * self.executor.guardrails().max_delta_per_step;
        let radius = self
            .config
            .calibration
            .as_ref()
            .map_or(f64::INFINITY, |c| c.trust_radius);
        self.normalise(&mut step, &gradient);
        step.iter_mut().for_each(|s| *s *= self.gain_scale);
        self.limit_by_curvature(&mut step, &gradient);
        let norm = step.iter().map(|s| s * s).sum::<f64>().sqrt();
        if norm > radius {
            step.iter_mut().for_each(|s| *s *= radius / norm);
        }
        for i in 0..step.len() {
            step[i] = step[i].clamp(-limit, limit);
            self.step_sq[i] = 0.8 * self.step_sq[i] + 0.2 * step[i] * step[i];
            self.step_sq_weight[i] = 0.8 * self.step_sq_weight[i] + 0.2;
            self.carried[i] = self.carried[i].saturating_add(1);
            self.carry[i] = (self.carry[i] + step[i]).clamp(-1.0, 1.0);
        }
        self.average_iterate();
        let iteration = self.spsa.iteration();
        self.note(EngineEvent::Gradient {
            iteration,
            perturbation_id,
            y_plus,
            y_minus,
            step,
        });
        self.uncommitted_iterations += 1;
        self.measure_slope(y_plus, y_minus);
        let around = 0.5 * (y_plus + y_minus);
        if self.iterate_went_bad(around) {
            return;
        }
        // The bandits book the pair as a measurement of the options at the
        // centre, so less what the probes themselves cost.
        let switch = self.stage.is_tuning() && self.options_want_switch(around - self.probe_cost());
        if switch || self.should_commit() {
            self.plan_commit(iteration, gradient);
        } else {
            self.plan_probe();
        }
    }

    /// Adapts the step to what the gradients have looked like, per
    /// parameter, in two ways (both measured on the suite in BENCHMARKS.md):
    ///
    /// * **Bounded by the calibration's scale.** SPSA's step `−a_k·ĝᵢ` is
    ///   shrunk by `M/rmsᵢ` when the root mean square of recent gradient
    ///   estimates `rmsᵢ` exceeds `M`, the mean `|ĝ|` calibration measured
    ///   (RMSprop's normalisation, but only ever downward): on a valley
    ///   wall, where the gradient grows far beyond what the gains were
    ///   calibrated on, the step stays the size calibration meant instead
    ///   of growing with it. Where gradients shrink (near an optimum) the
    ///   step shrinks as SPSA's does, so the final precision is kept.
    /// * **Grown while the mean gradient is significant.** Each parameter
    ///   keeps the mean of its recent gradient estimates (an EWMA with
    ///   weight `MOMENTUM` on the past) and a step multiplier. When that
    ///   mean is larger than `MOMENTUM_SIGMAS` of its own standard error,
    ///   the parameter has a real slope: the multiplier grows by `GAIN_UP`
    ///   (or falls by `GAIN_DOWN` if the slope's sign turned); otherwise
    ///   the steps are noise and it decays by `GAIN_DECAY`; always within
    ///   `[GAIN_MIN, GAIN_MAX]` (Kesten's and Rprop's rule, applied to the
    ///   mean instead of to single estimates). SPSA's single estimates
    ///   carry every other parameter's slope as noise (`ĝᵢ = Σⱼ gⱼΔⱼ/Δᵢ`),
    ///   so their signs say little in many dimensions; the mean's
    ///   significance tells a flat parameter still far from its optimum
    ///   (it speeds up) from a steep one already there (it settles), which
    ///   is what an ill-conditioned problem needs.
    fn normalise(&mut self, step: &mut ParamVec, gradient: &ParamVec) {
        let (Some(cal), true) = (&self.config.calibration, self.stage.is_tuning()) else {
            return;
        };
        // A gain that is not a positive number gives no scale to bound by.
        let a0 = self.stage.measured().gain;
        if !a0.is_finite() || a0 <= 0.0 {
            return;
        }
        let spsa = self.spsa.config();
        let limit = STEP_MARGIN * self.executor.guardrails().max_delta_per_step;
        let s0 = cal.target_first_step.min(limit);
        let scale = s0 * (spsa.stability_a + 1.0).powf(spsa.alpha) / a0;
        for i in 0..step.len() {
            let g = gradient.get(i).copied().unwrap_or(0.0);
            self.grad_sq[i] = 0.9 * self.grad_sq[i] + 0.1 * g * g;
            self.grad_sq_weight[i] = 0.9 * self.grad_sq_weight[i] + 0.1;
            let rms = (self.grad_sq[i] / self.grad_sq_weight[i]).sqrt();
            if rms.is_finite() && rms > scale {
                step[i] *= scale / rms;
            }
            self.adapt_gain(i, g, rms);
            step[i] *= self.step_gain[i];
        }
    }

    /// The trust region the measured curvature sets: each parameter's step
    /// at most `CURVATURE_TRUST·|ĝᵢ|/(2h)`, `h` the curvature along the
    /// perturbations the probes measure (see `probe.rs`).
    ///
    /// `2h` estimates `ΔᵀHΔ`, whose mean over the ±1 perturbations is the
    /// trace of the Hessian, at least its largest eigenvalue on a convex
    /// objective; a gradient step with gain `1/(2h)` therefore stops short
    /// of the minimum along every direction of a quadratic, however the
    /// gains above were grown. Without it a steep wall (Rosenbrock's
    /// valley) throws the iterate across the valley and back, and the
    /// executor rolls back the centres that land on the other wall
    /// (BENCHMARKS.md, *What was tried for v5*). Before the curvature is
    /// measured, or when it is not positive, nothing is limited.
    pub(super) fn limit_by_curvature(&self, step: &mut ParamVec, gradient: &ParamVec) {
        let Some(h) = self.measured_curvature().filter(|h| *h > 0.0) else {
            return;
        };
        let gain = CURVATURE_TRUST / (2.0 * h);
        for (s, g) in step.iter_mut().zip(gradient.iter()) {
            let most = (gain * g).abs();
            // A NaN bound limits nothing.
            if most.is_finite() {
                *s = s.clamp(-most, most);
            }
        }
    }

    /// The step multiplier's rule for parameter `i` (see
    /// [`normalise`](Self::normalise)), after a gradient estimate `g`
    /// whose recent root mean square is `rms`.
    pub(super) fn adapt_gain(&mut self, i: usize, g: f64, rms: f64) {
        let b = MOMENTUM;
        self.momentum[i] = b * self.momentum[i] + (1.0 - b) * g;
        self.momentum_weight[i] = b * self.momentum_weight[i] + (1.0 - b);
        let w = self.momentum_weight[i].max(f64::MIN_POSITIVE);
        let mean = self.momentum[i] / w;
        // The standard error of an EWMA of `t` independent estimates of
        // mean square `rms²`, corrected for its start at zero like the
        // mean (`w = 1 − bᵗ`): `rms · √((1 − b)/(1 + b) · (1 + bᵗ)/w)`.
        let error = rms * ((1.0 - b) / (1.0 + b) * (2.0 - w) / w).sqrt();
        let gain = &mut self.step_gain[i];
        // A NaN mean or error is not significant either.
        let significant = mean.abs() > MOMENTUM_SIGMAS * error;
        self.slope_sign[i] = if significant { mean.signum() } else { 0.0 };
        if !significant {
            *gain = (*gain * GAIN_DECAY).max(GAIN_MIN);
            return;
        }
        let factor = if mean * self.last_push[i] >= 0.0 {
            GAIN_UP
        } else {
            GAIN_DOWN
        };
        *gain = (*gain * factor).clamp(GAIN_MIN, GAIN_MAX);
        self.last_push[i] = mean;
    }

    /// The probes just measured around the iterate say it is worse than
    /// around the centre by more than the noise explains (their mean above
    /// the first pair's after the last centre window, which had the same
    /// probe size and so the same curvature bias, by twice step control's
    /// allowance): the iterate has wandered off, and its probes cost users
    /// more than the centre's did. The carry is dropped and the engine goes
    /// back to the centre and measures it again (`true`): if the centre is
    /// worse too, the world changed, and the next pairs are compared with
    /// what is measured then.
    fn iterate_went_bad(&mut self, around: f64) -> bool {
        let Some(cal) = &self.config.calibration else {
            return false;
        };
        let Some(reference) = self.probe_reference else {
            self.probe_reference = Some(around);
            self.measure_probe_cost(around);
            return false;
        };
        if around <= reference + self.noise_allowance(2.0 * cal.rejection_sigmas, reference) {
            return false;
        }
        self.drop_carry();
        // Measured again, a centre worse than before is a drift (see
        // `detect_drift`), exactly as after a revert.
        if let Some(before) = self.centre_objective {
            self.reverted_from = Some((ParamVec::from_slice(self.executor.centre()), before));
        }
        self.pending = Some(self.return_to_centre());
        true
    }

    /// `true` when the carry is due to be committed: `COMMIT_EVERY`
    /// iterations since the last commit, or a parameter's carry within the
    /// smallest probe of half the excursion limit (the probes must stay
    /// within `max_delta_per_step` of the committed centre).
    pub(super) fn should_commit(&self) -> bool {
        let limit = STEP_MARGIN * self.executor.guardrails().max_delta_per_step;
        let c = self.probe_floor();
        self.uncommitted_iterations >= COMMIT_EVERY
            || self.carry.iter().any(|m| m.abs() + c > 0.5 * limit)
    }

    /// Plans the `Update` that commits the carry (each parameter by its
    /// [`commit_offset`](Self::commit_offset), as far as the hysteresis
    /// lets it move), then a centre window.
    fn plan_commit(&mut self, iteration: u64, gradient: ParamVec) {
        let limit = STEP_MARGIN * self.executor.guardrails().max_delta_per_step;
        let centre = ParamVec::from_slice(self.executor.centre());
        let mut moved = centre.clone();
        for i in 0..moved.len() {
            if self.commits(i) {
                let offset = self.commit_offset(i).clamp(-limit, limit);
                moved[i] = self.executor.space().offset(i, moved[i], offset);
            }
        }
        let target = self.project(&moved, self.probe_floor());
        self.uncommitted_iterations = 0;
        self.previous = self.centre_objective.map(|y| (centre, y));
        self.last_step_iteration = iteration;
        self.pending = Some(Plan::update(iteration, target, gradient));
    }

    /// The hysteresis rule: `true` if parameter `i` moves now, by its
    /// [`commit_offset`](Self::commit_offset) (the averaged carry; see
    /// `averaging.rs`). The carry is the sum of the `m` steps booked since
    /// the parameter last moved; the offset moves only if it is
    /// *significant*: larger than `SIGNIFICANCE · √m` root-mean-square
    /// recent steps, what `m` steps of pure noise would add up to. Near an
    /// optimum SPSA's steps are mostly noise and their sum grows like `√m`,
    /// so the committed centre stays put and keeps the flip rule's
    /// reversals for when they are needed (a drift); a real slope adds up
    /// like `m` and passes within a few iterations.
    ///
    /// A reversal must also leave the executor `FLIPS_KEPT` (1) more: the
    /// last one is kept for step control to undo a bad step. One that no
    /// measured slope asks for (the parameter's mean gradient not
    /// significant, or pushing the other way) must leave
    /// `FLIPS_KEPT_UNPUSHED` (2): near an optimum such reversals are the
    /// noise the hysteresis let through, and a knob that spent its minute's
    /// reversals on them cannot turn when the optimum moves until they age
    /// out (D4's recoveries of about 300 evaluations in BENCHMARKS.md).
    ///
    /// The directions and reversals are the executor's, as its flip rule
    /// counts them: the executor also counts moves the engine did not plan
    /// (a foreign proposal, a restored history), and only a rollback clears
    /// its directions.
    pub(super) fn commits(&mut self, i: usize) -> bool {
        let carry = self.commit_offset(i);
        if carry == 0.0 {
            return false;
        }
        // A carry held at its reach (the iterate at the edge of where its
        // probes may go) is a sustained push: significant, however long.
        let reach = 0.25 * STEP_MARGIN * self.executor.guardrails().max_delta_per_step;
        let m = f64::from(self.carried[i].max(1));
        // The mean square, corrected for the average's start at zero.
        let mean_sq = self.step_sq[i] / self.step_sq_weight[i].max(f64::MIN_POSITIVE);
        if carry.abs() < (SIGNIFICANCE * (m * mean_sq).sqrt()).min(reach) {
            return false;
        }
        let last = f64::from(self.executor.last_direction(i));
        if last == 0.0 || carry.signum() == last {
            return true;
        }
        let kept = if self.slope_pushes(i, carry) {
            FLIPS_KEPT
        } else {
            FLIPS_KEPT_UNPUSHED
        };
        self.executor.flips_left(i) > kept
    }

    /// `true` if the slope measured for parameter `i` pushes it the way of
    /// a move `offset`: its significant mean gradient has the opposite sign
    /// (steps go down the gradient). Without calibration no slope is
    /// measured, and every move counts as pushed, as before.
    fn slope_pushes(&self, i: usize, offset: f64) -> bool {
        self.config.calibration.is_none() || self.slope_sign[i] == -offset.signum()
    }

    /// The iterate is back at the centre: its carry, the carry's average
    /// and the reference its probes were compared with are dropped.
    pub(super) fn drop_carry(&mut self) {
        self.carry.fill(0.0);
        self.carried.fill(0);
        self.forget_average();
        self.uncommitted_iterations = 0;
        self.probe_reference = None;
    }

    /// Books a committed `Update`: its movement leaves the carry and the
    /// carry's average (both offsets from the centre). (Its reversals the
    /// executor has counted.)
    pub(super) fn committed(&mut self, centre_before: &[f64]) {
        let after = self.executor.centre();
        let space = self.executor.space();
        for i in 0..self.carry.len() {
            let moved = space.fraction(i, centre_before[i], after[i]);
            if moved.abs() <= 1e-9 {
                continue;
            }
            self.carried[i] = 0;
            self.average[i] -= moved;
            // Whatever the projection cut off is dropped, not carried.
            self.carry[i] = if moved.signum() == self.carry[i].signum() {
                let rest = self.carry[i] - moved;
                if rest.signum() == moved.signum() {
                    rest.clamp(-1.0, 1.0)
                } else {
                    0.0
                }
            } else {
                0.0
            };
        }
    }
}
