//! Persisted governed state: what a restart must not lose.
//!
//! A [`GovernedState`] bundles the executor's [`ExecutorState`] (live
//! parameters and generation, baseline, safe-mode latches and reasons,
//! rollback counters, the rate, flip and budget windows) and, when an
//! engine drives it, the engine's [`EngineState`] (SPSA iteration, RNG
//! position, calibrated gains).
//!
//! # A checkpoint of the audit log
//!
//! A state file is a checkpoint of the audit log beside it:
//! [`GovernedState::checkpoint`] names the last event it covers (seq and
//! line hash): every decision up to that event is in the state, none after
//! it. It is saved only once the log has *committed* that event (fsync'd,
//! or written under [`FsyncPolicy::Never`](crate::FsyncPolicy::Never); see
//! [`AuditLog::committed_event`](crate::AuditLog::committed_event)), so a
//! crash never leaves a state that is ahead of its log. At start-up,
//! [`check_against_log`] proves the pair belongs together: the log must
//! hold that event with that hash, and agree with the state's live values,
//! live generation, baseline and next seq; any mismatch is a
//! [`StateError::LogMismatch`] naming both files. An edit of the values the
//! log records (a parameter changed from 48 to 55) is caught this way;
//! values the log does not record (the rate and budget windows, the
//! engine's gains) are only checked for range.
//!
//! If the state's checkpoint is *ahead* of the log (the log ends before
//! the event it names), the events the state depends on are gone: a power
//! cut under `FsyncPolicy::Never`, a log restored from an older copy, or a
//! log cut by hand. That is refused too ([`LogMismatch::AheadOfLog`]),
//! never papered over: restore the log, or start fresh (the log is kept
//! and continued; the state is replaced by the next save).
//!
//! # Saving and loading
//!
//! [`StateStore`] writes it as one JSON document, atomically: to a hidden
//! temporary file of its own in the same directory
//! (`.state.json.XXXXXX.tmp`, a unique name, removed if the save fails),
//! `fsync`, `rename` over the state file, `fsync` of the directory. A path
//! that is not a regular file (a directory, a device, a link to one) is
//! refused, not replaced. A crash leaves either the previous state or the
//! new one, never a mixture. [`StateStore::save_if_due`] saves only when
//! the state changed and at most once per `min_interval_us` of the
//! caller's clock, so it can sit in a control loop.
//!
//! Loading distinguishes three cases, and never resets silently:
//!
//! * no state file: `Ok(None)`, a documented fresh start;
//! * a file that is not valid JSON of this layout, or has keys this layout
//!   does not (at any depth): [`StateError::Corrupt`], with the key;
//! * a file of another format version: [`StateError::Incompatible`].
//!
//! Restoring is [`check_against_log`], [`GovernedState::config`] (the
//! generation above the log's) and
//! [`ExecutorBuilder::restore`](hotpath::ExecutorBuilder::restore), then
//! `AdaptiveEngine::restore_state` with the engine's part. `hotpath-host`'s
//! `Host::open` does it, in the right order with the audit log; use that
//! unless you embed this crate alone.
//!
//! Rolling back to the baseline on shutdown is an explicit choice
//! ([`ShutdownPolicy::rollback_to_baseline`], off by default: rolling back
//! on exit has caused outages in comparable tools, because a restart then
//! silently undoes the tuning the service was running with).

mod checkpoint;

pub use checkpoint::{check_against_log, LogMismatch};

use crate::audit_log::{AuditLog, AuditLogError, AuditLogStats, LogHead, VerifyError};
use hotpath::Clock;
use hotpath::{
    AtomicConfig, ConfigError, EngineState, ExecutorState, RollbackReceipt, SafetyExecutor,
    Violation,
};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The format tag every state file carries. Version 2 added the
/// [`checkpoint`](GovernedState::checkpoint); a version-1 file is
/// [`StateError::Incompatible`] (it cannot be tied to its log).
pub const STATE_FORMAT: &str = "hotpath-state/2";

