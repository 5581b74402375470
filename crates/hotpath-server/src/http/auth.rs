//! The bearer check of the writing routes: `Authorization: Bearer <token>`,
//! compared in constant time ([`Token::matches`](crate::Token::matches)).
//! 401 `unauthorized` without a bearer token, 403 `forbidden` with a wrong
//! one. The header is never logged.

use super::{ApiError, AppState};
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The middleware: passes the request on only with the server's token.
pub(crate) async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return ApiError::unauthorized("this endpoint needs `Authorization: Bearer <token>`")
            .into_response();
    };
    let presented = value.as_bytes();
    let scheme = presented
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case(b"bearer "));
    if !scheme {
        return ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
            .into_response();
    }
    let secret = presented[7..].trim_ascii();
    if secret.is_empty() {
        return ApiError::unauthorized("the bearer token is empty").into_response();
    }
    if !state.token.matches(secret) {
        return ApiError::forbidden().into_response();
    }
    next.run(request).await
}
