//! The rules `apply` checks, in their documented order (see
//! [`SafetyExecutor`]'s docs and the README's table).
//!
//! Each per-parameter rule is one small predicate below (`within_step`,
//! `within_bounds`, `turns`, `reverses`, `overspends`). Two passes call
//! them: [`scan`](SafetyExecutor::scan), one branch-free pass over every
//! parameter that computes the candidate and the committed moves and flags
//! which rules *might* fail, and the ordered checks in
//! [`check`](SafetyExecutor::check), which run only for flagged rules and
//! name the first violation with its context. A flag is raised whenever its
//! rule could fail, so skipping an unflagged rule never admits what it
//! would refuse; what a refusal reports is computed by the ordered check
//! alone.

use super::{SafetyExecutor, MINUTE_US, SECOND_US};
use crate::clock::Clock;
use crate::limits::BUDGET_CLEAR_US;
use crate::proposal::{Proposal, ProposalKind};
use crate::violation::{RateRule, Violation};

/// Committed moves smaller than this fraction of the range have no direction.
pub(super) const DIRECTION_EPSILON: f64 = 1e-9;

/// What [`SafetyExecutor::scan`] found might fail.
#[derive(Clone, Copy)]
struct Flags {
    /// A shape, step or bounds rule (non-finite input shows up as a
    /// non-finite candidate or change).
    content: bool,
    /// The flip rule: some committed move sets a direction (a first move
    /// or a reversal). `Update` only.
    turns: bool,
    /// The budget rule. `Update` only.
    overspend: bool,
}

impl<C: Clock> SafetyExecutor<C> {
    /// Every rule, in order, without changing anything but time-driven
    /// windows; fills `self.candidate` with the values the proposal would
    /// produce. Content rules (2–5) come before timing rules (6–9) so that
    /// a proposal that can never pass is reported as such, not as "retry
    /// later". Rule 10 (audit) is checked when the decision is recorded.
    pub(super) fn check(
        &mut self,
        kind: ProposalKind,
        delta: &[f64],
        now: u64,
    ) -> Result<(), Violation> {
        self.safe_mode_rule()?; // 1
        self.length_rule(delta)?; // 2, shape: length
        let flags = self.scan(kind, delta, now);
        if flags.content {
            finite_rule(delta)?; // 2, shape: finite
            self.step_rule()?; // 3
            self.switch_rule()?; // 3, choices
            self.bounds_rule()?; // 4
        }
        if kind != ProposalKind::Update {
            self.excursion_rule()?; // 5
        }
        self.stabilisation_rule(now)?; // 6
        self.rate_rule(now)?; // 7
        if flags.turns {
            self.flip_rule(now)?; // 8
        }
        if flags.overspend {
            self.budget_rule(now)?; // 9
        }
        Ok(())
    }

    /// Would `apply(proposal)` pass now? Runs every check of `apply` without
    /// applying, auditing or latching anything, so a proposer can plan moves
    /// that will not be refused. (It does record safe-mode exits that are
    /// due, exactly as `apply` would.)
    ///
    /// # Errors
    ///
    /// The [`Violation`] `apply` would return, including `AuditQueueFull`
    /// when the decision's event would not fit below the queue's reserve.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, Guardrails, ParamVec, Proposal, SafetyExecutor, Violation};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let mut ex = SafetyExecutor::new(config, Guardrails::default());
    /// let big = Proposal::ApplyPlus { perturbation_id: 0, delta: ParamVec::from_slice(&[0.3]) };
    /// assert!(matches!(ex.would_accept(&big), Err(Violation::DeltaTooLarge { .. })));
    /// assert_eq!(ex.stats().refused, 0); // nothing recorded
    /// ```
    pub fn would_accept(&mut self, proposal: &Proposal) -> Result<(), Violation> {
        let now = self.now();
        let Some(delta) = proposal.delta() else {
            return Ok(());
        };
        self.expire_safe_mode(now);
        self.check(proposal.kind(), delta, now)?;
        if self.audit_queue.len() >= self.audit_queue.reserve_threshold() {
            return Err(self.queue_full());
        }
        Ok(())
    }

