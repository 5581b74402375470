//! The probe size: how far each probe goes from the iterate.
//!
//! SPSA's central difference is unbiased on a quadratic whatever the probe
//! size `c`, and the noise of its estimate falls as `1/c`; but every probe
//! costs the users it serves about `c²·h`, `h` the curvature along the
//! perturbation. So the engine chooses `c` from what it measures, within
//! the guardrails' geometry:
//!
//! * **Cost.** The probes should cost at most `PROBE_COST_SIGMAS` noise
//!   standard deviations over the centre: `c ≤ √(PROBE_COST_SIGMAS·σ/h)`.
//!   `h` is measured on the pairs taken around the centre itself (the
//!   calibration's, and the first pair after a centre window while the
//!   carry is small against the probe): the pair's mean over the centre
//!   window's objective is `c²·h` plus noise, with no first-order term.
//! * **Need.** Where the slope is strong, small probes measure it well
//!   enough: `c ≤ PROBE_SNR_SIGMAS·√2·σ/(2|g|)`, the size at which a pair's
//!   difference would be that many standard deviations of its noise, with
//!   `|g|²` the pairs' squared directional derivative less its noise part.
//!   Far from an optimum (the approach, after a drift) probes are small and
//!   cheap; near one the slope vanishes and the cost bound decides.
//! * **Room.** Probes stay within one step of the committed centre (the
//!   executor's excursion rule), so a knob's probe is at most the step
//!   limit less its carry, and no further than its nearest bound; and
//!   never below the floor, a quarter of `min_perturbation` (the carry and
//!   the iterate keep that much room). When `2c` exceeds the step limit,
//!   the minus probe goes through the centre in two moves.
//!
//! Before `h` is first measured, and without calibration, the probe is
//! SPSA's scheduled `c_k`. The gradient is computed with the perturbation
//! actually applied (see `typed.rs`), so probes of different sizes per knob
//! give a correct estimate.

use super::{AdaptiveEngine, STEP_MARGIN};
use crate::clock::Clock;
use crate::ParamVec;

/// The probes' cost over the centre's objective the engine aims at, in
/// noise standard deviations of one window.
const PROBE_COST_SIGMAS: f64 = 10.0;
/// The pair difference, in standard deviations of its noise, past which
/// a larger probe is not needed.
const PROBE_SNR_SIGMAS: f64 = 10.0;
/// The probe floor, as a fraction of `min_perturbation`.
const PROBE_FLOOR: f64 = 0.25;
/// A pair measures the curvature only while every knob's carry is within
/// this fraction of its probe (the pair is then around the centre).
const CENTRED: f64 = 0.25;
/// Weight of the past in the curvature's and the slope's averages.
const CURVATURE_MEMORY: f64 = 0.8;
const SLOPE_MEMORY: f64 = 0.7;

impl<C: Clock> AdaptiveEngine<C> {
    /// The probe size the engine aims for (fraction of the range), before
    /// each knob's room is taken into account.
    pub(super) fn probe_target(&self) -> f64 {
        let scheduled = self.spsa.perturbation_scale(self.spsa.iteration());
        let Some(floor) = self.measured_probe_floor() else {
            return scheduled;
        };
        let cap = STEP_MARGIN * self.executor.guardrails().max_delta_per_step;
        let sigma = self.stage.measured().noise_sd;
        let h = self.curvature / self.curvature_weight;
        let mut c = if h > 0.0 {
            (PROBE_COST_SIGMAS * sigma / h).sqrt()
        } else {
            cap
        };
        if self.slope_sq_weight > 0.0 {
            let now = self.probe_rms();
            let noise = sigma * sigma / (2.0 * now * now).max(f64::MIN_POSITIVE);
            let slope_sq = self.slope_sq / self.slope_sq_weight - noise;
            if slope_sq > 0.0 {
                let needed = PROBE_SNR_SIGMAS * std::f64::consts::SQRT_2 * sigma;
                c = c.min(needed / (2.0 * slope_sq.sqrt()));
            }
        }
        if c.is_nan() {
            return scheduled;
        }
        c.clamp(floor.min(cap), cap)
    }

    /// The floor of a measured probe size: `Some` once tuning with
    /// calibration and the curvature has been measured.
    fn measured_probe_floor(&self) -> Option<f64> {
        let cal = self.config.calibration.as_ref()?;
        let measured = self.stage.is_tuning() && self.curvature_weight > 0.0;
        measured.then_some(PROBE_FLOOR * cal.min_perturbation)
    }

    /// The smallest probe: the iterate and the carry keep this much room.
    pub(super) fn probe_floor(&self) -> f64 {
        let target = self.probe_target();
        self.measured_probe_floor()
            .map_or(target, |f| f.min(target))
    }

