//! `hotpath demo`: the engine tuning a live, in-process workload.
//!
//! The service is the batching pipeline of `workload`: a producer thread
//! reads `batch_size` (an integer knob), `linger_ms` (a real on a log
//! scale) and `encoding` (a choice of `json`, `csv`, `varint`) through a
//! [`hotpath::ConfigReader`], by typed handles, and sender threads do real
//! work on every record. The view shows SPSA's probe pairs apart from the
//! centre's committed moves (see `view`). The control loop (this
//! thread) measures the mean latency per record every 100 ms, separately
//! for each config generation, and feeds the live generation's measurement
//! to [`Host::step`] as a digest tagged `.with_generation(…)`. The
//! [`Host`] keeps the audit log and the state file, with backpressure from
//! the log reaching the executor ([`WhenFull::Hold`]), as a service's
//! would; the view and the summary read the audit events through a
//! subscription.
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
//!   as tuned: the closing comparison measures, it does not tune, so the
//!   host shuts down without saving). `--resume` restores it
//!   ([`Resume::Require`]), as a restarted service would.
//! * `token`: the operator token of the live status page (see [`page`];
//!   not with `--no-page`).

mod page;
mod view;
mod workload;

use crate::cli::DemoArgs;
use crate::config::{self, Override, TuningConfig};
use crate::named::{self, Digits};
use crate::report::{Breakdown, Tally};
use crate::{audit_log, CliError};
use hotpath::{Clock, EngineStats, SystemClock, TelemetryDigest};
use hotpath_host::{
    Host, HostError, HostOptions, LogSummary, Resume, ShutdownPolicy, Subscription, WhenFull,
};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
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

/// What a run shares between its parts: the clock, the view, the counts
/// and the audit events as the host hands them over.
struct Run<'a> {
    config: &'a TuningConfig,
    clock: SystemClock,
    timeline: Timeline,
    view: View,
    tally: Tally,
    scores: Scores,
    events: Subscription,
    rate: u64,
    last: Option<(f64, u64)>,
    next_tick: Instant,
    page: Option<page::Page>,
}

impl Run<'_> {
    fn now(&self) -> Duration {
        Duration::from_micros(self.clock.now_us())
    }

    /// Sleeps until the next tick; the time since the start.
    fn tick(&mut self) -> Duration {
        std::thread::sleep(self.next_tick.saturating_duration_since(Instant::now()));
        self.next_tick += TICK;
        self.now()
    }

    /// Counts and shows the audit events the host has handed over.
    fn absorb(&mut self) -> Result<(), CliError> {
        while let Some(event) = self.events.try_next() {
            self.tally.event(&event);
            self.view.event(&event, &self.config.space)?;
        }
        Ok(())
    }

    /// A measurement of the live generation: the view's and the page's.
    fn measured(
        &mut self,
        host: &mut Host,
        y: f64,
        n: u64,
        generation: u64,
    ) -> Result<(), CliError> {
        self.last = Some((y, n));
        match &mut self.page {
            Some(page) => {
                let digest = TelemetryDigest::new(TICK.as_micros() as u64, y, n)
                    .with_timestamp(self.clock.now_us())
                    .with_generation(generation);
                page.measured(host, &digest)
            }
            None => Ok(()),
        }
    }

    /// Shows the status at `elapsed` (and has the page catch up).
    fn frame(
        &mut self,
        host: &mut Host,
        phase: &str,
        elapsed: Duration,
        done: bool,
    ) -> Result<(), CliError> {
        if let Some(page) = &mut self.page {
            page.poll(host)?;
        }
        let engine = host.engine();
        let executor = engine.executor();
        let reasons: Vec<String> = executor
            .control_safety()
            .reasons()
            .iter()
            .map(|r| r.to_string())
            .collect();
        let status = Status {
            elapsed,
            total: self.timeline.total,
            phase,
            rate: self.rate,
            params: &self.config.space,
            live: executor.snapshot().params.to_vec(),
            centre: executor.centre().to_vec(),
            objective: self.last,
            generation: executor.generation(),
            iteration: engine.spsa().iteration(),
            noise: engine.noise_sd(),
            safe_mode: reasons.join(", "),
            tally: &self.tally,
        };
        self.view.frame(&status, done)
    }
}

