//! `GET /v1/events`: the live feed as Server-Sent Events — every audit
//! event and every measured objective, in order (see the
//! [feed](crate::FeedKind) for what is kept).
//!
//! ```text
//! event: audit
//! id: 41
//! data: {"seq":17,"timestamp_us":…,"generation":6,"type":"rejected","text":"…","details":{…}}
//!
//! event: objective
//! id: 42
//! data: {"t_us":…,"objective":3.1,"samples":480,"generation":6}
//!
//! event: lost
//! data: {"skipped":120}
//! ```
//!
//! `id` is the feed's own counter (per process). A new stream starts
//! with the latest [`FEED_BACKLOG`](crate::FEED_BACKLOG) items; with
//! `Last-Event-ID` (a reconnecting `EventSource`) it resumes after that
//! id. A stream that falls behind by more than the feed holds gets one
//! `lost` event saying how many items it missed, then carries on from the
//! oldest held: a slow reader holds its cursor and its watcher slot,
//! nothing else. These streams count against
//! [`max_watchers`](crate::Limits::max_watchers) with the config watch
//! (503 `too_many_watchers` beyond), send `: keep-alive` after
//! [`keep_alive`](crate::Limits::keep_alive) without an item, and end when
//! the server begins to shut down.
//!
//! In fleet mode the feed is the leader's: a leader streams its own (its
//! audit events as its executor records them, the objective of every
//! window it steps), and a standby relays the leader's stream (see
//! [`relay`](super::forward::relay); the `X-Hotpath-Leader` header names
//! the leader), so the status page shows the fleet's decisions whichever
//! instance serves it. While a standby knows no leader that answers (an
//! election is under way), its stream is only `retry: 1000` and ends: the
//! client's `EventSource` tries again a second later.

use super::forward::{elsewhere, relay, FORWARDED};
use super::watch::{event_stream, last_event_id, watcher_slot};
use super::{ApiError, AppState};
use crate::feed::FeedItem;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::collections::VecDeque;
use std::convert::Infallible;
use tokio::sync::{watch, OwnedSemaphorePermit};

/// Items a stream takes from the feed at a time.
const BATCH: usize = 64;

/// A stream that tells the client to reconnect in a second, and ends.
const RETRY_SOON: &str = "retry: 1000\n\n";

struct Stream {
    state: AppState,
    latest: watch::Receiver<u64>,
    stopping: watch::Receiver<bool>,
    /// The last id sent (or skipped).
    after: u64,
    pending: VecDeque<Event>,
    _permit: OwnedSemaphorePermit,
}

pub(crate) async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let permit = watcher_slot(&state)?;
    match elsewhere(&state, &headers) {
        Ok(None) => {}
        Ok(Some(leader)) => {
            let relayed = relay(&state, &leader, "/v1/events", &headers, permit).await;
            return Ok(relayed.unwrap_or_else(|| event_stream(Body::from(RETRY_SOON))));
        }
        Err(e) if headers.contains_key(FORWARDED) => return Err(e),
        Err(_) => return Ok(event_stream(Body::from(RETRY_SOON))),
    }
    let feed = state.control.feed();
    let stream = Stream {
        latest: feed.subscribe(),
        after: feed.start_after(last_event_id(&headers)),
        stopping: state.stopping.clone(),
        pending: VecDeque::new(),
        _permit: permit,
        state: state.clone(),
    };
    let events = futures_util::stream::unfold(stream, next_event);
    let keep_alive = KeepAlive::new()
        .interval(state.limits.keep_alive)
        .text("keep-alive");
    Ok(Sse::new(events).keep_alive(keep_alive).into_response())
}

fn event(item: &FeedItem) -> Event {
    Event::default()
        .event(item.kind.name())
        .id(item.id.to_string())
        .data(&*item.json)
}

/// The stream's next event: what the feed holds after the cursor, once
/// there is something; `None` (the end) at shutdown.
async fn next_event(mut s: Stream) -> Option<(Result<Event, Infallible>, Stream)> {
    loop {
        if *s.stopping.borrow() {
            return None;
        }
        if let Some(event) = s.pending.pop_front() {
            return Some((Ok(event), s));
        }
        s.latest.borrow_and_update();
        let read = s.state.control.feed().read_after(s.after, BATCH);
        if read.skipped > 0 {
            let lost = format!("{{\"skipped\":{}}}", read.skipped);
            s.pending
                .push_back(Event::default().event("lost").data(lost));
        }
        if let Some(last) = read.items.last() {
            s.after = last.id;
        }
        s.pending.extend(read.items.iter().map(|item| event(item)));
        if !s.pending.is_empty() {
            continue;
        }
        tokio::select! {
            changed = s.latest.changed() => if changed.is_err() { return None },
            stopped = s.stopping.changed() => if stopped.is_err() { return None },
        }
    }
}
