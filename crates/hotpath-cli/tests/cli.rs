//! End-to-end tests of the `hotpath` binary: every subcommand, each bad
//! input, and the golden replay.
//!
//! The golden files in `tests/golden/` are what `hotpath replay` writes for
//! `tests/data/{tuning.toml,digests.jsonl}` (`audit/` holds the log file,
//! not the empty lock file). After a deliberate change of the engine's
//! decisions or of the output formats, regenerate them with
//! `HOTPATH_BLESS=1 cargo test -p hotpath-cli --test cli golden` and review
//! the diff.

use assert_cmd::Command;
use hotpath_testkit::listing;
use predicates::prelude::*;
use predicates::str::contains;
use std::fs;
use std::path::{Path, PathBuf};

mod common;
use common::{data, hotpath};

fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tuning.toml")
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

/// Writes `text` to `dir/name` and returns the path.
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).expect("write test file");
    path
}

const PARAMS: &str = "[[param]]\nname = \"batch_size\"\nmin = 1\nmax = 512\ninitial = 64\n";

// ---------------------------------------------------------------- help

#[test]
fn help_lists_every_command() {
    hotpath().arg("--help").assert().success().stdout(
        contains("demo")
            .and(contains("replay"))
            .and(contains("check"))
            .and(contains("audit")),
    );
    hotpath()
        .args(["replay", "--help"])
        .assert()
        .success()
        .stdout(
            contains("--skip-bad-lines")
                .and(contains("--set <KEY=VALUE>"))
                .and(contains("--preset")),
        );
    hotpath()
        .args(["audit", "show", "--help"])
        .assert()
        .success()
        .stdout(contains("--type"));
}

#[test]
fn usage_errors_exit_with_2() {
    hotpath().arg("frobnicate").assert().code(2);
    hotpath()
        .args(["replay", "--config", "x.toml"])
        .assert()
        .code(2)
        .stderr(contains("--telemetry"));
    hotpath()
        .args(["check", "x.toml", "--set", "novalue"])
        .assert()
        .code(2)
        .stderr(contains("KEY=VALUE"));
    hotpath().args(["demo", "--duration", "1"]).assert().code(2);
}

// ---------------------------------------------------------------- check

#[test]
fn check_accepts_the_shipped_example() {
    hotpath()
        .arg("check")
        .arg(example_config())
        .assert()
        .success()
        .stdout(
            contains(": ok")
                .and(contains("batch_size         integer in [1, 512], from 64"))
                .and(contains(
                    "flush_interval_ms  real in [0.5, 50], log scale, from 10",
                ))
                .and(contains(
                    "workers            integer in [2, 32], step 2, from 8",
                ))
                .and(contains(
                    "codec              choice of none, lz4, zstd, from lz4",
                ))
                .and(contains("balanced preset, overriding max_delta_per_step")),
        );
}

#[test]
fn check_reports_file_line_column_key_and_expectation() {
    let dir = tempdir();
    let cases = [
        (
            format!("{PARAMS}[guardrails]\nmax_delta_per_stepp = 0.1\n"),
            ":7:1: guardrails.max_delta_per_stepp: unknown field `max_delta_per_stepp`, expected one of",
        ),
        (
            format!("{PARAMS}[guardrails]\nmin_interval_us = \"fast\"\n"),
            ":7:19: guardrails.min_interval_us: invalid type: string \"fast\", expected a non-negative integer",
        ),
        (
            "[[param]]\nname = \"a\"\nmin = 10\nmax = 1\ninitial = 5\n".to_string(),
            ":3:7: param[0].min: min (10) must be less than max (1)",
        ),
        (
            "[[param]]\nname = \"a\"\nmin = 1\nmax = 10\ninitial = 50\n".to_string(),
            ":5:11: param[0].initial: expected a value within [1, 10], got 50",
        ),
        (
            format!("{PARAMS}[rollback]\npreset = \"reckless\"\n"),
            ":7:10: rollback.preset: unknown variant `reckless`, expected one of `conservative`, `balanced`, `aggressive`",
        ),
        (
            format!("{PARAMS}[guardrails]\nmax_delta_per_step = 2\n"),
            ":7:22: guardrails.max_delta_per_step: expected a fraction of the range in (0, 1], got 2",
        ),
        (
            format!("{PARAMS}[spsa]\neval_window_us = 5000\n"),
            ":7:18: spsa.eval_window_us: settle_time_us (10000) must be shorter than eval_window_us (5000)",
        ),
        (
            format!("{PARAMS}[calibration]\nnoise_windows = 1\n"),
            ":7:17: calibration.noise_windows: expected at least 2, got 1",
        ),
        ("seed = 1\n".to_string(), "bad.toml: no parameters"),
        (format!("{PARAMS}seed = \n"), ":6:8: string values must be quoted"),
        (
            format!("{PARAMS}[[param]]\nname = \"batch_size\"\nmin = 0\nmax = 1\ninitial = 0\n"),
            ":7:8: param[1].name: duplicate name \"batch_size\"",
        ),
        (
            "[[param]]\nname = \"ttl\"\nscale = \"log\"\nmin = 0\nmax = 60\ninitial = 5\n".to_string(),
            ":4:7: param[0].min: a log scale (scale = \"log\") needs min > 0, got 0",
        ),
        (
            "[[param]]\nname = \"r\"\nmin = 0\nmax = 1\nstep = 0.1\ninitial = 0\n".to_string(),
            ":5:8: param[0].step: step applies only to integer knobs (type = \"int\"); this is a real knob",
        ),
        (
            "[[param]]\nname = \"n\"\ntype = \"int\"\nmin = 0\nmax = 9\noptions = [\"a\", \"b\"]\ninitial = 1\n".to_string(),
            ":6:11: param[0].options: options apply only to choice knobs (type = \"choice\"); this is an integer knob",
        ),
        (
            "[[param]]\nname = \"n\"\ntype = \"int\"\nmin = 8\nmax = 64\nstep = 8\ninitial = 12\n".to_string(),
            ":7:11: param[0].initial: expected a value on the grid min + k × step (8, 16, …), got 12: the nearest are 8 and 16",
        ),
        (
            "[[param]]\nname = \"c\"\ntype = \"choice\"\noptions = [\"a\", \"b\"]\ninitial = \"z\"\n".to_string(),
            ":5:11: param[0].initial: expected one of the options (\"a\", \"b\"), got \"z\"",
        ),
        (
            "[[param]]\nname = \"c\"\ntype = \"choice\"\noptions = [\"a\", \"a\"]\ninitial = \"a\"\n".to_string(),
            ":4:17: param[0].options[1]: duplicate option \"a\": options[0] already has it",
        ),
        (
            "[[param]]\nname = \"c\"\ntype = \"enum\"\ninitial = \"a\"\n".to_string(),
            ":3:8: param[0].type: unknown variant `enum`, expected one of `real`, `int`, `choice`",
        ),
    ];
    for (text, expected) in cases {
        let path = write(dir.path(), "bad.toml", &text);
        hotpath()
            .arg("check")
            .arg(&path)
            .assert()
            .code(1)
            .stdout("")
            .stderr(contains(format!("error: {}", path.display())).and(contains(expected)));
    }
}

