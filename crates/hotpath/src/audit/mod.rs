//! The audit trail: [`AuditQueue`], a bounded lock-free queue of
//! [`AuditEvent`]s that the executor fills and a consumer thread drains.
//!
//! # Contract
//!
//! * Every decision of the [`SafetyExecutor`](crate::SafetyExecutor)
//!   produces exactly one event, enqueued **before** the decision takes
//!   effect, with a sequence number that increases by one per event.
//! * Event details are structured data ([`AuditDetails`]), built without
//!   allocation for configurations of up to
//!   [`INLINE_PARAMS`](crate::INLINE_PARAMS) parameters; formatting happens
//!   on the consumer's side.
//! * Nothing is dropped silently. The executor keeps the top eighth of the
//!   capacity (the *reserve*) for safety events (refusals, rollbacks, safe
//!   mode), and refuses any change whose event would have to use it
//!   (`Violation::AuditQueueFull`, which latches safe mode until the queue
//!   has drained to half its capacity). A safety event that finds even the
//!   reserve full is counted; the next event that gets through is preceded
//!   by an [`AuditDetails::EventsDropped`] record carrying the count, and
//!   dropped events take no sequence number, so numbering stays gap-free.
//!
//! The queue is a bounded lock-free ring (Vyukov's array queue, as in
//! crossbeam) whose slots are written and read in place; see
//! [`AuditQueue`] for why, and `audit/ring.rs` for the protocol and the
//! crate's only `unsafe` code.
//!
//! One concept per file:
//!
//! * `mod.rs`: [`AuditQueue`] and [`EnqueueResult`];
//! * `event.rs`: [`AuditEvent`], [`AuditDetails`] and the vocabulary of the
//!   details ([`RequestKind`], [`RollbackReason`], [`OutcomeVerdict`]);
//! * `event_type.rs`: [`EventType`], its names and [`UnknownEventType`];
//! * `engine_event.rs`: [`EngineEvent`] and [`EvalPhase`];
//! * `ring.rs`: the slot ring under the queue;
//! * `tests.rs`: unit tests of the events and the queue.

mod engine_event;
mod event;
mod event_type;
mod ring;
#[cfg(test)]
mod tests;

pub use engine_event::{EngineEvent, EvalPhase};
pub use event::{AuditDetails, AuditEvent, OutcomeVerdict, RequestKind, RollbackReason};
pub use event_type::{EventType, UnknownEventType};

use crate::error::ConfigError;
#[cfg(doc)]
use crate::ParamVec;
use ring::SlotRing;

/// The result of [`AuditQueue::enqueue`].
#[must_use]
#[derive(Debug, Clone, PartialEq)]
// Boxing the returned event would allocate on the full path; the size
// difference only costs a copy.
#[allow(clippy::large_enum_variant)]
pub enum EnqueueResult {
    /// The event is in the queue.
    Enqueued,
    /// The queue was full; the event is handed back.
    Full(AuditEvent),
}

/// Bounded, lock-free queue of audit events.
///
/// Multi-producer, multi-consumer, one allocation at construction. Every
/// slot holds an initialised event for the queue's whole life, so events
/// can be **written and read in place**: [`enqueue_with`](Self::enqueue_with)
/// overwrites a slot (reusing its parameter vectors' storage) and
/// [`try_dequeue_with`](Self::try_dequeue_with) lends the event to a
/// closure. That is how the executor and the durable log use it: an event
/// is copied once on its way through (by-value queues cost 55 ns per
/// 320-byte event, see BENCHMARKS.md). [`enqueue`](Self::enqueue) and
/// [`try_dequeue`](Self::try_dequeue) are the by-value convenience forms.
///
/// ```
/// use hotpath::{AuditDetails, AuditEvent, AuditQueue, EnqueueResult, ParamVec};
///
/// let queue = AuditQueue::new(2);
/// let event = AuditEvent {
///     seq: 0,
///     timestamp_us: 10,
///     generation: 0,
///     details: AuditDetails::EventsDropped { count: 0 },
/// };
/// assert_eq!(queue.enqueue(event.clone()), EnqueueResult::Enqueued);
/// assert_eq!(queue.try_dequeue(), Some(event));
/// assert_eq!(queue.try_dequeue(), None);
/// ```
#[derive(Debug)]
pub struct AuditQueue {
    ring: SlotRing<AuditEvent>,
}

