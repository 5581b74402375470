//! The audit log on its own: writing, fsync policies, rotation, crash
//! recovery on open, sequence numbers, locking and options. Events are made
//! by hand and queued directly; `backpressure.rs` and `crash.rs` drive a
//! real executor.

use hotpath::{AuditDetails, AuditEvent, AuditQueue, EnqueueResult, OutcomeVerdict};
use hotpath_durable::audit_log::{
    verify, AuditLog, AuditLogError, AuditLogOptions, ChainHash, FsyncPolicy, LineDefect,
    LogReader, LogRecord, VerifyError,
};
use std::fs;
use std::io::Write;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::file;

fn event(seq: u64) -> AuditEvent {
    AuditEvent {
        seq,
        timestamp_us: seq * 1_000,
        generation: seq / 3,
        details: AuditDetails::Outcome {
            reported_generation: seq / 3,
            objective: seq as f64 * 0.25,
            verdict: OutcomeVerdict::Unjudged,
        },
    }
}

fn enqueue(queue: &AuditQueue, seqs: Range<u64>) {
    for seq in seqs {
        assert_eq!(queue.enqueue(event(seq)), EnqueueResult::Enqueued);
    }
}

/// Opens the log in `dir`, queues `seqs`, shuts down.
fn write(dir: &Path, options: AuditLogOptions, seqs: Range<u64>) -> AuditLog {
    let queue = Arc::new(AuditQueue::new(4096));
    let log = AuditLog::open(dir, options, Arc::clone(&queue)).unwrap();
    enqueue(&queue, seqs);
    log
}

fn records(dir: &Path) -> Vec<LogRecord> {
    LogReader::open(dir)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    done()
}

#[test]
fn events_are_written_verified_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let stats = write(dir.path(), AuditLogOptions::default(), 0..50)
        .shutdown()
        .unwrap();
    assert_eq!(stats.events_written, 50);
    assert_eq!(stats.durable_seq, Some(49));
    assert_eq!(stats.write_errors, 0);
    assert_eq!(stats.pending_events, 0);
    assert_eq!(
        stats.bytes_written,
        fs::metadata(file(dir.path(), 1)).unwrap().len()
    );

    let report = verify(dir.path()).unwrap();
    assert_eq!(
        (
            report.files,
            report.events,
            report.first_seq,
            report.last_seq
        ),
        (1, 50, Some(0), Some(49))
    );
    assert_eq!(report.first_prev, ChainHash::GENESIS);
    let records = records(dir.path());
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record.line, i as u64 + 1);
        assert_eq!(record.audit_event().unwrap(), event(i as u64));
    }
    assert_eq!(records.last().map(|r| r.hash), Some(report.last_hash));
}

#[test]
fn group_commit_makes_events_durable_without_shutdown_and_batches_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let options = AuditLogOptions {
        fsync: FsyncPolicy::GroupCommit { interval_ms: 5 },
        ..AuditLogOptions::default()
    };
    let log = write(dir.path(), options, 0..100);
    assert!(wait_until(Duration::from_secs(5), || log.durable_seq() == Some(99)));
    let stats = log.stats();
    assert!(stats.fsyncs >= 1 && stats.fsyncs < 50, "{stats:?}");
    // Durable means on disk: the file holds every event now.
    assert_eq!(verify(dir.path()).unwrap().last_seq, Some(99));
    log.shutdown().unwrap();
}

#[test]
fn every_syncs_each_event_and_never_syncs_none() {
    let dir = tempfile::tempdir().unwrap();
    let every = AuditLogOptions {
        fsync: FsyncPolicy::Every,
        ..AuditLogOptions::default()
    };
    let stats = write(dir.path(), every, 0..20).shutdown().unwrap();
    assert_eq!((stats.fsyncs, stats.durable_seq), (20, Some(19)));

    let dir = tempfile::tempdir().unwrap();
    let never = AuditLogOptions {
        fsync: FsyncPolicy::Never,
        ..AuditLogOptions::default()
    };
    let stats = write(dir.path(), never, 0..20).shutdown().unwrap();
    assert_eq!(stats.fsyncs, 0);
    assert_eq!((stats.written_seq, stats.durable_seq), (Some(19), None));
    assert_eq!(verify(dir.path()).unwrap().events, 20);
}

