//! The command line: argument definitions and what each command does.

use crate::config::{Override, Preset};
use crate::named;
use crate::serve::ServeArgs;
use crate::{audit_log, config, demo, replay, serve, CliError};
use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand};
use hotpath::EventType;
use std::io::Write;
use std::path::PathBuf;

/// Governed real-time tuning from the command line.
///
/// Exit status: 0 on success, 1 when the command failed (bad config, bad
/// telemetry, unwritable output, …), 2 for a usage error.
#[derive(Debug, Parser)]
#[command(
    name = "hotpath",
    version,
    propagate_version = true,
    after_help = "Examples:
  hotpath demo                                     tune a live workload for a minute
  hotpath check tuning.toml                        validate a config
  hotpath replay --config tuning.toml --telemetry digests.jsonl --out replay-out --preset conservative
  hotpath audit verify replay-out/audit                verify the hash chain
  hotpath audit verify a/audit b/audit c/audit         verify a fleet's chain across its instances
  hotpath audit show replay-out/audit --type rolled-back,rejected
  hotpath serve --config tuning.toml --data /var/lib/hotpath   the tuner as an HTTP service"
)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Tune a live in-process workload for about a minute and show each
    /// decision as it happens
    ///
    /// A producer offers records to a batching pipeline (each batch encoded
    /// as JSON, CSV or varints; a simulated network round trip per batch,
    /// its transfer time by the byte). The engine tunes the batch size (an
    /// integer), the linger time (on a log scale) and the encoding (a
    /// choice) to minimise the latency per record, through the guardrails;
    /// the offered load rises mid-run, so the best setting moves. Probes
    /// around the centre and the centre's own moves are shown apart. Ends with a summary; keeps a durable, hash-chained
    /// audit log (DIR/audit/, continued across runs) and the governed state
    /// (DIR/state.json) in --out.
    Demo(DemoArgs),
    /// Run the engine offline over recorded telemetry (shadow evaluation)
    ///
    /// Feeds each digest of a JSON Lines telemetry file to the engine with
    /// the clock set to the digest's timestamp, and writes what the engine
    /// decided (decisions.jsonl), the executor's audit trail as a
    /// hash-chained audit log (audit/) and the final governed state
    /// (state.json). Same inputs give byte-identical outputs. Use --preset
    /// and --set to ask what another policy would have done with the same
    /// telemetry.
    ///
    /// Telemetry lines: {"t_us": 1200000, "objective": 3.25, "samples": 480}
    /// with optional "generation", "margin" and "window_us".
    Replay(ReplayArgs),
    /// Validate a tuning config and summarise it
    ///
    /// Reports every problem as FILE:LINE:COLUMN: KEY: what is expected.
    Check(CheckArgs),
    /// Verify and read audit logs
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Run the governed tuner as an HTTP service
    ///
    /// Replicas of a service report telemetry (POST /v1/telemetry) and read
    /// or watch the live configuration (GET /v1/config, /v1/config/watch);
    /// operators freeze, resume, roll back and set the baseline; every
    /// decision goes to the hash-chained audit log in DIR/audit, the state
    /// to DIR/state.json (resumed on restart). Writes need the bearer token
    /// (DIR/token unless --token-file). Stops on SIGTERM or SIGINT.
    // Boxed: its flags (the fleet's etcd ones among them) make it several
    // times the size of the other commands.
    Serve(Box<ServeArgs>),
}

/// `--preset` and `--set`, shared by `replay` and `check`.
#[derive(Debug, Args)]
pub struct Overrides {
    /// Use this preset for both the guardrails and the rollback policy
    /// (keys set explicitly in the config still apply on top)
    #[arg(long, value_parser = preset_parser())]
    pub preset: Option<Preset>,
    /// Override one config key, e.g. guardrails.max_delta_per_step=0.05 or
    /// calibration=false (repeatable; applied after --preset, in order)
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = Override::parse)]
    pub set: Vec<Override>,
}

impl Overrides {
    pub(crate) fn layers(&self) -> Vec<Override> {
        let mut layers = self.preset.map(Override::preset).unwrap_or_default();
        layers.extend(self.set.iter().cloned());
        layers
    }
}

/// Arguments of `hotpath demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How long to run, in seconds (3 to 3600)
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(3..=3600))]
    pub duration: u64,
    /// Seed of the engine's perturbations and of the generated records
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Guardrails and rollback preset
    #[arg(long, default_value = "balanced", value_parser = preset_parser())]
    pub preset: Preset,
    /// Directory for the audit log (DIR/audit/) and the state file
    /// (DIR/state.json)
    #[arg(long, value_name = "DIR", default_value = "hotpath-demo-out")]
    pub out: PathBuf,
    /// Start from the state saved in DIR/state.json by an earlier run
    /// (parameters, baseline, safe mode, SPSA iteration and gains) instead
    /// of the initial settings
    #[arg(long)]
    pub resume: bool,
    /// Print plain periodic lines even on a terminal
    #[arg(long)]
    pub plain: bool,
    /// Do not serve the live status page (by default it is served on a
    /// free loopback port, its URL printed first)
    #[arg(long)]
    pub no_page: bool,
}

