//! The thrash guard: steps accumulate per parameter and commit only past a
//! reversal hysteresis.

use super::{AdaptiveEngine, Plan, HYSTERESIS, MINUTE_US, STEP_MARGIN};
use crate::audit::EngineEvent;
use crate::clock::Clock;
use crate::ParamVec;

impl<C: Clock> AdaptiveEngine<C> {
    /// Plans the `Update` for a step (fractions of the range): limited to
    /// the trust radius (L2) and the step limit, added to the carry, passed
    /// through the reversal hysteresis, and projected inside the bounds.
    ///
    /// The thrash guard allows few reversals per parameter per minute, and
    /// near an optimum SPSA steps change sign at random. So steps accumulate
    /// in a per-parameter carry that is committed only once it exceeds
    /// twice the parameter's typical step, doubled for every reversal in the
    /// last minute; a reversal never uses the minute's last allowed one,
    /// which is kept for step control to undo a bad step. The threshold is
    /// the same both ways, so blocked reversals do not turn noise into drift;
    /// small noisy moves cancel in the carry instead of spending the guard's
    /// budget.
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
        step.iter_mut().for_each(|s| *s *= self.gain_scale);
        let norm = step.iter().map(|s| s * s).sum::<f64>().sqrt();
        if norm > radius {
            step.iter_mut().for_each(|s| *s *= radius / norm);
        }
        let now = self.executor.now_us();
        let flip_limit = self.executor.guardrails().direction_flip_limit as usize;
        let centre = ParamVec::from_slice(self.executor.centre());
        let mut moved = centre.clone();
        for i in 0..step.len() {
            let s = step[i].clamp(-limit, limit);
            self.typical_step[i] = 0.8 * self.typical_step[i] + 0.2 * s.abs();
            self.carry[i] += s;
            let carry = self.carry[i];
            let recent = self.reversals[i].count_within(now, MINUTE_US);
            let threshold = HYSTERESIS * self.typical_step[i] * 2f64.powi(recent as i32);
            let first = self.direction[i] == 0.0;
            let onward = carry.signum() == self.direction[i];
            // The last reversal of the minute is kept for step control.
            let may_reverse = recent + 1 < flip_limit;
            if carry != 0.0 && (first || (carry.abs() >= threshold && (onward || may_reverse))) {
                moved[i] += carry.clamp(-limit, limit) * self.ranges[i];
            }
        }
        let c_next = self.spsa.perturbation_scale(self.spsa.iteration());
        let target = self.project(&moved, c_next);
        let taken: ParamVec = target
            .iter()
            .zip(centre.iter())
            .zip(self.ranges.iter())
            .map(|((&t, &c), &r)| (t - c) / r)
            .collect();
        let iteration = self.spsa.iteration();
        self.note(EngineEvent::Gradient {
            iteration,
            perturbation_id,
            y_plus,
            y_minus,
            step: taken,
        });
        self.previous = self.centre_objective.map(|y| (centre, y));
        self.last_step_iteration = iteration;
        self.pending = Some(Plan::update(iteration, target, gradient));
    }

    /// Books a committed `Update`: its movement leaves the carry, and its
    /// reversals raise the pressure on the hysteresis.
    pub(super) fn committed(&mut self, centre_before: &[f64], at: u64) {
        let after = self.executor.centre();
        for i in 0..self.carry.len() {
            let moved = (after[i] - centre_before[i]) / self.ranges[i];
            if moved.abs() <= 1e-9 {
                continue;
            }
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
            if self.direction[i] != 0.0 && moved.signum() != self.direction[i] {
                self.reversals[i].push(at);
            }
            self.direction[i] = moved.signum();
        }
    }
}
