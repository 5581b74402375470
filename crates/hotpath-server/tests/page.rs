//! The status page and what it reads, in-process: a host kept by its
//! owner's loop ([`Attached`]), as `hotpath demo` keeps one, served on a
//! loopback port. (The page in a real browser: `tests/browser/`.)

use hotpath::{AdaptiveEngineConfig, Knob, ParamSpace, TelemetryDigest};
use hotpath_host::{Host, ShutdownPolicy};
use hotpath_server::{Attached, ControlOptions, Limits, CONTENT_SECURITY_POLICY};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod support;

use support::{body_of, header, Listening};

const WAIT: Duration = Duration::from_secs(10);

fn space() -> ParamSpace {
    ParamSpace::new(vec![
        Knob::int("batch", 1, 4096, 64).log(),
        Knob::real("linger_ms", 0.1, 100.0, 5.0).log(),
        Knob::choice("codec", ["none", "lz4", "zstd"], "lz4"),
    ])
    .expect("space")
}

/// The owner's side: a host, attached, polled by a thread until dropped
/// (as the demo's loop polls between its ticks).
struct Owner {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<(Host, Attached)>>,
}

impl Owner {
    fn start(mut host: Host, mut attached: Attached, digests: Vec<TelemetryDigest>) -> Owner {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut digests = digests.into_iter();
            while !stopping.load(Ordering::Acquire) {
                if let Some(digest) = digests.next() {
                    attached.measured(&mut host, &digest).expect("same host");
                }
                attached.poll(&mut host).expect("same host");
                std::thread::sleep(Duration::from_millis(10));
            }
            (host, attached)
        });
        Owner {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> (Host, Attached) {
        self.stop.store(true, Ordering::Release);
        self.thread
            .take()
            .expect("running")
            .join()
            .expect("the owner's loop")
    }
}

fn attached() -> (Host, Attached) {
    let settings = AdaptiveEngineConfig::bounded(vec![(1.0, 4096.0), (0.1, 100.0), (0.0, 2.0)]);
    let mut host = support::host(space(), settings);
    let options = ControlOptions {
        accept_telemetry: false,
        ..ControlOptions::default()
    };
    let attached = Attached::new(&mut host, options).expect("attached");
    (host, attached)
}

#[test]
fn the_page_and_its_files_are_served_with_a_policy_of_self_only() {
    let (host, attached) = attached();
    let listening = Listening::start(attached.handle(), Limits::default());
    for (path, kind) in [
        ("/", "text/html; charset=utf-8"),
        ("/ui/page.js", "text/javascript; charset=utf-8"),
        ("/ui/page.css", "text/css; charset=utf-8"),
    ] {
        let response = listening.get(path);
        assert!(response.starts_with("HTTP/1.1 200"), "{path}: {response}");
        assert_eq!(header(&response, "content-type"), Some(kind), "{path}");
        assert_eq!(
            header(&response, "content-security-policy"),
            Some(CONTENT_SECURITY_POLICY),
            "{path}"
        );
        assert_eq!(header(&response, "x-content-type-options"), Some("nosniff"));
    }
    assert!(CONTENT_SECURITY_POLICY.starts_with("default-src 'none'; script-src 'self'"));
    assert!(body_of(&listening.get("/")).contains("<h2 id=\"knobs-heading\">Knobs</h2>"));
    drop(listening);
    host.shutdown(ShutdownPolicy::default()).expect("shutdown");
    drop(attached);
}

#[test]
fn knobs_are_described_with_their_kinds_bounds_and_options() {
    let (host, attached) = attached();
    let listening = Listening::start(attached.handle(), Limits::default());
    let response = listening.get("/v1/knobs");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let knobs: serde_json::Value = serde_json::from_str(body_of(&response)).expect("JSON");
    assert_eq!(
        knobs["knobs"][0],
        serde_json::json!({"name": "batch", "kind": "int", "scale": "log", "min": 1.0, "max": 4096.0, "step": 1, "initial": 64})
    );
    assert_eq!(knobs["knobs"][1]["scale"], "log");
    assert_eq!(
        knobs["knobs"][2]["options"],
        serde_json::json!(["none", "lz4", "zstd"])
    );
    assert_eq!(knobs["knobs"][2]["initial"], "lz4");
    drop(listening);
    host.shutdown(ShutdownPolicy::default()).expect("shutdown");
}