/// The state as tuned, and what the engine did to get there.
struct Tuned {
    centre: Vec<f64>,
    tally: Tally,
    state_path: PathBuf,
    state_saves: u64,
    iterations: u64,
    stats: EngineStats,
    noise: Option<f64>,
}

/// Runs the demo.
pub fn run(args: &DemoArgs) -> Result<(), CliError> {
    // One run at a time in a directory (a replay or another demo).
    let _lock = crate::output::DirLock::take(&args.out)?;
    crate::output::check_writable(&args.out)?;
    crate::output::check_output_file(&args.out.join(crate::state::FILE_NAME), &[])?;
    let mut layers = Override::preset(args.preset);
    layers.push(Override::parse(&format!("seed={}", args.seed)).map_err(CliError::Demo)?);
    let config = config::parse("demo tuning config", DEMO_CONFIG, Path::new(""), &layers)?;
    let clock = SystemClock::new();
    let mut host = open_host(&config, args, clock)?;
    let page = if args.no_page {
        None
    } else {
        Some(page::Page::start(&mut host, &args.out)?)
    };
    if let Some(page) = &page {
        crate::cli::print(&format!("{}\n", page.banner()))?;
    }
    let start = host.executor().centre().to_vec();
    let mut run = Run {
        config: &config,
        clock,
        timeline: Timeline::new(Duration::from_secs(args.duration)),
        view: View::new(args.plain, args.preset.name(), &start),
        tally: Tally::default(),
        scores: Scores::default(),
        events: host.subscribe(config.engine.audit_capacity)?,
        rate: STEADY_RATE,
        last: None,
        next_tick: Instant::now() + TICK,
        page,
    };
    let pipeline = Pipeline::start(host.config(), &config.space, STEADY_RATE, args.seed)?;
    for note in log_notes(&host, &config) {
        run.view.note(0.0, &note)?;
    }
    let knobs: Vec<String> = config
        .space
        .knobs()
        .iter()
        .map(|k| format!("{} ({})", k.name(), named::knob(k)))
        .collect();
    run.view.note(
        0.0,
        &format!(
            "offered load {STEADY_RATE} records/s; tuning {}",
            knobs.join("; ")
        ),
    )?;
    let tuned = tune(&mut host, &mut run, &pipeline)?;
    compare(&mut host, &mut run, &pipeline)?;
    pipeline.shutdown()?;
    // The page stops before the host it shows.
    drop(run.page.take());
    let resumed = host
        .open_report()
        .restored
        .as_ref()
        .map(|s| s.executor.live.generation);
    // The state as tuned was saved when tuning ended: not what the closing
    // comparison measured.
    let closed = host.shutdown(ShutdownPolicy {
        rollback_to_baseline: false,
        save_state: false,
    })?;
    run.absorb()?;
    let logged = closed
        .log
        .ok_or_else(|| CliError::Demo("the demo ran without an audit log".into()))?;
    let chain = hotpath_durable::verify(&logged.dir)?;
    let text = summary(args, &run, &start, &tuned, resumed, &logged, &chain);
    crate::cli::print(&text)
}

/// The host on `--out`: a fresh start over whatever log is there, or
/// (`--resume`) the saved state restored.
fn open_host(config: &TuningConfig, args: &DemoArgs, clock: SystemClock) -> Result<Host, CliError> {
    let options = HostOptions {
        when_full: WhenFull::Hold,
        log_queue_capacity: config.engine.audit_capacity,
        state_save_interval_us: Some(STATE_INTERVAL_US),
        resume: if args.resume {
            Resume::Require
        } else {
            Resume::Fresh
        },
        ..HostOptions::in_dir(&args.out)
    };
    Host::from_config(config, options, clock).map_err(|e| match e {
        HostError::NoState { path } => CliError::Demo(format!(
            "--resume: there is no state file {} to resume from (run without --resume first)",
            path.display()
        )),
        other => other.into(),
    })
}

