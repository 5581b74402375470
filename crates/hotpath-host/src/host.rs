//! [`Host`]: the engine, its durable audit log and its state file, with
//! the restart protocol written once.

use crate::error::HostError;
use crate::feed::{Feed, LogSummary};
use crate::options::{HostOptions, Resume, ShutdownPolicy, WhenFull};
use crate::tee::{Subscription, Tee};
use hotpath::{
    AdaptiveEngine, AdaptiveEngineConfig, ApplyReceipt, AtomicConfig, AuditEvent, Clock,
    ConfigReader, EngineError, ParamSpace, ParamVec, Proposal, ReasonSet, RollbackReceipt,
    SafetyExecutor, StepOutcome, TelemetryDigest,
};
use hotpath_config::TuningConfig;
use hotpath_durable::audit_log::LogHead;
use hotpath_durable::state::{check_against_log, GovernedState, StateStore};
use hotpath_durable::{AuditLogStats, OpenReport as LogOpenReport};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What [`Host::open`] found and recovered.
///
/// ```
/// # use hotpath_host::OpenReport;
/// fn describe(r: &OpenReport) -> String {
///     match &r.restored {
///         Some(state) => format!("restored generation {}", state.executor.live.generation),
///         None => format!("fresh start at generation {}", r.generation),
///     }
/// }
/// ```
#[derive(Debug, Clone)]
pub struct OpenReport {
    /// What opening the audit log found (earlier events, torn lines cut);
    /// `None` in memory.
    pub log: Option<LogOpenReport>,
    /// The state restored, as it was read; `None` for a fresh start.
    pub restored: Option<GovernedState>,
    /// The generation the executor started at (above the log's and the
    /// state's).
    pub generation: u64,
    /// The seq of the executor's first event (`Started` or `Restored`):
    /// the log's numbering continued.
    pub first_seq: u64,
    /// The events opening recorded (`Started` or `Restored`, then
    /// `BaselineSet`), oldest first. A [`subscribe`](Host::subscribe)
    /// comes too late for them, so an observer that shows the whole
    /// trail (a server's `/v1/audit`, a live feed) starts with these.
    pub events: Vec<AuditEvent>,
}

/// Where a fleet's new leader starts ([`Host::take_over`]): the governed
/// state the fleet last published, whose checkpoint is the head of the
/// fleet's audit chain, instead of a state file and a log of its own.
///
/// ```
/// use hotpath_host::Handoff;
///
/// let new_fleet = Handoff { state: None, above_generation: None };
/// assert!(new_fleet.state.is_none());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Handoff {
    /// The state last published, with its checkpoint; `None`: a new
    /// fleet (the space's initial values, the chain from the genesis).
    pub state: Option<GovernedState>,
    /// Start above this generation (the last one published, or seen): a
    /// new leader's first configuration is a new generation. `None`: at
    /// the state's own generation (a read-only view of the state).
    pub above_generation: Option<u64>,
}

/// What [`Host::shutdown`] did.
///
/// ```
/// # use hotpath_host::ShutdownReport;
/// fn events(r: &ShutdownReport) -> u64 { r.log.as_ref().map_or(0, |l| l.forwarded) }
/// ```
#[derive(Debug, Clone)]
pub struct ShutdownReport {
    /// The rollback to the baseline, if the policy asked for one.
    pub rollback: Option<RollbackReceipt>,
    /// The log, closed; `None` in memory.
    pub log: Option<LogSummary>,
    /// The state file, if the final state was saved there.
    pub state_file: Option<PathBuf>,
    /// State saves over the host's life.
    pub state_saves: u64,
}

