//! In fleet mode, a standby forwards the writes (digests, operator calls)
//! to its fleet's leader and answers with the leader's answer: clients
//! may talk to any instance. One hop only: a forwarded request that
//! reaches an instance that does not lead (the leadership moved meanwhile)
//! is answered 503 `not_leader`, to be retried, rather than forwarded on.
//! The bearer token travels with the request: a fleet's instances share
//! one token.
//!
//! A standby forwards `GET /v1/audit` too: the fleet's recent decisions
//! are the leader's (a standby's own host is a view of what the leader
//! published, which decides nothing).
//!
//! A standby also relays the leader's live feed (`GET /v1/events`, see
//! [`relay`]): only the leader decides, so only its feed has the
//! decisions and the objectives the status page shows.

use super::watch::event_stream;
use super::{ApiError, AppState};
use crate::fleet::{LeaderView, Role};
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::{watch, OwnedSemaphorePermit};

/// Marks a request a standby forwarded.
pub(crate) const FORWARDED: &str = "x-hotpath-forwarded";
/// Names the leader that answered a forwarded request.
pub(crate) const LEADER: &str = "x-hotpath-leader";
/// How long a forward may take, connection included.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer taken from a leader.
const MAX_ANSWER: usize = 1 << 20;
/// How often a relayed stream checks that its leader still leads.
const RELAY_CHECK: Duration = Duration::from_secs(1);

/// The HTTP client of a standby's forwards.
pub(crate) type Forwarder = Client<HttpConnector, Full<Bytes>>;

pub(crate) fn forwarder() -> Forwarder {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(1)));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(connector)
}

