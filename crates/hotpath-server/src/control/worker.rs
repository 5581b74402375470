//! The control thread's loop: it owns the host, takes commands, closes
//! aggregation windows on time, maintains the host, and publishes what
//! readers need after each of these.

use super::fleet::FleetSide;
use super::{
    config_json, Action, Command, ConfigEvent, ControlError, ControlOptions, IngestCounts,
    OperatorReply, Shared, Visible,
};
use crate::audit::{AuditRing, EventView};
use crate::metrics::{HostMetrics, Metrics};
use crate::names::type_name;
use crate::status::{self, AuditStatus, Extras, TelemetryCounts};
use crate::window::{Closed, Offered, Windows};
use arc_swap::ArcSwap;
use hotpath::{AuditDetails, Clock};
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

pub(crate) struct Worker<C: Clock> {
    pub(super) host: Host<C>,
    pub(super) shared: Arc<Shared>,
    pub(super) watch: watch::Sender<Arc<ConfigEvent>>,
    pub(super) events: Subscription,
    pub(super) subscription_capacity: usize,
    pub(super) windows: Windows,
    metrics: HostMetrics,
    published: u64,
    telemetry: TelemetryCounts,
    last_decisions: VecDeque<Arc<EventView>>,
    maintain_every: Duration,
    next_maintain: Instant,
    /// Fleet mode: the coordinator and how to open hosts.
    pub(super) fleet: Option<FleetSide<C>>,
}

impl<C: Clock> Worker<C> {
    pub(super) fn new(
        mut host: Host<C>,
        options: &ControlOptions,
        window: Duration,
        mut fleet: Option<FleetSide<C>>,
    ) -> Result<(Self, Arc<Shared>), HostError> {
        let events = host.subscribe(options.subscription_capacity)?;
        let metrics = Arc::new(Metrics::new());
        let space = Arc::clone(host.space());
        let config = Arc::clone(host.config());
        let snapshot = config.snapshot();
        let first = Arc::new(ConfigEvent {
            generation: snapshot.generation,
            json: config_json(&space, &snapshot).into(),
        });
        let published = fleet.as_ref().map(|_| {
            ArcSwap::from_pointee(Visible {
                snapshot: Arc::clone(&snapshot),
                event: Arc::clone(&first),
            })
        });
        let barrier = fleet.as_mut().and_then(|side| side.barrier.take());
        let (watch_tx, watch_rx) = watch::channel(first);
        let windows = Windows::new(u64::try_from(window.as_micros()).unwrap_or(u64::MAX));
        let extras = Extras {
            telemetry: TelemetryCounts::default(),
            window: None,
            audit: audit_status(&host, 0),
            last_decisions: &[],
            fleet: fleet.as_ref().map(FleetSide::status),
        };
        let shared = Arc::new(Shared {
            config,
            space,
            watch: watch_rx,
            status: ArcSwap::from_pointee(status::build(&host, extras)),
            audit: AuditRing::new(options.audit_ring),
            metrics: Arc::clone(&metrics),
            ready: AtomicBool::new(true),
            window,
            published,
            barrier,
        });
        let worker = Self {
            metrics: HostMetrics::new(metrics, &host, options.max_instances),
            published: snapshot.generation,
            host,
            shared: Arc::clone(&shared),
            watch: watch_tx,
            events,
            subscription_capacity: options.subscription_capacity,
            windows,
            telemetry: TelemetryCounts::default(),
            last_decisions: VecDeque::with_capacity(LAST_DECISIONS),
            maintain_every: options.maintain_every.max(Duration::from_millis(1)),
            next_maintain: Instant::now(),
            fleet,
        };
        Ok((worker, shared))
    }

    /// Runs until a shutdown command (or every sender gone), then shuts
    /// the host down.
    pub(super) fn run(mut self, rx: Receiver<Command>) {
        self.sync();
        let (policy, reply) = loop {
            match rx.recv_timeout(self.wait()) {
                Ok(Command::Shutdown { policy, reply }) => break (policy, Some(reply)),
                Ok(command) => self.handle(command),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break (ShutdownPolicy::default(), None),
            }
            self.close_due();
            self.fleet_step();
            if Instant::now() >= self.next_maintain {
                self.maintain();
            }
        };
        self.finish(policy, reply);
    }