/// A governed engine with its durable audit log and state file: what a
/// service, a daemon or a replay runs. The host is the only way its
/// events reach the log: every call that can make the executor decide
/// ([`step`](Self::step), the operator calls) drains the executor's audit
/// queue into the log and the [subscriptions](Self::subscribe) before it
/// returns.
///
/// # The restart protocol
///
/// [`open`](Self::open), on a fresh directory or after a crash alike:
///
/// 1. loads the state file (per [`Resume`]): a corrupt or foreign file is
///    an error, never a silent reset;
/// 2. opens the audit log, recovering it (a torn final line is cut and
///    reported), and checks the state is a checkpoint of it
///    ([`check_against_log`]: the log holds the event the state names,
///    with that hash, and agrees with its live values, generation and
///    baseline); a state that does not match, or is *ahead* of the log (it
///    names an event the log does not have), is an error naming both
///    files, never restored;
/// 3. builds the executor at a generation above both the state's and the
///    log's last, restoring the state (baseline, safe-mode latches,
///    windows, counters), its audit numbering continuing the log's;
/// 4. builds the engine on it, restoring its SPSA iteration, RNG position
///    and gains.
///
/// # Saving the state
///
/// The state file is saved as a checkpoint of the log: only once the log
/// has committed the last event the state covers (fsync'd; written to the
/// OS under `FsyncPolicy::Never`), so a crash or a power cut never leaves
/// a state ahead of its log. A due save ([`save_state_if_due`](Self::save_state_if_due))
/// takes the state and keeps it until the log has committed its events,
/// without waiting: it is written by the first call after that (the
/// next state is taken at the next due time). [`save_state`](Self::save_state)
/// waits for the log. The one case left, a power cut under
/// `FsyncPolicy::Never` losing events the state covers, is refused at the
/// next start ([`LogMismatch::AheadOfLog`](hotpath_durable::state::LogMismatch::AheadOfLog)).
///
/// ```
/// use hotpath::{AdaptiveEngineConfig, Knob, ManualClock, ParamSpace, ParamVec, TelemetryDigest};
/// use hotpath_host::{Host, HostOptions, ShutdownPolicy};
/// use std::sync::Arc;
///
/// let dir = tempfile::tempdir()?;
/// let space = Arc::new(ParamSpace::new(vec![Knob::real("batch_size", 1.0, 512.0, 64.0)])?);
/// let settings = AdaptiveEngineConfig::bounded(vec![(1.0, 512.0)]);
/// for run in 0..2 {
///     let clock = ManualClock::new(0);
///     let mut host = Host::open(space.clone(), settings.clone(),
///                               HostOptions::in_dir(dir.path()), clock.clone())?;
///     assert_eq!(host.open_report().restored.is_some(), run == 1);
///     let mut reader = host.reader();             // the service reads its knobs here
///     for _ in 0..20 {
///         clock.advance(100_000);
///         let snap = reader.get();
///         let digest = TelemetryDigest::new(100_000, snap.params[0] / 64.0, 50)
///             .with_generation(snap.generation);
///         host.step(digest)?;                     // decides, logs, saves if due
///     }
///     host.shutdown(ShutdownPolicy::default())?;  // saves the state, closes the log
/// }
/// let chain = hotpath_durable::verify(dir.path().join("audit"))?;
/// assert_eq!(chain.first_seq, Some(0));           // one chain across both runs
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Host<C: Clock = hotpath::SystemClock> {
    engine: AdaptiveEngine<C>,
    space: Arc<ParamSpace>,
    feed: Option<Feed>,
    store: Option<StateStore>,
    save_interval_us: Option<u64>,
    /// A due save waiting for the log to commit the events it covers.
    pending: Option<PendingSave>,
    /// Once the log is closed: the last event it committed.
    closed_log: Option<Option<LogHead>>,
    tee: Tee,
    report: OpenReport,
}

/// A state taken for saving, and the seq of the last event it covers.
struct PendingSave {
    state: GovernedState,
    seq: u64,
    taken_us: u64,
}

impl<C: Clock> Host<C> {
    /// Opens the log and the state and builds the engine: see [the
    /// restart protocol](Self#the-restart-protocol). The space's initial
    /// values are used only for a fresh start. The events of the start (`Started` or
    /// `Restored`, the baseline) are handed to the log before it returns.
    ///
    /// # Errors
    ///
    /// [`HostError::State`] for a state file that cannot be read,
    /// [`HostError::NoState`] when one is required and missing,
    /// [`HostError::InvalidOption`] for options out of range,
    /// [`HostError::AuditLog`] for a log that cannot be opened (locked,
    /// damaged before its end), [`HostError::Engine`] for settings the
    /// engine refuses, [`HostError::Restore`] for a state that does not
    /// fit them, [`HostError::State`] with
    /// [`StateError::LogMismatch`](hotpath_durable::state::StateError::LogMismatch)
    /// for a state that is not a checkpoint of the log,
    /// [`HostError::Io`] for a state directory that cannot be created.
    pub fn open(
        space: Arc<ParamSpace>,
        settings: AdaptiveEngineConfig,
        options: HostOptions,
        clock: C,
    ) -> Result<Self, HostError> {
        Self::start(space, settings, options, clock, None)
    }

