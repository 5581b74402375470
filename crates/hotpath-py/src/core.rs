//! [`Core`]: what an `Engine` holds behind its mutex, with no Python in
//! it: the [`Host`] (engine, durable log, state file), a subscription to
//! its audit events and the recent ones, kept for `Engine.audit`.
//!
//! The native benchmark (`hotpath._bench_native_steps`) runs the same
//! [`Core::step`] as `Engine.step`, so the difference between the two is
//! the binding's own cost.

use hotpath::{
    AdaptiveEngineConfig, AuditEvent, Clock, ManualClock, ParamSpace, ParamVec, SafeModeExit,
    StepOutcome, SystemClock, TelemetryDigest,
};
use hotpath_host::{Host, HostError, HostOptions, OpenReport, Subscription};
use serde_json::{json, Value as Json};
use std::collections::VecDeque;
use std::sync::Arc;

/// The audit events an engine keeps for `Engine.audit` by default (its
/// `audit_history=4096`).
pub const DEFAULT_AUDIT_HISTORY: usize = 4096;

/// The engine's clock: the process's monotonic clock, or a manual one that
/// only `Engine.advance_clock` moves (deterministic tests and replays).
#[derive(Debug, Clone)]
pub enum EngineClock {
    /// [`SystemClock`], from the engine's creation.
    System(SystemClock),
    /// [`ManualClock`], shared with the engine.
    Manual(ManualClock),
}

impl Clock for EngineClock {
    fn now_us(&self) -> u64 {
        match self {
            EngineClock::System(c) => c.now_us(),
            EngineClock::Manual(c) => c.now_us(),
        }
    }
}

/// The settings `Engine(...)` takes; the rest are the library's defaults
/// (every setting is in the TOML config, `Engine.from_config`).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The guardrails (their bounds come from the knobs).
    pub guardrails: hotpath::Guardrails,
    /// The rollback policy.
    pub rollback: hotpath::RollbackPolicy,
    /// The seed of the perturbations.
    pub seed: u64,
    /// Digests per evaluation window.
    pub eval_window_digests: usize,
    /// How long a window may take to fill (µs).
    pub eval_window_us: u64,
    /// How long after a change digests are ignored (µs).
    pub settle_time_us: u64,
    /// Measured gains (`true`) or the fixed defaults.
    pub calibration: bool,
}

impl Default for Settings {
    fn default() -> Self {
        let engine = AdaptiveEngineConfig::default();
        Self {
            guardrails: engine.guardrails,
            rollback: engine.rollback_policy,
            seed: engine.seed,
            eval_window_digests: engine.spsa.eval_window_digests,
            eval_window_us: engine.spsa.eval_window_us,
            settle_time_us: engine.spsa.settle_time_us,
            calibration: engine.calibration.is_some(),
        }
    }
}

impl Settings {
    /// The engine's settings over `space`.
    pub fn engine(&self, space: &ParamSpace) -> AdaptiveEngineConfig {
        let defaults = AdaptiveEngineConfig::default();
        AdaptiveEngineConfig {
            spsa: hotpath::SpsaConfig {
                eval_window_digests: self.eval_window_digests,
                eval_window_us: self.eval_window_us,
                settle_time_us: self.settle_time_us,
                ..defaults.spsa
            },
            guardrails: hotpath::Guardrails {
                bounds: space.guardrail_bounds(),
                ..self.guardrails.clone()
            },
            rollback_policy: self.rollback,
            seed: self.seed,
            calibration: if self.calibration {
                defaults.calibration
            } else {
                None
            },
            ..defaults
        }
    }
}

/// One step's digest as `Engine.step` takes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Digest {
    /// The objective over the window (lower is better).
    pub objective: f64,
    /// Samples it summarises.
    pub samples: u64,
    /// The generation the samples were measured under.
    pub generation: Option<u64>,
    /// The constraint margin (negative: infeasible).
    pub margin: Option<f64>,
    /// The window's length; `None`: the time since the previous digest.
    pub window_us: Option<u64>,
    /// When it was measured; `None`: now, on the engine's clock.
    pub t_us: Option<u64>,
}

/// What one step did.
#[derive(Debug, Clone)]
pub struct Stepped {
    /// The engine's decision and the executor's verdict.
    pub outcome: StepOutcome,
    /// The live values before the step (a move's delta is relative to them).
    pub before: ParamVec,
    /// The live generation after the step.
    pub generation: u64,
}