/// What a slot holds before its first event.
fn empty_event() -> AuditEvent {
    AuditEvent {
        seq: 0,
        timestamp_us: 0,
        generation: 0,
        details: AuditDetails::EventsDropped { count: 0 },
    }
}

/// The largest audit queue capacity accepted: 2²⁰ events (each slot holds
/// an `AuditEvent`, about 320 bytes, so this is about 340 MiB allocated up
/// front). A queue is a buffer between the executor and its consumer, not
/// storage; one this large absorbs seconds of a stalled disk at the
/// executor's top rate.
pub const MAX_AUDIT_CAPACITY: usize = 1 << 20;

/// The highest audit sequence number (2⁶², like [`MAX_GENERATION`](crate::MAX_GENERATION)):
/// an executor refuses to start numbering beyond it, so the numbering can
/// never wrap (counting from there to `u64::MAX` takes over 100,000 years
/// at a million events per second).
pub const MAX_AUDIT_SEQ: u64 = 1 << 62;

impl AuditQueue {
    /// A queue holding up to `capacity` events. The capacity is clamped to
    /// `1..=MAX_AUDIT_CAPACITY` (use [`try_new`](Self::try_new) to have it
    /// refused instead).
    ///
    /// ```
    /// use hotpath::{AuditQueue, MAX_AUDIT_CAPACITY};
    ///
    /// assert_eq!(AuditQueue::new(0).capacity(), 1);
    /// assert_eq!(AuditQueue::new(64).capacity(), 64);
    /// # let _ = MAX_AUDIT_CAPACITY;
    /// ```
    pub fn new(capacity: usize) -> Self {
        Self {
            ring: SlotRing::new(capacity.clamp(1, MAX_AUDIT_CAPACITY), empty_event),
        }
    }

    /// A queue holding up to `capacity` events.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroCapacity`] for a capacity of 0,
    /// [`ConfigError::CapacityTooLarge`] beyond [`MAX_AUDIT_CAPACITY`].
    ///
    /// ```
    /// use hotpath::AuditQueue;
    ///
    /// assert!(AuditQueue::try_new(0).is_err());
    /// assert!(AuditQueue::try_new(usize::MAX).is_err()); // refused, not an abort
    /// assert_eq!(AuditQueue::try_new(8).unwrap().capacity(), 8);
    /// ```
    pub fn try_new(capacity: usize) -> Result<Self, ConfigError> {
        if capacity == 0 {
            return Err(ConfigError::ZeroCapacity {
                what: "audit queue",
            });
        }
        if capacity > MAX_AUDIT_CAPACITY {
            return Err(ConfigError::CapacityTooLarge {
                what: "audit queue",
                got: capacity,
                limit: MAX_AUDIT_CAPACITY,
            });
        }
        Ok(Self::new(capacity))
    }

    /// Adds an event if there is room; hands it back if not. Lock-free and
    /// allocation-free either way.
    pub fn enqueue(&self, event: AuditEvent) -> EnqueueResult {
        let mut pending = Some(event);
        self.ring.push_with(self.capacity(), |slot| {
            if let Some(event) = pending.take() {
                *slot = event;
            }
        });
        match pending {
            None => EnqueueResult::Enqueued,
            Some(event) => EnqueueResult::Full(event),
        }
    }