    /// Opens a fleet's new leader on the state the fleet last published:
    /// its log is a new segment in `options.audit_dir` continuing the
    /// fleet's chain from the state's checkpoint (see
    /// [`AuditLog::open_segment`](hotpath_durable::AuditLog::open_segment)),
    /// its executor restores the state (latches, windows, counters,
    /// baseline) at a generation above `above_generation` and above this
    /// directory's own last one, its audit numbering continues the
    /// checkpoint's, and the engine restores its part. There is no state
    /// file (the fleet keeps the state): `options.state_file` must be
    /// `None`. In memory (`audit_dir` `None`), this is a view of the
    /// published state (a standby's status).
    ///
    /// ```
    /// use hotpath::{AdaptiveEngineConfig, Knob, ManualClock, ParamSpace};
    /// use hotpath_host::{Handoff, Host, HostOptions, ShutdownPolicy};
    /// use std::sync::Arc;
    ///
    /// let (a, b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    /// let space = Arc::new(ParamSpace::new(vec![Knob::real("a", 0.0, 1.0, 0.5)])?);
    /// let settings = AdaptiveEngineConfig::bounded(vec![(0.0, 1.0)]);
    /// let leader = |dir: &std::path::Path| HostOptions {
    ///     state_file: None, ..HostOptions::in_dir(dir)
    /// };
    /// let first = Handoff { state: None, above_generation: None };
    /// let mut one = Host::take_over(space.clone(), settings.clone(), leader(a.path()),
    ///                               ManualClock::new(0), first)?;
    /// one.freeze()?;
    /// let published = one.checkpoint()?;             // what the fleet keeps
    /// let generation = one.executor().generation();
    /// drop(one);                                     // the leader dies
    /// let handoff = Handoff { state: Some(published), above_generation: Some(generation) };
    /// let two = Host::take_over(space, settings, leader(b.path()), ManualClock::new(0), handoff)?;
    /// assert!(two.executor().control_safety().is_latched());      // still frozen
    /// assert!(two.executor().generation() > generation);
    /// let chain = hotpath_durable::verify_fleet(&[a.path().join("audit"), b.path().join("audit")])?;
    /// assert_eq!(chain.chain.first_seq, Some(0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open); [`HostError::Options`] with a state file;
    /// [`HostError::Handoff`] for a state whose checkpoint does not name
    /// its last event.
    pub fn take_over(
        space: Arc<ParamSpace>,
        settings: AdaptiveEngineConfig,
        options: HostOptions,
        clock: C,
        handoff: Handoff,
    ) -> Result<Self, HostError> {
        if options.state_file.is_some() {
            return Err(HostError::Options(
                "a fleet keeps the state: a take-over has no state file",
            ));
        }
        if let Some(state) = &handoff.state {
            let named = state.checkpoint.map(|c| c.seq);
            if options.audit_dir.is_some() && named != state.last_seq() {
                return Err(HostError::Handoff(
                    "the state's checkpoint does not name its last audit event",
                ));
            }
        }
        Self::start(space, settings, options, clock, Some(handoff))
    }

