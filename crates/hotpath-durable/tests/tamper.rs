//! Tamper tests: a log written by a real executor is edited, cut, reordered
//! and forged in every way issue 4 names, and `verify` must name the right
//! file and line each time.

use hotpath::{ParamVec, Proposal};
use hotpath_durable::audit_log::{
    verify, AuditLog, AuditLogOptions, ChainHash, LineDefect, VerifyError, VerifyReport,
};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::Path;

mod common;
use common::file;

/// Bytes after a line's body: `,"hash":"` + 64 hex + `"}`.
const SUFFIX: usize = 9 + 64 + 2;

/// A log of `ops` executor decisions (applies, refusals, a baseline) in a
/// new directory.
fn executor_log(ops: u64, options: AuditLogOptions) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (mut executor, clock, _) = common::fast_executor(1024);
    let log = AuditLog::open(dir.path(), options, executor.audit_queue().clone()).unwrap();
    executor.set_baseline().unwrap();
    for i in 1..ops {
        clock.advance(2_000);
        let step = if i.is_multiple_of(2) { 0.01 } else { -0.01 };
        let delta = if i.is_multiple_of(5) {
            ParamVec::from_slice(&[f64::NAN, 0.0])
        } else {
            ParamVec::from_slice(&[step, step])
        };
        let proposal = Proposal::ApplyPlus {
            perturbation_id: i,
            delta,
        };
        assert_eq!(executor.apply(proposal).is_ok(), !i.is_multiple_of(5));
    }
    drop(executor);
    log.shutdown().unwrap();
    dir
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    fs::write(
        path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

/// Re-hashes a line after an edit, as a forger would.
fn rehash(line: &str) -> String {
    let body = &line[..line.len() - SUFFIX];
    let hash: String = Sha256::digest(body.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{body},\"hash\":\"{hash}\"}}")
}

/// Changes the event's timestamp in a line (a field edit).
fn edit(line: &str) -> String {
    let at = line.find("\"timestamp_us\":").unwrap() + "\"timestamp_us\":".len();
    let mut edited = line.to_owned();
    edited.insert(at, '1');
    edited
}

/// `verify`'s error must be about `line` of `path`, of the expected kind.
fn assert_broken_at(dir: &Path, path: &Path, line: u64, kind: fn(&LineDefect) -> bool) {
    match verify(dir) {
        Err(VerifyError::Line {
            file,
            line: at,
            defect,
        }) => {
            assert_eq!((file.as_path(), at), (path, line), "{defect}");
            assert!(kind(&defect), "line {line}: unexpected {defect:?}");
        }
        other => panic!("expected an error at line {line}, got {other:?}"),
    }
}

fn hash_mismatch(d: &LineDefect) -> bool {
    matches!(d, LineDefect::HashMismatch { .. })
}

fn broken_link(d: &LineDefect) -> bool {
    matches!(d, LineDefect::BrokenLink { .. })
}

/// Not a line of the format: not JSON, or JSON of another shape.
fn malformed(d: &LineDefect) -> bool {
    matches!(d, LineDefect::Malformed { .. } | LineDefect::NotJson { .. })
}

fn incomplete(d: &LineDefect) -> bool {
    matches!(d, LineDefect::Incomplete { .. })
}

/// One tampered copy per case: the sound log, then `tamper` applied to the
/// lines of its single file, then `check`.
fn tampered(
    original: &[String],
    tamper: impl FnOnce(&mut Vec<String>),
    check: impl FnOnce(&Path, &Path),
) {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), 1);
    let mut lines = original.to_vec();
    tamper(&mut lines);
    write_lines(&path, &lines);
    check(dir.path(), &path);
}

fn sound() -> (tempfile::TempDir, Vec<String>, VerifyReport) {
    let dir = executor_log(20, AuditLogOptions::default());
    let report = verify(dir.path()).unwrap();
    let lines = lines(&file(dir.path(), 1));
    assert_eq!(report.events, lines.len() as u64);
    assert!(lines.len() >= 20, "{}", lines.len());
    (dir, lines, report)
}

