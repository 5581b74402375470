//! Crash injection: a child process (`src/bin/crash_child.rs`) runs a
//! [`Host`](hotpath_host::Host) (the engine's executor with the audit log
//! and the state file attached, opened through the one restart protocol)
//! and reports each seq it knows is fsync'd;
//! the parent kills it with SIGKILL at a random moment, reopens the log
//! (cutting a torn tail), verifies the chain and checks that every seq any
//! child reported as durable is there.
//!
//! Each log directory goes through a series of such crashes: the next child
//! recovers the log and continues its chain and numbering, so the log must
//! verify from seq 0 across every restart. The child also persists its
//! governed state (rate-limited, atomically); after every kill the state
//! file must load (never torn) as the last state the child reported saved
//! or a later one, and the next child must restore it, with generations
//! still rising.
//!
//! A SIGKILL loses nothing the child handed to the OS, so in half the
//! trials the parent also plays power cut: it cuts the last file at a
//! random offset after the last line known durable (what a machine crash
//! may lose of unsynced data), usually mid-line. Known durable: every seq
//! a child reported durable, and the state file's checkpoint, since a state
//! is saved only once the log has committed the events it covers, except
//! under `FsyncPolicy::Never`, where committed means handed to the OS.
//! There a power cut may take the state's events with it; the next child
//! must then refuse to start (the state is ahead of its log), and the
//! series goes on as an operator would, with the state file removed.
//!
//! `HOTPATH_CRASH_TRIALS` (default 120 kills), `HOTPATH_CRASH_SEED`
//! (default fixed); a failure prints the seed and series to reproduce it.

#![cfg(unix)]

use hotpath::AuditQueue;
use hotpath_durable::audit_log::{verify, AuditLog, AuditLogOptions};
use hotpath_durable::state::StateStore;
use hotpath_testkit::{env_u64, Rng};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Kills per log directory.
const CRASHES_PER_LOG: u64 = 4;

#[derive(Default)]
struct Totals {
    trials: u64,
    with_durable: u64,
    durable_events: u64,
    events: u64,
    truncations: u64,
    power_cuts: u64,
    states_checked: u64,
    refused: u64,
}

/// What the parent knows about a log across its crashes.
#[derive(Default)]
struct Known {
    /// The highest seq any child reported durable.
    durable: Option<u64>,
    /// The seq the next child must start from.
    next_seq: u64,
    /// The generation of the last state a child reported saved.
    saved: Option<u64>,
    /// A power cut took events the state file covers: the next child must
    /// refuse to start.
    state_ahead: bool,
}

fn last_file(dir: &Path) -> std::path::PathBuf {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files.pop().expect("the child created a log file")
}

/// Cuts the last file somewhere after the end of the line of `durable`
/// (anywhere if that line is in an earlier file or there is none).
fn power_cut(dir: &Path, durable: Option<u64>, rng: &mut Rng) -> bool {
    let path = last_file(dir);
    let bytes = std::fs::read(&path).unwrap();
    let keep = durable
        .and_then(|seq| {
            let start = format!("{{\"seq\":{seq},");
            let at = if bytes.starts_with(start.as_bytes()) {
                0
            } else {
                let needle = format!("\n{start}");
                bytes
                    .windows(needle.len())
                    .position(|w| w == needle.as_bytes())?
                    + 1
            };
            let end = bytes[at..].iter().position(|&b| b == b'\n')? + at + 1;
            Some(end as u64)
        })
        .unwrap_or(0);
    let len = bytes.len() as u64;
    if len <= keep + 1 {
        return false;
    }
    let cut_at = rng.range(keep, len - 1);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(cut_at)
        .unwrap();
    true
}

