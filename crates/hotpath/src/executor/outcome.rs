//! Baseline, outcome reports and rollback: how the executor judges the
//! centre against the baseline and returns to it.

use super::receipts::{OutcomeReceipt, RollbackReceipt};
use super::record::Priority;
use super::{SafetyExecutor, HOUR_US};
use crate::audit::{AuditDetails, OutcomeVerdict, RequestKind, RollbackReason};
use crate::clock::Clock;
use crate::config_atomic::ConfigSnapshot;
use crate::safe_mode::{ReasonSet, SafeModeExit, SafeModeReason};
use crate::stats::RunningStats;
use crate::violation::Violation;
use serde::{Deserialize, Serialize};

/// Baseline reports needed before outcomes are judged against it.
pub const MIN_BASELINE_REPORTS: u64 = 2;

/// The recorded baseline and the statistics of its outcome reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// The baseline configuration (the centre when it was set).
    pub snapshot: ConfigSnapshot,
    reports: RunningStats,
}

impl Baseline {
    fn new(snapshot: ConfigSnapshot) -> Self {
        Self {
            snapshot,
            reports: RunningStats::default(),
        }
    }

    /// Outcome reports received while the centre was the baseline.
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
    /// ex.set_baseline()?;
    /// ex.report_outcome(0, 1.0)?;
    /// assert_eq!(ex.baseline().map(|b| b.reports()), Some(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reports(&self) -> u64 {
        self.reports.count()
    }

    /// Their mean.
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
    /// ex.set_baseline()?;
    /// ex.report_outcome(0, 1.0)?;
    /// ex.report_outcome(0, 2.0)?;
    /// assert_eq!(ex.baseline().map(|b| b.mean()), Some(1.5));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn mean(&self) -> f64 {
        self.reports.mean()
    }

    /// Their sample standard deviation (0 with fewer than two).
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
    /// ex.set_baseline()?;
    /// for y in [1.0, 1.2] {
    ///     ex.report_outcome(0, y)?;
    /// }
    /// let b = ex.baseline().unwrap();
    /// assert_eq!((b.reports(), b.mean()), (2, 1.1));
    /// assert!((b.sd() - 0.1414).abs() < 1e-3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sd(&self) -> f64 {
        self.reports.sd()
    }
}

