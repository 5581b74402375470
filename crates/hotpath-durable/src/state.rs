//! Persisted governed state: what a restart must not lose.
//!
//! A [`GovernedState`] bundles the executor's [`ExecutorState`] (live
//! parameters and generation, baseline, safe-mode latches and reasons,
//! rollback counters, the rate, flip and budget windows) and, when an
//! engine drives it, the engine's [`EngineState`] (SPSA iteration, RNG
//! position, calibrated gains).
//!
//! [`StateStore`] writes it as one JSON document, atomically: to a hidden
//! temporary file of its own in the same directory (`.state.json.XXXXXX.tmp`,
//! a unique name, removed if the save fails), `fsync`, `rename` over the
//! state file, `fsync` of the directory. A path that is not a regular file
//! (a directory, a device, a link to one) is refused, not replaced. A crash leaves either the previous state
//! or the new one, never a mixture. [`StateStore::save_if_due`] saves only
//! when the state changed and at most once per `min_interval_us` of the
//! caller's clock, so it can sit in a control loop.
//!
//! Loading distinguishes three cases, and never resets silently:
//!
//! * no state file: `Ok(None)`, a documented fresh start;
//! * a file that is not valid JSON of this layout: [`StateError::Corrupt`];
//! * a file of another format version: [`StateError::Incompatible`].
//!
//! Restoring is [`GovernedState::config`] (the generation above the log's)
//! and [`ExecutorBuilder::restore`](hotpath::ExecutorBuilder::restore),
//! then `AdaptiveEngine::restore_state` with the engine's part.
//! `hotpath-host`'s `Host::open` does it, in the right order with the
//! audit log; use that unless you embed this crate alone.
//!
//! Rolling back to the baseline on shutdown is an explicit choice
//! ([`ShutdownPolicy::rollback_to_baseline`], off by default: rolling back
//! on exit has caused outages in comparable tools, because a restart then
//! silently undoes the tuning the service was running with).

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

/// The format tag every state file carries.
pub const STATE_FORMAT: &str = "hotpath-state/1";

/// Everything persisted across restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GovernedState {
    /// [`STATE_FORMAT`].
    pub format: String,
    /// The executor's state.
    pub executor: ExecutorState,
    /// The engine's state, if an engine drives the executor.
    pub engine: Option<EngineState>,
}

impl GovernedState {
    /// Bundles the current states.
    pub fn new(executor: ExecutorState, engine: Option<EngineState>) -> Self {
        Self {
            format: STATE_FORMAT.to_owned(),
            executor,
            engine,
        }
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
    last_bytes: Vec<u8>,
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
            last_bytes: Vec::new(),
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

    /// Reads the state file: `Ok(None)` if there is none (a fresh start),
    /// an error if it is corrupt or of another format.
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
        // The format tag is checked before the layout, so an old or newer
        // file is reported as such rather than as corrupt.
        #[derive(Deserialize)]
        struct Tag {
            format: String,
        }
        let corrupt = |e: serde_json::Error| StateError::Corrupt {
            path: self.path.clone(),
            reason: e.to_string(),
        };
        let tag: Tag = serde_json::from_slice(&bytes).map_err(corrupt)?;
        if tag.format != STATE_FORMAT {
            return Err(StateError::Incompatible {
                path: self.path.clone(),
                found: tag.format,
            });
        }
        serde_json::from_slice(&bytes).map(Some).map_err(corrupt)
    }

    /// Writes `state` atomically (temporary file, fsync, rename, directory
    /// fsync).
    pub fn save(&mut self, state: &GovernedState) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| StateError::Corrupt {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        self.write_atomically(&bytes)?;
        self.last_bytes = bytes;
        self.saves += 1;
        Ok(())
    }

    /// Saves `state` if it differs from the last saved one and at least
    /// `min_interval_us` passed since the last save (`now_us` on the
    /// caller's clock). Returns whether it saved.
    pub fn save_if_due(&mut self, now_us: u64, state: &GovernedState) -> Result<bool, StateError> {
        if self
            .last_saved_us
            .is_some_and(|t| now_us < t.saturating_add(self.min_interval_us))
        {
            return Ok(false);
        }
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| StateError::Corrupt {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        if bytes == self.last_bytes {
            return Ok(false);
        }
        self.write_atomically(&bytes)?;
        self.last_bytes = bytes;
        self.last_saved_us = Some(now_us);
        self.saves += 1;
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

/// What to do when a governed service shuts down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShutdownPolicy {
    /// Restore the baseline before saving. Off by default: the tuned
    /// configuration is what the service runs with, and undoing it on every
    /// restart is its own outage.
    pub rollback_to_baseline: bool,
}

/// Shuts down cleanly: optionally rolls back (per `policy`), then saves the
/// final state. Returns the rollback receipt if one happened.
pub fn shutdown<C: Clock>(
    executor: &mut SafetyExecutor<C>,
    engine: Option<EngineState>,
    store: &mut StateStore,
    policy: ShutdownPolicy,
) -> Result<Option<RollbackReceipt>, ShutdownError> {
    let receipt = if policy.rollback_to_baseline {
        Some(executor.rollback().map_err(ShutdownError::Rollback)?)
    } else {
        None
    };
    store.save(&GovernedState::new(executor.export_state(), engine))?;
    Ok(receipt)
}

/// Why [`shutdown`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ShutdownError {
    /// The requested rollback was refused.
    #[error("rollback on shutdown refused: {0}")]
    Rollback(Violation),
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
        fs::write(&path, b"{\"format\": \"hotpath-state/1\", \"executor\": ").expect("write");
        assert!(matches!(store.load(), Err(StateError::Corrupt { .. })));
        fs::write(&path, b"{\"format\": \"hotpath-state/0\"}").expect("write");
        assert!(
            matches!(store.load(), Err(StateError::Incompatible { found, .. }) if found == "hotpath-state/0")
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
        assert_eq!(entries(dir.path()), ["state.json"], "no temporary left");
    }

    /// The entries of `dir`, sorted.
    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
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
        assert_eq!(entries(dir.path()), ["state.json", "state.json.tmp"]);
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
            entries(dir.path()),
            ["null.json", "sub"],
            "no temporary left"
        );
    }

    #[test]
    fn shutdown_keeps_the_tuned_config_unless_asked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = StateStore::new(dir.path().join("state.json"), 0);
        let mut ex = tuned_executor();
        assert!(
            shutdown(&mut ex, None, &mut store, ShutdownPolicy::default())
                .expect("shutdown")
                .is_none()
        );
        let kept = store.load().expect("load").expect("saved");
        assert_eq!(&kept.executor.live.params[..], &[0.55]);
        let receipt = shutdown(
            &mut ex,
            None,
            &mut store,
            ShutdownPolicy {
                rollback_to_baseline: true,
            },
        )
        .expect("shutdown");
        assert!(receipt.is_some());
        let rolled = store.load().expect("load").expect("saved");
        assert_eq!(&rolled.executor.live.params[..], &[0.5]);
    }

    #[test]
    fn a_restored_executor_keeps_generation_baseline_and_latch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = StateStore::new(dir.path().join("state.json"), 0);
        let mut ex = tuned_executor();
        ex.freeze();
        shutdown(&mut ex, None, &mut store, ShutdownPolicy::default()).expect("shutdown");
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
