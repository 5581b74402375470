//! Property tests of what parses requests: arbitrary bytes never panic
//! and always come back as typed errors, the telemetry parser and the
//! whole router alike.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use hotpath::{AdaptiveEngineConfig, Knob, ParamSpace};
use hotpath_config::telemetry::{parse_report, Framing};
use hotpath_host::ShutdownPolicy;
use hotpath_server::http::{router, AppState, ROUTES};
use hotpath_server::{Control, ControlOptions, Limits, Token};
use http_body_util::BodyExt;
use proptest::prelude::*;
use tower::ServiceExt;

mod support;

const TOKEN: &str = "property-test-token";

/// A JSON-ish line: mostly digests, with fields and values mixed up.
fn digest_line() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "objective",
        "samples",
        "t_us",
        "generation",
        "margin",
        "window_us",
        "instance",
        "extra",
    ]);
    let value = prop::sample::select(vec![
        "1",
        "0",
        "-1",
        "1.5",
        "1e999",
        "\"NaN\"",
        "null",
        "\"api-1\"",
        "\"a b\"",
        "[]",
        "{}",
        "18446744073709551616",
        "4611686018427387905",
        "true",
    ]);
    prop::collection::vec((key, value), 0..8).prop_map(|pairs| {
        let fields: Vec<String> = pairs.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", fields.join(","))
    })
}

fn check_error(body: &[u8], e: &hotpath_config::telemetry::ReportError) {
    let lines = body.split(|&b| b == b'\n').count() as u64;
    assert!(
        e.line >= 1 && e.line <= lines.max(1),
        "line {} of {lines}",
        e.line
    );
    assert!(!e.message.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_give_digests_or_a_located_error(body in prop::collection::vec(any::<u8>(), 0..512)) {
        for framing in [Framing::Single, Framing::Lines] {
            if let Err(e) = parse_report(&body, framing) {
                check_error(&body, &e);
            }
        }
    }

    #[test]
    fn digest_like_lines_are_parsed_or_refused_at_their_line(lines in prop::collection::vec(digest_line(), 1..6)) {
        let body = lines.join("\n");
        match parse_report(body.as_bytes(), Framing::Lines) {
            Ok(digests) => {
                prop_assert_eq!(digests.len(), lines.len());
                for d in digests {
                    prop_assert!(d.digest.validate().is_ok());
                }
            }
            Err(e) => check_error(body.as_bytes(), &e),
        }
    }
}

/// A router over an in-memory host, for requests one at a time.
fn app() -> (axum::Router, Control) {
    let space = ParamSpace::new(vec![Knob::real("a", 0.0, 1.0, 0.5)]).expect("space");
    let settings = AdaptiveEngineConfig::bounded(vec![(0.0, 1.0)]);
    let control = support::control(space, settings, ControlOptions::default());
    let (_stop, stopping) = tokio::sync::watch::channel(false);
    // The sender is dropped: the watch route is not exercised here.
    let state = AppState::new(
        control.handle(),
        Token::new(TOKEN),
        Limits::default(),
        stopping,
    );
    (router(state), control)
}

fn request() -> impl Strategy<Value = (String, String, Option<String>, Option<String>, Vec<u8>)> {
    let method = prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"]);
    // Every route but the never-ending watch stream, and two that are none.
    let mut paths: Vec<&str> = ROUTES
        .into_iter()
        .filter(|r| *r != "/v1/config/watch")
        .collect();
    paths.extend(["/v1/nothing", "/"]);
    let path = prop::sample::select(paths);
    let query = prop::option::of("[a-z=&0-9%-]{0,20}");
    let content_type = prop::option::of(prop::sample::select(vec![
        "application/json",
        "application/x-ndjson",
        "text/plain",
        "application/json; charset=utf-8",
        "",
    ]));
    let auth = prop::option::of(prop::sample::select(vec![
        format!("Bearer {TOKEN}"),
        "Bearer wrong-token".to_string(),
        "Basic x".to_string(),
        "Bearer".to_string(),
        String::new(),
    ]));
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        digest_line().prop_map(String::into_bytes),
    ];
    (method, path, query, content_type, auth, body).prop_map(|(m, p, q, c, a, b)| {
        let uri = match q {
            Some(q) => format!("{p}?{q}"),
            None => p.to_string(),
        };
        let headers = c.map(|c| c.to_string());
        (m.to_string(), uri, headers, a, b)
    })
}

#[test]
fn the_router_never_fails_with_a_5xx_or_an_untyped_error() {
    let (app, control) = app();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    });
    let result = runner.run(&request(), |(method, uri, content_type, auth, body)| {
        let mut builder = Request::builder().method(method.as_str()).uri(uri.as_str());
        if let Some(c) = &content_type {
            builder = builder.header("content-type", c.as_str());
        }
        if let Some(a) = &auth {
            builder = builder.header("authorization", a.as_str());
        }
        let Ok(request) = builder.body(Body::from(body)) else {
            return Ok(()); // not a request http can even build
        };
        let response = runtime
            .block_on(app.clone().oneshot(request))
            .expect("infallible");
        let status = response.status();
        prop_assert!(!status.is_server_error(), "{} {}: {}", method, uri, status);
        let bytes = runtime
            .block_on(response.into_body().collect())
            .expect("body")
            .to_bytes();
        if status.is_client_error() && method != "HEAD" {
            let json: serde_json::Value = serde_json::from_slice(&bytes).expect("typed JSON error");
            prop_assert!(
                json["error"]["code"].is_string(),
                "{}",
                String::from_utf8_lossy(&bytes)
            );
        }
        if status == StatusCode::ACCEPTED {
            let good = format!("Bearer {}", TOKEN);
            prop_assert!(
                auth.as_deref() == Some(good.as_str()),
                "accepted without the token"
            );
        }
        Ok(())
    });
    drop(app);
    let _ = control.shutdown(ShutdownPolicy::default());
    if let Err(e) = result {
        panic!("{e}");
    }
}