    /// Per knob, the probe's size (fraction of the range) around the
    /// iterate: the engine's probe target, less what the carry already
    /// uses of the excursion limit (probes stay within one step of the
    /// centre) and no further than the nearest bound; never below the
    /// probe floor (the carry and the iterate are kept that far inside).
    pub(super) fn probe_sizes(&self, centre: &[f64]) -> ParamVec {
        let space = self.executor.space();
        let target = self.probe_target();
        let floor = self.probe_floor().min(target);
        let reach = STEP_MARGIN * self.executor.guardrails().max_delta_per_step;
        (0..space.len())
            .map(|i| {
                if space.choice_indices().contains(&i) {
                    return 0.0;
                }
                let (lo, hi) = space.bounds(i);
                let t = self.iterate[i];
                let to_bound = space
                    .fraction(i, lo, t)
                    .min(space.fraction(i, t, hi))
                    .max(0.0);
                let room = reach - space.fraction(i, centre[i], t).abs();
                target.min(room).min(to_bound).max(floor)
            })
            .collect()
    }

    /// The root mean square probe size of the pair in flight, over the
    /// numeric knobs.
    fn probe_rms(&self) -> f64 {
        let space = self.executor.space();
        let numeric = (0..space.len()).filter(|i| !space.choice_indices().contains(i));
        let (sum, n) = numeric.fold((0.0, 0.0), |(sum, n), i| {
            let c = self.probe.get(i).copied().unwrap_or(0.0);
            (sum + c * c, n + 1.0)
        });
        if n == 0.0 {
            0.0
        } else {
            (sum / n).sqrt()
        }
    }

    /// The curvature along the perturbations, once measured while tuning.
    pub(super) fn measured_curvature(&self) -> Option<f64> {
        let measured = self.stage.is_tuning() && self.curvature_weight > 0.0;
        measured.then(|| self.curvature / self.curvature_weight)
    }

    /// What the pair just measured is expected to cost over the centre,
    /// `c²·h` (0 before the curvature is measured or when it is not
    /// positive): its mean less this is an estimate of the iterate's
    /// objective.
    pub(super) fn probe_cost(&self) -> f64 {
        if self.curvature_weight <= 0.0 {
            return 0.0;
        }
        let c = self.probe_rms();
        let cost = (self.curvature / self.curvature_weight).max(0.0) * c * c;
        if cost.is_finite() {
            cost
        } else {
            0.0
        }
    }

    /// Books the directional derivative of the pair just measured.
    pub(super) fn measure_slope(&mut self, y_plus: f64, y_minus: f64) {
        let c = self.probe_rms();
        let d = (y_plus - y_minus) / (2.0 * c);
        if !(c > 0.0 && d.is_finite()) {
            return;
        }
        let b = SLOPE_MEMORY;
        self.slope_sq = b * self.slope_sq + (1.0 - b) * d * d;
        self.slope_sq_weight = b * self.slope_sq_weight + (1.0 - b);
    }

    /// Forgets the slopes measured: the per-knob gains and mean gradients,
    /// the iterate's averages and the slope along the probes (the world
    /// changed).
    pub(super) fn forget_slopes(&mut self) {
        self.step_gain.fill(1.0);
        self.forget_average();
        self.slope_sign.fill(0.0);
        self.momentum.fill(0.0);
        self.momentum_weight.fill(0.0);
        self.last_push.fill(0.0);
        self.slope_sq = 0.0;
        self.slope_sq_weight = 0.0;
    }

    /// Forgets everything steps and probes are sized by (a restore): the
    /// slopes and the curvature.
    pub(super) fn forget_sizing(&mut self) {
        self.forget_slopes();
        self.curvature = 0.0;
        self.curvature_weight = 0.0;
    }

    /// Books the cost of the pair just measured around the centre, its
    /// mean `around` over the centre window's objective, as curvature
    /// along the perturbation; a pair around an iterate that has moved
    /// from the centre is not booked (its mean has a first-order term).
    pub(super) fn measure_probe_cost(&mut self, around: f64) {
        let Some(y0) = self.centre_objective else {
            return;
        };
        let space = self.executor.space();
        let numeric = (0..space.len()).filter(|i| !space.choice_indices().contains(i));
        let mut centred = true;
        for i in numeric {
            let c = self.probe.get(i).copied().unwrap_or(0.0);
            centred &= self.carry.get(i).map_or(0.0, |m| m.abs()) <= CENTRED * c;
        }
        let c = self.probe_rms();
        let h = (around - y0) / (c * c);
        if !(centred && c > 0.0 && h.is_finite()) {
            return;
        }
        let b = CURVATURE_MEMORY;
        self.curvature = b * self.curvature + (1.0 - b) * h;
        self.curvature_weight = b * self.curvature_weight + (1.0 - b);
    }
}