/// Everything persisted across restarts. Unknown keys are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GovernedState {
    /// [`STATE_FORMAT`].
    pub format: String,
    /// The last audit log event this state covers (see the [module
    /// docs](self#a-checkpoint-of-the-audit-log)); `None` for a state saved
    /// without a log.
    pub checkpoint: Option<LogHead>,
    /// The executor's state.
    pub executor: ExecutorState,
    /// The engine's state, if an engine drives the executor.
    pub engine: Option<EngineState>,
}

impl GovernedState {
    /// Bundles the current states, without a checkpoint.
    pub fn new(executor: ExecutorState, engine: Option<EngineState>) -> Self {
        Self {
            format: STATE_FORMAT.to_owned(),
            checkpoint: None,
            executor,
            engine,
        }
    }

    /// The same state, as a checkpoint of the log event `head` (the event
    /// numbered `executor.next_audit_seq - 1`, committed by the log).
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ParamVec, SafetyExecutor};
    /// use hotpath_durable::audit_log::{ChainHash, LogHead};
    /// use hotpath_durable::state::GovernedState;
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let mut ex = SafetyExecutor::builder(config).build()?;
    /// let head = LogHead { seq: 0, hash: ChainHash::GENESIS }; // `Started`, as the log hashed it
    /// let state = GovernedState::new(ex.export_state(), None).with_checkpoint(Some(head));
    /// assert_eq!(state.checkpoint, Some(head));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_checkpoint(mut self, head: Option<LogHead>) -> Self {
        self.checkpoint = head;
        self
    }

    /// The seq of the last event this state covers
    /// (`executor.next_audit_seq - 1`), `None` before any event.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ParamVec, SafetyExecutor};
    /// use hotpath_durable::state::GovernedState;
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let mut ex = SafetyExecutor::builder(config).build()?; // `Started` is seq 0
    /// assert_eq!(GovernedState::new(ex.export_state(), None).last_seq(), Some(0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn last_seq(&self) -> Option<u64> {
        self.executor.next_audit_seq.checked_sub(1)
    }

    /// A live configuration holding the persisted values, ready for
    /// [`ExecutorBuilder::restore`](hotpath::ExecutorBuilder::restore).
    ///
    /// Its generation is the persisted one, or one above the last generation
    /// the audit log recorded (`log_generation`, from
    /// [`OpenReport::last_generation`](crate::OpenReport::last_generation))
    /// when the log got further than the state file: generations keep rising
    /// across restarts, and the restored values are published as a new
    /// generation rather than reusing one the log already gave to others.
    pub fn config(&self, log_generation: Option<u64>) -> Arc<AtomicConfig> {
        let persisted = self.executor.live.generation;
        let generation = match log_generation {
            Some(logged) if logged > persisted => logged.saturating_add(1),
            _ => persisted,
        };
        Arc::new(AtomicConfig::with_generation(
            self.executor.live.params.clone(),
            generation,
        ))
    }
}

/// Why a state could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Reading, writing, syncing or renaming failed.
    #[error("state file {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a valid state document.
    #[error("state file {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong (parser message with line and column).
        reason: String,
    },
    /// The file has another format version.
    #[error("state file {path} has format {found:?}; this build reads {STATE_FORMAT:?}")]
    Incompatible {
        /// The file.
        path: PathBuf,
        /// The format it declares.
        found: String,
    },
    /// The state file's path names something that is not a regular file
    /// (a directory, a device, a link to one): it is not replaced.
    #[error("state file {path} exists and is not a regular file; not replacing it")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The state does not fit the configuration it is restored onto.
    #[error(transparent)]
    Restore(#[from] ConfigError),
    /// The state is not a checkpoint of the audit log beside it (see
    /// [`check_against_log`]).
    #[error("state file {} does not match the audit log in {}: {mismatch}", state.display(), log.display())]
    LogMismatch {
        /// The state file.
        state: PathBuf,
        /// The log directory.
        log: PathBuf,
        /// What disagrees.
        mismatch: Box<LogMismatch>,
    },
    /// The audit log could not be read to check the state against it.
    #[error("cannot check state file {} against its audit log: {source}", state.display())]
    LogUnreadable {
        /// The state file.
        state: PathBuf,
        /// What is wrong with the log (its file and line).
        source: Box<VerifyError>,
    },
}

