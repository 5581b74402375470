//! A replay that runs out of disk: on a small tmpfs (mounted by the test,
//! which needs root; skipped with a message otherwise), a replay that
//! cannot fit fails with a clear error naming the file and the cause, and
//! the previous complete set of outputs stays as it was, with nothing left
//! beside it.

#![cfg(target_os = "linux")]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

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

fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path
                    .strip_prefix(dir)
                    .expect("under")
                    .to_string_lossy()
                    .into_owned();
                out.insert(name, fs::read(&path).expect("read"));
            }
        }
    }
    out
}

fn replay(telemetry: &Path, out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hotpath"))
        .env_remove("RUST_LOG")
        .arg("replay")
        .arg("--config")
        .arg(data("tuning.toml"))
        .arg("--telemetry")
        .arg(telemetry)
        .arg("--out")
        .arg(out)
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
    let mut text = String::new();
    for i in 0..20_000u64 {
        text.push_str(&format!(
            "{{\"t_us\":{},\"objective\":{},\"samples\":50}}\n",
            i * 100_000,
            2.0 + (i % 7) as f64 / 10.0
        ));
    }
    fs::write(&long, text).expect("write");
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
    let left: Vec<String> = fs::read_dir(fs_.path())
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["out"], "nothing left beside them");
    // The space is free again: the short replay still fits.
    assert!(replay(&short, &out).status.success());
}
