//! The oracle for `apply`: the documented rules in their order (safe mode,
//! shape, step, bounds, excursion, stabilisation, rate, flips, budget,
//! audit), predicted from the model, and the executor's verdict compared
//! with the first rule that must refuse.

use crate::harness::{Harness, Pre};
use crate::model::{BUDGET_CLEAR, SUM_TOLERANCE};
use crate::ops::Kind;
use crate::SECOND;
use hotpath::{RateRule, ReasonSet, SafeModeExit, SafeModeReason, Violation};
use proptest::test_runner::{TestCaseError, TestCaseResult};

impl Harness {
    /// Safe-mode prediction for `apply`: `Ok(true)` if the call must get past
    /// rule 1, `Ok(false)` if it was (correctly) refused by it.
    pub(crate) fn judge_safe_mode(
        &self,
        pre: &Pre,
        result: Option<&Violation>,
        dropped: bool,
    ) -> Result<bool, TestCaseError> {
        let drained = pre.queue_len <= self.capacity / 2;
        let mut not_due = ReasonSet::EMPTY;
        for r in pre.safety.reasons().iter() {
            let due = match pre.safety.exit_of(r) {
                Some(SafeModeExit::At(t)) => pre.now >= t,
                Some(SafeModeExit::QueueDrained) => drained,
                _ => false,
            };
            if !due {
                not_due.insert(r);
            }
        }
        match result {
            Some(Violation::InSafeMode { reason, until_us }) => {
                check!(
                    pre.safety.reasons().contains(*reason),
                    "InSafeMode({reason:?}) but it was not latched: {:?}",
                    pre.safety
                );
                let exit = pre.safety.exit_of(*reason);
                let expected_until = match exit {
                    Some(SafeModeExit::At(t)) => Some(t),
                    _ => None,
                };
                check!(
                    *until_us == expected_until,
                    "InSafeMode({reason:?}) reports until {until_us:?}, latch is {exit:?}"
                );
                check!(
                    not_due.iter().all(|r| r >= *reason),
                    "InSafeMode({reason:?}) but {not_due:?} is latched and comes first"
                );
                if !not_due.contains(*reason) {
                    // Its exit was due; it stays only if the exit event could
                    // not be recorded, which counts a drop.
                    check!(
                        dropped,
                        "InSafeMode({reason:?}) although its exit {exit:?} was due at {} (queue {})",
                        pre.now,
                        pre.queue_len
                    );
                }
                Ok(false)
            }
            _ => {
                check!(
                    not_due.is_empty(),
                    "apply got past safe mode although {not_due:?} was latched and not due \
                     (now {}, queue {}, latch {:?}); result {result:?}",
                    pre.now,
                    pre.queue_len,
                    pre.safety
                );
                Ok(true)
            }
        }
    }

    /// Rules 2–5 exactly as documented; the candidate values if they pass.
    pub(crate) fn content(&self, kind: Kind, d: &[f64]) -> Result<Vec<f64>, Violation> {
        let n = self.n();
        if d.len() != n {
            return Err(Violation::WrongLength {
                expected: n,
                got: d.len(),
            });
        }
        if let Some(index) = d.iter().position(|x| !x.is_finite()) {
            return Err(Violation::NonFinite { index });
        }
        let limit = self.g.max_delta_per_step;
        // The step is what would be applied: `live + delta`, rounded.
        let candidate: Vec<f64> = d.iter().zip(&self.m.live).map(|(x, l)| l + x).collect();
        for (index, (&value, &live)) in candidate.iter().zip(&self.m.live).enumerate() {
            // A move that overflowed to ±∞ is out of bounds, not a step.
            let step = (value - live).abs() / self.ranges[index];
            if value.is_finite() && (step.is_nan() || step > limit) {
                return Err(Violation::DeltaTooLarge {
                    index,
                    delta: step,
                    limit,
                });
            }
        }
        for (index, &value) in candidate.iter().enumerate() {
            let (min, max) = self.bounds[index];
            if !(value.is_finite() && value >= min && value <= max) {
                return Err(Violation::OutOfBounds {
                    index,
                    value,
                    min,
                    max,
                });
            }
        }
        if kind != Kind::Update {
            for (index, &c) in candidate.iter().enumerate() {
                let excursion = (c - self.m.centre[index]).abs() / self.ranges[index];
                if excursion > limit {
                    return Err(Violation::ExcursionTooLarge {
                        index,
                        excursion,
                        limit,
                    });
                }
            }
        }
        Ok(candidate)
    }

