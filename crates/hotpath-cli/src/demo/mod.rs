//! `hotpath demo`: the engine tuning a live, in-process workload.
//!
//! The service is the batching pipeline of [`workload`]: a producer thread
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
//! The audit log (`audit.jsonl`, including the closing rollback) and the
//! state as tuned (`state.json`, written before the comparison) go to
//! `--out`. The engine's settings are the embedded `tuning.toml`, read like
//! any config, with `--preset` and `--seed` applied on top.

mod view;
mod workload;

use crate::cli::DemoArgs;
use crate::config::{self, Override};
use crate::report::{Breakdown, Tally};
use crate::{audit_log, state, CliError};
use hotpath::{AdaptiveEngine, Clock, SystemClock, TelemetryDigest};
use std::fmt::Write as _;
use std::path::Path;
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
    let mut engine = AdaptiveEngine::with_clock(config.engine.clone(), config.initial(), clock)?;
    let mut audit = audit_log::create(&args.out)?;
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
                if generation == 0 {
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
        audit_log::drain(&engine, audit.as_mut(), |e| {
            tally.event(e);
            view.event(e, params)
        })?;
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
    let state_path = state::write(&args.out.join(state::FILE_NAME), params, &engine)?;
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
        audit_log::drain(&engine, audit.as_mut(), |e| {
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
    let audit_path = audit.commit()?;

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
    for ((p, start), end) in params.iter().zip(config.initial().iter()).zip(&tuned) {
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
    let _ = writeln!(
        out,
        "wrote {} and {}",
        audit_path.display(),
        state_path.display()
    );
    crate::cli::print(&out)
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
