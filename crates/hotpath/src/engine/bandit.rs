//! Choice knobs: a discounted-UCB bandit per choice, fed by the objective
//! measured at the centre, switching only through the executor.
//!
//! SPSA needs a gradient, and a categorical knob has none, so each choice
//! is tuned as a *multi-armed bandit* over its options, interleaved with
//! the SPSA iterations: every centre window measures the objective under
//! the current option, and at the end of it the bandit may switch to
//! another option (an `Update` that changes only that knob), whose next
//! centre window then measures it. The objective can drift (a choice whose
//! best option changes), so the estimates are *discounted*, as in
//! Garivier & Moulines' discounted UCB (2011): each option keeps
//! exponentially discounted sums of its observations `S_j` and their count
//! `N_j` (discount `DISCOUNT` per centre window), and the bandit picks the
//! option minimising the optimistic index
//!
//! ```text
//! S_j/N_j − σ · √(2 ln(ΣN) / N_j)
//! ```
//!
//! where `σ` is the engine's measured noise (floored at a thousandth of the
//! objective's scale). An option never tried has index −∞ and is tried
//! first; an option not tried for a while sees its `N_j` decay and its
//! bonus grow, so after a change every option is eventually looked at
//! again. The rule is deterministic (no random draws), so runs stay
//! reproducible.
//!
//! **Changes.** Discounting alone forgets slowly (a memory of about
//! 1/(1 − `DISCOUNT`) centre windows). So each bandit also watches its
//! current option: when `SURPRISES` centre windows in a row measure it
//! worse than its estimate by more than `4·√2·σ` (the step-control
//! allowance, doubled), the option's world changed: its history is
//! replaced by the new measurement and every other option becomes
//! *stale*: its estimate was measured in the old world (at other values of
//! the other knobs, too), so it is measured again before it is trusted,
//! like an option never tried, the best estimate first. Without a change, the uncertainty of an option not
//! tried for a while is floored (`MIN_COUNT`), so a clearly worse option
//! is not retried at random.
//!
//! **Bounded exploration.** A switch is a discrete move the executor
//! counts as a reversal after the first (see `executor/typed.rs`), so the
//! flip limit bounds how often options are tried: the bandit switches only
//! while the executor would allow at least one more reversal after it (the
//! last is kept for switching back from a bad option), after `DWELL`
//! centre windows on the current option, and never two choices at once.

use super::{AdaptiveEngine, Plan};
use crate::clock::Clock;
use crate::ParamVec;
use serde::{Deserialize, Serialize};

/// Weight of an observation one centre window older than the newest.
const DISCOUNT: f64 = 0.97;
/// Centre windows on an option before the bandit may leave it.
const DWELL: u32 = 2;
/// Surprising centre windows in a row that mean the current option changed.
const SURPRISES: u32 = 2;
/// The smallest count the exploration bonus is computed with, so an
/// option's bonus stays bounded (about `8σ`) however long ago it was tried:
/// a stale option is looked at again only if its estimate is that close to
/// the best, or after a change made it stale (see the module docs).
const MIN_COUNT: f64 = 0.1;

/// What one choice knob's bandit has learnt (persisted with the engine's
/// state).
///
/// ```
/// use hotpath::BanditState;
///
/// let fresh = BanditState::default();
/// assert!(fresh.sums.is_empty() && fresh.counts.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BanditState {
    /// The knob's index.
    pub index: usize,
    /// Per option: discounted sum of the objectives measured under it.
    pub sums: Vec<f64>,
    /// Per option: discounted number of those measurements.
    pub counts: Vec<f64>,
    /// Centre windows since the last switch.
    pub dwell: u32,
    /// Centre windows in a row that measured the current option worse
    /// than its estimate by more than the noise allows.
    #[serde(default)]
    pub surprises: u32,
    /// Per option: its estimate predates a detected change (cleared when
    /// it is measured again).
    #[serde(default)]
    pub stale: Vec<bool>,
}

impl BanditState {
    pub(super) fn new(index: usize, options: usize) -> Self {
        Self {
            index,
            sums: vec![0.0; options],
            counts: vec![0.0; options],
            dwell: 0,
            surprises: 0,
            stale: vec![false; options],
        }
    }

