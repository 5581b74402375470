//! The child process of the crash-injection test (`tests/crash.rs`): a
//! [`Host`] applying proposals, its audit log and state file attached,
//! until it is killed. It starts, fresh or after a crash, through
//! [`Host::open`], the one restart protocol.
//!
//! ```text
//! hotpath-host-crash-child <dir> [--fsync every|never|group:<ms>]
//!                             [--max-file-bytes <n>] [--pace-us <n>] [--max-ms <n>]
//! ```
//!
//! The log lives in `<dir>/audit` and the governed state in
//! `<dir>/state.json` ([`HostOptions::in_dir`]); an existing log is
//! recovered and continued (the executor numbers its events from the log's
//! `next_seq`) and an existing state is restored (generations keep rising
//! past the log's). On stdout, one line each, flushed:
//!
//! * `ready <next_seq> <generation>` once the host is open (its executor's
//!   `Started` or `Restored` event has that seq);
//! * `durable <seq>` each time the log's `durable_seq` rises: every event up
//!   to `seq` is fsync'd, so it must be in the log whenever the process dies;
//! * `saved <generation>` after each state save, with the saved state's
//!   generation (atomic: a restart finds this state or a later one; saved
//!   only once the log committed the events it covers).
//!
//! It applies a proposal every `--pace-us` µs (default 20) on a manual
//! clock that advances 1.1 ms per apply (so the rate limit admits them),
//! with one refused proposal in 16, and exits by itself after `--max-ms`
//! (default 10 000) in case its parent died.

use hotpath::{
    AdaptiveEngineConfig, Guardrails, Knob, ManualClock, ParamSpace, ParamVec, Proposal,
};
use hotpath_durable::{AuditLogOptions, FsyncPolicy};
use hotpath_host::{Host, HostError, HostOptions, Resume, ShutdownPolicy, WhenFull};
use std::error::Error;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    dir: PathBuf,
    options: AuditLogOptions,
    pace: Duration,
    max_run: Duration,
}

fn parse_args() -> Result<Args, Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: <dir> [options]")?);
    let mut options = AuditLogOptions::default();
    let mut pace = Duration::from_micros(20);
    let mut max_run = Duration::from_secs(10);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--fsync" => {
                options.fsync = match value.as_str() {
                    "every" => FsyncPolicy::Every,
                    "never" => FsyncPolicy::Never,
                    other => FsyncPolicy::GroupCommit {
                        interval_ms: other
                            .strip_prefix("group:")
                            .ok_or_else(|| format!("unknown fsync policy {other}"))?
                            .parse()?,
                    },
                }
            }
            "--max-file-bytes" => options.max_file_bytes = value.parse()?,
            "--pace-us" => pace = Duration::from_micros(value.parse()?),
            "--max-ms" => max_run = Duration::from_millis(value.parse()?),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    Ok(Args {
        dir,
        options,
        pace,
        max_run,
    })
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let args = parse_args()?;
    let started = Instant::now();
    let clock = ManualClock::new(0);
    let space = Arc::new(ParamSpace::new(vec![
        Knob::unbounded("a", 0.5),
        Knob::unbounded("b", 0.5),
    ])?);
    let settings = AdaptiveEngineConfig {
        guardrails: Guardrails {
            min_interval_us: 0,
            max_updates_per_second: 1000.0,
            ..Guardrails::default()
        },
        ..AdaptiveEngineConfig::default()
    };
    let options = HostOptions {
        log: args.options,
        when_full: WhenFull::Hold,
        // Saves at most every 5 ms of the manual clock (about 5 applies).
        state_save_interval_us: Some(5_000),
        resume: Resume::IfPresent,
        ..HostOptions::in_dir(&args.dir)
    };
    let mut host = Host::open(space, settings, options, clock.clone())?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "ready {} {}",
        host.open_report().first_seq,
        host.open_report().generation
    )?;
    out.flush()?;

    let mut reported = None;
    let mut i = 0u64;
    while started.elapsed() < args.max_run {
        i += 1;
        clock.advance(1_100);
        let step = if i.is_multiple_of(2) { -0.01 } else { 0.01 };
        let delta = if i.is_multiple_of(16) {
            ParamVec::from_slice(&[f64::NAN, 0.0]) // refused: NonFinite
        } else {
            ParamVec::from_slice(&[step, -step])
        };
        // Refusals are part of the trail (successes reset the malformed
        // count, so one in 16 never latches safe mode); a full queue is the
        // log's backpressure, which the executor leaves by itself.
        match host.apply(Proposal::ApplyPlus {
            perturbation_id: i,
            delta,
        }) {
            Ok(_) | Err(HostError::Refused(_)) => {}
            Err(e) => return Err(e.into()),
        }
        if host.save_state_if_due()? {
            // The state written may be one taken a little earlier (saves
            // wait for the log to commit the events they cover).
            let saved = host.last_saved().map(|s| s.executor.live.generation);
            writeln!(out, "saved {}", saved.unwrap_or(0))?;
            out.flush()?;
        }
        let durable = host.durable_seq();
        if durable > reported {
            if let Some(seq) = durable {
                writeln!(out, "durable {seq}")?;
                out.flush()?;
            }
            reported = durable;
        }
        std::thread::sleep(args.pace);
    }
    host.shutdown(ShutdownPolicy {
        rollback_to_baseline: false,
        save_state: false,
    })?;
    Ok(())
}
