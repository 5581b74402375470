//! Fuzzing the durable crate's two parsers, the audit log line and the
//! state file, as bounded property tests (`cargo fuzz` needs a nightly
//! toolchain): arbitrary bytes, and valid inputs with random byte edits.
//! The properties: never a panic, and every error typed and located (a
//! log's error names its file and line; a state file's names the file).
//! After `AuditLog::open` accepts a log, the log verifies.
//!
//! `HOTPATH_FUZZ_CASES` sets the cases per target (default 256); a long
//! run: `HOTPATH_FUZZ_CASES=100000 cargo test --release -p hotpath-durable --test fuzz`.
//! A failing case is saved in `fuzz.proptest-regressions` (re-run first
//! next time); add it to `tests/corpus/` with its expected outcome.
//!
//! The corpus, `tests/corpus/{audit,state}/`, holds the cases the
//! reliability issue named and any the fuzzer found, each replayed with its
//! expected outcome (`NAME.expected` beside `NAME`).

use hotpath::{AuditQueue, Guardrails, ManualClock, ParamVec, Proposal, SafetyExecutor};
use hotpath_durable::audit_log::{verify, AuditLog, AuditLogError, AuditLogOptions, LogReader};
use hotpath_durable::state::{check_against_log, shutdown, ShutdownPolicy, StateError, StateStore};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

mod common;

fn cases() -> u32 {
    std::env::var("HOTPATH_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

/// A valid log and state file, written once by a real executor: the
/// seeds the edits start from.
struct Seeds {
    log: Vec<u8>,
    state: Vec<u8>,
    /// The directory holding them (`audit/`, `state.json`), kept for the
    /// state's checks against its log.
    dir: tempfile::TempDir,
}

fn seeds() -> &'static Seeds {
    static SEEDS: OnceLock<Seeds> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut executor, clock, _) = common::fast_executor(1024);
        let log = AuditLog::open(
            dir.path().join("audit"),
            AuditLogOptions::default(),
            executor.audit_queue().clone(),
        )
        .expect("open");
        executor.set_baseline().expect("baseline");
        for i in 1..12u64 {
            clock.advance(2_000);
            let delta = if i % 5 == 0 {
                ParamVec::from_slice(&[f64::NAN, 0.0])
            } else {
                ParamVec::from_slice(&[0.01, -0.01])
            };
            let _ = executor.apply(Proposal::ApplyPlus {
                perturbation_id: i,
                delta,
            });
        }
        executor.rollback().expect("rollback");
        let mut store = StateStore::new(dir.path().join("state.json"), 0);
        shutdown(
            &mut executor,
            None,
            &mut store,
            log,
            ShutdownPolicy::default(),
        )
        .expect("shutdown");
        Seeds {
            log: fs::read(common::file(&dir.path().join("audit"), 1)).expect("log"),
            state: fs::read(dir.path().join("state.json")).expect("state"),
            dir,
        }
    })
}

/// Bytes that matter to the formats, and any byte.
fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => prop::sample::select(b"{}[]\":,\n0123456789-.eE \\nulltruefalse\x00\xff".to_vec()),
        1 => any::<u8>(),
    ]
}

#[derive(Debug, Clone)]
enum Edit {
    Replace(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Delete(prop::sample::Index),
    Truncate(prop::sample::Index),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        4 => (any::<prop::sample::Index>(), interesting_byte()).prop_map(|(i, b)| Edit::Replace(i, b)),
        2 => (any::<prop::sample::Index>(), interesting_byte()).prop_map(|(i, b)| Edit::Insert(i, b)),
        2 => any::<prop::sample::Index>().prop_map(Edit::Delete),
        1 => any::<prop::sample::Index>().prop_map(Edit::Truncate),
    ];
    prop::collection::vec(edit, 1..6)
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        if bytes.is_empty() {
            break;
        }
        match edit {
            Edit::Replace(i, b) => {
                let at = i.index(bytes.len());
                bytes[at] = *b;
            }
            Edit::Insert(i, b) => {
                let at = i.index(bytes.len() + 1);
                bytes.insert(at, *b);
            }
            Edit::Delete(i) => {
                let at = i.index(bytes.len());
                bytes.remove(at);
            }
            Edit::Truncate(i) => {
                let at = i.index(bytes.len());
                bytes.truncate(at);
            }
        }
    }
    bytes
}

/// A log directory holding `bytes` as its one file.
fn log_of(bytes: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(common::file(dir.path(), 1), bytes).expect("write");
    dir
}

