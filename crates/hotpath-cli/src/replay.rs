//! `hotpath replay`: the engine run offline over recorded telemetry.
//!
//! The engine runs in a [`Host`] on a [`ManualClock`] set to the first
//! digest's timestamp; before each digest is stepped the clock is set to
//! its `t_us`. The host waits for the audit log rather than let the
//! executor's queue fill ([`WhenFull::Wait`]), so everything the run
//! produces is a function of the config and the telemetry, and the same
//! inputs give byte-identical outputs.
//!
//! Outputs, in the output directory:
//!
//! * `decisions.jsonl`: one line per digest used, in input order:
//!   `{"line":12,"t_us":1200000,"proposal":"NoChange","reason":"Settling"}`
//!   or, for a move, `{"line":…,"t_us":…,"proposal":"ApplyPlus","id":4,
//!   "delta":[…],"applied":true,"generation":7,"params":[…],"values":{…}}`
//!   (`Update` also carries `"gradient"`; a refused move has
//!   `"applied":false` and `"violation"` instead of
//!   `generation`/`params`/`values`). `params` are the live values in
//!   index order as the executor holds them (a choice as its option's
//!   index); `values` the same by name and typed: `{"batch_size":52,
//!   "linger_ms":1.8,"codec":"lz4"}`, an integer knob's value a JSON
//!   integer, a choice's its option's name, a real's a number. `line` is
//!   the input line; names are hotpath's type names.
//! * `audit/`: the executor's audit trail as a `hotpath_durable` audit log
//!   (`audit.0000000001.jsonl`, … and `audit.lock`; see
//!   [`crate::audit_log`]), hash-chained from the genesis hash. Replay
//!   writes it with `FsyncPolicy::Never` (nothing is synced while it runs)
//!   and syncs every file and the directory once at the end.
//! * `state.json`: where the run ended (see [`crate::state`]), or the
//!   config's `[output] state_file` when `--out` is not given.
//!
//! The outputs become visible together or not at all (see
//! [`crate::output`]): the replay locks the output directory (a second run
//! on it is refused as "in use"), writes everything into a hidden staging
//! directory beside it, and exchanges the two in one step once the whole
//! replay has succeeded. A failed replay leaves the previous outputs as
//! they were and no temporary behind. An existing output directory is
//! replaced only if it holds nothing but earlier outputs (an `audit/` with
//! nothing but log files); an input inside it, or an output path that
//! resolves to an input or to something other than a regular file, is
//! refused before anything is written.

use crate::audit_log;
use crate::config::TuningConfig;
use crate::named::{self, Digits};
use crate::output::{canonical_inputs, Expected, OutputSet};
use crate::report::Tally;
use crate::telemetry::{BadLine, DigestReader, Line, ReadStats};
use crate::CliError;
use hotpath::{
    ManualClock, NamedValues, NoChangeReason, ParamSpace, ParamVec, Proposal, ProposalKind,
    StepOutcome, TelemetryDigest, Violation,
};
use hotpath_durable::{AuditLogOptions, FsyncPolicy};
use hotpath_host::{Host, HostError, HostOptions, Resume, ShutdownPolicy, Subscription, WhenFull};
use serde::Serialize;
use std::fmt;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The decisions file's name inside the output directory.
pub const DECISIONS_FILE: &str = "decisions.jsonl";

/// Capacity of the queue between the replay and its audit log's writer.
const LOG_QUEUE: usize = 1 << 15;
/// Events the writer encodes and writes at a time.
const LOG_BATCH: usize = 1 << 13;
/// How long the replay waits for a log that makes no progress (a full or
/// failing disk) before it fails: offline, there is nothing to wait for.
const LOG_STALL: Duration = Duration::from_secs(5);

/// What to replay and where to.
pub struct Replay<'a> {
    /// The validated config.
    pub config: &'a TuningConfig,
    /// The file the config was read from, if any: an input no output may
    /// overwrite.
    pub config_file: Option<&'a Path>,
    /// The telemetry file.
    pub telemetry: &'a Path,
    /// Directory for `decisions.jsonl` and `audit/`.
    pub out_dir: &'a Path,
    /// Where the state file goes.
    pub state_file: PathBuf,
    /// Skip bad lines (counting them) instead of stopping at the first.
    pub skip_bad_lines: bool,
}

