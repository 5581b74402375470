//! The live status page at `GET /`: one HTML document, its script, its
//! style sheet and its icon, embedded in the binary (nothing is fetched from anywhere
//! else: the page works on a machine without internet).
//!
//! The page reads the same API as any client: `/v1/knobs` once (kinds,
//! bounds, scales, options), `/v1/config/watch` for the live values,
//! `/v1/events` for decisions, refusals and objectives as they happen,
//! and `/v1/status` (every 2 s, and at once after a safe-mode, rollback or
//! baseline event) for safe mode and the counters. In fleet mode it works
//! on every instance: a standby serves the fleet's published
//! configuration, relays the leader's `/v1/events` and forwards freeze and
//! resume to the leader, and the page names the instance's role and the
//! leader (the `fleet` section of the status). Its freeze and resume
//! buttons ask for the operator token and send it only in an
//! `Authorization` header; it is kept in the page's memory, or in the
//! tab's `sessionStorage` if the operator ticks the box, and never goes
//! into a URL. Every response of the page carries a
//! `Content-Security-Policy` that allows the page's own origin only (no
//! inline script or style, no frames, no form targets), so the page can
//! run nothing it did not ship with.

use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};

/// What the page may load: its own origin, nothing inline, no frames.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

const INDEX: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("page.js");
const STYLE: &str = include_str!("page.css");
const ICON: &str = include_str!("icon.svg");

/// One of the page's files, with the headers every one of them carries.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    let headers: [(HeaderName, HeaderValue); 5] = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        // A new binary's page is picked up at once.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, body).into_response()
}

pub(crate) async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

pub(crate) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

pub(crate) async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

pub(crate) async fn icon() -> Response {
    asset("image/svg+xml", ICON)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page loads only what it ships with, nothing inline that the
    /// policy would block.
    #[test]
    fn the_page_is_self_contained() {
        assert!(INDEX.contains(r#"<script src="/ui/page.js" defer></script>"#));
        assert!(INDEX.contains(r#"<link rel="stylesheet" href="/ui/page.css">"#));
        for text in [INDEX, SCRIPT, STYLE, ICON] {
            // The SVG namespace is a name, not a place.
            let text = text.replace("http://www.w3.org/2000/svg", "");
            for outside in ["http://", "https://", "//cdn", "@import", "url("] {
                assert!(!text.contains(outside), "the page refers to {outside}");
            }
        }
        assert!(!INDEX.contains("style="), "inline style in the page");
        let handler = INDEX.split(" on").skip(1).any(|rest| {
            let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
            !name.is_empty() && rest[name.len()..].starts_with('=')
        });
        assert!(!handler, "inline event handler in the page");
        assert_eq!(INDEX.matches("<script").count(), 1);
        assert!(!SCRIPT.contains("eval(") && !SCRIPT.contains("innerHTML"));
    }
}
