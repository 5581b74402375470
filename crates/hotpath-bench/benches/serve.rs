//! Load benchmarks of `hotpath serve` on loopback, each against a baseline
//! measured in the same run (figures in BENCHMARKS.md):
//!
//! * `config`: `GET /v1/config` throughput, against a minimal axum handler
//!   returning the same bytes on the same accept loop and runtime, both
//!   driven by the same load generator (16 keep-alive connections, 3 s,
//!   alternated twice, after a warm-up).
//! * `ingest`: telemetry over HTTP in NDJSON batches of 1,000 digests
//!   (2 connections, 3 s, twice), against `hotpath replay`'s digest
//!   throughput on the same lines (one thread; best of two).
//! * `propagation`: from the executor's publish to receipt by each of
//!   1,000 SSE watchers (one connection each), 50 publications, against
//!   a put to etcd received by 1,000 watchers of its key (feature `etcd`).
//! * `memory`: the resident memory a server process gains per idle
//!   watcher (1,000 of them; the server in a child process of its own),
//!   and etcd's per idle watch for context (feature `etcd`).
//!
//! ```text
//! cargo bench -p hotpath-bench --bench serve                                   # all, no etcd
//! cargo bench -p hotpath-bench --bench serve --features etcd                   # with etcd
//! cargo bench -p hotpath-bench --bench serve --features etcd -- propagation    # one part
//! ```

use bytes::Bytes;
use hotpath::{AdaptiveEngineConfig, Knob, ManualClock, ParamSpace, ParamVec, Proposal};
use hotpath_bench::load::{self, Request};
use hotpath_bench::watchers::{open_sse, Watchers};
use hotpath_bench::{quantile, rss_kib};
use hotpath_host::{Host, HostOptions, ShutdownPolicy};
use hotpath_server::{Attached, Background, Control, ControlOptions, Limits, Token};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

type Error = Box<dyn std::error::Error>;

/// The example config `hotpath replay` is benchmarked with.
const CONFIG: &str = include_str!("../../hotpath-cli/examples/tuning.toml");
const TOKEN: &str = "bench-token-bench-token";
const WATCHERS: usize = 1000;
const PUBLICATIONS: usize = 50;
const CHILD: &str = "HOTPATH_BENCH_CHILD";

fn main() -> Result<(), Error> {
    if std::env::var_os(CHILD).is_some() {
        return child_server();
    }
    let parts: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |part: &str| parts.is_empty() || parts.iter().any(|p| p == part);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-client")
        .enable_all()
        .build()?;
    if wanted("config") {
        config_throughput(&runtime)?;
    }
    if wanted("ingest") {
        ingest(&runtime)?;
    }
    if wanted("propagation") {
        propagation(&runtime)?;
    }
    if wanted("memory") {
        memory(&runtime)?;
    }
    Ok(())
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// The server's API over `handle` on a free loopback port.
fn serve_on_loopback(
    handle: hotpath_server::ControlHandle,
    limits: Limits,
) -> Result<Background, Error> {
    Ok(Background::start(
        handle,
        Token::new(TOKEN),
        limits,
        loopback(),
    )?)
}

/// Two knobs on an in-memory host.
fn space() -> ParamSpace {
    ParamSpace::new(vec![
        Knob::real("batch_size", 1.0, 512.0, 64.0),
        Knob::real("flush_interval_ms", 0.5, 50.0, 10.0),
    ])
    .unwrap_or_else(|e| panic!("the bench's knobs: {e}"))
}

fn settings() -> AdaptiveEngineConfig {
    AdaptiveEngineConfig::bounded(vec![(1.0, 512.0), (0.5, 50.0)])
}

fn in_memory_control() -> Result<Control, Error> {
    let host = Host::open(
        std::sync::Arc::new(space()),
        settings(),
        HostOptions::in_memory(),
        hotpath::SystemClock::new(),
    )?;
    Ok(Control::start(host, ControlOptions::default())?)
}

// ------------------------------------------------------------------ config

/// A router served by `hotpath_server::serve` on a runtime of its own
/// (two workers, as `hotpath serve`'s), until the sender is dropped.
fn serve_router(
    app: axum::Router,
) -> Result<(SocketAddr, tokio::sync::oneshot::Sender<()>), Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind(loopback()))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let limits = Limits::default();
        let (stopping, _) = tokio::sync::watch::channel(false);
        let shutdown = async {
            let _ = stopped.await;
        };
        let _ = runtime.block_on(hotpath_server::serve(
            listener, app, &limits, stopping, shutdown,
        ));
    });
    Ok((addr, stop))
}