/// What a replay did.
#[derive(Debug)]
pub struct ReplayReport {
    /// Lines and digests read, bad lines skipped.
    pub read: ReadStats,
    /// Digests the engine refused (counted in `read.skipped` too).
    pub engine_refused: u64,
    /// Proposals and executor decisions.
    pub tally: Tally,
    /// Engine counters.
    pub engine: hotpath::EngineStats,
    /// The knobs.
    pub space: Arc<ParamSpace>,
    /// Their initial values (the live encoding, index order).
    pub initial: Vec<f64>,
    /// Their final live values.
    pub final_values: Vec<f64>,
    /// Events written to the audit log.
    pub audit_events: u64,
    /// Files (and the audit log directory) written.
    pub outputs: Vec<PathBuf>,
    /// Wall time.
    pub elapsed: Duration,
}

#[derive(Serialize)]
struct Decision<'a> {
    line: u64,
    t_us: u64,
    proposal: ProposalKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<NoChangeReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<&'a [f64]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gradient: Option<&'a [f64]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    applied: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<&'a [f64]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    values: Option<NamedValues<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    violation: Option<&'a Violation>,
}

impl<'a> Decision<'a> {
    fn new(
        line: u64,
        t_us: u64,
        outcome: &'a StepOutcome,
        space: &'a ParamSpace,
        live: &'a ParamVec,
        generation: u64,
    ) -> Self {
        let p = &outcome.proposal;
        let mut d = Decision {
            line,
            t_us,
            proposal: p.kind(),
            reason: None,
            id: None,
            delta: p.delta().map(|d| &d[..]),
            gradient: None,
            applied: None,
            generation: None,
            params: None,
            values: None,
            violation: None,
        };
        match p {
            Proposal::NoChange { reason } => d.reason = Some(*reason),
            Proposal::Update {
                gradient_estimate, ..
            } => d.gradient = Some(gradient_estimate),
            _ => {}
        }
        if !matches!(p, Proposal::NoChange { .. }) {
            d.id = Some(p.correlation_id());
        }
        match &outcome.applied {
            Some(Ok(_)) => {
                d.applied = Some(true);
                d.generation = Some(generation);
                d.params = Some(live);
                d.values = Some(space.named(live));
            }
            Some(Err(v)) => {
                d.applied = Some(false);
                d.violation = Some(v);
            }
            None => {}
        }
        d
    }
}

/// The outputs an output directory may already hold (see
/// [`crate::output`]); the state file, when it is there, besides.
const EXPECTED: Expected = Expected {
    files: &[DECISIONS_FILE],
    dirs: &[(audit_log::DIR_NAME, audit_log::is_replaceable)],
};

/// Runs a replay. Warnings about skipped lines go to `warn`.
///
/// # Errors
///
/// A [`CliError`] naming the file, line or directory at fault; the
/// output directory is then left as it was.
pub fn run(replay: &Replay, mut warn: impl FnMut(&BadLine)) -> Result<ReplayReport, CliError> {
    let started = Instant::now();
    let config = replay.config;
    let file =
        std::fs::File::open(replay.telemetry).map_err(|e| CliError::read(replay.telemetry, e))?;
    let mut reader = DigestReader::new(
        BufReader::with_capacity(1 << 16, file),
        replay.telemetry.display().to_string(),
    );
    let inputs: Vec<&Path> = replay
        .config_file
        .into_iter()
        .chain([replay.telemetry])
        .collect();
    let inputs = canonical_inputs(&inputs);
    let (set, state_file) =
        OutputSet::begin(replay.out_dir, &EXPECTED, &replay.state_file, &inputs)?;
    let decisions_path = set.staging().join(DECISIONS_FILE);
    let decisions_file = std::fs::File::create(&decisions_path)
        .map_err(|e| CliError::write(&replay.out_dir.join(DECISIONS_FILE), e))?;
    let mut decisions = Decisions {
        path: replay.out_dir.join(DECISIONS_FILE),
        writer: BufWriter::with_capacity(1 << 16, decisions_file),
    };
    let mut input = Input {
        reader: &mut reader,
        skip_bad_lines: replay.skip_bad_lines,
        warn: &mut warn,
        path: replay.telemetry,
    };
    // The engine starts at the first usable digest's time.
    let first = input.next()?;
    let clock = ManualClock::new(first.and_then(|(_, d)| d.timestamp_us).unwrap_or(0));
    let options = HostOptions {
        audit_dir: Some(set.staging().join(audit_log::DIR_NAME)),
        state_file: Some(state_file),
        log: AuditLogOptions {
            fsync: FsyncPolicy::Never,
            max_pending_events: LOG_BATCH,
            // A disk that keeps failing fails the replay soon, and a
            // failed replay discards its log: no long wait for it.
            shutdown_timeout: Duration::from_secs(1),
            ..AuditLogOptions::default()
        },
        when_full: WhenFull::Wait,
        log_queue_capacity: LOG_QUEUE,
        stall_timeout: LOG_STALL,
        state_save_interval_us: None,
        resume: Resume::Fresh,
    };
    let mut host = Host::from_config(config, options, clock.clone())?;
    // Drained after every step: it never holds more than the executor's
    // own queue, so it never loses an event.
    let events = host.subscribe(config.engine.audit_capacity)?;
    let mut tally = Tally::default();
    let engine_refused = replay_digests(
        &mut host,
        &clock,
        &mut input,
        first,
        &mut decisions,
        &events,
        &mut tally,
    )?;
    let engine = host.engine().stats();
    let final_live = host.executor().snapshot().params;
    let closed = host.shutdown(ShutdownPolicy::default())?;
    count(&events, &mut tally);
    let logged = closed.log.map_or(0, |l| l.forwarded);
    decisions.finish()?;
    let state_name = replay
        .state_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let mut names = vec![DECISIONS_FILE, audit_log::DIR_NAME];
    if let Some(name) = state_name
        .as_deref()
        .filter(|n| set.staging().join(n).is_file())
    {
        names.push(name);
    }
    let outputs = set.commit(&names)?;
    Ok(ReplayReport {
        read: reader.stats(),
        engine_refused,
        tally,
        engine,
        space: Arc::clone(&config.space),
        initial: config.initial().to_vec(),
        final_values: final_live.to_vec(),
        audit_events: logged,
        outputs,
        elapsed: started.elapsed(),
    })
}

