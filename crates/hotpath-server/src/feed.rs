//! The live feed behind `GET /v1/events`: every audit event and every
//! measured objective, in the order the control thread saw them.
//!
//! The config watch carries only the latest configuration; a status page
//! also wants what was decided (refusals change nothing in the config)
//! and how the objective moved. The control thread appends each such
//! item, serialised once, to a bounded ring ([`FEED_CAPACITY`] items)
//! under a process-local id (1, 2, 3, …; not the audit seq, since
//! objectives have none) and publishes the latest id on a `watch`
//! channel. A stream is only a cursor into the ring: one that falls
//! behind by more than the ring holds is told how many items it missed
//! (a `lost` event) and carries on from the oldest held, so a slow reader
//! costs the others and the control thread nothing.

use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::watch;

/// Items the feed keeps by default.
pub const FEED_CAPACITY: usize = 4096;

/// Items a new stream without `Last-Event-ID` starts with: the latest
/// ones, so a page opened now shows the recent past.
pub const FEED_BACKLOG: usize = 512;

/// What a feed item is.
///
/// ```
/// assert_eq!(hotpath_server::FeedKind::Objective.name(), "objective");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedKind {
    /// An audit event, as [`EventView`](crate::EventView).
    Audit,
    /// A measured objective, as [`ObjectivePoint`].
    Objective,
}

impl FeedKind {
    /// The SSE event name.
    pub fn name(self) -> &'static str {
        match self {
            FeedKind::Audit => "audit",
            FeedKind::Objective => "objective",
        }
    }
}

/// One objective measurement: an aggregation window the engine stepped
/// (`hotpath serve`), or a measurement its owner recorded
/// ([`Attached::measured`](crate::Attached::measured)).
///
/// ```
/// let p = hotpath_server::ObjectivePoint { t_us: 5, objective: 1.5, samples: 20, generation: 3, margin: None };
/// assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"t_us":5,"objective":1.5,"samples":20,"generation":3}"#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ObjectivePoint {
    /// When it was measured (the executor's clock, µs).
    pub t_us: u64,
    /// The objective (lower is better).
    pub objective: f64,
    /// The samples it summarises.
    pub samples: u64,
    /// The generation it was measured under.
    pub generation: u64,
    /// The constraint margin reported with it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub margin: Option<f64>,
}

/// One item of the feed, serialised once for every stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FeedItem {
    pub(crate) id: u64,
    pub(crate) kind: FeedKind,
    pub(crate) json: Arc<str>,
}

/// What a stream reads after its cursor.
#[derive(Debug, Default)]
pub(crate) struct Read {
    /// Items the ring no longer holds between the cursor and `items`.
    pub(crate) skipped: u64,
    pub(crate) items: Vec<Arc<FeedItem>>,
}

/// The ring (see the [module docs](self)). The control thread is the only
/// writer.
#[derive(Debug)]
pub(crate) struct Feed {
    items: Mutex<VecDeque<Arc<FeedItem>>>,
    capacity: usize,
    latest: watch::Sender<u64>,
}

impl Feed {
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            items: Mutex::new(VecDeque::with_capacity(capacity.min(FEED_CAPACITY))),
            capacity,
            latest: watch::Sender::new(0),
        }
    }

    /// Appends `value` as the next item and wakes the streams. A value
    /// that cannot be serialised (none of the feed's types can fail) is
    /// skipped.
    pub(crate) fn push(&self, kind: FeedKind, value: &impl Serialize) {
        let Ok(json) = serde_json::to_string(value) else {
            return;
        };
        let id = {
            let mut items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
            let id = items.back().map_or(1, |last| last.id + 1);
            if items.len() == self.capacity {
                items.pop_front();
            }
            items.push_back(Arc::new(FeedItem {
                id,
                kind,
                json: json.into(),
            }));
            id
        };
        self.latest.send_replace(id);
    }

    /// A receiver of the latest id.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.latest.subscribe()
    }

    /// The id a stream starts after: `last_seen` if the client sent one
    /// (clamped to the latest, so an id from before a restart resumes
    /// now), else [`FEED_BACKLOG`] items back.
    pub(crate) fn start_after(&self, last_seen: Option<u64>) -> u64 {
        let latest = *self.latest.borrow();
        match last_seen {
            Some(id) => id.min(latest),
            None => latest.saturating_sub(FEED_BACKLOG as u64),
        }
    }

    /// At most `limit` items after id `after`, oldest first.
    pub(crate) fn read_after(&self, after: u64, limit: usize) -> Read {
        let items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(oldest) = items.front().map(|i| i.id) else {
            return Read::default();
        };
        let skipped = oldest.saturating_sub(after.saturating_add(1));
        let start = items.partition_point(|i| i.id <= after);
        Read {
            skipped,
            items: items.range(start..).take(limit).cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(read: &Read) -> Vec<u64> {
        read.items.iter().map(|i| i.id).collect()
    }

    #[test]
    fn streams_read_in_order_and_learn_what_they_missed() {
        let feed = Feed::new(3);
        assert_eq!(feed.start_after(None), 0);
        assert!(feed.read_after(0, 10).items.is_empty());
        for n in 0..5 {
            feed.push(FeedKind::Audit, &n);
        }
        let read = feed.read_after(0, 10);
        assert_eq!((ids(&read), read.skipped), (vec![3, 4, 5], 2));
        let read = feed.read_after(3, 1);
        assert_eq!((ids(&read), read.skipped), (vec![4], 0));
        assert_eq!(&*read.items[0].json, "3");
        assert!(feed.read_after(5, 10).items.is_empty());
        assert_eq!(*feed.subscribe().borrow(), 5);
    }

    #[test]
    fn a_stream_starts_with_the_backlog_or_where_it_left_off() {
        let feed = Feed::new(FEED_CAPACITY);
        for n in 0..(FEED_BACKLOG + 10) {
            feed.push(FeedKind::Objective, &n);
        }
        assert_eq!(feed.start_after(None), 10);
        assert_eq!(feed.start_after(Some(100)), 100);
        assert_eq!(feed.start_after(Some(u64::MAX)), FEED_BACKLOG as u64 + 10);
    }
}