impl<C: Clock> SafetyExecutor<C> {
    /// Restores the baseline bit for bit under a new generation. Passes in
    /// safe mode (but not in `Misconfigured`); `NoBaseline` without one.
    ///
    /// # Errors
    ///
    /// `NoBaseline` without a baseline, `AuditQueueFull` if its event cannot be
    /// recorded even in the queue's reserve, `InSafeMode` for a misconfigured
    /// executor. Safe mode itself does not stop a rollback.
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
    /// ex.set_baseline()?;
    /// ex.apply(update(0.05))?;
    /// let receipt = ex.rollback()?;
    /// assert_eq!((receipt.new_generation, config.load().params[0]), (2, 0.5));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rollback(&mut self) -> Result<RollbackReceipt, Violation> {
        self.rollback_for(RollbackReason::Manual)
    }

    /// [`rollback`](Self::rollback), recording `reason` (e.g. a constraint
    /// emergency detected by the caller).
    ///
    /// # Errors
    ///
    /// As [`rollback`](Self::rollback).
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
    /// use hotpath::RollbackReason;
    /// ex.set_baseline()?;
    /// ex.apply(update(0.05))?;
    /// let receipt = ex.rollback_for(RollbackReason::ConstraintEmergency)?;
    /// assert_eq!(receipt.reason, RollbackReason::ConstraintEmergency);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rollback_for(&mut self, reason: RollbackReason) -> Result<RollbackReceipt, Violation> {
        let now = self.now();
        self.expire_safe_mode(now);
        self.refuse_if_misconfigured(now, RequestKind::Rollback)?;
        let Some(baseline) = &self.baseline else {
            return self.refuse(now, RequestKind::Rollback, 0, Violation::NoBaseline, &[]);
        };
        let old_generation = self.live_generation;
        let target = &baseline.snapshot.params;
        if self.live.bit_eq(target) && self.centre.bit_eq(target) {
            // Already there: a rollback that publishes or counts nothing, so
            // a persistent emergency cannot churn generations, audit events
            // or the circuit breaker.
            return Ok(RollbackReceipt {
                reason,
                old_generation,
                new_generation: old_generation,
                timestamp_us: now,
                audit_seq: None,
                circuit_breaker_tripped: false,
            });
        }
        self.candidate.copy_from(target);
        let details = AuditDetails::RolledBack {
            reason,
            previous_generation: old_generation,
            params: self.candidate.clone(),
        };
        let Some(audit_seq) = self.record(now, details, Priority::Safety) else {
            return self.refuse_queue_full(now, RequestKind::Rollback, 0, &[]);
        };
        let new_generation = self.publish_candidate();
        self.centre.copy_from(&self.candidate);
        self.centre_generation = new_generation;
        self.centre_is_baseline = true;
        self.directions.fill(0.0);
        self.stable_until_us = now.saturating_add(self.rollback_policy.min_stable_time_us);
        self.regressions_since_rollback = 0;
        self.stats.rollbacks += 1;
        let tripped = self.rollbacks.admits(now, HOUR_US).is_err();
        self.rollbacks.push(now);
        if tripped {
            self.latch(
                now,
                SafeModeReason::RollbackCircuitBreaker,
                SafeModeExit::Manual,
            );
        }
        tracing::warn!(?reason, new_generation, "rolled back to baseline");
        Ok(RollbackReceipt {
            reason,
            old_generation,
            new_generation,
            timestamp_us: now,
            audit_seq: Some(audit_seq),
            circuit_breaker_tripped: tripped,
        })
    }

    /// Records the centre (the committed configuration, not a probe point)
    /// as the baseline, resetting its outcome statistics. Returns the
    /// baseline's generation.
    ///
    /// # Errors
    ///
    /// `AuditQueueFull` if its event could not be recorded, `InSafeMode`
    /// for a misconfigured executor. (The API reference's `set_baseline`
    /// returns nothing; a refusal has to be visible.)
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
    /// assert_eq!(ex.set_baseline()?, 1); // the centre at generation 1
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_baseline(&mut self) -> Result<u64, Violation> {
        let now = self.now();
        self.refuse_if_misconfigured(now, RequestKind::SetBaseline)?;
        let details = AuditDetails::BaselineSet {
            baseline_generation: self.centre_generation,
            params: self.centre.clone(),
        };
        if self.record(now, details, Priority::Normal).is_none() {
            return self.refuse_queue_full(now, RequestKind::SetBaseline, 0, &[]);
        }
        self.baseline = Some(Baseline::new(ConfigSnapshot {
            generation: self.centre_generation,
            params: self.centre.clone(),
        }));
        self.centre_is_baseline = true;
        self.regressions_since_rollback = 0;
        self.regressions_total = 0;
        Ok(self.centre_generation)
    }

    /// Reports the objective measured at the centre (lower is better) for
    /// `generation`, which must be the centre's generation. See
    /// [`SafetyExecutor`] and [`RollbackPolicy`](crate::RollbackPolicy) for
    /// how it is judged and what it may trigger.
    ///
    /// # Errors
    ///
    /// `NonFiniteObjective`, `StaleOutcome` (not the centre's generation),
    /// `AuditQueueFull`, or `InSafeMode` for a misconfigured executor.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, Guardrails, ManualClock, OutcomeVerdict, ParamVec, Proposal,
    ///               RollbackPolicy, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let clock = ManualClock::new(0);
    /// let mut ex = SafetyExecutor::builder(config.clone())
    ///     .rollback_policy(RollbackPolicy { max_consecutive_regressions: 2, ..RollbackPolicy::default() })
    ///     .clock(clock.clone())
    ///     .build()
    ///     .unwrap();
    /// ex.set_baseline().unwrap();
    /// for y in [1.0, 1.02, 0.98] {
    ///     ex.report_outcome(0, y).unwrap(); // baseline: mean 1.0, sd 0.02
    /// }
    /// clock.advance(1_000_000);
    /// let gen = ex.apply(Proposal::Update {
    ///     iteration: 1,
    ///     delta: ParamVec::from_slice(&[0.05]),
    ///     gradient_estimate: ParamVec::from_slice(&[0.0]),
    /// }).unwrap().new_generation;
    /// assert!(matches!(ex.report_outcome(gen, 1.5).unwrap().verdict, OutcomeVerdict::Regressed { .. }));
    /// let second = ex.report_outcome(gen, 1.5).unwrap();
    /// assert!(second.rollback.is_some()); // two regressions: back to 0.5
    /// assert_eq!(config.load().params[0], 0.5);
    /// ```
    pub fn report_outcome(
        &mut self,
        generation: u64,
        objective: f64,
    ) -> Result<OutcomeReceipt, Violation> {
        let now = self.now();
        self.expire_safe_mode(now);
        self.refuse_if_misconfigured(now, RequestKind::Outcome)?;
        let refusal = if !objective.is_finite() {
            Some(Violation::NonFiniteObjective)
        } else if generation != self.centre_generation {
            Some(Violation::StaleOutcome {
                reported: generation,
                centre: self.centre_generation,
            })
        } else {
            None
        };
        if let Some(violation) = refusal {
            return self.refuse(now, RequestKind::Outcome, 0, violation, &[]);
        }
        let verdict = self.judge(objective);
        let details = AuditDetails::Outcome {
            reported_generation: generation,
            objective,
            verdict,
        };
        if self.record(now, details, Priority::Normal).is_none() {
            return self.refuse_queue_full(now, RequestKind::Outcome, 0, &[]);
        }
        Ok(self.act_on(verdict, objective, now))
    }

    /// The verdict on an objective measured at the centre: a sample of the
    /// baseline while the centre is the baseline, otherwise regressed if it
    /// is worse than the baseline's mean by more than
    /// `max(regression_sigmas · sd, regression_tolerance · |mean|)`.
    fn judge(&self, objective: f64) -> OutcomeVerdict {
        match &self.baseline {
            None => OutcomeVerdict::Unjudged,
            Some(_) if self.centre_is_baseline => OutcomeVerdict::BaselineSample,
            Some(b) if b.reports() < MIN_BASELINE_REPORTS => OutcomeVerdict::Unjudged,
            Some(b) => {
                let p = &self.rollback_policy;
                let allowance =
                    (p.regression_sigmas * b.sd()).max(p.regression_tolerance * b.mean().abs());
                if objective > b.mean() + allowance {
                    OutcomeVerdict::Regressed {
                        consecutive: self.regressions_total.saturating_add(1),
                    }
                } else {
                    OutcomeVerdict::Acceptable
                }
            }
        }
    }

    /// What a recorded verdict does: feeds the baseline, resets or counts
    /// regressions, rolls back and latches as the policy says.
    fn act_on(&mut self, verdict: OutcomeVerdict, objective: f64, now: u64) -> OutcomeReceipt {
        let mut receipt = OutcomeReceipt {
            verdict,
            rollback: None,
            safe_mode_latched: false,
        };
        match verdict {
            OutcomeVerdict::BaselineSample => {
                if let Some(b) = self.baseline.as_mut() {
                    b.reports.add(objective);
                }
            }
            OutcomeVerdict::Acceptable => {
                self.regressions_since_rollback = 0;
                self.regressions_total = 0;
            }
            OutcomeVerdict::Regressed { consecutive } => {
                self.regressions_total = consecutive;
                self.regressions_since_rollback = self.regressions_since_rollback.saturating_add(1);
                if self.regressions_since_rollback
                    >= self.rollback_policy.max_consecutive_regressions
                {
                    receipt.rollback = self.rollback_for(RollbackReason::Regressions).ok();
                }
                if consecutive >= self.guardrails.regression_count_limit {
                    self.latch(now, SafeModeReason::Regressions, SafeModeExit::Manual);
                    receipt.safe_mode_latched = true;
                }
            }
            OutcomeVerdict::Unjudged => {}
        }
        receipt
    }

    /// The kill switch: latches safe mode (`Manual`) until
    /// [`resume`](Self::resume). Always takes effect; its audit event uses
    /// the queue's reserve and, if even that is full, is counted as dropped.
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
    /// ex.freeze();
    /// assert!(ex.apply(update(0.05)).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn freeze(&mut self) {
        let now = self.now();
        self.latch(now, SafeModeReason::Manual, SafeModeExit::Manual);
    }

    /// A fleet's leader lost its coordinator: latches safe mode
    /// (`CoordinatorLost`, audited once) until
    /// [`coordinator_regained`](Self::coordinator_regained). Nothing it
    /// would decide meanwhile could be published, so it decides nothing;
    /// an operator's [`resume`](Self::resume) does not clear it.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ManualClock, ParamVec, Proposal, SafeModeReason, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let mut ex = SafetyExecutor::builder(config).clock(ManualClock::new(1_000_000)).build()?;
    /// let update = Proposal::Update { iteration: 1, delta: ParamVec::from_slice(&[0.05]),
    ///                                 gradient_estimate: ParamVec::new() };
    /// ex.coordinator_lost();
    /// assert!(ex.apply(update.clone()).is_err());
    /// ex.resume()?;                                     // not the operator's to clear
    /// assert!(ex.control_safety().reasons().contains(SafeModeReason::CoordinatorLost));
    /// assert!(ex.coordinator_regained());
    /// assert!(ex.apply(update).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn coordinator_lost(&mut self) {
        let now = self.now();
        self.latch(
            now,
            SafeModeReason::CoordinatorLost,
            SafeModeExit::CoordinatorRegained,
        );
    }

    /// The leadership a fleet's leader depends on is re-established:
    /// clears `CoordinatorLost` (audited as its exit). `true` if it was
    /// latched and is now cleared; `false` if it was not latched, or if
    /// its exit event could not be recorded (the audit queue is full:
    /// it stays latched, try again).
    ///
    /// See [`coordinator_lost`](Self::coordinator_lost) for an example.
    pub fn coordinator_regained(&mut self) -> bool {
        let reason = SafeModeReason::CoordinatorLost;
        if self.control_safety.exit_of(reason).is_none() {
            return false;
        }
        let now = self.now();
        self.exit_safe_mode(now, reason)
    }

    /// Operator reset: clears every latched reason except `Misconfigured`
    /// and `CoordinatorLost`,
    /// and resets the regression and malformed-proposal counters. A
    /// condition that persists latches again on the next attempt. Returns
    /// the cleared reasons.
    ///
    /// # Errors
    ///
    /// `AuditQueueFull` if its event cannot be recorded; nothing is cleared
    /// then.
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
    /// use hotpath::SafeModeReason;
    /// ex.freeze();
    /// let cleared = ex.resume()?;
    /// assert!(cleared.contains(SafeModeReason::Manual));
    /// assert!(ex.apply(update(0.05)).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resume(&mut self) -> Result<ReasonSet, Violation> {
        let now = self.now();
        let cleared = self.control_safety.resumable();
        if self
            .record(now, AuditDetails::Resumed { cleared }, Priority::Safety)
            .is_none()
        {
            return Err(self.queue_full());
        }
        self.control_safety.clear(cleared);
        self.regressions_total = 0;
        self.regressions_since_rollback = 0;
        self.consecutive_malformed = 0;
        tracing::info!(?cleared, "safe mode resumed by operator");
        Ok(cleared)
    }
}
