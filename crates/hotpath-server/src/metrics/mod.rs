//! Prometheus metrics: one private [`PrometheusRecorder`] per server,
//! rendered by `GET /metrics`.
//!
//! Nothing here installs a global recorder or starts an exporter: the
//! recorder's handles are registered through the [`metrics`] facade's
//! [`Recorder`] trait directly, so several servers (tests, an embedding)
//! can live in one process and the libraries below stay free of any of
//! it. The host's values are derived on the control thread (`host.rs`)
//! from the host's counters and from an audit subscription.
//!
//! # The metrics
//!
//! | name | type | labels | meaning |
//! |------|------|--------|---------|
//! | `hotpath_knob_value` | gauge | `knob` | each knob's live value (a choice: its option's index) |
//! | `hotpath_knob_choice_info` | gauge | `knob`, `option` | 1 for a choice knob's live option, 0 for the others |
//! | `hotpath_config_generation` | gauge | | the live generation |
//! | `hotpath_decisions_total` | counter | `outcome` (`applied`, `rejected`), `violation` (`none` or the violation's type name) | the executor's decisions |
//! | `hotpath_rollbacks_total` | counter | `reason` (`Manual`, `Regressions`, `ConstraintEmergency`) | rollbacks |
//! | `hotpath_safe_mode` | gauge | `reason` (every `SafeModeReason`) | 1 while that reason is latched |
//! | `hotpath_safe_mode_active` | gauge | | 1 while any reason is latched |
//! | `hotpath_safe_mode_entries_total` | counter | `reason` | safe-mode entries |
//! | `hotpath_telemetry_digests_total` | counter | `result` (`accepted`, `stale`) | reported digests, as they arrived |
//! | `hotpath_telemetry_instance_digests_total` | counter | `instance` (at most `max_instances` names, then `_other`; `_none` without one) | reported digests per replica |
//! | `hotpath_telemetry_windows_total` | counter | `result` (`stepped`, `superseded`, `failed`) | aggregation windows closed |
//! | `hotpath_digests_used_total` | counter | | window digests the engine counted |
//! | `hotpath_digests_discarded_total` | counter | `reason` (`settling`, `stale`, `pending`) | window digests the engine discarded |
//! | `hotpath_engine_eval_timeouts_total` | counter | | evaluation windows that timed out |
//! | `hotpath_engine_iteration` | gauge | | the SPSA iteration |
//! | `hotpath_audit_events_total` | counter | `type` | audit events seen by the server |
//! | `hotpath_audit_observer_lost_total` | counter | | events the server's subscription lost (the log has them) |
//! | `hotpath_audit_queue_depth` | gauge | | events in the executor's audit queue |
//! | `hotpath_audit_log_pending_events` | gauge | | events the log writer holds, not yet durable |
//! | `hotpath_audit_durable_lag_events` | gauge | | events handed to the log and not yet fsync'd |
//! | `hotpath_audit_log_write_errors_total` | counter | | failed writes or fsyncs of the log |
//! | `hotpath_state_saves_total` | counter | | state file saves |
//! | `hotpath_control_errors_total` | counter | `kind` (`digest`, `audit`, `state`) | errors the control thread logged and carried on from |
//! | `hotpath_control_busy_total` | counter | | requests refused because the control queue was full |
//! | `hotpath_http_request_duration_seconds` | histogram | `route` (the route template or `unmatched`), `method`, `status` (`2xx` … `5xx`) | HTTP requests |
//! | `hotpath_sse_watchers` | gauge | | open `/v1/config/watch` streams |
//! | `hotpath_fleet_leader` | gauge | | fleet mode: 1 while this instance leads, 0 on a standby |
//! | `hotpath_fleet_coordinator_connected` | gauge | | fleet mode: 1 while etcd answers this instance |
//! | `hotpath_fleet_term` | gauge | | fleet mode: the leader's term (rises with every election) |
//! | `hotpath_fleet_published_generation` | gauge | | fleet mode: the generation the fleet last published |
//! | `hotpath_fleet_role_changes_total` | counter | | fleet mode: times this instance became leader or standby (a rate of it is leadership flapping) |
//!
//! Counters start at zero with each process (a restarted server's
//! counters restart; the audit log is the record across restarts).

