//! The control thread: the one owner of the [`Host`], and the handle
//! everything else reaches it through.
//!
//! [`Control::start`] moves a host onto a thread of its own. Requests that
//! make the executor decide (reported digests, operator calls) reach it
//! as commands over a bounded channel; when the channel is full they are
//! refused at once ([`ControlError::Busy`]), never queued without bound.
//! Everything a reader needs is published by the thread after each
//! command and on its timer and read without asking it: the live config
//! (straight from the lock-free `AtomicConfig`), each new generation
//! (a `tokio::sync::watch` channel: a watcher that falls behind only skips
//! to the latest), the [`Status`], the recent audit events and the
//! metrics.

mod attached;
mod fleet;
mod worker;

pub use attached::Attached;

use crate::audit::{AuditPage, AuditRing, AUDIT_RING_CAPACITY};
use crate::feed::{Feed, FEED_CAPACITY};
use crate::fleet::{Coordinator, FleetStatus, LeaderView, Opening, ReadBarrier};
use crate::metrics::Metrics;
use crate::status::{SafeModeView, Status};
use arc_swap::ArcSwap;
use hotpath::{AtomicConfig, Clock, ConfigSnapshot, NamedValues, ParamSpace, Violation};
use hotpath_config::telemetry::Reported;
use hotpath_host::{Handoff, Host, HostError, ShutdownPolicy, ShutdownReport};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// How the control thread runs.
///
/// ```
/// let options = hotpath_server::ControlOptions::default();
/// assert_eq!(options.queue_capacity, 256);
/// assert_eq!(options.window, None); // derived from the engine's settings
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlOptions {
    /// Commands waiting for the thread at most; more are refused
    /// ([`ControlError::Busy`]).
    pub queue_capacity: usize,
    /// How long a caller waits for the thread's answer.
    pub reply_timeout: Duration,
    /// How often the thread maintains the host (drains the audit queue,
    /// saves the state if due) and refreshes the status and the metrics.
    pub maintain_every: Duration,
    /// The aggregation window's length; `None`:
    /// [`default_window`](crate::default_window) of the engine's settings.
    pub window: Option<Duration>,
    /// Events the ring of recent audit events keeps.
    pub audit_ring: usize,
    /// Capacity of the thread's audit subscription.
    pub subscription_capacity: usize,
    /// Distinct `instance` label values in the metrics, at most (then
    /// `_other`).
    pub max_instances: usize,
    /// Items the live feed of `GET /v1/events` keeps.
    pub feed_capacity: usize,
    /// Whether reported digests are taken (`false` for a host whose owner
    /// measures its own telemetry, as `hotpath demo` does: a report is
    /// then [`ControlError::TelemetryNotAccepted`]).
    pub accept_telemetry: bool,
}

impl Default for ControlOptions {
    fn default() -> Self {
        Self {
            queue_capacity: 256,
            reply_timeout: Duration::from_secs(5),
            maintain_every: Duration::from_millis(100),
            window: None,
            audit_ring: AUDIT_RING_CAPACITY,
            subscription_capacity: 8192,
            max_instances: 64,
            feed_capacity: FEED_CAPACITY,
            accept_telemetry: true,
        }
    }
}

/// The default aggregation window for engine settings: short enough that
/// an evaluation (`eval_window_digests` windows) fills twice over within
/// `eval_window_us`, never shorter than the settle time, clamped to
/// 10 ms ..= 10 s.
///
/// ```
/// use hotpath::AdaptiveEngineConfig;
/// use std::time::Duration;
///
/// let settings = AdaptiveEngineConfig::default(); // 5 digests in 500 ms
/// assert_eq!(hotpath_server::default_window(&settings), Duration::from_millis(50));
/// ```
pub fn default_window(settings: &hotpath::AdaptiveEngineConfig) -> Duration {
    let spsa = &settings.spsa;
    let per = spsa.eval_window_us / (2 * spsa.eval_window_digests.max(1) as u64);
    Duration::from_micros(per.max(spsa.settle_time_us).clamp(10_000, 10_000_000))
}

