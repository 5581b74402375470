//! `apply` of the three moving proposal kinds: the delta a spec resolves to
//! against the model, the call, and the checks and model updates for an
//! accepted or refused proposal (an accepted update is committed).

use crate::audit::{Expect, Refusal};
use crate::harness::{Harness, Pre};
use crate::model::{bit_eq, SUM_TOLERANCE};
use crate::ops::{splitmix, ApplySpec, Base, Kind, LenMode, Scale, Special};
use crate::{MINUTE, SECOND};
use hotpath::{
    ApplyReceipt, ParamVec, Proposal, ProposalKind, RequestKind, SafeModeExit, SafeModeReason,
    Violation,
};
use proptest::test_runner::{TestCaseError, TestCaseResult};

/// `x` moved by `ulps` units in the last place, towards +∞ for positive
/// `ulps` when `x > 0`.
fn nudge(x: f64, ulps: i64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let bits = x.to_bits() as i64 + ulps;
    f64::from_bits(bits as u64)
}

impl Harness {
    /// The delta `spec` describes, resolved against the model's live values,
    /// centre, bounds and step limits (a hostile spec resolves to a malformed
    /// or oversized one).
    fn resolve(&self, spec: &ApplySpec) -> Vec<f64> {
        let n = self.n();
        let mut d = Vec::with_capacity(n + 4);
        for i in 0..n {
            let r = splitmix(spec.seed ^ (i as u64).wrapping_mul(0xA076_1D64_78BD_642F));
            let u = (r >> 11) as f64 / (1u64 << 53) as f64;
            let sign = if r & 1 == 0 { 1.0 } else { -1.0 };
            let step = self.step_limit(i);
            let frac = match spec.scale {
                Scale::Zero => 0.0,
                Scale::Uniform => sign * u * step,
                Scale::Full => sign * step,
                Scale::NearLimit => sign * nudge(step, ((r >> 1) % 5) as i64 - 2),
                Scale::Tiny => sign * u * 2e-9 * self.ranges[i],
                Scale::Over => sign * step * (1.0 + u + 1e-6),
                Scale::Drift => u * step,
            };
            let mut x = match spec.base {
                Base::Live => frac,
                // Probe points and steps around the centre, half a step out.
                Base::Centre => (self.m.centre[i] + 0.5 * frac) - self.m.live[i],
            };
            let (lo, hi) = self.bounds[i];
            let to = self.m.live[i] + x;
            if spec.reflect && !(to >= lo && to <= hi) {
                x = match spec.base {
                    Base::Live => -frac,
                    Base::Centre => (self.m.centre[i] - 0.5 * frac) - self.m.live[i],
                };
            }
            d.push(x);
        }
        if let Some((index, special)) = spec.special {
            let i = index % n;
            d[i] = match special {
                Special::Value(v) => v,
                Special::ToBound { upper, overshoot } => {
                    let (lo, hi) = self.bounds[i];
                    let b = if upper { hi } else { lo };
                    (b - self.m.live[i]) + overshoot * self.ranges[i]
                }
                Special::StepLimit { negative, ulps } => {
                    let v = nudge(self.step_limit(i), ulps);
                    if negative {
                        -v
                    } else {
                        v
                    }
                }
            };
        }
        match spec.len {
            LenMode::Exact => {}
            LenMode::Short(k) => d.truncate(n.saturating_sub(k)),
            LenMode::Long(k) => d.extend(std::iter::repeat_n(0.0, k)),
        }
        d
    }

    /// The proposal `spec` stands for, carrying `delta`.
    fn proposal(&self, spec: &ApplySpec, delta: &[f64]) -> (ProposalKind, Proposal) {
        let n = self.n();
        match spec.kind {
            Kind::Plus => (
                ProposalKind::ApplyPlus,
                Proposal::ApplyPlus {
                    perturbation_id: spec.id,
                    delta: ParamVec::from_slice(delta),
                },
            ),
            Kind::Minus => (
                ProposalKind::ApplyMinus,
                Proposal::ApplyMinus {
                    perturbation_id: spec.id,
                    delta: ParamVec::from_slice(delta),
                },
            ),
            Kind::Update => (
                ProposalKind::Update,
                Proposal::Update {
                    iteration: spec.id,
                    delta: ParamVec::from_slice(delta),
                    gradient_estimate: ParamVec::zeros(n),
                },
            ),
        }
    }

