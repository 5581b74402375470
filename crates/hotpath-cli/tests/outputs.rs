//! What `hotpath replay` (and `demo`) may and may not do to the files
//! around them: outputs of one run become visible together or not at all,
//! one run at a time per output directory, and never over an input or
//! something that is not a regular file (crates/hotpath-cli/src/output.rs
//! states the rule).

use assert_cmd::Command;
use hotpath_testkit::{listing, snapshot};
use predicates::prelude::*;
use predicates::str::contains;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod common;
use common::{data, hotpath};

fn replay(config: &Path, telemetry: &Path) -> Command {
    let mut cmd = hotpath();
    cmd.arg("replay")
        .arg("--config")
        .arg(config)
        .arg("--telemetry")
        .arg(telemetry);
    cmd
}

#[test]
fn a_failed_replay_leaves_the_previous_outputs_untouched_and_nothing_else() {
    let root = tempfile::tempdir().expect("tempdir");
    let out = root.path().join("out");
    replay(&data("tuning.toml"), &data("digests.jsonl"))
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    // The previous set with decisions.jsonl turned into a directory: the
    // next run used to replace state.json, then fail on decisions.jsonl,
    // leaving the state of one run beside the log of another.
    fs::remove_file(out.join("decisions.jsonl")).expect("rm");
    fs::create_dir(out.join("decisions.jsonl")).expect("mkdir");
    let before = snapshot(&out);
    replay(&data("tuning.toml"), &data("digests.jsonl"))
        .arg("--out")
        .arg(&out)
        .args(["--preset", "conservative"])
        .assert()
        .code(1)
        .stderr(contains(
            "decisions.jsonl: exists and is not a regular file",
        ));
    assert_eq!(
        snapshot(&out),
        before,
        "nothing of the failed run is visible"
    );
    assert_eq!(listing(root.path()), ["out"], "no temporary left behind");

    // A run that fails half-way (a bad line near the end) leaves the
    // previous complete set as it was.
    fs::remove_dir(out.join("decisions.jsonl")).expect("rmdir");
    replay(&data("tuning.toml"), &data("digests.jsonl"))
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let before = snapshot(&out);
    let mut text = fs::read_to_string(data("digests.jsonl")).expect("telemetry");
    text.push_str("{\"t_us\": 1, \"objective\": 1, \"samples\": 1}\n");
    let telemetry = root.path().join("late-bad-line.jsonl");
    fs::write(&telemetry, text).expect("write");
    replay(&data("tuning.toml"), &telemetry)
        .arg("--out")
        .arg(&out)
        .args(["--preset", "aggressive"])
        .assert()
        .code(1)
        .stderr(contains("late-bad-line.jsonl:501: t_us 1 is earlier"));
    assert_eq!(snapshot(&out), before);
    assert_eq!(listing(root.path()), ["late-bad-line.jsonl", "out"]);
}

/// The message for `out` in use.
fn in_use(out: &Path) -> String {
    format!(
        "error: output directory {}: in use by another hotpath run",
        out.display()
    )
}

/// `hotpath demo --out out` is refused before it runs, saying `message`.
fn demo_refused(out: &Path, message: &str) {
    hotpath()
        .args(["demo", "--duration", "3", "--out"])
        .arg(out)
        .timeout(Duration::from_secs(30))
        .assert()
        .code(1)
        .stderr(contains(message));
}

/// A replay into `out` is refused: it is in use.
fn refused_in_use(out: &Path) {
    replay(&data("tuning.toml"), &data("digests.jsonl"))
        .arg("--out")
        .arg(out)
        .assert()
        .code(1)
        .stderr(contains(in_use(out)));
}

