//! [`ApiError`]: every error the API returns, as typed JSON
//! `{"error": {"code": "...", "message": "..."}}`.

use crate::control::ControlError;
use crate::names::type_name;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hotpath_config::telemetry::ReportError;
use serde::Serialize;

/// An error response: a status, a stable `code`, a message for people,
/// and for a bad telemetry line its `line` and `field` (for a refusal,
/// the `violation`).
///
/// ```
/// use axum::response::IntoResponse;
/// use hotpath_server::http::ApiError;
///
/// let response = ApiError::not_found("/nowhere").into_response();
/// assert_eq!(response.status(), 404);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    status: StatusCode,
    /// Stable, machine-readable.
    pub code: &'static str,
    /// For people.
    pub message: String,
    /// The bad telemetry line (1-based).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The field of that line the problem concerns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The executor's violation, for a refusal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violation: Option<String>,
}

impl ApiError {
    /// An error of `status` with `code` and `message`.
    ///
    /// ```
    /// let e = hotpath_server::http::ApiError::new(axum::http::StatusCode::CONFLICT, "refused", "no baseline");
    /// assert_eq!(e.status(), 409);
    /// ```
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            line: None,
            field: None,
            violation: None,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// 404 `not_found`.
    pub fn not_found(path: &str) -> Self {
        let shown: String = path.chars().take(200).collect();
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such resource: {shown}"),
        )
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 400 `bad_telemetry` for the first bad line of a body.
    pub fn bad_telemetry(e: &ReportError) -> Self {
        Self {
            line: Some(e.line),
            field: e.field.clone(),
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "bad_telemetry",
                format!("{e}; the body was refused as a whole"),
            )
        }
    }

    /// 413 `payload_too_large`.
    pub fn too_large(what: &str, limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("{what} is over the limit of {limit}"),
        )
    }

    /// 401 `unauthorized`, 403 `forbidden`, 503s: see [`IntoResponse`].
    pub fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403 `forbidden`.
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the bearer token is not the server's",
        )
    }

    /// 503 with `code`.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// 500 `internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        let message = e.to_string();
        match &e {
            ControlError::Refused(violation) => Self {
                violation: Some(type_name(violation)),
                ..Self::new(StatusCode::CONFLICT, e.code(), message)
            },
            ControlError::Host(_) => Self::internal(message),
            ControlError::TelemetryNotAccepted => {
                Self::new(StatusCode::CONFLICT, e.code(), message)
            }
            _ => Self::unavailable(e.code(), message),
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: &'a ApiError,
}

impl IntoResponse for ApiError {
    /// The JSON body; `WWW-Authenticate: Bearer` on a 401, `Retry-After: 1`
    /// on a 503.
    fn into_response(self) -> Response {
        let body = serde_json::to_string(&Envelope { error: &self })
            .unwrap_or_else(|_| String::from(r#"{"error":{"code":"internal","message":""}}"#));
        let mut response = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