/// The log parser's properties on `bytes`: verify, read back, open.
fn check_log(bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = log_of(bytes);
    let file = common::file(dir.path(), 1);
    match verify(dir.path()) {
        Ok(_) => {}
        Err(e) => {
            let located = e.location().is_some_and(|(f, line)| f == file && line >= 1);
            prop_assert!(located, "not located: {e}");
        }
    }
    for record in LogReader::open(dir.path()).expect("a directory") {
        match record {
            Ok(record) => {
                let _ = record.audit_event();
            }
            Err(e) => prop_assert!(e.location().is_some(), "not located: {e}"),
        }
    }
    match AuditLog::open(
        dir.path(),
        AuditLogOptions::default(),
        Arc::new(AuditQueue::new(8)),
    ) {
        Ok(log) => {
            log.shutdown().expect("clean shutdown");
            // What open accepted (and cut) is a sound log.
            if let Err(e) = verify(dir.path()) {
                // A line out of sequence with a sound chain is written by
                // a wrong writer, not cut: verify names it.
                prop_assert!(
                    matches!(e, hotpath_durable::VerifyError::SequenceGap { .. }),
                    "open accepted a log that does not verify: {e}"
                );
            }
        }
        Err(AuditLogError::Corrupt(e)) => {
            prop_assert!(e.location().is_some(), "not located: {e}");
            prop_assert_eq!(fs::read(&file).expect("read"), bytes, "refused, yet cut");
        }
        Err(e) => prop_assert!(false, "unexpected error: {e}"),
    }
    Ok(())
}

/// The state parser's properties on `bytes`: load, and what a loaded state
/// is then put through.
fn check_state(bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.json");
    fs::write(&path, bytes).expect("write");
    match StateStore::new(&path, 0).load() {
        Ok(None) => prop_assert!(false, "a file that exists loaded as none"),
        Ok(Some(state)) => {
            let _ = check_against_log(&state, &path, &seeds().dir.path().join("audit"));
            let _ = SafetyExecutor::builder(state.config(None))
                .guardrails(Guardrails::default())
                .clock(ManualClock::new(0))
                .restore(state.executor)
                .build();
        }
        Err(e @ (StateError::Corrupt { .. } | StateError::Incompatible { .. })) => {
            prop_assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        }
        Err(e) => prop_assert!(false, "unexpected error: {e}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn audit_log_lines_of_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        check_log(&bytes)?;
    }

    #[test]
    fn audit_logs_with_random_edits(edits in edits()) {
        check_log(&apply(seeds().log.clone(), &edits))?;
    }

    #[test]
    fn state_files_of_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        check_state(&bytes)?;
    }

    #[test]
    fn state_files_with_random_edits(edits in edits()) {
        check_state(&apply(seeds().state.clone(), &edits))?;
    }
}

// ---------------------------------------------------------------- corpus

/// The corpus of `kind`, `tests/corpus/KIND/`.
fn corpus(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(kind)
}

/// What the log tools make of a log file, in words: `verify: …` and
/// `open: …`, paths shown from the log directory.
fn log_outcome(bytes: &[u8]) -> String {
    let dir = log_of(bytes);
    let shown = |text: String| text.replace(&format!("{}/", dir.path().display()), "");
    let verified = match verify(dir.path()) {
        Ok(r) => format!("verify: ok, {} events, last seq {:?}", r.events, r.last_seq),
        Err(e) => format!("verify: {}", shown(e.to_string())),
    };
    let opened = match AuditLog::open(
        dir.path(),
        AuditLogOptions::default(),
        Arc::new(AuditQueue::new(8)),
    ) {
        Ok(log) => {
            let report = log.open_report().clone();
            log.shutdown().expect("clean shutdown");
            match report.truncations.first() {
                Some(cut) => format!(
                    "open: cut {} bytes at line {}: {}",
                    cut.bytes, cut.line, cut.defect
                ),
                None => format!("open: ok, next seq {}", report.next_seq()),
            }
        }
        Err(e) => format!("open: {}", shown(e.to_string())),
    };
    format!("{verified}\n{opened}")
}

/// What loading and restoring a state file gives, in words.
fn state_outcome(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.json");
    fs::write(&path, bytes).expect("write");
    let shown = |text: String| text.replace(&format!("{}/", dir.path().display()), "");
    match StateStore::new(&path, 0).load() {
        Ok(Some(state)) => {
            let restored = SafetyExecutor::builder(state.config(None))
                .clock(ManualClock::new(0))
                .restore(state.executor)
                .build();
            match restored {
                Ok(_) => "load: ok\nrestore: ok".to_owned(),
                Err(e) => format!("load: ok\nrestore: {e}"),
            }
        }
        Ok(None) => "load: none".to_owned(),
        Err(e) => format!("load: {}", shown(e.to_string())),
    }
}

#[test]
fn the_audit_log_corpus_has_its_expected_outcomes() {
    hotpath_testkit::replay_corpus(&corpus("audit"), log_outcome);
}

#[test]
fn the_state_file_corpus_has_its_expected_outcomes() {
    hotpath_testkit::replay_corpus(&corpus("state"), state_outcome);
}

#[test]
fn the_seeds_are_sound() {
    // The edits start from valid inputs: otherwise they test little.
    let seeds = seeds();
    assert!(log_outcome(&seeds.log).starts_with("verify: ok"));
    assert_eq!(state_outcome(&seeds.state), "load: ok\nrestore: ok");
}
