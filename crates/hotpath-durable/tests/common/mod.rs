//! Setup shared by the test binaries that `mod common;` it. Each uses only
//! part of it, hence `allow(dead_code)`.
#![allow(dead_code)]

use hotpath::{AtomicConfig, Guardrails, ManualClock, ParamVec, SafetyExecutor};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The `index`-th file (from 1) of the audit log in `dir`.
pub fn file(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("audit.{index:010}.jsonl"))
}

/// An executor over two parameters at 0.5 on a manual clock at 0, with no
/// minimum interval and up to 1000 applies per second, so that a test can
/// make many decisions quickly; its live configuration and clock with it.
pub fn fast_executor(
    audit_capacity: usize,
) -> (SafetyExecutor<ManualClock>, ManualClock, Arc<AtomicConfig>) {
    let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5, 0.5])));
    let clock = ManualClock::new(0);
    let executor = SafetyExecutor::builder(Arc::clone(&config))
        .guardrails(Guardrails {
            min_interval_us: 0,
            max_updates_per_second: 1000.0,
            ..Guardrails::default()
        })
        .clock(clock.clone())
        .audit_capacity(audit_capacity)
        .build()
        .unwrap();
    (executor, clock, config)
}

/// A chained log file of `Started` events, one per `(seq, generation)`,
/// from the genesis hash, encoded as the writer encodes: a log no executor
/// would write (seqs beyond the ceiling, say).
pub fn forged_log(events: &[(u64, u64)]) -> Vec<u8> {
    use hotpath::{AuditDetails, AuditEvent};
    use hotpath_durable::audit_log::{encode, ChainHash};
    let mut prev = ChainHash::GENESIS;
    let mut text = Vec::new();
    for &(seq, generation) in events {
        let event = AuditEvent {
            seq,
            timestamp_us: 0,
            generation,
            details: AuditDetails::Started {
                params: ParamVec::from_slice(&[0.5]),
            },
        };
        let (line, hash) = encode(&event, &prev);
        text.extend_from_slice(&line);
        prev = hash;
    }
    text
}