    /// Adds an event written in place: `write` gets the slot, which still
    /// holds an **earlier event** (or a placeholder), and must set every
    /// field. Reusing the slot's storage is the point: assigning a
    /// [`ParamVec`] with [`ParamVec::copy_from`] copies only the values and
    /// never allocates once the slot has held a vector that long. `false`,
    /// without calling `write`, if the queue is full.
    ///
    /// ```
    /// use hotpath::{AuditDetails, AuditQueue, ParamVec};
    ///
    /// let queue = AuditQueue::new(4);
    /// let params = [0.25, 0.5];
    /// let written = queue.enqueue_with(|event| {
    ///     event.seq = 0;
    ///     event.timestamp_us = 10;
    ///     event.generation = 1;
    ///     match &mut event.details {
    ///         AuditDetails::BaselineSet { baseline_generation, params: p } => {
    ///             *baseline_generation = 1;
    ///             p.copy_from(&params);
    ///         }
    ///         other => {
    ///             *other = AuditDetails::BaselineSet {
    ///                 baseline_generation: 1,
    ///                 params: ParamVec::from_slice(&params),
    ///             }
    ///         }
    ///     }
    /// });
    /// assert!(written);
    /// assert_eq!(queue.try_dequeue_with(|e| e.to_string()).unwrap(),
    ///            "#0 t=10µs gen=1 baseline set at gen 1: [0.25, 0.5]");
    /// ```
    #[inline]
    pub fn enqueue_with(&self, write: impl FnOnce(&mut AuditEvent)) -> bool {
        self.ring.push_with(self.capacity(), write)
    }

    /// [`enqueue_with`](Self::enqueue_with), only if fewer than `limit`
    /// events are queued: how the executor keeps the reserve for safety
    /// events.
    #[inline]
    pub(crate) fn enqueue_below(&self, limit: usize, write: impl FnOnce(&mut AuditEvent)) -> bool {
        self.ring.push_with(limit, write)
    }

    /// Takes the oldest event, if any, moving it out of its slot (which gets
    /// a placeholder). Never allocates; but the next in-place write into
    /// that slot then builds its vectors afresh, which allocates beyond
    /// [`INLINE_PARAMS`](crate::INLINE_PARAMS) parameters. Consumers that
    /// keep up with an executor should read in place with
    /// [`try_dequeue_with`](Self::try_dequeue_with).
    pub fn try_dequeue(&self) -> Option<AuditEvent> {
        self.ring
            .pop_with_mut(|slot| std::mem::replace(slot, empty_event()))
    }

    /// Takes the oldest event, if any, lending it to `read` in place; the
    /// slot is freed when `read` returns (or panics). Keep `read` short:
    /// producers that reach this slot wait for it.
    ///
    /// ```
    /// use hotpath::{AuditDetails, AuditEvent, AuditQueue, EventType};
    ///
    /// let queue = AuditQueue::new(2);
    /// let _ = queue.enqueue(AuditEvent {
    ///     seq: 7,
    ///     timestamp_us: 0,
    ///     generation: 0,
    ///     details: AuditDetails::EventsDropped { count: 3 },
    /// });
    /// assert_eq!(queue.try_dequeue_with(|e| (e.seq, e.event_type())),
    ///            Some((7, EventType::EventsDropped)));
    /// assert_eq!(queue.try_dequeue_with(|e| e.seq), None);
    /// ```
    #[inline]
    pub fn try_dequeue_with<R>(&self, read: impl FnOnce(&AuditEvent) -> R) -> Option<R> {
        self.ring.pop_with(read)
    }

    /// Events currently queued.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// `true` if no event is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Maximum number of queued events.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// Queue length at or below which an `AuditQueueFull` safe mode exits:
    /// half the capacity.
    pub fn high_water_mark(&self) -> usize {
        self.capacity() / 2
    }

    /// Queue length from which ordinary (non-safety) events are refused:
    /// capacity minus the reserve of one eighth (rounded down).
    pub fn reserve_threshold(&self) -> usize {
        self.capacity() - self.capacity() / 8
    }
}
