//! [`HostError`]: why a host could not open, step or shut down.

use hotpath::{EngineError, Violation};
use hotpath_durable::state::StateError;
use hotpath_durable::AuditLogError;
use std::path::PathBuf;
use std::time::Duration;

/// Why a [`Host`](crate::Host) call failed. Files are named; bad files are
/// errors, never panics or silent resets.
///
/// ```
/// use hotpath_host::{Host, HostError, HostOptions, Resume};
/// use hotpath::{AdaptiveEngineConfig, Knob, ManualClock, ParamSpace, ParamVec};
/// use std::sync::Arc;
///
/// let dir = tempfile::tempdir()?;
/// let space = Arc::new(ParamSpace::new(vec![Knob::real("a", 0.0, 1.0, 0.5)])?);
/// let options = HostOptions { resume: Resume::Require, ..HostOptions::in_dir(dir.path()) };
/// let opened = Host::open(space,
///                         AdaptiveEngineConfig::bounded(vec![(0.0, 1.0)]), options, ManualClock::new(0));
/// assert!(matches!(opened, Err(HostError::NoState { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The audit log could not be opened or did not shut down cleanly.
    #[error(transparent)]
    AuditLog(#[from] AuditLogError),
    /// The audit log took no event for a long time ([`WhenFull::Wait`](crate::WhenFull::Wait)).
    #[error("the audit log in {} took no event for {waited:?} (last write error: {})", dir.display(), last_error.as_deref().unwrap_or("none"))]
    AuditStalled {
        /// The log directory.
        dir: PathBuf,
        /// How long it was waited for.
        waited: Duration,
        /// The writer's last error.
        last_error: Option<String>,
    },
    /// The state file could not be read or written (corrupt, of another
    /// format, an I/O error).
    #[error(transparent)]
    State(#[from] StateError),
    /// [`Resume::Require`](crate::Resume::Require) and there is no state
    /// file.
    #[error("there is no state file {} to resume from", path.display())]
    NoState {
        /// The state file.
        path: PathBuf,
    },
    /// The engine could not be built from the settings.
    #[error("cannot start the engine: {0}")]
    Engine(#[from] EngineError),
    /// The state file does not fit these settings.
    #[error("cannot restore the state in {}: {source}", path.display())]
    Restore {
        /// The state file.
        path: PathBuf,
        /// Why.
        source: EngineError,
    },
    /// The engine refused a digest (malformed, or its time went
    /// backwards); nothing changed.
    #[error(transparent)]
    Digest(EngineError),
    /// The executor refused an operator's request.
    #[error("refused: {0}")]
    Refused(Violation),
    /// A directory could not be created.
    #[error("cannot create {}: {source}", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The state was to cover audit event `seq`, which the log never
    /// committed.
    #[error("the audit log has not committed event {seq}, which the state would cover")]
    NotLogged {
        /// The event.
        seq: u64,
    },
    /// A [`HostOptions`](crate::HostOptions) setting, or a subscription's
    /// capacity, is out of its documented range.
    #[error("invalid host option {option}: {reason}")]
    InvalidOption {
        /// The setting.
        option: &'static str,
        /// The value and what is accepted.
        reason: String,
    },
    /// The options contradict each other.
    #[error("invalid host options: {0}")]
    Options(&'static str),
    /// A [`Handoff`](crate::Handoff)'s state is not a checkpoint of the
    /// chain head it carries.
    #[error("cannot take over: {0}")]
    Handoff(&'static str),
}
