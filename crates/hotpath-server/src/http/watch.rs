//! `GET /v1/config/watch`: the live configuration as Server-Sent Events.
//!
//! Each published generation is one event:
//!
//! ```text
//! event: config
//! id: 12
//! data: {"generation":12,"values":{"batch_size":96,"codec":"lz4"}}
//! ```
//!
//! The stream starts with the current configuration, unless the client
//! sends `Last-Event-ID` (as a reconnecting `EventSource` does) and the
//! current generation is not newer than it; then it starts at the next
//! publication. A `Last-Event-ID` that is not an integer is ignored. A
//! comment line (`: keep-alive`) is sent after every
//! [`keep_alive`](crate::Limits::keep_alive) without an event.
//!
//! Each stream reads the control thread's `watch` channel, which holds
//! only the latest configuration: a client that reads slowly skips
//! generations and never delays the executor or other watchers, and what
//! it holds is one `Arc` of the latest event. The event's bytes are
//! framed once, by the control thread, and every stream sends that same
//! buffer (a thousand watchers cost a thousand writes, not a thousand
//! serialisations). At most
//! [`max_watchers`](crate::Limits::max_watchers) streams are open, this
//! one and `/v1/events` together (503 `too_many_watchers` beyond); every
//! stream ends when the server begins to shut down.

use super::{ApiError, AppState};
use crate::control::ConfigEvent;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, OwnedSemaphorePermit};

/// The comment a stream sends after [`keep_alive`](crate::Limits::keep_alive)
/// without an event.
const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// One stream's state: what it has sent, and its watcher slot.
struct Stream {
    config: watch::Receiver<Arc<ConfigEvent>>,
    stopping: watch::Receiver<bool>,
    last_sent: Option<u64>,
    keep_alive: Duration,
    _permit: OwnedSemaphorePermit,
}

pub(crate) async fn watch(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let permit = watcher_slot(&state)?;
    let stream = Stream {
        config: state.control.watch(),
        stopping: state.stopping.clone(),
        last_sent: last_event_id(&headers),
        keep_alive: state.limits.keep_alive,
        _permit: permit,
    };
    let frames = futures_util::stream::unfold(stream, next_frame);
    Ok(event_stream(Body::from_stream(frames)))
}

/// A Server-Sent-Events answer of `body`, already framed.
pub(super) fn event_stream(body: Body) -> Response {
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, body).into_response()
}

/// A slot for one more event stream (config watch or live feed): 503
/// `shutting_down` once shutdown began, `too_many_watchers` when all
/// [`max_watchers`](crate::Limits::max_watchers) are taken.
pub(super) fn watcher_slot(state: &AppState) -> Result<OwnedSemaphorePermit, ApiError> {
    if state.is_stopping() {
        return Err(ApiError::unavailable(
            "shutting_down",
            "the server is shutting down",
        ));
    }
    Arc::clone(&state.watchers)
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::unavailable(
                "too_many_watchers",
                format!(
                    "at most {} event streams may be open",
                    state.limits.max_watchers
                ),
            )
        })
}

/// The `Last-Event-ID` a reconnecting client sent, if it is an integer.
pub(super) fn last_event_id(headers: &HeaderMap) -> Option<u64> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// The stream's next frame: the latest configuration once it is newer
/// than what was sent, or a keep-alive comment after a quiet
/// `keep_alive`; `None` (the end) at shutdown.
async fn next_frame(mut s: Stream) -> Option<(Result<Bytes, Infallible>, Stream)> {
    loop {
        if *s.stopping.borrow() {
            return None;
        }
        let latest = Arc::clone(&s.config.borrow_and_update());
        if s.last_sent.is_none_or(|sent| latest.generation > sent) {
            s.last_sent = Some(latest.generation);
            return Some((Ok(latest.frame.clone()), s));
        }
        tokio::select! {
            changed = s.config.changed() => if changed.is_err() { return None },
            stopped = s.stopping.changed() => if stopped.is_err() { return None },
            () = tokio::time::sleep(s.keep_alive) => {
                return Some((Ok(Bytes::from_static(KEEP_ALIVE)), s));
            }
        }
    }
}
