//! The server in-process, as a demo or a service embeds it: a host with
//! typed knobs on the control thread, the router served on a loopback
//! port, short limits to test slow clients.

use hotpath::{AdaptiveEngineConfig, Knob, ParamSpace, SpsaConfig};
use hotpath_host::ShutdownPolicy;
use hotpath_server::{Action, Control, ControlOptions, Limits};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

mod support;

use support::{body_of, Listening, TOKEN};

struct Running {
    listening: Option<Listening>,
    control: Option<Control>,
}

impl Running {
    fn start(limits: Limits) -> Running {
        let space = ParamSpace::new(vec![
            Knob::int("workers", 1, 64, 8),
            Knob::choice("codec", ["none", "lz4", "zstd"], "lz4"),
        ])
        .expect("space");
        let settings = AdaptiveEngineConfig {
            spsa: SpsaConfig {
                eval_window_digests: 1,
                settle_time_us: 0,
                ..SpsaConfig::default()
            },
            calibration: None,
            ..AdaptiveEngineConfig::bounded(vec![(1.0, 64.0), (0.0, 2.0)])
        };
        let options = ControlOptions {
            window: Some(Duration::from_millis(10)),
            ..ControlOptions::default()
        };
        let control = support::control(space, settings, options);
        Running {
            listening: Some(Listening::start(control.handle(), limits)),
            control: Some(control),
        }
    }

    fn addr(&self) -> &str {
        &self.listening.as_ref().expect("listening").addr
    }

    fn exchange(&self, raw: &[u8]) -> String {
        self.listening.as_ref().expect("listening").exchange(raw)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        drop(self.listening.take());
        if let Some(control) = self.control.take() {
            let _ = control.shutdown(ShutdownPolicy::default());
        }
    }
}

#[test]
fn typed_knobs_read_as_integers_and_option_names() {
    let running = Running::start(Limits::default());
    let response =
        running.exchange(b"GET /v1/config HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(
        body_of(&response),
        r#"{"generation":0,"values":{"workers":8,"codec":"lz4"}}"#
    );
    let metrics =
        running.exchange(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert!(
        metrics.contains("hotpath_knob_value{knob=\"codec\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("hotpath_knob_choice_info{knob=\"codec\",option=\"lz4\"} 1"));
    assert!(metrics.contains("hotpath_knob_choice_info{knob=\"codec\",option=\"zstd\"} 0"));
}

#[test]
fn digests_fed_through_the_handle_move_the_config() {
    let running = Running::start(Limits::default());
    let handle = running.control.as_ref().expect("running").handle();
    let started = Instant::now();
    while handle.snapshot().generation < 3 && started.elapsed() < Duration::from_secs(20) {
        let g = handle.snapshot().generation;
        let line = format!("{{\"objective\": 2.0, \"samples\": 10, \"generation\": {g}}}");
        let digests = hotpath_config::telemetry::parse_report(
            line.as_bytes(),
            hotpath_config::telemetry::Framing::Single,
        )
        .expect("valid");
        let counts = handle.report_blocking(digests).expect("reported");
        assert_eq!(counts.accepted + counts.stale, 1);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        handle.snapshot().generation >= 3,
        "stuck at {}",
        handle.snapshot().generation
    );
    let frozen = handle.operate_blocking(Action::Freeze).expect("freeze");
    assert!(frozen.safe_mode.active);
    assert_eq!(handle.status().safe_mode.reasons[0].reason, "Manual");
    let page = handle.audit(None, 1000);
    assert!(page.events.iter().any(|e| e.kind == "applied"));
}

#[test]
fn slow_clients_are_cut_off() {
    let limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        body_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let running = Running::start(limits);
    // Headers that never end: the connection is closed.
    let started = Instant::now();
    let mut stream = TcpStream::connect(running.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    stream
        .write_all(b"GET /v1/config HTTP/1.1\r\nHost: t\r\n")
        .expect("send");
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "held for {:?}",
        started.elapsed()
    );
    // A body that never arrives: 408 as typed JSON.
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    let head = format!(
        "POST /v1/telemetry HTTP/1.1\r\nHost: t\r\n{auth}Content-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{{\"objective\""
    );
    let response = running.exchange(head.as_bytes());
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(body_of(&response).contains("\"request_timeout\""));
    // And the server still answers.
    let ok = running.exchange(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert!(ok.starts_with("HTTP/1.1 200"));
}