    fn start(
        space: Arc<ParamSpace>,
        settings: AdaptiveEngineConfig,
        options: HostOptions,
        clock: C,
        handoff: Option<Handoff>,
    ) -> Result<Self, HostError> {
        options.validate()?;
        let mut store = options
            .state_file
            .as_ref()
            .map(|path| StateStore::new(path, options.state_save_interval_us.unwrap_or(0)));
        // A handoff's log is a segment continuing the fleet's chain from
        // the state's checkpoint.
        let handoff_head = handoff
            .as_ref()
            .map(|h| h.state.as_ref().and_then(|s| s.checkpoint));
        let (saved, above) = match handoff {
            Some(h) => (h.state, h.above_generation),
            None => (load_state(store.as_mut(), options.resume)?, None),
        };
        if let Some(dir) = store.as_ref().and_then(|s| parent(s.path())) {
            std::fs::create_dir_all(dir).map_err(|source| HostError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let feed = match (&options.audit_dir, handoff_head) {
            (Some(dir), Some(from)) => Some(Feed::open_segment(dir, &options, from)?),
            (Some(dir), None) => Some(Feed::open(dir, &options)?),
            (None, _) => None,
        };
        if let (Some(state), Some(store), Some(feed)) = (&saved, &store, &feed) {
            check_against_log(state, store.path(), feed.log().dir())?;
        }
        let log_report = feed.as_ref().map(|f| f.open_report().clone());
        let logged_generation = log_report.as_ref().and_then(|r| r.last_generation);
        let executor = build_executor(
            &space,
            space.initial(),
            &settings,
            saved.as_ref(),
            feed.as_ref().map(|f| f.log().next_seq()),
            (logged_generation, above),
            clock,
        )
        .map_err(|e| restore_error(&store, saved.is_some(), e))?;
        let first_seq = feed.as_ref().map_or(0, |f| f.log().next_seq());
        let generation = executor.generation();
        let mut engine = AdaptiveEngine::with_executor(settings, executor)
            .map_err(|e| restore_error(&store, saved.is_some(), e))?;
        if let Some(engine_state) = saved.as_ref().and_then(|s| s.engine.clone()) {
            engine
                .restore_state(engine_state)
                .map_err(|e| restore_error(&store, true, e))?;
        }
        let mut host = Self {
            engine,
            space,
            feed,
            store,
            save_interval_us: options.state_save_interval_us,
            pending: None,
            closed_log: None,
            tee: Tee::default(),
            report: OpenReport {
                log: log_report,
                restored: saved,
                generation,
                first_seq,
                events: Vec::new(),
            },
        };
        // Room for exactly what the executor queued while opening: the
        // drain below takes all of it, so none is lost.
        let waiting = host.engine.executor().audit_queue().len();
        let opening = host.tee.subscribe(waiting.max(1))?;
        host.drain()?;
        host.report.events = std::iter::from_fn(|| opening.try_next()).collect();
        Ok(host)
    }

    /// [`open`](Self::open) with a validated config's parameters, initial
    /// values and settings.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    ///
    /// ```
    /// use hotpath_host::{Host, HostOptions};
    /// use std::path::Path;
    ///
    /// let text = "[[param]]\nname = \"a\"\nmin = 0\nmax = 1\ninitial = 0.5\n";
    /// let config = hotpath_config::parse("t.toml", text, Path::new(""), &[]).expect("valid");
    /// let host = Host::from_config(&config, HostOptions::in_memory(), hotpath::ManualClock::new(0))?;
    /// assert_eq!(host.space().name(0), "a");
    /// # Ok::<(), hotpath_host::HostError>(())
    /// ```
    pub fn from_config(
        config: &TuningConfig,
        options: HostOptions,
        clock: C,
    ) -> Result<Self, HostError> {
        Self::open(
            Arc::clone(&config.space),
            config.engine.clone(),
            options,
            clock,
        )
    }

    /// Feeds one digest to the engine (which decides and, if it moves,
    /// applies through the executor), drains the audit queue into the log
    /// and the subscriptions, then saves the state if it is due.
    ///
    /// # Errors
    ///
    /// [`HostError::Digest`] for a digest the engine refused (nothing
    /// changed); [`HostError::AuditStalled`] if the log took nothing for
    /// the [stall timeout](HostOptions::stall_timeout) under [`WhenFull::Wait`];
    /// [`HostError::State`] if a due save failed.
    pub fn step(&mut self, digest: TelemetryDigest) -> Result<StepOutcome, HostError> {
        let outcome = self.engine.step(digest);
        self.drain()?;
        let outcome = outcome.map_err(HostError::Digest)?;
        self.save_state_if_due()?;
        Ok(outcome)
    }

    /// What a loop does on a tick without a digest: drains the audit
    /// queue and saves the state if it is due.
    ///
    /// # Errors
    ///
    /// As [`step`](Self::step), less the digest.
    pub fn maintain(&mut self) -> Result<(), HostError> {
        self.drain()?;
        self.save_state_if_due().map(drop)
    }

    /// Moves what the executor queued to the log and the subscriptions.
    /// Under [`WhenFull::Hold`] it stops at the first event the log has no
    /// room for (kept for the next call); under [`WhenFull::Wait`] it
    /// waits for room.
    ///
    /// # Errors
    ///
    /// [`HostError::AuditStalled`] (only under [`WhenFull::Wait`]).
    pub fn drain(&mut self) -> Result<(), HostError> {
        if let Some(feed) = &mut self.feed {
            if !feed.release()? {
                return Ok(());
            }
        }
        let queue = self.engine.executor().audit_queue();
        while let Some(event) = queue.try_dequeue() {
            self.tee.send(&event);
            if let Some(feed) = &mut self.feed {
                if !feed.forward(event)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// A proposal of the operator's (or of another proposer) through the
    /// engine, which then follows the executor's verdict; then drains.
    ///
    /// # Errors
    ///
    /// [`HostError::Refused`] with the executor's [`Violation`](hotpath::Violation);
    /// a draining error first.
    pub fn apply(&mut self, proposal: Proposal) -> Result<ApplyReceipt, HostError> {
        let result = self.engine.apply(proposal);
        self.drain()?;
        result.map_err(HostError::Refused)
    }

    /// The manual kill switch: latches safe mode until
    /// [`resume`](Self::resume); then drains.
    ///
    /// # Errors
    ///
    /// A draining error.
    pub fn freeze(&mut self) -> Result<(), HostError> {
        self.engine.executor_mut().freeze();
        self.drain()
    }

    /// A fleet's leader lost its coordinator: latches `CoordinatorLost`
    /// (see [`SafetyExecutor::coordinator_lost`](hotpath::SafetyExecutor::coordinator_lost));
    /// then drains.
    ///
    /// # Errors
    ///
    /// A draining error.
    pub fn coordinator_lost(&mut self) -> Result<(), HostError> {
        self.engine.executor_mut().coordinator_lost();
        self.drain()
    }

    /// A fleet's leader re-established its leadership: clears
    /// `CoordinatorLost` (see
    /// [`SafetyExecutor::coordinator_regained`](hotpath::SafetyExecutor::coordinator_regained));
    /// then drains. Whether it cleared it.
    ///
    /// # Errors
    ///
    /// A draining error.
    pub fn coordinator_regained(&mut self) -> Result<bool, HostError> {
        let cleared = self.engine.executor_mut().coordinator_regained();
        self.drain()?;
        Ok(cleared)
    }

    /// Clears the manual latches (see
    /// [`SafetyExecutor::resume`](hotpath::SafetyExecutor::resume)); then
    /// drains.
    ///
    /// # Errors
    ///
    /// [`HostError::Refused`]; a draining error first.
    pub fn resume(&mut self) -> Result<ReasonSet, HostError> {
        let result = self.engine.executor_mut().resume();
        self.drain()?;
        result.map_err(HostError::Refused)
    }

    /// Restores the baseline (a manual rollback); then drains. The state
    /// is not saved here: the next due save or
    /// [`save_state`](Self::save_state) does.
    ///
    /// # Errors
    ///
    /// [`HostError::Refused`]; a draining error first.
    pub fn rollback(&mut self) -> Result<RollbackReceipt, HostError> {
        let result = self.engine.executor_mut().rollback();
        self.drain()?;
        result.map_err(HostError::Refused)
    }

    /// Records the centre as the new baseline; then drains. Returns the
    /// baseline's generation.
    ///
    /// # Errors
    ///
    /// [`HostError::Refused`]; a draining error first.
    pub fn set_baseline(&mut self) -> Result<u64, HostError> {
        let result = self.engine.executor_mut().set_baseline();
        self.drain()?;
        result.map_err(HostError::Refused)
    }

    /// A copy of every audit event from now on, through a queue of
    /// `capacity` events (1 to [`MAX_AUDIT_CAPACITY`](hotpath::MAX_AUDIT_CAPACITY));
    /// see [`Subscription`].
    ///
    /// ```
    /// use hotpath::{AdaptiveEngineConfig, Knob, ManualClock, ParamSpace};
    /// use hotpath_host::{Host, HostOptions};
    /// use std::sync::Arc;
    ///
    /// let space = Arc::new(ParamSpace::new(vec![Knob::real("a", 0.0, 1.0, 0.5)])?);
    /// let mut host = Host::open(space, AdaptiveEngineConfig::bounded(vec![(0.0, 1.0)]),
    ///                           HostOptions::in_memory(), ManualClock::new(0))?;
    /// assert!(host.subscribe(1024).is_ok());
    /// assert!(host.subscribe(0).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`HostError::InvalidOption`] for a capacity out of that range.
    pub fn subscribe(&mut self, capacity: usize) -> Result<Subscription, HostError> {
        self.tee.subscribe(capacity)
    }

    /// The governed state now, as a checkpoint of the log: hands the log
    /// every queued event (waiting for room whatever the [`WhenFull`]
    /// policy), waits until it has committed them, and names the last in
    /// the state's [`checkpoint`](GovernedState::checkpoint) (`None` in
    /// memory). What [`save_state`](Self::save_state) writes, and what a
    /// fleet's leader publishes (see [`take_over`](Self::take_over) for an
    /// example).
    ///
    /// # Errors
    ///
    /// [`HostError::AuditStalled`] if the log commits nothing for the
    /// [stall timeout](HostOptions::stall_timeout);
    /// [`HostError::NotLogged`] after shutdown, for events the closed log
    /// did not commit.
    pub fn checkpoint(&mut self) -> Result<GovernedState, HostError> {
        if let Some(feed) = &mut self.feed {
            let policy = std::mem::replace(&mut feed.when_full, WhenFull::Wait);
            let drained = self.drain();
            if let Some(feed) = &mut self.feed {
                feed.when_full = policy;
            }
            drained?;
        }
        let state = self.governed();
        let checkpoint = match (state.last_seq(), &self.feed, self.closed_log) {
            (Some(seq), Some(feed), _) => Some(feed.wait_committed(seq)?),
            (Some(seq), None, Some(closed)) => Some(
                closed
                    .filter(|c| c.seq == seq)
                    .ok_or(HostError::NotLogged { seq })?,
            ),
            _ => None,
        };
        Ok(state.with_checkpoint(checkpoint))
    }

    /// Saves the state now, as a checkpoint of the log (see [saving the
    /// state](Self#saving-the-state) and [`checkpoint`](Self::checkpoint)).
    /// Its path, or `None` without a state file.
    ///
    /// # Errors
    ///
    /// [`HostError::State`]; as [`checkpoint`](Self::checkpoint).
    pub fn save_state(&mut self) -> Result<Option<PathBuf>, HostError> {
        if self.store.is_none() {
            return Ok(None);
        }
        self.pending = None;
        let state = self.checkpoint()?;
        let now_us = self.engine.executor_mut().now_us();
        match &mut self.store {
            Some(store) => {
                store.save_as_of(now_us, &state)?;
                Ok(Some(store.path().to_path_buf()))
            }
            None => Ok(None),
        }
    }

    /// Saves the state if it changed and the save interval has passed on
    /// the host's clock, as a checkpoint of the log (see [saving the
    /// state](Self#saving-the-state)): a state whose events the log has not
    /// committed yet is kept and written by a later call, never waited
    /// for. Whether it wrote the state file; never saves without an
    /// interval.
    ///
    /// # Errors
    ///
    /// [`HostError::State`].
    pub fn save_state_if_due(&mut self) -> Result<bool, HostError> {
        if self.store.is_none() || self.save_interval_us.is_none() {
            return Ok(false);
        }
        if let Some(pending) = self.pending.take() {
            return self.write_pending(pending);
        }
        let now_us = self.engine.executor_mut().now_us();
        let due = self.store.as_ref().is_some_and(|s| s.is_due(now_us));
        if !due {
            return Ok(false);
        }
        let state = self.governed();
        if self.store.as_ref().is_some_and(|s| s.is_unchanged(&state)) {
            return Ok(false);
        }
        match (state.last_seq(), self.feed.is_some()) {
            (Some(seq), true) => self.write_pending(PendingSave {
                state,
                seq,
                taken_us: now_us,
            }),
            _ => {
                if let Some(store) = &mut self.store {
                    store.save_as_of(now_us, &state)?;
                }
                Ok(true)
            }
        }
    }

    /// Writes `pending` if the log has committed its last event, else
    /// keeps it for the next call.
    fn write_pending(&mut self, pending: PendingSave) -> Result<bool, HostError> {
        let Some(feed) = &self.feed else {
            return Ok(false);
        };
        match feed.committed_event(pending.seq) {
            Some(head) => {
                if let Some(store) = &mut self.store {
                    store
                        .save_as_of(pending.taken_us, &pending.state.with_checkpoint(Some(head)))?;
                }
                Ok(true)
            }
            // Committed before the log was asked about it and no longer
            // its last event: the next due save takes a newer state.
            None if feed.committed().is_some_and(|c| c.seq > pending.seq) => Ok(false),
            None => {
                self.pending = Some(pending);
                Ok(false)
            }
        }
    }

    /// The state last written to the state file by this host, if any.
    ///
    /// ```
    /// use hotpath::{AdaptiveEngineConfig, Knob, ManualClock, ParamSpace};
    /// use hotpath_host::{Host, HostOptions};
    /// use std::sync::Arc;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let space = Arc::new(ParamSpace::new(vec![Knob::real("a", 0.0, 1.0, 0.5)])?);
    /// let mut host = Host::open(space, AdaptiveEngineConfig::bounded(vec![(0.0, 1.0)]),
    ///                           HostOptions::in_dir(dir.path()), ManualClock::new(0))?;
    /// assert!(host.last_saved().is_none());
    /// host.save_state()?;                              // waits for the log to commit
    /// let saved = host.last_saved().expect("saved");
    /// assert_eq!(saved.checkpoint.map(|c| c.seq), Some(1)); // `Started`, `BaselineSet`
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn last_saved(&self) -> Option<&GovernedState> {
        self.store.as_ref().and_then(StateStore::last_saved)
    }

    /// Shuts down: rolls back if the policy asks, hands the log everything
    /// (waiting for room whatever the [`WhenFull`] policy), closes it
    /// (written and, unless the fsync policy is `Never`, synced), then
    /// saves the final state if the policy asks.
    ///
    /// # Errors
    ///
    /// [`HostError::Refused`] if the rollback was refused (nothing else
    /// done; the host, dropped, still hands the log its events),
    /// [`HostError::AuditLog`] if the log did not close cleanly,
    /// [`HostError::State`] if the save failed.
    pub fn shutdown(mut self, policy: ShutdownPolicy) -> Result<ShutdownReport, HostError> {
        let rollback = match policy.rollback_to_baseline {
            true => Some(self.rollback()?),
            false => None,
        };
        if let Some(feed) = &mut self.feed {
            feed.when_full = WhenFull::Wait;
        }
        self.drain()?;
        self.pending = None;
        let log = self.feed.take().map(Feed::finish).transpose()?;
        if let Some(log) = &log {
            self.closed_log = Some(log.stats.committed);
        }
        let state_file = match policy.save_state {
            true => self.save_state()?,
            false => None,
        };
        Ok(ShutdownReport {
            rollback,
            log,
            state_file,
            state_saves: self.state_saves(),
        })
    }

    /// What [`open`](Self::open) found and recovered.
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// The engine (its executor, SPSA state, counters).
    pub fn engine(&self) -> &AdaptiveEngine<C> {
        &self.engine
    }

    /// The engine, mutably. Events it makes the executor record are
    /// drained by the next host call; prefer the host's operator calls.
    pub fn engine_mut(&mut self) -> &mut AdaptiveEngine<C> {
        &mut self.engine
    }

    /// The executor.
    pub fn executor(&self) -> &SafetyExecutor<C> {
        self.engine.executor()
    }

    /// The live configuration.
    pub fn config(&self) -> &Arc<AtomicConfig> {
        self.engine.config()
    }

    /// A reader of the live configuration, for one hot-path thread.
    pub fn reader(&self) -> ConfigReader {
        self.engine.config().reader()
    }

    /// The parameters.
    pub fn space(&self) -> &Arc<ParamSpace> {
        &self.space
    }

    /// The state file, if there is one.
    pub fn state_file(&self) -> Option<&Path> {
        self.store.as_ref().map(StateStore::path)
    }

    /// State saves so far.
    pub fn state_saves(&self) -> u64 {
        self.store.as_ref().map_or(0, StateStore::saves)
    }

    /// The audit log's directory, if there is a log.
    pub fn log_dir(&self) -> Option<&Path> {
        self.feed.as_ref().map(|f| f.log().dir())
    }

    /// The highest seq known to be fsync'd, if there is a log.
    pub fn durable_seq(&self) -> Option<u64> {
        self.feed.as_ref().and_then(|f| f.log().durable_seq())
    }

    /// The log writer's counters, if there is a log.
    pub fn log_stats(&self) -> Option<AuditLogStats> {
        self.feed.as_ref().map(|f| f.log().stats())
    }

    /// Events handed to the log so far.
    pub fn logged_events(&self) -> u64 {
        self.feed.as_ref().map_or(0, |f| f.forwarded)
    }

    /// The governed state now.
    fn governed(&mut self) -> GovernedState {
        let engine = self.engine.export_state();
        GovernedState::new(self.engine.executor_mut().export_state(), Some(engine))
    }
}

impl<C: Clock> Drop for Host<C> {
    /// A host dropped without [`shutdown`](Host::shutdown) (a run stopping
    /// on an error) still hands the log what the executor had queued
    /// (waiting at most a second for room), then closes it.
    fn drop(&mut self) {
        if let Some(feed) = self.feed.take() {
            feed.abandon(self.engine.executor().audit_queue());
        }
    }
}

impl<C: Clock> std::fmt::Debug for Host<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("generation", &self.engine.executor().generation())
            .field("log_dir", &self.log_dir())
            .field("state_file", &self.state_file())
            .finish()
    }
}

/// The state to start from, per `resume`.
fn load_state(
    store: Option<&mut StateStore>,
    resume: Resume,
) -> Result<Option<GovernedState>, HostError> {
    match (store, resume) {
        (_, Resume::Fresh) | (None, Resume::IfPresent) => Ok(None),
        (None, Resume::Require) => Err(HostError::Options("Resume::Require needs a state file")),
        (Some(store), Resume::IfPresent) => Ok(store.load()?),
        (Some(store), Resume::Require) => match store.load()? {
            Some(state) => Ok(Some(state)),
            None => Err(HostError::NoState {
                path: store.path().to_path_buf(),
            }),
        },
    }
}

/// The executor: restored from `saved` or fresh at `initial`, at a
/// generation above the log's last (`generations.0`) and strictly above
/// `generations.1` (a handoff's last published), numbering its events
/// from the log's `next_seq`.
fn build_executor<C: Clock>(
    space: &Arc<ParamSpace>,
    initial: ParamVec,
    settings: &AdaptiveEngineConfig,
    saved: Option<&GovernedState>,
    next_seq: Option<u64>,
    generations: (Option<u64>, Option<u64>),
    clock: C,
) -> Result<SafetyExecutor<C>, EngineError> {
    let (logged_generation, above) = generations;
    let lift = |config: Arc<AtomicConfig>| match above {
        Some(a) if config.generation() <= a => Arc::new(AtomicConfig::with_generation(
            config.load().params,
            a.saturating_add(1),
        )),
        _ => config,
    };
    let builder = match saved {
        Some(state) => SafetyExecutor::builder(lift(state.config(logged_generation)))
            .restore(state.executor.clone()),
        // A fresh start over an existing log publishes above its last
        // generation: generations never repeat within a log.
        None => SafetyExecutor::builder(lift(Arc::new(AtomicConfig::with_generation(
            initial,
            logged_generation.map_or(0, |g| g.saturating_add(1)),
        )))),
    };
    let mut builder = builder
        .space(Arc::clone(space))
        .guardrails(settings.guardrails.clone())
        .rollback_policy(settings.rollback_policy)
        .audit_capacity(settings.audit_capacity);
    if let Some(seq) = next_seq {
        builder = builder.audit_sequence_start(seq);
    }
    Ok(builder.clock(clock).build()?)
}

/// An engine error at start-up: the state's fault if one was restored.
fn restore_error(store: &Option<StateStore>, restoring: bool, e: EngineError) -> HostError {
    match store {
        Some(store) if restoring => HostError::Restore {
            path: store.path().to_path_buf(),
            source: e,
        },
        _ => HostError::Engine(e),
    }
}

/// The directory `path` is in, if it names one.
fn parent(path: &Path) -> Option<&Path> {
    path.parent().filter(|p| !p.as_os_str().is_empty())
}
