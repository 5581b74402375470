//! What `GET /v1/status` shows, built by the control thread after every
//! command and tick and read by handlers without asking it.

use crate::audit::EventView;
use crate::fleet::FleetStatus;
use crate::names::type_name;
use crate::window::WindowView;
use hotpath::{Clock, ControlSafety, EngineStats, ParamSpace, SafeModeExit};
use hotpath_host::Host;
use serde::Serialize;
use std::sync::Arc;

/// The governed tuner's state, as one JSON document.
///
/// ```
/// # use hotpath_server::Status;
/// fn summary(s: &Status) -> String {
///     format!("gen {} stage {} safe mode {}", s.generation, s.engine.stage, s.safe_mode.active)
/// }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The live generation.
    pub generation: u64,
    /// The live values, `{name: typed value}`.
    pub values: KnobValues,
    /// Safe mode and its reasons.
    pub safe_mode: SafeModeView,
    /// The baseline a rollback restores, if one is set.
    pub baseline: Option<BaselineView>,
    /// Where the engine is.
    pub engine: EngineView,
    /// Counters.
    pub counts: Counts,
    /// The aggregation window now open, if any.
    pub window: Option<WindowView>,
    /// The audit log.
    pub audit: AuditStatus,
    /// The latest decisions (applies, refusals, rollbacks, baselines,
    /// safe-mode entries and exits, resumes), oldest first.
    pub last_decisions: Vec<Arc<EventView>>,
    /// In fleet mode: this instance's role, the leader, the coordinator.
    /// On a standby the rest of the status is the fleet's last published
    /// state (its counters are this instance's view's, not the leader's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetStatus>,
}

/// Safe mode: whether it is latched, and why.
///
/// ```
/// # use hotpath_server::SafeModeView;
/// fn frozen(view: &SafeModeView) -> bool { view.reasons.iter().any(|r| r.reason == "Manual") }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SafeModeView {
    /// `true` while any reason is latched (only rollbacks pass).
    pub active: bool,
    /// The latched reasons.
    pub reasons: Vec<ReasonView>,
}

/// One latched safe-mode reason.
///
/// ```
/// # use hotpath_server::ReasonView;
/// fn until(r: &ReasonView) -> Option<u64> { r.exit_at_us }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReasonView {
    /// The reason's name (`Manual`, `Thrashing`, …).
    pub reason: String,
    /// What it means.
    pub description: String,
    /// How it exits ([`SafeModeExit::name`]).
    pub exit: &'static str,
    /// When a timer exit is due (executor clock, µs).
    pub exit_at_us: Option<u64>,
}

/// The baseline.
///
/// ```
/// # use hotpath_server::BaselineView;
/// fn at(b: &BaselineView) -> u64 { b.generation }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct BaselineView {
    /// The generation it was recorded at.
    pub generation: u64,
    /// Its values, `{name: typed value}`.
    pub values: KnobValues,
}

/// The engine.
///
/// ```
/// # use hotpath_server::EngineView;
/// fn learning(e: &EngineView) -> bool { e.stage == "calibrating" }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EngineView {
    /// `calibrating` (measuring its noise and gains), `tuning`, or
    /// `misconfigured` (it refuses everything).
    pub stage: &'static str,
    /// The SPSA iteration.
    pub iteration: u64,
    /// The measured noise of one window's aggregate, once calibrated.
    pub noise_sd: Option<f64>,
}

/// Counters since this process started (the engine's include a restored
/// state's).
///
/// ```
/// # use hotpath_server::Counts;
/// fn refusal_rate(c: &Counts) -> f64 { c.refused as f64 / (c.applied + c.refused).max(1) as f64 }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Counts {
    /// Changes the executor applied.
    pub applied: u64,
    /// Requests it refused.
    pub refused: u64,
    /// Rollbacks.
    pub rollbacks: u64,
    /// Audit events it could not record (reported by `EventsDropped`).
    pub audit_dropped: u64,
    /// The engine's digest counters (window digests).
    pub engine: EngineStats,
    /// Reported digests and windows.
    pub telemetry: TelemetryCounts,
}

/// What became of the reported digests.
///
/// ```
/// let c = hotpath_server::TelemetryCounts::default();
/// assert_eq!(c.accepted + c.stale, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TelemetryCounts {
    /// Digests counted into a window.
    pub accepted: u64,
    /// Digests of another generation, dropped.
    pub stale: u64,
    /// Windows stepped through the engine.
    pub windows_stepped: u64,
    /// Windows dropped because the generation changed before they closed.
    pub windows_superseded: u64,
    /// Windows the engine refused (counted in the metrics' errors).
    pub windows_failed: u64,
}