    /// Books objective `y` measured under `option`; every older
    /// observation loses weight. `allowance`: the rise over the option's
    /// estimate that the noise explains (see the module docs on changes).
    fn observe(&mut self, option: usize, y: f64, allowance: f64) {
        let estimate = match (self.sums.get(option), self.counts.get(option)) {
            (Some(&s), Some(&n)) if n > 0.0 => Some(s / n),
            _ => None,
        };
        let surprising = estimate.is_some_and(|m| y > m + allowance);
        self.surprises = if surprising { self.surprises + 1 } else { 0 };
        if self.surprises >= SURPRISES {
            self.surprises = 0;
            if let (Some(s), Some(n)) = (self.sums.get_mut(option), self.counts.get_mut(option)) {
                (*s, *n) = (0.0, 0.0);
            }
            self.stale = (0..self.counts.len()).map(|j| j != option).collect();
        }
        if let Some(stale) = self.stale.get_mut(option) {
            *stale = false;
        }
        for (s, n) in self.sums.iter_mut().zip(self.counts.iter_mut()) {
            *s *= DISCOUNT;
            *n *= DISCOUNT;
        }
        if let (Some(s), Some(n)) = (self.sums.get_mut(option), self.counts.get_mut(option)) {
            *s += y;
            *n += 1.0;
        }
        self.dwell = self.dwell.saturating_add(1);
    }

    /// The option to measure next: an option never tried first, then a
    /// stale one (its estimate predates a detected change, and was
    /// measured in another world: at other values of the other knobs, say,
    /// so it is measured again even if it looks worse than the current
    /// one), the best estimate first; otherwise the one with the lowest
    /// optimistic index. Ties go to the lowest index, so the choice is
    /// deterministic.
    fn best(&self, sigma: f64) -> usize {
        let total: f64 = self.counts.iter().sum();
        let key = |j: usize| {
            let n = self.counts[j];
            if n <= 0.0 {
                return (0, 0.0);
            }
            if self.stale.get(j).copied().unwrap_or(false) {
                return (1, self.sums[j] / n);
            }
            let bonus = sigma * (2.0 * total.max(1.0).ln() / n.max(MIN_COUNT)).sqrt();
            (2, self.sums[j] / n - bonus)
        };
        (0..self.counts.len())
            .min_by(|&a, &b| {
                let (ka, kb) = (key(a), key(b));
                ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
            })
            .unwrap_or(0)
    }

    /// A state that fits a knob of `options` options: finite, non-negative
    /// counts.
    pub(super) fn fits(&self, options: usize) -> bool {
        self.sums.len() == options
            && self.counts.len() == options
            && (self.stale.is_empty() || self.stale.len() == options)
            && self.sums.iter().all(|s| s.is_finite())
            && self.counts.iter().all(|n| n.is_finite() && *n >= 0.0)
    }
}

impl<C: Clock> AdaptiveEngine<C> {
    /// A centre window measured `y`: books it for every choice knob's
    /// current option and returns the switch to plan, if a bandit wants one
    /// and the executor's rules leave room for it (see the module docs).
    pub(super) fn choose_options(&mut self, y: f64) -> Option<Plan> {
        let (mut target, scale) = self.book_options(y)?;
        let (b, best) = (0..self.bandits.len()).find_map(|b| {
            let best = self.bandits[b].best(scale);
            let current = target[self.bandits[b].index] as usize;
            (best != current && self.may_switch(b)).then_some((b, best))
        })?;
        self.bandits[b].dwell = 0;
        target[self.bandits[b].index] = best as f64;
        Some(Plan::move_centre(self.spsa.iteration(), target))
    }

    /// A probe pair measured `y` on average around the iterate (the same
    /// options as the centre): books it like a centre window and tells
    /// whether a bandit would now switch, so the engine commits and
    /// measures the centre at once instead of waiting for the next commit.
    pub(super) fn options_want_switch(&mut self, y: f64) -> bool {
        let Some((centre, scale)) = self.book_options(y) else {
            return false;
        };
        (0..self.bandits.len()).any(|b| {
            let current = centre[self.bandits[b].index] as usize;
            self.bandits[b].best(scale) != current && self.may_switch(b)
        })
    }