#[test]
fn rotation_continues_the_chain_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let options = AuditLogOptions {
        max_file_bytes: 1_000,
        ..AuditLogOptions::default()
    };
    let stats = write(dir.path(), options, 0..40).shutdown().unwrap();
    let report = verify(dir.path()).unwrap();
    assert_eq!((report.events, report.last_seq), (40, Some(39)));
    assert!(report.files >= 10, "{report:?}");
    assert_eq!(stats.rotations as usize, report.files - 1);
    for index in 1..=report.files as u64 {
        let len = fs::metadata(file(dir.path(), index)).unwrap().len();
        assert!(len > 0 && len <= 1_000, "file {index}: {len} bytes");
    }
    // The first line of each file links to the last line of the one before.
    let records = records(dir.path());
    let text = fs::read_to_string(file(dir.path(), 2)).unwrap();
    let last_of_first = records
        .iter()
        .rfind(|r| r.file.ends_with("audit.0000000001.jsonl"))
        .unwrap();
    assert!(text.starts_with(&format!(
        "{{\"seq\":{},\"type\":\"Outcome\",\"prev\":\"{}\"",
        last_of_first.seq + 1,
        last_of_first.hash
    )));
    // A file verified on its own starts from the previous file's hash.
    let alone = verify(file(dir.path(), 2)).unwrap();
    assert_eq!(alone.first_prev, last_of_first.hash);
    assert_eq!(alone.first_seq, Some(last_of_first.seq + 1));
}

#[test]
fn a_line_larger_than_the_limit_gets_a_file_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let options = AuditLogOptions {
        max_file_bytes: 10,
        ..AuditLogOptions::default()
    };
    write(dir.path(), options, 0..3).shutdown().unwrap();
    let report = verify(dir.path()).unwrap();
    assert_eq!((report.files, report.events), (3, 3));
}

#[test]
fn reopening_continues_the_chain_and_the_numbering() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), AuditLogOptions::default(), 0..10)
        .shutdown()
        .unwrap();
    let last_hash = verify(dir.path()).unwrap().last_hash;

    let queue = Arc::new(AuditQueue::new(64));
    let log = AuditLog::open(dir.path(), AuditLogOptions::default(), Arc::clone(&queue)).unwrap();
    let report = log.open_report().clone();
    assert_eq!((report.files, report.last_seq), (1, Some(9)));
    assert_eq!(report.last_hash, last_hash);
    assert_eq!(report.truncated_bytes, 0);
    assert!(report.truncations.is_empty());
    assert_eq!((report.next_seq(), log.next_seq()), (10, 10));
    assert_eq!(log.durable_seq(), Some(9));
    enqueue(&queue, 10..15);
    let stats = log.shutdown().unwrap();
    assert_eq!(stats.seq_anomalies, 0);
    let report = verify(dir.path()).unwrap();
    assert_eq!((report.events, report.last_seq), (15, Some(14)));
}

/// Writes 10 events, damages the end of the file with `damage`, reopens:
/// the damage must be cut and reported, and the log must continue.
fn recover_after(damage: impl FnOnce(&Path)) -> (hotpath_durable::OpenReport, u64) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), AuditLogOptions::default(), 0..10)
        .shutdown()
        .unwrap();
    let path = file(dir.path(), 1);
    damage(&path);
    let damaged_len = fs::metadata(&path).unwrap().len();
    let queue = Arc::new(AuditQueue::new(64));
    let log = AuditLog::open(dir.path(), AuditLogOptions::default(), Arc::clone(&queue)).unwrap();
    let report = log.open_report().clone();
    assert_eq!(report.truncations.len(), 1);
    assert_eq!(
        report.truncations[0].offset,
        damaged_len - report.truncated_bytes
    );
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        damaged_len - report.truncated_bytes
    );
    enqueue(&queue, log.next_seq()..log.next_seq() + 5);
    log.shutdown().unwrap();
    let verified = verify(dir.path()).unwrap();
    assert_eq!(verified.first_seq, Some(0));
    (report, verified.events)
}

