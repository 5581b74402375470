//! The control thread's loop: it owns the host, takes commands, closes
//! aggregation windows on time, maintains the host, and publishes what
//! readers need after each of these. In fleet mode the loop also owns the
//! [fleet side](super::fleet), which may replace the host it lends.

use super::fleet::FleetSide;
use super::{
    config_json, Action, Command, ConfigEvent, ControlError, ControlOptions, IngestCounts,
    OperatorReply, Readers, Shared, Visible,
};
use crate::audit::{AuditRing, EventView};
use crate::feed::{Feed, FeedKind, ObjectivePoint};
use crate::fleet::FleetStatus;
use crate::knobs::knobs_json;
use crate::metrics::{HostMetrics, Metrics};
use crate::names::type_name;
use crate::status::{self, AuditStatus, Extras, TelemetryCounts};
use crate::window::{Closed, Offered, Windows};
use arc_swap::ArcSwap;
use hotpath::{AuditDetails, AuditEvent, Clock, ConfigSnapshot, TelemetryDigest};
use hotpath_config::telemetry::Reported;
use hotpath_host::{Host, HostError, ShutdownPolicy, ShutdownReport, Subscription};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Decisions the status keeps.
const LAST_DECISIONS: usize = 20;

/// Everything the thread keeps besides the host, which the caller lends
/// to each call: the control thread owns it ([`run`](Worker::run)), an
/// [`Attached`](super::Attached) host stays with its owner.
pub(super) struct Worker {
    shared: Arc<Shared>,
    watch: watch::Sender<Arc<ConfigEvent>>,
    events: Subscription,
    subscription_capacity: usize,
    windows: Windows,
    metrics: HostMetrics,
    published: u64,
    telemetry: TelemetryCounts,
    last_decisions: VecDeque<Arc<EventView>>,
    maintain_every: Duration,
    next_maintain: Instant,
    accept_telemetry: bool,
    /// Fleet mode: the fleet section of the status, as the fleet side
    /// last saw it.
    fleet: Option<FleetStatus>,
}

impl Worker {
    pub(super) fn new<C: Clock>(
        host: &mut Host<C>,
        options: &ControlOptions,
        window: Duration,
        readers: Readers,
    ) -> Result<(Self, Arc<Shared>), HostError> {
        let events = host.subscribe(options.subscription_capacity)?;
        // A fleet's first host is a view of what the fleet published: its
        // opening events are in no log.
        let own_events = matches!(readers, Readers::Executor);
        let metrics = Arc::new(Metrics::new());
        let space = Arc::clone(host.space());
        let config = Arc::clone(host.config());
        let snapshot = config.snapshot();
        let first = Arc::new(ConfigEvent::new(
            snapshot.generation,
            config_json(&space, &snapshot),
        ));
        let (published, barrier) = match readers {
            Readers::Executor => (None, None),
            Readers::Fleet(barrier) => {
                let visible = Visible {
                    snapshot: Arc::clone(&snapshot),
                    event: Arc::clone(&first),
                };
                (Some(ArcSwap::from_pointee(visible)), barrier)
            }
        };
        let (watch_tx, watch_rx) = watch::channel(first);
        let windows = Windows::new(u64::try_from(window.as_micros()).unwrap_or(u64::MAX));
        let extras = Extras {
            telemetry: TelemetryCounts::default(),
            window: None,
            audit: audit_status(host, 0),
            last_decisions: &[],
            fleet: None,
        };
        let shared = Arc::new(Shared {
            config,
            space,
            watch: watch_rx,
            status: ArcSwap::from_pointee(status::build(host, extras)),
            audit: AuditRing::new(options.audit_ring),
            feed: Feed::new(options.feed_capacity),
            knobs: knobs_json(host.space()).into(),
            metrics: Arc::clone(&metrics),
            ready: AtomicBool::new(true),
            window,
            published,
            barrier,
        });
        let mut worker = Self {
            metrics: HostMetrics::new(metrics, host, options.max_instances),
            published: snapshot.generation,
            shared: Arc::clone(&shared),
            watch: watch_tx,
            events,
            subscription_capacity: options.subscription_capacity,
            windows,
            telemetry: TelemetryCounts::default(),
            last_decisions: VecDeque::with_capacity(LAST_DECISIONS),
            maintain_every: options.maintain_every.max(Duration::from_millis(1)),
            next_maintain: Instant::now(),
            accept_telemetry: options.accept_telemetry,
            fleet: None,
        };
        if own_events {
            worker.record_opening(host);
        }
        Ok((worker, shared))
    }

