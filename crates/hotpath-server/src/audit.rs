//! The recent audit events, as `GET /v1/audit` and the status serve them.
//!
//! The control thread copies every event its subscription sees into a
//! bounded ring ([`AUDIT_RING_CAPACITY`] events by default); readers page
//! through it by sequence number. The durable log stays the authority:
//! events older than the ring (or from before this process started) are
//! in `DIR/audit` (`hotpath audit show DIR/audit`), and a page says when
//! it cannot start where it was asked to ([`AuditPage::truncated`]).

use hotpath::{AuditEvent, ParamSpace};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

/// Events the ring keeps by default.
pub const AUDIT_RING_CAPACITY: usize = 4096;

/// The most events one page holds.
pub const MAX_AUDIT_PAGE: usize = 1000;

/// One audit event as the API shows it.
///
/// ```
/// use hotpath::{AuditDetails, AuditEvent, Knob, ParamSpace, ParamVec};
/// use hotpath_server::EventView;
///
/// let space = ParamSpace::new(vec![Knob::real("ratio", 0.0, 1.0, 0.5)])?;
/// let event = AuditEvent { seq: 4, timestamp_us: 1_500, generation: 2,
///     details: AuditDetails::BaselineSet { baseline_generation: 2, params: ParamVec::from_slice(&[0.5]) } };
/// let view = EventView::new(&event, &space);
/// assert_eq!((view.seq, view.kind), (4, "baseline-set"));
/// assert_eq!(view.text, "#4 t=1500µs gen=2 baseline set at gen 2: [0.5]");
/// assert!(view.details.get("BaselineSet").is_some());
/// # Ok::<(), hotpath::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventView {
    /// Sequence number (gap-free across restarts, as in the log).
    pub seq: u64,
    /// When it was decided (the executor's clock, µs).
    pub timestamp_us: u64,
    /// The live generation after it.
    pub generation: u64,
    /// The event's type, as `hotpath audit show --type` names it.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// One line for people: the event's `Display`, a refusal's knob
    /// named ([`AuditEvent::named`]).
    pub text: String,
    /// The structured details, as the audit log writes them.
    pub details: serde_json::Value,
}

impl EventView {
    /// The view of `event`, its knobs named from `space`.
    pub fn new(event: &AuditEvent, space: &ParamSpace) -> Self {
        Self {
            seq: event.seq,
            timestamp_us: event.timestamp_us,
            generation: event.generation,
            kind: event.event_type().name(),
            text: event.named(space).to_string(),
            details: serde_json::to_value(&event.details).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// One page of events, oldest first.
///
/// ```
/// # use hotpath_server::AuditPage;
/// fn next_query(page: &AuditPage) -> String {
///     format!("/v1/audit?after={}", page.next_after.unwrap_or(0))
/// }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct AuditPage {
    /// The events.
    pub events: Vec<Arc<EventView>>,
    /// Pass as `after` to read on (the last event's seq, or the `after`
    /// asked for when the page is empty).
    pub next_after: Option<u64>,
    /// The oldest seq the ring still holds.
    pub oldest_seq: Option<u64>,
    /// `true` if events after `after` are no longer held (read them from
    /// the durable log).
    pub truncated: bool,
}

/// The bounded ring of recent events (see the [module docs](self)).
#[derive(Debug)]
pub(crate) struct AuditRing {
    events: Mutex<VecDeque<Arc<EventView>>>,
    capacity: usize,
}

impl AuditRing {
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            events: Mutex::new(VecDeque::with_capacity(capacity.min(AUDIT_RING_CAPACITY))),
            capacity,
        }
    }

    pub(crate) fn push(&self, event: Arc<EventView>) {
        let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        if events.len() == self.capacity {
            events.pop_front();
        }
        events.push_back(event);
    }

    /// The events after `after` (the latest `limit` without it), at most
    /// `limit` (1 to [`MAX_AUDIT_PAGE`]).
    pub(crate) fn page(&self, after: Option<u64>, limit: usize) -> AuditPage {
        let limit = limit.clamp(1, MAX_AUDIT_PAGE);
        let events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        let oldest_seq = events.front().map(|e| e.seq);
        let (page, truncated): (Vec<_>, bool) = match after {
            Some(after) => {
                let start = events.partition_point(|e| e.seq <= after);
                let lost = oldest_seq.is_some_and(|o| o > after.saturating_add(1));
                (events.range(start..).take(limit).cloned().collect(), lost)
            }
            None => {
                let start = events.len().saturating_sub(limit);
                (events.range(start..).cloned().collect(), false)
            }
        };
        let next_after = page.last().map(|e| e.seq).or(after);
        AuditPage {
            events: page,
            next_after,
            oldest_seq,
            truncated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotpath::AuditDetails;

    fn event(seq: u64) -> Arc<EventView> {
        let space = ParamSpace::new(vec![hotpath::Knob::real("a", 0.0, 1.0, 0.5)]).expect("valid");
        Arc::new(EventView::new(
            &AuditEvent {
                seq,
                timestamp_us: seq,
                generation: 0,
                details: AuditDetails::EventsDropped { count: 1 },
            },
            &space,
        ))
    }

    #[test]
    fn pages_follow_the_sequence_and_say_when_the_ring_forgot() {
        let ring = AuditRing::new(3);
        for seq in 10..15 {
            ring.push(event(seq));
        }
        let seqs = |p: &AuditPage| p.events.iter().map(|e| e.seq).collect::<Vec<_>>();
        let latest = ring.page(None, 2);
        assert_eq!((seqs(&latest), latest.oldest_seq), (vec![13, 14], Some(12)));
        let page = ring.page(Some(12), 10);
        assert_eq!(
            (seqs(&page), page.truncated, page.next_after),
            (vec![13, 14], false, Some(14))
        );
        let page = ring.page(Some(5), 1);
        assert_eq!((seqs(&page), page.truncated), (vec![12], true));
        let page = ring.page(Some(14), 10);
        assert_eq!((seqs(&page), page.next_after), (vec![], Some(14)));
    }
}
