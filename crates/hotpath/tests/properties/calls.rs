//! Every executor call but a moving `apply`: rollback (manual, and the
//! automatic one an outcome report triggers), set_baseline, report_outcome,
//! freeze, resume, NoChange and budget_remaining, each checked against the
//! model and recorded.

use crate::audit::{Expect, Refusal};
use crate::harness::{Harness, Pre};
use crate::model::{bit_eq, without, BaselineModel, SUM_TOLERANCE};
use crate::ops::GenSpec;
use hotpath::{
    NoChangeReason, OutcomeReceipt, OutcomeVerdict, Proposal, ProposalKind, ReasonSet, RequestKind,
    RollbackReason, RollbackReceipt, SafeModeExit, SafeModeReason, Violation,
};
use proptest::test_runner::{TestCaseError, TestCaseResult};

impl Harness {
    /// Applies a successful rollback's receipt to the model.
    fn rolled_back(
        &mut self,
        label: &str,
        pre_generation: u64,
        now: u64,
        receipt: &RollbackReceipt,
        reason: RollbackReason,
    ) -> Result<Option<Expect>, TestCaseError> {
        let baseline = self
            .m
            .baseline
            .as_ref()
            .ok_or_else(|| TestCaseError::fail(format!("{label}: rolled back without baseline")))?
            .params
            .clone();
        if bit_eq(&self.m.live, &baseline) && bit_eq(&self.m.centre, &baseline) {
            // Already at the baseline: nothing published, recorded or counted.
            check!(
                receipt.reason == reason
                    && receipt.old_generation == pre_generation
                    && receipt.new_generation == pre_generation
                    && receipt.timestamp_us == now
                    && receipt.audit_seq.is_none()
                    && !receipt.circuit_breaker_tripped,
                "{label}: a rollback to where the config already is gave {receipt:?}"
            );
            self.counters.rollbacks_noop += 1;
            return Ok(None);
        }
        let tripped = self.m.rollbacks.len() >= self.policy.max_rollbacks_per_hour as usize;
        check!(
            receipt.reason == reason
                && receipt.old_generation == pre_generation
                && receipt.new_generation == pre_generation + 1
                && receipt.timestamp_us == now
                && receipt.circuit_breaker_tripped == tripped,
            "{label}: rollback receipt {receipt:?}, expected {reason:?} {pre_generation} → {} at \
             {now}, tripped {tripped} ({} in the hour, limit {})",
            pre_generation + 1,
            self.m.rollbacks.len(),
            self.policy.max_rollbacks_per_hour
        );
        let snap = self.config.load();
        check!(
            bit_eq(&snap.params, &baseline),
            "{label}: rolled back to {:?}, baseline is {baseline:?}",
            snap.params
        );
        if tripped {
            self.check_latched(
                label,
                SafeModeReason::RollbackCircuitBreaker,
                SafeModeExit::Manual,
            )?;
        }
        self.m.rollbacks.push_back(now);
        self.m.live = baseline.clone();
        self.m.generation = receipt.new_generation;
        self.m.centre = baseline.clone();
        self.m.centre_generation = receipt.new_generation;
        self.m.centre_is_baseline = true;
        self.m.directions.fill(0);
        self.m.stable_until = now.saturating_add(self.policy.min_stable_time_us);
        self.m.regressions_since_rollback = 0;
        self.m.rollback_count += 1;
        self.counters.rollbacks_ok += 1;
        let seq = receipt.audit_seq.ok_or_else(|| {
            TestCaseError::fail(format!("{label}: a real rollback without an audit seq"))
        })?;
        Ok(Some(Expect::RolledBack {
            seq,
            reason,
            previous_generation: pre_generation,
            params: baseline,
        }))
    }