#[test]
fn check_reports_every_problem_at_once() {
    let dir = tempdir();
    let text = "[[param]]\nname = \"a\"\nmin = 10\nmax = 1\ninitial = 5\n[[param]]\nname = \"b\"\nmin = 0\nmax = 1\ninitial = 3\n[rollback]\nregression_sigmas = -1\n";
    let path = write(dir.path(), "bad.toml", text);
    let out = hotpath()
        .arg("check")
        .arg(&path)
        .assert()
        .code(1)
        .get_output()
        .stderr
        .clone();
    let stderr = String::from_utf8_lossy(&out);
    assert_eq!(stderr.lines().count(), 3, "{stderr}");
    assert!(stderr.contains(":3:7: param[0].min"), "{stderr}");
    assert!(stderr.contains(":10:11: param[1].initial"), "{stderr}");
    assert!(
        stderr.contains(":12:21: rollback.regression_sigmas: expected a finite number ≥ 0, got -1"),
        "{stderr}"
    );
}

#[test]
fn check_blames_overrides_by_name() {
    hotpath()
        .arg("check")
        .arg(example_config())
        .args(["--set", "guardrails.max_delta_per_step=0"])
        .assert()
        .code(1)
        .stderr(contains(
            "error: --set guardrails.max_delta_per_step=0: guardrails.max_delta_per_step: expected a fraction of the range in (0, 1], got 0",
        ));
    hotpath()
        .arg("check")
        .arg(example_config())
        .args(["--set", "spsa.windows=3"])
        .assert()
        .code(1)
        .stderr(contains(
            "--set spsa.windows=3: spsa.windows: unknown field `windows`",
        ));
    hotpath()
        .arg("check")
        .arg(example_config())
        .args(["--preset", "conservative", "--set", "calibration=false"])
        .assert()
        .success()
        .stdout(contains("conservative preset").and(contains("calibration  off")));
}

#[test]
fn check_missing_file_is_one_line() {
    hotpath()
        .args(["check", "/nonexistent/tuning.toml"])
        .assert()
        .code(1)
        .stderr(predicate::eq(
            "error: cannot read /nonexistent/tuning.toml: No such file or directory (os error 2)\n",
        ));
}

// ---------------------------------------------------------------- replay

fn replay(out: &Path) -> Command {
    replay_of("tuning.toml", out)
}

/// `hotpath replay` of the config `tests/data/CONFIG` over the test
/// telemetry into `out`.
fn replay_of(config: &str, out: &Path) -> Command {
    let mut cmd = hotpath();
    cmd.arg("replay")
        .arg("--config")
        .arg(data(config))
        .arg("--telemetry")
        .arg(data("digests.jsonl"))
        .arg("--out")
        .arg(out);
    cmd
}

const OUTPUTS: [&str; 3] = ["audit", "decisions.jsonl", "state.json"];
/// The files compared with the golden ones.
const GOLDEN: [&str; 3] = [
    "audit/audit.0000000001.jsonl",
    "decisions.jsonl",
    "state.json",
];
const LOG_FILES: [&str; 2] = ["audit.0000000001.jsonl", "audit.lock"];

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

#[test]
fn golden_replay_is_byte_identical_run_to_run_and_to_the_checked_in_outputs() {
    let (a, b) = (tempdir(), tempdir());
    replay(a.path()).assert().success().stdout(
        contains("500 read, 500 used, 0 skipped")
            .and(contains("rollbacks        1 (regressions 1)"))
            .and(contains("audit log        274 events")),
    );
    replay(b.path()).assert().success();
    assert_eq!(listing(a.path()), OUTPUTS);
    assert_eq!(listing(&a.path().join("audit")), LOG_FILES);
    for name in GOLDEN {
        let first = fs::read(a.path().join(name)).expect("output");
        assert_eq!(
            first,
            fs::read(b.path().join(name)).expect("output"),
            "{name} differs between runs"
        );
        if std::env::var_os("HOTPATH_BLESS").is_some() {
            let path = golden(name);
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).expect("golden directory");
            }
            fs::write(path, &first).expect("bless");
        }
        let expected = fs::read(golden(name)).expect("golden file (HOTPATH_BLESS=1 writes it)");
        assert!(first == expected, "{name} differs from tests/golden/{name}; rerun with HOTPATH_BLESS=1 if the change is intended");
    }
}

