//! Calibration: the engine measures its own gains, noise first and then
//! gradient pairs, following Spall's practical rules (see
//! [`CalibrationConfig`](super::CalibrationConfig)).

use super::stage::{Measured, Stage};
use super::{AdaptiveEngine, STEP_MARGIN};
use crate::audit::EngineEvent;
use crate::clock::Clock;
use crate::ParamVec;

impl<C: Clock> AdaptiveEngine<C> {
    /// A noise window is full: counts it and, after the last one, sets `c₀`
    /// from `σ` and plans the first probe.
    pub(super) fn noise_window_done(&mut self, at: u64) {
        let Stage::Noise { done, .. } = self.stage else {
            return;
        };
        let Some(y) = self.aggregate_window() else {
            return;
        };
        // The rollback policy judges this window too. Should it roll back,
        // the engine has restarted the noise windows (`resync_if_moved`),
        // and this window still counts, as the `done + 1`-th of the new
        // ones: the engine has always done so, though the window was
        // measured at the centre left behind.
        self.report_centre(y, at);
        let needed = self
            .config
            .calibration
            .as_ref()
            .map_or(0, |c| c.noise_windows);
        let Stage::Noise {
            done: counted,
            windows,
            ..
        } = &mut self.stage
        else {
            return;
        };
        windows.add(y);
        *counted = done + 1;
        if done + 1 < needed {
            self.window_opened_us = at;
            self.restart_window();
            return;
        }
        self.centre_objective = self.stage.noise_measured();
        let c0 = self.calibrated_perturbation();
        let (a0, _) = self.spsa.gains();
        // Cannot fail. `a₀` is the one in force: the checked
        // `learning_rate`, or one `set_gains` or `restore` accepted (an
        // engine failed closed, whose settings are unchecked, never gets
        // here: `observe` stops at its misconfigured executor). `c₀` lies
        // in `[floor, cap]`, both finite and > 0 by the checked settings,
        // and `σ` is never NaN (`RunningStats::sd` maps a NaN variance to 0).
        let _ = self.spsa.set_gains(a0, c0);
        self.plan_probe();
    }

    /// Sets SPSA's gains to measured ones. They can be refused: a measured
    /// `a₀` overflows (an objective near `f64::MAX`, a huge `α`) or
    /// vanishes (an infinite gradient). Then SPSA keeps the gains it had,
    /// which are valid, and the engine goes on with them.
    pub(super) fn set_measured_gains(&mut self, a0: f64, c0: f64) {
        if let Err(error) = self.spsa.set_gains(a0, c0) {
            tracing::warn!(%error, "measured gains refused; SPSA keeps the gains it had");
        }
    }

    /// `c₀` from the measured noise, within the floor and caps.
    fn calibrated_perturbation(&self) -> f64 {
        let cal = self.config.calibration.clone().unwrap_or_default();
        let cap = self
            .config
            .perturbation_scale
            .min(STEP_MARGIN * self.executor.guardrails().max_delta_per_step);
        let floor = cal.min_perturbation.min(cap);
        self.stage.measured().noise_sd.clamp(floor, cap)
    }

    fn floors(&self, a0: f64) -> (f64, f64) {
        let Some(cal) = &self.config.calibration else {
            return (0.0, 0.0);
        };
        let a = self.spsa.config();
        let a_floor = cal.gain_floor * a0 / (a.stability_a + 1.0).powf(a.alpha);
        let (_, c0) = self.spsa.gains();
        (a_floor, cal.min_perturbation.min(c0))
    }

    /// A gradient pair of the gain stage is done: adds it and, after the
    /// last one, sets the gains and plans the first step from their average.
    pub(super) fn gain_pair_done(
        &mut self,
        gradient: &[f64],
        y_plus: f64,
        y_minus: f64,
        perturbation_id: u64,
    ) {
        let Some(cal) = self.config.calibration.clone() else {
            return;
        };
        if matches!(self.stage, Stage::Gains(_)) {
            self.measure_probe_cost(0.5 * (y_plus + y_minus));
        }
        let Stage::Gains(gains) = &mut self.stage else {
            return;
        };
        if gains.add(gradient) < cal.gradient_pairs {
            self.plan_probe();
            return;
        }
        let pairs = gains.pairs as f64;
        let mean_gradient = gains.magnitude / pairs;
        let average: ParamVec = gains.sum.iter().map(|g| g / pairs).collect();
        let noise_sd = gains.measured.noise_sd;
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
        self.set_measured_gains(a0, c0);
        let (a_floor, c_floor) = self.floors(a0);
        if let Err(error) = self.spsa.set_gain_floors(a_floor, c_floor) {
            // Only when `a₀` itself is not finite (see `set_measured_gains`).
            tracing::warn!(%error, a_floor, "gain floor refused; SPSA keeps the floors it had");
        }
        self.stage = Stage::Tuning(Measured { noise_sd, gain: a0 });
        self.note(EngineEvent::Calibrated {
            noise_sd,
            mean_gradient,
            perturbation_scale: c0,
            learning_rate: a0,
            stability_a: spsa.stability_a,
        });
        let a_k = self.spsa.learning_rate(self.spsa.iteration());
        let update = average.iter().map(|g| -a_k * g).collect();
        self.plan_update(update, average, y_plus, y_minus, perturbation_id);
    }
}