    pub(crate) fn op_apply(&mut self, spec: &ApplySpec) -> TestCaseResult {
        let delta = self.resolve(spec);
        let (kind, proposal) = self.proposal(spec, &delta);
        let pre = self.pre();
        let result = self.ex.apply(proposal);
        let now = pre.now;
        let dropped = self.ex.stats().audit_dropped > pre.stats.audit_dropped;
        self.note(|| format!("apply {kind:?} {delta:?} at {now} → {result:?}"));

        // Which rule must refuse, in the documented order.
        let past_safe_mode = self.judge_safe_mode(&pre, result.as_ref().err(), dropped)?;
        let mut candidate = None;
        if past_safe_mode {
            match self.content(spec.kind, &delta) {
                Err(v) => check!(
                    result == Err(v),
                    "apply {kind:?} {delta:?}: expected {v:?}, got {result:?}"
                ),
                Ok(c) => {
                    self.judge_timing(spec.kind, &c, &pre, &result)?;
                    candidate = Some(c);
                }
            }
        }

        match result {
            Ok(receipt) => {
                let candidate = candidate.expect("an accepted apply passed the model's checks");
                self.accepted(spec, kind, delta, candidate, receipt, &pre)
            }
            Err(v) => self.refused(spec, kind, delta, v, &pre),
        }
    }

    /// An accepted apply: checks the receipt, the applied values and the
    /// limits on them, then moves the model on.
    fn accepted(
        &mut self,
        spec: &ApplySpec,
        kind: ProposalKind,
        delta: Vec<f64>,
        candidate: Vec<f64>,
        receipt: ApplyReceipt,
        pre: &Pre,
    ) -> TestCaseResult {
        let (label, now) = ("apply", pre.now);
        check!(
            receipt.kind == kind
                && receipt.old_generation == pre.generation
                && receipt.new_generation == pre.generation + 1
                && receipt.timestamp_us == now,
            "apply receipt {receipt:?}, expected {kind:?} {} → {} at {now}",
            pre.generation,
            pre.generation + 1
        );
        let seq = receipt
            .audit_seq
            .ok_or_else(|| TestCaseError::fail("an accepted apply has no audit_seq".to_string()))?;
        let snap = self.config.load();
        check!(
            bit_eq(&snap.params, &candidate),
            "applied {:?}, expected exactly live + delta = {candidate:?}",
            snap.params
        );
        // Step size of the change actually applied.
        for (i, (&new, &old)) in candidate.iter().zip(&pre.live).enumerate() {
            let moved = (new - old).abs();
            check!(
                moved / self.ranges[i] <= self.g.max_delta_per_step,
                "params[{i}] moved by {moved:e} ({old} → {new}), more than the step \
                 limit {:e} = {} · {}",
                self.step_limit(i),
                self.g.max_delta_per_step,
                self.ranges[i]
            );
        }
        // Probes stay within one step of the centre.
        if spec.kind != Kind::Update {
            for (i, (&c, &centre)) in candidate.iter().zip(&self.m.centre).enumerate() {
                let excursion = (c - centre).abs();
                check!(
                    excursion / self.ranges[i] <= self.g.max_delta_per_step,
                    "probe params[{i}] strays {excursion:e} from the centre {}, more \
                     than the step limit {:e}",
                    centre,
                    self.step_limit(i)
                );
            }
        }
        check!(
            !self.ex.control_safety().is_latched(),
            "an apply succeeded but safe mode is latched after it: {:?}",
            self.ex.control_safety()
        );
        // Rate.
        if let Some(last) = self.m.last_apply {
            check!(
                now >= last && now - last >= self.g.min_interval_us,
                "applies at {last} and {now}: closer than min_interval {}",
                self.g.min_interval_us
            );
        }
        self.m.applies.push_back(now);
        self.m.last_apply = Some(now);
        let in_window = self.m.applies.iter().filter(|&&t| now - t < SECOND).count();
        check!(
            in_window <= self.rate_cap,
            "{in_window} applies in the second up to {now}, at most {}",
            self.rate_cap
        );
        if spec.kind == Kind::Update {
            self.commit(&candidate, now)?;
            self.m.centre_generation = receipt.new_generation;
        }
        self.m.live = candidate.clone();
        self.m.generation = receipt.new_generation;
        self.m.applied += 1;
        self.m.consecutive_malformed = 0;
        self.counters.applies_ok += 1;
        self.record(
            label,
            pre,
            vec![Expect::Applied {
                seq,
                kind,
                correlation_id: spec.id,
                previous_generation: pre.generation,
                delta: delta.clone(),
                params: candidate,
            }],
            vec![],
        )
    }