/// The audit log, as the control thread sees it.
///
/// ```
/// # use hotpath_server::AuditStatus;
/// fn healthy(a: &AuditStatus) -> bool { !a.log_failing && a.durable_lag < 1000 }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditStatus {
    /// The log directory's events handed over by this process.
    pub logged_events: u64,
    /// The highest seq known to be fsync'd.
    pub durable_seq: Option<u64>,
    /// Events handed to the log and not yet fsync'd.
    pub durable_lag: u64,
    /// `true` while the log writer is failing and retrying.
    pub log_failing: bool,
    /// Events the server's own subscription lost (the log has them).
    pub observer_lost: u64,
}

/// Knobs' typed values in the knobs' order, serialised as `{name: typed
/// value}` (a `serde_json::Value` object would sort them by name, unlike
/// `/v1/config` and `/v1/knobs`).
///
/// ```
/// use hotpath::{Knob, ParamSpace};
/// use hotpath_server::KnobValues;
///
/// let space = ParamSpace::new(vec![Knob::int("z_batch", 1, 64, 8), Knob::choice("codec", ["lz4", "zstd"], "lz4")])?;
/// let values = KnobValues::new(&space, &[8.0, 1.0]);
/// assert_eq!(serde_json::to_string(&values)?, r#"{"z_batch":8,"codec":"zstd"}"#);
/// assert_eq!(values.get("codec"), Some(&serde_json::json!("zstd")));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct KnobValues(Vec<(String, serde_json::Value)>);

impl KnobValues {
    /// The typed values of `values` (the live encoding) in `space`.
    pub fn new(space: &ParamSpace, values: &[f64]) -> Self {
        let typed = space.named(values);
        Self(
            typed
                .iter()
                .map(|(name, value)| {
                    let json = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
                    (name.to_string(), json)
                })
                .collect(),
        )
    }

    /// The value of the knob called `name`.
    pub fn get(&self, name: &str) -> Option<&serde_json::Value> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

impl Serialize for KnobValues {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// The safe-mode view of `safety`.
pub(crate) fn safe_mode(safety: &ControlSafety) -> SafeModeView {
    let reasons = safety
        .reasons()
        .iter()
        .map(|reason| {
            let exit = safety.exit_of(reason).unwrap_or(SafeModeExit::Never);
            let (exit, exit_at_us) = (exit.name(), exit.at_us());
            ReasonView {
                reason: type_name(&reason),
                description: reason.to_string(),
                exit,
                exit_at_us,
            }
        })
        .collect();
    SafeModeView {
        active: safety.is_latched(),
        reasons,
    }
}

/// The engine's stage.
pub(crate) fn engine<C: Clock>(host: &Host<C>) -> EngineView {
    let engine = host.engine();
    let stage = engine.stage().name();
    EngineView {
        stage,
        iteration: engine.spsa().iteration(),
        noise_sd: engine.noise_sd().filter(|sd| sd.is_finite()),
    }
}

/// The parts of the status the control thread keeps itself.
pub(crate) struct Extras<'a> {
    pub(crate) telemetry: TelemetryCounts,
    pub(crate) window: Option<WindowView>,
    pub(crate) audit: AuditStatus,
    pub(crate) last_decisions: &'a [Arc<EventView>],
    pub(crate) fleet: Option<FleetStatus>,
}

/// The status of `host` now.
pub(crate) fn build<C: Clock>(host: &Host<C>, extras: Extras<'_>) -> Status {
    let executor = host.executor();
    let space = host.space();
    let snapshot = executor.snapshot();
    let stats = executor.stats();
    Status {
        generation: snapshot.generation,
        values: KnobValues::new(space, &snapshot.params),
        safe_mode: safe_mode(executor.control_safety()),
        baseline: executor.baseline().map(|b| BaselineView {
            generation: b.snapshot.generation,
            values: KnobValues::new(space, &b.snapshot.params),
        }),
        engine: engine(host),
        counts: Counts {
            applied: stats.applied,
            refused: stats.refused,
            rollbacks: stats.rollbacks,
            audit_dropped: stats.audit_dropped,
            engine: host.engine().stats(),
            telemetry: extras.telemetry,
        },
        window: extras.window,
        audit: extras.audit,
        last_decisions: extras.last_decisions.to_vec(),
        fleet: extras.fleet,
    }
}
