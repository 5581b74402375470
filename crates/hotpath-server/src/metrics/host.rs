//! The host's metrics, derived on the control thread: gauges from the
//! host's state and counters after every command and tick, counters from
//! the audit events as the server's subscription sees them.

use super::Metrics;
use crate::fleet::{FleetStatus, Role};
use crate::names::type_name;
use crate::window::Offered;
use hotpath::{AuditDetails, AuditEvent, Clock, KnobKind, SafeModeReason};
use hotpath_host::Host;
use metrics::{Counter, Gauge, Label};
use std::collections::HashMap;
use std::sync::Arc;

/// Label value of digests without an `instance`.
pub(crate) const NO_INSTANCE: &str = "_none";
/// Label value of the instances beyond the cap.
pub(crate) const OTHER_INSTANCES: &str = "_other";

/// A knob's gauges: its value, and one info gauge per option of a choice.
struct KnobGauges {
    value: Gauge,
    options: Vec<Gauge>,
}

/// Fleet mode's gauges and counter, registered at the first fleet status
/// (so a server outside fleet mode exports none of them).
struct FleetMetrics {
    leader: Gauge,
    coordinator_connected: Gauge,
    term: Gauge,
    published_generation: Gauge,
    role_changes: Counter,
}

/// The control thread's metrics (it alone touches them: no locks).
pub(crate) struct HostMetrics {
    metrics: Arc<Metrics>,
    knobs: Vec<KnobGauges>,
    generation: Gauge,
    safe_mode: Vec<(SafeModeReason, Gauge)>,
    safe_mode_active: Gauge,
    /// Counters whose labels come from events, by label value.
    by_label: HashMap<(&'static str, String), Counter>,
    instances: HashMap<String, Counter>,
    max_instances: usize,
    iteration: Gauge,
    queue_depth: Gauge,
    log_pending: Gauge,
    durable_lag: Gauge,
    fleet: Option<FleetMetrics>,
}

impl HostMetrics {
    /// The gauges of `host`'s knobs and safe-mode reasons, registered.
    pub(crate) fn new<C: Clock>(
        metrics: Arc<Metrics>,
        host: &Host<C>,
        max_instances: usize,
    ) -> Self {
        let space = host.space();
        let knobs = space
            .knobs()
            .iter()
            .map(|knob| {
                let name = knob.name().to_string();
                let options = match knob.kind() {
                    KnobKind::Choice { options } => options
                        .iter()
                        .map(|o| {
                            let labels = vec![
                                Label::new("knob", name.clone()),
                                Label::new("option", o.clone()),
                            ];
                            metrics.gauge("hotpath_knob_choice_info", labels)
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                let value = metrics.gauge("hotpath_knob_value", vec![Label::new("knob", name)]);
                KnobGauges { value, options }
            })
            .collect();
        let safe_mode = SafeModeReason::ALL
            .into_iter()
            .map(|r| {
                let labels = vec![Label::new("reason", type_name(&r))];
                (r, metrics.gauge("hotpath_safe_mode", labels))
            })
            .collect();
        let gauge = |name| metrics.gauge(name, vec![]);
        Self {
            generation: gauge("hotpath_config_generation"),
            safe_mode_active: gauge("hotpath_safe_mode_active"),
            iteration: gauge("hotpath_engine_iteration"),
            queue_depth: gauge("hotpath_audit_queue_depth"),
            log_pending: gauge("hotpath_audit_log_pending_events"),
            durable_lag: gauge("hotpath_audit_durable_lag_events"),
            knobs,
            safe_mode,
            by_label: HashMap::new(),
            instances: HashMap::new(),
            max_instances,
            fleet: None,
            metrics,
        }
    }

    /// Sets the fleet's gauges from `status` and counts a change of role
    /// from `before`, the previous status (the first is not a change). The
    /// term and the published generation keep their last known values
    /// while unknown.
    pub(crate) fn on_fleet(&mut self, before: Option<&FleetStatus>, status: &FleetStatus) {
        let metrics = &self.metrics;
        let fleet = self.fleet.get_or_insert_with(|| {
            let gauge = |name| metrics.gauge(name, vec![]);
            FleetMetrics {
                leader: gauge("hotpath_fleet_leader"),
                coordinator_connected: gauge("hotpath_fleet_coordinator_connected"),
                term: gauge("hotpath_fleet_term"),
                published_generation: gauge("hotpath_fleet_published_generation"),
                role_changes: metrics.counter("hotpath_fleet_role_changes_total", vec![]),
            }
        });
        if before.is_some_and(|b| b.role != status.role) {
            fleet.role_changes.increment(1);
        }
        fleet
            .leader
            .set(f64::from(u8::from(status.role == Role::Leader)));
        fleet
            .coordinator_connected
            .set(f64::from(u8::from(status.coordinator == "connected")));
        if let Some(term) = status.term {
            fleet.term.set(term as f64);
        }
        if let Some(generation) = status.published_generation {
            fleet.published_generation.set(generation as f64);
        }
    }

    /// The counter `name{label=value}` (`name` alone for an empty
    /// `label`), registered once, then cached.
    fn labelled(&mut self, name: &'static str, label: &'static str, value: &str) -> &Counter {
        let metrics = &self.metrics;
        self.by_label
            .entry((name, value.to_string()))
            .or_insert_with(|| {
                let labels = match label {
                    "" => vec![],
                    _ => vec![Label::new(label, value.to_string())],
                };
                metrics.counter(name, labels)
            })
    }

    /// Counts what one audit event says.
    pub(crate) fn on_event(&mut self, event: &AuditEvent) {
        self.labelled(
            "hotpath_audit_events_total",
            "type",
            event.event_type().name(),
        )
        .increment(1);
        match &event.details {
            AuditDetails::Applied { .. } => self.decision("applied", "none"),
            AuditDetails::Rejected { violation, .. } => {
                self.decision("rejected", &type_name(violation))
            }
            AuditDetails::RolledBack { reason, .. } => self
                .labelled("hotpath_rollbacks_total", "reason", &type_name(reason))
                .increment(1),
            AuditDetails::SafeModeEntered { reason, .. } => self
                .labelled(
                    "hotpath_safe_mode_entries_total",
                    "reason",
                    &type_name(reason),
                )
                .increment(1),
            _ => {}
        }
    }

    fn decision(&mut self, outcome: &'static str, violation: &str) {
        let metrics = &self.metrics;
        self.by_label
            .entry(("hotpath_decisions_total", format!("{outcome}|{violation}")))
            .or_insert_with(|| {
                let labels = vec![
                    Label::new("outcome", outcome),
                    Label::new("violation", violation.to_string()),
                ];
                metrics.counter("hotpath_decisions_total", labels)
            })
            .increment(1);
    }

    /// Counts one reported digest and what became of it.
    pub(crate) fn on_digest(&mut self, instance: Option<&str>, offered: Offered) {
        let result = match offered {
            Offered::Accepted => "accepted",
            Offered::Stale => "stale",
        };
        self.labelled("hotpath_telemetry_digests_total", "result", result)
            .increment(1);
        let name = match instance {
            None => NO_INSTANCE,
            Some(name) if self.instances.contains_key(name) => name,
            Some(name) if self.instances.len() < self.max_instances => name,
            Some(_) => OTHER_INSTANCES,
        };
        let metrics = &self.metrics;
        self.instances
            .entry(name.to_string())
            .or_insert_with(|| {
                let labels = vec![Label::new("instance", name.to_string())];
                metrics.counter("hotpath_telemetry_instance_digests_total", labels)
            })
            .increment(1);
    }

    /// Counts a closed window: `stepped`, `superseded` or `failed`.
    pub(crate) fn on_window(&mut self, result: &'static str) {
        self.labelled("hotpath_telemetry_windows_total", "result", result)
            .increment(1);
    }

    /// Counts an error the control thread carried on from.
    pub(crate) fn on_error(&mut self, kind: &'static str) {
        self.labelled("hotpath_control_errors_total", "kind", kind)
            .increment(1);
    }

    /// Sets the gauges and absolute counters from the host's state;
    /// `lost` is what the server's subscription has lost so far.
    pub(crate) fn refresh<C: Clock>(&mut self, host: &Host<C>, lost: u64) {
        let executor = host.executor();
        let snapshot = executor.snapshot();
        for (gauges, &value) in self.knobs.iter().zip(snapshot.params.iter()) {
            gauges.value.set(value);
            for (i, option) in gauges.options.iter().enumerate() {
                option.set(if i as f64 == value { 1.0 } else { 0.0 });
            }
        }
        self.generation.set(snapshot.generation as f64);
        let safety = executor.control_safety();
        for (reason, gauge) in &self.safe_mode {
            gauge.set(f64::from(u8::from(safety.reasons().contains(*reason))));
        }
        self.safe_mode_active
            .set(f64::from(u8::from(safety.is_latched())));
        let engine = host.engine();
        let stats = engine.stats();
        self.iteration.set(engine.spsa().iteration() as f64);
        let absolute = [
            ("hotpath_digests_used_total", None, stats.used),
            (
                "hotpath_digests_discarded_total",
                Some("settling"),
                stats.discarded_settling,
            ),
            (
                "hotpath_digests_discarded_total",
                Some("stale"),
                stats.discarded_stale,
            ),
            (
                "hotpath_digests_discarded_total",
                Some("pending"),
                stats.discarded_pending,
            ),
            (
                "hotpath_engine_eval_timeouts_total",
                None,
                stats.eval_timeouts,
            ),
            ("hotpath_audit_observer_lost_total", None, lost),
            ("hotpath_state_saves_total", None, host.state_saves()),
            (
                "hotpath_audit_log_write_errors_total",
                None,
                host.log_stats().map_or(0, |s| s.write_errors),
            ),
        ];
        for (name, reason, value) in absolute {
            match reason {
                Some(reason) => self.labelled(name, "reason", reason).absolute(value),
                None => self.labelled(name, "", "").absolute(value),
            }
        }
        self.queue_depth.set(executor.audit_queue().len() as f64);
        let pending = host.log_stats().map_or(0, |s| s.pending_events);
        self.log_pending.set(pending as f64);
        self.durable_lag.set(durable_lag(host) as f64);
    }
}

/// Events handed to the log and not yet known to be fsync'd.
pub(crate) fn durable_lag<C: Clock>(host: &Host<C>) -> u64 {
    if host.log_dir().is_none() {
        return 0;
    }
    let first = host.open_report().first_seq;
    let handed = first.saturating_add(host.logged_events());
    let durable_next = host.durable_seq().map_or(first, |s| s.saturating_add(1));
    handed.saturating_sub(durable_next)
}