#[test]
fn replay_replaces_its_earlier_outputs_but_nothing_else() {
    let dir = tempdir();
    replay(dir.path()).assert().success();
    // The same directory again: the log is replaced, not appended to.
    replay(dir.path()).assert().success();
    assert_eq!(listing(dir.path()), OUTPUTS);
    assert_eq!(listing(&dir.path().join("audit")), LOG_FILES);
    assert_eq!(
        fs::read(dir.path().join(GOLDEN[0])).expect("log"),
        fs::read(golden(GOLDEN[0])).expect("golden")
    );
    // An `audit` directory that is not a log is not replaced.
    let other = tempdir();
    let notes = other.path().join("audit");
    fs::create_dir(&notes).expect("mkdir");
    write(&notes, "notes.txt", "mine");
    replay(other.path())
        .assert()
        .code(1)
        .stderr(contains(format!(
            "error: output directory {}: exists and is not an earlier output of this command",
            notes.display()
        )));
    assert_eq!(listing(other.path()), ["audit"]);
    assert_eq!(listing(&notes), ["notes.txt"]);
}

#[test]
fn replay_prints_a_summary_with_names() {
    let dir = tempdir();
    replay(dir.path()).assert().success().stdout(
        contains("moves proposed")
            .and(contains("refused          0"))
            .and(contains("batch_size       64 -> "))
            .and(contains("workers          4 -> "))
            .and(contains("decisions.jsonl")),
    );
    let decisions = fs::read_to_string(dir.path().join("decisions.jsonl")).expect("decisions");
    assert_eq!(decisions.lines().count(), 500);
    assert!(decisions.starts_with(
        "{\"line\":1,\"t_us\":1100000,\"proposal\":\"NoChange\",\"reason\":\"Settling\"}\n"
    ));
    assert!(decisions.contains("\"proposal\":\"Update\""));
}

#[test]
fn presets_and_overrides_change_the_shadow_run() {
    let (balanced, conservative, smaller) = (tempdir(), tempdir(), tempdir());
    replay(balanced.path()).assert().success();
    replay(conservative.path())
        .args(["--preset", "conservative"])
        .assert()
        .success();
    replay(smaller.path())
        .args([
            "--set",
            "guardrails.max_delta_per_step=0.01",
            "--set",
            "seed=3",
        ])
        .assert()
        .success();
    let read =
        |d: &tempfile::TempDir| fs::read(d.path().join("decisions.jsonl")).expect("decisions");
    assert_ne!(read(&balanced), read(&conservative));
    assert_ne!(read(&balanced), read(&smaller));
}

fn bad_telemetry(line: &str) -> String {
    format!(
        "{{\"t_us\":100,\"objective\":1.5,\"samples\":10}}\n{{\"t_us\":200,\"objective\":1.5,\"samples\":10}}\n{line}\n{{\"t_us\":400,\"objective\":1.5,\"samples\":10}}\n"
    )
}

#[test]
fn bad_telemetry_lines_stop_the_replay_with_file_and_line() {
    let cases = [
        (
            "{\"t_us\":300,\"objective\":1.5,\"samples\":",
            ":3:38: malformed JSON: EOF while parsing a value",
        ),
        (
            "{\"t_us\":300,\"objective\":\"NaN\",\"samples\":10}",
            ":3:29: invalid type: string \"NaN\", expected a finite number",
        ),
        (
            "{\"t_us\":300,\"objective\":1e400,\"samples\":10}",
            ":3:29: malformed JSON: number out of range",
        ),
        (
            "{\"t_us\":300,\"objective\":1.5,\"samples\":0}",
            ":3: samples must be at least 1",
        ),
        (
            "{\"t_us\":150,\"objective\":1.5,\"samples\":10}",
            ":3: t_us 150 is earlier than the previous digest's 200",
        ),
        (
            "{\"t_us\":300,\"objective\":1.5,\"samples\":10,\"margin\":\"-inf\"}",
            ":3:56: invalid type: string \"-inf\", expected a finite number",
        ),
        (
            "{\"t_us\":300,\"objectve\":1.5,\"samples\":10}",
            ":3:22: unknown field `objectve`",
        ),
        ("not json", ":3:2: malformed JSON: expected ident"),
    ];
    for (line, expected) in cases {
        let dir = tempdir();
        let telemetry = write(dir.path(), "digests.jsonl", &bad_telemetry(line));
        let out = dir.path().join("out");
        hotpath()
            .arg("replay")
            .arg("--config")
            .arg(data("tuning.toml"))
            .arg("--telemetry")
            .arg(&telemetry)
            .arg("--out")
            .arg(&out)
            .assert()
            .code(1)
            .stdout("")
            .stderr(contains(format!(
                "error: {}{expected}",
                telemetry.display()
            )));
        // Nothing that looks complete, and no temporary files either.
        assert_eq!(listing(&out), Vec::<String>::new(), "for {line}");
    }
}

