//! The independent model: the executor's observable state rebuilt from
//! receipts only ([`Model`]), the windows it keeps (pruning, deadlines,
//! budget buckets, directions), and small comparisons shared by the checks.

use crate::harness::Harness;
use crate::{HOUR, MINUTE, SECOND};
use hotpath::{ControlSafety, ReasonSet, SafeModeExit};
use std::collections::VecDeque;

/// The executor's budget buckets (documented: 13 × 5 s, clears after 65 s).
const BUCKET: u64 = 5 * SECOND;

const BUCKETS: u64 = 13;

pub(crate) const BUDGET_CLEAR: u64 = BUCKET * BUCKETS;

/// Committed moves at most this fraction of the range have no direction.
const DIRECTION_EPSILON: f64 = 1e-9;

/// Tolerance for sums of moves computed in a different order.
pub(crate) const SUM_TOLERANCE: f64 = 1e-9;

/// The executor's observable state, rebuilt from receipts only.
#[derive(Debug, Clone)]
pub(crate) struct Model {
    pub(crate) live: Vec<f64>,
    pub(crate) generation: u64,
    pub(crate) centre: Vec<f64>,
    pub(crate) centre_generation: u64,
    pub(crate) centre_is_baseline: bool,
    pub(crate) baseline: Option<BaselineModel>,
    /// The executor's time: the latest clock reading it has seen.
    pub(crate) now: u64,
    /// Accepted applies in the last second, oldest first.
    pub(crate) applies: VecDeque<u64>,
    pub(crate) last_apply: Option<u64>,
    pub(crate) stable_until: u64,
    pub(crate) directions: Vec<i8>,
    /// Per dimension: times of committed direction reversals (last minute).
    pub(crate) flips: Vec<VecDeque<u64>>,
    /// Committed moves (|move| / range per dimension) of the last 65 s.
    pub(crate) commits: VecDeque<(u64, Vec<f64>)>,
    /// Rollbacks of the last hour.
    pub(crate) rollbacks: VecDeque<u64>,
    pub(crate) regressions_total: u32,
    pub(crate) regressions_since_rollback: u32,
    pub(crate) consecutive_malformed: u32,
    pub(crate) applied: u64,
    pub(crate) refused: u64,
    pub(crate) rollback_count: u64,
    pub(crate) min_clock_regressions: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct BaselineModel {
    pub(crate) params: Vec<f64>,
    pub(crate) reports: u64,
    pub(crate) mean: f64,
    pub(crate) m2: f64,
}

impl BaselineModel {
    pub(crate) fn add(&mut self, x: f64) {
        self.reports += 1;
        let d = x - self.mean;
        self.mean += d / self.reports as f64;
        self.m2 += d * (x - self.mean);
    }

    pub(crate) fn sd(&self) -> f64 {
        if self.reports < 2 {
            0.0
        } else {
            (self.m2 / (self.reports - 1) as f64).max(0.0).sqrt()
        }
    }
}

pub(crate) fn bit_eq(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

pub(crate) fn reason_set(cs: &ControlSafety) -> ReasonSet {
    cs.reasons()
}

pub(crate) fn without(set: ReasonSet, remove: ReasonSet) -> ReasonSet {
    let mut out = ReasonSet::EMPTY;
    for r in set.iter().filter(|r| !remove.contains(*r)) {
        out.insert(r);
    }
    out
}

pub(crate) fn is_subset(a: ReasonSet, b: ReasonSet) -> bool {
    a.iter().all(|r| b.contains(r))
}

impl Harness {
    pub(crate) fn direction(&self, i: usize, to: f64) -> i8 {
        let m = (to - self.m.centre[i]) / self.ranges[i];
        if m > DIRECTION_EPSILON {
            1
        } else if m < -DIRECTION_EPSILON {
            -1
        } else {
            0
        }
    }

    /// Movement of dimension `i` the executor's 5 s buckets still hold at
    /// `now` (between 60 and 65 s of history).
    pub(crate) fn bucketed_spent(&self, i: usize, now: u64) -> f64 {
        let newest = now / BUCKET;
        self.m
            .commits
            .iter()
            .filter(|(t, _)| t / BUCKET + BUCKETS > newest)
            .map(|(_, moves)| moves[i])
            .sum()
    }

    pub(crate) fn prune(&mut self, now: u64) {
        while self.m.applies.front().is_some_and(|&t| now - t >= SECOND) {
            self.m.applies.pop_front();
        }
        for ring in &mut self.m.flips {
            while ring.front().is_some_and(|&t| now - t >= MINUTE) {
                ring.pop_front();
            }
        }
        let newest = now / BUCKET;
        while self
            .m
            .commits
            .front()
            .is_some_and(|(t, _)| t / BUCKET + BUCKETS <= newest && now - t >= MINUTE)
        {
            self.m.commits.pop_front();
        }
        while self.m.rollbacks.front().is_some_and(|&t| now - t >= HOUR) {
            self.m.rollbacks.pop_front();
        }
    }

    /// Times at which some rule's verdict changes, from the model.
    pub(crate) fn deadlines(&self) -> Vec<u64> {
        let m = &self.m;
        let mut d = Vec::new();
        if let Some(last) = m.last_apply {
            d.push(last.saturating_add(self.g.min_interval_us));
        }
        if m.applies.len() >= self.rate_cap {
            d.push(m.applies[m.applies.len() - self.rate_cap].saturating_add(SECOND));
        }
        if let Some(&first) = m.applies.front() {
            d.push(first.saturating_add(SECOND));
        }
        if m.stable_until > 0 {
            d.push(m.stable_until);
        }
        let limit = self.g.direction_flip_limit as usize;
        for ring in &m.flips {
            if ring.len() >= limit.max(1) {
                d.push(ring[ring.len() - limit.max(1)].saturating_add(MINUTE));
            }
        }
        let safety = self.ex.control_safety();
        for r in safety.reasons().iter() {
            if let Some(SafeModeExit::At(t)) = safety.exit_of(r) {
                d.push(t);
            }
        }
        d.push((m.now / BUCKET + 1).saturating_mul(BUCKET));
        if let Some((t, _)) = m.commits.front() {
            d.push(t.saturating_add(MINUTE));
            d.push((t / BUCKET + BUCKETS).saturating_mul(BUCKET));
        }
        if let Some(&t) = m.rollbacks.front() {
            d.push(t.saturating_add(HOUR));
        }
        d
    }
}
