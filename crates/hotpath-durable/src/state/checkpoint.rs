//! [`check_against_log`]: a state file is a checkpoint of its audit log.

use super::{GovernedState, StateError};
use crate::audit_log::{ChainHash, LogReader, LogRecord};
use hotpath::{AuditDetails, EventType, ParamVec};
use std::fmt;
use std::path::Path;

/// How a state file and its audit log disagree (see [`check_against_log`]).
///
/// ```
/// use hotpath_durable::state::LogMismatch;
///
/// let lost = LogMismatch::AheadOfLog { checkpoint: 41, log_last: Some(38) };
/// assert!(lost.to_string().starts_with("the state covers the log up to seq 41, but the log ends at seq 38"));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LogMismatch {
    /// The log ends before the event the state names: the events the state
    /// depends on are not in the log.
    AheadOfLog {
        /// The seq of the state's checkpoint.
        checkpoint: u64,
        /// The log's last seq (`None`: no events).
        log_last: Option<u64>,
    },
    /// The event the state names has another hash in the log.
    Hash {
        /// The event.
        seq: u64,
        /// The hash the state names.
        state: ChainHash,
        /// The hash of the log's line.
        log: ChainHash,
    },
    /// The state holds no checkpoint, but the log has events: it cannot be
    /// tied to them.
    NoCheckpoint {
        /// The log's last seq.
        log_last: u64,
    },
    /// The state's next audit seq is not the one after its checkpoint.
    NextSeq {
        /// The checkpoint's seq.
        checkpoint: u64,
        /// The state's `next_audit_seq`.
        next: u64,
    },
    /// The live generation differs from the one the log recorded.
    Generation {
        /// The checkpoint's seq.
        seq: u64,
        /// The state's.
        state: u64,
        /// The log's.
        log: u64,
    },
    /// The live values differ from the last ones the log recorded
    /// (`Started`, `Restored`, `Applied` or `RolledBack`).
    LiveParams {
        /// The checkpoint's seq.
        seq: u64,
        /// The state's.
        state: Vec<f64>,
        /// The log's, `None` if it recorded none.
        log: Option<Vec<f64>>,
    },
    /// The baseline differs from the last one the log recorded
    /// (`BaselineSet`; none after a `Started`).
    Baseline {
        /// The checkpoint's seq.
        seq: u64,
        /// The state's: generation and values.
        state: Option<(u64, Vec<f64>)>,
        /// The log's.
        log: Option<(u64, Vec<f64>)>,
    },
}

impl fmt::Display for LogMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AheadOfLog {
                checkpoint,
                log_last,
            } => {
                write!(
                    f,
                    "the state covers the log up to seq {checkpoint}, but the log "
                )?;
                match log_last {
                    Some(last) => write!(f, "ends at seq {last}")?,
                    None => write!(f, "has no events")?,
                }
                write!(
                    f,
                    ": the events it depends on are gone (a power cut under FsyncPolicy::Never, \
                     or a log replaced or cut); restore the log, or start fresh"
                )
            }
            Self::Hash { seq, state, log } => write!(
                f,
                "event {seq} has hash {log} in the log, the state names {state}"
            ),
            Self::NoCheckpoint { log_last } => write!(
                f,
                "the state names no event of the log, which has events up to seq {log_last}"
            ),
            Self::NextSeq { checkpoint, next } => write!(
                f,
                "the state's next audit seq {next} is not the one after its checkpoint {checkpoint}"
            ),
            Self::Generation { seq, state, log } => write!(
                f,
                "the live generation is {state} in the state, {log} in the log at seq {seq}"
            ),
            Self::LiveParams { seq, state, log } => write!(
                f,
                "the live values are {state:?} in the state, {} in the log at seq {seq}",
                shown(log.as_deref())
            ),
            Self::Baseline { seq, state, log } => {
                let side = |b: &Option<(u64, Vec<f64>)>| match b {
                    Some((generation, params)) => format!("{params:?} (generation {generation})"),
                    None => "none".to_owned(),
                };
                write!(
                    f,
                    "the baseline is {} in the state, {} in the log at seq {seq}",
                    side(state),
                    side(log)
                )
            }
        }
    }
}

fn shown(params: Option<&[f64]>) -> String {
    params.map_or_else(|| "none".to_owned(), |p| format!("{p:?}"))
}

/// What the log says up to an event: the live values and generation, the
/// baseline.
#[derive(Default)]
struct Replayed {
    live: Option<ParamVec>,
    baseline: Option<(u64, ParamVec)>,
}

impl Replayed {
    /// Follows one event. Only the events that carry parameters are
    /// decoded (a refused NaN proposal, written with `null`s, is never
    /// one of them).
    fn follow(&mut self, record: &LogRecord) -> Result<(), String> {
        let carries = matches!(
            record.event_type,
            EventType::Started
                | EventType::Restored
                | EventType::Applied
                | EventType::RolledBack
                | EventType::BaselineSet
        );
        if !carries {
            return Ok(());
        }
        let event = record
            .audit_event()
            .map_err(|e| format!("event {} cannot be read back: {e}", record.seq))?;
        match event.details {
            AuditDetails::Started { params } => {
                // A fresh executor has no baseline until it sets one.
                self.live = Some(params);
                self.baseline = None;
            }
            AuditDetails::Restored { params, .. }
            | AuditDetails::Applied { params, .. }
            | AuditDetails::RolledBack { params, .. } => self.live = Some(params),
            AuditDetails::BaselineSet {
                baseline_generation,
                params,
            } => self.baseline = Some((baseline_generation, params)),
            _ => {}
        }
        Ok(())
    }
}