#[test]
fn skip_bad_lines_counts_them() {
    let dir = tempdir();
    let text = format!(
        "{}{}",
        bad_telemetry("{\"t_us\":300,\"objective\":\"NaN\",\"samples\":10}"),
        "garbage\n{\"t_us\":10,\"objective\":1,\"samples\":1}\n\n{\"t_us\":500,\"objective\":1,\"samples\":1}\n"
    );
    let telemetry = write(dir.path(), "digests.jsonl", &text);
    hotpath()
        .arg("replay")
        .arg("--config")
        .arg(data("tuning.toml"))
        .arg("--telemetry")
        .arg(&telemetry)
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg("--skip-bad-lines")
        .assert()
        .success()
        .stdout(contains(
            "digests          7 read, 4 used, 3 skipped (bad lines)",
        ))
        .stderr(
            contains("warning: skipped")
                .and(contains(":3:29: invalid type"))
                .and(contains(":6: t_us 10 is earlier")),
        );
    let decisions = fs::read_to_string(dir.path().join("out/decisions.jsonl")).expect("decisions");
    let lines: Vec<u64> = decisions
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json")["line"]
                .as_u64()
                .expect("line")
        })
        .collect();
    assert_eq!(lines, vec![1, 2, 4, 8]);
}

#[test]
fn empty_telemetry_gives_empty_decisions() {
    let dir = tempdir();
    let telemetry = write(dir.path(), "digests.jsonl", "\n  \n");
    hotpath()
        .arg("replay")
        .arg("--config")
        .arg(data("tuning.toml"))
        .arg("--telemetry")
        .arg(&telemetry)
        .arg("--out")
        .arg(dir.path().join("out"))
        .assert()
        .success()
        .stdout(contains("0 read, 0 used, 0 skipped"));
    assert_eq!(
        fs::read(dir.path().join("out/decisions.jsonl")).expect("decisions"),
        b""
    );
    let audit =
        fs::read_to_string(dir.path().join("out/audit/audit.0000000001.jsonl")).expect("audit");
    assert_eq!(
        audit.lines().count(),
        2,
        "started and baseline set: {audit}"
    );
}

