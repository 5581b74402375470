//! Iterate averaging (Polyak–Ruppert): where a commit moves the centre.
//!
//! Near an optimum SPSA's iterate wanders with the noise of every gradient
//! estimate, and its mean over many iterations estimates the optimum far
//! better than its last position (Polyak and Juditsky, *Acceleration of
//! stochastic approximation by averaging*, 1992). The committed centre is
//! what users are served and what the flip rule counts reversals of, so
//! each real parameter commits the *mean* of its carry (the iterate's offset
//! from the centre) over the iterations since the engine last measured a
//! slope for it (its mean gradient significant; see `adapt_gain`). While a
//! slope is measured the average restarts at every iteration, so the centre
//! follows the iterate without lag on an approach or after a drift; once
//! the slope fades the average grows, and the centre moves only as far as
//! the iterate's mean does, which is what keeps reversals for a drift.
//! The hysteresis judges the average with the carry's noise scale (see
//! `commits`), which is the stricter test: the average is less noisy.
//!
//! Integers commit their carry: the lattice already filters their noise,
//! and a mean between lattice points left them a grid step off their
//! optimum (BENCHMARKS.md, *What was tried for v4*). Without calibration no
//! slope is measured and the centre follows the iterate, as before.

use super::AdaptiveEngine;
use crate::clock::Clock;

impl<C: Clock> AdaptiveEngine<C> {
    /// Books the carry of each parameter after a step into its average.
    pub(super) fn average_iterate(&mut self) {
        let follow = self.config.calibration.is_none();
        for i in 0..self.carry.len() {
            if follow || self.slope_sign[i] != 0.0 || self.averaged[i] == 0 {
                self.average[i] = self.carry[i];
                self.averaged[i] = 1;
            } else {
                self.averaged[i] = self.averaged[i].saturating_add(1);
                let n = f64::from(self.averaged[i]);
                self.average[i] += (self.carry[i] - self.average[i]) / n;
            }
        }
    }

    /// What a commit would move parameter `i` by (fraction of its range):
    /// its averaged carry, or an integer's carry.
    pub(super) fn commit_offset(&self, i: usize) -> f64 {
        if self.executor.space().grid_step(i).is_some() {
            self.carry[i]
        } else {
            self.average[i]
        }
    }

    /// Forgets the averages (the carry was dropped, or the world changed).
    pub(super) fn forget_average(&mut self) {
        self.average.fill(0.0);
        self.averaged.fill(0);
    }
}