    /// Records the events `host` made while opening, which its
    /// subscription came too late for (`Started` or `Restored`,
    /// `BaselineSet`): `/v1/audit` and the live feed show the whole trail.
    pub(super) fn record_opening<C: Clock>(&mut self, host: &Host<C>) {
        for event in &host.open_report().events {
            self.record(event);
        }
    }

    /// Copies one audit event into the metrics, the ring and the feed.
    fn record(&mut self, event: &AuditEvent) {
        self.metrics.on_event(event);
        let view = Arc::new(EventView::new(event, &self.shared.space));
        let decision = !matches!(
            event.details,
            AuditDetails::Outcome { .. } | AuditDetails::Engine { .. }
        );
        if decision {
            if self.last_decisions.len() == LAST_DECISIONS {
                self.last_decisions.pop_front();
            }
            self.last_decisions.push_back(Arc::clone(&view));
        }
        self.shared.feed.push(FeedKind::Audit, &*view);
        self.shared.audit.push(view);
    }

    /// Runs until a shutdown command (or every sender gone), then shuts
    /// the host down. In fleet mode a standby refuses digests and operator
    /// calls ([`ControlError::NotLeader`]), and after every command and
    /// tick the fleet side follows its coordinator (which may replace
    /// `host`).
    pub(super) fn run<C: Clock>(
        mut self,
        mut host: Host<C>,
        mut fleet: Option<FleetSide<C>>,
        rx: Receiver<Command>,
    ) {
        self.sync(&mut host);
        let (policy, reply) = loop {
            match rx.recv_timeout(self.wait(&mut host)) {
                Ok(Command::Shutdown { policy, reply }) => break (policy, Some(reply)),
                Ok(command) => match fleet.as_ref().and_then(FleetSide::not_leader) {
                    Some(refusal) => command.refuse(refusal),
                    None => self.handle(&mut host, command),
                },
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break (ShutdownPolicy::default(), None),
            }
            self.close_due(&mut host);
            if let Some(side) = fleet.as_mut() {
                side.step(&mut self, &mut host);
            }
            if Instant::now() >= self.next_maintain {
                self.maintain(&mut host);
            }
        };
        self.finish(host, fleet, policy, reply);
    }

    /// One round for a host its owner keeps: the commands waiting, the
    /// window if due, then everything published. The owner maintains its
    /// host itself (it decides when the state is saved).
    pub(super) fn poll<C: Clock>(&mut self, host: &mut Host<C>, rx: &Receiver<Command>) {
        // Only `Control` sends `Shutdown`: an attached host never sees one.
        while let Ok(command) = rx.try_recv() {
            self.handle(host, command);
        }
        self.close_due(host);
        self.sync(host);
        let failing = host.log_stats().is_some_and(|s| s.failing);
        self.shared.ready.store(!failing, Ordering::Release);
        self.publish_status(host);
    }

    /// Records an objective its owner measured (at the digest's timestamp
    /// and generation, or now and the live one).
    pub(super) fn measured<C: Clock>(&mut self, host: &mut Host<C>, digest: &TelemetryDigest) {
        let t_us = match digest.timestamp_us {
            Some(t) => t,
            None => now_us(host),
        };
        let generation = digest
            .generation
            .unwrap_or_else(|| host.executor().generation());
        self.push_objective(t_us, generation, digest);
    }

    fn push_objective(&self, t_us: u64, generation: u64, digest: &TelemetryDigest) {
        let point = ObjectivePoint {
            t_us,
            objective: digest.objective_value,
            samples: digest.sample_count,
            generation,
            margin: digest.constraint_margin,
        };
        self.shared.feed.push(FeedKind::Objective, &point);
    }

    /// A leader publishes what it decided since its last publication,
    /// the host shuts down, then a leader gives the leadership up.
    fn finish<C: Clock>(
        mut self,
        mut host: Host<C>,
        mut fleet: Option<FleetSide<C>>,
        policy: ShutdownPolicy,
        reply: Option<SyncSender<Result<ShutdownReport, HostError>>>,
    ) {
        self.shared.ready.store(false, Ordering::Release);
        if let Some(side) = fleet.as_mut() {
            side.finish(&mut self, &mut host);
        }
        let result = host.shutdown(policy);
        if let Some(side) = fleet.as_mut() {
            side.resign();
        }
        if let Err(e) = &result {
            tracing::error!(error = %e, "the host did not shut down cleanly");
        }
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
        // Dropping the watch sender ends every watcher's stream.
    }

