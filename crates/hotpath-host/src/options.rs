//! [`HostOptions`]: where a [`Host`](crate::Host) keeps its log and state,
//! and how it treats them.

use crate::error::HostError;
use crate::feed::STALL_TIMEOUT;
use hotpath::{DEFAULT_AUDIT_CAPACITY, MAX_AUDIT_CAPACITY};
use hotpath_durable::audit_log::MAX_WAIT;
use hotpath_durable::AuditLogOptions;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The audit log's directory inside [`HostOptions::in_dir`]'s directory.
pub const AUDIT_DIR: &str = "audit";
/// The state file's name inside [`HostOptions::in_dir`]'s directory.
pub const STATE_FILE: &str = "state.json";

/// What the host does with an event when the audit log's queue is full.
///
/// ```
/// use hotpath_host::{HostOptions, WhenFull};
///
/// let replay = HostOptions { when_full: WhenFull::Wait, ..HostOptions::in_memory() };
/// assert_eq!(HostOptions::default().when_full, WhenFull::Hold);
/// # let _ = replay;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Wait for room (at most [`STALL_TIMEOUT`](crate::STALL_TIMEOUT)
    /// without progress): the executor never sees a full queue, so a run
    /// stays a function of its inputs (replay, tests).
    Wait,
    /// Keep the event and stop draining the executor's queue until the log
    /// has room: the executor's own queue fills and it refuses changes in
    /// `AuditQueueFull` safe mode until the log catches up, as a live
    /// service must when its disk is slow.
    Hold,
}

/// Whether [`Host::open`](crate::Host::open) starts from the state file.
///
/// ```
/// use hotpath_host::{HostOptions, Resume};
///
/// let fresh = HostOptions { resume: Resume::Fresh, ..HostOptions::in_dir("/var/lib/svc") };
/// assert_eq!(HostOptions::default().resume, Resume::IfPresent);
/// # let _ = fresh;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Start from the initial values; an existing state file is not read
    /// (and is replaced by the first save).
    Fresh,
    /// Restore the state file if there is one, start fresh if there is
    /// none (a service's restart).
    IfPresent,
    /// Restore the state file; its absence is an error
    /// ([`HostError::NoState`](crate::HostError::NoState)).
    Require,
}

/// How a [`Host`](crate::Host) keeps its audit log and state.
///
/// `None` directories mean in memory: no log (events go to subscribers
/// only) and no state file, for tests and embedded use.
///
/// ```
/// use hotpath_host::HostOptions;
/// use std::path::Path;
///
/// let options = HostOptions::in_dir("/var/lib/my-service");
/// assert_eq!(options.audit_dir.as_deref(), Some(Path::new("/var/lib/my-service/audit")));
/// assert_eq!(options.state_file.as_deref(), Some(Path::new("/var/lib/my-service/state.json")));
/// assert_eq!(HostOptions::in_memory().audit_dir, None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostOptions {
    /// The audit log's directory (created if missing), or `None`.
    pub audit_dir: Option<PathBuf>,
    /// The state file (its directory is created if missing), or `None`.
    pub state_file: Option<PathBuf>,
    /// The audit log's settings (fsync policy, rotation, batching).
    pub log: AuditLogOptions,
    /// What to do when the log falls behind.
    pub when_full: WhenFull,
    /// Capacity of the queue between the host and the log's writer (1 to
    /// [`MAX_AUDIT_CAPACITY`] events).
    pub log_queue_capacity: usize,
    /// How long the host waits for a log that makes no progress before it
    /// gives up ([`HostError::AuditStalled`]): under [`WhenFull::Wait`],
    /// and for [`Host::save_state`](crate::Host::save_state) (default
    /// [`STALL_TIMEOUT`], 30 s; more than 0, at most 1 hour).
    pub stall_timeout: Duration,
    /// Save the state at most this often (µs of the host's clock) after
    /// steps (any value; `u64::MAX` saves once); `None`: only when asked
    /// and at shutdown.
    pub state_save_interval_us: Option<u64>,
    /// Whether to start from the state file.
    pub resume: Resume,
}

impl Default for HostOptions {
    /// In memory, [`WhenFull::Hold`], a log queue of
    /// [`DEFAULT_AUDIT_CAPACITY`], saves at most once a second,
    /// [`Resume::IfPresent`].
    fn default() -> Self {
        Self {
            audit_dir: None,
            state_file: None,
            log: AuditLogOptions::default(),
            when_full: WhenFull::Hold,
            log_queue_capacity: DEFAULT_AUDIT_CAPACITY,
            stall_timeout: STALL_TIMEOUT,
            state_save_interval_us: Some(1_000_000),
            resume: Resume::IfPresent,
        }
    }
}

impl HostOptions {
    /// The defaults, with the log in `dir/audit` and the state in
    /// `dir/state.json`.
    pub fn in_dir(dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref();
        Self {
            audit_dir: Some(dir.join(AUDIT_DIR)),
            state_file: Some(dir.join(STATE_FILE)),
            ..Self::default()
        }
    }

    /// The defaults: no log, no state file.
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// Checks every setting is within its documented range (the log's
    /// settings included); [`Host::open`](crate::Host::open) does.
    ///
    /// ```
    /// use hotpath_host::{HostError, HostOptions};
    ///
    /// assert!(HostOptions::default().validate().is_ok());
    /// let huge = HostOptions { log_queue_capacity: usize::MAX, ..HostOptions::default() };
    /// assert!(matches!(huge.validate(), Err(HostError::InvalidOption { option: "log_queue_capacity", .. })));
    /// ```
    ///
    /// # Errors
    ///
    /// [`HostError::InvalidOption`] naming the first setting out of range,
    /// [`HostError::AuditLog`] for the log's.
    pub fn validate(&self) -> Result<(), HostError> {
        let invalid = |option, reason: String| Err(HostError::InvalidOption { option, reason });
        if !(1..=MAX_AUDIT_CAPACITY).contains(&self.log_queue_capacity) {
            return invalid(
                "log_queue_capacity",
                format!(
                    "{} events; expected 1 to {MAX_AUDIT_CAPACITY}",
                    self.log_queue_capacity
                ),
            );
        }
        if self.stall_timeout.is_zero() || self.stall_timeout > MAX_WAIT {
            return invalid(
                "stall_timeout",
                format!(
                    "{:?}; expected more than 0 and at most 1 hour",
                    self.stall_timeout
                ),
            );
        }
        Ok(self.log.validate()?)
    }
}

/// What [`Host::shutdown`](crate::Host::shutdown) does before it closes
/// the log.
///
/// ```
/// use hotpath_host::ShutdownPolicy;
///
/// let p = ShutdownPolicy::default();
/// assert!(!p.rollback_to_baseline && p.save_state);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownPolicy {
    /// Restore the baseline first. Off by default: the tuned configuration
    /// is what the service runs with, and undoing it on every restart is
    /// its own outage.
    pub rollback_to_baseline: bool,
    /// Save the final state (default). Off keeps the last state saved
    /// (a run that measures after tuning and must not save what it
    /// measured).
    pub save_state: bool,
}

impl Default for ShutdownPolicy {
    fn default() -> Self {
        Self {
            rollback_to_baseline: false,
            save_state: true,
        }
    }
}