mod host;

pub(crate) use host::{durable_lag, HostMetrics};

use metrics::{Counter, Gauge, Key, Label, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use std::time::Duration;

/// The request-duration histogram's buckets, seconds.
const DURATION_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

static METADATA: Metadata<'static> =
    Metadata::new("hotpath_server", metrics::Level::INFO, Some(module_path!()));

/// Every metric's name, unit and help text.
const DESCRIPTIONS: [(&str, Option<Unit>, &str); 31] = [
    (
        "hotpath_knob_value",
        None,
        "Each knob's live value (a choice knob: the index of its option).",
    ),
    (
        "hotpath_knob_choice_info",
        None,
        "1 for a choice knob's live option, 0 for its other options.",
    ),
    (
        "hotpath_config_generation",
        None,
        "The live configuration's generation.",
    ),
    (
        "hotpath_decisions_total",
        None,
        "The executor's decisions by outcome and violation.",
    ),
    (
        "hotpath_rollbacks_total",
        None,
        "Rollbacks to the baseline by reason.",
    ),
    (
        "hotpath_safe_mode",
        None,
        "1 while this safe-mode reason is latched.",
    ),
    (
        "hotpath_safe_mode_active",
        None,
        "1 while any safe-mode reason is latched.",
    ),
    (
        "hotpath_safe_mode_entries_total",
        None,
        "Safe-mode entries by reason.",
    ),
    (
        "hotpath_telemetry_digests_total",
        None,
        "Reported digests by what became of them on arrival.",
    ),
    (
        "hotpath_telemetry_instance_digests_total",
        None,
        "Reported digests per instance (bounded; then _other).",
    ),
    (
        "hotpath_telemetry_windows_total",
        None,
        "Aggregation windows closed, by result.",
    ),
    (
        "hotpath_digests_used_total",
        None,
        "Window digests the engine counted into an evaluation.",
    ),
    (
        "hotpath_digests_discarded_total",
        None,
        "Window digests the engine discarded, by reason.",
    ),
    (
        "hotpath_engine_eval_timeouts_total",
        None,
        "Evaluation windows that timed out.",
    ),
    ("hotpath_engine_iteration", None, "The SPSA iteration."),
    (
        "hotpath_audit_events_total",
        None,
        "Audit events seen by the server, by type.",
    ),
    (
        "hotpath_audit_observer_lost_total",
        None,
        "Audit events the server's subscription lost (the durable log has them).",
    ),
    (
        "hotpath_audit_queue_depth",
        None,
        "Events waiting in the executor's audit queue.",
    ),
    (
        "hotpath_audit_log_pending_events",
        None,
        "Events the audit log writer holds that are not yet durable.",
    ),
    (
        "hotpath_audit_durable_lag_events",
        None,
        "Events handed to the audit log and not yet fsync'd.",
    ),
    (
        "hotpath_audit_log_write_errors_total",
        None,
        "Failed writes, fsyncs or rotations of the audit log.",
    ),
    ("hotpath_state_saves_total", None, "State file saves."),
    (
        "hotpath_control_errors_total",
        None,
        "Errors the control thread logged and carried on from.",
    ),
    (
        "hotpath_control_busy_total",
        None,
        "Requests refused because the control queue was full.",
    ),
    (
        "hotpath_http_request_duration_seconds",
        Some(Unit::Seconds),
        "HTTP request durations by route template, method and status class.",
    ),
    (
        "hotpath_sse_watchers",
        None,
        "Open /v1/config/watch streams.",
    ),
    (
        "hotpath_fleet_leader",
        None,
        "Fleet mode: 1 while this instance leads, 0 on a standby.",
    ),
    (
        "hotpath_fleet_coordinator_connected",
        None,
        "Fleet mode: 1 while the coordinator (etcd) answers this instance.",
    ),
    (
        "hotpath_fleet_term",
        None,
        "Fleet mode: the leader's term (rises with every election).",
    ),
    (
        "hotpath_fleet_published_generation",
        None,
        "Fleet mode: the generation the fleet last published.",
    ),
    (
        "hotpath_fleet_role_changes_total",
        None,
        "Fleet mode: times this instance became leader or standby.",
    ),
];

/// A server's metrics: a Prometheus recorder of its own (never the
/// global one) and its render handle.
///
/// ```
/// let metrics = hotpath_server::Metrics::new();
/// metrics.observe_request("/v1/config", "GET", 200, std::time::Duration::from_millis(2));
/// let text = metrics.render();
/// assert!(text.contains("hotpath_http_request_duration_seconds_bucket{route=\"/v1/config\",method=\"GET\",status=\"2xx\""));
/// ```
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    watchers: Gauge,
    busy: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A new, empty set of metrics, every metric described.
    pub fn new() -> Self {
        let builder = PrometheusBuilder::new();
        let builder = match builder.set_buckets_for_metric(
            Matcher::Full("hotpath_http_request_duration_seconds".into()),
            &DURATION_BUCKETS,
        ) {
            Ok(b) => b,
            // Only an empty bucket list is refused, and ours is not.
            Err(_) => PrometheusBuilder::new(),
        };
        let recorder = builder.build_recorder();
        for (name, unit, help) in DESCRIPTIONS {
            let help = SharedString::from(help);
            if name.ends_with("_total") {
                recorder.describe_counter(name.into(), unit, help);
            } else if name.ends_with("_seconds") {
                recorder.describe_histogram(name.into(), unit, help);
            } else {
                recorder.describe_gauge(name.into(), unit, help);
            }
        }
        let handle = recorder.handle();
        let watchers = gauge_of(&recorder, "hotpath_sse_watchers", vec![]);
        let busy = counter_of(&recorder, "hotpath_control_busy_total", vec![]);
        Self {
            recorder,
            handle,
            watchers,
            busy,
        }
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Drains the histograms' pending samples (call it now and then; the
    /// control thread does, on its timer).
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// Records one HTTP request: `route` must be a route template (or
    /// `unmatched`), never a raw path, so the labels stay bounded.
    pub fn observe_request(&self, route: &'static str, method: &str, status: u16, took: Duration) {
        let method = match method {
            "GET" | "POST" | "HEAD" | "PUT" | "DELETE" | "PATCH" | "OPTIONS" => method.to_string(),
            _ => "other".to_string(),
        };
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        let key = Key::from_parts(
            "hotpath_http_request_duration_seconds",
            vec![
                Label::new("route", route),
                Label::new("method", method),
                Label::new("status", class),
            ],
        );
        self.recorder
            .register_histogram(&key, &METADATA)
            .record(took.as_secs_f64());
    }

    /// Sets the number of open watch streams.
    pub(crate) fn set_watchers(&self, open: usize) {
        self.watchers.set(open as f64);
    }

    /// Counts a request refused because the control queue was full.
    pub(crate) fn count_busy(&self) {
        self.busy.increment(1);
    }

    pub(crate) fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        counter_of(&self.recorder, name, labels)
    }

    pub(crate) fn gauge(&self, name: &'static str, labels: Vec<Label>) -> Gauge {
        gauge_of(&self.recorder, name, labels)
    }
}

fn counter_of(recorder: &PrometheusRecorder, name: &'static str, labels: Vec<Label>) -> Counter {
    recorder.register_counter(&Key::from_parts(name, labels), &METADATA)
}

fn gauge_of(recorder: &PrometheusRecorder, name: &'static str, labels: Vec<Label>) -> Gauge {
    recorder.register_gauge(&Key::from_parts(name, labels), &METADATA)
}

#[cfg(test)]
mod tests {
    use super::DESCRIPTIONS;

    /// Every metric the shipped Grafana dashboard queries is one the
    /// server exports.
    #[test]
    fn the_dashboard_uses_only_exported_metrics() {
        let dashboard = include_str!("../../grafana/hotpath.json");
        let mut rest = dashboard;
        let mut seen = 0;
        while let Some(at) = rest.find("hotpath_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            let base = name
                .strip_suffix("_bucket")
                .or_else(|| name.strip_suffix("_count"))
                .unwrap_or(&name);
            assert!(
                DESCRIPTIONS.iter().any(|(n, _, _)| *n == base),
                "the dashboard queries {name}, which the server does not export"
            );
            seen += 1;
        }
        assert!(seen > 20);
    }
}