    /// How long to wait for a command: until the open window closes or
    /// the next maintenance, whichever is first.
    fn wait<C: Clock>(&mut self, host: &mut Host<C>) -> Duration {
        let until_maintain = self.next_maintain.saturating_duration_since(Instant::now());
        let until_close = self.windows.deadline_us().map(|deadline| {
            let now = now_us(host);
            Duration::from_micros(deadline.saturating_sub(now))
        });
        until_close
            .map_or(until_maintain, |c| c.min(until_maintain))
            .max(Duration::from_micros(100))
    }

    fn handle<C: Clock>(&mut self, host: &mut Host<C>, command: Command) {
        match command {
            Command::Report { digests, reply } => {
                let counts = if self.accept_telemetry {
                    Ok(self.report(host, &digests))
                } else {
                    Err(ControlError::TelemetryNotAccepted)
                };
                reply.send(counts);
            }
            Command::Operate { action, reply } => {
                let result = self.operate(host, action);
                self.sync(host);
                self.publish_status(host);
                reply.send(result);
            }
            Command::Shutdown { .. } | Command::Wake => {}
        }
    }

    fn report<C: Clock>(&mut self, host: &mut Host<C>, digests: &[Reported]) -> IngestCounts {
        let mut counts = IngestCounts::default();
        for reported in digests {
            self.close_due(host);
            let now = now_us(host);
            let live = host.executor().generation();
            let offered = self.windows.offer(now, live, &reported.digest);
            self.metrics
                .on_digest(reported.instance.as_deref(), offered);
            match offered {
                Offered::Accepted => counts.accepted += 1,
                Offered::Stale => counts.stale += 1,
            }
        }
        self.telemetry.accepted += counts.accepted;
        self.telemetry.stale += counts.stale;
        counts.generation = host.executor().generation();
        self.publish_status(host);
        counts
    }

    /// Closes the open window if it is due, stepping its aggregate (and
    /// showing it in the feed).
    fn close_due<C: Clock>(&mut self, host: &mut Host<C>) {
        let now = now_us(host);
        match self.windows.close_due(now, host.executor().generation()) {
            Closed::Nothing => return,
            Closed::Superseded(_) => {
                self.telemetry.windows_superseded += 1;
                self.metrics.on_window("superseded");
            }
            Closed::Ready(digest, _) => {
                let generation = host.executor().generation();
                match host.step(digest) {
                    Ok(_) => {
                        self.telemetry.windows_stepped += 1;
                        self.metrics.on_window("stepped");
                        self.push_objective(now, generation, &digest);
                    }
                    Err(e) => {
                        self.telemetry.windows_failed += 1;
                        self.metrics.on_window("failed");
                        self.on_error(&e);
                    }
                }
            }
        }
        self.sync(host);
    }

    fn operate<C: Clock>(
        &mut self,
        host: &mut Host<C>,
        action: Action,
    ) -> Result<OperatorReply, ControlError> {
        let before = host.executor().generation();
        let was_frozen = host
            .executor()
            .control_safety()
            .reasons()
            .contains(hotpath::SafeModeReason::Manual);
        let mut reply = OperatorReply {
            action: action.name(),
            changed: true,
            generation: before,
            previous_generation: None,
            circuit_breaker_tripped: None,
            baseline_generation: None,
            cleared: None,
            safe_mode: status::safe_mode(host.executor().control_safety()),
        };
        match action {
            Action::Freeze => {
                host.freeze().map_err(ControlError::from_host)?;
                reply.changed = !was_frozen;
            }
            Action::Resume => {
                let cleared = host.resume().map_err(ControlError::from_host)?;
                reply.changed = !cleared.is_empty();
                reply.cleared = Some(cleared.iter().map(|r| type_name(&r)).collect());
            }
            Action::Rollback => {
                let receipt = host.rollback().map_err(ControlError::from_host)?;
                reply.changed = receipt.new_generation != receipt.old_generation;
                reply.previous_generation = Some(receipt.old_generation);
                reply.circuit_breaker_tripped = Some(receipt.circuit_breaker_tripped);
            }
            Action::Baseline => {
                let generation = host.set_baseline().map_err(ControlError::from_host)?;
                reply.baseline_generation = Some(generation);
            }
        }
        reply.generation = host.executor().generation();
        reply.safe_mode = status::safe_mode(host.executor().control_safety());
        Ok(reply)
    }