/// The host and the binding's bookkeeping beside it.
pub struct Core {
    host: Host<EngineClock>,
    events: Subscription,
    history: VecDeque<AuditEvent>,
    capacity: usize,
    /// Events that fell out of `history` (older than its capacity).
    forgotten: u64,
    /// The previous digest's time, from which a default window is measured.
    last_us: u64,
}

impl Core {
    /// Opens the host (see [`Host::open`]) and subscribes to its events,
    /// keeping the latest `history` of them (at least 1).
    ///
    /// # Errors
    ///
    /// As [`Host::open`].
    pub fn open(
        space: Arc<ParamSpace>,
        settings: AdaptiveEngineConfig,
        options: HostOptions,
        clock: EngineClock,
        history: usize,
    ) -> Result<Self, HostError> {
        let subscription_capacity = settings.audit_capacity.max(1);
        let last_us = clock.now_us();
        let mut host = Host::open(space, settings, options, clock)?;
        let events = host.subscribe(subscription_capacity)?;
        let capacity = history.max(1);
        let mut core = Self {
            host,
            events,
            history: VecDeque::with_capacity(capacity.min(4096)),
            capacity,
            forgotten: 0,
            last_us,
        };
        // The start's events were recorded before the subscription.
        let opening = core.host.open_report().events.clone();
        for event in opening {
            core.keep(event);
        }
        core.collect();
        Ok(core)
    }

    /// The host.
    pub fn host(&self) -> &Host<EngineClock> {
        &self.host
    }

    /// What opening found and recovered.
    pub fn open_report(&self) -> &OpenReport {
        self.host.open_report()
    }

    /// Feeds one digest through the host (decide, apply, log, save if due).
    ///
    /// # Errors
    ///
    /// As [`Host::step`]: a refused digest changes nothing.
    pub fn step(&mut self, d: Digest) -> Result<Stepped, HostError> {
        let at = d
            .t_us
            .unwrap_or_else(|| self.host.engine().executor().clock().now_us());
        let window_us = d.window_us.unwrap_or(at.saturating_sub(self.last_us));
        let mut digest = TelemetryDigest::new(window_us, d.objective, d.samples);
        if let Some(t) = d.t_us {
            digest = digest.with_timestamp(t);
        }
        if let Some(g) = d.generation {
            digest = digest.with_generation(g);
        }
        if let Some(m) = d.margin {
            digest = digest.with_constraint_margin(m);
        }
        let before = self.host.config().load().params;
        let result = self.host.step(digest);
        self.collect();
        let outcome = result?;
        self.last_us = self.last_us.max(at);
        Ok(Stepped {
            outcome,
            before,
            generation: self.host.config().generation(),
        })
    }

    /// Runs `call` on the host (an operator's request), then collects the
    /// events it made.
    pub fn operate<T>(
        &mut self,
        call: impl FnOnce(&mut Host<EngineClock>) -> Result<T, HostError>,
    ) -> Result<T, HostError> {
        let result = call(&mut self.host);
        self.collect();
        result
    }

    /// Moves the subscription's events into the history.
    fn collect(&mut self) {
        while let Some(event) = self.events.try_next() {
            self.keep(event);
        }
    }

    /// Holds `event`, forgetting the oldest beyond the capacity.
    fn keep(&mut self, event: AuditEvent) {
        if self.history.len() == self.capacity {
            self.history.pop_front();
            self.forgotten += 1;
        }
        self.history.push_back(event);
    }

    /// The held events after `after` (all held without it), oldest first,
    /// at most `limit`.
    pub fn audit(&self, after: Option<u64>, limit: Option<usize>) -> Vec<AuditEvent> {
        let start = match after {
            Some(after) => self.history.partition_point(|e| e.seq <= after),
            None => 0,
        };
        let end = limit.map_or(self.history.len(), |l| {
            start.saturating_add(l).min(self.history.len())
        });
        self.history.range(start..end).cloned().collect()
    }

    /// Shuts the host down (see [`Host::shutdown`]).
    ///
    /// # Errors
    ///
    /// As [`Host::shutdown`].
    pub fn shutdown(self, policy: hotpath_host::ShutdownPolicy) -> Result<Json, HostError> {
        let report = self.host.shutdown(policy)?;
        Ok(json!({
            "rolled_back": report.rollback.is_some(),
            "events_logged": report.log.as_ref().map(|l| l.forwarded),
            "state_file": report.state_file.as_ref().map(|p| p.display().to_string()),
            "state_saves": report.state_saves,
        }))
    }