/// Why the control thread did not do what was asked.
///
/// ```
/// use hotpath_server::ControlError;
///
/// assert_eq!(ControlError::Busy.code(), "busy");
/// assert_eq!(ControlError::Refused(hotpath::Violation::NoBaseline).code(), "refused");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// Its queue is full: try again shortly.
    #[error("the control thread is busy; try again")]
    Busy,
    /// It did not answer within the reply timeout (the command may still
    /// be carried out).
    #[error("the control thread did not answer in time")]
    Timeout,
    /// It has stopped (shut down, or shutting down).
    #[error("the control thread has stopped")]
    Stopped,
    /// The executor refused the request.
    #[error("refused: {0}")]
    Refused(Violation),
    /// The host failed (the message names what and where).
    #[error("{0}")]
    Host(String),
    /// In fleet mode: this instance is a standby; the leader, if one is
    /// known, takes the request.
    #[error("this instance does not lead its fleet{}", leader.as_ref().map(|l| format!("; the leader is {} at {}", l.instance, l.address)).unwrap_or_default())]
    NotLeader {
        /// The leader, if one is known.
        leader: Option<LeaderView>,
    },
    /// This host measures its own telemetry and takes none over the API
    /// ([`ControlOptions::accept_telemetry`]).
    #[error("this tuner measures its own telemetry and takes none over the API")]
    TelemetryNotAccepted,
}

impl ControlError {
    /// The error's code in the API's JSON errors.
    pub fn code(&self) -> &'static str {
        match self {
            ControlError::Busy => "busy",
            ControlError::Timeout => "timeout",
            ControlError::Stopped => "shutting_down",
            ControlError::Refused(_) => "refused",
            ControlError::Host(_) => "internal",
            ControlError::NotLeader { .. } => "not_leader",
            ControlError::TelemetryNotAccepted => "telemetry_not_accepted",
        }
    }

    fn from_host(e: HostError) -> Self {
        match e {
            HostError::Refused(v) => ControlError::Refused(v),
            other => ControlError::Host(other.to_string()),
        }
    }
}

/// An operator's request.
///
/// ```
/// assert_eq!(hotpath_server::Action::Freeze.name(), "freeze");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The kill switch: latch safe mode (`Manual`) until resumed.
    Freeze,
    /// Clear the latched reasons (but `Misconfigured`).
    Resume,
    /// Restore the baseline.
    Rollback,
    /// Record the centre as the baseline.
    Baseline,
}

impl Action {
    /// The action's name, as in the API's path.
    pub fn name(self) -> &'static str {
        match self {
            Action::Freeze => "freeze",
            Action::Resume => "resume",
            Action::Rollback => "rollback",
            Action::Baseline => "baseline",
        }
    }
}

/// What an operator's request did.
///
/// ```
/// # use hotpath_server::OperatorReply;
/// fn describe(r: &OperatorReply) -> String {
///     format!("{}: {} (generation {})", r.action, if r.changed { "done" } else { "nothing to do" }, r.generation)
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperatorReply {
    /// The action.
    pub action: &'static str,
    /// Whether it changed anything (a second freeze or rollback does not).
    pub changed: bool,
    /// The live generation after it.
    pub generation: u64,
    /// `rollback`: the generation before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_generation: Option<u64>,
    /// `rollback`: whether it tripped the rollback circuit breaker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub circuit_breaker_tripped: Option<bool>,
    /// `baseline`: the baseline's generation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_generation: Option<u64>,
    /// `resume`: the reasons cleared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleared: Option<Vec<String>>,
    /// Safe mode after it.
    pub safe_mode: SafeModeView,
}

/// What a report of digests did.
///
/// ```
/// let counts = hotpath_server::IngestCounts::default();
/// assert_eq!((counts.accepted, counts.stale), (0, 0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IngestCounts {
    /// Digests counted into the open window.
    pub accepted: u64,
    /// Digests of another generation, counted and dropped.
    pub stale: u64,
    /// The live generation after them.
    pub generation: u64,
}

/// A published configuration: its generation, its JSON
/// (`{"generation": N, "values": {…}}`) and its Server-Sent-Event frame,
/// each serialised once for every watcher.
///
/// ```
/// # use hotpath_server::ConfigEvent;
/// fn line(e: &ConfigEvent) -> String { format!("id: {}\ndata: {}\n", e.generation, e.json) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEvent {
    /// The generation.
    pub generation: u64,
    /// `{"generation": N, "values": {name: typed value}}`.
    pub json: Arc<str>,
    /// `event: config\nid: N\ndata: JSON\n\n`, what every watch stream
    /// sends (a reference-counted buffer: a thousand watchers share one).
    pub(crate) frame: axum::body::Bytes,
}

