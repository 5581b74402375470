//! Recording decisions in the audit queue (rule 10), refusals and
//! safe-mode latches.

use super::SafetyExecutor;
use crate::audit::{AuditDetails, RequestKind};
use crate::clock::Clock;
use crate::safe_mode::{ReasonSet, SafeModeExit, SafeModeReason};
use crate::violation::Violation;

/// Which part of the audit queue an event may use.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Priority {
    /// Changes and reports: refused once the reserve is reached.
    Normal,
    /// Refusals, rollbacks, safe mode: may use the reserve.
    Safety,
    /// The optimiser's notes: below the reserve, counted if dropped (the
    /// decision they record has already been taken).
    Note,
}

impl<C: Clock> SafetyExecutor<C> {
    /// Refuses a request: audits the refusal, latches what the violation
    /// calls for, and returns the violation as the request's error.
    pub(super) fn refuse<T>(
        &mut self,
        now: u64,
        request: RequestKind,
        correlation_id: u64,
        violation: Violation,
        delta: &[f64],
    ) -> Result<T, Violation> {
        self.stats.refused += 1;
        self.record_with(now, Priority::Safety, |details, _| {
            details.set_rejected(request, correlation_id, violation, delta);
        });
        let latch = match violation {
            Violation::DirectionFlipViolation {
                cooldown_until_us, ..
            } => Some((
                SafeModeReason::Thrashing,
                SafeModeExit::At(cooldown_until_us),
            )),
            Violation::CumulativeDeltaViolation { retry_at_us, .. } => Some((
                SafeModeReason::BudgetExhausted,
                SafeModeExit::At(retry_at_us),
            )),
            Violation::AuditQueueFull { .. } => {
                Some((SafeModeReason::AuditQueueFull, SafeModeExit::QueueDrained))
            }
            v if v.is_malformed() => {
                self.consecutive_malformed = self.consecutive_malformed.saturating_add(1);
                (self.consecutive_malformed >= self.guardrails.violation_limit)
                    .then_some((SafeModeReason::RepeatedViolations, SafeModeExit::Manual))
            }
            _ => None,
        };
        if let Some((reason, exit)) = latch {
            self.latch(now, reason, exit);
        }
        Err(violation)
    }

    /// Rule 10: refuses a request whose own event did not fit in the audit
    /// queue (the refusal itself may use the reserve).
    pub(super) fn refuse_queue_full<T>(
        &mut self,
        now: u64,
        request: RequestKind,
        correlation_id: u64,
        delta: &[f64],
    ) -> Result<T, Violation> {
        let violation = self.queue_full();
        self.refuse(now, request, correlation_id, violation, delta)
    }

    /// Refuses a request to a misconfigured executor (see
    /// [`SafetyExecutor::new`]), which refuses everything.
    pub(super) fn refuse_if_misconfigured(
        &mut self,
        now: u64,
        request: RequestKind,
    ) -> Result<(), Violation> {
        if !self.is_misconfigured() {
            return Ok(());
        }
        let violation = Violation::InSafeMode {
            reason: SafeModeReason::Misconfigured,
            until_us: None,
        };
        self.refuse(now, request, 0, violation, &[])
    }

    /// `true` for an executor built from invalid settings: it holds no
    /// writer and refuses every request.
    pub(super) fn is_misconfigured(&self) -> bool {
        self.misconfiguration.is_some()
    }

    /// Latches safe mode for `reason` (audited, if not already latched).
    pub(super) fn latch(&mut self, now: u64, reason: SafeModeReason, exit: SafeModeExit) {
        let was_latched = self.control_safety.exit_of(reason).is_some();
        self.control_safety.latch(reason, exit);
        if !was_latched {
            tracing::warn!(%reason, "safe mode latched");
            self.record(
                now,
                AuditDetails::SafeModeEntered { reason, exit },
                Priority::Safety,
            );
        }
    }

    pub(super) fn queue_full(&self) -> Violation {
        Violation::AuditQueueFull {
            capacity: self.audit_queue.capacity(),
        }
    }

    /// Clears `reason` once its exit event is recorded; `false` (still
    /// latched) if the event could not be.
    pub(super) fn exit_safe_mode(&mut self, now: u64, reason: SafeModeReason) -> bool {
        let recorded = self
            .record(
                now,
                AuditDetails::SafeModeExited { reason },
                Priority::Safety,
            )
            .is_some();
        if recorded {
            let mut one = ReasonSet::EMPTY;
            one.insert(reason);
            self.control_safety.clear(one);
            tracing::info!(%reason, "safe mode exited");
        }
        recorded
    }