/// Atomic, rate-limited persistence of a [`GovernedState`] to one file.
///
/// ```
/// use hotpath::{AtomicConfig, Guardrails, ManualClock, ParamVec, SafetyExecutor};
/// use hotpath_durable::state::{GovernedState, StateStore};
/// use std::sync::Arc;
///
/// let dir = tempfile::tempdir()?;
/// let mut store = StateStore::new(dir.path().join("state.json"), 1_000_000);
/// assert!(store.load()?.is_none()); // fresh start
///
/// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
/// let mut ex = SafetyExecutor::builder(config).clock(ManualClock::new(0)).build()?;
/// ex.set_baseline()?;
/// store.save(&GovernedState::new(ex.export_state(), None))?;
///
/// let loaded = store.load()?.expect("saved above");
/// let restored = SafetyExecutor::builder(loaded.config(None))
///     .clock(ManualClock::new(0))
///     .restore(loaded.executor)
///     .build()?;
/// assert!(restored.baseline().is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct StateStore {
    path: PathBuf,
    min_interval_us: u64,
    last_saved_us: Option<u64>,
    last: Option<GovernedState>,
    saves: u64,
}

impl StateStore {
    /// A store writing `path`, saving at most once per `min_interval_us`
    /// through [`save_if_due`](Self::save_if_due).
    pub fn new(path: impl Into<PathBuf>, min_interval_us: u64) -> Self {
        Self {
            path: path.into(),
            min_interval_us,
            last_saved_us: None,
            last: None,
            saves: 0,
        }
    }

    /// The state file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Saves performed so far.
    pub fn saves(&self) -> u64 {
        self.saves
    }