    pub(crate) fn op_rollback(&mut self) -> TestCaseResult {
        let pre = self.pre();
        let result = self.ex.rollback();
        let now = pre.now;
        self.note(|| format!("rollback at {now} → {result:?}"));
        let dropped = self.ex.stats().audit_dropped > pre.stats.audit_dropped;
        match result {
            Ok(receipt) => {
                let e = self.rolled_back(
                    "rollback",
                    pre.generation,
                    now,
                    &receipt,
                    RollbackReason::Manual,
                )?;
                self.record("rollback", &pre, e.into_iter().collect(), vec![])
            }
            Err(v) => {
                self.check_unchanged("rollback", &pre)?;
                if self.m.baseline.is_none() {
                    check!(
                        v == Violation::NoBaseline,
                        "rollback without baseline: {v:?}"
                    );
                } else {
                    check!(
                        v == Violation::AuditQueueFull {
                            capacity: self.capacity
                        } && dropped,
                        "rollback refused with {v:?} (queue {} of {}, dropped {dropped})",
                        pre.queue_len,
                        self.capacity
                    );
                    self.check_latched(
                        "rollback",
                        SafeModeReason::AuditQueueFull,
                        SafeModeExit::QueueDrained,
                    )?;
                }
                self.m.refused += 1;
                self.record(
                    "rollback",
                    &pre,
                    vec![],
                    vec![Refusal {
                        request: RequestKind::Rollback,
                        correlation_id: 0,
                        violation: v,
                        delta: vec![],
                    }],
                )
            }
        }
    }

    pub(crate) fn op_set_baseline(&mut self) -> TestCaseResult {
        let pre = self.pre();
        let result = self.ex.set_baseline();
        self.note(|| format!("set_baseline at {} → {result:?}", pre.now));
        match result {
            Ok(generation) => {
                check!(
                    generation == self.m.centre_generation,
                    "set_baseline returned {generation}, centre is {}",
                    self.m.centre_generation
                );
                self.check_unchanged("set_baseline", &pre)?;
                self.m.baseline = Some(BaselineModel {
                    params: self.m.centre.clone(),
                    reports: 0,
                    mean: 0.0,
                    m2: 0.0,
                });
                self.m.centre_is_baseline = true;
                self.m.regressions_since_rollback = 0;
                self.m.regressions_total = 0;
                let e = Expect::BaselineSet {
                    baseline_generation: generation,
                    params: self.m.centre.clone(),
                };
                self.record("set_baseline", &pre, vec![e], vec![])
            }
            Err(v) => {
                check!(
                    v == Violation::AuditQueueFull {
                        capacity: self.capacity
                    } && pre.queue_len + 1 >= self.reserve_threshold,
                    "set_baseline refused with {v:?} (queue {} of {})",
                    pre.queue_len,
                    self.capacity
                );
                self.check_unchanged("set_baseline", &pre)?;
                self.check_latched(
                    "set_baseline",
                    SafeModeReason::AuditQueueFull,
                    SafeModeExit::QueueDrained,
                )?;
                self.m.refused += 1;
                self.record(
                    "set_baseline",
                    &pre,
                    vec![],
                    vec![Refusal {
                        request: RequestKind::SetBaseline,
                        correlation_id: 0,
                        violation: v,
                        delta: vec![],
                    }],
                )
            }
        }
    }

