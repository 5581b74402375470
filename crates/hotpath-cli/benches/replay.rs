//! End-to-end replay throughput: generates N digests as JSON Lines, then
//! times `hotpath replay` over them in-process (read and parse, engine step,
//! decisions, the hash-chained audit log and the state written to disk and
//! synced, the log's writer thread shut down). Best of three runs.
//! `taskset -c 0` on the bench binary measures it on one core (the log's
//! writer thread then shares the core with the replay).
//!
//! ```text
//! cargo bench -p hotpath-cli --bench replay            # 1,000,000 digests
//! cargo bench -p hotpath-cli --bench replay -- 200000  # another count
//! ```

use hotpath_cli::config;
use hotpath_cli::replay::{self, Replay};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Duration;

/// The shipped example config, outputs redirected to the bench's directory.
const CONFIG: &str = include_str!("../examples/tuning.toml");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let telemetry = dir.path().join("digests.jsonl");
    generate(&telemetry, n)?;
    let config = config::parse("tuning.toml", CONFIG, dir.path(), &[])?;
    let out = dir.path().join("out");
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..3 {
        let report = replay::run(
            &Replay {
                config: &config,
                config_file: None,
                telemetry: &telemetry,
                out_dir: &out,
                state_file: out.join("state.json"),
                skip_bad_lines: false,
            },
            |_| {},
        )?;
        best = best.min(report.elapsed);
        last = Some(report);
    }
    let bytes = std::fs::metadata(&telemetry)?.len();
    if let Some(report) = last {
        println!("{report}");
        let applied = report.tally.applied;
        let events = report.audit_events;
        println!(
            "\nreplay: {n} digests ({:.1} MB, {applied} applied moves, {events} audit events) in {:.3} s, best of 3: {:.2} M digests/s",
            bytes as f64 / 1e6,
            best.as_secs_f64(),
            n as f64 / best.as_secs_f64() / 1e6
        );
    }
    Ok(())
}

/// A day and more of telemetry: one digest per 100 ms, a stationary noisy
/// objective (xorshift noise), sample counts 200–456, a constraint margin
/// on every 50th line.
fn generate(path: &Path, n: u64) -> std::io::Result<()> {
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in 0..n {
        let r = next();
        let noise = (r >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
        let t = 1_000_000 + i * 100_000;
        let objective = 3.0 + 0.4 * noise;
        let samples = 200 + (r & 0xff);
        if i % 50 == 7 {
            writeln!(out, "{{\"t_us\":{t},\"objective\":{objective:.5},\"samples\":{samples},\"margin\":0.5}}")?;
        } else {
            writeln!(
                out,
                "{{\"t_us\":{t},\"objective\":{objective:.5},\"samples\":{samples}}}"
            )?;
        }
    }
    out.flush()
}
