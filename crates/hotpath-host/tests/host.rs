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
    run(&mut host, &clock, 60);
    let generation = host.executor().generation();
    let iteration = host.engine().spsa().iteration();
    let closed = host.shutdown(ShutdownPolicy::default()).expect("shutdown");
    let logged = closed.log.expect("a log").forwarded;

    let mut again = open(dir.path(), Resume::Require, ManualClock::new(0)).expect("restart");
    let report = again.open_report().clone();
    assert!(report.restored.is_some());
    assert_eq!(report.first_seq, logged, "numbering continues");
    assert!(report.generation >= generation);
    assert_eq!(again.engine().spsa().iteration(), iteration);
    let events = again.subscribe(16);
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
    let slow = host.subscribe(1);
    let fast = host.subscribe(1024);
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
