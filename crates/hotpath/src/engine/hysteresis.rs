//! The thrash guard: steps accumulate per parameter and commit only past a
//! reversal hysteresis.

use super::{AdaptiveEngine, Plan, HYSTERESIS, STEP_MARGIN};
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
    /// budget. The reversals and directions are the executor's own (see
    /// [`commits`](Self::commits)).
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
        let centre = ParamVec::from_slice(self.executor.centre());
        let mut moved = centre.clone();
        for i in 0..step.len() {
            let s = step[i].clamp(-limit, limit);
            self.typical_step[i] = 0.8 * self.typical_step[i] + 0.2 * s.abs();
            self.carry[i] += s;
            if self.commits(i) {
                let carried = self.carry[i].clamp(-limit, limit);
                moved[i] = self.executor.space().offset(i, moved[i], carried);
            }
        }
        let c_next = self.spsa.perturbation_scale(self.spsa.iteration());
        let target = self.project(&moved, c_next);
        let space = self.executor.space();
        let taken: ParamVec = target
            .iter()
            .zip(centre.iter())
            .enumerate()
            .map(|(i, (&t, &c))| space.fraction(i, c, t))
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

    /// The hysteresis rule: `true` if parameter `i`'s carry moves now. A
    /// first move (no direction since the start or the last rollback) is
    /// not a reversal and always moves. Otherwise the carry must reach
    /// `HYSTERESIS` typical steps, doubled for each of the minute's
    /// reversals, and a reversal must leave the executor at least one more:
    /// the last one is kept for step control to undo a bad step.
    ///
    /// The directions and reversals are the executor's, as its flip rule
    /// counts them: the executor also counts moves the engine did not plan
    /// (a foreign proposal, a restored history), and only a rollback clears
    /// its directions.
    pub(super) fn commits(&mut self, i: usize) -> bool {
        let carry = self.carry[i];
        if carry == 0.0 {
            return false;
        }
        let last = f64::from(self.executor.last_direction(i));
        if last == 0.0 {
            return true;
        }
        let flip_limit = self.executor.guardrails().direction_flip_limit as usize;
        let flips_left = self.executor.flips_left(i);
        let recent = flip_limit.saturating_sub(flips_left);
        let threshold = HYSTERESIS * self.typical_step[i] * 2f64.powi(recent as i32);
        let onward = carry.signum() == last;
        carry.abs() >= threshold && (onward || flips_left > 1)
    }

    /// Books a committed `Update`: its movement leaves the carry. (Its
    /// reversals the executor has counted.)
    pub(super) fn committed(&mut self, centre_before: &[f64]) {
        let after = self.executor.centre();
        let space = self.executor.space();
        for i in 0..self.carry.len() {
            let moved = space.fraction(i, centre_before[i], after[i]);
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
        }
    }
}