    /// Books objective `y` for every choice knob's current option; the
    /// centre and the noise scale of the bandits' indices, `None` without
    /// choice knobs.
    fn book_options(&mut self, y: f64) -> Option<(ParamVec, f64)> {
        if self.bandits.is_empty() {
            return None;
        }
        let centre = ParamVec::from_slice(self.executor.centre());
        let scale = self
            .noise_sd()
            .unwrap_or(0.0)
            .max(1e-3 * y.abs())
            .max(1e-12);
        let allowance = self.noise_allowance(4.0, y);
        for bandit in &mut self.bandits {
            let current = centre[bandit.index] as usize;
            bandit.observe(current, y, allowance);
        }
        Some((centre, scale))
    }

    /// `true` if bandit `b` has dwelt long enough and a switch would leave
    /// the executor's flip rule room for one more (a first switch is not a
    /// reversal).
    fn may_switch(&mut self, b: usize) -> bool {
        let i = self.bandits[b].index;
        self.bandits[b].dwell >= DWELL
            && (self.executor.last_direction(i) == 0 || self.executor.flips_left(i) > 1)
    }
}

#[cfg(test)]
mod tests {
    use super::BanditState;

    #[test]
    fn untried_options_come_first_then_the_best() {
        let mut b = BanditState::new(0, 3);
        assert_eq!(b.best(0.1), 0);
        b.observe(0, 5.0, 1.0);
        assert_eq!(b.best(0.1), 1);
        b.observe(1, 1.0, 1.0);
        assert_eq!(b.best(0.1), 2);
        b.observe(2, 3.0, 1.0);
        assert_eq!(b.best(0.1), 1);
    }

    #[test]
    fn a_stale_estimate_is_looked_at_again() {
        let mut b = BanditState::new(0, 2);
        b.observe(1, 2.0, 1.0);
        b.observe(0, 1.0, 1.0);
        // Option 0 keeps being measured, and drifts above option 1's
        // old estimate; option 1's count decays until it is tried again.
        let mut tried_again = None;
        for round in 0..100 {
            if b.best(0.05) == 1 {
                tried_again = Some(round);
                break;
            }
            b.observe(0, 2.5, 1.0);
        }
        assert!(tried_again.is_some_and(|r| r < 10), "{tried_again:?}");
    }

    #[test]
    fn a_clearly_worse_option_is_not_retried_without_a_change() {
        let mut b = BanditState::new(0, 2);
        b.observe(1, 1.0, 0.01);
        for _ in 0..1000 {
            b.observe(0, 0.1, 0.01);
            assert_eq!(b.best(0.001), 0);
        }
    }

    #[test]
    fn a_change_makes_the_others_stale_and_they_are_measured_again() {
        let mut b = BanditState::new(0, 3);
        b.observe(1, 0.5, 0.01);
        b.observe(2, 0.3, 0.01);
        for _ in 0..50 {
            b.observe(0, 0.1, 0.01);
        }
        assert_eq!(b.best(0.001), 0);
        // Option 0 jumps to 0.4: two surprising windows in a row.
        b.observe(0, 0.4, 0.01);
        b.observe(0, 0.4, 0.01);
        assert_eq!(b.stale, [false, true, true]);
        assert_eq!(b.best(0.001), 2, "the best stale estimate first");
    }

    #[test]
    fn stale_options_are_measured_again_even_when_they_look_worse() {
        // Estimates from another world (measured while the other knobs
        // were far from their optimum) must not keep the bandit on an
        // option that changed.
        let mut b = BanditState::new(0, 3);
        b.observe(1, 0.5, 0.01);
        b.observe(2, 0.3, 0.01);
        for _ in 0..50 {
            b.observe(0, 0.01, 0.01);
        }
        b.observe(0, 0.2, 0.01);
        b.observe(0, 0.2, 0.01);
        assert_eq!(b.stale, [false, true, true]);
        assert_eq!(b.best(0.001), 2, "measured again, the best estimate first");
        b.observe(2, 0.4, 0.01);
        assert_eq!(b.best(0.001), 1, "then the other stale one");
        b.observe(1, 0.6, 0.01);
        assert_eq!(b.best(0.001), 0, "and back to the best once all are fresh");
    }

    #[test]
    fn states_that_do_not_fit_are_refused() {
        let mut b = BanditState::new(0, 2);
        assert!(b.fits(2) && !b.fits(3));
        b.counts[0] = f64::NAN;
        assert!(!b.fits(2));
    }
}
