//! Unit tests of the event types' names and serialisation and of the
//! queue's capacity rules and order; the ring's own tests and loom models
//! are in `ring.rs`.

use super::{AuditDetails, AuditEvent, AuditQueue, EnqueueResult, EventType, RequestKind};
use crate::error::ConfigError;
use crate::proposal::ProposalKind;
use crate::violation::Violation;
use crate::ParamVec;

fn event(seq: u64) -> AuditEvent {
    AuditEvent {
        seq,
        timestamp_us: seq,
        generation: 0,
        details: AuditDetails::EventsDropped { count: 0 },
    }
}

#[test]
fn every_event_type_is_listed_and_named_once() {
    // Exhaustive: a new variant does not compile until it is placed here,
    // and then the assertion below needs it in `ALL`.
    let position = |t: EventType| match t {
        EventType::Started => 0,
        EventType::Restored => 1,
        EventType::Applied => 2,
        EventType::Rejected => 3,
        EventType::RolledBack => 4,
        EventType::BaselineSet => 5,
        EventType::Outcome => 6,
        EventType::SafeModeEntered => 7,
        EventType::SafeModeExited => 8,
        EventType::Resumed => 9,
        EventType::EventsDropped => 10,
        EventType::Engine => 11,
    };
    for (i, t) in EventType::ALL.into_iter().enumerate() {
        assert_eq!(position(t), i, "{t:?}");
        assert_eq!(t.name().parse::<EventType>(), Ok(t));
        assert_eq!(t.to_string(), t.name());
    }
    assert!("RolledBack".parse::<EventType>().is_err());
}

#[test]
fn zero_capacity_is_clamped_or_refused() {
    assert_eq!(AuditQueue::new(0).capacity(), 1);
    assert_eq!(
        AuditQueue::try_new(0).unwrap_err(),
        ConfigError::ZeroCapacity {
            what: "audit queue"
        }
    );
}

#[test]
fn full_queue_hands_the_event_back_in_fifo_order() {
    let q = AuditQueue::new(2);
    assert_eq!(q.enqueue(event(0)), EnqueueResult::Enqueued);
    assert_eq!(q.enqueue(event(1)), EnqueueResult::Enqueued);
    assert_eq!(q.enqueue(event(2)), EnqueueResult::Full(event(2)));
    assert_eq!(q.try_dequeue().map(|e| e.seq), Some(0));
    assert_eq!(q.try_dequeue().map(|e| e.seq), Some(1));
    assert!(q.is_empty());
}

#[test]
fn reserve_and_high_water_marks() {
    let q = AuditQueue::new(16);
    assert_eq!(q.reserve_threshold(), 14);
    assert_eq!(q.high_water_mark(), 8);
    for i in 0..14 {
        assert!(q.enqueue_below(q.reserve_threshold(), |e| *e = event(i)));
    }
    assert!(!q.enqueue_below(q.reserve_threshold(), |e| *e = event(14)));
    assert_eq!(q.enqueue(event(14)), EnqueueResult::Enqueued);
}

#[test]
fn events_round_trip_through_json() {
    let e = AuditEvent {
        seq: 3,
        timestamp_us: 7,
        generation: 2,
        details: AuditDetails::Rejected {
            request: RequestKind::Proposal(ProposalKind::Update),
            correlation_id: 9,
            violation: Violation::NonFinite { index: 1 },
            delta: ParamVec::from_slice(&[0.0, 1.0]),
        },
    };
    let json = serde_json::to_string(&e).unwrap();
    assert_eq!(serde_json::from_str::<AuditEvent>(&json).unwrap(), e);
}

#[test]
fn consumer_thread_sees_every_event_in_order() {
    let q = std::sync::Arc::new(AuditQueue::new(64));
    let consumer = {
        let q = q.clone();
        std::thread::spawn(move || {
            let mut next = 0;
            while next < 10_000 {
                if let Some(e) = q.try_dequeue() {
                    assert_eq!(e.seq, next);
                    next += 1;
                }
            }
        })
    };
    let mut seq = 0;
    while seq < 10_000 {
        if q.enqueue(event(seq)) == EnqueueResult::Enqueued {
            seq += 1;
        }
    }
    consumer.join().unwrap();
}