#[test]
fn missing_inputs_and_unusable_output_dirs_are_one_line_errors() {
    let dir = tempdir();
    let file = write(dir.path(), "file.txt", "not a directory");
    hotpath()
        .arg("replay")
        .arg("--config")
        .arg(data("tuning.toml"))
        .arg("--telemetry")
        .arg(dir.path().join("missing.jsonl"))
        .arg("--out")
        .arg(dir.path().join("out"))
        .assert()
        .code(1)
        .stderr(
            contains("error: cannot read")
                .and(contains("missing.jsonl: No such file or directory")),
        );
    for out in [file.clone(), file.join("sub")] {
        let assert = replay(&out).assert().code(1);
        let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
        assert!(
            stderr.starts_with(&format!("error: output directory {}", out.display())),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    hotpath()
        .arg("replay")
        .arg("--config")
        .arg(dir.path().join("nope.toml"))
        .arg("--telemetry")
        .arg(data("digests.jsonl"))
        .assert()
        .code(1)
        .stderr(contains("nope.toml: No such file"));
}

#[test]
fn replay_defaults_to_the_configs_output_section() {
    let dir = tempdir();
    let config = fs::read_to_string(data("tuning.toml")).expect("config")
        + "\n[output]\naudit_dir = \"runs/today\"\nstate_file = \"state/now.json\"\n";
    let config = write(dir.path(), "tuning.toml", &config);
    hotpath()
        .arg("replay")
        .arg("--config")
        .arg(&config)
        .arg("--telemetry")
        .arg(data("digests.jsonl"))
        .assert()
        .success();
    assert_eq!(
        listing(&dir.path().join("runs/today")),
        ["audit", "decisions.jsonl"]
    );
    assert!(dir.path().join("state/now.json").is_file());
    // Neither --out nor [output]: say what to do.
    hotpath()
        .arg("replay")
        .arg("--config")
        .arg(data("tuning.toml"))
        .arg("--telemetry")
        .arg(data("digests.jsonl"))
        .assert()
        .code(1)
        .stderr(contains(
            "no output directory: pass --out DIR or set [output] audit_dir",
        ));
}

// ---------------------------------------------------------------- audit

/// The golden replay's audit log (a directory).
fn golden_audit() -> PathBuf {
    golden("audit")
}

fn golden_log_lines() -> Vec<String> {
    fs::read_to_string(golden(GOLDEN[0]))
        .expect("golden")
        .lines()
        .map(str::to_string)
        .collect()
}

/// A copy of the golden log, with its lines changed by `edit`.
fn edited_log(dir: &Path, edit: impl FnOnce(&mut Vec<String>)) -> PathBuf {
    let log = dir.join("audit");
    fs::create_dir_all(&log).expect("mkdir");
    let mut lines = golden_log_lines();
    edit(&mut lines);
    let mut text = lines.join("\n");
    text.push('\n');
    write(&log, "audit.0000000001.jsonl", &text);
    log
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.assert().success().get_output().stdout.clone();
    String::from_utf8(out).expect("utf-8")
}

#[test]
fn audit_verify_accepts_a_sound_log_in_every_spelling() {
    let expected = "OK: 274 events in 1 file, seq 0..=273, head ";
    let dir = stdout_of(hotpath().arg("audit").arg("verify").arg(golden_audit()));
    assert!(
        dir.starts_with(&format!("{}: {expected}", golden_audit().display())),
        "{dir}"
    );
    assert_eq!(dir.lines().count(), 1, "{dir}");
    // The head is the last line's hash.
    let last = golden_log_lines().pop().expect("a line");
    let head = dir.trim_end().rsplit(' ').next().expect("head");
    assert!(last.ends_with(&format!(",\"hash\":\"{head}\"}}")), "{dir}");
    // One file, or the run's output directory.
    let file = stdout_of(hotpath().arg("audit").arg("verify").arg(golden(GOLDEN[0])));
    assert!(file.contains(expected), "{file}");
    let run = stdout_of(
        hotpath()
            .arg("audit")
            .arg("verify")
            .arg(golden("").as_path()),
    );
    assert!(run.contains(expected), "{run}");
}

#[test]
fn audit_verify_names_the_tampered_line() {
    let file = "audit.0000000001.jsonl";
    type Edit = fn(&mut Vec<String>);
    let cases: [(&str, Edit, &str); 5] = [
        (
            "a byte edited",
            |lines| {
                lines[16] = lines[16].replacen("\"timestamp_us\":", "\"timestamp_us\":1", 1);
            },
            ":17: hash mismatch: the line states",
        ),
        (
            "a digit of a parameter changed",
            |lines| {
                let i = lines[41].find("\"params\":[").expect("params") + 11;
                let digit = lines[41].as_bytes()[i];
                let other = if digit == b'9' { "8" } else { "9" };
                lines[41].replace_range(i..=i, other);
            },
            ":42: hash mismatch",
        ),
        (
            "a line deleted",
            |lines| {
                lines.remove(29);
            },
            ":30: broken link: prev is",
        ),
        (
            "two lines swapped",
            |lines| lines.swap(99, 100),
            ":100: broken link",
        ),
        (
            "the last line cut short",
            |lines| {
                let last = lines.pop().expect("a line");
                lines.push(last[..last.len() / 2].to_string());
            },
            ":274: malformed line",
        ),
    ];
    for (what, edit, expected) in cases {
        eprintln!("case: {what}");
        let dir = tempdir();
        let log = edited_log(dir.path(), edit);
        hotpath()
            .arg("audit")
            .arg("verify")
            .arg(&log)
            .assert()
            .code(1)
            .stdout("")
            .stderr(contains(format!(
                "error: {}{expected}",
                log.join(file).display()
            )))
            .stderr(predicate::function(|e: &str| e.lines().count() == 1));
    }
}

#[test]
fn audit_verify_detects_a_byte_edited_in_a_replays_own_log() {
    let dir = tempdir();
    replay(dir.path()).assert().success();
    hotpath()
        .arg("audit")
        .arg("verify")
        .arg(dir.path())
        .assert()
        .success()
        .stdout(contains("OK: 274 events"));
    let path = dir.path().join(GOLDEN[0]);
    let mut bytes = fs::read(&path).expect("log");
    // Line 120: one byte of its event, `generation` one higher.
    let start = bytes
        .split(|&b| b == b'\n')
        .take(119)
        .map(|l| l.len() + 1)
        .sum::<usize>();
    let at = start
        + bytes[start..]
            .windows(13)
            .position(|w| w == b"\"generation\":")
            .expect("generation")
        + 13;
    bytes[at] = if bytes[at] == b'9' {
        b'8'
    } else {
        bytes[at] + 1
    };
    fs::write(&path, bytes).expect("tamper");
    hotpath()
        .arg("audit")
        .arg("verify")
        .arg(dir.path().join("audit"))
        .assert()
        .code(1)
        .stderr(contains(format!(
            "error: {}:120: hash mismatch",
            path.display()
        )));
}

#[test]
fn audit_verify_reports_missing_and_foreign_files() {
    hotpath()
        .args(["audit", "verify", "/nonexistent/audit"])
        .assert()
        .code(1)
        .stderr(contains(
            "error: cannot read /nonexistent/audit: No such file",
        ));
    let dir = tempdir();
    let plain = write(dir.path(), "audit.jsonl", "{}\n");
    hotpath()
        .arg("audit")
        .arg("verify")
        .arg(&plain)
        .assert()
        .code(1)
        .stderr(contains(
            "is not an audit log file (audit.NNNNNNNNNN.jsonl)",
        ));
    for command in ["verify", "show"] {
        hotpath()
            .args(["audit", command])
            .arg(dir.path())
            .assert()
            .code(1)
            .stdout("")
            .stderr(contains(format!(
                "error: no audit log in {}: it holds no audit.NNNNNNNNNN.jsonl files",
                dir.path().display()
            )));
    }
    hotpath()
        .args(["audit", "verify", "--help"])
        .assert()
        .success()
        .stdout(contains("head hash"));
}

#[test]
fn audit_show_prints_every_event_or_a_filtered_few() {
    let all = stdout_of(hotpath().arg("audit").arg("show").arg(golden_audit()));
    assert_eq!(all.lines().count(), golden_log_lines().len());
    assert!(
        all.starts_with("#0 t=1100000µs gen=0 started with [64.0, 4.0]\n"),
        "{all}"
    );

    let rolled = stdout_of(
        hotpath()
            .arg("audit")
            .arg("show")
            .arg(golden_audit())
            .args(["--type", "rolled-back,baseline-set"]),
    );
    assert_eq!(rolled.lines().count(), 2, "{rolled}");
    assert!(
        rolled
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("ROLLED BACK (Regressions)")),
        "{rolled}"
    );

    let window = stdout_of(
        hotpath()
            .arg("audit")
            .arg("show")
            .arg(golden_audit())
            .args([
                "--since", "2000000", "--until", "3000000", "--type", "applied",
            ]),
    );
    assert!(!window.is_empty());
    for line in window.lines() {
        let t: u64 = line
            .split_once(" t=")
            .and_then(|(_, rest)| rest.split_once("µs"))
            .and_then(|(t, _)| t.parse().ok())
            .expect("timestamp");
        assert!(
            (2_000_000..=3_000_000).contains(&t) && line.contains(" applied "),
            "{line}"
        );
    }

    // A single file and the run's directory read the same.
    let file = stdout_of(hotpath().arg("audit").arg("show").arg(golden(GOLDEN[0])));
    assert_eq!(file, all);
    let run = stdout_of(hotpath().arg("audit").arg("show").arg(golden("").as_path()));
    assert_eq!(run, all);
}

#[test]
fn audit_show_stops_at_a_line_that_does_not_verify() {
    let dir = tempdir();
    let log = edited_log(dir.path(), |lines| {
        lines.truncate(3);
        lines[2] = lines[2].replacen("\"seq\":2", "\"seq\":7", 1);
    });
    hotpath()
        .arg("audit")
        .arg("show")
        .arg(&log)
        .assert()
        .code(1)
        .stdout(
            contains("#0 t=")
                .and(contains("#1 t="))
                .and(contains("#2 t=").not()),
        )
        .stderr(contains(format!(
            "error: {}:3: hash mismatch",
            log.join("audit.0000000001.jsonl").display()
        )));
    hotpath()
        .args(["audit", "show", "/nonexistent/audit"])
        .assert()
        .code(1)
        .stderr(contains("cannot read /nonexistent/audit"));
    hotpath()
        .args(["audit", "show", "x", "--type", "bogus"])
        .assert()
        .code(2);
}

// ---------------------------------------------------------------- typed knobs

/// `hotpath replay` of `tests/data/typed.toml` (an integer, a log-scale
/// real and a choice) into `out`.
fn replay_typed(out: &Path) -> Command {
    replay_of("typed.toml", out)
}

#[test]
fn a_typed_replay_writes_named_typed_values_beside_the_params() {
    let (a, b) = (tempdir(), tempdir());
    let summary = stdout_of(&mut replay_typed(a.path()));
    assert!(summary.contains("batch_size       64 -> "), "{summary}");
    assert!(summary.contains("codec            lz4 -> "), "{summary}");
    replay_typed(b.path()).assert().success();
    let decisions = fs::read_to_string(a.path().join("decisions.jsonl")).expect("decisions");
    assert_eq!(
        decisions,
        fs::read_to_string(b.path().join("decisions.jsonl")).expect("decisions"),
        "a typed replay is byte-identical run to run"
    );
    let (mut moves, mut kinds) = (0, std::collections::BTreeSet::new());
    for line in decisions.lines() {
        let d: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let Some(params) = d["params"].as_array() else {
            assert!(d.get("values").is_none(), "values without params: {line}");
            continue;
        };
        moves += 1;
        kinds.insert(d["proposal"].as_str().expect("a proposal").to_owned());
        let values = d["values"].as_object().expect("values beside params");
        let keys: Vec<&str> = values.keys().map(String::as_str).collect();
        assert_eq!(keys, ["batch_size", "codec", "linger_ms"], "{line}");
        let batch = &values["batch_size"];
        assert!(batch.is_i64(), "an integer knob as a JSON integer: {line}");
        assert_eq!(batch.as_f64(), params[0].as_f64(), "{line}");
        let linger = values["linger_ms"].as_f64().expect("a real as a number");
        assert!(
            (0.5..=50.0).contains(&linger) && Some(linger) == params[1].as_f64(),
            "{line}"
        );
        let codec = values["codec"].as_str().expect("a choice as its option");
        let index = params[2].as_f64().expect("an index") as usize;
        assert_eq!(codec, ["none", "lz4", "zstd"][index], "{line}");
    }
    assert!(moves > 50, "{moves} moves");
    assert!(
        kinds.contains("Update") && kinds.contains("ApplyPlus"),
        "{kinds:?}"
    );
}

#[test]
fn audit_show_with_the_config_names_and_types_every_value() {
    let dir = tempdir();
    replay_typed(dir.path()).assert().success();
    let show = |config: &Path| {
        stdout_of(
            hotpath()
                .arg("audit")
                .arg("show")
                .arg(dir.path())
                .arg("--config")
                .arg(config),
        )
    };
    let named = show(&data("typed.toml"));
    let plain = stdout_of(hotpath().arg("audit").arg("show").arg(dir.path()));
    assert_eq!(named.lines().count(), plain.lines().count());
    assert!(
        named
            .starts_with("#0 t=1100000µs gen=0 started with batch_size=64 linger_ms=5 codec=lz4\n"),
        "{named}"
    );
    let applied: Vec<&str> = named.lines().filter(|l| l.contains(" applied ")).collect();
    assert!(!applied.is_empty());
    for line in &applied {
        // `applied KIND #ID: knob before -> after, …`, integers whole.
        let (_, moved) = line.split_once(": ").expect("what moved");
        for change in moved.split(", ").filter(|c| c.starts_with("batch_size ")) {
            let numbers: Vec<&str> = change["batch_size ".len()..].split(" -> ").collect();
            assert!(
                numbers.len() == 2 && numbers.iter().all(|n| n.parse::<i64>().is_ok()),
                "{line}"
            );
        }
        assert!(!line.contains("delta ["), "{line}");
    }
    assert!(
        named
            .lines()
            .any(|l| l.contains("baseline set at gen 0: batch_size=64")),
        "{named}"
    );
    let golden_named = stdout_of(
        hotpath()
            .arg("audit")
            .arg("show")
            .arg(golden_audit())
            .arg("--config")
            .arg(data("tuning.toml")),
    );
    assert!(
        golden_named.starts_with("#0 t=1100000µs gen=0 started with batch_size=64 workers=4\n"),
        "{golden_named}"
    );
    // The golden log (two real knobs) against a config of three: refused, located.
    hotpath()
        .arg("audit")
        .arg("show")
        .arg(golden_audit())
        .arg("--config")
        .arg(data("typed.toml"))
        .assert()
        .code(1)
        .stderr(contains(format!(
            "{}:1: the event has 2 values but {} declares 3 parameters: not this log's config",
            golden(GOLDEN[0]).display(),
            data("typed.toml").display()
        )));
}

// ---------------------------------------------------------------- demo

#[test]
fn demo_runs_for_five_seconds_and_leaves_its_audit_log_and_state() {
    let dir = tempdir();
    let out = dir.path().join("demo");
    let assert = hotpath()
        .args([
            "demo",
            "--duration",
            "5",
            "--seed",
            "3",
            "--preset",
            "aggressive",
            "--out",
        ])
        .arg(&out)
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    for expected in [
        "offered load 1500 records/s",
        "OFFERED LOAD RISES",
        "ROLLED BACK (manual)",
        "objective: mean latency per record",
        "steady load  1500 records/s",
        "tuning batch_size (integer in [1, 64], from 48); linger_ms (real in [0.1, 6], log scale, from 2); encoding (choice of json, csv, varint, from csv)",
        "batch_size       48 -> ",
        "linger_ms        2.00 -> ",
        "encoding         csv -> ",
        // Five seconds may end before the first commit: the centre's lines
        // are tested in demo::view's unit tests.
        "probe ± #0: batch_size ",
        "aggressive preset",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in\n{stdout}"
        );
    }
    // Not a terminal: plain lines, no escape sequences.
    assert!(!stdout.contains('\x1b'), "{stdout}");
    assert!(stdout.contains("chain verified: "), "{stdout}");
    assert_eq!(listing(&out), ["audit", "state.json", "token"]);
    assert_eq!(listing(&out.join("audit")), LOG_FILES);
    let state: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("state.json")).expect("state")).expect("json");
    assert_eq!(state["format"], "hotpath-state/2", "{state}");
    assert!(state["checkpoint"]["seq"].is_u64(), "{state}");
    assert!(state["executor"]["live"]["params"][1].is_f64(), "{state}");
    assert!(state["engine"]["spsa"]["iteration"].is_u64(), "{state}");
    let verified = stdout_of(hotpath().arg("audit").arg("verify").arg(out.join("audit")));
    assert!(
        verified.contains(": OK: ") && verified.contains("seq 0..="),
        "{verified}"
    );
    hotpath()
        .arg("audit")
        .arg("show")
        .arg(&out)
        .arg("--type")
        .arg("rolled-back")
        .assert()
        .success()
        .stdout(contains("ROLLED BACK (Manual)"));
    let first_run_events = log_events(&out);

    // A second run resumes from the saved state and continues the log.
    let assert = hotpath()
        .args(["demo", "--duration", "3", "--resume", "--out"])
        .arg(&out)
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    for expected in [
        "continuing the audit log in",
        &format!("after seq {}", first_run_events - 1),
        "resumed from",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in\n{stdout}"
        );
    }
    let verified = stdout_of(hotpath().arg("audit").arg("verify").arg(&out));
    assert!(
        verified.contains(": OK: ") && verified.contains("seq 0..="),
        "{verified}"
    );
    assert!(log_events(&out) > first_run_events);
    let starts = stdout_of(
        hotpath()
            .arg("audit")
            .arg("show")
            .arg(&out)
            .args(["--type", "started,restored"]),
    );
    let starts: Vec<&str> = starts.lines().collect();
    assert_eq!(starts.len(), 2, "{starts:?}");
    assert!(
        starts[0].starts_with("#0 ") && starts[0].contains("started"),
        "{starts:?}"
    );
    assert!(!starts[1].contains("started"), "{starts:?}");

    // A state edited by hand is refused by --resume before anything runs:
    // out-of-range counters, an in-range value the log contradicts, a key
    // the state does not have.
    let state_path = out.join("state.json");
    let saved: serde_json::Value =
        serde_json::from_slice(&fs::read(&state_path).expect("state")).expect("json");
    let log_before = fs::read(out.join("audit/audit.0000000001.jsonl")).expect("log");
    let total = saved["executor"]["regressions_total"]
        .as_u64()
        .expect("a count");
    let live = saved["executor"]["live"]["params"][0]
        .as_f64()
        .expect("a value");
    let cases: [(&str, serde_json::Value, &str); 4] = [
        (
            "/executor/regressions_since_rollback",
            (total + 1).into(),
            "more regressions since the last rollback than in total",
        ),
        (
            "/executor/next_audit_seq",
            ((1u64 << 62) + 1).into(),
            "next audit seq 4611686018427387905",
        ),
        (
            "/executor/live/params/0",
            (if live == 55.0 { 56.0 } else { 55.0 }).into(),
            "does not match the audit log",
        ),
        ("/comment", "edited".into(), "unknown field `comment`"),
    ];
    for (field, value, expected) in cases {
        let mut edited = saved.clone();
        match edited.pointer_mut(field) {
            Some(slot) => *slot = value,
            None => {
                edited["comment"] = value;
            }
        }
        fs::write(
            &state_path,
            serde_json::to_vec_pretty(&edited).expect("json"),
        )
        .expect("write state");
        hotpath()
            .args(["demo", "--duration", "3", "--resume", "--out"])
            .arg(&out)
            .timeout(std::time::Duration::from_secs(30))
            .assert()
            .code(1)
            .stderr(contains(expected).and(contains(state_path.display().to_string())));
        assert_eq!(
            fs::read(out.join("audit/audit.0000000001.jsonl")).expect("log"),
            log_before,
            "{field}: a refused resume writes nothing"
        );
    }
}

