//! The handlers of every route but the watch stream.

use super::forward::{elsewhere, forward, leader_config};
use super::{body, ApiError, AppState};
use crate::audit::MAX_AUDIT_PAGE;
use crate::control::{Action, ControlError};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hotpath_config::telemetry::{parse_report, Framing};
use serde_json::json;

/// Events of an audit page without `limit`.
pub(crate) const DEFAULT_AUDIT_PAGE: usize = 100;

fn json_text(status: StatusCode, text: String) -> Response {
    let content = [(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    )];
    (status, content, text).into_response()
}

pub(crate) async fn health() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

pub(crate) async fn ready(State(state): State<AppState>) -> Response {
    if state.is_stopping() {
        return ApiError::unavailable("shutting_down", "the server is shutting down")
            .into_response();
    }
    if !state.control.is_ready() {
        return ApiError::unavailable("not_ready", "the audit log is not writing").into_response();
    }
    Json(json!({"status": "ready"})).into_response()
}

pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let metrics = state.control.metrics();
    let open = state.limits.max_watchers
        - state
            .watchers
            .available_permits()
            .min(state.limits.max_watchers);
    metrics.set_watchers(open);
    let content = [(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    )];
    (content, metrics.render()).into_response()
}

pub(crate) async fn config(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let view = state.control.fresh_config().await;
    if !view.confirmed {
        // The coordinator did not answer: the leader's view is at least as
        // new as any standby's.
        if let Some(newer) = leader_config(&state, &headers, view.generation).await {
            return json_text(StatusCode::OK, newer);
        }
    }
    json_text(StatusCode::OK, view.json)
}

pub(crate) async fn knobs(State(state): State<AppState>) -> Response {
    json_text(StatusCode::OK, state.control.knobs_json().to_string())
}

pub(crate) async fn status(State(state): State<AppState>) -> Response {
    Json(state.control.status()).into_response()
}

/// `GET /v1/audit`; a fleet's standby forwards it to the leader, whose
/// ring holds the fleet's decisions.
pub(crate) async fn audit(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let query = uri.query().unwrap_or("");
    let (after, limit) = audit_query(query)?;
    if let Some(leader) = elsewhere(&state, &headers)? {
        let path = format!("/v1/audit?{query}");
        return forward(
            &state,
            &leader,
            (Method::GET, &path),
            &headers,
            Bytes::new(),
        )
        .await;
    }
    Ok(Json(state.control.audit(after, limit)).into_response())
}

/// `after` and `limit` of `/v1/audit`; other parameters are ignored.
pub(crate) fn audit_query(query: &str) -> Result<(Option<u64>, usize), ApiError> {
    let mut after = None;
    let mut limit = DEFAULT_AUDIT_PAGE;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let number = || {
            value.parse::<u64>().map_err(|_| {
                let shown: String = value.chars().take(40).collect();
                ApiError::bad_request(format!(
                    "{key} must be a non-negative integer, got `{shown}`"
                ))
            })
        };
        match key {
            "after" => after = Some(number()?),
            "limit" => {
                let n = number()?;
                if n == 0 || n > MAX_AUDIT_PAGE as u64 {
                    let message = format!("limit must be 1 to {MAX_AUDIT_PAGE}, got {n}");
                    return Err(ApiError::bad_request(message));
                }
                limit = n as usize;
            }
            _ => {}
        }
    }
    Ok((after, limit))
}

/// How the body is framed, from its `Content-Type`.
pub(crate) fn framing(headers: &HeaderMap) -> Result<Framing, ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(Framing::Lines);
    };
    let text = value.to_str().unwrap_or("");
    let media = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/json" => Ok(Framing::Single),
        "application/x-ndjson" | "application/jsonl" | "application/jsonlines" => {
            Ok(Framing::Lines)
        }
        _ => {
            let shown: String = media.chars().take(80).collect();
            Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("send application/json (one digest) or application/x-ndjson (one per line), not `{shown}`"),
            ))
        }
    }
}

pub(crate) async fn telemetry(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let framing = framing(&headers)?;
    let bytes = body::read(&headers, body, state.limits.max_body_bytes).await?;
    if let Some(leader) = elsewhere(&state, &headers)? {
        return forward(
            &state,
            &leader,
            (Method::POST, "/v1/telemetry"),
            &headers,
            bytes,
        )
        .await;
    }
    let digests = parse_report(&bytes, framing).map_err(|e| ApiError::bad_telemetry(&e))?;
    if digests.is_empty() {
        return Err(ApiError::bad_request("the body holds no digest"));
    }
    if digests.len() > state.limits.max_digests {
        return Err(ApiError::too_large(
            "the number of digests",
            state.limits.max_digests,
        ));
    }
    match state.control.report(digests).await {
        Ok(counts) => Ok((StatusCode::ACCEPTED, Json(counts)).into_response()),
        // The leadership moved between the check and the command.
        Err(ControlError::NotLeader {
            leader: Some(leader),
        }) if !headers.contains_key(super::forward::FORWARDED) => {
            forward(
                &state,
                &leader,
                (Method::POST, "/v1/telemetry"),
                &headers,
                bytes,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

async fn operate(
    state: &AppState,
    action: Action,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let path = format!("/v1/{}", action.name());
    if let Some(leader) = elsewhere(state, headers)? {
        return forward(state, &leader, (Method::POST, &path), headers, Bytes::new()).await;
    }
    match state.control.operate(action).await {
        Ok(reply) => Ok(Json(reply).into_response()),
        Err(ControlError::NotLeader {
            leader: Some(leader),
        }) if !headers.contains_key(super::forward::FORWARDED) => {
            forward(state, &leader, (Method::POST, &path), headers, Bytes::new()).await
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn freeze(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    operate(&state, Action::Freeze, &headers).await
}

pub(crate) async fn resume(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    operate(&state, Action::Resume, &headers).await
}

pub(crate) async fn rollback(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    operate(&state, Action::Rollback, &headers).await
}

pub(crate) async fn baseline(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    operate(&state, Action::Baseline, &headers).await
}

pub(crate) async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(uri.path())
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this resource does not take that method",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_queries_are_checked() {
        assert_eq!(audit_query("").ok(), Some((None, DEFAULT_AUDIT_PAGE)));
        assert_eq!(audit_query("after=7&limit=3&x=y").ok(), Some((Some(7), 3)));
        assert!(audit_query("limit=0").is_err());
        assert!(audit_query("limit=1001").is_err());
        assert!(audit_query("after=-1").is_err());
        assert!(audit_query("after").is_err());
    }
}
