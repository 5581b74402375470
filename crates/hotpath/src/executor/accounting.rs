//! What an accepted change spends: the centre, the rate window, the
//! direction history and the movement budget, and what is left of them.

use super::rules::{direction_of, reverses, turned};
use super::{SafetyExecutor, MINUTE_US, SECOND_US};
use crate::clock::Clock;
use crate::proposal::ProposalKind;

impl<C: Clock> SafetyExecutor<C> {
    /// Books an applied (and published) proposal: an `Update` moves the
    /// centre; every apply counts against the rate and ends a run of
    /// malformed proposals.
    pub(super) fn account_applied(&mut self, kind: ProposalKind, now: u64) {
        if kind == ProposalKind::Update {
            self.commit_centre(now);
        }
        self.rate.push(now);
        self.consecutive_malformed = 0;
        self.stats.applied += 1;
    }

    /// Moves the centre to the (just published) candidate, recording flips
    /// and spending budget, from the moves the scan computed.
    fn commit_centre(&mut self, now: u64) {
        let n = self.moves.len();
        let (moves, directions) = (&self.moves[..n], &mut self.directions[..n]);
        let (spent, totals) = self.budget.current_mut();
        let (spent, totals) = (&mut spent[..n], &mut totals[..n]);
        if self.turn_mask != 0 {
            for i in turned(n, self.turn_mask) {
                let direction = direction_of(moves[i]);
                if direction != 0.0 {
                    if reverses(direction, directions[i]) {
                        self.flips[i].push(now);
                    }
                    directions[i] = direction;
                }
            }
        }
        for i in 0..n {
            spent[i] += moves[i].abs();
            totals[i] += moves[i].abs();
        }
        self.centre.copy_from(&self.candidate);
        self.centre_generation = self.live_generation;
        self.centre_is_baseline = false;
    }

    /// Movement budget left for parameter `index` in the current window, as
    /// a fraction of its range (what an `Update` may still spend).
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ManualClock, ParamVec, Proposal, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let clock = ManualClock::new(1_000_000);
    /// let mut ex = SafetyExecutor::builder(config.clone()).clock(clock.clone()).build()?;
    /// let update = |d: f64| Proposal::Update { iteration: 1, delta: ParamVec::from_slice(&[d]),
    ///                                          gradient_estimate: ParamVec::new() };
    /// ex.apply(update(0.1))?;
    /// assert!((ex.budget_remaining(0) - 0.4).abs() < 1e-12); // Balanced: 0.5 per minute
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn budget_remaining(&mut self, index: usize) -> f64 {
        let now = self.now();
        self.budget.advance(now);
        (self.guardrails.max_cumulative_delta_per_minute - self.budget.total(index)).max(0.0)
    }

    /// The direction of parameter `index`'s last committed move: −1, +1,
    /// or 0 if it has not moved since the start or the last rollback (and
    /// past the end). The flip rule counts a committed move against it.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ManualClock, ParamVec, Proposal, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let clock = ManualClock::new(1_000_000);
    /// let mut ex = SafetyExecutor::builder(config.clone()).clock(clock.clone()).build()?;
    /// let update = |d: f64| Proposal::Update { iteration: 1, delta: ParamVec::from_slice(&[d]),
    ///                                          gradient_estimate: ParamVec::new() };
    /// assert_eq!(ex.last_direction(0), 0);
    /// ex.apply(update(-0.05))?;
    /// assert_eq!(ex.last_direction(0), -1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn last_direction(&self, index: usize) -> i8 {
        self.directions.get(index).map_or(0, |&d| d as i8)
    }

    /// Direction reversals parameter `index` may still make in the current
    /// 60 s window before the flip rule refuses one (0 past the end).
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ManualClock, ParamVec, Proposal, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let clock = ManualClock::new(1_000_000);
    /// let mut ex = SafetyExecutor::builder(config.clone()).clock(clock.clone()).build()?;
    /// let update = |d: f64| Proposal::Update { iteration: 1, delta: ParamVec::from_slice(&[d]),
    ///                                          gradient_estimate: ParamVec::new() };
    /// ex.apply(update(0.05))?;
    /// clock.advance(200_000);
    /// ex.apply(update(-0.05))?; // a reversal
    /// assert_eq!(ex.flips_left(0), 2); // Balanced: 3 per minute
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flips_left(&mut self, index: usize) -> usize {
        let now = self.now();
        let limit = self.guardrails.direction_flip_limit as usize;
        self.flips.get(index).map_or(0, |ring| {
            limit.saturating_sub(ring.count_within(now, MINUTE_US))
        })
    }

    /// The earliest time (µs) at which the rate and stabilisation rules
    /// would admit an apply.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ManualClock, ParamVec, Proposal, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let clock = ManualClock::new(1_000_000);
    /// let mut ex = SafetyExecutor::builder(config.clone()).clock(clock.clone()).build()?;
    /// let update = |d: f64| Proposal::Update { iteration: 1, delta: ParamVec::from_slice(&[d]),
    ///                                          gradient_estimate: ParamVec::new() };
    /// ex.apply(update(0.05))?;
    /// assert_eq!(ex.next_apply_at(), 1_100_000); // Balanced: 100 ms apart
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_apply_at(&self) -> u64 {
        let interval = self
            .rate
            .last()
            .map_or(0, |t| t.saturating_add(self.guardrails.min_interval_us));
        // Asked at time 0, a full window reports when its oldest entry ages out.
        let window = self.rate.admits(0, SECOND_US).err().unwrap_or(0);
        interval.max(window).max(self.stable_until_us)
    }
}