#[test]
fn the_untouched_log_verifies() {
    let (_dir, lines, report) = sound();
    assert_eq!(report.files, 1);
    assert_eq!(report.first_seq, Some(0));
    assert_eq!(report.last_seq, Some(lines.len() as u64 - 1));
}

#[test]
fn editing_any_line_is_reported_at_that_line() {
    let (_dir, original, _) = sound();
    for n in 1..=original.len() {
        tampered(
            &original,
            |lines| lines[n - 1] = edit(&lines[n - 1]),
            |dir, path| assert_broken_at(dir, path, n as u64, hash_mismatch),
        );
    }
}

#[test]
fn an_edited_and_rehashed_line_breaks_the_next_link() {
    let (_dir, original, _) = sound();
    tampered(
        &original,
        |lines| lines[6] = rehash(&edit(&lines[6])),
        |dir, path| assert_broken_at(dir, path, 8, broken_link),
    );
}

#[test]
fn deleting_any_line_but_the_last_is_reported_where_it_was() {
    let (_dir, original, _) = sound();
    for n in 1..original.len() {
        tampered(
            &original,
            |lines| {
                lines.remove(n - 1);
            },
            |dir, path| assert_broken_at(dir, path, n as u64, broken_link),
        );
    }
}

#[test]
fn deleting_the_last_line_is_caught_by_the_kept_head_only() {
    let (_dir, original, report) = sound();
    tampered(
        &original,
        |lines| {
            lines.pop();
        },
        |dir, _| {
            let cut = verify(dir).unwrap();
            assert_eq!(cut.last_seq, report.last_seq.map(|s| s - 1));
            assert_ne!(cut.last_hash, report.last_hash); // the anchor no longer matches
        },
    );
}

#[test]
fn reordering_two_lines_is_reported_at_the_first() {
    let (_dir, original, _) = sound();
    for n in 1..original.len() {
        tampered(
            &original,
            |lines| lines.swap(n - 1, n),
            |dir, path| assert_broken_at(dir, path, n as u64, broken_link),
        );
    }
}

#[test]
fn an_inserted_copy_of_a_line_is_reported() {
    let (_dir, original, _) = sound();
    tampered(
        &original,
        |lines| lines.insert(3, lines[2].clone()),
        |dir, path| assert_broken_at(dir, path, 4, broken_link),
    );
}

#[test]
fn truncating_a_line_in_the_middle_of_the_file_is_reported() {
    let (_dir, original, _) = sound();
    // Cut short, newline kept.
    tampered(
        &original,
        |lines| {
            let half = lines[8].len() / 2;
            lines[8].truncate(half);
        },
        |dir, path| assert_broken_at(dir, path, 9, malformed),
    );
    // Cut short with its newline: it runs into the next line.
    tampered(
        &original,
        |lines| {
            let half = lines[8][..lines[8].len() / 2].to_owned();
            lines[9] = format!("{half}{}", lines[9]);
            lines.remove(8);
        },
        |dir, path| assert_broken_at(dir, path, 9, malformed),
    );
}

#[test]
fn a_cut_at_the_end_is_an_incomplete_last_line() {
    let (_dir, original, _) = sound();
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), 1);
    let mut text: String = original.iter().map(|l| format!("{l}\n")).collect();
    text.truncate(text.len() - 40);
    fs::write(&path, text).unwrap();
    assert_broken_at(dir.path(), &path, original.len() as u64, incomplete);
}

#[test]
fn a_log_that_does_not_start_at_the_genesis_is_reported() {
    let (_dir, original, _) = sound();
    tampered(
        &original,
        |lines| {
            lines.remove(0);
        },
        |dir, path| match verify(dir) {
            Err(VerifyError::Line {
                line: 1,
                defect: LineDefect::BrokenLink { expected, .. },
                file,
            }) => {
                assert_eq!(file, path);
                assert_eq!(expected, ChainHash::GENESIS);
            }
            other => panic!("{other:?}"),
        },
    );
}

