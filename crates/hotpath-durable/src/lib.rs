//! # hotpath-durable: what survives a crash
//!
//! [`hotpath`]'s executor records every decision in an in-memory
//! [`AuditQueue`](hotpath::AuditQueue). This crate makes that trail durable
//! and tamper-evident, and persists the governed state:
//!
//! * [`audit_log`]: an [`AuditLog`] thread drains the queue into
//!   append-only, hash-chained JSON Lines files; [`verify`] proves a log
//!   intact or names the first broken line.
//! * [`state`]: the governed state, persisted for restart recovery.
//!
//! ```
//! use hotpath::{AtomicConfig, ParamVec, Proposal, SafetyExecutor};
//! use hotpath_durable::{verify, AuditLog, AuditLogOptions};
//! use std::sync::Arc;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let dir = dir.path().join("audit");
//! let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
//! let mut executor = SafetyExecutor::builder(config).build()?;
//! let log = AuditLog::open(&dir, AuditLogOptions::default(), executor.audit_queue().clone())?;
//! executor.apply(Proposal::ApplyPlus { perturbation_id: 1, delta: ParamVec::from_slice(&[0.01]) })?;
//! drop(executor);
//! log.shutdown()?;
//! let report = verify(&dir)?;
//! assert_eq!((report.first_seq, report.last_seq), (Some(0), Some(1)));
//! # Ok(())
//! # }
//! ```
//!
//! # Restarts
//!
//! The start-up sequence (open and recover the log, load the state, build
//! the executor at a generation above both, restore, continue the audit
//! numbering) is written once, in the `hotpath-host` crate's `Host`, which
//! owns the engine, the log and the state file: use it. Embedding this
//! crate alone, follow the same order: the [`audit_log`] module's
//! "Sequence numbers across restarts" and the [`state`] module show the
//! pieces.
//!
//! # The audit log in brief
//!
//! The [`audit_log`] module docs specify everything; in short:
//!
//! * **Files.** A directory of `audit.0000000001.jsonl`,
//!   `audit.0000000002.jsonl`, …, rotated when a file would exceed
//!   [`AuditLogOptions::max_file_bytes`].
//! * **Format.** One line per event:
//!   `{"seq":…,"type":"…","prev":"<hex>","event":{…},"hash":"<hex>"}`, the
//!   event being the executor's `AuditEvent` as serde_json writes it
//!   (timestamp, generation, structured details).
//! * **Hash chain.** `hash` is the SHA-256 of the line up to `,"hash":"`,
//!   which includes `prev`, the previous line's hash (64 zeros first),
//!   across files. Editing, deleting, inserting or reordering a line breaks
//!   the chain at that line.
//! * **Fsync policy.** [`FsyncPolicy::Every`] event,
//!   [`FsyncPolicy::GroupCommit`] every N ms (default 10), or
//!   [`FsyncPolicy::Never`]; [`AuditLog::durable_seq`] tells what is on
//!   disk.
//! * **Crash recovery.** [`AuditLog::open`] cuts a torn final line (no
//!   newline, or not JSON), reports it ([`OpenReport`]) and continues the
//!   chain; [`AuditLog::next_seq`] is where a restarted executor's
//!   numbering must continue. Damage before the final line, and a complete
//!   final line that parses but does not verify (an edit), is refused, not
//!   cut.
//! * **Fleets.** Successive leaders of a fleet each write a segment of one
//!   chain in their own directory ([`AuditLog::open_segment`], from the
//!   head the last leader published); [`verify_fleet`] checks the chain
//!   across the directories and reports the abandoned tails.
//! * **Verification.** [`verify`] checks every hash, link and sequence
//!   number and returns counts ([`VerifyReport`]) or the first problem with
//!   its file and line ([`VerifyError`]); [`LogReader`] reads the events
//!   back while verifying.
//! * **Backpressure.** The writer never blocks the executor. When the disk
//!   fails or stalls the writer holds a bounded number of lines and retries;
//!   the queue fills and the executor latches safe mode (`AuditQueueFull`)
//!   until the log catches up. Nothing is lost without being counted.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit_log;
pub mod state;

pub use audit_log::{
    verify, verify_fleet, AuditLog, AuditLogError, AuditLogOptions, AuditLogStats, FsyncPolicy,
    LogReader, OpenReport, VerifyError, VerifyReport,
};