fn config_throughput(runtime: &tokio::runtime::Runtime) -> Result<(), Error> {
    let control = in_memory_control()?;
    let server = serve_on_loopback(control.handle(), Limits::default())?;
    let bytes = Bytes::from(control.handle().config_json());
    let same = bytes.clone();
    let minimal = axum::Router::new().route(
        "/v1/config",
        axum::routing::get(move || {
            let body = same.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    body,
                )
            }
        }),
    );
    let (baseline, _stop) = serve_router(minimal)?;
    let request = Request::get("/v1/config");
    let (connections, time) = (16, Duration::from_secs(3));
    println!(
        "== GET /v1/config: {connections} keep-alive connections, {time:?} a run, body {} bytes",
        bytes.len()
    );
    runtime.block_on(async {
        // Warm-up, and both answer the same bytes.
        for addr in [baseline, server.local_addr()] {
            let warm = load::run(addr, &request, 200, connections, Duration::from_secs(1)).await?;
            assert_eq!(warm.bytes, warm.ok * bytes.len() as u64, "{addr} answers other bytes");
        }
        let mut ratios = Vec::new();
        for round in 1..=2 {
            let base = load::run(baseline, &request, 200, connections, time).await?;
            let ours = load::run(server.local_addr(), &request, 200, connections, time).await?;
            let ratio = ours.per_second() / base.per_second();
            ratios.push(ratio);
            println!(
                "  round {round}: minimal axum handler {:>9.0} req/s, hotpath /v1/config {:>9.0} req/s  ratio {ratio:.2}  (failed {} / {})",
                base.per_second(),
                ours.per_second(),
                base.failed,
                ours.failed
            );
        }
        println!("  ratio hotpath / minimal: {:.2} (target >= 0.5)", mean(&ratios));
        Ok::<(), Error>(())
    })?;
    server.stop();
    control.shutdown(ShutdownPolicy::default())?;
    Ok(())
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

// ------------------------------------------------------------------ ingest

/// `count` digests as JSON Lines from `t0_us`, 100 ms apart, a noisy
/// objective (xorshift), 200–455 samples: what replicas send and what a
/// replay reads.
fn digest_lines(count: u64, t0_us: u64) -> String {
    let mut state = 0x2545_F491_4F6C_DD1D_u64 ^ t0_us;
    let mut text = String::with_capacity(count as usize * 64);
    for i in 0..count {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let objective = 3.0 + ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.4;
        let samples = 200 + (state & 0xff);
        let t = t0_us + i * 100_000;
        text.push_str(&format!(
            "{{\"t_us\":{t},\"objective\":{objective:.6},\"samples\":{samples}}}\n"
        ));
    }
    text
}