    /// Exits every reason whose timer ran out or whose queue drained, each
    /// only once its exit event is recorded.
    pub(super) fn expire_safe_mode(&mut self, now: u64) {
        if !self.control_safety.is_latched() {
            return;
        }
        let drained = self.audit_queue.len() <= self.audit_queue.high_water_mark();
        let due = self.control_safety.due(now, drained, self.clock_in_range);
        for reason in due.iter() {
            self.exit_safe_mode(now, reason);
        }
    }

    /// Queues an event with the next sequence number, preceded by an
    /// `EventsDropped` record if earlier events were lost. Returns its
    /// sequence number, or `None` (counted as dropped) if it did not fit.
    pub(super) fn record(
        &mut self,
        now: u64,
        details: AuditDetails,
        priority: Priority,
    ) -> Option<u64> {
        self.record_with(now, priority, |slot, _| slot.clone_from(&details))
    }

    /// Records the event `write` describes, in place in the queue's slot
    /// (`write` gets the slot's previous details, whose vectors it may
    /// reuse, and read access to the executor). `write` runs once, or, if
    /// the event is dropped, once more on a scratch value for the log line.
    #[inline]
    pub(super) fn record_with(
        &mut self,
        now: u64,
        priority: Priority,
        write: impl Fn(&mut AuditDetails, &Self),
    ) -> Option<u64> {
        let limit = match priority {
            Priority::Normal | Priority::Note => self.audit_queue.reserve_threshold(),
            Priority::Safety => self.audit_queue.capacity(),
        };
        if self.dropped_since_last > 0 {
            // The notice needs its own slot ahead of the event.
            let (seq, generation, count) =
                (self.next_seq, self.live_generation, self.dropped_since_last);
            let room = self.audit_queue.len() + 1 < limit
                && self.audit_queue.enqueue_below(limit, |event| {
                    event.seq = seq;
                    event.timestamp_us = now;
                    event.generation = generation;
                    event.details = AuditDetails::EventsDropped { count };
                });
            if !room {
                if priority != Priority::Normal {
                    self.dropped_with(write);
                }
                return None;
            }
            self.next_seq += 1;
            self.dropped_since_last = 0;
        }
        let seq = self.next_seq;
        let this: &Self = self;
        let recorded = this.audit_queue.enqueue_below(limit, |event| {
            event.seq = seq;
            event.timestamp_us = now;
            write(&mut event.details, this);
            event.generation = match event.details {
                // An apply's event carries the generation it will create.
                AuditDetails::Applied { .. } | AuditDetails::RolledBack { .. } => {
                    this.live_generation + 1
                }
                _ => this.live_generation,
            };
        });
        if recorded {
            self.next_seq += 1;
            Some(seq)
        } else {
            if priority != Priority::Normal {
                self.dropped_with(write);
            }
            None
        }
    }

    /// [`dropped`](Self::dropped) for an event described by a writer.
    pub(super) fn dropped_with(&mut self, write: impl Fn(&mut AuditDetails, &Self)) {
        let mut details = AuditDetails::EventsDropped { count: 0 };
        write(&mut details, self);
        self.dropped(details);
    }

    /// Counts an event that could not be recorded. Normal events are not
    /// counted: their decision is refused instead, and the refusal is the
    /// (safety) event that gets counted if it too cannot be recorded.
    pub(super) fn dropped(&mut self, details: AuditDetails) {
        self.dropped_since_last += 1;
        self.stats.audit_dropped += 1;
        tracing::error!(event = ?details, "audit event dropped: queue full");
    }

    /// Records an optimiser's decision in the audit trail (below the
    /// reserve; counted as dropped if it does not fit).
    pub(crate) fn record_note(&mut self, details: AuditDetails) -> Option<u64> {
        let now = self.now();
        self.record(now, details, Priority::Note)
    }

    /// Latches safe mode for a reason detected outside the executor.
    pub(crate) fn latch_external(&mut self, reason: SafeModeReason, exit: SafeModeExit) {
        let now = self.now();
        self.latch(now, reason, exit);
    }
}
