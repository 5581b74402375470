//! The HTTP API: an axum [`Router`] over a [`ControlHandle`].
//!
//! | method | path | auth | what |
//! |--------|------|------|------|
//! | GET | `/` (and `/ui/page.js`, `/ui/page.css`, `/ui/icon.svg`) | | the live status page |
//! | GET | `/healthz` | | 200 while the process serves |
//! | GET | `/readyz` | | 200 once the host is open and the log writing; 503 `not_ready` otherwise |
//! | GET | `/metrics` | | Prometheus text format |
//! | GET | `/v1/config` | | `{"generation": N, "values": {…}}`, read lock-free |
//! | GET | `/v1/config/watch` | | Server-Sent Events, one `config` event per generation |
//! | GET | `/v1/knobs` | | each knob's kind, bounds, scale, grid or options ([`KnobView`](crate::KnobView)) |
//! | GET | `/v1/events` | | Server-Sent Events: every audit event and measured objective (see [`FeedKind`](crate::FeedKind)) |
//! | GET | `/v1/status` | | [`Status`](crate::Status) |
//! | GET | `/v1/audit?after=SEQ&limit=N` | | an [`AuditPage`](crate::AuditPage) |
//! | POST | `/v1/telemetry` | bearer | digests; 202 with [`IngestCounts`](crate::IngestCounts) |
//! | POST | `/v1/freeze`, `/v1/resume`, `/v1/rollback`, `/v1/baseline` | bearer | [`OperatorReply`](crate::OperatorReply) |
//!
//! The OpenAPI 3 description is `crates/hotpath-server/openapi.yaml`.

mod auth;
mod body;
mod error;
mod events;
mod forward;
mod handlers;
mod observe;
mod watch;

pub use error::ApiError;

use crate::control::ControlHandle;
use crate::limits::Limits;
use crate::token::Token;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Every route template, as the metrics label them.
pub const ROUTES: [&str; 18] = [
    "/",
    "/ui/page.js",
    "/ui/page.css",
    "/ui/icon.svg",
    "/healthz",
    "/readyz",
    "/metrics",
    "/v1/config",
    "/v1/config/watch",
    "/v1/knobs",
    "/v1/events",
    "/v1/status",
    "/v1/audit",
    "/v1/telemetry",
    "/v1/freeze",
    "/v1/resume",
    "/v1/rollback",
    "/v1/baseline",
];

/// What the handlers share.
///
/// ```
/// # fn make(handle: hotpath_server::ControlHandle) -> hotpath_server::http::AppState {
/// let token = hotpath_server::Token::new("a-long-enough-secret");
/// let (_stop, stopping) = tokio::sync::watch::channel(false);
/// hotpath_server::http::AppState::new(handle, token, hotpath_server::Limits::default(), stopping)
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct AppState {
    pub(crate) control: ControlHandle,
    pub(crate) token: Arc<Token>,
    pub(crate) limits: Arc<Limits>,
    pub(crate) watchers: Arc<Semaphore>,
    /// `true` once shutdown began: watch streams end, `/readyz` says 503.
    pub(crate) stopping: tokio::sync::watch::Receiver<bool>,
    /// In fleet mode, a standby's way to its leader.
    pub(crate) forwarder: forward::Forwarder,
}

impl AppState {
    /// The state of a router over `control`, guarded by `token`; `stopping`
    /// turning `true` closes the watch streams.
    pub fn new(
        control: ControlHandle,
        token: Token,
        limits: Limits,
        stopping: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        Self {
            control,
            token: Arc::new(token),
            watchers: Arc::new(Semaphore::new(limits.max_watchers)),
            limits: Arc::new(limits),
            stopping,
            forwarder: forward::forwarder(),
        }
    }

    fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }
}

/// The API's router (see the [module docs](self)), its layers included:
/// the bearer check on the writing routes, request metrics and the
/// handler timeout, the body read timeout, and a last-resort panic
/// catcher that answers 500 as typed JSON.
///
/// ```
/// # fn make(state: hotpath_server::http::AppState) -> axum::Router {
/// hotpath_server::http::router(state)
/// # }
/// ```
pub fn router(state: AppState) -> Router {
    let open = Router::new()
        .route("/", get(crate::page::index))
        .route("/ui/page.js", get(crate::page::script))
        .route("/ui/page.css", get(crate::page::style))
        .route("/ui/icon.svg", get(crate::page::icon))
        .route("/healthz", get(handlers::health))
        .route("/readyz", get(handlers::ready))
        .route("/metrics", get(handlers::metrics))
        .route("/v1/config", get(handlers::config))
        .route("/v1/config/watch", get(watch::watch))
        .route("/v1/knobs", get(handlers::knobs))
        .route("/v1/events", get(events::events))
        .route("/v1/status", get(handlers::status))
        .route("/v1/audit", get(handlers::audit));
    let guarded = Router::new()
        .route("/v1/telemetry", post(handlers::telemetry))
        .route("/v1/freeze", post(handlers::freeze))
        .route("/v1/resume", post(handlers::resume))
        .route("/v1/rollback", post(handlers::rollback))
        .route("/v1/baseline", post(handlers::baseline))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    let body_timeout = state.limits.body_read_timeout;
    open.merge(guarded)
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::observe,
        ))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            body_timeout,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            observe::panicked,
        ))
        .with_state(state)
}

/// The route template of `path` (or `unmatched`).
pub(crate) fn route_of(path: &str) -> &'static str {
    ROUTES
        .iter()
        .find(|r| **r == path)
        .copied()
        .unwrap_or("unmatched")
}

#[cfg(test)]
mod tests {
    /// The OpenAPI file describes every route the router serves.
    #[test]
    fn openapi_describes_every_route() {
        let spec = include_str!("../../openapi.yaml");
        for route in super::ROUTES {
            assert!(
                spec.contains(&format!("\n  {route}:\n")),
                "{route} is not in openapi.yaml"
            );
        }
    }
}