fn append(path: &Path, bytes: &[u8]) {
    fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

#[test]
fn a_torn_final_line_is_cut_and_reported() {
    let torn = br#"{"seq":10,"type":"Outcome","prev":"00"#;
    let (report, events) = recover_after(|path| append(path, torn));
    assert_eq!(report.truncated_bytes, torn.len() as u64);
    let cut = &report.truncations[0];
    assert_eq!((cut.line, cut.bytes), (11, torn.len() as u64));
    assert_eq!(
        cut.defect,
        LineDefect::Incomplete {
            bytes: torn.len() as u64
        }
    );
    assert_eq!(cut.preview.as_bytes(), torn);
    assert_eq!(report.last_seq, Some(9));
    assert_eq!(events, 15);
}

#[test]
fn a_corrupt_complete_final_line_is_cut() {
    // What a power cut can leave: the newline's page written, not the rest.
    let mut zeros = vec![0u8; 300];
    zeros.push(b'\n');
    let (report, events) = recover_after(|path| append(path, &zeros));
    assert_eq!(report.truncated_bytes, 301);
    assert!(matches!(
        report.truncations[0].defect,
        LineDefect::NotJson { .. }
    ));
    assert!(report.truncations[0].defect.is_torn_write());
    assert_eq!(events, 15);
}

/// Writes 10 events, changes the end of the file with `edit`, reopens:
/// a complete, well-formed line is not a torn write, so `open` must refuse
/// at `line` and cut nothing.
fn refused_at_the_end_after(edit: impl FnOnce(&Path), line: u64, kind: fn(&LineDefect) -> bool) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), AuditLogOptions::default(), 0..10)
        .shutdown()
        .unwrap();
    let path = file(dir.path(), 1);
    edit(&path);
    let edited = fs::read(&path).unwrap();
    let queue = Arc::new(AuditQueue::new(64));
    match AuditLog::open(dir.path(), AuditLogOptions::default(), queue) {
        Err(AuditLogError::Corrupt(VerifyError::Line {
            file,
            line: at,
            defect,
            ..
        })) => {
            assert_eq!((file, at), (path.clone(), line), "{defect}");
            assert!(kind(&defect), "{defect:?}");
        }
        other => panic!("expected Corrupt at line {line}, got {other:?}"),
    }
    assert_eq!(fs::read(&path).unwrap(), edited, "nothing cut");
}

#[test]
fn an_edited_final_line_is_refused_not_cut() {
    // The evidence is kept: a complete line whose hash does not match was
    // changed after it was written, which no crash does.
    refused_at_the_end_after(
        |path| {
            let text = fs::read_to_string(path).unwrap();
            let edited = text.replace("\"timestamp_us\":9000", "\"timestamp_us\":9001");
            assert_ne!(edited, text);
            fs::write(path, edited).unwrap();
        },
        10,
        |d| matches!(d, LineDefect::HashMismatch { .. }),
    );
}

#[test]
fn a_well_formed_final_line_out_of_the_chain_is_refused_not_cut() {
    // A copy of an earlier line appended: its hash is right, its link is
    // not.
    refused_at_the_end_after(
        |path| {
            let text = fs::read_to_string(path).unwrap();
            let first = text.lines().next().unwrap().to_owned();
            append(path, format!("{first}\n").as_bytes());
        },
        11,
        |d| matches!(d, LineDefect::BrokenLink { .. }),
    );
    // Valid JSON that is not a line of the format.
    refused_at_the_end_after(
        |path| append(path, b"{\"seq\":10}\n"),
        11,
        |d| matches!(d, LineDefect::Malformed { .. }),
    );
}

#[test]
fn damage_before_the_final_line_is_refused_not_cut() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), AuditLogOptions::default(), 0..10)
        .shutdown()
        .unwrap();
    let path = file(dir.path(), 1);
    let text = fs::read_to_string(&path).unwrap();
    let edited = text.replace("\"timestamp_us\":4000", "\"timestamp_us\":4001");
    fs::write(&path, &edited).unwrap();
    let queue = Arc::new(AuditQueue::new(64));
    match AuditLog::open(dir.path(), AuditLogOptions::default(), queue) {
        Err(AuditLogError::Corrupt(VerifyError::Line {
            file, line, defect, ..
        })) => {
            assert_eq!((file, line), (path.clone(), 5));
            assert!(matches!(defect, LineDefect::HashMismatch { .. }));
        }
        other => panic!("expected Corrupt at line 5, got {other:?}"),
    }
    assert_eq!(fs::read_to_string(&path).unwrap(), edited, "nothing cut");
}

#[test]
fn a_torn_first_line_after_rotation_is_cut_and_the_chain_continues_from_the_file_before() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), AuditLogOptions::default(), 0..10)
        .shutdown()
        .unwrap();
    let head = verify(dir.path()).unwrap().last_hash;
    // A crash right after rotation, while writing the new file's first line.
    fs::write(file(dir.path(), 2), br#"{"seq":10,"ty"#).unwrap();

    let queue = Arc::new(AuditQueue::new(64));
    let log = AuditLog::open(dir.path(), AuditLogOptions::default(), Arc::clone(&queue)).unwrap();
    let report = log.open_report().clone();
    assert_eq!(report.files, 2);
    assert_eq!(report.current_file, file(dir.path(), 2));
    assert_eq!((report.last_seq, report.last_hash), (Some(9), head));
    assert_eq!(report.truncations[0].file, file(dir.path(), 2));
    enqueue(&queue, 10..12);
    log.shutdown().unwrap();
    let verified = verify(dir.path()).unwrap();
    assert_eq!((verified.files, verified.events), (2, 12));
}