#[test]
fn tampering_in_a_rotated_file_names_that_file() {
    let dir = executor_log(
        30,
        AuditLogOptions {
            max_file_bytes: 2_000,
            ..AuditLogOptions::default()
        },
    );
    let report = verify(dir.path()).unwrap();
    assert!(report.files >= 3, "{report:?}");
    let third = file(dir.path(), 3);

    let mut third_lines = lines(&third);
    third_lines[1] = edit(&third_lines[1]);
    write_lines(&third, &third_lines);
    assert_broken_at(dir.path(), &third, 2, hash_mismatch);
}

#[test]
fn removing_a_rotated_file_is_reported_at_the_next_one() {
    let dir = executor_log(
        30,
        AuditLogOptions {
            max_file_bytes: 2_000,
            ..AuditLogOptions::default()
        },
    );
    assert!(verify(dir.path()).unwrap().files >= 3);
    fs::remove_file(file(dir.path(), 2)).unwrap();
    assert_broken_at(dir.path(), &file(dir.path(), 3), 1, broken_link);
}

/// Expects `open` to refuse the log in `dir` at `line` of its first file,
/// cutting nothing.
fn open_refuses_at(dir: &Path, line: u64, kind: fn(&LineDefect) -> bool) {
    let path = file(dir, 1);
    let before = fs::read(&path).unwrap();
    let queue = std::sync::Arc::new(hotpath::AuditQueue::new(16));
    match AuditLog::open(dir, AuditLogOptions::default(), queue) {
        Err(hotpath_durable::AuditLogError::Corrupt(VerifyError::Line {
            file: at,
            line: n,
            defect,
        })) => {
            assert_eq!((at.as_path(), n), (path.as_path(), line), "{defect}");
            assert!(kind(&defect), "{defect:?}");
        }
        other => panic!("expected the log to be refused at line {line}, got {other:?}"),
    }
    assert_eq!(fs::read(&path).unwrap(), before, "nothing cut");
}

fn beyond_ceiling(d: &LineDefect) -> bool {
    matches!(d, LineDefect::BeyondCeiling { .. })
}

#[test]
fn seqs_and_generations_beyond_the_ceiling_are_refused_by_verify_and_open() {
    use hotpath::{MAX_AUDIT_SEQ, MAX_GENERATION};
    // A consistent chain that ends at u64::MAX: reopening it would wrap the
    // numbering to 0.
    let ending_at_max = [(u64::MAX - 2, 1), (u64::MAX - 1, 1), (u64::MAX, 1)];
    let over = [
        (MAX_AUDIT_SEQ - 1, 1),
        (MAX_AUDIT_SEQ, 1),
        (MAX_AUDIT_SEQ + 1, 1),
    ];
    let generation = [(0, 1), (1, MAX_GENERATION + 1)];
    for (events, line) in [
        (&ending_at_max[..], 1),
        (&over[..], 3),
        (&generation[..], 2),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = file(dir.path(), 1);
        fs::write(&path, common::forged_log(events)).unwrap();
        assert_broken_at(dir.path(), &path, line, beyond_ceiling);
        open_refuses_at(dir.path(), line, beyond_ceiling);
        let message = verify(dir.path()).unwrap_err().to_string();
        assert!(message.contains("beyond the ceiling 2^62"), "{message}");
    }
    // Up to the ceiling is a log like any other.
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        file(dir.path(), 1),
        common::forged_log(&[(MAX_AUDIT_SEQ - 1, 1), (MAX_AUDIT_SEQ, MAX_GENERATION)]),
    )
    .unwrap();
    assert_eq!(verify(dir.path()).unwrap().last_seq, Some(MAX_AUDIT_SEQ));
    let queue = std::sync::Arc::new(hotpath::AuditQueue::new(16));
    let log = AuditLog::open(dir.path(), AuditLogOptions::default(), queue).unwrap();
    assert_eq!(log.next_seq(), MAX_AUDIT_SEQ + 1);
    log.shutdown().unwrap();
}