#[test]
fn a_second_run_on_an_output_directory_in_use_is_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let out = root.path().join("out");
    fs::create_dir(&out).expect("mkdir");
    // Another run holds the directory.
    let held = fs::File::open(&out).expect("open");
    held.try_lock().expect("lock");
    refused_in_use(&out);
    demo_refused(&out, &in_use(&out));
    assert!(listing(&out).is_empty(), "nothing written");
    drop(held);

    // Two real replays: the second, started while the first works, is
    // refused; the first finishes with its outputs whole. The first reads
    // its telemetry from a pipe this test holds open, so it is still at
    // work when the second starts, however loaded the machine is.
    let telemetry = root.path().join("telemetry.pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&telemetry)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo");
    let mut first = common::replay_process(&data("tuning.toml"), &telemetry, &out)
        .spawn()
        .expect("the first replay starts");
    let text = common::long_telemetry_text(10_000);
    let (half, rest) = text.split_at(text.len() / 2);
    let (rest, release) = (rest.to_owned(), std::sync::mpsc::channel::<()>());
    let writer = {
        let (half, path) = (half.to_owned(), telemetry.clone());
        std::thread::spawn(move || {
            // Blocks until the replay opens the pipe for reading.
            let mut pipe = fs::OpenOptions::new().write(true).open(path).expect("pipe");
            pipe.write_all(half.as_bytes()).expect("first half");
            release.1.recv().expect("released");
            pipe.write_all(rest.as_bytes()).expect("second half");
        })
    };
    // It holds the lock once its staging directory exists.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !listing(root.path())
        .iter()
        .any(|n| n.starts_with(".out.hotpath-"))
    {
        assert!(
            Instant::now() < deadline,
            "the first replay never started staging"
        );
        assert!(
            first.try_wait().expect("wait").is_none(),
            "the first replay ended too soon"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    refused_in_use(&out);
    release.0.send(()).expect("the writer waits");
    writer.join().expect("the writer wrote everything");
    assert!(first.wait().expect("wait").success());
    assert_eq!(listing(&out), ["audit", "decisions.jsonl", "state.json"]);
    assert_eq!(listing(root.path()), ["out", "telemetry.pipe"]);
    hotpath()
        .args(["audit", "verify"])
        .arg(&out)
        .assert()
        .success();
    let decisions = fs::read_to_string(out.join("decisions.jsonl")).expect("decisions");
    assert_eq!(decisions.lines().count(), 10_000, "the first run's, whole");
}

/// A config whose `[output]` section is `output`, in `dir`.
fn config_with(dir: &Path, output: &str) -> PathBuf {
    let text = fs::read_to_string(data("tuning.toml")).expect("config") + "\n" + output;
    let path = dir.join("tuning.toml");
    fs::write(&path, text).expect("write config");
    path
}

#[test]
fn outputs_never_overwrite_the_inputs() {
    let root = tempfile::tempdir().expect("tempdir");
    // The telemetry inside the output directory, as its decisions.jsonl.
    let x = root.path().join("x");
    fs::create_dir(&x).expect("mkdir");
    let telemetry = x.join("decisions.jsonl");
    fs::copy(data("digests.jsonl"), &telemetry).expect("copy");
    replay(&data("tuning.toml"), &telemetry)
        .arg("--out")
        .arg(&x)
        .assert()
        .code(1)
        .stderr(contains("an input of this run"));
    assert_eq!(
        fs::read(&telemetry).expect("telemetry"),
        fs::read(data("digests.jsonl")).expect("original")
    );

    // [output] state_file naming the config itself, or the telemetry.
    let dir = root.path().join("conf");
    fs::create_dir(&dir).expect("mkdir");
    let telemetry = dir.join("digests.jsonl");
    fs::copy(data("digests.jsonl"), &telemetry).expect("copy");
    for (state_file, input) in [
        ("tuning.toml", "tuning.toml"),
        ("digests.jsonl", "digests.jsonl"),
    ] {
        let config = config_with(
            &dir,
            &format!("[output]\naudit_dir = \"out\"\nstate_file = \"{state_file}\"\n"),
        );
        let config_before = fs::read(&config).expect("config");
        replay(&config, &telemetry)
            .assert()
            .code(1)
            .stderr(contains("is the input").and(contains(input)));
        assert_eq!(fs::read(&config).expect("config"), config_before);
        assert_eq!(
            fs::read(&telemetry).expect("telemetry"),
            fs::read(data("digests.jsonl")).expect("original")
        );
        assert!(!dir.join("out").exists(), "nothing written");
    }

    // A state file that is a link to the config resolves to it.
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(dir.join("tuning.toml"), dir.join("link.json"))
            .expect("symlink");
        let config = config_with(
            &dir,
            "[output]\naudit_dir = \"out\"\nstate_file = \"link.json\"\n",
        );
        replay(&config, &telemetry)
            .assert()
            .code(1)
            .stderr(contains("is the input"));
        assert!(fs::symlink_metadata(dir.join("link.json"))
            .expect("link")
            .file_type()
            .is_symlink());
    }
}

#[cfg(unix)]
#[test]
fn outputs_never_replace_what_is_not_a_regular_file() {
    use std::os::unix::fs::FileTypeExt;
    let root = tempfile::tempdir().expect("tempdir");
    // A character device like /dev/null, made here: as root, a regression
    // replaces this node, never the machine's /dev/null.
    let device = root.path().join("null");
    let made = std::process::Command::new("mknod")
        .arg(&device)
        .args(["c", "1", "3"])
        .status()
        .is_ok_and(|s| s.success());
    let targets: Vec<PathBuf> = if made {
        vec![device.clone(), root.path().join("a-directory")]
    } else {
        eprintln!("skipping the character device case: mknod needs root");
        vec![root.path().join("a-directory")]
    };
    fs::create_dir(root.path().join("a-directory")).expect("mkdir");
    for target in targets {
        let config = config_with(
            root.path(),
            &format!(
                "[output]\naudit_dir = \"out\"\nstate_file = \"{}\"\n",
                target.display()
            ),
        );
        replay(&config, &data("digests.jsonl"))
            .assert()
            .code(1)
            .stderr(contains("exists and is not a regular file"));
        assert!(!root.path().join("out").exists(), "nothing written");
    }
    if made {
        assert!(fs::metadata(&device)
            .expect("stat")
            .file_type()
            .is_char_device());
    }
    // The demo's state file too, before it runs.
    let out = root.path().join("demo");
    fs::create_dir_all(out.join("state.json")).expect("mkdir");
    demo_refused(&out, "state.json: exists and is not a regular file");
}

#[test]
fn the_current_directory_is_not_replaced() {
    let root = tempfile::tempdir().expect("tempdir");
    let out = root.path().join("out");
    fs::create_dir(&out).expect("mkdir");
    replay(&data("tuning.toml"), &data("digests.jsonl"))
        .current_dir(&out)
        .args(["--out", "."])
        .assert()
        .code(1)
        .stderr(contains("is (or holds) the current directory"));
    assert!(listing(&out).is_empty());
}
