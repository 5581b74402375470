//! End-to-end tests of `hotpath serve` (and of the status page it and
//! `hotpath demo` serve): a real process on a free loopback port, spoken to
//! over real HTTP.

mod http;
mod page;
mod process;
mod typed;

use http::{get, post, post_declaring, request, request_lossy, Watch};
use process::{Serve, FAST_CONFIG};
use serde_json::Value;
use std::time::{Duration, Instant};

/// SIGTERM to exit: the grace period (5 s) plus the host's shutdown.
const EXIT_BOUND: Duration = Duration::from_secs(10);

fn generation(addr: &str) -> u64 {
    get(addr, "/v1/config").json()["generation"]
        .as_u64()
        .expect("generation")
}

/// Reports digests measured at the live configuration (a bowl around
/// batch_size 200, linger 5 ms) from two replicas until `done` says so or
/// `limit` passes; the generation reached.
fn drive(serve: &Serve, limit: Duration, done: impl Fn(u64) -> bool) -> u64 {
    let bowl = |config: &Value| {
        let b = config["values"]["batch_size"].as_f64().expect("batch");
        let l = config["values"]["linger_ms"].as_f64().expect("linger");
        ((b - 200.0) / 100.0).powi(2) + ((l - 5.0) / 10.0).powi(2)
    };
    let last = drive_on(serve, limit, bowl, |config| {
        done(config["generation"].as_u64().expect("generation"))
    });
    last["generation"].as_u64().expect("generation")
}

/// Reports `objective` of the live configuration (its `/v1/config` body)
/// from two replicas until `done` says so of it or `limit` passes; the
/// configuration reached.
fn drive_on(
    serve: &Serve,
    limit: Duration,
    objective: impl Fn(&Value) -> f64,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    let mut i = 0u64;
    loop {
        let config = get(&serve.addr, "/v1/config").json();
        if done(&config) || started.elapsed() > limit {
            return config;
        }
        let g = config["generation"].as_u64().expect("generation");
        let objective = objective(&config);
        let body = format!(
            "{{\"objective\":{objective},\"samples\":50,\"generation\":{g},\"instance\":\"r1\",\"t_us\":{i}}}\n\
             {{\"objective\":{},\"samples\":30,\"generation\":{g},\"instance\":\"r2\"}}\n",
            objective * 1.01
        );
        let r = post(
            &serve.addr,
            "/v1/telemetry",
            &serve.token,
            "application/x-ndjson",
            body.as_bytes(),
        );
        assert_eq!(r.status, 202, "{}", r.text());
        i += 1000;
        std::thread::sleep(Duration::from_millis(8));
    }
}

#[test]
fn every_endpoint_answers_and_refuses_in_typed_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let serve = Serve::start(dir.path(), FAST_CONFIG, &[]);
    reads(&serve);
    auth(&serve);
    operators(&serve); // before any telemetry moves the config
    telemetry(&serve);
    audit_and_routing(&serve);
}

