//! Crash consistency of the `hotpath` binary itself: `replay` and `demo`
//! are SIGKILLed at random moments, and what they leave must follow the
//! documented rules (crates/hotpath-cli/src/output.rs, the CLI README):
//!
//! * `replay`: the output directory holds, byte for byte, either the
//!   complete previous set of outputs or the complete new one, never a mix
//!   and never a partial file under a final name; it verifies with
//!   `hotpath audit verify`; what a killed run leaves is hidden (a staging
//!   directory beside it) and removed by the next run.
//! * `demo`: the state file, if any, loads and is a checkpoint of the log
//!   (never ahead of it); the log, once reopened (a torn final line cut),
//!   verifies; the next `demo --resume` starts from them.
//!
//! `HOTPATH_CLI_CRASH_TRIALS` (default 30 replay kills),
//! `HOTPATH_CLI_CRASH_DEMO_TRIALS` (default 6 demo kills) and
//! `HOTPATH_CRASH_SEED` change that; a failure prints the seed.

#![cfg(unix)]

use hotpath::AuditQueue;
use hotpath_durable::audit_log::{AuditLog, AuditLogOptions};
use hotpath_durable::state::{check_against_log, StateStore};
use hotpath_testkit::{env_u64, listing, snapshot, Rng};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::{data, hotpath_process as hotpath};

/// `hotpath audit verify PATH` succeeds.
fn verifies(path: &Path) -> bool {
    hotpath()
        .args(["audit", "verify"])
        .arg(path)
        .status()
        .expect("verify runs")
        .success()
}

/// A replay of `telemetry` into `out`, with `preset`.
fn replay(telemetry: &Path, out: &Path, preset: &str) -> Command {
    let mut cmd = common::replay_process(&data("tuning.toml"), telemetry, out);
    cmd.args(["--preset", preset]);
    cmd
}

#[test]
fn a_killed_replay_leaves_the_previous_outputs_or_the_new_ones_never_a_mix() {
    let trials = env_u64("HOTPATH_CLI_CRASH_TRIALS", 30);
    let seed = env_u64("HOTPATH_CRASH_SEED", 0x5eed_0fc0_ffee);
    let mut rng = Rng(seed);
    let root = tempfile::tempdir().expect("tempdir");
    let telemetry = root.path().join("long.jsonl");
    common::long_telemetry(&telemetry, 20_000);
    // The two complete sets a trial may leave, made by runs left alone.
    let presets = ["balanced", "conservative"];
    let mut sets = Vec::new();
    let mut slowest = Duration::ZERO;
    for preset in presets {
        let reference = root.path().join(format!("ref-{preset}"));
        let started = Instant::now();
        assert!(replay(&telemetry, &reference, preset)
            .status()
            .expect("runs")
            .success());
        slowest = slowest.max(started.elapsed());
        sets.push(snapshot(&reference));
    }
    assert_ne!(sets[0], sets[1], "the presets must differ");
    let out = root.path().join("out");
    assert!(replay(&telemetry, &out, presets[0])
        .status()
        .expect("runs")
        .success());
    let mut current = 0;
    let (mut killed, mut completed) = (0, 0);
    for trial in 0..trials {
        let next = 1 - current;
        let mut child = replay(&telemetry, &out, presets[next])
            .spawn()
            .expect("spawn");
        // Anywhere from the start to a little past the usual end.
        let budget = slowest.as_micros() as u64 * 6 / 5;
        std::thread::sleep(Duration::from_micros(rng.range(0, budget)));
        let _ = child.kill();
        let status = child.wait().expect("reaped");
        let context = format!("trial {trial} (HOTPATH_CRASH_SEED={seed}): {status}");
        if status.signal() == Some(9) {
            killed += 1;
        } else {
            assert!(status.success(), "{context}");
            completed += 1;
        }
        let found = snapshot(&out);
        let which = sets.iter().position(|s| *s == found).unwrap_or_else(|| {
            panic!(
                "{context}: a mixed or partial output set: {:?}",
                found.keys()
            )
        });
        assert!(which == current || which == next, "{context}");
        assert!(verifies(&out), "{context}: the log does not verify");
        // Anything else is hidden and belongs to this directory's runs.
        for name in listing(root.path()) {
            assert!(
                ["long.jsonl", "out", "ref-balanced", "ref-conservative"].contains(&name.as_str())
                    || name.starts_with(".out.hotpath-"),
                "{context}: {name} left beside the output"
            );
        }
        current = which;
    }
    // A run left alone cleans up what the killed ones left.
    assert!(replay(&telemetry, &out, presets[current])
        .status()
        .expect("runs")
        .success());
    assert_eq!(
        listing(root.path()),
        ["long.jsonl", "out", "ref-balanced", "ref-conservative"]
    );
    eprintln!(
        "replay crash trials: {trials} (seed {seed}): {killed} killed, {completed} completed before the kill"
    );
    assert!(killed > 0, "no replay was ever killed");
}

#[test]
fn a_killed_demo_leaves_a_state_that_is_a_checkpoint_of_its_log() {
    let trials = env_u64("HOTPATH_CLI_CRASH_DEMO_TRIALS", 6);
    let seed = env_u64("HOTPATH_CRASH_SEED", 0x5eed_0fc0_ffee);
    let mut rng = Rng(seed ^ 0xdead_beef);
    let root = tempfile::tempdir().expect("tempdir");
    let out = root.path().join("demo");
    let state_path = out.join("state.json");
    let audit = out.join("audit");
    let mut states = 0;
    for trial in 0..trials {
        let context = format!("demo trial {trial} (HOTPATH_CRASH_SEED={seed})");
        let resume = state_path.exists();
        let mut cmd = hotpath();
        cmd.args(["demo", "--duration", "3", "--plain", "--seed"])
            .arg(trial.to_string())
            .arg("--out")
            .arg(&out);
        if resume {
            cmd.arg("--resume");
        }
        let mut child = cmd.spawn().expect("spawn");
        std::thread::sleep(Duration::from_millis(300 + rng.range(0, 3_000)));
        let _ = child.kill();
        let output = child.wait_with_output().expect("reaped");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.signal() == Some(9) || output.status.success(),
            "{context}: {} {stderr}",
            output.status
        );
        // The log reopens (a torn final line cut) and verifies.
        if audit.exists() {
            let log = AuditLog::open(
                &audit,
                AuditLogOptions::default(),
                Arc::new(AuditQueue::new(8)),
            )
            .unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
            log.shutdown().expect("clean shutdown");
            assert!(verifies(&out), "{context}: the log does not verify");
        }
        // The state, if saved, loads and is a checkpoint of the log.
        if let Some(state) = StateStore::new(&state_path, 0)
            .load()
            .unwrap_or_else(|e| panic!("{context}: state: {e}"))
        {
            check_against_log(&state, &state_path, &audit)
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            states += 1;
        }
    }
    // And the next run resumes from what the last one left.
    if state_path.exists() {
        let status = hotpath()
            .args(["demo", "--duration", "3", "--plain", "--resume", "--out"])
            .arg(&out)
            .status()
            .expect("runs");
        assert!(status.success(), "the demo does not resume after the kills");
        assert!(verifies(&out));
    }
    eprintln!("demo crash trials: {trials} (seed {seed}), {states} states checked against the log");
}
