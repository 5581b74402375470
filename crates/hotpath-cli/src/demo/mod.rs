//! `hotpath demo`: the engine tuning a live, in-process workload.
//!
//! The service is the batching pipeline of `workload`: a producer thread
//! reads `batch_size` and `linger_ms` through a [`hotpath::ConfigReader`]
//! and sender threads do real work on every record. The control loop (this
//! thread) measures the mean latency per record every 100 ms, separately
//! for each config generation, and feeds the live generation's measurement
//! to [`AdaptiveEngine::step`] as a digest tagged `.with_generation(…)`.
//!
//! The run has three parts:
//!
//! 1. **Steady load** ([`STEADY_RATE`] records/s, about half the tuning
//!    time): records trickle in, so long lingers only make them wait.
//! 2. **Peak load** ([`PEAK_RATE`] records/s): batches must be large enough
//!    to keep up, so the best linger moves up; the setting tuned for the
//!    steady load now overloads the senders.
//! 3. **Comparison** (the last tenth, 1–6 s): a manual rollback puts the
//!    initial settings back, to measure them under the same peak load.
//!
//! The summary compares the initial and tuned settings under each load.
//! The engine's settings are the embedded `tuning.toml`, read like any
//! config, with `--preset` and `--seed` applied on top.
//!
//! In `--out` the demo keeps what a governed service keeps:
//!
//! * `audit/`: a `hotpath_durable` audit log (group commit every 10 ms, the
//!   library's default) holding every decision, the closing rollback
//!   included. A log left by an earlier run is continued, not replaced: the
//!   new run's events carry on its sequence numbers, generations and hash
//!   chain (a torn final line left by a crash is cut and reported).
//! * `state.json`: the governed state ([`crate::state`]), saved at most
//!   once a second while tuning and once more when tuning ends (the state
//!   as tuned: the closing comparison measures, it does not tune).
//!   `--resume` restores it, as a restarted service would.

mod view;
mod workload;

use crate::audit_log::{self, RunLog, WhenFull};
use crate::cli::DemoArgs;
use crate::config::{self, Override};
use crate::report::{Breakdown, Tally};
use crate::{state, CliError};
use hotpath::{
    AdaptiveEngine, AtomicConfig, Clock, EngineError, SafetyExecutor, SystemClock, TelemetryDigest,
};
use hotpath_durable::state::{GovernedState, StateStore};
use hotpath_durable::AuditLogOptions;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use view::{Status, View};
use workload::Pipeline;

/// Offered load in the first phase, records per second.
pub const STEADY_RATE: u64 = 1500;
/// Offered load after the rise, records per second.
pub const PEAK_RATE: u64 = 12000;
/// Measurement period: one digest per tick.
const TICK: Duration = Duration::from_millis(100);
/// Measurements right after the closing rollback are not counted.
const COMPARE_SETTLE: Duration = Duration::from_millis(500);
/// The pipeline's first measurements (threads starting, allocator warming
/// up) are not fed to the engine.
const WARM_UP: Duration = Duration::from_millis(500);
const DEMO_CONFIG: &str = include_str!("tuning.toml");
/// The state file is saved at most this often while tuning (µs).
const STATE_INTERVAL_US: u64 = 1_000_000;

/// When each part of the run starts and ends.
struct Timeline {
    total: Duration,
    peak_at: Duration,
    tune_end: Duration,
}

impl Timeline {
    fn new(total: Duration) -> Self {
        let compare = (total / 10).clamp(Duration::from_secs(1), Duration::from_secs(6));
        let tune_end = total.saturating_sub(compare);
        Self {
            total,
            peak_at: tune_end * 52 / 100,
            tune_end,
        }
    }

    /// The last fifth of a phase ending at `end` (at least 2 s, at most the
    /// phase).
    fn tail(&self, start: Duration, end: Duration) -> Duration {
        let len = end.saturating_sub(start);
        end.saturating_sub((len / 5).max(Duration::from_secs(2)).min(len))
    }
}

/// A weighted mean of measured objectives.
#[derive(Debug, Clone, Copy, Default)]
struct Mean {
    sum: f64,
    weight: f64,
}

impl Mean {
    fn add(&mut self, y: f64, weight: u64) {
        self.sum += y * weight as f64;
        self.weight += weight as f64;
    }

    fn get(self) -> Option<f64> {
        (self.weight > 0.0).then(|| self.sum / self.weight)
    }
}