impl ConfigEvent {
    /// The event of `generation` with its `json`.
    pub(crate) fn new(generation: u64, json: String) -> Self {
        let frame = format!("event: config\nid: {generation}\ndata: {json}\n\n");
        Self {
            generation,
            json: json.into(),
            frame: frame.into(),
        }
    }
}

/// The JSON of a configuration.
#[derive(Serialize)]
struct ConfigBody<'a> {
    generation: u64,
    values: NamedValues<'a>,
}

/// `{"generation": N, "values": {…}}` for `snapshot`.
pub(crate) fn config_json(space: &ParamSpace, snapshot: &ConfigSnapshot) -> String {
    let body = ConfigBody {
        generation: snapshot.generation,
        values: space.named(&snapshot.params),
    };
    serde_json::to_string(&body).unwrap_or_else(|_| String::from("{}"))
}

/// Where a command's answer goes: an async caller or a blocking one.
pub(crate) enum Reply<T> {
    Async(oneshot::Sender<T>),
    Blocking(SyncSender<T>),
}

impl<T> Reply<T> {
    pub(crate) fn send(self, value: T) {
        // A caller that stopped waiting is no one's problem.
        match self {
            Reply::Async(tx) => drop(tx.send(value)),
            Reply::Blocking(tx) => drop(tx.send(value)),
        }
    }
}

/// A command for the control thread.
pub(crate) enum Command {
    Report {
        digests: Vec<Reported>,
        reply: Reply<Result<IngestCounts, ControlError>>,
    },
    Operate {
        action: Action,
        reply: Reply<Result<OperatorReply, ControlError>>,
    },
    Shutdown {
        policy: ShutdownPolicy,
        reply: SyncSender<Result<ShutdownReport, HostError>>,
    },
    /// Something for the thread to look at now (a coordinator's news).
    Wake,
}

impl Command {
    /// Answers a command that is not carried out with `refusal` (a
    /// shutdown or a wake has no answer to give).
    pub(crate) fn refuse(self, refusal: ControlError) {
        match self {
            Command::Report { reply, .. } => reply.send(Err(refusal)),
            Command::Operate { reply, .. } => reply.send(Err(refusal)),
            Command::Shutdown { .. } | Command::Wake => {}
        }
    }
}

/// Wakes the control thread at once (instead of at its next tick): a
/// coordinator calls it when it has news (a publication, a won election,
/// a lost leadership). Cheap to clone; never blocks (a full queue means
/// the thread is awake anyway).
///
/// ```
/// # fn news(waker: &hotpath_server::Waker) {
/// waker.wake();
/// # }
/// ```
#[derive(Clone)]
pub struct Waker(SyncSender<Command>);

impl Waker {
    /// Wakes the thread.
    pub fn wake(&self) {
        let _ = self.0.try_send(Command::Wake);
    }
}

impl std::fmt::Debug for Waker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Waker")
    }
}

/// A configuration as `GET /v1/config` answers it (see
/// [`ControlHandle::fresh_config`]).
///
/// ```
/// # use hotpath_server::FreshView;
/// fn newer(a: &FreshView, b: &FreshView) -> bool { a.generation > b.generation }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreshView {
    /// Its generation.
    pub generation: u64,
    /// `{"generation": N, "values": {…}}`.
    pub json: String,
    /// `false` when a fleet's coordinator did not confirm it is the
    /// latest.
    pub confirmed: bool,
}

/// Where readers read the configuration from.
pub(crate) enum Readers {
    /// The executor's `AtomicConfig`, lock-free.
    Executor,
    /// What the fleet published ([`Visible`]), and the coordinator's
    /// linearizable read if it has one.
    Fleet(Option<Arc<dyn ReadBarrier>>),
}

/// What readers see in fleet mode: the configuration the fleet last
/// published (never one the executor decided and the fleet does not hold).
pub(crate) struct Visible {
    pub(crate) snapshot: Arc<ConfigSnapshot>,
    pub(crate) event: Arc<ConfigEvent>,
}

/// What the control thread publishes for readers.
pub(crate) struct Shared {
    pub(crate) config: Arc<AtomicConfig>,
    pub(crate) space: Arc<ParamSpace>,
    pub(crate) watch: watch::Receiver<Arc<ConfigEvent>>,
    pub(crate) status: ArcSwap<Status>,
    pub(crate) audit: AuditRing,
    pub(crate) feed: Feed,
    /// `{"knobs": […]}`, serialised once.
    pub(crate) knobs: Arc<str>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) ready: AtomicBool,
    pub(crate) window: Duration,
    /// Fleet mode: the published configuration (`config` is then not
    /// read: it is the executor's, ahead of the publication).
    pub(crate) published: Option<ArcSwap<Visible>>,
    /// Fleet mode: the coordinator's linearizable read, if it has one.
    pub(crate) barrier: Option<Arc<dyn ReadBarrier>>,
}