    /// Copies the new audit events into the metrics, the ring and the
    /// feed, and publishes a new generation to the watchers (in fleet
    /// mode the fleet side does, once the fleet holds it:
    /// [`show`](Self::show)).
    pub(super) fn sync<C: Clock>(&mut self, host: &mut Host<C>) {
        while let Some(event) = self.events.try_next() {
            self.record(&event);
        }
        if self.shared.published.is_some() {
            return;
        }
        let snapshot = host.config().snapshot();
        if snapshot.generation != self.published {
            self.published = snapshot.generation;
            let event = ConfigEvent::new(
                snapshot.generation,
                config_json(&self.shared.space, &snapshot),
            );
            self.watch.send_replace(Arc::new(event));
        }
    }

    fn maintain<C: Clock>(&mut self, host: &mut Host<C>) {
        self.next_maintain = Instant::now() + self.maintain_every;
        if let Err(e) = host.maintain() {
            self.on_error(&e);
        }
        self.sync(host);
        self.shared.metrics.run_upkeep();
        let failing = host.log_stats().is_some_and(|s| s.failing);
        self.shared.ready.store(!failing, Ordering::Release);
        self.publish_status(host);
    }

    pub(super) fn publish_status<C: Clock>(&mut self, host: &mut Host<C>) {
        let lost = self.events.lost();
        self.metrics.refresh(host, lost);
        let now = now_us(host);
        let decisions: Vec<_> = self.last_decisions.iter().cloned().collect();
        let extras = Extras {
            telemetry: self.telemetry,
            window: self.windows.view(now),
            audit: audit_status(host, lost),
            last_decisions: &decisions,
            fleet: self.fleet.clone(),
        };
        let status = status::build(host, extras);
        self.shared.status.store(Arc::new(status));
    }

    /// In fleet mode: the fleet section the next status shows; `true` if
    /// it changed.
    pub(super) fn set_fleet(&mut self, status: FleetStatus) -> bool {
        let changed = self.fleet.as_ref() != Some(&status);
        if changed {
            self.metrics.on_fleet(self.fleet.as_ref(), &status);
        }
        self.fleet = Some(status);
        changed
    }

    /// In fleet mode: makes a configuration the fleet holds visible to
    /// readers, if it is newer than what they see (their generations
    /// never go backwards).
    pub(super) fn show(&mut self, snapshot: Arc<ConfigSnapshot>, json: &str) {
        let Some(published) = &self.shared.published else {
            return;
        };
        if snapshot.generation <= published.load().event.generation {
            return;
        }
        let event = Arc::new(ConfigEvent::new(snapshot.generation, json.to_owned()));
        published.store(Arc::new(Visible {
            snapshot,
            event: Arc::clone(&event),
        }));
        self.watch.send_replace(event);
    }

    /// `host` has just replaced the one lent before (fleet mode): a new
    /// subscription to its events, and an empty window.
    pub(super) fn host_replaced<C: Clock>(&mut self, host: &mut Host<C>) {
        match host.subscribe(self.subscription_capacity) {
            Ok(events) => self.events = events,
            Err(e) => self.on_error(&e),
        }
        self.windows = Windows::new(self.windows.length_us());
    }

    pub(super) fn on_error(&mut self, e: &HostError) {
        let kind = match e {
            HostError::Digest(_) => "digest",
            HostError::AuditStalled { .. } | HostError::AuditLog(_) => "audit",
            HostError::State(_) => "state",
            _ => "other",
        };
        tracing::warn!(error = %e, kind, "control thread: carrying on after an error");
        self.metrics.on_error(kind);
    }
}

/// The executor's clock, µs.
fn now_us<C: Clock>(host: &mut Host<C>) -> u64 {
    host.engine_mut().executor_mut().now_us()
}

fn audit_status<C: Clock>(host: &Host<C>, observer_lost: u64) -> AuditStatus {
    AuditStatus {
        logged_events: host.logged_events(),
        durable_seq: host.durable_seq(),
        durable_lag: crate::metrics::durable_lag(host),
        log_failing: host.log_stats().is_some_and(|s| s.failing),
        observer_lost,
    }
}
