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