/// Arguments of `hotpath replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The tuning config (TOML)
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The recorded telemetry (JSON Lines, one digest per line)
    #[arg(long, value_name = "FILE")]
    pub telemetry: PathBuf,
    /// Output directory (created if missing); defaults to the config's
    /// `audit_dir` in its `output` section
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Skip malformed or out-of-order telemetry lines, counting them,
    /// instead of stopping at the first
    #[arg(long)]
    pub skip_bad_lines: bool,
    /// Policy overrides.
    #[command(flatten)]
    pub overrides: Overrides,
}

/// Arguments of `hotpath check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The tuning config (TOML)
    #[arg(value_name = "FILE")]
    pub config: PathBuf,
    /// Policy overrides.
    #[command(flatten)]
    pub overrides: Overrides,
}

/// `hotpath audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify an audit log's hash chain
    ///
    /// Checks every line's hash, every link to the line before and that
    /// sequence numbers are consecutive. Prints a one-line summary (events,
    /// files, seq range, the head hash to keep elsewhere) and exits with 0,
    /// or prints the first problem as FILE:LINE: what is wrong and exits
    /// with 1.
    Verify(VerifyArgs),
    /// Print the events of an audit log, one line each
    ///
    /// Verifies the chain as it reads: a line that does not verify stops
    /// the listing with an error naming its file and line.
    Show(ShowArgs),
}

/// Arguments of `hotpath audit verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The audit log: its directory (e.g. replay-out/audit, or the run's
    /// output directory replay-out), or one audit.NNNNNNNNNN.jsonl file.
    /// Several directories: a fleet's (every instance's data directory),
    /// verified as one chain across the leaders' segments
    #[arg(value_name = "PATH", required = true, num_args = 1..)]
    pub paths: Vec<PathBuf>,
    /// Verify the directories as a fleet's even if there is only one
    #[arg(long)]
    pub fleet: bool,
}

/// Arguments of `hotpath audit show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The audit log: its directory (e.g. replay-out/audit, or the run's
    /// output directory replay-out), or one audit.NNNNNNNNNN.jsonl file
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// Only events of these types (repeatable or comma-separated)
    #[arg(long = "type", value_name = "TYPE", value_delimiter = ',', value_parser = event_type_parser())]
    pub types: Vec<EventType>,
    /// Only events at or after this time (µs, the executor's clock)
    #[arg(long, value_name = "T_US")]
    pub since: Option<u64>,
    /// Only events at or before this time (µs, the executor's clock)
    #[arg(long, value_name = "T_US")]
    pub until: Option<u64>,
    /// The log's tuning config: values shown by knob name and typed
    /// (integers whole, choices by option), changes as the knobs they moved
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `--preset`'s values: every [`Preset`], with its description in the help.
fn preset_parser() -> impl clap::builder::TypedValueParser<Value = Preset> {
    let values =
        Preset::ALL.map(|p| clap::builder::PossibleValue::new(p.name()).help(p.description()));
    clap::builder::PossibleValuesParser::new(values).try_map(|name| name.parse::<Preset>())
}

/// `--type`'s values: every [`EventType`], by its kebab-case name, with
/// its description in the help.
fn event_type_parser() -> impl clap::builder::TypedValueParser<Value = EventType> {
    let values =
        EventType::ALL.map(|t| clap::builder::PossibleValue::new(t.name()).help(t.description()));
    clap::builder::PossibleValuesParser::new(values).try_map(|name| name.parse::<EventType>())
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Replay(args) => run_replay(&args),
        Command::Check(args) => run_check(&args),
        Command::Audit(AuditCommand::Verify(args)) => run_verify(&args),
        Command::Audit(AuditCommand::Show(args)) => run_show(&args),
        Command::Serve(args) => serve::run(&args),
    }
}

fn run_check(args: &CheckArgs) -> Result<(), CliError> {
    let c = config::load(&args.config, &args.overrides.layers())?;
    let mut out = String::new();
    out.push_str(&format!("{}: ok\n", args.config.display()));
    let width = c.space.knobs().iter().map(|k| k.name().len()).max();
    for (i, knob) in c.space.knobs().iter().enumerate() {
        let label = if i == 0 { "parameters" } else { "" };
        out.push_str(&format!(
            "  {label:<12} {:<width$}  {}\n",
            knob.name(),
            named::knob(knob),
            width = width.unwrap_or(0)
        ));
    }
    let set_in = |section: &str| {
        let keys: Vec<&str> = c
            .explicit
            .iter()
            .filter_map(|k| k.strip_prefix(section))
            .collect();
        if keys.is_empty() {
            String::new()
        } else {
            format!(", overriding {}", keys.join(", "))
        }
    };
    out.push_str(&format!(
        "  guardrails   {} preset{}\n",
        c.guardrails_preset.name(),
        set_in("guardrails.")
    ));
    out.push_str(&format!(
        "  rollback     {} preset{}\n",
        c.rollback_preset.name(),
        set_in("rollback.")
    ));
    let s = &c.engine.spsa;
    out.push_str(&format!(
        "  spsa         {} digests per window, {} µs settle, {} µs window timeout\n",
        s.eval_window_digests, s.settle_time_us, s.eval_window_us
    ));
    out.push_str(&format!(
        "  calibration  {}\n",
        if c.engine.calibration.is_some() {
            "on"
        } else {
            "off"
        }
    ));
    out.push_str(&format!("  seed         {}\n", c.engine.seed));
    print(&out)
}

