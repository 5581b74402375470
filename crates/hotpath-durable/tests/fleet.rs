//! A fleet's audit log: segments written by successive leaders in their
//! own directories, verified as one chain with its abandoned tails.

use hotpath::{AtomicConfig, AuditQueue, ParamVec, Proposal, SafetyExecutor};
use hotpath_durable::audit_log::{
    verify_fleet, AuditLog, AuditLogOptions, LogHead, LogReader, SegmentDefect, VerifyError,
};
use std::path::Path;
use std::sync::Arc;

/// One leader's term in `dir`: a segment from `from`, `moves` applies.
fn term(dir: &Path, from: Option<LogHead>, moves: usize) -> Option<LogHead> {
    let queue = Arc::new(AuditQueue::new(64));
    let log = AuditLog::open_segment(dir, AuditLogOptions::default(), queue.clone(), from)
        .expect("opens");
    let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    let mut executor = SafetyExecutor::builder(config)
        .audit_queue(queue)
        .audit_sequence_start(log.next_seq())
        .clock(hotpath::ManualClock::new(0))
        .build()
        .expect("builds");
    for i in 0..moves {
        let delta = if i % 2 == 0 { 0.01 } else { -0.01 };
        let _ = executor.apply(Proposal::ApplyPlus {
            perturbation_id: i as u64,
            delta: ParamVec::from_slice(&[delta]),
        });
    }
    drop(executor);
    log.shutdown().expect("closes").committed
}

/// The head at `seq` of the log in `dir`.
fn head_at(dir: &Path, seq: u64) -> LogHead {
    let record = LogReader::open(dir)
        .expect("opens")
        .map(|r| r.expect("sound"))
        .find(|r| r.seq == seq)
        .expect("has it");
    LogHead {
        seq,
        hash: record.hash,
    }
}

#[test]
fn a_deposed_leaders_unpublished_lines_are_an_abandoned_tail() {
    let (a, b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    // Leader A decides seqs 0..=3 but published only up to seq 1.
    let end_a = term(a.path(), None, 3).expect("events");
    assert_eq!(end_a.seq, 3);
    let published = head_at(a.path(), 1);
    // Leader B continues from the published head.
    let end_b = term(b.path(), Some(published), 2).expect("events");
    assert_eq!(end_b.seq, 4);

    let report = verify_fleet(&[a.path(), b.path()]).expect("sound");
    assert_eq!(report.chain.first_seq, Some(0));
    assert_eq!(report.chain.last_seq, Some(4));
    assert_eq!(report.chain.events, 5, "0, 1 in A then 2, 3, 4 in B");
    assert_eq!(report.chain.last_hash, end_b.hash);
    assert_eq!((report.chain.files, report.segments), (2, 2));
    assert_eq!(report.abandoned.len(), 1);
    let tail = &report.abandoned[0];
    assert!(tail.file.starts_with(a.path()));
    assert_eq!((tail.first_seq, tail.last_seq, tail.events), (2, 3, 2));

    // A leads again later: a new file in its directory, after B's head.
    let end = term(a.path(), Some(end_b), 1).expect("events");
    let report = verify_fleet(&[b.path(), a.path()]).expect("sound");
    assert_eq!(report.chain.last_hash, end.hash);
    assert_eq!((report.chain.files, report.segments), (3, 3));
    assert_eq!(report.chain.events, 7);
}

#[test]
fn a_missing_directory_or_a_second_genesis_is_refused() {
    let (a, b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let end_a = term(a.path(), None, 1);
    term(b.path(), end_a, 1);
    match verify_fleet(&[b.path()]) {
        Err(VerifyError::Segment {
            defect: SegmentDefect::Unattached { seq: 2, .. },
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    let c = tempfile::tempdir().expect("dir");
    term(c.path(), None, 0);
    match verify_fleet(&[a.path(), b.path(), c.path()]) {
        Err(VerifyError::Segment {
            defect: SegmentDefect::SecondGenesis { .. },
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_edited_line_in_any_segment_is_found_with_its_file_and_line() {
    let (a, b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let end_a = term(a.path(), None, 2);
    term(b.path(), end_a, 2);
    let file = b.path().join("audit.0000000001.jsonl");
    let text = std::fs::read_to_string(&file).expect("reads");
    std::fs::write(&file, text.replacen("\"seq\":4", "\"seq\":9", 1)).expect("writes");
    let error = verify_fleet(&[a.path(), b.path()]).expect_err("edited");
    let (at, line) = error.location().expect("located");
    assert_eq!((at, line), (file.as_path(), 2));
}