    /// A refused apply: nothing changed, and the latch the refusal implies
    /// is set.
    fn refused(
        &mut self,
        spec: &ApplySpec,
        kind: ProposalKind,
        delta: Vec<f64>,
        v: Violation,
        pre: &Pre,
    ) -> TestCaseResult {
        let label = "apply";
        self.check_unchanged(label, pre)?;
        self.m.refused += 1;
        match v {
            Violation::DirectionFlipViolation {
                cooldown_until_us, ..
            } => self.check_latched(
                label,
                SafeModeReason::Thrashing,
                SafeModeExit::At(cooldown_until_us),
            )?,
            Violation::CumulativeDeltaViolation { retry_at_us, .. } => self.check_latched(
                label,
                SafeModeReason::BudgetExhausted,
                SafeModeExit::At(retry_at_us),
            )?,
            Violation::AuditQueueFull { .. } => self.check_latched(
                label,
                SafeModeReason::AuditQueueFull,
                SafeModeExit::QueueDrained,
            )?,
            v if v.is_malformed() => {
                self.m.consecutive_malformed += 1;
                if self.m.consecutive_malformed >= self.g.violation_limit {
                    self.check_latched(
                        label,
                        SafeModeReason::RepeatedViolations,
                        SafeModeExit::Manual,
                    )?;
                }
            }
            _ => {}
        }
        self.record(
            label,
            pre,
            vec![],
            vec![Refusal {
                request: RequestKind::Proposal(kind),
                correlation_id: spec.id,
                violation: v,
                delta,
            }],
        )
    }

    /// Commits an accepted update to the model and checks the flip and budget
    /// invariants on exact 60 s windows.
    fn commit(&mut self, candidate: &[f64], now: u64) -> TestCaseResult {
        let n = self.n();
        let mut moves = Vec::with_capacity(n);
        for (i, &c) in candidate.iter().enumerate() {
            let direction = self.direction(i, c);
            if direction != 0 {
                let last = self.m.directions[i];
                if last != 0 && last != direction {
                    self.m.flips[i].push_back(now);
                }
                self.m.directions[i] = direction;
            }
            let flips = self.m.flips[i].len();
            check!(
                flips <= self.g.direction_flip_limit as usize,
                "params[{i}]: {flips} committed reversals in the minute up to {now}, at most {}",
                self.g.direction_flip_limit
            );
            moves.push((c - self.m.centre[i]).abs() / self.ranges[i]);
        }
        self.m.commits.push_back((now, moves));
        let limit = self.g.max_cumulative_delta_per_minute;
        for i in 0..n {
            let spent: f64 = self
                .m
                .commits
                .iter()
                .filter(|(t, _)| now - t < MINUTE)
                .map(|(_, m)| m[i])
                .sum();
            check!(
                spent <= limit + SUM_TOLERANCE,
                "params[{i}] moved {spent} of its range in the minute up to {now}, budget {limit}"
            );
        }
        self.m.centre = candidate.to_vec();
        self.m.centre_is_baseline = false;
        Ok(())
    }
}