fn run_replay(args: &ReplayArgs) -> Result<(), CliError> {
    let c = config::load(&args.config, &args.overrides.layers())?;
    let out_dir = match (&args.out, &c.output.audit_dir) {
        (Some(dir), _) | (None, Some(dir)) => dir.clone(),
        (None, None) => return Err(CliError::NoOutputDir),
    };
    let state_file = match (&args.out, &c.output.state_file) {
        (None, Some(file)) => file.clone(),
        _ => out_dir.join(crate::state::FILE_NAME),
    };
    let replay = replay::Replay {
        config: &c,
        config_file: Some(&args.config),
        telemetry: &args.telemetry,
        out_dir: &out_dir,
        state_file,
        skip_bad_lines: args.skip_bad_lines,
    };
    let mut warned = 0u32;
    let report = replay::run(&replay, |bad| {
        warned += 1;
        if warned <= 10 {
            eprintln!("warning: skipped {bad}");
        } else if warned == 11 {
            eprintln!("warning: more bad lines skipped; the summary counts them");
        }
    })?;
    print(&format!("{report}\n"))
}

fn run_verify(args: &VerifyArgs) -> Result<(), CliError> {
    if args.fleet || args.paths.len() > 1 {
        return run_verify_fleet(&args.paths);
    }
    let Some(path) = args.paths.first() else {
        return Err(CliError::NoAuditLog {
            path: PathBuf::new(),
        });
    };
    let path = audit_log::resolve(path);
    let report = hotpath_durable::verify(&path)?;
    if report.files == 0 {
        return Err(CliError::NoAuditLog { path });
    }
    print(&format!(
        "{}: OK: {} events in {} file{}, seq {}, head {}\n",
        path.display(),
        report.events,
        report.files,
        if report.files == 1 { "" } else { "s" },
        audit_log::seq_range(report.first_seq, report.last_seq),
        report.last_hash
    ))
}

/// `hotpath audit verify DIR1 DIR2 …`: one fleet's chain across its
/// leaders' segments.
fn run_verify_fleet(paths: &[PathBuf]) -> Result<(), CliError> {
    let dirs: Vec<PathBuf> = paths.iter().map(|p| audit_log::resolve(p)).collect();
    let report = hotpath_durable::verify_fleet(&dirs)?;
    if report.segments == 0 {
        return Err(CliError::NoAuditLog {
            path: dirs.first().cloned().unwrap_or_default(),
        });
    }
    let chain = &report.chain;
    let mut text = format!(
        "fleet audit log ({} directories): OK: {} events through {} of {} segments, seq {}, head {}\n",
        dirs.len(),
        chain.events,
        chain.files,
        report.segments,
        audit_log::seq_range(chain.first_seq, chain.last_seq),
        chain.last_hash
    );
    for tail in &report.abandoned {
        text.push_str(&format!(
            "  abandoned tail: {} seq {}..={} ({} events decided after its leader's last publication, never published)\n",
            tail.file.display(),
            tail.first_seq,
            tail.last_seq,
            tail.events
        ));
    }
    print(&text)
}

fn run_show(args: &ShowArgs) -> Result<(), CliError> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let path = audit_log::resolve(&args.path);
    let config = match &args.config {
        Some(file) => Some((config::load(file, &[])?, file)),
        None => None,
    };
    let mut named = config
        .as_ref()
        .map(|(c, file)| audit_log::Named::new(&c.space, file));
    let result = audit_log::read(&path, |record| {
        // Every event is named, shown or not: each starts where the last left.
        let line = named.as_mut().map(|n| n.line(record)).transpose()?;
        let wanted_type = args.types.is_empty() || args.types.contains(&record.event_type);
        if !wanted_type {
            return Ok(());
        }
        let shown = audit_log::Shown::of(record);
        let t = shown.timestamp_us();
        if args.since.is_none_or(|s| t >= s) && args.until.is_none_or(|u| t <= u) {
            match line {
                Some(line) => writeln!(out, "{line}"),
                None => writeln!(out, "{shown}"),
            }
            .map_err(CliError::Stdout)?;
        }
        Ok(())
    });
    // What was shown before a bad line is still shown.
    let flushed = out.flush().map_err(CliError::Stdout);
    result.and(flushed)
}

/// Prints to standard output; a closed pipe is not an error worth a panic.
pub(crate) fn print(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(CliError::Stdout)
}