#[test]
fn a_torn_line_in_an_empty_new_log_leaves_the_genesis() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(file(dir.path(), 1), b"{\"seq\":0,").unwrap();
    let queue = Arc::new(AuditQueue::new(64));
    let log = AuditLog::open(dir.path(), AuditLogOptions::default(), Arc::clone(&queue)).unwrap();
    assert_eq!(log.open_report().last_seq, None);
    assert_eq!(log.open_report().last_hash, ChainHash::GENESIS);
    assert_eq!(log.open_report().truncated_bytes, 9);
    enqueue(&queue, 0..3);
    log.shutdown().unwrap();
    assert_eq!(verify(dir.path()).unwrap().events, 3);
}

#[test]
fn an_event_out_of_sequence_is_written_counted_and_reported_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), AuditLogOptions::default(), 0..5)
        .shutdown()
        .unwrap();
    // An executor restarted without continuing the numbering.
    let stats = write(dir.path(), AuditLogOptions::default(), 0..3)
        .shutdown()
        .unwrap();
    assert_eq!((stats.seq_anomalies, stats.events_written), (1, 3));
    match verify(dir.path()) {
        Err(VerifyError::SequenceGap {
            line,
            expected,
            found,
            ..
        }) => assert_eq!((line, expected, found), (6, 5, 0)),
        other => panic!("expected a sequence gap, got {other:?}"),
    }
}

#[test]
fn a_second_writer_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(AuditQueue::new(64));
    let first = AuditLog::open(dir.path(), AuditLogOptions::default(), Arc::clone(&queue)).unwrap();
    let second = AuditLog::open(dir.path(), AuditLogOptions::default(), Arc::clone(&queue));
    assert!(
        matches!(second, Err(AuditLogError::Locked { .. })),
        "{second:?}"
    );
    first.shutdown().unwrap();
    // Released on shutdown.
    AuditLog::open(dir.path(), AuditLogOptions::default(), queue)
        .unwrap()
        .shutdown()
        .unwrap();
}

#[test]
fn invalid_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for options in [
        AuditLogOptions {
            max_file_bytes: 0,
            ..AuditLogOptions::default()
        },
        AuditLogOptions {
            max_pending_events: 0,
            ..AuditLogOptions::default()
        },
        AuditLogOptions {
            poll_interval: Duration::ZERO,
            ..AuditLogOptions::default()
        },
        AuditLogOptions {
            retry_backoff_max: Duration::from_micros(10),
            ..AuditLogOptions::default()
        },
        // Beyond the documented limits: unbounded memory, a writer that
        // never wakes, deadlines that overflow (a panic in shutdown).
        AuditLogOptions {
            max_pending_events: hotpath::MAX_AUDIT_CAPACITY + 1,
            ..AuditLogOptions::default()
        },
        AuditLogOptions {
            poll_interval: Duration::MAX,
            ..AuditLogOptions::default()
        },
        AuditLogOptions {
            retry_backoff_max: Duration::MAX,
            ..AuditLogOptions::default()
        },
        AuditLogOptions {
            shutdown_timeout: Duration::MAX,
            ..AuditLogOptions::default()
        },
        AuditLogOptions {
            fsync: FsyncPolicy::GroupCommit {
                interval_ms: u64::MAX,
            },
            ..AuditLogOptions::default()
        },
    ] {
        let result = AuditLog::open(dir.path(), options, Arc::new(AuditQueue::new(8)));
        assert!(
            matches!(result, Err(AuditLogError::InvalidOptions { .. })),
            "{result:?}"
        );
    }
}

#[test]
fn dropping_the_log_flushes_it() {
    let dir = tempfile::tempdir().unwrap();
    drop(write(dir.path(), AuditLogOptions::default(), 0..7));
    assert_eq!(verify(dir.path()).unwrap().last_seq, Some(6));
}

#[test]
fn a_new_directory_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b/audit");
    write(&nested, AuditLogOptions::default(), 0..2)
        .shutdown()
        .unwrap();
    assert_eq!(verify(&nested).unwrap().events, 2);
    assert!(matches!(
        verify(dir.path().join("missing")),
        Err(VerifyError::Io { .. })
    ));
    assert!(matches!(
        verify(nested.join("audit.lock")),
        Err(VerifyError::NotALogFile { .. })
    ));
}
