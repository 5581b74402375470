//! The [`Harness`]: one executor and its model side by side, the
//! bookkeeping around each call, the state checks after every step, and
//! running one case (re-run with a step log when it fails).

use crate::audit::{Expect, OpRecord, Refusal};
use crate::case::Case;
use crate::model::{bit_eq, reason_set, Model};
use crate::ops::Op;
use crate::setup::Setup;
use hotpath::{
    AtomicConfig, AuditEvent, Clock, ControlSafety, ExecutorStats, Guardrails, ManualClock,
    ParamVec, RateRule, RollbackPolicy, SafeModeExit, SafeModeReason, SafetyExecutor, Violation,
    MAX_TIME_US,
};
use proptest::test_runner::{TestCaseError, TestCaseResult};
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

pub(crate) struct Harness {
    pub(crate) g: Guardrails,
    pub(crate) policy: RollbackPolicy,
    pub(crate) capacity: usize,
    pub(crate) reserve_threshold: usize,
    pub(crate) bounds: Vec<(f64, f64)>,
    pub(crate) ranges: Vec<f64>,
    pub(crate) rate_cap: usize,
    pub(crate) eager: bool,
    pub(crate) config: Arc<AtomicConfig>,
    pub(crate) clock: ManualClock,
    pub(crate) ex: SafetyExecutor<ManualClock>,
    pub(crate) m: Model,
    pub(crate) trail: Vec<AuditEvent>,
    pub(crate) records: Vec<OpRecord>,
    pub(crate) step: usize,
    pub(crate) log: Option<Vec<String>>,
    pub(crate) counters: Counters,
}

impl Harness {
    pub(crate) fn new(setup: &Setup, log: bool) -> Result<Self, TestCaseError> {
        let n = setup.initial.len();
        let g = setup.guardrails.clone();
        let config = Arc::new(AtomicConfig::with_generation(
            ParamVec::from_slice(&setup.initial),
            setup.initial_generation,
        ));
        let clock = ManualClock::new(setup.clock_start);
        let ex = SafetyExecutor::builder(config.clone())
            .guardrails(g.clone())
            .rollback_policy(setup.policy)
            .clock(clock.clone())
            .audit_capacity(setup.audit_capacity)
            .build()
            .map_err(|e| TestCaseError::fail(format!("valid settings refused: {e}")))?;
        let bounds: Vec<(f64, f64)> = (0..n)
            .map(|i| {
                g.bounds
                    .as_ref()
                    .map_or((f64::NEG_INFINITY, f64::INFINITY), |b| b[i])
            })
            .collect();
        let ranges: Vec<f64> = (0..n)
            .map(|i| g.bounds.as_ref().map_or(1.0, |b| b[i].1 - b[i].0))
            .collect();
        let rate_cap = g.max_updates_per_second.floor() as usize;
        let capacity = setup.audit_capacity;
        let m = Model {
            live: setup.initial.clone(),
            generation: setup.initial_generation,
            centre: setup.initial.clone(),
            centre_generation: setup.initial_generation,
            centre_is_baseline: false,
            baseline: None,
            now: setup.clock_start.min(MAX_TIME_US),
            applies: VecDeque::new(),
            last_apply: None,
            stable_until: 0,
            directions: vec![0; n],
            flips: vec![VecDeque::new(); n],
            commits: VecDeque::new(),
            rollbacks: VecDeque::new(),
            regressions_total: 0,
            regressions_since_rollback: 0,
            consecutive_malformed: 0,
            applied: 0,
            refused: 0,
            rollback_count: 0,
            min_clock_regressions: 0,
        };
        let mut h = Harness {
            policy: setup.policy,
            capacity,
            reserve_threshold: capacity - capacity / 8,
            bounds,
            ranges,
            rate_cap,
            eager: setup.eager_consumer,
            config,
            clock,
            ex,
            m,
            trail: Vec::new(),
            records: Vec::new(),
            step: 0,
            log: log.then(Vec::new),
            counters: Counters::default(),
            g,
        };
        h.note(|| format!("setup: {setup:?}"));
        h.check_state()?;
        Ok(h)
    }

