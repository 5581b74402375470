//! The host's restart protocol, its log feed and its subscriptions.

use hotpath::{AdaptiveEngineConfig, EventType, Knob, ManualClock, ParamSpace, TelemetryDigest};
use hotpath_host::{Host, HostError, HostOptions, Resume, ShutdownPolicy};
use std::path::Path;
use std::sync::Arc;

fn space() -> Arc<ParamSpace> {
    Arc::new(ParamSpace::new(vec![Knob::real("a", 0.0, 1.0, 0.5)]).expect("valid"))
}

fn settings() -> AdaptiveEngineConfig {
    AdaptiveEngineConfig::bounded(vec![(0.0, 1.0)])
}

fn open(dir: &Path, resume: Resume, clock: ManualClock) -> Result<Host<ManualClock>, HostError> {
    let options = HostOptions {
        resume,
        ..HostOptions::in_dir(dir)
    };
    Host::open(space(), settings(), options, clock)
}

/// Steps `n` digests 100 ms apart, tagged with the live generation.
fn run(host: &mut Host<ManualClock>, clock: &ManualClock, n: usize) {
    for i in 0..n {
        clock.advance(100_000);
        let snap = host.config().snapshot();
        let y = (snap.params[0] - 0.3).powi(2) + 0.001 * (i % 3) as f64;
        let digest = TelemetryDigest::new(100_000, y, 20).with_generation(snap.generation);
        host.step(digest).expect("a valid digest");
    }
}

#[test]
fn a_restart_continues_the_log_and_the_generations_and_restores_the_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(0);
    let mut host = open(dir.path(), Resume::IfPresent, clock.clone()).expect("fresh");
    assert!(host.open_report().restored.is_none());
    let opening: Vec<_> = host
        .open_report()
        .events
        .iter()
        .map(|e| (e.seq, e.event_type()))
        .collect();
    assert_eq!(
        opening,
        [(0, EventType::Started), (1, EventType::BaselineSet)]
    );
    run(&mut host, &clock, 60);
    let generation = host.executor().generation();
    let iteration = host.engine().spsa().iteration();
    let closed = host.shutdown(ShutdownPolicy::default()).expect("shutdown");
    let logged = closed.log.expect("a log").forwarded;

    let mut again = open(dir.path(), Resume::Require, ManualClock::new(0)).expect("restart");
    let report = again.open_report().clone();
    assert!(report.restored.is_some());
    assert_eq!(report.first_seq, logged, "numbering continues");
    let first = report.events.first().map(|e| (e.seq, e.event_type()));
    assert_eq!(first, Some((logged, EventType::Restored)));
    assert!(report.generation >= generation);
    assert_eq!(again.engine().spsa().iteration(), iteration);
    let events = again.subscribe(16).expect("a capacity in range");
    again.freeze().expect("freeze");
    assert_eq!(
        events.try_next().map(|e| e.event_type()),
        Some(EventType::SafeModeEntered)
    );
    again.shutdown(ShutdownPolicy::default()).expect("shutdown");
    let chain = hotpath_durable::verify(dir.path().join("audit")).expect("one sound chain");
    assert_eq!(chain.first_seq, Some(0));
}

#[test]
fn a_host_dropped_without_shutdown_still_logs_what_the_executor_queued() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut host = open(dir.path(), Resume::Fresh, ManualClock::new(0)).expect("open");
    // Queued by the executor, not yet drained: no host call after it.
    host.engine_mut().executor_mut().freeze();
    drop(host);
    let report = hotpath_durable::verify(dir.path().join("audit")).expect("sound");
    // Started, baseline set, safe mode entered.
    assert_eq!((report.events, report.last_seq), (3, Some(2)));
}

#[test]
fn missing_required_and_corrupt_states_are_errors_not_resets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = open(dir.path(), Resume::Require, ManualClock::new(0)).unwrap_err();
    assert!(matches!(&e, HostError::NoState { path } if path.ends_with("state.json")));
    assert!(
        !dir.path().join("audit").exists(),
        "nothing is created before the state is known"
    );
    std::fs::write(dir.path().join("state.json"), b"{\"format\": ").expect("write");
    let e = open(dir.path(), Resume::IfPresent, ManualClock::new(0)).unwrap_err();
    assert!(e.to_string().contains("state.json"), "{e}");
    // A fresh start ignores the file, and replaces it at shutdown.
    let host = open(dir.path(), Resume::Fresh, ManualClock::new(0)).expect("fresh");
    host.shutdown(ShutdownPolicy::default()).expect("shutdown");
    assert!(open(dir.path(), Resume::Require, ManualClock::new(0)).is_ok());
}

