//! Integer, log-scale and choice knobs in the SPSA loop.
//!
//! The engine plans in each knob's coordinate (see
//! [`ParamSpace`](crate::ParamSpace)), so on a **log scale** probes and
//! steps are ratios: `θ·e^{±c·range}`, a fraction of the log-range, the
//! unit the executor judges them in.
//!
//! **Integers** follow discrete SPSA (Wang & Spall, *Discrete simultaneous
//! perturbation stochastic approximation on loss functions with noisy
//! measurements*, 2011): the measured points must be lattice points, and a
//! perturbation that rounds to no change would estimate a zero gradient,
//! silently stopping the optimiser. So an integer probe moves at least one
//! grid step each way from the committed (integer) centre — DSPSA's
//! one-lattice-step perturbation when the probe size is below a step, the
//! probe size rounded to the grid when it is above — and the gradient is
//! computed with the perturbation *actually applied*: SPSA's estimate
//! `(y₊ − y₋)/(2cΔᵢ)`, with `c` SPSA's scheduled scale, is rescaled by
//! `2cΔᵢ / (x₊ᵢ − x₋ᵢ)` (in unit coordinates). The continuous iterate lives in the thrash guard's carry
//! (see `hysteresis.rs`): steps smaller than a grid step accumulate there,
//! and the committed centre is the iterate rounded to the grid.
//!
//! **Choices** are not perturbed and have no gradient (their components
//! are zeroed); a bandit tunes each one (see `bandit.rs`).
//!
//! The same rescaling serves every knob: the engine chooses each knob's
//! probe size itself (see `probe.rs`), so on a real knob too the
//! perturbation applied differs from SPSA's scheduled `c`, and the factor
//! is the ratio of the two.

use super::AdaptiveEngine;
use crate::clock::Clock;
use crate::ParamVec;

impl<C: Clock> AdaptiveEngine<C> {
    /// Records the gradient correction for the probe pair about to be
    /// measured around `centre` with SPSA's nominal scale `c`: the
    /// perturbation SPSA divides by over the one applied (see the module
    /// docs).
    pub(super) fn measure_perturbation(&mut self, centre: &[f64], delta: &[f64], c: f64) {
        let space = std::sync::Arc::clone(self.executor.space());
        let plus = self.probe_point(centre, delta, 1.0);
        let minus = self.probe_point(centre, delta, -1.0);
        self.correction = (0..space.len())
            .map(|i| {
                if space.choice_indices().contains(&i) {
                    return 0.0;
                }
                let applied = space.fraction(i, minus[i], plus[i]);
                let nominal = 2.0 * c * delta[i];
                if applied == 0.0 || !applied.is_finite() {
                    0.0
                } else {
                    nominal / applied
                }
            })
            .collect();
    }

    /// Rescales SPSA's gradient and step by the corrections of the pair
    /// just measured: integers to the perturbation applied, choices to 0.
    pub(super) fn correct_gradient(&self, gradient: &mut ParamVec, step: &mut ParamVec) {
        if self.correction.is_empty() {
            return;
        }
        for ((g, s), &k) in gradient
            .iter_mut()
            .zip(step.iter_mut())
            .zip(self.correction.iter())
        {
            *g *= k;
            *s *= k;
        }
    }
}
