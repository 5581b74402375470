//! # hotpath-host: the application layer
//!
//! What every front end of [`hotpath`] needs, without a command line: a
//! [`Host`] owns the [`AdaptiveEngine`](hotpath::AdaptiveEngine), the
//! durable [`AuditLog`](hotpath_durable::AuditLog) and the
//! [`StateStore`](hotpath_durable::state::StateStore), and is the one
//! place the restart protocol is written (open the log, load the state,
//! build the executor above both generations, restore, continue the audit
//! numbering). The `hotpath` command's `demo` and `replay` run on it; a
//! daemon, a binding or a fleet runs on it the same way.
//!
//! ```
//! use hotpath::{ManualClock, TelemetryDigest};
//! use hotpath_host::{Host, HostOptions, ShutdownPolicy};
//! use std::path::Path;
//!
//! let text = "[[param]]\nname = \"batch_size\"\nmin = 1\nmax = 512\ninitial = 64\n";
//! let config = hotpath_config::parse("tuning.toml", text, Path::new(""), &[]).expect("valid");
//! let dir = tempfile::tempdir()?;
//! let clock = ManualClock::new(0);
//! let mut host = Host::from_config(&config, HostOptions::in_dir(dir.path()), clock.clone())?;
//! let live = host.subscribe(1024)?;              // an observer's copy of the audit trail
//! clock.advance(100_000);
//! host.step(TelemetryDigest::new(100_000, 3.2, 40).with_generation(host.executor().generation()))?;
//! host.freeze()?;                                 // operator calls go through the host too
//! let report = host.shutdown(ShutdownPolicy::default())?;
//! assert!(report.state_file.is_some());
//! assert!(live.try_next().is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! * [`HostOptions`]: where the log and the state live (`None`: in
//!   memory), the fsync policy, [`WhenFull`] (wait for the log, or let
//!   backpressure reach the executor), how often the state is saved, and
//!   whether to [`Resume`].
//! * [`Host::subscribe`]: a lossy, bounded copy of the audit events for
//!   observers; the durable log stays the authority.
//! * [`Host::shutdown`]: the final state save (rolling back first is
//!   opt-in, [`ShutdownPolicy`]) and the log flushed and closed.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod feed;
mod host;
mod options;
mod tee;

pub use error::HostError;
pub use feed::{LogSummary, STALL_TIMEOUT};
pub use host::{Handoff, Host, OpenReport, ShutdownReport};
pub use options::{HostOptions, Resume, ShutdownPolicy, WhenFull, AUDIT_DIR, STATE_FILE};
pub use tee::Subscription;