/// `decisions.jsonl`, written into the staging directory.
struct Decisions {
    /// Its final path, for messages.
    path: PathBuf,
    writer: BufWriter<std::fs::File>,
}

impl Decisions {
    /// Writes `value` as one JSON line.
    fn write_json_line(&mut self, value: &impl Serialize) -> Result<(), CliError> {
        serde_json::to_writer(&mut self.writer, value)
            .map_err(std::io::Error::from)
            .and_then(|()| self.writer.write_all(b"\n"))
            .map_err(|e| CliError::write(&self.path, e))
    }

    /// Writes raw bytes.
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), CliError> {
        self.writer
            .write_all(bytes)
            .map_err(|e| CliError::write(&self.path, e))
    }

    /// Flushes what is buffered (the commit syncs it).
    fn finish(mut self) -> Result<(), CliError> {
        self.writer
            .flush()
            .map_err(|e| CliError::write(&self.path, e))
    }
}

/// The telemetry as the replay takes it: bad lines skipped (with a
/// warning) or fatal.
struct Input<'a, R, W> {
    reader: &'a mut DigestReader<R>,
    skip_bad_lines: bool,
    warn: &'a mut W,
    path: &'a Path,
}

impl<R: std::io::BufRead, W: FnMut(&BadLine)> Input<'_, R, W> {
    /// The next usable digest, `None` at the end.
    fn next(&mut self) -> Result<Option<(u64, TelemetryDigest)>, CliError> {
        loop {
            let line: Option<Line> = self
                .reader
                .next_digest()
                .map_err(|e| CliError::read(self.path, e))?;
            match line {
                None => return Ok(None),
                Some(Ok(digest)) => return Ok(Some(digest)),
                Some(Err(bad)) => self.skip(bad)?,
            }
        }
    }

    /// Skips `bad` if allowed, else stops the replay with it.
    fn skip(&mut self, bad: BadLine) -> Result<(), CliError> {
        if self.skip_bad_lines {
            (self.warn)(&bad);
            Ok(())
        } else {
            Err(bad.into())
        }
    }
}

/// Steps every digest from `first` on, writing one decision per digest
/// used; returns how many the engine refused.
fn replay_digests<R: std::io::BufRead, W: FnMut(&BadLine)>(
    host: &mut Host<ManualClock>,
    clock: &ManualClock,
    input: &mut Input<'_, R, W>,
    first: Option<(u64, TelemetryDigest)>,
    decisions: &mut Decisions,
    events: &Subscription,
    tally: &mut Tally,
) -> Result<u64, CliError> {
    let mut engine_refused = 0;
    let mut live = ParamVec::new();
    let mut line_buf = Vec::with_capacity(128);
    let mut pending = first;
    loop {
        let Some((line, digest)) = pending
            .take()
            .map_or_else(|| input.next(), |d| Ok(Some(d)))?
        else {
            return Ok(engine_refused);
        };
        let t_us = digest.timestamp_us.unwrap_or(0);
        clock.set(t_us);
        match host.step(digest) {
            Ok(outcome) => {
                tally.step(&outcome);
                match (&outcome.proposal, reason_json(&outcome.proposal)) {
                    (Proposal::NoChange { .. }, Some(reason)) => {
                        no_change_line(&mut line_buf, line, t_us, reason);
                        decisions.write_all(&line_buf)?;
                    }
                    _ => {
                        let snapshot = host.executor().snapshot();
                        live.copy_from(&snapshot.params);
                        let space = host.space();
                        let decision =
                            Decision::new(line, t_us, &outcome, space, &live, snapshot.generation);
                        decisions.write_json_line(&decision)?;
                    }
                }
            }
            Err(HostError::Digest(e)) => {
                engine_refused += 1;
                let bad = input
                    .reader
                    .bad(None, format!("refused by the engine: {e}"));
                input.skip(bad)?;
            }
            Err(e) => return Err(e.into()),
        }
        count(events, tally);
    }
}