/// Events in the log of the run directory `out`.
fn log_events(out: &Path) -> u64 {
    fs::read_to_string(out.join("audit/audit.0000000001.jsonl"))
        .expect("log")
        .lines()
        .count() as u64
}

#[test]
fn demo_resume_without_a_state_file_is_an_error() {
    let dir = tempdir();
    hotpath()
        .args(["demo", "--duration", "3", "--resume", "--out"])
        .arg(dir.path())
        .timeout(std::time::Duration::from_secs(10))
        .assert()
        .code(1)
        .stderr(contains("--resume: there is no state file").and(contains("state.json")));
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}

#[test]
fn demo_refuses_an_unusable_output_dir_before_running() {
    let dir = tempdir();
    let file = write(dir.path(), "file", "x");
    hotpath()
        .args(["demo", "--duration", "3", "--out"])
        .arg(&file)
        .timeout(std::time::Duration::from_secs(10))
        .assert()
        .code(1)
        .stderr(contains("exists and is not a directory"));
}

/// A chained log of `Started` events at `seqs`, encoded as the writer
/// encodes them (a log no executor would write).
fn forged_log(dir: &Path, seqs: &[u64]) -> PathBuf {
    use hotpath::{AuditDetails, AuditEvent, ParamVec};
    use hotpath_durable::audit_log::{encode, ChainHash};
    let audit = dir.join("audit");
    fs::create_dir_all(&audit).expect("mkdir");
    let mut prev = ChainHash::GENESIS;
    let mut text = Vec::new();
    for &seq in seqs {
        let event = AuditEvent {
            seq,
            timestamp_us: 0,
            generation: 1,
            details: AuditDetails::Started {
                params: ParamVec::from_slice(&[48.0, 4.0]),
            },
        };
        let (line, hash) = encode(&event, &prev);
        text.extend_from_slice(&line);
        prev = hash;
    }
    let path = audit.join("audit.0000000001.jsonl");
    fs::write(&path, text).expect("write log");
    path
}