/// The figures of the summary.
#[derive(Default)]
struct Scores {
    /// Steady load, initial settings (before the first change).
    steady_initial: Mean,
    /// Steady load, tuned: the centre over the phase's last fifth.
    steady_tuned: Mean,
    /// The first 2 s after the rise.
    peak_shock: Mean,
    /// Peak load, tuned: the centre over the phase's last fifth.
    peak_tuned: Mean,
    /// Peak load, initial settings (the closing comparison).
    peak_initial: Mean,
}

/// Runs the demo.
pub fn run(args: &DemoArgs) -> Result<(), CliError> {
    crate::output::prepare_dir(&args.out)?;
    let mut layers = Override::preset(args.preset);
    layers.push(Override::parse(&format!("seed={}", args.seed)).map_err(CliError::Demo)?);
    let config = config::parse("demo tuning config", DEMO_CONFIG, Path::new(""), &layers)?;
    let params = &config.params;
    let clock = SystemClock::new();
    let mut store = StateStore::new(args.out.join(state::FILE_NAME), STATE_INTERVAL_US);
    let resumed = if args.resume {
        let state = store.load()?.ok_or_else(|| {
            CliError::Demo(format!(
                "--resume: there is no state file {} to resume from (run without --resume first)",
                store.path().display()
            ))
        })?;
        Some(state)
    } else {
        None
    };
    let mut audit = RunLog::open(
        &args.out.join(audit_log::DIR_NAME),
        AuditLogOptions::default(),
        config.engine.audit_capacity,
        WhenFull::Hold,
    )?;
    let mut engine = start_engine(&config, &audit, resumed.as_ref(), clock)?;
    let start_generation = engine.executor().generation();
    let start = engine.executor().centre().to_vec();
    let timeline = Timeline::new(Duration::from_secs(args.duration));
    let mut view = View::new(args.plain, args.preset.name());
    let mut tally = Tally::default();
    let mut scores = Scores::default();
    let now = || Duration::from_micros(clock.now_us());

    let pipeline = Pipeline::start(engine.config(), STEADY_RATE, args.seed)?;
    let steady_tail = timeline.tail(Duration::ZERO, timeline.peak_at);
    let peak_tail = timeline.tail(timeline.peak_at, timeline.tune_end);
    let mut rate = STEADY_RATE;
    let mut last = None;
    let mut next_tick = Instant::now() + TICK;
    for note in log_notes(&audit, resumed.as_ref(), store.path(), params) {
        view.note(0.0, &note)?;
    }
    view.note(
        0.0,
        &format!(
            "offered load {STEADY_RATE} records/s; tuning {}",
            names(&config)
        ),
    )?;
    loop {
        std::thread::sleep(next_tick.saturating_duration_since(Instant::now()));
        next_tick += TICK;
        let elapsed = now();
        if elapsed >= timeline.tune_end {
            break;
        }
        if rate == STEADY_RATE && elapsed >= timeline.peak_at {
            rate = PEAK_RATE;
            pipeline.set_rate(rate);
            view.note(
                elapsed.as_secs_f64(),
                &format!("OFFERED LOAD RISES from {STEADY_RATE} to {PEAK_RATE} records/s"),
            )?;
        }
        let executor = engine.executor();
        let generation = executor.generation();
        let at_centre = executor.snapshot().params.bit_eq(executor.centre());
        let measured = pipeline
            .take()
            .into_iter()
            .find(|b| b.generation == generation && b.records() > 0)
            .filter(|_| elapsed >= WARM_UP);
        if let Some(bucket) = measured {
            let y = bucket.mean_ms();
            let n = bucket.records();
            if rate == STEADY_RATE {
                if generation == start_generation {
                    scores.steady_initial.add(y, n);
                } else if at_centre && elapsed >= steady_tail {
                    scores.steady_tuned.add(y, n);
                }
            } else if elapsed < timeline.peak_at + Duration::from_secs(2) {
                scores.peak_shock.add(y, n);
            } else if at_centre && elapsed >= peak_tail {
                scores.peak_tuned.add(y, n);
            }
            let digest = TelemetryDigest::new(TICK.as_micros() as u64, y, n)
                .with_timestamp(clock.now_us())
                .with_generation(generation);
            tally.step(&engine.step(digest)?);
            last = Some((y, n));
        }
        audit.drain(&engine, |e| {
            tally.event(e);
            view.event(e, params)
        })?;
        state::save_if_due(&mut store, &mut engine)?;
        let phase = if rate == STEADY_RATE {
            "steady load"
        } else {
            "peak load"
        };
        view.frame(
            &status(
                &engine, &config, &tally, phase, rate, elapsed, &timeline, last,
            ),
            false,
        )?;
    }

    // The state as tuned, then the initial settings under the same load.
    let state_path = state::save(&mut store, &mut engine)?;
    let state_saves = store.saves();
    let tuned = engine.executor().centre().to_vec();
    let tuned_tally = tally.clone();
    let iterations = engine.spsa().iteration();
    let engine_stats = engine.stats();
    let noise = engine.noise_sd();
    engine
        .executor_mut()
        .rollback()
        .map_err(|v| CliError::Demo(format!("the closing rollback was refused: {v}")))?;
    view.note(
        now().as_secs_f64(),
        "tuning done; rolling back to the initial settings to measure them under the same load",
    )?;
    let compare_from = now() + COMPARE_SETTLE;
    pipeline.take();
    loop {
        std::thread::sleep(next_tick.saturating_duration_since(Instant::now()));
        next_tick += TICK;
        let elapsed = now();
        let generation = engine.executor().generation();
        if let Some(b) = pipeline
            .take()
            .into_iter()
            .find(|b| b.generation == generation && b.records() > 0)
        {
            if elapsed >= compare_from {
                scores.peak_initial.add(b.mean_ms(), b.records());
            }
            last = Some((b.mean_ms(), b.records()));
        }
        audit.drain(&engine, |e| {
            tally.event(e);
            view.event(e, params)
        })?;
        let done = elapsed >= timeline.total;
        view.frame(
            &status(
                &engine,
                &config,
                &tally,
                "comparing",
                rate,
                elapsed,
                &timeline,
                last,
            ),
            done,
        )?;
        if done {
            break;
        }
    }
    pipeline.shutdown()?;
    let logged = audit.finish(&engine, |e| {
        tally.event(e);
        view.event(e, params)
    })?;
    let chain = hotpath_durable::verify(&logged.dir)?;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nhotpath demo: {} s, seed {}, {} preset",
        args.duration,
        args.seed,
        args.preset.name()
    );
    out.push_str("objective: mean latency per record in ms (lower is better)\n");
    let compare = |out: &mut String, label: &str, initial: Mean, tuned: Mean| {
        let fmt = |m: Mean| m.get().map_or("n/a".to_string(), |y| format!("{y:.2}"));
        let change = match (initial.get(), tuned.get()) {
            (Some(a), Some(b)) if a > 0.0 => format!("  ({:+.0} %)", (b - a) / a * 100.0),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "  {label:<28} initial settings {:>7}   tuned {:>7}{change}",
            fmt(initial),
            fmt(tuned)
        );
    };
    compare(
        &mut out,
        &format!("steady load {STEADY_RATE:>5} records/s"),
        scores.steady_initial,
        scores.steady_tuned,
    );
    compare(
        &mut out,
        &format!("peak load   {PEAK_RATE:>5} records/s"),
        scores.peak_initial,
        scores.peak_tuned,
    );
    if let Some(y) = scores.peak_shock.get() {
        let _ = writeln!(
            out,
            "  just after the rise          {y:.2} (settings tuned for the steady load)"
        );
    }
    out.push_str("settings\n");
    if let Some(resumed) = &resumed {
        let _ = writeln!(
            out,
            "  (resumed from {} at generation {}: \"initial\" is where this run started under the steady load, the baseline under the peak load)",
            state_path.display(),
            resumed.executor.live.generation
        );
    }
    for ((p, start), end) in params.iter().zip(&start).zip(&tuned) {
        let _ = writeln!(out, "  {:<16} {start:.2} -> {end:.2}", p.name);
    }
    out.push_str("decisions\n");
    let _ = writeln!(
        out,
        "  engine           iterations {iterations}, gradients {}, steps rejected {}, noise {}",
        engine_stats.gradients,
        engine_stats.steps_rejected,
        noise.map_or("not calibrated".to_string(), |n| format!("{n:.3} ms"))
    );
    let _ = writeln!(out, "  applied          {}", tuned_tally.applied);
    let _ = writeln!(
        out,
        "  refused          {}",
        Breakdown(&tuned_tally.refused)
    );
    let _ = writeln!(
        out,
        "  rollbacks        {}, then the closing one",
        Breakdown(&tuned_tally.rollbacks)
    );
    let _ = writeln!(
        out,
        "  safe mode        entered {}",
        Breakdown(&tuned_tally.safe_mode)
    );
    out.push_str("outputs\n");
    let _ = writeln!(
        out,
        "  audit log        {}: {} events this run; chain verified: {} events in {} file{}, seq {}, head {}",
        logged.dir.display(),
        logged.forwarded,
        chain.events,
        chain.files,
        if chain.files == 1 { "" } else { "s" },
        audit_log::seq_range(chain.first_seq, chain.last_seq),
        chain.last_hash,
    );
    let _ = writeln!(
        out,
        "  state            {} (saved {state_saves} times; the state as tuned)",
        state_path.display(),
    );
    crate::cli::print(&out)
}

