//! Step control: steps that raise the centre objective by more than the noise
//! explains are undone, and a world that changed restarts the gain schedule.

use super::{AdaptiveEngine, Plan, GAIN_REGROWTH, MIN_GAIN_SCALE};
use crate::audit::EngineEvent;
use crate::clock::Clock;

impl<C: Clock> AdaptiveEngine<C> {
    /// Step control: `true` if the last step raised the centre objective
    /// by more than the noise explains. Such a step is rejected: the engine
    /// moves back to the previous centre (as far as the thrash guard allows)
    /// and halves the gain multiplier (not below 1/8); an accepted step
    /// regrows it by half, up to 1.
    pub(super) fn step_rejected(&mut self, y: f64) -> bool {
        let (Some(cal), Some((previous_centre, previous))) =
            (&self.config.calibration, self.previous.take())
        else {
            return false;
        };
        if y <= previous + self.noise_allowance(cal.rejection_sigmas, y) {
            self.gain_scale = (self.gain_scale * GAIN_REGROWTH).min(1.0);
            return false;
        }
        self.stats.steps_rejected += 1;
        self.gain_scale = (self.gain_scale * 0.5).max(MIN_GAIN_SCALE);
        self.note(EngineEvent::StepRejected {
            iteration: self.last_step_iteration,
            objective: y,
            previous,
            gain_scale: self.gain_scale,
        });
        self.centre_objective = Some(previous);
        self.reverted_from = Some((previous_centre.clone(), previous));
        self.pending = Some(Plan::move_centre(self.last_step_iteration, previous_centre));
        true
    }

    /// After a revert, the previous centre is measured again. If it got
    /// worse by more than the noise allows too, the world changed rather
    /// than the step being bad: the gain schedule restarts from `a₀` so the
    /// engine can follow the moved optimum quickly.
    pub(super) fn detect_drift(&mut self, y: f64) {
        let (Some(cal), Some((reverted_to, expected))) =
            (&self.config.calibration, self.reverted_from.take())
        else {
            return;
        };
        // Only a centre measured where it was before says the world
        // changed; a revert the thrash guard held back measured elsewhere.
        if !reverted_to.bit_eq(self.executor.centre()) {
            return;
        }
        // Twice the step-control allowance: restarting on noise would undo
        // the schedule's convergence.
        let allowance = self.noise_allowance(2.0 * cal.rejection_sigmas, y);
        let calibrated_gain = self.stage.measured().gain;
        if y <= expected + allowance || calibrated_gain <= 0.0 {
            return;
        }
        let spsa = self.spsa.config().clone();
        let k = self.spsa.iteration() as f64;
        let a0 = calibrated_gain
            * ((k + 1.0 + spsa.stability_a) / (1.0 + spsa.stability_a)).powf(spsa.alpha);
        let (_, c0) = self.spsa.gains();
        self.set_measured_gains(a0, c0);
        self.gain_scale = 1.0;
        // What the steps and probes learnt about the old world's slopes
        // does not hold in the new one.
        self.forget_slopes();
        self.note(EngineEvent::DriftDetected {
            objective: y,
            previous: expected,
            learning_rate: a0,
        });
    }

    /// The rise of a centre objective `y` that the noise explains,
    /// `sigmas · √2 · σ`: `√2·σ` is the standard deviation of the difference
    /// of two windows' aggregates. `σ` is floored at `10⁻¹²·|y|` so that a
    /// noiseless objective still tolerates rounding.
    pub(super) fn noise_allowance(&self, sigmas: f64, y: f64) -> f64 {
        sigmas * std::f64::consts::SQRT_2 * self.stage.measured().noise_sd.max(1e-12 * y.abs())
    }
}