#[test]
fn a_slow_subscriber_loses_events_and_slows_nothing() {
    let clock = ManualClock::new(0);
    let mut host = Host::open(space(), settings(), HostOptions::in_memory(), clock.clone())
        .expect("in memory");
    let slow = host.subscribe(1).expect("a capacity in range");
    let fast = host.subscribe(1024).expect("a capacity in range");
    run(&mut host, &clock, 80);
    host.freeze().expect("freeze");
    let mut seen = 0;
    while fast.try_next().is_some() {
        seen += 1;
    }
    assert_eq!(slow.len(), 1);
    assert_eq!(slow.lost() + 1, seen, "every event but the first, counted");
    assert_eq!(fast.lost(), 0);
    let closed = host.shutdown(ShutdownPolicy::default()).expect("shutdown");
    assert!(closed.log.is_none() && closed.state_file.is_none());
}

#[test]
fn shutdown_can_roll_back_and_keep_the_last_saved_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(0);
    let mut host = open(dir.path(), Resume::Fresh, clock.clone()).expect("open");
    run(&mut host, &clock, 80);
    let saved = host.save_state().expect("save").expect("a state file");
    let before = std::fs::read(&saved).expect("read");
    let closed = host
        .shutdown(ShutdownPolicy {
            rollback_to_baseline: true,
            save_state: false,
        })
        .expect("shutdown");
    assert!(closed.rollback.is_some());
    assert_eq!(std::fs::read(&saved).expect("read"), before);
}

/// A fresh host in `dir`, run for `n` digests and shut down: a state file
/// and the log it is a checkpoint of.
fn run_and_close(dir: &Path, n: usize) {
    let clock = ManualClock::new(0);
    let mut host = open(dir, Resume::Fresh, clock.clone()).expect("fresh");
    run(&mut host, &clock, n);
    host.shutdown(ShutdownPolicy::default()).expect("shutdown");
}

fn state_json(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("state.json")).expect("state")).expect("json")
}

fn write_state(dir: &Path, state: &serde_json::Value) {
    std::fs::write(
        dir.join("state.json"),
        serde_json::to_vec_pretty(state).expect("json"),
    )
    .expect("write state");
}

#[test]
fn a_state_edited_in_range_is_refused_naming_both_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    run_and_close(dir.path(), 60);
    let saved = state_json(dir.path());
    let live = saved["executor"]["live"]["params"][0]
        .as_f64()
        .expect("a value");
    let other = if (live - 0.25).abs() > 1e-9 {
        0.25
    } else {
        0.75
    };
    let generation = saved["executor"]["live"]["generation"]
        .as_u64()
        .expect("a generation");
    // What is edited (a JSON pointer into the state), to what, and the
    // mismatch expected.
    let edits: [(&str, serde_json::Value, &str); 4] = [
        (
            "/executor/live/params/0",
            other.into(),
            "the live values are",
        ),
        (
            "/executor/live/generation",
            (generation + 1).into(),
            "the live generation is",
        ),
        (
            "/executor/baseline/snapshot/params/0",
            other.into(),
            "the baseline is",
        ),
        ("/checkpoint/hash", "ab".repeat(32).into(), "has hash"),
    ];
    for (what, value, expected) in edits {
        let mut edited = saved.clone();
        *edited.pointer_mut(what).expect("a field of the state") = value;
        write_state(dir.path(), &edited);
        let e = open(dir.path(), Resume::IfPresent, ManualClock::new(0))
            .expect_err(&format!("an edited {what} must be refused"));
        let message = e.to_string();
        assert!(
            matches!(
                &e,
                HostError::State(hotpath_durable::state::StateError::LogMismatch { .. })
            ),
            "{what}: {e:?}"
        );
        assert!(message.contains(expected), "{what}: {message}");
        assert!(
            message.contains(&dir.path().join("state.json").display().to_string())
                && message.contains(&dir.path().join("audit").display().to_string()),
            "{what}: both files named: {message}"
        );
    }
    // A key the state does not have is refused, not ignored.
    let mut edited = saved.clone();
    edited["comment"] = "restored by hand".into();
    write_state(dir.path(), &edited);
    let e = open(dir.path(), Resume::IfPresent, ManualClock::new(0)).unwrap_err();
    assert!(e.to_string().contains("unknown field `comment`"), "{e}");
    // The untouched state still restores.
    write_state(dir.path(), &saved);
    open(dir.path(), Resume::Require, ManualClock::new(0)).expect("the saved state");
}