    pub(crate) fn op_report(&mut self, spec: GenSpec, objective: f64) -> TestCaseResult {
        let generation = match spec {
            GenSpec::Centre => self.m.centre_generation,
            GenSpec::Live => self.m.generation,
            GenSpec::Offset(k) => self.m.centre_generation.wrapping_add_signed(k),
        };
        let pre = self.pre();
        let result = self.ex.report_outcome(generation, objective);
        let now = pre.now;
        self.note(|| format!("report_outcome({generation}, {objective}) at {now} → {result:?}"));
        let dropped = self.ex.stats().audit_dropped > pre.stats.audit_dropped;
        let refusal = |violation| Refusal {
            request: RequestKind::Outcome,
            correlation_id: 0,
            violation,
            delta: vec![],
        };
        let expected_err = if !objective.is_finite() {
            Some(Violation::NonFiniteObjective)
        } else if generation != self.m.centre_generation {
            Some(Violation::StaleOutcome {
                reported: generation,
                centre: self.m.centre_generation,
            })
        } else {
            None
        };
        if let Some(v) = expected_err {
            check!(
                result == Err(v),
                "report_outcome: expected {v:?}, got {result:?}"
            );
            self.check_unchanged("report_outcome", &pre)?;
            self.m.refused += 1;
            return self.record("report_outcome", &pre, vec![], vec![refusal(v)]);
        }
        let verdict = self.expected_verdict(objective);
        let receipt = match result {
            Err(v) => {
                check!(
                    v == Violation::AuditQueueFull {
                        capacity: self.capacity
                    } && pre.queue_len + SafeModeReason::ALL.len() + 1 >= self.reserve_threshold,
                    "report_outcome refused with {v:?} (queue {} of {})",
                    pre.queue_len,
                    self.capacity
                );
                self.check_unchanged("report_outcome", &pre)?;
                self.m.refused += 1;
                return self.record("report_outcome", &pre, vec![], vec![refusal(v)]);
            }
            Ok(receipt) => receipt,
        };
        check!(
            receipt.verdict == verdict,
            "report_outcome verdict {:?}, model {verdict:?}",
            receipt.verdict
        );
        self.reported(&pre, generation, objective, verdict, receipt, dropped)
    }

    /// The verdict the model expects for `objective` on the centre.
    fn expected_verdict(&self, objective: f64) -> OutcomeVerdict {
        match &self.m.baseline {
            None => OutcomeVerdict::Unjudged,
            Some(_) if self.m.centre_is_baseline => OutcomeVerdict::BaselineSample,
            Some(b) if b.reports < hotpath::MIN_BASELINE_REPORTS => OutcomeVerdict::Unjudged,
            Some(b) => {
                let p = &self.policy;
                let allowance =
                    (p.regression_sigmas * b.sd()).max(p.regression_tolerance * b.mean.abs());
                if objective > b.mean + allowance {
                    OutcomeVerdict::Regressed {
                        consecutive: self.m.regressions_total.saturating_add(1),
                    }
                } else {
                    OutcomeVerdict::Acceptable
                }
            }
        }
    }

    /// An accepted outcome report: the model counts the verdict, and the
    /// automatic rollback and the `Regressions` latch it implies are checked.
    fn reported(
        &mut self,
        pre: &Pre,
        generation: u64,
        objective: f64,
        verdict: OutcomeVerdict,
        receipt: OutcomeReceipt,
        dropped: bool,
    ) -> TestCaseResult {
        let now = pre.now;
        let mut expects = vec![Expect::Outcome {
            reported_generation: generation,
            objective,
            verdict,
        }];
        let mut refusals = vec![];
        let mut latches = false;
        let mut rollback_attempted = false;
        match verdict {
            OutcomeVerdict::BaselineSample => {
                if let Some(b) = self.m.baseline.as_mut() {
                    b.add(objective);
                }
            }
            OutcomeVerdict::Acceptable => {
                self.m.regressions_total = 0;
                self.m.regressions_since_rollback = 0;
            }
            OutcomeVerdict::Regressed { consecutive } => {
                self.m.regressions_total = consecutive;
                self.m.regressions_since_rollback += 1;
                rollback_attempted =
                    self.m.regressions_since_rollback >= self.policy.max_consecutive_regressions;
                latches = consecutive >= self.g.regression_count_limit;
            }
            OutcomeVerdict::Unjudged => {}
        }
        match (rollback_attempted, receipt.rollback) {
            (false, None) => self.check_unchanged("report_outcome", pre)?,
            (false, Some(r)) => {
                return Err(TestCaseError::fail(format!(
                    "report_outcome rolled back unexpectedly: {r:?}"
                )))
            }
            (true, Some(r)) => {
                let e = self.rolled_back(
                    "report_outcome",
                    pre.generation,
                    now,
                    &r,
                    RollbackReason::Regressions,
                )?;
                expects.extend(e);
            }
            (true, None) => {
                // Only a full queue can refuse a rollback with a baseline.
                check!(
                    dropped,
                    "report_outcome: automatic rollback due but not done, and nothing dropped"
                );
                self.check_unchanged("report_outcome", pre)?;
                self.m.refused += 1;
                refusals.push(Refusal {
                    request: RequestKind::Rollback,
                    correlation_id: 0,
                    violation: Violation::AuditQueueFull {
                        capacity: self.capacity,
                    },
                    delta: vec![],
                });
            }
        }
        check!(
            receipt.safe_mode_latched == latches,
            "report_outcome safe_mode_latched {}, expected {latches}",
            receipt.safe_mode_latched
        );
        if latches {
            self.check_latched(
                "report_outcome",
                SafeModeReason::Regressions,
                SafeModeExit::Manual,
            )?;
        }
        self.record("report_outcome", pre, expects, refusals)
    }