    /// Rules 6–9 (stabilisation, min interval, per-second rate, flips): the
    /// refusal the first failing one makes at `now`, if any.
    fn timing_rule(&self, kind: Kind, candidate: &[f64], now: u64) -> Option<Violation> {
        let g = &self.g;
        if now < self.m.stable_until {
            Some(Violation::StabilizationPending {
                retry_at_us: self.m.stable_until,
            })
        } else if let Some(next) = self
            .m
            .last_apply
            .map(|t| t.saturating_add(g.min_interval_us))
            .filter(|&next| now < next)
        {
            Some(Violation::RateLimitExceeded {
                rule: RateRule::MinInterval,
                retry_at_us: next,
            })
        } else if self.m.applies.len() >= self.rate_cap {
            let oldest = self.m.applies[self.m.applies.len() - self.rate_cap];
            Some(Violation::RateLimitExceeded {
                rule: RateRule::PerSecond,
                retry_at_us: oldest.saturating_add(SECOND),
            })
        } else if kind == Kind::Update {
            (0..self.n()).find_map(|i| {
                let direction = self.direction(i, candidate[i]);
                let last = self.m.directions[i];
                let recent = self.m.flips[i].len();
                (direction != 0
                    && last != 0
                    && direction != last
                    && recent >= g.direction_flip_limit as usize)
                    .then(|| Violation::DirectionFlipViolation {
                        index: i,
                        flips: recent.min(g.direction_flip_limit as usize) as u32 + 1,
                        limit: g.direction_flip_limit,
                        cooldown_until_us: now.saturating_add(g.cooldown_after_flip_us),
                    })
            })
        } else {
            None
        }
    }

    /// Rules 6–10 for a proposal that passed rules 1–5.
    pub(crate) fn judge_timing(
        &self,
        kind: Kind,
        candidate: &[f64],
        pre: &Pre,
        result: &Result<hotpath::ApplyReceipt, Violation>,
    ) -> TestCaseResult {
        let now = pre.now;
        let g = &self.g;
        let expected = self.timing_rule(kind, candidate, now);
        if let Some(v) = expected {
            check!(
                *result == Err(v),
                "{kind:?} to {candidate:?} at {now}: expected {v:?}, got {result:?}"
            );
            return Ok(());
        }
        // Budget (bucketed in the executor: compare with a tolerance).
        if kind == Kind::Update {
            let limit = g.max_cumulative_delta_per_minute;
            let spent: Vec<f64> = (0..self.n())
                .map(|i| {
                    self.bucketed_spent(i, now)
                        + (candidate[i] - self.m.centre[i]).abs() / self.ranges[i]
                })
                .collect();
            match result {
                Err(Violation::CumulativeDeltaViolation {
                    index,
                    spent: got,
                    limit: l,
                    retry_at_us,
                }) => {
                    check!(
                        *l == limit && *retry_at_us == now.saturating_add(BUDGET_CLEAR),
                        "budget violation {result:?}: limit {limit}, retry at {}",
                        now.saturating_add(BUDGET_CLEAR)
                    );
                    check!(
                        *got > limit && (got - spent[*index]).abs() <= SUM_TOLERANCE,
                        "budget violation for params[{index}] spent {got}, model {} (limit {limit})",
                        spent[*index]
                    );
                    check!(
                        spent[..*index].iter().all(|&s| s <= limit + SUM_TOLERANCE),
                        "budget violation for params[{index}] but an earlier one is over: {spent:?}"
                    );
                    return Ok(());
                }
                _ => {
                    if let Some(i) = spent.iter().position(|&s| s > limit + SUM_TOLERANCE) {
                        return Err(TestCaseError::fail(format!(
                            "update to {candidate:?} at {now} would spend {} of params[{i}] \
                             (budget {limit}) but got {result:?}",
                            spent[i]
                        )));
                    }
                }
            }
        }
        // Audit: only a (nearly) full queue may refuse now.
        match result {
            Ok(_) => Ok(()),
            Err(Violation::AuditQueueFull { capacity }) => {
                check!(
                    *capacity == self.capacity
                        && pre.queue_len + SafeModeReason::ALL.len() + 1 >= self.reserve_threshold,
                    "AuditQueueFull {capacity} with queue at {} of {} (reserve from {})",
                    pre.queue_len,
                    self.capacity,
                    self.reserve_threshold
                );
                Ok(())
            }
            other => Err(TestCaseError::fail(format!(
                "{kind:?} to {candidate:?} at {now} passes every rule, got {other:?}"
            ))),
        }
    }
}