    /// The status document (the shape of `hotpath serve`'s `/v1/status`
    /// where they share fields), and the values it names in the live
    /// encoding (a JSON object sorts its keys; the binding names them in
    /// the knobs' order).
    pub fn status(&self) -> (Json, StatusValues) {
        let host = &self.host;
        let executor = host.executor();
        let space = host.space();
        let snapshot = executor.snapshot();
        let named =
            |values: &[f64]| serde_json::to_value(space.named(values)).unwrap_or(Json::Null);
        let engine = host.engine();
        let stage = engine.stage().name();
        let stats = executor.stats();
        let values = StatusValues {
            live: snapshot.params.clone(),
            centre: ParamVec::from_slice(executor.centre()),
            baseline: executor.baseline().map(|b| b.snapshot.params.clone()),
        };
        let document = json!({
            "generation": snapshot.generation,
            "values": named(&snapshot.params),
            "centre": {
                "generation": executor.centre_generation(),
                "values": named(executor.centre()),
            },
            "baseline": executor.baseline().map(|b| json!({
                "generation": b.snapshot.generation,
                "values": named(&b.snapshot.params),
            })),
            "safe_mode": safe_mode(executor.control_safety()),
            "engine": {
                "stage": stage,
                "iteration": engine.spsa().iteration(),
                "noise_sd": engine.noise_sd().filter(|sd| sd.is_finite()),
            },
            "counts": {
                "applied": stats.applied,
                "refused": stats.refused,
                "rollbacks": stats.rollbacks,
                "audit_dropped": stats.audit_dropped,
                "clock_faults": stats.clock_faults,
                "engine": serde_json::to_value(engine.stats()).unwrap_or(Json::Null),
            },
            "audit": {
                "log_dir": host.log_dir().map(|p| p.display().to_string()),
                "logged_events": host.logged_events(),
                "durable_seq": host.durable_seq(),
                "held": self.history.len(),
                "oldest_seq": self.history.front().map(|e| e.seq),
                "forgotten": self.forgotten,
                "lost": self.events.lost(),
            },
            "clock_us": executor.clock().now_us(),
        });
        (document, values)
    }
}

/// The values a status names: `values`, `centre.values` and
/// `baseline.values`, in the live encoding.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusValues {
    /// The live values.
    pub live: ParamVec,
    /// The centre's.
    pub centre: ParamVec,
    /// The baseline's, if one is set.
    pub baseline: Option<ParamVec>,
}

/// Safe mode and its reasons, as `hotpath serve` shows them.
fn safe_mode(safety: &hotpath::ControlSafety) -> Json {
    let reasons: Vec<Json> = safety
        .reasons()
        .iter()
        .map(|reason| {
            let exit = safety.exit_of(reason).unwrap_or(SafeModeExit::Never);
            let (exit, exit_at_us) = (exit.name(), exit.at_us());
            json!({
                "reason": crate::convert::variant_name(&reason),
                "description": reason.to_string(),
                "exit": exit,
                "exit_at_us": exit_at_us,
            })
        })
        .collect();
    json!({"active": safety.is_latched(), "reasons": reasons})
}

/// Runs `n` steps natively: the loop of the Python benchmark (advance the
/// manual clock 100 ms, read the live config, objective `1 + (x − 3)² /
/// 100` of the first knob, step with the generation read) on an in-memory
/// engine over `space`. Returns the seconds the loop took.
///
/// # Errors
///
/// As [`Core::open`] and [`Core::step`].
pub fn native_steps(space: Arc<ParamSpace>, seed: u64, n: u64) -> Result<f64, HostError> {
    let clock = ManualClock::new(0);
    let settings = Settings {
        seed,
        ..Settings::default()
    }
    .engine(&space);
    let mut core = Core::open(
        space,
        settings,
        HostOptions::in_memory(),
        EngineClock::Manual(clock.clone()),
        DEFAULT_AUDIT_HISTORY,
    )?;
    let mut reader = core.host.reader();
    let start = std::time::Instant::now();
    for _ in 0..n {
        clock.advance(100_000);
        let snap = reader.get();
        let x = snap.params.first().copied().unwrap_or(0.0);
        let generation = snap.generation;
        core.step(Digest {
            objective: 1.0 + (x - 3.0).powi(2) / 100.0,
            samples: 50,
            generation: Some(generation),
            margin: None,
            window_us: None,
            t_us: None,
        })?;
    }
    Ok(start.elapsed().as_secs_f64())
}