    pub(crate) fn note(&mut self, f: impl FnOnce() -> String) {
        if let Some(log) = self.log.as_mut() {
            log.push(f());
        }
    }

    pub(crate) fn n(&self) -> usize {
        self.m.live.len()
    }

    pub(crate) fn step_limit(&self, i: usize) -> f64 {
        self.g.max_delta_per_step * self.ranges[i]
    }

    pub(crate) fn pre(&mut self) -> Pre {
        // Cases keep the clock in the executor's range (readings beyond it
        // are faults, tested on their own).
        let clock = self.clock.now_us();
        debug_assert!(
            clock <= MAX_TIME_US,
            "the harness let the clock leave the range"
        );
        if clock < self.m.now {
            self.m.min_clock_regressions += 1;
        }
        self.m.now = self.m.now.max(clock);
        let now = self.m.now;
        self.prune(now);
        let queue_len = self.ex.audit_queue().len();
        Pre {
            now,
            queue_len,
            safety: self.ex.control_safety().clone(),
            stats: self.ex.stats(),
            seq_start: self.trail.len() as u64 + queue_len as u64,
            generation: self.m.generation,
            live: self.m.live.clone(),
        }
    }

    pub(crate) fn record(
        &mut self,
        label: &'static str,
        pre: &Pre,
        expects: Vec<Expect>,
        refusals: Vec<Refusal>,
    ) -> Result<(), TestCaseError> {
        let queue_len = self.ex.audit_queue().len();
        let seq_end = self.trail.len() as u64 + queue_len as u64;
        check!(
            seq_end >= pre.seq_start,
            "{label}: the audit queue shrank during the call"
        );
        let stats = self.ex.stats();
        check!(
            stats.audit_dropped >= pre.stats.audit_dropped,
            "{label}: audit_dropped went down"
        );
        let dropped = stats.audit_dropped > pre.stats.audit_dropped;
        self.counters.dropped += stats.audit_dropped - pre.stats.audit_dropped;
        for r in &refusals {
            *self
                .counters
                .refusals
                .entry(violation_name(&r.violation))
                .or_default() += 1;
        }
        // Reasons with a manual exit are only cleared by resume.
        let after = self.ex.control_safety().clone();
        if label != "resume" {
            for r in pre.safety.reasons().iter() {
                if matches!(
                    pre.safety.exit_of(r),
                    Some(SafeModeExit::Manual | SafeModeExit::Never)
                ) {
                    check!(
                        after.exit_of(r) == pre.safety.exit_of(r),
                        "{label}: {r:?} (manual exit) cleared or changed without resume: {:?}",
                        after.exit_of(r)
                    );
                }
            }
        }
        self.records.push(OpRecord {
            step: self.step,
            label,
            seq_start: pre.seq_start,
            seq_end,
            queue_len: pre.queue_len,
            now: pre.now,
            dropped,
            latched_before: reason_set(&pre.safety),
            latched_after: reason_set(&after),
            expects,
            refusals,
        });
        Ok(())
    }

    /// A refusal must leave the live config and the centre as they were.
    pub(crate) fn check_unchanged(&self, label: &str, pre: &Pre) -> Result<(), TestCaseError> {
        let snap = self.config.load();
        check!(
            snap.generation == pre.generation && bit_eq(&snap.params, &pre.live),
            "{label}: refused but the live config changed: gen {} → {}, {:?} → {:?}",
            pre.generation,
            snap.generation,
            pre.live,
            snap.params
        );
        check!(
            bit_eq(self.ex.centre(), &self.m.centre)
                && self.ex.centre_generation() == self.m.centre_generation,
            "{label}: refused but the centre changed"
        );
        Ok(())
    }

    /// A latched reason must still be latched, with a timer at least `until`.
    pub(crate) fn check_latched(
        &self,
        label: &str,
        reason: SafeModeReason,
        exit: SafeModeExit,
    ) -> Result<(), TestCaseError> {
        let got = self.ex.control_safety().exit_of(reason);
        let ok = match (got, exit) {
            (Some(SafeModeExit::At(a)), SafeModeExit::At(b)) => a >= b,
            (Some(SafeModeExit::Manual | SafeModeExit::Never), _) => true,
            (Some(a), b) => a == b,
            (None, _) => false,
        };
        check!(
            ok,
            "{label}: expected {reason:?} latched with {exit:?}, got {got:?}"
        );
        Ok(())
    }