/// The way to the control thread, for handlers, a demo feeding its
/// digests, or anything else in the process. Cheap to clone.
///
/// ```
/// use hotpath::{Knob, ParamSpace};
/// use hotpath_server::{Action, Control, ControlOptions};
/// use hotpath_host::{Host, HostOptions, ShutdownPolicy};
/// use std::sync::Arc;
///
/// let space = Arc::new(ParamSpace::new(vec![Knob::int("batch", 1, 512, 64)])?);
/// let settings = hotpath::AdaptiveEngineConfig::bounded(vec![(1.0, 512.0)]);
/// let host = Host::open(space, settings, HostOptions::in_memory(), hotpath::SystemClock::new())?;
/// let control = Control::start(host, ControlOptions::default())?;
/// let handle = control.handle();
/// assert_eq!(handle.config_json(), r#"{"generation":0,"values":{"batch":64}}"#);
/// let reply = handle.operate_blocking(Action::Freeze)?;
/// assert!(reply.changed && reply.safe_mode.active);
/// control.shutdown(ShutdownPolicy::default())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ControlHandle {
    shared: Arc<Shared>,
    tx: SyncSender<Command>,
    reply_timeout: Duration,
}

impl std::fmt::Debug for ControlHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlHandle")
            .field("generation", &self.snapshot().generation)
            .finish()
    }
}

impl ControlHandle {
    /// The live configuration, read lock-free (no round trip). In fleet
    /// mode, the configuration the fleet last published, as this instance
    /// has received it.
    pub fn snapshot(&self) -> Arc<ConfigSnapshot> {
        match &self.shared.published {
            Some(published) => Arc::clone(&published.load().snapshot),
            None => self.shared.config.snapshot(),
        }
    }

    /// `{"generation": N, "values": {name: typed value}}` of the live
    /// configuration (see [`snapshot`](Self::snapshot)), read lock-free.
    pub fn config_json(&self) -> String {
        match &self.shared.published {
            Some(published) => published.load().event.json.to_string(),
            None => config_json(&self.shared.space, &self.snapshot()),
        }
    }

    /// What `GET /v1/config` answers: [`config_json`](Self::config_json)
    /// with its generation, or in fleet mode the newer of it and a fresh
    /// read of the fleet's coordinator begun now (see [`ReadBarrier`]).
    /// `confirmed` is `false` in fleet mode when the coordinator did not
    /// answer in time: the instance's own view is served then. Never
    /// fails.
    pub async fn fresh_config(&self) -> FreshView {
        let mine = |confirmed| match &self.shared.published {
            Some(published) => {
                let event = &published.load().event;
                FreshView {
                    generation: event.generation,
                    json: event.json.to_string(),
                    confirmed,
                }
            }
            None => {
                let snapshot = self.snapshot();
                FreshView {
                    generation: snapshot.generation,
                    json: config_json(&self.shared.space, &snapshot),
                    confirmed,
                }
            }
        };
        let Some(barrier) = &self.shared.barrier else {
            return mine(true);
        };
        match barrier.fresh().await {
            Some((generation, json)) => {
                let view = mine(true);
                if generation > view.generation {
                    FreshView {
                        generation,
                        json: json.to_string(),
                        confirmed: true,
                    }
                } else {
                    view
                }
            }
            None => mine(false),
        }
    }

    /// In fleet mode, the fleet as the control thread last saw it (the
    /// `fleet` section of the [`status`](Self::status)).
    pub fn fleet(&self) -> Option<FleetStatus> {
        self.status().fleet.clone()
    }

    /// The knobs.
    pub fn space(&self) -> &Arc<ParamSpace> {
        &self.shared.space
    }

    /// A receiver of every published configuration (the latest only, for
    /// a receiver that falls behind).
    pub fn watch(&self) -> watch::Receiver<Arc<ConfigEvent>> {
        self.shared.watch.clone()
    }

    /// The status as of the thread's last command or tick.
    pub fn status(&self) -> Arc<Status> {
        self.shared.status.load_full()
    }

    /// Recent audit events after `after` (see [`AuditPage`]).
    pub fn audit(&self, after: Option<u64>, limit: usize) -> AuditPage {
        self.shared.audit.page(after, limit)
    }