    pub(crate) fn op_freeze(&mut self) -> TestCaseResult {
        let pre = self.pre();
        self.ex.freeze();
        self.note(|| format!("freeze at {}", pre.now));
        self.check_unchanged("freeze", &pre)?;
        self.check_latched("freeze", SafeModeReason::Manual, SafeModeExit::Manual)?;
        self.record("freeze", &pre, vec![], vec![])
    }

    pub(crate) fn op_resume(&mut self) -> TestCaseResult {
        let pre = self.pre();
        let result = self.ex.resume();
        self.note(|| format!("resume at {} → {result:?}", pre.now));
        self.check_unchanged("resume", &pre)?;
        let dropped = self.ex.stats().audit_dropped > pre.stats.audit_dropped;
        match result {
            Ok(cleared) => {
                let mut misconfigured = ReasonSet::EMPTY;
                misconfigured.insert(SafeModeReason::Misconfigured);
                let expected = without(pre.safety.reasons(), misconfigured);
                check!(
                    cleared == expected,
                    "resume cleared {cleared:?}, latched were {expected:?}"
                );
                check!(
                    !self.ex.control_safety().is_latched(),
                    "still latched after resume: {:?}",
                    self.ex.control_safety()
                );
                self.m.regressions_total = 0;
                self.m.regressions_since_rollback = 0;
                self.m.consecutive_malformed = 0;
                self.record("resume", &pre, vec![Expect::Resumed { cleared }], vec![])
            }
            Err(v) => {
                check!(
                    v == Violation::AuditQueueFull {
                        capacity: self.capacity
                    } && dropped,
                    "resume refused with {v:?}, dropped {dropped}"
                );
                check!(
                    *self.ex.control_safety() == pre.safety,
                    "a refused resume changed the latch"
                );
                self.record("resume", &pre, vec![], vec![])
            }
        }
    }

    pub(crate) fn op_no_change(&mut self) -> TestCaseResult {
        let pre = self.pre();
        let result = self.ex.apply(Proposal::NoChange {
            reason: NoChangeReason::CollectingSamples,
        });
        self.note(|| format!("apply NoChange at {} → {result:?}", pre.now));
        let receipt =
            result.map_err(|v| TestCaseError::fail(format!("NoChange refused: {v:?}")))?;
        check!(
            receipt.kind == ProposalKind::NoChange
                && receipt.old_generation == pre.generation
                && receipt.new_generation == pre.generation
                && receipt.timestamp_us == pre.now
                && receipt.audit_seq.is_none(),
            "NoChange receipt {receipt:?}"
        );
        self.check_unchanged("no_change", &pre)?;
        check!(
            *self.ex.control_safety() == pre.safety,
            "NoChange changed the safe-mode latch"
        );
        self.record("no_change", &pre, vec![], vec![])
    }

    pub(crate) fn op_budget(&mut self, index: usize) -> TestCaseResult {
        let i = index % self.n();
        let pre = self.pre();
        let got = self.ex.budget_remaining(i);
        let expected =
            (self.g.max_cumulative_delta_per_minute - self.bucketed_spent(i, pre.now)).max(0.0);
        self.note(|| format!("budget_remaining({i}) at {} → {got}", pre.now));
        check!(
            (got - expected).abs() <= SUM_TOLERANCE,
            "budget_remaining({i}) = {got}, model {expected}"
        );
        self.record("budget_remaining", &pre, vec![], vec![])
    }
}