/// The tuning phases (steady load, then peak load): one digest per tick;
/// ends by saving the state as tuned.
fn tune(host: &mut Host, run: &mut Run, pipeline: &Pipeline) -> Result<Tuned, CliError> {
    let start_generation = host.executor().generation();
    let timeline = &run.timeline;
    let (peak_at, tune_end) = (timeline.peak_at, timeline.tune_end);
    let steady_tail = timeline.tail(Duration::ZERO, peak_at);
    let peak_tail = timeline.tail(peak_at, tune_end);
    loop {
        let elapsed = run.tick();
        if elapsed >= tune_end {
            break;
        }
        if run.rate == STEADY_RATE && elapsed >= peak_at {
            run.rate = PEAK_RATE;
            pipeline.set_rate(run.rate);
            run.view.note(
                elapsed.as_secs_f64(),
                &format!("OFFERED LOAD RISES from {STEADY_RATE} to {PEAK_RATE} records/s"),
            )?;
        }
        let executor = host.executor();
        let generation = executor.generation();
        let at_centre = executor.snapshot().params.bit_eq(executor.centre());
        let measured = pipeline
            .take()
            .into_iter()
            .find(|b| b.generation == generation && b.records() > 0)
            .filter(|_| elapsed >= WARM_UP);
        match measured {
            Some(bucket) => {
                let (y, n) = (bucket.mean_ms(), bucket.records());
                let scores = &mut run.scores;
                if run.rate == STEADY_RATE {
                    if generation == start_generation {
                        scores.steady_initial.add(y, n);
                    } else if at_centre && elapsed >= steady_tail {
                        scores.steady_tuned.add(y, n);
                    }
                } else if elapsed < peak_at + Duration::from_secs(2) {
                    scores.peak_shock.add(y, n);
                } else if at_centre && elapsed >= peak_tail {
                    scores.peak_tuned.add(y, n);
                }
                let digest = TelemetryDigest::new(TICK.as_micros() as u64, y, n)
                    .with_timestamp(run.clock.now_us())
                    .with_generation(generation);
                let outcome = host.step(digest)?;
                run.tally.step(&outcome);
                run.measured(host, y, n, generation)?;
            }
            None => host.maintain()?,
        }
        run.absorb()?;
        let phase = if run.rate == STEADY_RATE {
            "steady load"
        } else {
            "peak load"
        };
        run.frame(host, phase, elapsed, false)?;
    }
    let state_path = host
        .save_state()?
        .ok_or_else(|| CliError::Demo("the demo ran without a state file".into()))?;
    let engine = host.engine();
    Ok(Tuned {
        centre: host.executor().centre().to_vec(),
        tally: run.tally.clone(),
        state_path,
        state_saves: host.state_saves(),
        iterations: engine.spsa().iteration(),
        stats: engine.stats(),
        noise: engine.noise_sd(),
    })
}

/// The closing comparison: the initial settings back (a manual rollback),
/// measured under the same peak load.
fn compare(host: &mut Host, run: &mut Run, pipeline: &Pipeline) -> Result<(), CliError> {
    host.rollback().map_err(|e| match e {
        HostError::Refused(v) => CliError::Demo(format!("the closing rollback was refused: {v}")),
        other => other.into(),
    })?;
    run.view.note(
        run.now().as_secs_f64(),
        "tuning done; rolling back to the initial settings to measure them under the same load",
    )?;
    let compare_from = run.now() + COMPARE_SETTLE;
    pipeline.take();
    loop {
        let elapsed = run.tick();
        let generation = host.executor().generation();
        if let Some(b) = pipeline
            .take()
            .into_iter()
            .find(|b| b.generation == generation && b.records() > 0)
        {
            if elapsed >= compare_from {
                run.scores.peak_initial.add(b.mean_ms(), b.records());
            }
            run.measured(host, b.mean_ms(), b.records(), generation)?;
        }
        host.drain()?;
        run.absorb()?;
        let done = elapsed >= run.timeline.total;
        run.frame(host, "comparing", elapsed, done)?;
        if done {
            return Ok(());
        }
    }
}