    fn finish(
        mut self,
        policy: ShutdownPolicy,
        reply: Option<SyncSender<Result<ShutdownReport, HostError>>>,
    ) {
        self.shared.ready.store(false, Ordering::Release);
        self.fleet_finish();
        let resign = self.fleet.take();
        let result = self.host.shutdown(policy);
        if let Some(mut side) = resign {
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
    fn wait(&mut self) -> Duration {
        let until_maintain = self.next_maintain.saturating_duration_since(Instant::now());
        let until_close = self.windows.deadline_us().map(|deadline| {
            let now = self.now_us();
            Duration::from_micros(deadline.saturating_sub(now))
        });
        until_close
            .map_or(until_maintain, |c| c.min(until_maintain))
            .max(Duration::from_micros(100))
    }

    fn now_us(&mut self) -> u64 {
        self.host.engine_mut().executor_mut().now_us()
    }

    fn generation(&self) -> u64 {
        self.host.executor().generation()
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Report { digests, reply } => {
                let counts = match self.not_leader() {
                    Some(refusal) => Err(refusal),
                    None => Ok(self.report(&digests)),
                };
                reply.send(counts);
            }
            Command::Operate { action, reply } => {
                let result = match self.not_leader() {
                    Some(refusal) => Err(refusal),
                    None => self.operate(action),
                };
                self.sync();
                self.publish_status();
                reply.send(result);
            }
            Command::Shutdown { .. } | Command::Wake => {}
        }
    }

    fn report(&mut self, digests: &[Reported]) -> IngestCounts {
        let mut counts = IngestCounts::default();
        for reported in digests {
            self.close_due();
            let now = self.now_us();
            let offered = self.windows.offer(now, self.generation(), &reported.digest);
            self.metrics
                .on_digest(reported.instance.as_deref(), offered);
            match offered {
                Offered::Accepted => counts.accepted += 1,
                Offered::Stale => counts.stale += 1,
            }
        }
        self.telemetry.accepted += counts.accepted;
        self.telemetry.stale += counts.stale;
        counts.generation = self.generation();
        self.publish_status();
        counts
    }

    /// Closes the open window if it is due, stepping its aggregate.
    fn close_due(&mut self) {
        let now = self.now_us();
        match self.windows.close_due(now, self.generation()) {
            Closed::Nothing => return,
            Closed::Superseded(_) => {
                self.telemetry.windows_superseded += 1;
                self.metrics.on_window("superseded");
            }
            Closed::Ready(digest, _) => match self.host.step(digest) {
                Ok(_) => {
                    self.telemetry.windows_stepped += 1;
                    self.metrics.on_window("stepped");
                }
                Err(e) => {
                    self.telemetry.windows_failed += 1;
                    self.metrics.on_window("failed");
                    self.on_error(&e);
                }
            },
        }
        self.sync();
    }

    fn operate(&mut self, action: Action) -> Result<OperatorReply, ControlError> {
        let before = self.generation();
        let was_frozen = self
            .host
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
            safe_mode: status::safe_mode(self.host.executor().control_safety()),
        };
        match action {
            Action::Freeze => {
                self.host.freeze().map_err(ControlError::from_host)?;
                reply.changed = !was_frozen;
            }
            Action::Resume => {
                let cleared = self.host.resume().map_err(ControlError::from_host)?;
                reply.changed = !cleared.is_empty();
                reply.cleared = Some(cleared.iter().map(|r| type_name(&r)).collect());
            }
            Action::Rollback => {
                let receipt = self.host.rollback().map_err(ControlError::from_host)?;
                reply.changed = receipt.new_generation != receipt.old_generation;
                reply.previous_generation = Some(receipt.old_generation);
                reply.circuit_breaker_tripped = Some(receipt.circuit_breaker_tripped);
            }
            Action::Baseline => {
                let generation = self.host.set_baseline().map_err(ControlError::from_host)?;
                reply.baseline_generation = Some(generation);
            }
        }
        reply.generation = self.generation();
        reply.safe_mode = status::safe_mode(self.host.executor().control_safety());
        Ok(reply)
    }

    /// Copies the new audit events into the metrics and the ring, and
    /// publishes a new generation to the watchers.
    pub(super) fn sync(&mut self) {
        while let Some(event) = self.events.try_next() {
            self.metrics.on_event(&event);
            let view = Arc::new(EventView::new(&event));
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
            self.shared.audit.push(view);
        }
        if self.fleet.is_some() {
            // Readers see what the fleet published (`show`), not the
            // executor's configuration.
            return;
        }
        let snapshot = self.shared.config.snapshot();
        if snapshot.generation != self.published {
            self.published = snapshot.generation;
            let event = ConfigEvent {
                generation: snapshot.generation,
                json: config_json(&self.shared.space, &snapshot).into(),
            };
            self.watch.send_replace(Arc::new(event));
        }
    }

    fn maintain(&mut self) {
        self.next_maintain = Instant::now() + self.maintain_every;
        if let Err(e) = self.host.maintain() {
            self.on_error(&e);
        }
        self.sync();
        self.shared.metrics.run_upkeep();
        let failing = self.host.log_stats().is_some_and(|s| s.failing);
        self.shared.ready.store(!failing, Ordering::Release);
        self.publish_status();
    }

    pub(super) fn publish_status(&mut self) {
        let lost = self.events.lost();
        self.metrics.refresh(&self.host, lost);
        let now = self.now_us();
        let decisions: Vec<_> = self.last_decisions.iter().cloned().collect();
        let extras = Extras {
            telemetry: self.telemetry,
            window: self.windows.view(now),
            audit: audit_status(&self.host, lost),
            last_decisions: &decisions,
            fleet: self.fleet.as_ref().map(FleetSide::status),
        };
        let status = status::build(&self.host, extras);
        self.shared.status.store(Arc::new(status));
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

fn audit_status<C: Clock>(host: &Host<C>, observer_lost: u64) -> AuditStatus {
    AuditStatus {
        logged_events: host.logged_events(),
        durable_seq: host.durable_seq(),
        durable_lag: crate::metrics::durable_lag(host),
        log_failing: host.log_stats().is_some_and(|s| s.failing),
        observer_lost,
    }
}
