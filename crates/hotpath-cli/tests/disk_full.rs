//! A replay that runs out of disk: on a small tmpfs (mounted by the test,
//! which needs root; skipped with a message otherwise), a replay that
//! cannot fit fails with a clear error naming the file and the cause, and
//! the previous complete set of outputs stays as it was, with nothing left
//! beside it.

#![cfg(target_os = "linux")]

use hotpath_testkit::{listing, snapshot};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::data;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `256k`), or says why it cannot.
    fn mount(size: &str) -> Result<Self, String> {
        let uid = fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .and_then(|ids| ids.split_whitespace().nth(1).map(str::to_owned))
            })
            .unwrap_or_default();
        if uid != "0" {
            return Err(format!("mounting a tmpfs needs root (effective uid {uid})"));
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size}"))
            .arg("tmpfs")
            .arg(dir.path())
            .status()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !status.success() {
            return Err(format!("mount failed: {status}"));
        }
        Ok(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn replay(telemetry: &Path, out: &Path) -> std::process::Output {
    common::replay_process(&data("tuning.toml"), telemetry, out)
        .output()
        .expect("the replay runs")
}

#[test]
fn a_replay_that_fills_the_disk_fails_clearly_and_keeps_the_previous_outputs() {
    let fs_ = match Tmpfs::mount("256k") {
        Ok(fs_) => fs_,
        Err(why) => {
            eprintln!("skipping the disk-full test: {why}");
            return;
        }
    };
    let work = tempfile::tempdir().expect("tempdir");
    // A short replay fits: the previous complete set.
    let short = work.path().join("short.jsonl");
    let text = fs::read_to_string(data("digests.jsonl")).expect("telemetry");
    fs::write(
        &short,
        text.lines()
            .take(100)
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    )
    .expect("write");
    let out = fs_.path().join("out");
    assert!(replay(&short, &out).status.success());
    let before = snapshot(&out);
    // A long one does not.
    let long = work.path().join("long.jsonl");
    common::long_telemetry(&long, 20_000);
    let started = Instant::now();
    let failed = replay(&long, &out);
    let stderr = String::from_utf8_lossy(&failed.stderr).into_owned();
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: ")
            && stderr.lines().count() == 1
            && stderr.contains(&out.display().to_string())
            && stderr.contains("No space left on device"),
        "one line naming the output and the cause: {stderr}"
    );
    // Soon: offline, a disk that keeps failing is not waited for.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "failed after {:?}",
        started.elapsed()
    );
    assert_eq!(snapshot(&out), before, "the previous outputs, untouched");
    assert_eq!(listing(fs_.path()), ["out"], "nothing left beside them");
    // The space is free again: the short replay still fits.
    assert!(replay(&short, &out).status.success());
}