/// Counts the audit events the host handed over.
fn count(events: &Subscription, tally: &mut Tally) {
    while events.try_next_with(|e| tally.event(e)).is_some() {}
}

/// The JSON name of a `NoChange` reason, for the hand-written line (most
/// lines are `NoChange`); `None` sends the line through serde.
fn reason_json(proposal: &Proposal) -> Option<&'static str> {
    match proposal {
        Proposal::NoChange { reason } => match reason {
            NoChangeReason::CollectingSamples => Some("CollectingSamples"),
            NoChangeReason::Settling => Some("Settling"),
            NoChangeReason::EvalTimeout => Some("EvalTimeout"),
            NoChangeReason::SafeMode => Some("SafeMode"),
            NoChangeReason::WaitingForExecutor => Some("WaitingForExecutor"),
            NoChangeReason::ConstraintViolated => Some("ConstraintViolated"),
            _ => None,
        },
        _ => None,
    }
}

/// Writes into `buf` exactly what serde writes for a `NoChange` decision.
fn no_change_line(buf: &mut Vec<u8>, line: u64, t_us: u64, reason: &str) {
    let mut numbers = itoa::Buffer::new();
    buf.clear();
    buf.extend_from_slice(b"{\"line\":");
    buf.extend_from_slice(numbers.format(line).as_bytes());
    buf.extend_from_slice(b",\"t_us\":");
    buf.extend_from_slice(numbers.format(t_us).as_bytes());
    buf.extend_from_slice(b",\"proposal\":\"NoChange\",\"reason\":\"");
    buf.extend_from_slice(reason.as_bytes());
    buf.extend_from_slice(b"\"}\n");
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        writeln!(f, "replay summary")?;
        writeln!(
            f,
            "  digests          {} read, {} used, {} skipped (bad lines)",
            self.read.digests + self.read.skipped,
            self.read.digests - self.engine_refused,
            self.read.skipped + self.engine_refused,
        )?;
        let e = &self.engine;
        writeln!(
            f,
            "  engine           {} digests counted; discarded {} settling, {} stale, {} while a move was pending",
            e.used, e.discarded_settling, e.discarded_stale, e.discarded_pending
        )?;
        writeln!(
            f,
            "                   gradients {}, steps rejected {}, window timeouts {}",
            e.gradients, e.steps_rejected, e.eval_timeouts
        )?;
        writeln!(f, "{}", self.tally)?;
        writeln!(f, "  parameters")?;
        let space = &self.space;
        for (i, (start, end)) in self.initial.iter().zip(&self.final_values).enumerate() {
            let shown = |v: f64| named::value(space.value(i, v), Digits::Six);
            writeln!(
                f,
                "    {:<16} {} -> {}",
                space.name(i),
                shown(*start),
                shown(*end)
            )?;
        }
        writeln!(f, "  audit log        {} events", self.audit_events)?;
        for path in &self.outputs {
            writeln!(f, "  wrote            {}", path.display())?;
        }
        write!(
            f,
            "  time             {:.3} s ({:.0} digests/s)",
            secs,
            self.read.lines as f64 / secs.max(1e-9)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_written_no_change_lines_match_serde() {
        let reasons = [
            NoChangeReason::CollectingSamples,
            NoChangeReason::Settling,
            NoChangeReason::EvalTimeout,
            NoChangeReason::SafeMode,
            NoChangeReason::WaitingForExecutor,
            NoChangeReason::ConstraintViolated,
        ];
        let live = ParamVec::new();
        let space = ParamSpace::unbounded(0);
        for reason in reasons {
            let outcome = StepOutcome {
                proposal: Proposal::NoChange { reason },
                applied: None,
            };
            let mut expected =
                serde_json::to_vec(&Decision::new(12, u64::MAX, &outcome, &space, &live, 0))
                    .unwrap();
            expected.push(b'\n');
            let mut buf = Vec::new();
            no_change_line(
                &mut buf,
                12,
                u64::MAX,
                reason_json(&outcome.proposal).unwrap(),
            );
            assert_eq!(
                String::from_utf8(buf).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
    }
}