/// The engine, fresh or restored from `saved` (`--resume`), on an
/// executor that continues `audit`'s numbering and generations.
fn start_engine(
    config: &config::TuningConfig,
    audit: &RunLog,
    saved: Option<&GovernedState>,
    clock: SystemClock,
) -> Result<AdaptiveEngine, CliError> {
    let logged_generation = audit.open_report().last_generation;
    let builder = match saved {
        Some(state) => {
            SafetyExecutor::builder(state.config(logged_generation)).restore(state.executor.clone())
        }
        // A fresh start over an existing log publishes above its last
        // generation: generations never repeat within a log.
        None => SafetyExecutor::builder(Arc::new(AtomicConfig::with_generation(
            config.initial(),
            logged_generation.map_or(0, |g| g + 1),
        ))),
    };
    let executor = builder
        .guardrails(config.engine.guardrails.clone())
        .rollback_policy(config.engine.rollback_policy)
        .audit_capacity(config.engine.audit_capacity)
        .audit_sequence_start(audit.next_seq())
        .clock(clock)
        .build()
        .map_err(EngineError::from)?;
    let mut engine = AdaptiveEngine::with_executor(config.engine.clone(), executor)?;
    if let Some(engine_state) = saved.and_then(|s| s.engine.clone()) {
        engine.restore_state(engine_state)?;
    }
    Ok(engine)
}

