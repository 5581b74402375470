//! The audit trail: what each call's events must be ([`OpRecord`]),
//! draining with gap and order checks, and the final check of the whole
//! trail (every call's events, drop accounting, and replay).

use crate::harness::Harness;
use crate::model::{bit_eq, is_subset, without};
use hotpath::{
    AuditDetails, AuditEvent, OutcomeVerdict, ProposalKind, ReasonSet, RequestKind, RollbackReason,
    Violation,
};
use proptest::test_runner::{TestCaseError, TestCaseResult};

/// What an operation's audit events must contain.
#[derive(Debug, Clone)]
pub(crate) enum Expect {
    Applied {
        seq: u64,
        kind: ProposalKind,
        correlation_id: u64,
        previous_generation: u64,
        delta: Vec<f64>,
        params: Vec<f64>,
    },
    RolledBack {
        seq: u64,
        reason: RollbackReason,
        previous_generation: u64,
        params: Vec<f64>,
    },
    BaselineSet {
        baseline_generation: u64,
        params: Vec<f64>,
    },
    Outcome {
        reported_generation: u64,
        objective: f64,
        verdict: OutcomeVerdict,
    },
    Resumed {
        cleared: ReasonSet,
    },
}

impl Expect {
    /// `e` is the event this expectation describes.
    fn matches(&self, e: &AuditEvent) -> bool {
        match (self, &e.details) {
            (
                Expect::Applied {
                    seq,
                    kind,
                    correlation_id,
                    previous_generation,
                    delta,
                    params,
                },
                AuditDetails::Applied {
                    kind: k2,
                    correlation_id: c2,
                    previous_generation: p2,
                    delta: d2,
                    params: q2,
                },
            ) => {
                *seq == e.seq
                    && kind == k2
                    && correlation_id == c2
                    && previous_generation == p2
                    && e.generation == p2 + 1
                    && bit_eq(delta, d2)
                    && bit_eq(params, q2)
            }
            (
                Expect::RolledBack {
                    seq,
                    reason,
                    previous_generation,
                    params,
                },
                AuditDetails::RolledBack {
                    reason: r2,
                    previous_generation: p2,
                    params: q2,
                },
            ) => {
                *seq == e.seq
                    && reason == r2
                    && previous_generation == p2
                    && e.generation == p2 + 1
                    && bit_eq(params, q2)
            }
            (
                Expect::BaselineSet {
                    baseline_generation,
                    params,
                },
                AuditDetails::BaselineSet {
                    baseline_generation: b2,
                    params: q2,
                },
            ) => baseline_generation == b2 && bit_eq(params, q2),
            (
                Expect::Outcome {
                    reported_generation,
                    objective,
                    verdict,
                },
                AuditDetails::Outcome {
                    reported_generation: g2,
                    objective: o2,
                    verdict: v2,
                },
            ) => reported_generation == g2 && objective.to_bits() == o2.to_bits() && verdict == v2,
            (Expect::Resumed { cleared }, AuditDetails::Resumed { cleared: c2 }) => cleared == c2,
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    pub(crate) request: RequestKind,
    pub(crate) correlation_id: u64,
    pub(crate) violation: Violation,
    pub(crate) delta: Vec<f64>,
}

/// One executor call and what its audit events must be.
#[derive(Debug, Clone)]
pub(crate) struct OpRecord {
    pub(crate) step: usize,
    pub(crate) label: &'static str,
    pub(crate) seq_start: u64,
    pub(crate) seq_end: u64,
    /// Events queued when the call started.
    pub(crate) queue_len: usize,
    pub(crate) now: u64,
    pub(crate) dropped: bool,
    pub(crate) latched_before: ReasonSet,
    pub(crate) latched_after: ReasonSet,
    pub(crate) expects: Vec<Expect>,
    pub(crate) refusals: Vec<Refusal>,
}

impl Harness {
    pub(crate) fn drain(&mut self, max: Option<usize>) -> TestCaseResult {
        let mut taken = 0;
        while max.is_none_or(|k| taken < k) {
            let Some(e) = self.ex.audit_queue().try_dequeue() else {
                break;
            };
            taken += 1;
            check!(
                e.seq == self.trail.len() as u64,
                "audit seq {} after {} events (gap or reorder): {e:?}",
                e.seq,
                self.trail.len()
            );
            if let Some(prev) = self.trail.last() {
                check!(
                    e.timestamp_us >= prev.timestamp_us,
                    "audit time went backwards: {prev:?} then {e:?}"
                );
            }
            self.trail.push(e);
        }
        self.counters.events += taken as u64;
        Ok(())
    }

    fn check_events(&self, r: &OpRecord) -> TestCaseResult {
        let events = &self.trail[r.seq_start as usize..r.seq_end as usize];
        let ctx = || format!("step {} ({}) events {events:?}", r.step, r.label);
        let mut set = r.latched_before;
        let mut found = vec![false; r.expects.len()];
        let mut refusals = r.refusals.iter();
        let mut rejected = 0;
        let mut exits_before = 0;
        for e in events {
            self.check_event_slot(r, e, &ctx)?;
            match &e.details {
                AuditDetails::Started { .. } => {
                    return Err(TestCaseError::fail(format!("second Started: {}", ctx())))
                }
                AuditDetails::EventsDropped { count } => {
                    check!(*count > 0, "EventsDropped of 0: {}", ctx())
                }
                AuditDetails::SafeModeExited { reason } => {
                    exits_before += 1;
                    check!(
                        set.contains(*reason),
                        "exit of unlatched {reason:?}: {}",
                        ctx()
                    );
                    let mut one = ReasonSet::EMPTY;
                    one.insert(*reason);
                    set = without(set, one);
                }
                AuditDetails::SafeModeEntered { reason, .. } => {
                    check!(
                        !set.contains(*reason),
                        "entry of latched {reason:?}: {}",
                        ctx()
                    );
                    set.insert(*reason);
                }
                AuditDetails::Rejected { .. } => {
                    rejected += 1;
                    self.check_rejected(r, e, exits_before, &mut refusals, &ctx)?;
                }
                details => {
                    let pos = r
                        .expects
                        .iter()
                        .enumerate()
                        .position(|(k, x)| !found[k] && x.matches(e));
                    let Some(k) = pos else {
                        return Err(TestCaseError::fail(format!(
                            "unexpected {e:?}; expected {:?}: {}",
                            r.expects,
                            ctx()
                        )));
                    };
                    found[k] = true;
                    if let AuditDetails::Resumed { cleared } = details {
                        set = without(set, *cleared);
                    }
                }
            }
        }
        check!(
            found.iter().all(|&f| f),
            "missing events {:?}: {}",
            r.expects,
            ctx()
        );
        if !r.dropped {
            check!(
                rejected == r.refusals.len(),
                "{} refusals but {rejected} Rejected events (nothing dropped): {}",
                r.refusals.len(),
                ctx()
            );
            check!(
                set == r.latched_after,
                "audited safe-mode state {set:?} ≠ latch {:?}: {}",
                r.latched_after,
                ctx()
            );
        } else {
            check!(
                is_subset(set, r.latched_after),
                "audited safe-mode state {set:?} ⊄ latch {:?}: {}",
                r.latched_after,
                ctx()
            );
        }
        Ok(())
    }

    /// Where event `e` of call `r` was queued and when: an ordinary event
    /// before the reserve, every event at the call's time.
    fn check_event_slot(
        &self,
        r: &OpRecord,
        e: &AuditEvent,
        ctx: &impl Fn() -> String,
    ) -> TestCaseResult {
        // Queue length when this event was pushed.
        let queued = r.queue_len + (e.seq - r.seq_start) as usize;
        if matches!(
            e.details,
            AuditDetails::Applied { .. }
                | AuditDetails::BaselineSet { .. }
                | AuditDetails::Outcome { .. }
        ) {
            check!(
                queued < self.reserve_threshold,
                "ordinary event queued at length {queued}, reserve starts at {}: {}",
                self.reserve_threshold,
                ctx()
            );
        }
        check!(
            e.timestamp_us == r.now,
            "event time {} ≠ call time {}: {}",
            e.timestamp_us,
            r.now,
            ctx()
        );
        Ok(())
    }

    /// A `Rejected` event of call `r` must be one of the call's refusals:
    /// the next one, or (when the call dropped events) any later one.
    fn check_rejected(
        &self,
        r: &OpRecord,
        e: &AuditEvent,
        exits_before: usize,
        refusals: &mut std::slice::Iter<'_, Refusal>,
        ctx: &impl Fn() -> String,
    ) -> TestCaseResult {
        let AuditDetails::Rejected {
            request,
            correlation_id,
            violation,
            delta,
        } = &e.details
        else {
            unreachable!("called for Rejected events only");
        };
        if *violation
            == (Violation::AuditQueueFull {
                capacity: self.capacity,
            })
            && *request != RequestKind::Rollback
        {
            // The refused ordinary event found the queue (after
            // this call's exits and at most one drop notice) at
            // the reserve, or one short of it with a notice due.
            check!(
                r.queue_len + exits_before + 2 >= self.reserve_threshold,
                "AuditQueueFull with {} queued + {exits_before} exits, reserve \
                 starts at {}: {}",
                r.queue_len,
                self.reserve_threshold,
                ctx()
            );
        }
        let matches = |f: &Refusal| {
            f.request == *request
                && f.correlation_id == *correlation_id
                && f.violation == *violation
                && bit_eq(&f.delta, delta)
        };
        let ok = if r.dropped {
            refusals.any(matches)
        } else {
            refusals.next().is_some_and(matches)
        };
        check!(
            ok,
            "unexpected Rejected {e:?}; refusals {:?}: {}",
            r.refusals,
            ctx()
        );
        Ok(())
    }

    /// Drains everything, flushes a pending drop notice, and checks the
    /// whole trail against the calls and the final state.
    pub(crate) fn finish(&mut self) -> TestCaseResult {
        self.drain(None)?;
        // The next recorded event reports earlier drops: make one.
        self.op_resume()?;
        self.drain(None)?;
        self.check_state()?;
        check!(
            self.ex.audit_queue().is_empty(),
            "queue not empty after draining"
        );
        let first = self
            .trail
            .first()
            .ok_or_else(|| TestCaseError::fail("no Started event".to_string()))?;
        let (mut params, mut generation) = match &first.details {
            AuditDetails::Started { params } => (params.to_vec(), first.generation),
            other => {
                return Err(TestCaseError::fail(format!(
                    "first event is not Started: {other:?}"
                )))
            }
        };
        let dropped_reported: u64 = self
            .trail
            .iter()
            .map(|e| match e.details {
                AuditDetails::EventsDropped { count } => count,
                _ => 0,
            })
            .sum();
        check!(
            dropped_reported == self.ex.stats().audit_dropped,
            "EventsDropped report {dropped_reported}, stats {}",
            self.ex.stats().audit_dropped
        );
        // Replay.
        for e in &self.trail[1..] {
            match &e.details {
                AuditDetails::Applied {
                    previous_generation,
                    params: p,
                    ..
                }
                | AuditDetails::RolledBack {
                    previous_generation,
                    params: p,
                    ..
                } => {
                    check!(
                        *previous_generation == generation && e.generation == generation + 1,
                        "replay: {e:?} at generation {generation}"
                    );
                    generation += 1;
                    params = p.to_vec();
                }
                _ => check!(
                    e.generation == generation,
                    "replay: {e:?} at generation {generation}"
                ),
            }
        }
        let live = self.config.load();
        check!(
            generation == live.generation && bit_eq(&params, &live.params),
            "replay gives gen {generation} {params:?}, live is {live:?}"
        );
        // Every call's events.
        let started_ok = self.records.first().is_none_or(|r| r.seq_start >= 1);
        check!(started_ok, "events before Started");
        for r in &self.records {
            self.check_events(r)?;
        }
        Ok(())
    }
}