fn ingest(runtime: &tokio::runtime::Runtime) -> Result<(), Error> {
    let dir = tempfile::tempdir()?;
    let config = hotpath_cli::config::parse("tuning.toml", CONFIG, dir.path(), &[])?;

    // The baseline: `hotpath replay` over 200,000 lines, best of two.
    let n = 200_000;
    let telemetry = dir.path().join("digests.jsonl");
    std::fs::write(&telemetry, digest_lines(n, 1_000_000))?;
    let mut best = Duration::MAX;
    for run in 0..2 {
        let out = dir.path().join(format!("replay-{run}"));
        let report = hotpath_cli::replay::run(
            &hotpath_cli::replay::Replay {
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
    }
    let replay_rate = n as f64 / best.as_secs_f64();

    // The server: the same config, a durable log, as `hotpath serve` runs.
    let data = dir.path().join("data");
    let host = Host::from_config(
        &config,
        HostOptions::in_dir(&data),
        hotpath::SystemClock::new(),
    )?;
    let control = Control::start(host, ControlOptions::default())?;
    let server = serve_on_loopback(control.handle(), Limits::default())?;
    let batch = 1000;
    let body = Bytes::from(digest_lines(batch, 0));
    let request = Request::post(
        "/v1/telemetry",
        vec![
            ("authorization", format!("Bearer {TOKEN}")),
            ("content-type", "application/x-ndjson".into()),
        ],
        body.clone(),
    );
    let (connections, time) = (2, Duration::from_secs(3));
    println!(
        "== telemetry ingest: NDJSON batches of {batch} digests ({} bytes), {connections} connections, {time:?} a run",
        body.len()
    );
    println!(
        "  hotpath replay (one thread, {n} digests, best of 2): {replay_rate:>10.0} digests/s"
    );
    runtime.block_on(async {
        load::run(server.local_addr(), &request, 202, connections, Duration::from_secs(1)).await?;
        let mut ratios = Vec::new();
        for round in 1..=2 {
            let ours = load::run(server.local_addr(), &request, 202, connections, time).await?;
            let rate = ours.per_second() * batch as f64;
            ratios.push(rate / replay_rate);
            println!(
                "  round {round}: POST /v1/telemetry {rate:>10.0} digests/s  ratio {:.2}  (failed {})",
                rate / replay_rate,
                ours.failed
            );
        }
        println!("  ratio ingest / replay: {:.2} (target >= 0.5)", mean(&ratios));
        Ok::<(), Error>(())
    })?;
    server.stop();
    let status = control.handle().status();
    println!(
        "  (the engine stepped {} windows of the {} digests accepted)",
        status.counts.telemetry.windows_stepped, status.counts.telemetry.accepted
    );
    control.shutdown(ShutdownPolicy::default())?;
    Ok(())
}

// ------------------------------------------------------------- propagation

/// The latencies of one side: every receipt, and the last of each
/// publication.
#[derive(Default)]
struct Latencies {
    all: Vec<Duration>,
    last: Vec<Duration>,
    missed: usize,
}

impl Latencies {
    fn add(&mut self, published: Instant, received: &[Instant], expected: usize) {
        let each: Vec<Duration> = received
            .iter()
            .map(|at| at.saturating_duration_since(published))
            .collect();
        if let Some(last) = each.iter().max() {
            self.last.push(*last);
        }
        self.missed += expected - received.len();
        self.all.extend(each);
    }

    fn line(&mut self, name: &str) -> Option<Duration> {
        let p50 = quantile(&mut self.all, 0.5)?;
        let p99 = quantile(&mut self.all, 0.99)?;
        let last50 = quantile(&mut self.last, 0.5)?;
        let last99 = quantile(&mut self.last, 0.99)?;
        println!(
            "  {name:<32} every receipt p50 {:>8.2} ms  p99 {:>8.2} ms   last watcher p50 {:>8.2} ms  p99 {:>8.2} ms  (missed {})",
            ms(p50),
            ms(p99),
            ms(last50),
            ms(last99),
            self.missed
        );
        Some(p99)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Limits for a thousand watchers and more.
fn many_watchers() -> Limits {
    Limits {
        max_watchers: WATCHERS + 100,
        max_connections: WATCHERS + 200,
        ..Limits::default()
    }
}

fn propagation(runtime: &tokio::runtime::Runtime) -> Result<(), Error> {
    println!("== propagation: publish -> receipt by each of {WATCHERS} watchers, {PUBLICATIONS} publications");
    // The executor publishes on this thread (a host attached to the
    // server, as the demo's), on a manual clock so the guardrails' timers
    // never refuse.
    let clock = ManualClock::new(0);
    let mut host = Host::open(
        std::sync::Arc::new(space()),
        settings(),
        HostOptions::in_memory(),
        clock.clone(),
    )?;
    let mut attached = Attached::new(&mut host, ControlOptions::default())?;
    let server = serve_on_loopback(attached.handle(), many_watchers())?;
    let mut watchers = runtime.block_on(open_sse(
        server.local_addr(),
        "/v1/config/watch",
        WATCHERS,
        Duration::from_secs(60),
    ))?;
    let mut sse = Latencies::default();
    for round in 0..PUBLICATIONS as u64 {
        clock.advance(2_000_000);
        let published = Instant::now();
        host.apply(Proposal::Update {
            iteration: round + 1,
            delta: ParamVec::from_slice(&[0.5, 0.0]),
            gradient_estimate: ParamVec::new(),
        })?;
        attached.poll(&mut host)?;
        let generation = host.executor().generation();
        let received = runtime.block_on(watchers.collect(generation, Duration::from_secs(10)));
        sse.add(published, &received, WATCHERS);
        std::thread::sleep(Duration::from_millis(20));
    }
    runtime.block_on(watchers.close());
    server.stop();
    host.shutdown(ShutdownPolicy::default())?;
    let ours = sse.line("hotpath SSE /v1/config/watch");
    let theirs = etcd_propagation(runtime)?;
    if let (Some(ours), Some(theirs)) = (ours, theirs) {
        println!(
            "  p99 hotpath / etcd: {:.3} (target <= 0.5)",
            ours.as_secs_f64() / theirs.as_secs_f64()
        );
    }
    Ok(())
}

#[cfg(feature = "etcd")]
fn etcd_propagation(runtime: &tokio::runtime::Runtime) -> Result<Option<Duration>, Error> {
    let Some(etcd) = start_etcd(runtime) else {
        return Ok(None);
    };
    let key = "hotpath/config";
    let mut latencies = Latencies::default();
    runtime.block_on(async {
        let mut client = etcd.client().await?;
        client.put(key, "0", None).await?;
        let mut watchers = etcd.watchers(key, WATCHERS).await?;
        // Every watch is established once it has seen a put.
        client.put(key, "1", None).await?;
        let ready = watchers.collect(1, Duration::from_secs(60)).await;
        assert_eq!(ready.len(), WATCHERS, "etcd watchers not ready");
        for round in 0..PUBLICATIONS as u64 {
            let generation = round + 2;
            let published = Instant::now();
            client.put(key, generation.to_string(), None).await?;
            let received = watchers.collect(generation, Duration::from_secs(10)).await;
            latencies.add(published, &received, WATCHERS);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        watchers.close().await;
        Ok::<(), Error>(())
    })?;
    Ok(latencies.line("etcd watch (put -> event)"))
}

#[cfg(feature = "etcd")]
fn start_etcd(runtime: &tokio::runtime::Runtime) -> Option<hotpath_bench::etcd::Etcd> {
    match runtime.block_on(hotpath_bench::etcd::Etcd::start()) {
        Ok(etcd) => Some(etcd),
        Err(e) => {
            println!("  etcd: SKIPPED, cannot start etcd ({e}); `apt-get install etcd-server`");
            None
        }
    }
}

#[cfg(not(feature = "etcd"))]
fn etcd_propagation(_: &tokio::runtime::Runtime) -> Result<Option<Duration>, Error> {
    println!("  etcd: not measured (build with --features etcd; needs protoc and etcd-server)");
    Ok(None)
}

// ------------------------------------------------------------------ memory

/// The child's side of `memory`: a server with room for the watchers,
/// its address on the first line, until standard input closes.
fn child_server() -> Result<(), Error> {
    let control = in_memory_control()?;
    let server = serve_on_loopback(control.handle(), many_watchers())?;
    println!("{}", server.local_addr());
    std::io::stdout().flush()?;
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
    server.stop();
    control.shutdown(ShutdownPolicy::default())?;
    Ok(())
}

/// Resident memory of `pid` before and after `open` opens idle watchers
/// (settled for a second each time): KiB per watcher.
fn per_watcher<F>(runtime: &tokio::runtime::Runtime, pid: u32, open: F) -> Result<f64, Error>
where
    F: std::future::Future<Output = Result<Watchers, Error>>,
{
    std::thread::sleep(Duration::from_secs(1));
    let before = rss_kib(pid).ok_or("cannot read the server's memory")?;
    let watchers = runtime.block_on(open)?;
    std::thread::sleep(Duration::from_secs(1));
    let after = rss_kib(pid).ok_or("cannot read the server's memory")?;
    let count = watchers.len();
    runtime.block_on(watchers.close());
    Ok(after.saturating_sub(before) as f64 / count as f64)
}

fn memory(runtime: &tokio::runtime::Runtime) -> Result<(), Error> {
    println!("== memory per idle watcher ({WATCHERS} watchers; the server's resident memory before and after)");
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .env(CHILD, "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut first = String::new();
    BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut first)?;
    let addr: SocketAddr = first.trim().parse()?;
    let open = async {
        Ok::<_, Error>(open_sse(addr, "/v1/config/watch", WATCHERS, Duration::from_secs(60)).await?)
    };
    let kib = per_watcher(runtime, child.id(), open)?;
    drop(child.stdin.take());
    child.wait()?;
    println!("  hotpath SSE watcher: {kib:.1} KiB each (target <= 16 KiB)");
    etcd_memory(runtime)
}

#[cfg(feature = "etcd")]
fn etcd_memory(runtime: &tokio::runtime::Runtime) -> Result<(), Error> {
    let Some(etcd) = start_etcd(runtime) else {
        return Ok(());
    };
    let open = async { Ok::<_, Error>(etcd.watchers("hotpath/config", WATCHERS).await?) };
    let kib = per_watcher(runtime, etcd.pid(), open)?;
    println!("  etcd watch (a connection each): {kib:.1} KiB each (context)");
    Ok(())
}

#[cfg(not(feature = "etcd"))]
fn etcd_memory(_: &tokio::runtime::Runtime) -> Result<(), Error> {
    Ok(())
}
