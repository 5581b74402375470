//! A service that embeds the tuner: typed knobs (an integer, a real on a
//! log scale, a choice) on a control thread, the API and the live status
//! page served on a thread of its own, and the service's own measuring
//! loop reporting a digest every 20 ms through the control handle.
//!
//! ```text
//! cargo run -p hotpath-server --example embedded -- [--listen 127.0.0.1:0] [--token-file FILE] [--seconds N]
//! ```
//!
//! It prints `listening on http://ADDR` first, then where the token is
//! (a fresh one in a temporary file unless `--token-file` names one),
//! and runs for `--seconds` (default 600) or until its standard input
//! closes. The objective is a noisy bowl around `workers = 24`,
//! `cache_ttl_s = 90`, `codec = "lz4"`.

use hotpath::{AdaptiveEngineConfig, Knob, ParamSpace, SpsaConfig, SystemClock, TelemetryDigest};
use hotpath_config::telemetry::Reported;
use hotpath_host::{Host, HostOptions, ShutdownPolicy};
use hotpath_server::{Background, Control, ControlOptions, Limits, Token};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut listen: SocketAddr = "127.0.0.1:0".parse()?;
    let mut token_file: Option<PathBuf> = None;
    let mut seconds = 600u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--listen" => listen = value.parse()?,
            "--token-file" => token_file = Some(value.into()),
            "--seconds" => seconds = value.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let space = Arc::new(ParamSpace::new(vec![
        Knob::int("workers", 1, 64, 8),
        Knob::real("cache_ttl_s", 1.0, 3600.0, 30.0).log(),
        Knob::choice("codec", ["none", "lz4", "zstd"], "none"),
    ])?);
    let settings = AdaptiveEngineConfig {
        spsa: SpsaConfig {
            eval_window_digests: 2,
            settle_time_us: 0,
            ..SpsaConfig::default()
        },
        calibration: None,
        ..AdaptiveEngineConfig::bounded(vec![(1.0, 64.0), (1.0, 3600.0), (0.0, 2.0)])
    };
    let host = Host::open(
        space,
        settings,
        HostOptions::in_memory(),
        SystemClock::new(),
    )?;
    let control = Control::start(host, ControlOptions::default())?;
    let dir = tempfile::tempdir()?;
    let token_file = token_file.unwrap_or_else(|| dir.path().join("token"));
    let token = Token::load_or_generate(&token_file)?;
    let server = Background::start(control.handle(), token, Limits::default(), listen)?;
    println!("listening on http://{}", server.local_addr());
    println!("token file {}", token_file.display());

    // Standard input closing (the parent gone) ends the run early.
    let done = Arc::new(AtomicBool::new(false));
    let closed = Arc::clone(&done);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        closed.store(true, Ordering::Release);
    });
    let handle = control.handle();
    let started = Instant::now();
    let mut noise = 0x2545_F491_4F6C_DD1D_u64;
    while !done.load(Ordering::Acquire) && started.elapsed() < Duration::from_secs(seconds) {
        let live = handle.snapshot();
        let (workers, ttl, codec) = (live.params[0], live.params[1], live.params[2]);
        noise ^= noise << 13;
        noise ^= noise >> 7;
        noise ^= noise << 17;
        let jitter = (noise >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
        let objective = ((workers - 24.0) / 16.0).powi(2)
            + (ttl / 90.0).ln().powi(2) / 4.0
            + if codec == 1.0 { 0.0 } else { 0.3 }
            + 0.02 * jitter;
        let digest =
            TelemetryDigest::new(20_000, 10.0 + objective, 100).with_generation(live.generation);
        let reported = Reported {
            line: 1,
            instance: Some("embedded".into()),
            digest,
        };
        // A busy or stopping control thread only costs this one report.
        let _ = handle.report_blocking(vec![reported]);
        std::thread::sleep(Duration::from_millis(20));
    }
    server.stop();
    control.shutdown(ShutdownPolicy::default())?;
    Ok(())
}