    /// One pass over the parameters, without a branch per parameter:
    /// candidate values, the committed moves (fractions of the range), the
    /// turn mask, and which rules might fail. Advances the budget window for
    /// an `Update`.
    fn scan(&mut self, kind: ProposalKind, delta: &[f64], now: u64) -> Flags {
        let update = kind == ProposalKind::Update;
        if update {
            self.budget.advance(now);
        }
        let budget = self.guardrails.max_cumulative_delta_per_minute;
        let n = self.live.len();
        let space = &*self.space;
        let (lo, hi) = (&space.finite_lows()[..n], &space.finite_highs()[..n]);
        let inv_range = &self.caps.fast_inv_range[..n];
        let step_cap = &self.caps.fast[..n];
        let (live, centre) = (&self.live[..n], &self.centre[..n]);
        let directions = &self.directions[..n];
        let totals = &self.budget.totals()[..n];
        let candidate = &mut self.candidate[..n];
        let moves = &mut self.moves[..n];
        let (mut content, mut turn, mut overspend) = (false, false, false);
        for i in 0..n {
            let c = live[i] + delta[i];
            candidate[i] = c;
            content |= !within_step_cap(c - live[i], step_cap[i]) | !within_bounds(c, lo[i], hi[i]);
            let m = (c - centre[i]) * inv_range[i];
            moves[i] = m;
            turn |= turns(m, directions[i]);
            overspend |= overspends(totals[i], m, budget);
        }
        if !space.is_plain() {
            let typed = self.scan_typed();
            content |= typed.content;
            turn |= typed.turn;
            overspend |= typed.overspend;
        }
        self.turn_mask = 0;
        Flags {
            content,
            turns: update && turn,
            overspend: update && overspend,
        }
    }

    /// Rule 1, safe mode: any latched reason refuses everything but
    /// rollback.
    fn safe_mode_rule(&self) -> Result<(), Violation> {
        if !self.control_safety.is_latched() {
            return Ok(()); // one word, where `first` walks every reason
        }
        match self.control_safety.first() {
            Some((reason, until_us)) => Err(Violation::InSafeMode { reason, until_us }),
            None => Ok(()),
        }
    }

    /// Rule 2, shape: one delta per parameter.
    fn length_rule(&self, delta: &[f64]) -> Result<(), Violation> {
        let expected = self.live.len();
        if delta.len() == expected {
            Ok(())
        } else {
            Err(Violation::WrongLength {
                expected,
                got: delta.len(),
            })
        }
    }

    /// Rule 3, step size: the change actually applied, `|(live + delta) −
    /// live|` after rounding (it may move further than the delta), is at
    /// most `max_delta_per_step` of the range. A refusal reports exactly
    /// `|change| / range`.
    fn step_rule(&self) -> Result<(), Violation> {
        match self.first_beyond_step(&self.live) {
            Some((index, delta)) => Err(Violation::DeltaTooLarge {
                index,
                delta,
                limit: self.guardrails.max_delta_per_step,
            }),
            None => Ok(()),
        }
    }

    /// Rule 4, bounds and grid: the result is finite, within bounds and a
    /// value of its knob (an integer of its grid, an option's index).
    /// Rejected, never clamped or rounded: what is applied is exactly what
    /// was proposed.
    fn bounds_rule(&self) -> Result<(), Violation> {
        let space = &*self.space;
        let finite = space.finite_lows().iter().zip(space.finite_highs());
        for (index, (&value, (&lo, &hi))) in self.candidate.iter().zip(finite).enumerate() {
            if !within_bounds(value, lo, hi) {
                let (min, max) = space.bounds(index);
                return Err(Violation::OutOfBounds {
                    index,
                    value,
                    min,
                    max,
                });
            }
        }
        match space
            .grid_indices()
            .iter()
            .find(|&&i| !space.admits(i, self.candidate[i]))
        {
            Some(&index) => Err(Violation::OffGrid {
                index,
                value: self.candidate[index],
            }),
            None => Ok(()),
        }
    }

    /// Rule 5, probe excursion: a probe stays within `max_delta_per_step`
    /// of the range from the centre.
    fn excursion_rule(&self) -> Result<(), Violation> {
        match self.first_beyond_step(&self.centre) {
            Some((index, excursion)) => Err(Violation::ExcursionTooLarge {
                index,
                excursion,
                limit: self.guardrails.max_delta_per_step,
            }),
            None => Ok(()),
        }
    }

    /// The first parameter whose candidate lies further than the step
    /// limit from `reference` (the live values for rule 3, the centre for
    /// rule 5), with that distance as a fraction of its range.
    fn first_beyond_step(&self, reference: &[f64]) -> Option<(usize, f64)> {
        let limit = self.guardrails.max_delta_per_step;
        let pairs = self.candidate.iter().zip(reference);
        let caps = self.caps.step.iter().zip(self.space.ranges());
        let knobs = pairs.zip(caps).zip(self.caps.measure.iter()).enumerate();
        for (index, (((&c, &r), (&cap, &range)), &measure)) in knobs {
            let Some(change) = self.step_change(index, measure, c, r) else {
                continue;
            };
            if let Some(fraction) = beyond(change, cap, range, limit) {
                return Some((index, fraction));
            }
        }
        None
    }

