//! The live status page end to end: `hotpath serve` and `hotpath demo`
//! each serve it, with the endpoints it reads, over real HTTP. (What a
//! browser makes of it: `crates/hotpath-server/tests/browser/`.)

use super::http::{get, post, Watch};
use super::process::{Serve, FAST_CONFIG};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// The page's three files, under a policy of the server's own origin.
fn page_is_served(addr: &str) {
    for (path, kind) in [
        ("/", "text/html"),
        ("/ui/page.js", "text/javascript"),
        ("/ui/page.css", "text/css"),
    ] {
        let r = get(addr, path);
        assert_eq!(r.status, 200, "{path}");
        assert!(
            r.header("content-type")
                .is_some_and(|c| c.starts_with(kind)),
            "{path}"
        );
        let policy = r.header("content-security-policy").unwrap_or("");
        assert!(
            policy.contains("default-src 'none'") && policy.contains("script-src 'self'"),
            "{policy}"
        );
    }
    assert!(get(addr, "/")
        .text()
        .contains("<title>hotpath: live status</title>"));
}

#[test]
fn serve_shows_the_page_and_streams_its_decisions_and_objectives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let serve = Serve::start(dir.path(), FAST_CONFIG, &[]);
    page_is_served(&serve.addr);
    let knobs = get(&serve.addr, "/v1/knobs").json();
    assert_eq!(knobs["knobs"][0]["name"], "batch_size");
    assert_eq!(
        (
            knobs["knobs"][0]["min"].as_f64(),
            knobs["knobs"][0]["max"].as_f64()
        ),
        (Some(1.0), Some(512.0))
    );
    let mut events = Watch::open_path(&serve.addr, "/v1/events", None);
    assert_eq!(events.status, 200);
    assert_eq!(events.header("content-type"), Some("text/event-stream"));
    super::drive(&serve, WAIT, |g| g >= 2);
    let point: serde_json::Value =
        serde_json::from_str(&events.wait_for("objective", "\"objective\":", WAIT)).expect("JSON");
    assert!(
        point["objective"].is_f64() && point["generation"].is_u64(),
        "{point}"
    );
    events.wait_for("audit", "\"type\":\"applied\"", WAIT);
}

#[test]
fn the_demo_serves_the_same_page_while_it_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("demo");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hotpath"))
        .args(["demo", "--duration", "6", "--plain", "--out"])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn hotpath demo");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a first line").expect("text");
    let addr = first
        .strip_prefix("status page: http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no page address in {first:?}"))
        .to_string();
    assert!(
        first.contains(&format!("{}", out.join("token").display())),
        "{first}"
    );
    page_is_served(&addr);
    let knobs = get(&addr, "/v1/knobs").json();
    assert_eq!(knobs["knobs"][1]["name"], "linger_ms", "{knobs}");
    let mut events = Watch::open_path(&addr, "/v1/events", None);
    events.wait_for("objective", "\"objective\":", WAIT);

    let token = std::fs::read_to_string(out.join("token")).expect("the token file");
    assert!(!first.contains(token.trim()), "the token is printed");
    let none = post(
        &addr,
        "/v1/freeze",
        "not-the-token-at-all",
        "application/json",
        b"",
    );
    assert_eq!(none.status, 403);
    let frozen = post(&addr, "/v1/freeze", token.trim(), "application/json", b"");
    assert_eq!(frozen.status, 200, "{}", frozen.text());
    assert_eq!(frozen.json()["safe_mode"]["reasons"][0]["reason"], "Manual");
    events.wait_for("audit", "\"type\":\"safe-mode-entered\"", WAIT);
    let digest = br#"{"objective": 1.0, "samples": 1}"#;
    let refused = post(
        &addr,
        "/v1/telemetry",
        token.trim(),
        "application/json",
        digest,
    );
    assert_eq!(
        (refused.status, refused.code().as_str()),
        (409, "telemetry_not_accepted")
    );

    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status}: {rest:?}");
    let summary = rest.join("\n");
    assert!(
        summary.contains("SAFE MODE entered: manual freeze"),
        "{summary}"
    );
}

#[test]
fn the_demo_without_its_page_serves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("demo");
    let output = Command::new(env!("CARGO_BIN_EXE_hotpath"))
        .args(["demo", "--duration", "3", "--plain", "--no-page", "--out"])
        .arg(&out)
        .output()
        .expect("run hotpath demo");
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("status page"), "{stdout}");
    assert!(!out.join("token").exists());
}