/// The closing summary: the scores, the settings, the decisions, the
/// outputs.
fn summary(
    args: &DemoArgs,
    run: &Run,
    start: &[f64],
    tuned: &Tuned,
    resumed: Option<u64>,
    logged: &LogSummary,
    chain: &hotpath_durable::VerifyReport,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nhotpath demo: {} s, seed {}, {} preset",
        args.duration,
        args.seed,
        args.preset.name()
    );
    out.push_str("objective: mean latency per record in ms (lower is better)\n");
    let scores = &run.scores;
    compare_line(
        &mut out,
        &format!("steady load {STEADY_RATE:>5} records/s"),
        scores.steady_initial,
        scores.steady_tuned,
    );
    compare_line(
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
    if let Some(generation) = resumed {
        let _ = writeln!(
            out,
            "  (resumed from {} at generation {generation}: \"initial\" is where this run started under the steady load, the baseline under the peak load)",
            tuned.state_path.display(),
        );
    }
    let space = &run.config.space;
    for (i, (start, end)) in start.iter().zip(&tuned.centre).enumerate() {
        let shown = |v: f64| named::value(space.value(i, v), Digits::Two);
        let _ = writeln!(
            out,
            "  {:<16} {} -> {}",
            space.name(i),
            shown(*start),
            shown(*end)
        );
    }
    out.push_str("decisions\n");
    let _ = writeln!(
        out,
        "  engine           iterations {}, gradients {}, steps rejected {}, noise {}",
        tuned.iterations,
        tuned.stats.gradients,
        tuned.stats.steps_rejected,
        tuned
            .noise
            .map_or("not calibrated".to_string(), |n| format!("{n:.3} ms"))
    );
    let tally = &tuned.tally;
    let _ = writeln!(out, "  applied          {}", tally.applied);
    let _ = writeln!(out, "  refused          {}", Breakdown(&tally.refused));
    let _ = writeln!(
        out,
        "  rollbacks        {}, then the closing one",
        Breakdown(&tally.rollbacks)
    );
    let _ = writeln!(
        out,
        "  safe mode        entered {}",
        Breakdown(&tally.safe_mode)
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
        "  state            {} (saved {} times; the state as tuned)",
        tuned.state_path.display(),
        tuned.state_saves,
    );
    out
}

/// One line of the before/after comparison.
fn compare_line(out: &mut String, label: &str, initial: Mean, tuned: Mean) {
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
}

/// What the view says about the log and state found in `--out`.
fn log_notes(host: &Host, config: &TuningConfig) -> Vec<String> {
    let report = host.open_report();
    let mut notes = Vec::new();
    if let Some(log) = &report.log {
        for cut in &log.truncations {
            notes.push(format!(
                "audit log: cut a torn final line ({} bytes at {}:{}: {})",
                cut.bytes,
                cut.file.display(),
                cut.line,
                cut.defect
            ));
        }
        if let (Some(last), Some(dir)) = (log.last_seq, host.log_dir()) {
            notes.push(format!(
                "continuing the audit log in {} after seq {last}",
                dir.display()
            ));
        }
    }
    if let (Some(saved), Some(state)) = (&report.restored, host.state_file()) {
        notes.push(format!(
            "resumed from {} (generation {}, SPSA iteration {}): {}",
            state.display(),
            saved.executor.live.generation,
            saved.engine.as_ref().map_or(0, |e| e.spsa.iteration),
            named::values(&config.space, &saved.executor.centre, Digits::Two),
        ));
    }
    notes
}