#[test]
fn decisions_and_objectives_stream_live_and_resume_after_the_last_id() {
    let (host, attached) = attached();
    let listening = Listening::start(attached.handle(), Limits::default());
    let mut events = listening.stream("/v1/events", "");
    let digests = vec![TelemetryDigest::new(100_000, 3.25, 480).with_timestamp(1_000)];
    let owner = Owner::start(host, attached, digests);
    assert!(events.wait_for("event: objective", WAIT), "{}", events.seen);
    assert!(events
        .seen
        .contains(r#""t_us":1000,"objective":3.25,"samples":480,"generation":0"#));

    // An operator call reaches the owner's host at its next poll, and
    // its audit events come down the stream.
    let frozen = listening.post("/v1/freeze");
    assert!(frozen.starts_with("HTTP/1.1 200"), "{frozen}");
    assert!(
        events.wait_for("\"type\":\"safe-mode-entered\"", WAIT),
        "{}",
        events.seen
    );
    let status: serde_json::Value =
        serde_json::from_str(body_of(&listening.get("/v1/status"))).expect("status");
    assert_eq!(status["safe_mode"]["reasons"][0]["reason"], "Manual");

    // Reconnecting after the first item: the stream resumes at the second.
    assert!(events.seen.contains("id: 1\n") && events.seen.contains("id: 2\n"));
    let mut resumed = listening.stream("/v1/events", "Last-Event-ID: 1\r\n");
    assert!(resumed.wait_for("id: 2\n", WAIT), "{}", resumed.seen);
    assert!(!resumed.seen.contains("id: 1\n"), "{}", resumed.seen);

    // The owner measures its own telemetry: reports are refused, typed.
    let refused = listening.exchange(
        format!("POST /v1/telemetry HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 30\r\nConnection: close\r\n\r\n{{\"objective\": 1, \"samples\": 1}}", support::TOKEN).as_bytes(),
    );
    assert!(refused.starts_with("HTTP/1.1 409"), "{refused}");
    assert!(body_of(&refused).contains("\"code\":\"telemetry_not_accepted\""));

    let (host, _attached) = owner.finish();
    drop(listening);
    host.shutdown(ShutdownPolicy::default()).expect("shutdown");
}

#[test]
fn an_attached_server_refuses_another_host() {
    let (mut host, mut attached) = attached();
    let (mut other, _) = self::attached();
    assert!(attached.poll(&mut other).is_err());
    let digest = TelemetryDigest::new(1, 1.0, 1);
    assert!(attached.measured(&mut other, &digest).is_err());
    assert!(attached.poll(&mut host).is_ok());
}

#[test]
fn a_quiet_config_watch_sends_its_frame_once_then_keep_alives() {
    let (host, attached) = attached();
    let limits = Limits {
        keep_alive: Duration::from_millis(100),
        ..Limits::default()
    };
    let listening = Listening::start(attached.handle(), limits);
    let mut watch = listening.stream("/v1/config/watch", "");
    let frame = "event: config\nid: 0\ndata: {\"generation\":0,\"values\":{\"batch\":64,\"linger_ms\":5.0,\"codec\":\"lz4\"}}\n\n";
    assert!(watch.wait_for(frame, WAIT), "{}", watch.seen);
    assert!(watch.wait_for(": keep-alive\n\n", WAIT), "{}", watch.seen);
    assert_eq!(watch.seen.matches("event: config").count(), 1);
    drop(listening);
    host.shutdown(ShutdownPolicy::default()).expect("shutdown");
}