/// Health, readiness, config, status, metrics.
fn reads(serve: &Serve) {
    let addr = &serve.addr;
    assert_eq!(get(addr, "/healthz").json()["status"], "ok");
    assert_eq!(get(addr, "/readyz").json()["status"], "ready");
    let config = get(addr, "/v1/config").json();
    assert_eq!(config["values"]["batch_size"], 64.0);
    assert!(config["generation"].is_u64());
    let status = get(addr, "/v1/status").json();
    assert_eq!(status["safe_mode"]["active"], false);
    assert_eq!(status["engine"]["stage"], "tuning");
    let metrics = get(addr, "/metrics");
    assert!(metrics
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/plain")));
    for name in [
        "hotpath_knob_value{knob=\"batch_size\"}",
        "hotpath_config_generation",
        "hotpath_safe_mode{reason=\"Manual\"}",
    ] {
        assert!(
            metrics.text().contains(name),
            "{name} missing from\n{}",
            metrics.text()
        );
    }
}

/// Auth: 401 without, 403 wrong; the token is in a 0600 file.
fn auth(serve: &Serve) {
    let addr = &serve.addr;
    let digest = br#"{"objective": 1.5, "samples": 10}"#;
    let none = request(
        addr,
        "POST",
        "/v1/telemetry",
        &[("Content-Type", "application/json")],
        digest,
    );
    assert_eq!((none.status, none.code().as_str()), (401, "unauthorized"));
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    let wrong = post(
        addr,
        "/v1/telemetry",
        "not-the-token-at-all",
        "application/json",
        digest,
    );
    assert_eq!((wrong.status, wrong.code().as_str()), (403, "forbidden"));
    let basic = request(
        addr,
        "POST",
        "/v1/freeze",
        &[("Authorization", "Basic dTpw")],
        b"",
    );
    assert_eq!(basic.status, 401);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(serve.dir.join("token"))
            .expect("token")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

/// Operators: audited, idempotent where documented.
fn operators(serve: &Serve) {
    let addr = &serve.addr;
    let r = post(addr, "/v1/rollback", &serve.token, "application/json", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["changed"], false, "already at the baseline");
    let first = post(addr, "/v1/freeze", &serve.token, "application/json", b"").json();
    let second = post(addr, "/v1/freeze", &serve.token, "application/json", b"").json();
    assert_eq!(
        (first["changed"].as_bool(), second["changed"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(second["safe_mode"]["reasons"][0]["reason"], "Manual");
    let resumed = post(addr, "/v1/resume", &serve.token, "application/json", b"").json();
    assert_eq!(resumed["cleared"], serde_json::json!(["Manual"]));
    let baseline = post(addr, "/v1/baseline", &serve.token, "application/json", b"").json();
    assert!(baseline["baseline_generation"].is_u64());
}

/// Telemetry: accepted, stale, and bad bodies refused whole.
fn telemetry(serve: &Serve) {
    let addr = &serve.addr;
    let digest = br#"{"objective": 1.5, "samples": 10}"#;
    let ok = post(
        addr,
        "/v1/telemetry",
        &serve.token,
        "application/json",
        digest,
    );
    assert_eq!(ok.status, 202, "{}", ok.text());
    assert_eq!(ok.json()["accepted"], 1);
    let stale = post(
        addr,
        "/v1/telemetry",
        &serve.token,
        "application/json",
        br#"{"objective": 1, "samples": 1, "generation": 999999}"#,
    );
    assert_eq!(
        (stale.status, stale.json()["stale"].as_u64()),
        (202, Some(1))
    );

    // Bad bodies: 400 naming the line and field; 413; 415.
    let bad = b"{\"objective\": 1, \"samples\": 2}\n\n{\"objective\": 1, \"samples\": 0}\n";
    let r = post(
        addr,
        "/v1/telemetry",
        &serve.token,
        "application/x-ndjson",
        bad,
    );
    assert_eq!((r.status, r.code().as_str()), (400, "bad_telemetry"));
    assert_eq!(
        (
            r.json()["error"]["line"].as_u64(),
            r.json()["error"]["field"].as_str()
        ),
        (Some(3), Some("samples"))
    );
    let r = post(
        addr,
        "/v1/telemetry",
        &serve.token,
        "application/x-ndjson",
        b"{\"objective\": 1, \"sample\": 2}\n",
    );
    assert_eq!(r.json()["error"]["field"], "sample");
    let r = post_declaring(addr, "/v1/telemetry", &serve.token, (1 << 20) + 1);
    assert_eq!((r.status, r.code().as_str()), (413, "payload_too_large"));
    let r = post(addr, "/v1/telemetry", &serve.token, "text/csv", b"1,2");
    assert_eq!(
        (r.status, r.code().as_str()),
        (415, "unsupported_media_type")
    );
    let r = post(
        addr,
        "/v1/telemetry",
        &serve.token,
        "application/x-ndjson",
        b"\n \n",
    );
    assert_eq!((r.status, r.code().as_str()), (400, "bad_request"));
}

/// The audit trail, unknown routes, oversized headers.
fn audit_and_routing(serve: &Serve) {
    let addr = &serve.addr;
    // The audit trail, paged.
    let page = get(addr, "/v1/audit?limit=1000").json();
    let types: Vec<&str> = page["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    for wanted in ["safe-mode-entered", "resumed", "baseline-set"] {
        assert!(types.contains(&wanted), "{wanted} not in {types:?}");
    }
    // The trail starts where the log does: the events of the start,
    // recorded before the server's subscription existed, are in it.
    assert_eq!(types[..2], ["started", "baseline-set"], "{types:?}");
    assert_eq!(page["events"][0]["seq"], 0);
    let after = page["next_after"].as_u64().expect("next_after");
    let next = get(addr, &format!("/v1/audit?after={after}")).json();
    assert_eq!(next["events"], serde_json::json!([]));
    let r = get(addr, "/v1/audit?limit=100000");
    assert_eq!((r.status, r.code().as_str()), (400, "bad_request"));

    // Unknown paths and methods.
    assert_eq!(get(addr, "/v2/nothing").code(), "not_found");
    let r = request(addr, "DELETE", "/v1/config", &[], b"");
    assert_eq!((r.status, r.code().as_str()), (405, "method_not_allowed"));
    let r = get(addr, "/v1/freeze");
    assert_eq!(r.status, 405);

    // Headers too large: refused by the connection (431), never a panic.
    let huge = "x".repeat(20_000);
    let r = request_lossy(addr, "/v1/config", &[("X-Big", &huge)]);
    // The 431 may be lost to the reset of a connection closed unread.
    assert!(
        r.as_ref().is_none_or(|r| r.status == 431),
        "{:?}",
        r.map(|r| r.status)
    );
    assert_eq!(get(addr, "/healthz").status, 200, "still serving");
}

#[test]
fn tuning_survives_sigterm_and_restart_with_one_audit_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut serve = Serve::start(dir.path(), FAST_CONFIG, &[]);
    let start = generation(&serve.addr);
    let mut watcher = Watch::open(&serve.addr, None);
    assert_eq!(watcher.status, 200);
    let first = watcher
        .next_event(Duration::from_secs(5))
        .expect("the current config at once");
    assert_eq!((first.name.as_str(), first.id), ("config", Some(start)));
    let data: Value = serde_json::from_str(&first.data).expect("data is JSON");
    assert_eq!(data["generation"].as_u64(), Some(start));

    let reached = drive(&serve, Duration::from_secs(30), |g| g >= start + 4);
    assert!(
        reached >= start + 4,
        "generation only reached {reached} from {start}"
    );
    let mut ids = Vec::new();
    while let Some(event) = watcher.next_event(Duration::from_millis(500)) {
        ids.push(event.id.expect("id"));
    }
    assert!(
        !ids.is_empty() && ids.windows(2).all(|w| w[0] < w[1]),
        "ids {ids:?}"
    );
    let status = get(&serve.addr, "/v1/status").json();
    assert!(status["counts"]["applied"].as_u64() > Some(0));
    assert!(status["counts"]["telemetry"]["windows_stepped"].as_u64() > Some(0));
    let metrics = get(&serve.addr, "/metrics").text();
    assert!(
        metrics.contains("hotpath_decisions_total{outcome=\"applied\",violation=\"none\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("hotpath_telemetry_instance_digests_total{instance=\"r2\"}"));

    // Resuming a watch: nothing until a newer generation.
    let now = generation(&serve.addr);
    let mut resumed = Watch::open(&serve.addr, Some(now));
    let mut behind = Watch::open(&serve.addr, Some(now.saturating_sub(1)));
    assert_eq!(
        behind.next_event(Duration::from_secs(5)).and_then(|e| e.id),
        Some(now)
    );
    assert_eq!(resumed.next_event(Duration::from_millis(300)), None);

    // SIGTERM with open watchers: streams closed, bounded exit, state saved.
    let (status, took) = serve.terminate(EXIT_BOUND);
    assert!(status.success(), "exit status {status}");
    assert!(took < EXIT_BOUND, "took {took:?}");
    assert!(
        watcher.closed_within(Duration::from_secs(1)),
        "the watch stream was not closed"
    );
    assert!(resumed.closed_within(Duration::from_secs(1)));
    let saved = std::fs::read_to_string(serve.dir.join("state.json")).expect("state saved");
    assert!(saved.contains(hotpath_durable::state::STATE_FORMAT));
    let printed = serve.printed().join("\n");
    assert!(
        printed.contains("stopped in") && printed.contains("state saved"),
        "{printed}"
    );
    let before = generation_in_state(&saved);

    let dir_path = dir.path().to_path_buf();
    drop(serve);
    restart_continues(&dir_path, before);
}

/// A restart in the same directory: the state is restored, generations
/// keep rising, and the audit chain continues.
fn restart_continues(dir_path: &std::path::Path, before: u64) {
    let mut again = Serve::start(dir_path, FAST_CONFIG, &[]);
    let restored = generation(&again.addr);
    let first = get(&again.addr, "/v1/audit?limit=1").json();
    assert_eq!(first["events"][0]["type"], "restored", "{first}");
    assert!(
        restored >= before,
        "generation {restored} went back from {before}"
    );
    let later = drive(&again, Duration::from_secs(30), |g| g >= restored + 2);
    assert!(
        later >= restored + 2,
        "no progress after the restart: {later}"
    );
    let (status, _) = again.terminate(EXIT_BOUND);
    assert!(status.success());
    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_hotpath"))
        .args(["audit", "verify"])
        .arg(again.dir.join("audit"))
        .output()
        .expect("verify");
    let out = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(out.contains("seq 0..="), "{out}");
    let show = std::process::Command::new(env!("CARGO_BIN_EXE_hotpath"))
        .args(["audit", "show", "--type", "restored"])
        .arg(again.dir.join("audit"))
        .output()
        .expect("show");
    assert!(
        String::from_utf8_lossy(&show.stdout).contains("restored"),
        "no restored event"
    );
}

fn generation_in_state(text: &str) -> u64 {
    let state: Value = serde_json::from_str(text).expect("state JSON");
    state["executor"]["live"]["generation"]
        .as_u64()
        .unwrap_or_else(|| panic!("no generation in {text}"))
}

#[test]
fn max_watchers_and_connections_are_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let serve = Serve::start(
        dir.path(),
        FAST_CONFIG,
        &["--max-watchers", "2", "--max-connections", "8"],
    );
    let held: Vec<Watch> = (0..2).map(|_| Watch::open(&serve.addr, None)).collect();
    assert!(held.iter().all(|w| w.status == 200));
    let over = Watch::open_path(&serve.addr, "/v1/events", None);
    assert_eq!(over.status, 503, "the third stream is refused");
    assert_eq!(get(&serve.addr, "/v1/status").status, 200);

    for bad in ["0", "65537", "many"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotpath"))
            .args([
                "serve",
                "--config",
                "x.toml",
                "--data",
                "d",
                "--max-watchers",
                bad,
            ])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "--max-watchers {bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("from 1 to 65536"), "{err}");
    }
}

#[test]
fn watchers_that_never_read_do_not_hold_up_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let serve = Serve::start(dir.path(), FAST_CONFIG, &[]);
    let rss_before = serve.rss_kib();
    // 63 streams that are never read, and one that is: the limit is 64.
    let idle: Vec<Watch> = (0..63).map(|_| Watch::open(&serve.addr, None)).collect();
    assert!(idle.iter().all(|w| w.status == 200));
    let mut reader = Watch::open(&serve.addr, None);
    let first = reader
        .next_event(Duration::from_secs(5))
        .and_then(|e| e.id)
        .expect("first");
    let over = Watch::open(&serve.addr, None);
    assert_eq!(over.status, 503, "the 65th stream is refused");
    drop(over);

    let start = Instant::now();
    let reached = drive(&serve, Duration::from_secs(30), |g| g >= first + 6);
    assert!(reached >= first + 6, "generations stalled at {reached}");
    let mut last = None;
    while let Some(event) = reader.next_event(Duration::from_millis(500)) {
        last = event.id;
    }
    assert!(
        last.is_some_and(|l| l >= first + 6),
        "the reading watcher saw {last:?}"
    );
    let r = get(&serve.addr, "/v1/status");
    assert_eq!(r.status, 200);
    assert!(start.elapsed() < Duration::from_secs(40));
    if let (Some(before), Some(after)) = (rss_before, serve.rss_kib()) {
        assert!(
            after < before + 64 * 1024,
            "memory grew from {before} KiB to {after} KiB"
        );
    }
    drop(idle);
}