/// Where a write should go: `None` to this instance (it leads, or it is
/// not in a fleet), the leader otherwise.
///
/// # Errors
///
/// 503 `not_leader` for a request already forwarded once, 503 `no_leader`
/// while the fleet has none.
pub(crate) fn elsewhere(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<LeaderView>, ApiError> {
    let Some(fleet) = state.control.fleet() else {
        return Ok(None);
    };
    if fleet.role == Role::Leader {
        return Ok(None);
    }
    if headers.contains_key(FORWARDED) {
        return Err(ApiError::unavailable(
            "not_leader",
            "forwarded to an instance that no longer leads (the leadership moved); retry",
        ));
    }
    match fleet.leader {
        Some(leader) => Ok(Some(leader)),
        None => Err(ApiError::unavailable(
            "no_leader",
            "the fleet has no leader right now (an election is under way); retry",
        )),
    }
}

/// On a standby whose coordinator does not answer: the leader's
/// `GET /v1/config`, if it answers within 250 ms with a generation above
/// `mine`. Every publication goes through the leader, so its view is at
/// least as new as any standby's: with it, reads stay monotonic across
/// instances while etcd is unreachable (as long as the leader is
/// reachable).
pub(crate) async fn leader_config(
    state: &AppState,
    headers: &HeaderMap,
    mine: u64,
) -> Option<String> {
    let fleet = state.control.fleet()?;
    if fleet.role == Role::Leader || headers.contains_key(FORWARDED) {
        return None;
    }
    let leader = fleet.leader?;
    let request = Request::builder()
        .method(Method::GET)
        .uri(leader.url("/v1/config"))
        .header(FORWARDED, "1")
        .body(Full::new(Bytes::new()))
        .ok()?;
    let answer = tokio::time::timeout(Duration::from_millis(250), async {
        let response = state.forwarder.request(request).await.ok()?;
        if response.status() != StatusCode::OK {
            return None;
        }
        let bytes = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .ok()?
            .to_bytes();
        String::from_utf8(bytes.to_vec()).ok()
    })
    .await
    .ok()??;
    #[derive(serde::Deserialize)]
    struct Head {
        generation: u64,
    }
    let theirs = serde_json::from_str::<Head>(&answer).ok()?.generation;
    (theirs > mine).then_some(answer)
}

/// Sends the request (`method`, `path` with its query, its content type
/// and authorization, `body`) to `leader` and answers with what the
/// leader answered.
///
/// # Errors
///
/// 503 `leader_unreachable` if the leader does not answer in time.
pub(crate) async fn forward(
    state: &AppState,
    leader: &LeaderView,
    (method, path): (Method, &str),
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let unreachable = |why: String| {
        ApiError::unavailable(
            "leader_unreachable",
            format!(
                "the leader {} at {} did not answer: {why}",
                leader.instance, leader.address
            ),
        )
    };
    let mut request = Request::builder()
        .method(method)
        .uri(leader.url(path))
        .header(FORWARDED, "1");
    for name in [header::CONTENT_TYPE, header::AUTHORIZATION] {
        if let Some(value) = headers.get(&name) {
            request = request.header(name, value);
        }
    }
    let request = request
        .body(Full::new(body))
        .map_err(|e| unreachable(e.to_string()))?;
    let answer = tokio::time::timeout(FORWARD_TIMEOUT, async {
        let response = state
            .forwarder
            .request(request)
            .await
            .map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let bytes = Limited::new(body, MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok::<_, String>((parts, bytes))
    })
    .await
    .map_err(|_| unreachable(format!("no answer in {FORWARD_TIMEOUT:?}")))?
    .map_err(unreachable)?;
    let (parts, bytes) = answer;
    let status = StatusCode::from_u16(parts.status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = (status, bytes).into_response();
    let out = response.headers_mut();
    for name in [
        header::CONTENT_TYPE,
        header::RETRY_AFTER,
        header::WWW_AUTHENTICATE,
    ] {
        if let Some(value) = parts.headers.get(&name) {
            out.insert(name, value.clone());
        }
    }
    if let Ok(value) = HeaderValue::from_str(&leader.address) {
        out.insert(LEADER, value);
    }
    Ok(response)
}

/// A relayed stream: the leader's body, and what ends it.
struct Relay {
    state: AppState,
    leader: LeaderView,
    body: Incoming,
    stopping: watch::Receiver<bool>,
    /// Time since the leader last sent anything.
    quiet: Duration,
    _permit: OwnedSemaphorePermit,
}

/// A standby's `GET /v1/events` (`path`): the leader's stream, passed on
/// as it comes (its ids are the leader's: `Last-Event-ID` is passed on
/// too), holding this instance's watcher slot `permit`. It ends when the
/// leader's does, when this instance no longer sees `leader` lead (a
/// reconnecting client is then relayed from the new leader), when the
/// leader has sent nothing, not even a keep-alive, for three
/// [`keep_alive`](crate::Limits::keep_alive) periods, or at shutdown.
/// `None` if the leader does not answer 200 within 5 s.
pub(crate) async fn relay(
    state: &AppState,
    leader: &LeaderView,
    path: &str,
    headers: &HeaderMap,
    permit: OwnedSemaphorePermit,
) -> Option<Response> {
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(leader.url(path))
        .header(FORWARDED, "1");
    if let Some(last) = headers.get("last-event-id") {
        request = request.header("last-event-id", last);
    }
    let request = request.body(Full::new(Bytes::new())).ok()?;
    let response = tokio::time::timeout(FORWARD_TIMEOUT, state.forwarder.request(request))
        .await
        .ok()?
        .ok()?;
    if response.status() != StatusCode::OK {
        return None;
    }
    let relay = Relay {
        state: state.clone(),
        leader: leader.clone(),
        body: response.into_body(),
        stopping: state.stopping.clone(),
        quiet: Duration::ZERO,
        _permit: permit,
    };
    let mut answer = event_stream(Body::from_stream(futures_util::stream::unfold(
        relay,
        next_relayed,
    )));
    if let Ok(value) = HeaderValue::from_str(&leader.address) {
        answer.headers_mut().insert(LEADER, value);
    }
    Some(answer)
}

/// The relayed stream's next bytes; `None` (the end) as [`relay`] says.
async fn next_relayed(mut r: Relay) -> Option<(Result<Bytes, Infallible>, Relay)> {
    loop {
        if *r.stopping.borrow() {
            return None;
        }
        tokio::select! {
            frame = tokio::time::timeout(RELAY_CHECK, r.body.frame()) => match frame {
                Ok(Some(Ok(frame))) => {
                    r.quiet = Duration::ZERO;
                    if let Ok(data) = frame.into_data() {
                        return Some((Ok(data), r));
                    }
                }
                // The leader's stream ended or failed.
                Ok(_) => return None,
                Err(_) => {
                    r.quiet += RELAY_CHECK;
                    let leads = r.state.control.fleet().and_then(|f| f.leader);
                    if r.quiet > 3 * r.state.limits.keep_alive || leads.as_ref() != Some(&r.leader) {
                        return None;
                    }
                }
            },
            stopped = r.stopping.changed() => if stopped.is_err() { return None },
        }
    }
}