#[test]
fn a_log_ending_at_the_largest_seq_is_refused_not_wrapped() {
    let dir = tempdir();
    let log = forged_log(dir.path(), &[u64::MAX - 1, u64::MAX]);
    let before = fs::read(&log).expect("log");
    let expected = format!(
        "{}:1: seq 18446744073709551614 is beyond the ceiling 2^62",
        log.display()
    );
    hotpath()
        .args(["audit", "verify"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(contains(&expected));
    hotpath()
        .args(["demo", "--duration", "3", "--out"])
        .arg(dir.path())
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(1)
        .stderr(contains(&expected));
    assert_eq!(
        fs::read(&log).expect("log"),
        before,
        "nothing appended, nothing cut"
    );
}

// ---------------------------------------------------------------- limits

#[test]
fn capacities_beyond_their_limits_are_located_config_errors_not_aborts() {
    let dir = tempdir();
    let out = dir.path().join("out");
    for value in ["4294967296", "18446744073709551615"] {
        let expected = if value.len() > 10 {
            format!("integer {value} is too large: TOML integers are at most 9223372036854775807")
        } else {
            format!("expected a capacity in [2, 1048576] events, got {value}")
        };
        let set = format!("engine.audit_capacity={value}");
        hotpath()
            .arg("check")
            .arg(example_config())
            .args(["--set", &set])
            .assert()
            .code(1)
            .stderr(predicate::eq(format!(
                "error: --set {set}: engine.audit_capacity: {expected}\n"
            )));
        replay(&out)
            .args(["--set", &set])
            .assert()
            .code(1)
            .stderr(predicate::eq(format!(
                "error: --set {set}: engine.audit_capacity: {expected}\n"
            )));
        // The same in the file: at its line and column.
        let text = fs::read_to_string(data("tuning.toml")).expect("config")
            + &format!("\n[engine]\naudit_capacity = {value}\n");
        let config = write(dir.path(), "big.toml", &text);
        let line = text.lines().count();
        for mut cmd in [
            {
                let mut c = hotpath();
                c.arg("check").arg(&config);
                c
            },
            {
                let mut c = hotpath();
                c.arg("replay")
                    .arg("--config")
                    .arg(&config)
                    .arg("--telemetry")
                    .arg(data("digests.jsonl"))
                    .arg("--out")
                    .arg(&out);
                c
            },
        ] {
            cmd.assert().code(1).stderr(predicate::eq(format!(
                "error: {}:{line}:18: engine.audit_capacity: {expected}\n",
                config.display()
            )));
        }
    }
    assert!(!out.exists(), "nothing written");
    // The window the engine sets aside room for.
    hotpath()
        .arg("check")
        .arg(example_config())
        .args(["--set", "spsa.eval_window_digests=4294967296"])
        .assert()
        .code(1)
        .stderr(contains(
            "spsa.eval_window_digests: expected at most 65536 digests per window",
        ));
}