#[test]
fn a_state_ahead_of_its_log_is_refused_and_a_fresh_start_continues_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    run_and_close(dir.path(), 60);
    // What a power cut under FsyncPolicy::Never can leave: the state saved,
    // the last events it covers gone from the log.
    let path = dir.path().join("audit/audit.0000000001.jsonl");
    let text = std::fs::read_to_string(&path).expect("log");
    let kept: Vec<&str> = text.lines().collect();
    let kept = &kept[..kept.len() - 3];
    std::fs::write(
        &path,
        kept.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .expect("cut");
    let e = open(dir.path(), Resume::IfPresent, ManualClock::new(0)).unwrap_err();
    assert!(
        matches!(
            &e,
            HostError::State(hotpath_durable::state::StateError::LogMismatch { mismatch, .. })
                if matches!(**mismatch, hotpath_durable::state::LogMismatch::AheadOfLog { .. })
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("but the log ends at seq"), "{e}");
    // The operator's way out: start fresh over the log, which continues.
    let host = open(dir.path(), Resume::Fresh, ManualClock::new(0)).expect("fresh");
    assert_eq!(host.open_report().first_seq, kept.len() as u64);
    host.shutdown(ShutdownPolicy::default()).expect("shutdown");
    hotpath_durable::verify(dir.path().join("audit")).expect("one sound chain");
    open(dir.path(), Resume::Require, ManualClock::new(0)).expect("the new state fits");
}

#[test]
fn every_state_saved_is_a_checkpoint_of_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(0);
    let mut host = open(dir.path(), Resume::Fresh, clock.clone()).expect("fresh");
    let (path, audit) = (dir.path().join("state.json"), dir.path().join("audit"));
    let mut checked = 0;
    let mut last = None;
    for _ in 0..40 {
        run(&mut host, &clock, 1);
        // Saves wait for the log; give the writer a moment now and then.
        std::thread::sleep(std::time::Duration::from_millis(2));
        host.save_state_if_due().expect("save");
        if let Some(saved) = host.last_saved().cloned() {
            if Some(&saved) != last.as_ref() {
                let on_disk = hotpath_durable::state::StateStore::new(&path, 0)
                    .load()
                    .expect("load")
                    .expect("saved");
                assert_eq!(on_disk, saved);
                hotpath_durable::state::check_against_log(&saved, &path, &audit)
                    .expect("a checkpoint of the log");
                checked += 1;
                last = Some(saved);
            }
        }
    }
    assert!(checked >= 2, "only {checked} saves");
    let closed = host.shutdown(ShutdownPolicy::default()).expect("shutdown");
    let state = hotpath_durable::state::StateStore::new(&path, 0)
        .load()
        .expect("load")
        .expect("saved");
    assert_eq!(state.checkpoint, closed.log.expect("a log").stats.committed);
    assert_eq!(
        state.checkpoint.map(|c| c.seq),
        hotpath_durable::verify(&audit).expect("sound").last_seq
    );
}

#[test]
fn a_state_with_counters_out_of_range_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    run_and_close(dir.path(), 60);
    let saved = state_json(dir.path());
    let total = saved["executor"]["regressions_total"]
        .as_u64()
        .expect("a count");
    let cases: [(&str, serde_json::Value, &str); 2] = [
        (
            "/executor/next_audit_seq",
            (hotpath::MAX_AUDIT_SEQ + 1).into(),
            "next audit seq 4611686018427387905",
        ),
        (
            "/executor/regressions_since_rollback",
            (total + 1).into(),
            "more regressions since the last rollback than in total",
        ),
    ];
    for (field, value, expected) in cases {
        let mut edited = saved.clone();
        *edited.pointer_mut(field).expect("a field") = value;
        write_state(dir.path(), &edited);
        let e = open(dir.path(), Resume::Require, ManualClock::new(0)).unwrap_err();
        let message = e.to_string();
        assert!(message.contains(expected), "{field}: {message}");
        assert!(message.contains("state.json"), "{field}: {message}");
    }
}

#[test]
fn options_beyond_their_limits_are_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (options, option) in [
        (
            HostOptions {
                log_queue_capacity: 1 << 32,
                ..HostOptions::in_dir(dir.path())
            },
            "log_queue_capacity",
        ),
        (
            HostOptions {
                log_queue_capacity: 0,
                ..HostOptions::in_dir(dir.path())
            },
            "log_queue_capacity",
        ),
        (
            HostOptions {
                stall_timeout: std::time::Duration::MAX,
                ..HostOptions::in_dir(dir.path())
            },
            "stall_timeout",
        ),
    ] {
        match Host::open(space(), settings(), options, ManualClock::new(0)) {
            Err(HostError::InvalidOption { option: o, .. }) => assert_eq!(o, option),
            other => panic!("{option}: expected InvalidOption, got {other:?}"),
        }
    }
    assert!(!dir.path().join("audit").exists(), "nothing created");
    let mut host = Host::open(
        space(),
        settings(),
        HostOptions::in_memory(),
        ManualClock::new(0),
    )
    .expect("in memory");
    assert!(matches!(
        host.subscribe(usize::MAX),
        Err(HostError::InvalidOption { .. })
    ));
}
