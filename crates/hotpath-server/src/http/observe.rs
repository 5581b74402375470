//! Around every request: the handler timeout and the request metrics
//! (route template, method, status class, duration), and the panic
//! catcher's answer.

use super::{route_of, ApiError, AppState};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::any::Any;
use std::time::Instant;

/// Times the request, bounds the handler by the request timeout, and
/// records `hotpath_http_request_duration_seconds`.
pub(crate) async fn observe(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = route_of(request.uri().path());
    let method = request.method().as_str().to_string();
    let response = match tokio::time::timeout(state.limits.request_timeout, next.run(request)).await
    {
        Ok(response) => response,
        Err(_) => ApiError::unavailable("timeout", "the request took too long").into_response(),
    };
    let metrics = state.control.metrics();
    metrics.observe_request(
        route,
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// What a panicking handler answers (there should be none: this is the
/// last resort).
pub(crate) fn panicked(_: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::internal("the request failed inside the server").into_response()
}