    /// Rule 6, stabilisation: nothing changes for `min_stable_time_us`
    /// after a rollback.
    fn stabilisation_rule(&self, now: u64) -> Result<(), Violation> {
        if now < self.stable_until_us {
            Err(Violation::StabilizationPending {
                retry_at_us: self.stable_until_us,
            })
        } else {
            Ok(())
        }
    }

    /// Rule 7, rate: `min_interval_us` since the last apply, then at most
    /// ⌊`max_updates_per_second`⌋ applies in any 1 s.
    fn rate_rule(&self, now: u64) -> Result<(), Violation> {
        if let Some(last) = self.rate.last() {
            let next = last.saturating_add(self.guardrails.min_interval_us);
            if now < next {
                return Err(Violation::RateLimitExceeded {
                    rule: RateRule::MinInterval,
                    retry_at_us: next,
                });
            }
        }
        self.rate
            .admits(now, SECOND_US)
            .map_err(|retry_at_us| Violation::RateLimitExceeded {
                rule: RateRule::PerSecond,
                retry_at_us,
            })
    }

    /// Rule 8, direction flips (`Update` only): a committed move may not
    /// reverse a parameter more than `direction_flip_limit` times in any
    /// 60 s. Records in `turn_mask` which parameters turn, for
    /// `commit_centre`.
    fn flip_rule(&mut self, now: u64) -> Result<(), Violation> {
        self.turn_mask = self.turn_mask_of_moves();
        let g = &self.guardrails;
        for index in turned(self.moves.len(), self.turn_mask) {
            let (m, last) = (self.moves[index], self.directions[index]);
            if !reverses(direction_of(m), last) {
                continue;
            }
            let ring = &self.flips[index];
            if ring.admits(now, MINUTE_US).is_err() {
                return Err(Violation::DirectionFlipViolation {
                    index,
                    flips: ring.count_within(now, MINUTE_US) as u32 + 1,
                    limit: g.direction_flip_limit,
                    cooldown_until_us: now.saturating_add(g.cooldown_after_flip_us),
                });
            }
        }
        Ok(())
    }

    /// Rule 9, movement budget (`Update` only): committed movement per
    /// parameter in any 60 s stays within `max_cumulative_delta_per_minute`
    /// of the range.
    fn budget_rule(&self, now: u64) -> Result<(), Violation> {
        let budget = self.guardrails.max_cumulative_delta_per_minute;
        for (index, (&m, &total)) in self.moves.iter().zip(self.budget.totals()).enumerate() {
            if overspends(total, m, budget) {
                return Err(Violation::CumulativeDeltaViolation {
                    index,
                    spent: total + m.abs(),
                    limit: budget,
                    retry_at_us: now.saturating_add(BUDGET_CLEAR_US),
                });
            }
        }
        Ok(())
    }

    /// Which parameters' moves turn (see `turn_mask`), from the moves
    /// [`scan`](Self::scan) computed.
    fn turn_mask_of_moves(&self) -> u64 {
        let mut mask = 0u64;
        for (i, (&m, &last)) in self.moves.iter().zip(self.directions.iter()).enumerate() {
            mask |= u64::from(turns(m, last)) << (i % 64);
        }
        mask
    }
}

/// Rule 2, shape: every delta is finite (first offending index).
fn finite_rule(delta: &[f64]) -> Result<(), Violation> {
    match delta.iter().position(|d| !d.is_finite()) {
        Some(index) => Err(Violation::NonFinite { index }),
        None => Ok(()),
    }
}

/// Rule 3's fast test: a change within `cap` (see [`step_cap`]) is within
/// the step limit, without dividing. NaN is not within.
#[inline(always)]
fn within_step_cap(change: f64, cap: f64) -> bool {
    change.abs() <= cap
}

/// Rule 4: `lo ≤ value ≤ hi` on the finite-clamped bounds, which also
/// rejects NaN and ±∞ (no bound admits them). Non-short-circuiting, so the
/// scan stays branch-free.
#[inline(always)]
fn within_bounds(value: f64, lo: f64, hi: f64) -> bool {
    (value >= lo) & (value <= hi)
}

/// Rule 8: a real move (beyond the epsilon) not in the direction last
/// recorded: a first move, or a reversal.
#[inline(always)]
pub(super) fn turns(m: f64, last: f64) -> bool {
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // NaN must count as turning
    let not_onward = !(m * last > 0.0);
    (m.abs() > DIRECTION_EPSILON) & not_onward
}