/// One child, killed; the log reopened and checked. Updates `known`.
fn crash_once(root: &Path, known: &mut Known, rng: &mut Rng, totals: &mut Totals) {
    let fsync = ["every", "group:1", "group:5", "never"][rng.range(0, 3) as usize];
    let max_file_bytes = if rng.range(0, 1) == 0 { 4096 } else { 1 << 20 };
    let mut child = Command::new(env!("CARGO_BIN_EXE_hotpath-host-crash-child"))
        .arg(root)
        .args(["--fsync", fsync])
        .args(["--max-file-bytes", &max_file_bytes.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the child starts");
    let stdout = child.stdout.take().expect("piped");
    if known.state_ahead {
        // The state names events a power cut took: the child must refuse,
        // naming both files, and not touch them.
        let status = child.wait().expect("reaped");
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            e.read_to_string(&mut stderr).ok();
        }
        assert!(
            !status.success(),
            "the child started on a state ahead of its log"
        );
        // The cut may have taken every event ("has no events") or some.
        let log_named =
            stderr.contains("but the log ends") || stderr.contains("but the log has no events");
        assert!(
            stderr.contains("does not match the audit log") && log_named,
            "{stderr}"
        );
        drop(stdout);
        std::fs::remove_file(root.join("state.json")).expect("remove the state");
        known.state_ahead = false;
        known.saved = None;
        totals.refused += 1;
        return;
    }
    let (lines_tx, lines_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let ready = lines_rx
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("no ready line from the child: {e}"));
    // The child continues the numbering where the recovered log ends, and
    // restores at least the last saved state's generation.
    let mut words = ready.split(' ');
    assert_eq!(words.next(), Some("ready"), "{ready}");
    assert_eq!(
        words.next(),
        Some(known.next_seq.to_string().as_str()),
        "{ready}"
    );
    let generation: u64 = words
        .next()
        .and_then(|g| g.parse().ok())
        .unwrap_or_else(|| panic!("no generation in {ready:?}"));
    assert!(
        known.saved.is_none_or(|saved| generation >= saved),
        "{ready} after saving {:?}",
        known.saved
    );
    std::thread::sleep(Duration::from_millis(rng.range(5, 50)));
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("reaped");
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut stderr).ok();
    }
    assert_eq!(
        status.signal(),
        Some(9),
        "the child ended before it was killed: {status}; stderr: {stderr}"
    );
    reader.join().expect("reader thread");
    let lines: Vec<String> = lines_rx.try_iter().collect();
    let reported = |prefix: &str| {
        lines
            .iter()
            .filter_map(|l| l.strip_prefix(prefix)?.parse::<u64>().ok())
            .max()
    };
    let durable = reported("durable ");
    known.saved = known.saved.max(reported("saved "));
    // The state file is never torn: it holds the last reported save or a
    // later one.
    let state = StateStore::new(root.join("state.json"), 0)
        .load()
        .unwrap_or_else(|e| panic!("state after the crash: {e}"));
    if let Some(saved) = known.saved {
        let state = state.as_ref().expect("a save was reported");
        assert!(
            state.executor.live.generation >= saved,
            "state at generation {} but {saved} was reported saved",
            state.executor.live.generation
        );
        totals.states_checked += 1;
    }
    // A state is saved only once its events are committed: fsync'd,
    // unless this child never syncs.
    let checkpoint = state.as_ref().and_then(|s| s.checkpoint).map(|c| c.seq);
    let durable_by_state = checkpoint.filter(|_| fsync != "never");
    // (A child reports the recovered log's last seq as durable at once:
    // open fsyncs it. Count only events of its own.)
    if let Some(own) = durable.filter(|&d| d >= known.next_seq) {
        totals.with_durable += 1;
        totals.durable_events += own + 1 - known.next_seq;
    }
    known.durable = known.durable.max(durable);

    let dir = root.join("audit");
    if rng.range(0, 1) == 0 && power_cut(&dir, known.durable.max(durable_by_state), rng) {
        totals.power_cuts += 1;
    }

    // Reopen: the torn tail is cut; the log verifies from 0 and holds every
    // seq any child reported durable.
    let log = AuditLog::open(
        &dir,
        AuditLogOptions::default(),
        Arc::new(AuditQueue::new(16)),
    )
    .unwrap_or_else(|e| panic!("reopen after the crash: {e}"));
    let report = log.open_report().clone();
    known.next_seq = log.next_seq();
    log.shutdown().expect("clean shutdown");
    totals.truncations += u64::from(report.truncated_bytes > 0);

    let verified = verify(&dir).unwrap_or_else(|e| panic!("verify after the crash: {e}"));
    assert_eq!(verified.last_seq, report.last_seq);
    if checkpoint > report.last_seq {
        assert_eq!(
            fsync, "never",
            "the state covers seq {checkpoint:?}, the log ends at {:?}: a state ahead of a synced log",
            report.last_seq
        );
        known.state_ahead = true;
    }
    if let Some(durable) = known.durable {
        assert_eq!(verified.first_seq, Some(0), "{verified:?}");
        // Consecutive from 0 (verify checks that), so every seq up to the
        // highest one reported durable is there.
        assert!(
            known.next_seq > durable,
            "seq {durable} was reported durable but the log ends at {:?} ({report:?})",
            report.last_seq
        );
    }
    totals.events = totals.events.max(verified.events);
}

#[test]
fn sigkill_at_random_moments_loses_no_durable_event() {
    let trials = env_u64("HOTPATH_CRASH_TRIALS", 120);
    let seed = env_u64("HOTPATH_CRASH_SEED", 0x00c0_ffee_d00d_f00d);
    let mut rng = Rng(seed);
    let mut totals = Totals::default();
    let mut logs = 0;
    let started = Instant::now();
    while totals.trials < trials {
        let root = tempfile::tempdir().unwrap();
        let series_seed = rng.next_u64();
        let mut series_rng = Rng(series_seed);
        let mut known = Known::default();
        let crashes = CRASHES_PER_LOG.min(trials - totals.trials);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for _ in 0..crashes {
                crash_once(root.path(), &mut known, &mut series_rng, &mut totals);
            }
        }));
        if let Err(panic) = outcome {
            eprintln!(
                "crash series {logs} failed (HOTPATH_CRASH_SEED={seed}, series seed {series_seed})"
            );
            std::panic::resume_unwind(panic);
        }
        totals.trials += crashes;
        logs += 1;
    }
    eprintln!(
        "crash trials: {} children ({} SIGKILLed) on {logs} logs in {:.1} s (seed {seed}); {} kills after the \
         child reported durable events ({} durable events checked), {} power cuts simulated, {} torn tails cut \
         on reopen, {} persisted states checked, {} starts refused on a state ahead of its log, \
         largest log {} events",
        totals.trials,
        totals.trials - totals.refused,
        started.elapsed().as_secs_f64(),
        totals.with_durable,
        totals.durable_events,
        totals.power_cuts,
        totals.truncations,
        totals.states_checked,
        totals.refused,
        totals.events,
    );
    assert!(
        totals.states_checked * 2 >= totals.trials,
        "too few state saves"
    );
    // The test is only worth something if the children got far enough to
    // report durable events, and if reopening had torn tails to cut.
    assert!(
        totals.with_durable * 3 >= totals.trials,
        "too few durable reports"
    );
    assert!(totals.truncations > 0, "no torn tail was ever cut");
}