/// What the view says about the log and state found in `--out`.
fn log_notes(
    audit: &RunLog,
    resumed: Option<&GovernedState>,
    state: &Path,
    params: &[config::ParamSpec],
) -> Vec<String> {
    let report = audit.open_report();
    let mut notes = Vec::new();
    for cut in &report.truncations {
        notes.push(format!(
            "audit log: cut a torn final line ({} bytes at {}:{}: {})",
            cut.bytes,
            cut.file.display(),
            cut.line,
            cut.defect
        ));
    }
    if let Some(last) = report.last_seq {
        notes.push(format!(
            "continuing the audit log in {} after seq {last}",
            audit.dir().display()
        ));
    }
    if let Some(saved) = resumed {
        let centre: Vec<String> = params
            .iter()
            .zip(saved.executor.centre.iter())
            .map(|(p, v)| format!("{} {v:.2}", p.name))
            .collect();
        notes.push(format!(
            "resumed from {} (generation {}, SPSA iteration {}): {}",
            state.display(),
            saved.executor.live.generation,
            saved.engine.as_ref().map_or(0, |e| e.spsa.iteration),
            centre.join(", "),
        ));
    }
    notes
}

fn names(config: &config::TuningConfig) -> String {
    let names: Vec<&str> = config.params.iter().map(|p| p.name.as_str()).collect();
    names.join(" and ")
}

#[allow(clippy::too_many_arguments)]
fn status<'a>(
    engine: &AdaptiveEngine,
    config: &'a config::TuningConfig,
    tally: &'a Tally,
    phase: &'a str,
    rate: u64,
    elapsed: Duration,
    timeline: &Timeline,
    objective: Option<(f64, u64)>,
) -> Status<'a> {
    let executor = engine.executor();
    let reasons: Vec<String> = executor
        .control_safety()
        .reasons()
        .iter()
        .map(|r| r.to_string())
        .collect();
    Status {
        elapsed,
        total: timeline.total,
        phase,
        rate,
        params: &config.params,
        live: executor.snapshot().params.to_vec(),
        objective,
        generation: executor.generation(),
        iteration: engine.spsa().iteration(),
        noise: engine.noise_sd(),
        safe_mode: reasons.join(", "),
        tally,
    }
}
