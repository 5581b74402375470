//! `hotpath serve`: the governed tuner as an HTTP service, on
//! [`hotpath_server::Server`].

use crate::cli::Overrides;
use crate::CliError;
use clap::Args;
use hotpath_server::{ServeOptions, Server};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `hotpath serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The tuning config (TOML)
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Data directory: the audit log (DIR/audit/), the state
    /// (DIR/state.json) and, without --token-file, the token (DIR/token);
    /// an existing one is resumed
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Address to listen on (loopback by default; reads are open to
    /// anyone who can reach it)
    #[arg(long, value_name = "ADDR", default_value = hotpath_server::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// File holding the bearer token (its first line, at least 16
    /// characters); default: DIR/token, generated with mode 0600 if missing
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Roll back to the baseline when stopping (off: the tuned
    /// configuration is kept)
    #[arg(long)]
    pub rollback_on_exit: bool,
    /// Length of an aggregation window in milliseconds (default: from the
    /// config's spsa settings, eval_window_us / (2 × eval_window_digests),
    /// at least settle_time_us, within 10 ms..10 s)
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub window_ms: Option<u64>,
    /// Most open event streams (/v1/config/watch and /v1/events
    /// together); one more gets 503 too_many_watchers. Each holds a
    /// connection: keep --max-connections above it
    #[arg(long, value_name = "N", default_value_t = hotpath_server::Limits::default().max_watchers,
          value_parser = parse_count)]
    pub max_watchers: usize,
    /// Most open connections; further clients wait in the listen backlog.
    /// Each costs a file descriptor: the process's limit (ulimit -n) must
    /// allow it
    #[arg(long, value_name = "N", default_value_t = hotpath_server::Limits::default().max_connections,
          value_parser = parse_count)]
    pub max_connections: usize,
    /// Join the fleet NAME on etcd (with --etcd; needs --token-file, the
    /// same on every instance): one instance leads and tunes, the others
    /// serve its published configuration and forward writes to it
    #[arg(long, value_name = "NAME", requires_all = ["etcd", "token_file"])]
    pub fleet: Option<String>,
    /// An etcd endpoint of the fleet's coordinator (repeatable)
    #[arg(long, value_name = "URL", requires = "fleet")]
    pub etcd: Vec<String>,
    /// Fleet: the leadership lease's time to live in seconds; a leader
    /// that dies is replaced within it (plus about a second)
    #[arg(long, value_name = "SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(2..=60))]
    pub lease_ttl: u64,
    /// Fleet: this instance's name (default: its advertised address)
    #[arg(long, value_name = "NAME", requires = "fleet")]
    pub instance: Option<String>,
    /// Fleet: the address the other instances reach this one at (default:
    /// the address it listens on)
    #[arg(long, value_name = "ADDR", requires = "fleet")]
    pub advertise: Option<String>,
    /// Fleet: the etcd user to log in as (with --etcd-password-file)
    #[arg(long, value_name = "USER", requires_all = ["fleet", "etcd_password_file"])]
    pub etcd_user: Option<String>,
    /// Fleet: the file holding the etcd user's password (its first line;
    /// never logged)
    #[arg(long, value_name = "FILE", requires = "etcd_user")]
    pub etcd_password_file: Option<PathBuf>,
    /// Fleet: the PEM CA bundle that verifies etcd's certificate; turns
    /// TLS on (as an https:// endpoint does, then verified against the
    /// system's roots); every --etcd must then be https://
    #[arg(long, value_name = "FILE", requires = "fleet")]
    pub etcd_ca: Option<PathBuf>,
    /// Fleet: the PEM client certificate to present to etcd (with
    /// --etcd-key; for an etcd with --client-cert-auth); turns TLS on
    #[arg(long, value_name = "FILE", requires = "fleet")]
    pub etcd_cert: Option<PathBuf>,
    /// Fleet: the client certificate's PEM private key
    #[arg(long, value_name = "FILE", requires = "fleet")]
    pub etcd_key: Option<PathBuf>,
    /// Policy overrides.
    #[command(flatten)]
    pub overrides: Overrides,
}

/// Starts the server, prints where it listens and where the token is
/// (never the token), serves until SIGTERM or SIGINT, then shuts down.
///
/// # Errors
///
/// [`CliError::Serve`] if it cannot start (bad config, locked or damaged
/// log, unusable token file, address in use) or stop cleanly.
pub fn run(args: &ServeArgs) -> Result<(), CliError> {
    init_logging();
    let mut options = ServeOptions::new(&args.config, &args.data);
    options.overrides = args.overrides.layers();
    options.listen = args.listen;
    options.token_file = args.token_file.clone();
    options.rollback_on_exit = args.rollback_on_exit;
    options.control.window = args.window_ms.map(Duration::from_millis);
    options.limits.max_watchers = args.max_watchers;
    options.limits.max_connections = args.max_connections;
    let server = match &args.fleet {
        Some(name) => {
            let mut fleet = hotpath_fleet::FleetOptions::new(name, args.etcd.clone());
            fleet.lease_ttl = Duration::from_secs(args.lease_ttl);
            fleet.instance = args.instance.clone();
            fleet.advertise = args.advertise.clone();
            fleet.auth = etcd_auth(args)?;
            fleet.tls = etcd_tls(args);
            hotpath_fleet::start(options, fleet)?
        }
        None => Server::start(options)?,
    };
    let report = server.open_report();
    let start = match (&args.fleet, &report.restored) {
        (Some(name), _) => format!(
            "fleet {name}, joined as a standby; the fleet published generation {}",
            report.generation
        ),
        (None, Some(_)) => format!("restored, generation {}", report.generation),
        (None, None) => format!("fresh start, generation {}", report.generation),
    };
    let window = server.handle().window();
    let mut text = format!(
        "hotpath serve: listening on http://{}\n  data     {} ({start})\n  token    {} (send `Authorization: Bearer <token>` to write)\n  window   {} ms\n",
        server.local_addr(),
        args.data.display(),
        server.token_file().display(),
        window.as_millis(),
    );
    if !args.listen.ip().is_loopback() {
        text.push_str(
            "  warning  not a loopback address: reads are open to anyone who can reach it\n",
        );
    }
    print(&text)?;
    let done = server.run_until_signal()?;
    let events = done.shutdown.log.as_ref().map_or(0, |l| l.forwarded);
    let state = done.shutdown.state_file.as_ref().map_or_else(
        || "not saved".to_string(),
        |p| format!("saved to {}", p.display()),
    );
    print(&format!(
        "hotpath serve: stopped in {} ms: {events} events logged, state {state}\n",
        done.stop_took.as_millis()
    ))
}

/// `--etcd-user` with the password read from `--etcd-password-file`.
fn etcd_auth(args: &ServeArgs) -> Result<Option<hotpath_fleet::EtcdAuth>, CliError> {
    let (Some(user), Some(file)) = (&args.etcd_user, &args.etcd_password_file) else {
        return Ok(None);
    };
    let password = hotpath_fleet::Password::from_file(file)
        .map_err(|e| hotpath_server::ServerError::Coordinator(Box::new(e)))?;
    Ok(Some(hotpath_fleet::EtcdAuth {
        user: user.clone(),
        password,
    }))
}

/// The TLS files, if any is given (the fleet checks they pair up).
fn etcd_tls(args: &ServeArgs) -> Option<hotpath_fleet::EtcdTls> {
    let tls = hotpath_fleet::EtcdTls {
        ca: args.etcd_ca.clone(),
        cert: args.etcd_cert.clone(),
        key: args.etcd_key.clone(),
    };
    (tls != hotpath_fleet::EtcdTls::default()).then_some(tls)
}

/// The largest `--max-watchers` and `--max-connections`: beyond it the
/// file descriptors (one per connection) run out before the limit does.
const MAX_COUNT: usize = 65_536;

/// A count of 1 to [`MAX_COUNT`].
fn parse_count(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_COUNT).contains(&n) => Ok(n),
        _ => Err(format!("expected a whole number from 1 to {MAX_COUNT}")),
    }
}

fn print(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(CliError::Stdout)
}

/// Logs to standard error: `HOTPATH_LOG` (`target=level,…`, default
/// `info`) chooses what.
fn init_logging() {
    let spec = std::env::var("HOTPATH_LOG").unwrap_or_else(|_| "info".into());
    let targets: tracing_subscriber::filter::Targets = spec.parse().unwrap_or_else(|_| {
        tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO)
    });
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false),
        )
        .with(targets)
        .try_init();
}