    pub(crate) fn check_state(&self) -> TestCaseResult {
        let snap = self.ex.snapshot();
        let load = self.config.load();
        check!(
            snap.generation == load.generation && bit_eq(&snap.params, &load.params),
            "snapshot {snap:?} ≠ config.load() {load:?}"
        );
        check!(
            load.generation == self.m.generation && bit_eq(&load.params, &self.m.live),
            "live {load:?} ≠ model gen {} {:?}",
            self.m.generation,
            self.m.live
        );
        for (i, &v) in load.params.iter().enumerate() {
            let (min, max) = self.bounds[i];
            check!(
                v.is_finite() && v >= min && v <= max,
                "params[{i}] = {v} outside [{min}, {max}]"
            );
        }
        check!(
            bit_eq(self.ex.centre(), &self.m.centre)
                && self.ex.centre_generation() == self.m.centre_generation,
            "centre {:?} @{} ≠ model {:?} @{}",
            self.ex.centre(),
            self.ex.centre_generation(),
            self.m.centre,
            self.m.centre_generation
        );
        let stats = self.ex.stats();
        check!(
            stats.applied == self.m.applied
                && stats.refused == self.m.refused
                && stats.rollbacks == self.m.rollback_count
                && stats.clock_regressions >= self.m.min_clock_regressions,
            "stats {stats:?}, model applied {} refused {} rollbacks {} clock regressions ≥ {}",
            self.m.applied,
            self.m.refused,
            self.m.rollback_count,
            self.m.min_clock_regressions
        );
        Ok(())
    }

    fn run_op(&mut self, op: &Op) -> TestCaseResult {
        match op {
            Op::Apply(spec) => self.op_apply(spec)?,
            Op::NoChange => self.op_no_change()?,
            Op::Advance(us) => {
                let t = self.clock.now_us().saturating_add(*us).min(MAX_TIME_US);
                self.clock.set(t);
                let t = self.clock.now_us();
                self.note(|| format!("clock +{us} → {t}"));
            }
            Op::Backwards(us) => {
                let t = self.clock.now_us().saturating_sub(*us);
                self.clock.set(t);
                self.note(|| format!("clock −{us} → {t}"));
            }
            Op::Boundary { which, offset } => {
                let deadlines = self.deadlines();
                if !deadlines.is_empty() {
                    let t = deadlines[*which as usize % deadlines.len()]
                        .saturating_add_signed(*offset as i64)
                        .min(MAX_TIME_US);
                    if t > self.clock.now_us() {
                        self.clock.set(t);
                        self.note(|| format!("clock to deadline {t}"));
                    }
                }
            }
            Op::SetBaseline => self.op_set_baseline()?,
            Op::Rollback => self.op_rollback()?,
            Op::Report {
                generation,
                objective,
            } => self.op_report(*generation, *objective)?,
            Op::Freeze => self.op_freeze()?,
            Op::Resume => self.op_resume()?,
            Op::Drain(max) => {
                self.drain(*max)?;
                let seq = self.trail.len();
                self.note(|| format!("drained to seq {seq}"));
            }
            Op::BudgetRemaining(i) => self.op_budget(*i)?,
        }
        if self.eager {
            self.drain(None)?;
        }
        self.check_state()
    }
}

/// State captured before an executor call.
pub(crate) struct Pre {
    pub(crate) now: u64,
    pub(crate) queue_len: usize,
    pub(crate) safety: ControlSafety,
    pub(crate) stats: ExecutorStats,
    pub(crate) seq_start: u64,
    pub(crate) generation: u64,
    pub(crate) live: Vec<f64>,
}