    /// The state this store saved last, if it saved one.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let store = hotpath_durable::state::StateStore::new(dir.path().join("state.json"), 0);
    /// assert!(store.last_saved().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn last_saved(&self) -> Option<&GovernedState> {
        self.last.as_ref()
    }

    /// Reads the state file: `Ok(None)` if there is none (a fresh start),
    /// an error if it is corrupt (not JSON of this layout, or with a key
    /// the layout does not have, at any depth) or of another format.
    ///
    /// # Errors
    ///
    /// [`StateError::Io`], [`StateError::Corrupt`] (the parser's message
    /// with its line and column, unknown keys included),
    /// [`StateError::Incompatible`].
    pub fn load(&self) -> Result<Option<GovernedState>, StateError> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Io {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let corrupt = |reason: String| StateError::Corrupt {
            path: self.path.clone(),
            reason: plain_types(&reason),
        };
        let written: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        // The format tag is checked before the layout, so an old or newer
        // file is reported as such rather than as corrupt.
        let Some(fields) = written.as_object() else {
            return Err(corrupt("expected a JSON object".into()));
        };
        match fields.get("format") {
            Some(serde_json::Value::String(found)) if found != STATE_FORMAT => {
                return Err(StateError::Incompatible {
                    path: self.path.clone(),
                    found: found.clone(),
                })
            }
            Some(serde_json::Value::String(_)) => {}
            _ => return Err(corrupt("no format tag (a string field `format`)".into())),
        }
        // Every type of the layout, nested ones included, refuses keys it
        // does not have (`deny_unknown_fields`).
        let state: GovernedState =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        Ok(Some(state))
    }

    /// Writes `state` atomically (temporary file, fsync, rename, directory
    /// fsync).
    ///
    /// # Errors
    ///
    /// [`StateError::Io`], [`StateError::NotAFile`].
    pub fn save(&mut self, state: &GovernedState) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| StateError::Corrupt {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        self.write_atomically(&bytes)?;
        self.last = Some(state.clone());
        self.saves += 1;
        Ok(())
    }

    /// `true` if at least `min_interval_us` passed since the last save
    /// through [`save_if_due`](Self::save_if_due) or
    /// [`save_as_of`](Self::save_as_of) (`now_us` on the caller's clock).
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ParamVec, SafetyExecutor};
    /// use hotpath_durable::state::{GovernedState, StateStore};
    /// use std::sync::Arc;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let mut store = StateStore::new(dir.path().join("state.json"), 1_000_000);
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let mut ex = SafetyExecutor::builder(config).build()?;
    /// let state = GovernedState::new(ex.export_state(), None);
    /// assert!(store.is_due(0) && !store.is_unchanged(&state));
    /// store.save_as_of(0, &state)?;
    /// assert!(!store.is_due(999_999) && store.is_due(1_000_000));
    /// assert!(store.is_unchanged(&state));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_due(&self, now_us: u64) -> bool {
        self.last_saved_us
            .is_none_or(|t| now_us >= t.saturating_add(self.min_interval_us))
    }

    /// `true` if `state` holds what the last saved state held (its
    /// checkpoint aside; see [`is_due`](Self::is_due) for an example).
    pub fn is_unchanged(&self, state: &GovernedState) -> bool {
        self.last
            .as_ref()
            .is_some_and(|last| last.executor == state.executor && last.engine == state.engine)
    }

    /// [`save`](Self::save), counted as the save of `now_us` by the rate
    /// limit of [`is_due`](Self::is_due) (which shows it).
    ///
    /// # Errors
    ///
    /// As [`save`](Self::save).
    pub fn save_as_of(&mut self, now_us: u64, state: &GovernedState) -> Result<(), StateError> {
        self.save(state)?;
        self.last_saved_us = Some(now_us);
        Ok(())
    }

    /// Saves `state` if it differs from the last saved one and at least
    /// `min_interval_us` passed since the last save (`now_us` on the
    /// caller's clock). Returns whether it saved.
    ///
    /// # Errors
    ///
    /// As [`save`](Self::save).
    pub fn save_if_due(&mut self, now_us: u64, state: &GovernedState) -> Result<bool, StateError> {
        if !self.is_due(now_us) || self.is_unchanged(state) {
            return Ok(false);
        }
        self.save_as_of(now_us, state)?;
        Ok(true)
    }

    /// Writes `bytes` to a hidden temporary of its own in the file's
    /// directory (`.<name>.XXXXXX.tmp`, removed if anything fails), syncs
    /// it, renames it over the file and syncs the directory. A path that
    /// exists and is not a regular file (followed through links) is
    /// refused.
    fn write_atomically(&self, bytes: &[u8]) -> Result<(), StateError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StateError::Io { path, source }
        };
        match fs::metadata(&self.path) {
            Ok(m) if !m.is_file() => {
                return Err(StateError::NotAFile {
                    path: self.path.clone(),
                })
            }
            _ => {}
        }
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = self
            .path
            .file_name()
            .map_or_else(|| "state".into(), |n| n.to_string_lossy().into_owned());
        let prefix = format!(".{name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        // Like any new file (0666 less the umask), not tempfile's 0600.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let mut tmp = builder.tempfile_in(&dir).map_err(io(&dir))?;
        tmp.write_all(bytes).map_err(io(tmp.path()))?;
        tmp.as_file().sync_all().map_err(io(tmp.path()))?;
        tmp.persist(&self.path).map_err(|e| StateError::Io {
            path: self.path.clone(),
            source: e.error,
        })?;
        // Makes the rename itself durable.
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&dir))
    }
}

/// serde's message with Rust's type names in a reader's words.
fn plain_types(message: &str) -> String {
    [
        ("expected f64", "expected a number"),
        ("expected u64", "expected a non-negative integer"),
        ("expected u32", "expected a non-negative integer below 2^32"),
        ("expected i8", "expected -1, 0 or 1"),
        ("expected usize", "expected a non-negative integer"),
    ]
    .iter()
    .fold(message.to_owned(), |m, (from, to)| m.replace(from, to))
}