    /// `{"knobs": [KnobView, …]}` (see [`KnobView`](crate::KnobView)),
    /// serialised once.
    pub fn knobs_json(&self) -> Arc<str> {
        Arc::clone(&self.shared.knobs)
    }

    pub(crate) fn feed(&self) -> &Feed {
        &self.shared.feed
    }

    /// The metrics the thread keeps.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    /// `true` while the host is open, the thread running and the audit log
    /// writing.
    pub fn is_ready(&self) -> bool {
        self.shared.ready.load(Ordering::Acquire)
    }

    /// The aggregation window's length.
    pub fn window(&self) -> Duration {
        self.shared.window
    }

    /// Reports digests (see the [window rule](crate::window)).
    ///
    /// # Errors
    ///
    /// [`ControlError::Busy`], [`ControlError::Timeout`],
    /// [`ControlError::Stopped`], [`ControlError::TelemetryNotAccepted`];
    /// [`ControlError::NotLeader`] on a fleet's standby.
    pub async fn report(&self, digests: Vec<Reported>) -> Result<IngestCounts, ControlError> {
        self.call(|reply| Command::Report { digests, reply })
            .await?
    }

    /// [`report`](Self::report) from a thread that is not async (a
    /// workload's own measuring thread).
    ///
    /// # Errors
    ///
    /// As [`report`](Self::report).
    pub fn report_blocking(&self, digests: Vec<Reported>) -> Result<IngestCounts, ControlError> {
        self.call_blocking(|reply| Command::Report { digests, reply })?
    }

    /// Carries out an operator's request through the host (audited).
    ///
    /// # Errors
    ///
    /// [`ControlError::Refused`] with the executor's violation (a rollback
    /// without a baseline), [`ControlError::Host`], and as
    /// [`report`](Self::report).
    pub async fn operate(&self, action: Action) -> Result<OperatorReply, ControlError> {
        self.call(|reply| Command::Operate { action, reply })
            .await?
    }

    /// [`operate`](Self::operate) from a thread that is not async.
    ///
    /// # Errors
    ///
    /// As [`operate`](Self::operate).
    pub fn operate_blocking(&self, action: Action) -> Result<OperatorReply, ControlError> {
        self.call_blocking(|reply| Command::Operate { action, reply })?
    }

    fn submit(&self, command: Command) -> Result<(), ControlError> {
        match self.tx.try_send(command) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.shared.metrics.count_busy();
                Err(ControlError::Busy)
            }
            Err(TrySendError::Disconnected(_)) => Err(ControlError::Stopped),
        }
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, ControlError> {
        let (tx, rx) = oneshot::channel();
        self.submit(make(Reply::Async(tx)))?;
        match tokio::time::timeout(self.reply_timeout, rx).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => Err(ControlError::Stopped),
            Err(_) => Err(ControlError::Timeout),
        }
    }

    fn call_blocking<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, ControlError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(make(Reply::Blocking(tx)))?;
        rx.recv_timeout(self.reply_timeout).map_err(|e| match e {
            mpsc::RecvTimeoutError::Timeout => ControlError::Timeout,
            mpsc::RecvTimeoutError::Disconnected => ControlError::Stopped,
        })
    }
}

/// The worker for `host` (subscribed, its state published), the handle
/// to it, and the end of its command queue: what [`Control`] and
/// [`Attached`] both start from.
fn prepare<C: Clock>(
    host: &mut Host<C>,
    options: &ControlOptions,
    readers: Readers,
) -> Result<(worker::Worker, ControlHandle, mpsc::Receiver<Command>), ControlError> {
    let window = options
        .window
        .unwrap_or_else(|| default_window(host.engine().settings()));
    let (tx, rx) = mpsc::sync_channel(options.queue_capacity.max(1));
    let (worker, shared) = worker::Worker::new(host, options, window, readers)
        .map_err(|e| ControlError::Host(e.to_string()))?;
    let handle = ControlHandle {
        shared,
        tx,
        reply_timeout: options.reply_timeout,
    };
    Ok((worker, handle, rx))
}

/// The running control thread: see the [crate docs](crate#architecture).
pub struct Control {
    handle: ControlHandle,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("handle", &self.handle)
            .finish()
    }
}