/// Outcome counters, for the report printed at the end of each property.
#[derive(Debug, Default, Clone)]
pub(crate) struct Counters {
    pub(crate) cases: u64,
    pub(crate) steps: u64,
    pub(crate) applies_ok: u64,
    pub(crate) rollbacks_ok: u64,
    /// Rollbacks to where the config already was (nothing to do).
    pub(crate) rollbacks_noop: u64,
    pub(crate) events: u64,
    pub(crate) dropped: u64,
    pub(crate) refusals: BTreeMap<&'static str, u64>,
}

fn violation_name(v: &Violation) -> &'static str {
    match v {
        Violation::DeltaTooLarge { .. } => "DeltaTooLarge",
        Violation::RateLimitExceeded {
            rule: RateRule::MinInterval,
            ..
        } => "RateLimit(MinInterval)",
        Violation::RateLimitExceeded {
            rule: RateRule::PerSecond,
            ..
        } => "RateLimit(PerSecond)",
        Violation::DirectionFlipViolation { .. } => "DirectionFlip",
        Violation::CumulativeDeltaViolation { .. } => "CumulativeDelta",
        Violation::InSafeMode { reason, .. } => match reason {
            SafeModeReason::Thrashing => "InSafeMode(Thrashing)",
            SafeModeReason::BudgetExhausted => "InSafeMode(BudgetExhausted)",
            SafeModeReason::Regressions => "InSafeMode(Regressions)",
            SafeModeReason::RollbackCircuitBreaker => "InSafeMode(RollbackCircuitBreaker)",
            SafeModeReason::AuditQueueFull => "InSafeMode(AuditQueueFull)",
            SafeModeReason::RepeatedViolations => "InSafeMode(RepeatedViolations)",
            SafeModeReason::Manual => "InSafeMode(Manual)",
            _ => "InSafeMode(other)",
        },
        Violation::AuditQueueFull { .. } => "AuditQueueFull",
        Violation::NoBaseline => "NoBaseline",
        Violation::WrongLength { .. } => "WrongLength",
        Violation::NonFinite { .. } => "NonFinite",
        Violation::OutOfBounds { .. } => "OutOfBounds",
        Violation::ExcursionTooLarge { .. } => "ExcursionTooLarge",
        Violation::StabilizationPending { .. } => "StabilizationPending",
        Violation::NonFiniteObjective => "NonFiniteObjective",
        Violation::StaleOutcome { .. } => "StaleOutcome",
        _ => "other",
    }
}

fn run_case_inner(case: &Case, log: bool) -> (TestCaseResult, Option<Vec<String>>, Counters) {
    let mut h = match Harness::new(&case.setup, log) {
        Ok(h) => h,
        Err(e) => return (Err(e), None, Counters::default()),
    };
    let mut result = Ok(());
    for op in &case.decoded() {
        h.step += 1;
        h.counters.steps += 1;
        if let Err(e) = h.run_op(op) {
            result = Err(e);
            break;
        }
    }
    if result.is_ok() {
        result = h.finish();
    }
    (result, h.log.take(), h.counters)
}

pub(crate) fn run_case(case: &Case, totals: &RefCell<Counters>) -> TestCaseResult {
    let (result, _, counters) = run_case_inner(case, false);
    {
        let mut t = totals.borrow_mut();
        t.cases += 1;
        t.steps += counters.steps;
        t.applies_ok += counters.applies_ok;
        t.rollbacks_ok += counters.rollbacks_ok;
        t.rollbacks_noop += counters.rollbacks_noop;
        t.events += counters.events;
        t.dropped += counters.dropped;
        for (k, v) in counters.refusals {
            *t.refusals.entry(k).or_default() += v;
        }
    }
    match result {
        Ok(()) => Ok(()),
        Err(e) => {
            // Re-run with a step log for the report.
            let (_, log, _) = run_case_inner(case, true);
            let log = log.unwrap_or_default();
            // The setup line, then the last steps.
            let tail = log.len().saturating_sub(80).max(1);
            Err(TestCaseError::fail(format!(
                "{e}\n--- step log ({} steps) ---\n{}\n{}{}",
                log.len() - 1,
                log.first().map_or("", String::as_str),
                if tail > 1 { "…\n" } else { "" },
                log[tail.min(log.len())..].join("\n")
            )))
        }
    }
}