/// What to do when a governed service shuts down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShutdownPolicy {
    /// Restore the baseline before saving. Off by default: the tuned
    /// configuration is what the service runs with, and undoing it on every
    /// restart is its own outage.
    pub rollback_to_baseline: bool,
}

/// What [`shutdown`] did (its example shows it).
#[derive(Debug, Clone)]
pub struct ShutdownReport {
    /// The rollback receipt, if the policy asked for one.
    pub rollback: Option<RollbackReceipt>,
    /// The log's final counters; `committed` is the state's checkpoint.
    pub log: AuditLogStats,
}

/// Shuts down cleanly, in the order that keeps the state a checkpoint of
/// the log: optionally rolls back (per `policy`), closes the log once it
/// has written (and, unless the policy is `Never`, synced) everything the
/// executor queued, then saves the final state as a checkpoint of the
/// log's last event. `log` must be the one draining the executor's queue.
///
/// ```
/// use hotpath::{AtomicConfig, AuditQueue, ParamVec, SafetyExecutor};
/// use hotpath_durable::audit_log::{AuditLog, AuditLogOptions};
/// use hotpath_durable::state::{check_against_log, shutdown, ShutdownPolicy, StateStore};
/// use std::sync::Arc;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let (audit, path) = (dir.path().join("audit"), dir.path().join("state.json"));
/// let queue = Arc::new(AuditQueue::new(1024));
/// let log = AuditLog::open(&audit, AuditLogOptions::default(), Arc::clone(&queue))?;
/// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
/// let mut executor = SafetyExecutor::builder(config).audit_queue(queue).build()?;
/// executor.set_baseline()?;
/// let mut store = StateStore::new(&path, 0);
/// let report = shutdown(&mut executor, None, &mut store, log, ShutdownPolicy::default())?;
/// let state = store.load()?.expect("saved");
/// assert_eq!(state.checkpoint, report.log.committed); // `BaselineSet`, seq 1
/// check_against_log(&state, &path, &audit)?;          // what a restart checks
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`ShutdownError::Rollback`] (nothing else done), [`ShutdownError::Log`]
/// if the log did not close cleanly (the state is not saved: it would be
/// ahead of the log), [`ShutdownError::State`].
pub fn shutdown<C: Clock>(
    executor: &mut SafetyExecutor<C>,
    engine: Option<EngineState>,
    store: &mut StateStore,
    log: AuditLog,
    policy: ShutdownPolicy,
) -> Result<ShutdownReport, ShutdownError> {
    let rollback = if policy.rollback_to_baseline {
        Some(executor.rollback().map_err(ShutdownError::Rollback)?)
    } else {
        None
    };
    let dir = log.dir().to_path_buf();
    let stats = log.shutdown()?;
    let state = GovernedState::new(executor.export_state(), engine);
    if state.last_seq() != stats.committed.map(|c| c.seq) {
        return Err(ShutdownError::State(StateError::LogMismatch {
            state: store.path().to_path_buf(),
            log: dir,
            mismatch: Box::new(LogMismatch::AheadOfLog {
                checkpoint: state.last_seq().unwrap_or(0),
                log_last: stats.committed.map(|c| c.seq),
            }),
        }));
    }
    store.save(&state.with_checkpoint(stats.committed))?;
    Ok(ShutdownReport {
        rollback,
        log: stats,
    })
}