/// Rule 8: a direction that reverses the last one (a first move does not).
#[inline(always)]
pub(super) fn reverses(direction: f64, last: f64) -> bool {
    direction != 0.0 && last != 0.0 && direction != last
}

/// Rule 9: spending `|m|` on top of `total` would pass the budget.
#[inline(always)]
pub(super) fn overspends(total: f64, m: f64, budget: f64) -> bool {
    total + m.abs() > budget
}

/// A change of at most this much (in the parameter's units) is certainly
/// within `limit` of `range`, as the exact rule `fl(|change| / range) <=
/// limit` would decide, so the division can be skipped. `fl(limit · range)`
/// is within a factor `1 ± u` (u = 2⁻⁵³) of the real product, and shrinking
/// it by 2⁻⁵⁰ = 8u more than covers that rounding, the rounding of the
/// shrink and the division's own: `change ≤ cap` implies `change / range ≤
/// limit · (1 − 5u)`, whose rounding is at most `limit`. Where the product
/// is not a normal number (overflow, underflow) the cap is −∞: always
/// divide.
pub(super) fn step_cap(limit: f64, range: f64) -> f64 {
    let product = limit * range;
    if product.is_normal() && range.is_normal() {
        product * (1.0 - f64::powi(2.0, -50))
    } else if product == 0.0 && range.is_normal() {
        // A zero limit: only a zero change passes, exactly as dividing.
        0.0
    } else {
        f64::NEG_INFINITY
    }
}

/// `change / range` if it is beyond `limit` (or NaN), else `None`; the
/// division only runs when `change` is not within `cap` (see [`step_cap`]).
#[inline]
pub(super) fn beyond(change: f64, cap: f64, range: f64, limit: f64) -> Option<f64> {
    if within_step_cap(change, cap) {
        return None;
    }
    let fraction = change / range;
    (fraction.is_nan() || fraction > limit).then_some(fraction)
}

/// The parameters (of `n`) whose bit is set in `mask`, in increasing order;
/// every parameter when there are more than 64 (the mask then folds
/// several onto one bit). The visitors check each parameter's move
/// themselves, so visiting one that did not turn is only wasted work.
pub(super) fn turned(n: usize, mut mask: u64) -> impl Iterator<Item = usize> {
    let all = if n > 64 { n } else { 0 };
    if n > 64 {
        mask = 0;
    }
    (0..all).chain(std::iter::from_fn(move || {
        (mask != 0).then(|| {
            let index = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            index
        })
    }))
}

/// The direction of a committed move (fraction of the range): moves within
/// rounding of zero have none.
#[inline]
pub(super) fn direction_of(m: f64) -> f64 {
    if m > DIRECTION_EPSILON {
        1.0
    } else if m < -DIRECTION_EPSILON {
        -1.0
    } else {
        0.0
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{step_cap, turned};
    use crate::Guardrails;

    /// The division-free fast path never passes a change the exact rule
    /// (`|change| / range <= limit`) would refuse: checked at the cap and a
    /// few ulps around it, for awkward limits and ranges.
    #[test]
    fn step_cap_never_admits_what_dividing_refuses() {
        let limits = [0.0, 1e-9, 0.05, 0.1, 0.3, 1.0 / 3.0, 0.7, 1.0, 7.5];
        let widths = [1e-300, 1e-12, 0.1, 1.0, 3.0, 1000.0 / 7.0, 1e9, 1e300];
        for &limit in &limits {
            for &width in &widths {
                let g = Guardrails {
                    max_delta_per_step: limit,
                    bounds: Some(vec![(-width / 2.0, width / 2.0)]),
                    ..Guardrails::default()
                };
                let range = g.range(0);
                let cap = step_cap(limit, range);
                let exact = limit * range;
                let mut candidates = vec![cap, exact];
                for start in [cap, exact] {
                    let (mut down, mut up) = (start, start);
                    for _ in 0..64 {
                        down = down.next_down();
                        up = up.next_up();
                        candidates.extend([down, up]);
                    }
                }
                for change in candidates.into_iter().filter(|c| *c >= 0.0) {
                    if change <= cap {
                        assert!(
                            change / range <= limit,
                            "limit {limit} range {range} change {change}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn turned_visits_set_bits_in_order_or_everything_beyond_64() {
        assert_eq!(turned(16, 0).count(), 0);
        assert_eq!(
            turned(16, 0b1000_0000_0010_0001).collect::<Vec<_>>(),
            [0, 5, 15]
        );
        assert_eq!(turned(64, 1 << 63).collect::<Vec<_>>(), [63]);
        assert_eq!(
            turned(65, 1).collect::<Vec<_>>(),
            (0..65).collect::<Vec<_>>()
        );
    }
}
