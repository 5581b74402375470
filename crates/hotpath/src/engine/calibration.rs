//! Calibration: the engine measures its own gains (noise, then gradient
//! pairs) following Spall's practical rules.

use super::{AdaptiveEngine, STEP_MARGIN};
use crate::audit::EngineEvent;
use crate::clock::Clock;
use crate::ParamVec;

impl<C: Clock> AdaptiveEngine<C> {
    /// `c₀` from the measured noise, within the floor and caps.
    pub(super) fn calibrated_perturbation(&self) -> f64 {
        let cal = self.config.calibration.clone().unwrap_or_default();
        let cap = self
            .config
            .perturbation_scale
            .min(STEP_MARGIN * self.executor.guardrails().max_delta_per_step);
        let floor = cal.min_perturbation.min(cap);
        self.noise_sd.clamp(floor, cap)
    }

    pub(super) fn floors(&self, a0: f64) -> (f64, f64) {
        let Some(cal) = &self.config.calibration else {
            return (0.0, 0.0);
        };
        let a = self.spsa.config();
        let a_floor = cal.gain_floor * a0 / (a.stability_a + 1.0).powf(a.alpha);
        let (_, c0) = self.spsa.gains();
        (a_floor, cal.min_perturbation.min(c0))
    }

    /// Accumulates a calibration gradient; after the last one sets the gains
    /// and plans the first step from their average.
    pub(super) fn calibration_step(
        &mut self,
        gradient: &[f64],
        y_plus: f64,
        y_minus: f64,
        perturbation_id: u64,
    ) {
        let Some(cal) = self.config.calibration.clone() else {
            return;
        };
        for (sum, g) in self.calibration_gradient.iter_mut().zip(gradient) {
            *sum += g;
        }
        self.calibration_magnitude +=
            gradient.iter().map(|g| g.abs()).sum::<f64>() / gradient.len().max(1) as f64;
        self.calibration_pairs += 1;
        if self.calibration_pairs < cal.gradient_pairs {
            self.plan_probe();
            return;
        }
        let pairs = self.calibration_pairs as f64;
        let mean_gradient = self.calibration_magnitude / pairs;
        let spsa = self.spsa.config().clone();
        let s0 = cal
            .target_first_step
            .min(STEP_MARGIN * self.executor.guardrails().max_delta_per_step);
        let a0 = if mean_gradient > 1e-12 {
            s0 * (spsa.stability_a + 1.0).powf(spsa.alpha) / mean_gradient
        } else {
            self.config.learning_rate
        };
        let (_, c0) = self.spsa.gains();
        let _ = self.spsa.set_gains(a0, c0);
        let (a_floor, c_floor) = self.floors(a0);
        let _ = self.spsa.set_gain_floors(a_floor, c_floor);
        self.calibrated = true;
        self.calibrated_gain = a0;
        self.note(EngineEvent::Calibrated {
            noise_sd: self.noise_sd,
            mean_gradient,
            perturbation_scale: c0,
            learning_rate: a0,
            stability_a: spsa.stability_a,
        });
        let average: ParamVec = self
            .calibration_gradient
            .iter()
            .map(|g| g / pairs)
            .collect();
        let a_k = self.spsa.learning_rate(self.spsa.iteration());
        let update = average.iter().map(|g| -a_k * g).collect();
        self.plan_update(update, average, y_plus, y_minus, perturbation_id);
    }
}