/// Why [`shutdown`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ShutdownError {
    /// The requested rollback was refused.
    #[error("rollback on shutdown refused: {0}")]
    Rollback(Violation),
    /// The log did not close cleanly.
    #[error(transparent)]
    Log(#[from] AuditLogError),
    /// The final state could not be saved.
    #[error(transparent)]
    State(#[from] StateError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotpath::{Guardrails, ManualClock, ParamVec, Proposal};

    fn executor(config: Arc<AtomicConfig>) -> SafetyExecutor<ManualClock> {
        SafetyExecutor::builder(config)
            .guardrails(Guardrails::default())
            .clock(ManualClock::new(0))
            .build()
            .expect("valid")
    }

    /// An executor at 0.55 after one update from its baseline 0.5.
    fn tuned_executor() -> SafetyExecutor<ManualClock> {
        let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
        let mut ex = executor(config);
        ex.set_baseline().expect("baseline");
        ex.apply(Proposal::Update {
            iteration: 1,
            delta: ParamVec::from_slice(&[0.05]),
            gradient_estimate: ParamVec::new(),
        })
        .expect("apply");
        ex
    }

    #[test]
    fn missing_corrupt_and_incompatible_files_are_told_apart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        let store = StateStore::new(&path, 0);
        assert!(store.load().expect("missing is a fresh start").is_none());
        fs::write(&path, b"{\"format\": \"hotpath-state/2\", \"executor\": ").expect("write");
        assert!(matches!(store.load(), Err(StateError::Corrupt { .. })));
        // Version 1 had no checkpoint: it cannot be tied to its log.
        fs::write(&path, b"{\"format\": \"hotpath-state/1\"}").expect("write");
        assert!(
            matches!(store.load(), Err(StateError::Incompatible { found, .. }) if found == "hotpath-state/1")
        );
        fs::write(&path, b"not json").expect("write");
        assert!(matches!(store.load(), Err(StateError::Corrupt { .. })));
    }

    #[test]
    fn saves_are_rate_limited_and_skip_unchanged_states() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = StateStore::new(dir.path().join("state.json"), 1_000_000);
        let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
        let mut ex = executor(config);
        let state = GovernedState::new(ex.export_state(), None);
        assert!(store.save_if_due(0, &state).expect("save"));
        assert!(!store.save_if_due(2_000_000, &state).expect("unchanged"));
        ex.apply(Proposal::Update {
            iteration: 1,
            delta: ParamVec::from_slice(&[0.05]),
            gradient_estimate: ParamVec::new(),
        })
        .expect("apply");
        let changed = GovernedState::new(ex.export_state(), None);
        assert!(!store.save_if_due(500_000, &changed).expect("too soon"));
        assert!(store.save_if_due(2_000_000, &changed).expect("due"));
        assert_eq!(store.saves(), 2);
        assert_eq!(store.load().expect("load"), Some(changed));
        assert_eq!(
            hotpath_testkit::listing(dir.path()),
            ["state.json"],
            "no temporary left"
        );
    }

    #[test]
    fn saves_use_a_hidden_temporary_of_their_own_and_leave_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Another writer's temporary under the old fixed name is not ours
        // to overwrite or rename.
        fs::write(dir.path().join("state.json.tmp"), b"someone else's").expect("write");
        let mut store = StateStore::new(dir.path().join("state.json"), 0);
        let mut ex = tuned_executor();
        store
            .save(&GovernedState::new(ex.export_state(), None))
            .expect("save");
        assert_eq!(
            fs::read(dir.path().join("state.json.tmp")).expect("read"),
            b"someone else's"
        );
        assert_eq!(
            hotpath_testkit::listing(dir.path()),
            ["state.json", "state.json.tmp"]
        );
        assert!(store.load().expect("load").is_some());
    }

    #[cfg(unix)]
    #[test]
    fn a_path_that_is_not_a_regular_file_is_not_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ex = tuned_executor();
        let state = GovernedState::new(ex.export_state(), None);
        // A directory, a symlink to a character device. (Not /dev/null
        // itself: as root, a regression would replace it with a regular
        // file for the whole machine.)
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).expect("mkdir");
        let link = dir.path().join("null.json");
        std::os::unix::fs::symlink("/dev/null", &link).expect("symlink");
        for path in [sub.clone(), link.clone()] {
            let mut store = StateStore::new(&path, 0);
            match store.save(&state) {
                Err(e @ StateError::NotAFile { .. }) => {
                    assert!(e.to_string().contains("is not a regular file"), "{e}")
                }
                other => panic!("{}: expected NotAFile, got {other:?}", path.display()),
            }
        }
        use std::os::unix::fs::FileTypeExt;
        assert!(fs::metadata("/dev/null")
            .expect("stat")
            .file_type()
            .is_char_device());
        assert!(sub.is_dir());
        assert_eq!(
            hotpath_testkit::listing(dir.path()),
            ["null.json", "sub"],
            "no temporary left"
        );
    }

    /// The log in `dir/audit`, draining `ex`'s queue.
    fn log_of(dir: &Path, ex: &SafetyExecutor<ManualClock>) -> AuditLog {
        AuditLog::open(
            dir.join("audit"),
            crate::AuditLogOptions::default(),
            ex.audit_queue().clone(),
        )
        .expect("open the log")
    }

    #[test]
    fn shutdown_keeps_the_tuned_config_unless_asked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        let mut store = StateStore::new(&path, 0);
        let mut ex = tuned_executor();
        let log = log_of(dir.path(), &ex);
        let report =
            shutdown(&mut ex, None, &mut store, log, ShutdownPolicy::default()).expect("shutdown");
        assert!(report.rollback.is_none());
        let kept = store.load().expect("load").expect("saved");
        assert_eq!(&kept.executor.live.params[..], &[0.55]);
        // Started, baseline set, applied: the state covers all three.
        assert_eq!(kept.checkpoint.map(|c| c.seq), Some(2));
        assert_eq!(kept.checkpoint, report.log.committed);
        check_against_log(&kept, &path, &dir.path().join("audit")).expect("a checkpoint");
        let log = log_of(dir.path(), &ex);
        let report = shutdown(
            &mut ex,
            None,
            &mut store,
            log,
            ShutdownPolicy {
                rollback_to_baseline: true,
            },
        )
        .expect("shutdown");
        assert!(report.rollback.is_some());
        let rolled = store.load().expect("load").expect("saved");
        assert_eq!(&rolled.executor.live.params[..], &[0.5]);
        check_against_log(&rolled, &path, &dir.path().join("audit")).expect("a checkpoint");
    }

    #[test]
    fn keys_the_layout_does_not_have_are_refused_at_any_depth() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        let mut store = StateStore::new(&path, 0);
        let mut ex = tuned_executor();
        store
            .save(&GovernedState::new(ex.export_state(), None))
            .expect("save");
        let saved: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
        for (pointer, key) in [
            ("", "comment"),
            ("/executor", "note"),
            ("/executor/live", "extra"),
            ("/executor/baseline/reports", "x"),
        ] {
            let mut edited = saved.clone();
            edited
                .pointer_mut(pointer)
                .and_then(serde_json::Value::as_object_mut)
                .expect("an object")
                .insert(key.into(), serde_json::json!(1));
            fs::write(&path, serde_json::to_vec(&edited).expect("json")).expect("write");
            match store.load() {
                Err(StateError::Corrupt { reason, .. }) => {
                    assert!(reason.contains(key), "{pointer}/{key}: {reason}")
                }
                other => panic!("{pointer}/{key}: expected Corrupt, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_restored_executor_keeps_generation_baseline_and_latch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = StateStore::new(dir.path().join("state.json"), 0);
        let mut ex = tuned_executor();
        ex.freeze();
        let log = log_of(dir.path(), &ex);
        shutdown(&mut ex, None, &mut store, log, ShutdownPolicy::default()).expect("shutdown");
        drop(ex);
        let state = store.load().expect("load").expect("saved");
        let mut restored = SafetyExecutor::builder(state.config(None))
            .clock(ManualClock::new(0))
            .restore(state.executor)
            .build()
            .expect("restore");
        assert_eq!(restored.snapshot().generation, 1);
        assert!(restored.control_safety().is_latched());
        assert!(restored.rollback().is_ok(), "the baseline survived");
        assert_eq!(restored.snapshot().generation, 2);

        // The log got further than the state: publish above it.
        let state = store.load().expect("load").expect("saved");
        assert_eq!(state.config(Some(0)).generation(), 1);
        assert_eq!(state.config(Some(9)).generation(), 10);
    }
}