/// Checks that `state` (read from `state_path`) is a checkpoint of the
/// audit log in `log_dir`: the log holds the event the state names, with
/// that hash, and what the log recorded up to it agrees with the state:
/// the live generation (the event's), the live values (the last
/// `Started`, `Restored`, `Applied` or `RolledBack`), the baseline (the
/// last `BaselineSet` since the last `Started`) and the next audit seq. A
/// state without a checkpoint fits only a log without events. The log is
/// read from its start to that event, verifying the chain.
///
/// ```
/// use hotpath::{AtomicConfig, AuditQueue, ParamVec, SafetyExecutor};
/// use hotpath_durable::audit_log::{AuditLog, AuditLogOptions};
/// use hotpath_durable::state::{check_against_log, shutdown, ShutdownPolicy, StateError, StateStore};
/// use std::sync::Arc;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let (audit, path) = (dir.path().join("audit"), dir.path().join("state.json"));
/// let queue = Arc::new(AuditQueue::new(1024));
/// let log = AuditLog::open(&audit, AuditLogOptions::default(), Arc::clone(&queue))?;
/// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[48.0])));
/// let mut executor = SafetyExecutor::builder(config).audit_queue(queue).build()?;
/// let mut store = StateStore::new(&path, 0);
/// shutdown(&mut executor, None, &mut store, log, ShutdownPolicy::default())?;
///
/// let mut edited = store.load()?.expect("saved");
/// edited.executor.live.params = ParamVec::from_slice(&[55.0]); // in range, but not what happened
/// let e = check_against_log(&edited, &path, &audit).unwrap_err();
/// assert!(matches!(e, StateError::LogMismatch { .. }));
/// assert!(e.to_string().contains("the live values are [55.0] in the state, [48.0] in the log"));
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`StateError::LogMismatch`] naming both files and what disagrees
/// ([`LogMismatch`]), [`StateError::LogUnreadable`] for a log that does
/// not verify up to the checkpoint (its file and line).
pub fn check_against_log(
    state: &GovernedState,
    state_path: &Path,
    log_dir: &Path,
) -> Result<(), StateError> {
    let mismatch = |mismatch: LogMismatch| StateError::LogMismatch {
        state: state_path.to_path_buf(),
        log: log_dir.to_path_buf(),
        mismatch: Box::new(mismatch),
    };
    let unreadable = |source| StateError::LogUnreadable {
        state: state_path.to_path_buf(),
        source: Box::new(source),
    };
    let mut reader = LogReader::open(log_dir).map_err(unreadable)?;
    let Some(checkpoint) = state.checkpoint else {
        // Only the first line is needed to know the log is not empty.
        return match reader.next().transpose().map_err(unreadable)? {
            None => Ok(()),
            Some(_) => {
                let last = crate::verify(log_dir).map_err(unreadable)?.last_seq;
                Err(mismatch(LogMismatch::NoCheckpoint {
                    log_last: last.unwrap_or(0),
                }))
            }
        };
    };
    let next = state.executor.next_audit_seq;
    if checkpoint.seq.checked_add(1) != Some(next) {
        return Err(mismatch(LogMismatch::NextSeq {
            checkpoint: checkpoint.seq,
            next,
        }));
    }
    let mut replayed = Replayed::default();
    let mut last_seq = None;
    for record in reader.by_ref() {
        let record = record.map_err(unreadable)?;
        last_seq = Some(record.seq);
        if record.seq > checkpoint.seq {
            break;
        }
        replayed.follow(&record).map_err(|reason| {
            unreadable(crate::VerifyError::Line {
                file: record.file.to_path_buf(),
                line: record.line,
                defect: crate::audit_log::LineDefect::Malformed { reason },
            })
        })?;
        if record.seq == checkpoint.seq {
            if record.hash != checkpoint.hash {
                return Err(mismatch(LogMismatch::Hash {
                    seq: checkpoint.seq,
                    state: checkpoint.hash,
                    log: record.hash,
                }));
            }
            let generation = record
                .event
                .get("generation")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            return agree(state, checkpoint.seq, generation, &replayed).map_err(mismatch);
        }
    }
    Err(mismatch(LogMismatch::AheadOfLog {
        checkpoint: checkpoint.seq,
        log_last: last_seq,
    }))
}

/// The state against what the log recorded up to its checkpoint `seq`.
fn agree(
    state: &GovernedState,
    seq: u64,
    generation: u64,
    log: &Replayed,
) -> Result<(), LogMismatch> {
    let live = &state.executor.live;
    if live.generation != generation {
        return Err(LogMismatch::Generation {
            seq,
            state: live.generation,
            log: generation,
        });
    }
    if !log.live.as_ref().is_some_and(|p| p.bit_eq(&live.params)) {
        return Err(LogMismatch::LiveParams {
            seq,
            state: live.params.to_vec(),
            log: log.live.as_ref().map(|p| p.to_vec()),
        });
    }
    let in_state = state
        .executor
        .baseline
        .as_ref()
        .map(|b| (b.snapshot.generation, &b.snapshot.params));
    let same = match (in_state, &log.baseline) {
        (None, None) => true,
        (Some((g, p)), Some((lg, lp))) => g == *lg && p.bit_eq(lp),
        _ => false,
    };
    if !same {
        return Err(LogMismatch::Baseline {
            seq,
            state: in_state.map(|(g, p)| (g, p.to_vec())),
            log: log.baseline.as_ref().map(|(g, p)| (*g, p.to_vec())),
        });
    }
    Ok(())
}