impl Control {
    /// Moves `host` onto a new thread (`hotpath-control`) and starts it
    /// (see [`ControlHandle`] for an example).
    ///
    /// # Errors
    ///
    /// [`ControlError::Host`] if the thread cannot be started or
    /// `subscription_capacity` is out of the host's range (1..=2^20); the
    /// host is then dropped, which closes its log.
    pub fn start<C: Clock + Send + 'static>(
        mut host: Host<C>,
        options: ControlOptions,
    ) -> Result<Self, ControlError> {
        let (worker, handle, rx) = prepare(&mut host, &options, Readers::Executor)?;
        Self::spawn(worker, handle, rx, host, None)
    }

    /// Starts the control thread of a fleet's instance (see the [`fleet`
    /// module](crate::fleet)): it begins as a standby, viewing what
    /// `coordinator` last published (the space's initial values at
    /// generation 0 before the fleet's first publication), and opens hosts
    /// with `open`: a leader's when the coordinator says so, a view of
    /// each new publication meanwhile. `barrier`, if given, serves
    /// `GET /v1/config` linearizably (see [`ReadBarrier`]).
    ///
    /// # Errors
    ///
    /// [`ControlError::Host`] if the first view cannot be opened or the
    /// thread cannot be started.
    pub fn start_fleet<C, F>(
        mut open: F,
        mut coordinator: Box<dyn Coordinator>,
        barrier: Option<Arc<dyn ReadBarrier>>,
        options: ControlOptions,
    ) -> Result<Self, ControlError>
    where
        C: Clock + Send + 'static,
        F: FnMut(Opening, Handoff) -> Result<Host<C>, HostError> + Send + 'static,
    {
        let first = coordinator.take_published();
        let handoff = Handoff {
            state: first.as_ref().map(|p| (*p.state).clone()),
            above_generation: None,
        };
        let mut host =
            open(Opening::View, handoff).map_err(|e| ControlError::Host(e.to_string()))?;
        let (mut worker, handle, rx) = prepare(&mut host, &options, Readers::Fleet(barrier))?;
        coordinator.wake_with(Waker(handle.tx.clone()));
        let side = fleet::FleetSide::new(Box::new(open), coordinator);
        side.show_fleet(&mut worker, &mut host, false);
        Self::spawn(worker, handle, rx, host, Some(side))
    }

    /// Moves the loop ([`Worker::run`](worker::Worker::run)) onto a new
    /// thread, with the host it owns (and its fleet side).
    fn spawn<C: Clock + Send + 'static>(
        worker: worker::Worker,
        handle: ControlHandle,
        rx: mpsc::Receiver<Command>,
        host: Host<C>,
        fleet: Option<fleet::FleetSide<C>>,
    ) -> Result<Self, ControlError> {
        let thread = std::thread::Builder::new()
            .name("hotpath-control".into())
            .spawn(move || worker.run(host, fleet, rx))
            .map_err(|e| ControlError::Host(format!("cannot start the control thread: {e}")))?;
        Ok(Self {
            handle,
            thread: Some(thread),
        })
    }

    /// A handle to the thread.
    pub fn handle(&self) -> ControlHandle {
        self.handle.clone()
    }

    /// Stops the thread: the open window is dropped, then the host shuts
    /// down per `policy` (rollback if asked, the log flushed and closed,
    /// the state saved). Waits for it as long as the host's shutdown takes
    /// (bounded by the audit log's own shutdown timeout).
    ///
    /// # Errors
    ///
    /// [`ControlError::Host`] with the host's shutdown error,
    /// [`ControlError::Stopped`] if the thread had already stopped.
    pub fn shutdown(mut self, policy: ShutdownPolicy) -> Result<ShutdownReport, ControlError> {
        let (reply, rx) = mpsc::sync_channel(1);
        self.handle.shared.ready.store(false, Ordering::Release);
        let sent = self.handle.tx.send(Command::Shutdown { policy, reply });
        let result = match sent {
            Ok(()) => rx.recv().map_err(|_| ControlError::Stopped),
            Err(_) => Err(ControlError::Stopped),
        };
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                return Err(ControlError::Host("the control thread panicked".into()));
            }
        }
        result?.map_err(ControlError::from_host)
    }
}

impl Drop for Control {
    /// A control dropped without [`shutdown`](Control::shutdown) asks its
    /// thread to shut the host down with the default policy and does not
    /// wait.
    fn drop(&mut self) {
        if self.thread.is_some() {
            let (reply, _) = mpsc::sync_channel(1);
            let policy = ShutdownPolicy::default();
            let _ = self.handle.tx.try_send(Command::Shutdown { policy, reply });
        }
    }
}
