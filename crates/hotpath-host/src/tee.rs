//! Audit subscriptions: a copy of every event for observers (a live view,
//! a status page), each through its own bounded lock-free queue.
//!
//! A subscriber that does not keep up loses events (counted), and never
//! slows the host: the durable log is the authority, a subscription is a
//! view of it.

use crate::error::HostError;
use hotpath::{AuditEvent, AuditQueue, EnqueueResult};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

struct Shared {
    queue: AuditQueue,
    lost: AtomicU64,
}

/// One observer's copy of the audit events, from
/// [`Host::subscribe`](crate::Host::subscribe). It can move to another
/// thread; dropping it unsubscribes.
///
/// ```
/// use hotpath::{AdaptiveEngineConfig, Knob, ManualClock, ParamSpace, ParamVec};
/// use hotpath_host::{Host, HostOptions};
/// use std::sync::Arc;
///
/// let space = Arc::new(ParamSpace::new(vec![Knob::real("a", 0.0, 1.0, 0.5)])?);
/// let mut host = Host::open(space,
///                           AdaptiveEngineConfig::bounded(vec![(0.0, 1.0)]),
///                           HostOptions::in_memory(), ManualClock::new(0))?;
/// let events = host.subscribe(64)?;
/// host.freeze()?;
/// let seen = events.try_next().expect("the freeze");
/// assert_eq!(seen.event_type(), hotpath::EventType::SafeModeEntered);
/// assert_eq!(events.lost(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Subscription {
    shared: Arc<Shared>,
}

impl Subscription {
    /// The oldest event not yet taken.
    pub fn try_next(&self) -> Option<AuditEvent> {
        self.shared.queue.try_dequeue()
    }

    /// The oldest event not yet taken, lent to `read` in place.
    pub fn try_next_with<R>(&self, read: impl FnOnce(&AuditEvent) -> R) -> Option<R> {
        self.shared.queue.try_dequeue_with(read)
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.shared.queue.len()
    }

    /// `true` if no event is waiting.
    pub fn is_empty(&self) -> bool {
        self.shared.queue.is_empty()
    }

    /// Events lost because the queue was full.
    pub fn lost(&self) -> u64 {
        self.shared.lost.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("waiting", &self.len())
            .field("lost", &self.lost())
            .finish()
    }
}

/// The host's side: every subscription still held.
#[derive(Default)]
pub(crate) struct Tee {
    subscribers: Vec<Arc<Shared>>,
}

impl Tee {
    /// A new subscription with room for `capacity` events (1 to
    /// `MAX_AUDIT_CAPACITY`).
    pub(crate) fn subscribe(&mut self, capacity: usize) -> Result<Subscription, HostError> {
        let queue = AuditQueue::try_new(capacity).map_err(|e| HostError::InvalidOption {
            option: "subscription capacity",
            reason: e.to_string(),
        })?;
        let shared = Arc::new(Shared {
            queue,
            lost: AtomicU64::new(0),
        });
        self.subscribers.push(Arc::clone(&shared));
        Ok(Subscription { shared })
    }

    /// Copies `event` to every subscriber; forgets the dropped ones.
    pub(crate) fn send(&mut self, event: &AuditEvent) {
        if self.subscribers.is_empty() {
            return;
        }
        self.subscribers.retain(|s| Arc::strong_count(s) > 1);
        for s in &self.subscribers {
            if let EnqueueResult::Full(_) = s.queue.enqueue(event.clone()) {
                s.lost.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
