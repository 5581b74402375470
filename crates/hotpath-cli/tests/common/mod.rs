//! Setup shared by the test binaries that `mod common;` it. Each uses only
//! part of it, hence `allow(dead_code)`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The `hotpath` binary, for assertions (`RUST_LOG` cleared).
pub fn hotpath() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("hotpath").expect("the binary is built");
    cmd.env_remove("RUST_LOG");
    cmd
}

/// The `hotpath` binary as a process to spawn and kill (`RUST_LOG`
/// cleared, standard output discarded, standard error kept).
pub fn hotpath_process() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hotpath"));
    cmd.env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    cmd
}

/// A file of `tests/data/`.
pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// A telemetry file of `digests` digests 100 ms apart, long enough for a
/// replay to take a while.
pub fn long_telemetry(path: &Path, digests: u64) {
    std::fs::write(path, long_telemetry_text(digests)).expect("write telemetry");
}

/// The lines [`long_telemetry`] writes.
pub fn long_telemetry_text(digests: u64) -> String {
    let mut text = String::new();
    for i in 0..digests {
        let objective = 2.0 + ((i * 7919) % 101) as f64 / 100.0;
        text.push_str(&format!(
            "{{\"t_us\":{},\"objective\":{objective},\"samples\":50}}\n",
            i * 100_000
        ));
    }
    text
}

/// `hotpath replay` of `telemetry` with `config` into `out`, as a process
/// (see [`hotpath_process`]).
pub fn replay_process(config: &Path, telemetry: &Path, out: &Path) -> std::process::Command {
    let mut cmd = hotpath_process();
    cmd.arg("replay")
        .arg("--config")
        .arg(config)
        .arg("--telemetry")
        .arg(telemetry)
        .arg("--out")
        .arg(out);
    cmd
}
