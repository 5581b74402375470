//! [`Server`]: `hotpath serve` as a library call: open the host in the
//! data directory, read or make the token, bind, serve until a signal,
//! shut down in order.

use crate::control::{Control, ControlError, ControlHandle, ControlOptions};
use crate::http::{router, AppState};
use crate::limits::Limits;
use crate::serve::serve;
use crate::token::{Token, TokenError, TOKEN_FILE};
use hotpath::SystemClock;
use hotpath_config::{LoadError, Override};
use hotpath_host::{Host, HostError, HostOptions, OpenReport, ShutdownPolicy, ShutdownReport};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The address `hotpath serve` listens on by default: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7070";

/// Threads of the runtime that serves HTTP.
const HTTP_WORKERS: usize = 2;

/// The runtime that serves HTTP: [`HTTP_WORKERS`] threads, timers and
/// sockets.
pub(crate) fn http_runtime() -> Result<tokio::runtime::Runtime, ServerError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(HTTP_WORKERS)
        .thread_name("hotpath-http")
        .enable_all()
        .build()
        .map_err(ServerError::Runtime)
}

/// What [`Server::start`] needs.
///
/// ```
/// use hotpath_server::ServeOptions;
///
/// let options = ServeOptions::new("tuning.toml", "/var/lib/hotpath");
/// assert!(options.listen.ip().is_loopback());
/// assert!(!options.rollback_on_exit);
/// ```
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The tuning config (TOML).
    pub config: PathBuf,
    /// `--set` overrides on top of it.
    pub overrides: Vec<Override>,
    /// The data directory: `audit/`, `state.json` and (without
    /// `token_file`) `token`.
    pub data: PathBuf,
    /// Where to listen.
    pub listen: SocketAddr,
    /// A file holding the token; `None`: `DATA/token`, made if missing.
    pub token_file: Option<PathBuf>,
    /// Roll back to the baseline on shutdown (off by default).
    pub rollback_on_exit: bool,
    /// The HTTP side's bounds.
    pub limits: Limits,
    /// The control thread's settings.
    pub control: ControlOptions,
}

impl ServeOptions {
    /// The defaults for `config` and `data`: [`DEFAULT_LISTEN`], the
    /// generated token, no rollback on exit.
    pub fn new(config: impl Into<PathBuf>, data: impl Into<PathBuf>) -> Self {
        Self {
            config: config.into(),
            overrides: Vec::new(),
            data: data.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            token_file: None,
            rollback_on_exit: false,
            limits: Limits::default(),
            control: ControlOptions::default(),
        }
    }
}

/// Why the server could not start or stop cleanly.
///
/// ```
/// use hotpath_server::{Server, ServeOptions, ServerError};
///
/// let e = Server::start(ServeOptions::new("/nonexistent/tuning.toml", "/tmp/x")).unwrap_err();
/// assert!(matches!(e, ServerError::Config(_)));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The tuning config could not be read or is invalid.
    #[error(transparent)]
    Config(#[from] LoadError),
    /// The host could not open (a locked or damaged log, a bad state file).
    #[error(transparent)]
    Host(#[from] HostError),
    /// The token could not be read or made.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The async runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    /// The control thread failed to start or to shut the host down.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// A fleet's coordinator could not be reached or set up.
    #[error("fleet coordinator: {0}")]
    Coordinator(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What a served run did, once stopped.
///
/// ```
/// # use hotpath_server::ServeReport;
/// fn saved(r: &ServeReport) -> bool { r.shutdown.state_file.is_some() }
/// ```
#[derive(Debug)]
pub struct ServeReport {
    /// The host's shutdown: the log closed, the state saved.
    pub shutdown: ShutdownReport,
    /// Connections dropped at the end of the grace period.
    pub dropped_connections: usize,
    /// From the stop signal to the host shut down.
    pub stop_took: Duration,
}

/// A started server: the host open, the token ready, the address bound,
/// not yet serving.
///
/// ```no_run
/// use hotpath_server::{Server, ServeOptions};
///
/// let server = Server::start(ServeOptions::new("tuning.toml", "/var/lib/hotpath"))?;
/// println!("listening on http://{}", server.local_addr());
/// println!("token file: {}", server.token_file().display());
/// let report = server.run_until_signal()?;   // SIGTERM or SIGINT
/// println!("{} events logged", report.shutdown.log.map_or(0, |l| l.forwarded));
/// # Ok::<(), hotpath_server::ServerError>(())
/// ```
#[derive(Debug)]
pub struct Server {
    runtime: tokio::runtime::Runtime,
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
    control: Control,
    token: Token,
    token_file: PathBuf,
    open_report: OpenReport,
    options: ServeOptions,
}

impl Server {
    /// Loads the config, opens the host in the data directory (resuming
    /// its state if there is one), reads or makes the token, starts the
    /// control thread and binds the address.
    ///
    /// # Errors
    ///
    /// [`ServerError`], each naming what failed.
    pub fn start(options: ServeOptions) -> Result<Self, ServerError> {
        let data = options.data.clone();
        let control = options.control.clone();
        Self::start_with(options, move |config, _, _| {
            let host = Host::from_config(config, HostOptions::in_dir(&data), SystemClock::new())?;
            let report = host.open_report().clone();
            Ok((Control::start(host, control)?, report))
        })
    }

    /// [`start`](Self::start) with a control thread of the caller's
    /// making: `make` gets the loaded config, the server's async runtime
    /// and the bound address, and returns the started [`Control`] with
    /// what opening its host found. A fleet's instance starts this way
    /// (`hotpath-fleet`, on [`Control::start_fleet`]).
    ///
    /// ```no_run
    /// use hotpath_host::{Host, HostOptions};
    /// use hotpath_server::{Control, ControlOptions, Server, ServeOptions};
    ///
    /// let server = Server::start_with(ServeOptions::new("tuning.toml", "/var/lib/hotpath"), |config, _, _| {
    ///     let host = Host::from_config(config, HostOptions::in_memory(), hotpath::SystemClock::new())?;
    ///     let report = host.open_report().clone();
    ///     Ok((Control::start(host, ControlOptions::default())?, report))
    /// })?;
    /// # Ok::<(), hotpath_server::ServerError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start), and `make`'s.
    pub fn start_with<F>(options: ServeOptions, make: F) -> Result<Self, ServerError>
    where
        F: FnOnce(
            &hotpath_config::TuningConfig,
            &tokio::runtime::Handle,
            SocketAddr,
        ) -> Result<(Control, OpenReport), ServerError>,
    {
        let config = hotpath_config::load(&options.config, &options.overrides)?;
        let token_file = match &options.token_file {
            Some(path) => path.clone(),
            None => options.data.join(TOKEN_FILE),
        };
        if options.token_file.is_none() {
            std::fs::create_dir_all(&options.data).map_err(|source| TokenError::Io {
                path: options.data.clone(),
                source,
            })?;
        }
        let token = match &options.token_file {
            Some(path) => Token::from_file(path)?,
            None => Token::load_or_generate(&token_file)?,
        };
        let runtime = http_runtime()?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(options.listen))
            .map_err(|source| ServerError::Bind {
                addr: options.listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: options.listen,
            source,
        })?;
        let (control, open_report) = make(&config, runtime.handle(), local_addr)?;
        Ok(Self {
            token,
            runtime,
            listener,
            local_addr,
            control,
            token_file,
            open_report,
            options,
        })
    }

    /// The address bound (with the port the system chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The file the token is in.
    pub fn token_file(&self) -> &Path {
        &self.token_file
    }

    /// What opening the host found (a restored state, a recovered log).
    pub fn open_report(&self) -> &OpenReport {
        &self.open_report
    }

    /// The control thread's handle.
    pub fn handle(&self) -> ControlHandle {
        self.control.handle()
    }

    /// [`run_until`](Self::run_until) SIGTERM or SIGINT.
    ///
    /// # Errors
    ///
    /// As [`run_until`](Self::run_until).
    pub fn run_until_signal(self) -> Result<ServeReport, ServerError> {
        self.run_until(stop_signal())
    }

    /// Serves until `stop` resolves, then shuts down in order: stop
    /// accepting, close the watch streams, let requests finish for at most
    /// [`Limits::shutdown_grace`], shut the host down (the open window
    /// dropped, rollback if asked, the log flushed and closed, the state
    /// saved).
    ///
    /// # Errors
    ///
    /// [`ServerError::Control`] if the host did not shut down cleanly.
    pub fn run_until(self, stop: impl Future<Output = ()>) -> Result<ServeReport, ServerError> {
        let Self {
            runtime,
            listener,
            control,
            token,
            options,
            ..
        } = self;
        let (stopping, watching) = tokio::sync::watch::channel(false);
        let state = AppState::new(control.handle(), token, options.limits.clone(), watching);
        let app = router(state);
        let stopped_at = std::sync::Arc::new(std::sync::Mutex::new(None));
        let mark = std::sync::Arc::clone(&stopped_at);
        let stop = async move {
            stop.await;
            if let Ok(mut at) = mark.lock() {
                *at = Some(Instant::now());
            }
        };
        let served = runtime
            .block_on(serve(listener, app, &options.limits, stopping, stop))
            .map_err(ServerError::Runtime)?;
        let policy = ShutdownPolicy {
            rollback_to_baseline: options.rollback_on_exit,
            save_state: true,
        };
        let shutdown = control.shutdown(policy)?;
        runtime.shutdown_timeout(Duration::from_millis(500));
        let began = stopped_at
            .lock()
            .ok()
            .and_then(|at| *at)
            .unwrap_or_else(Instant::now);
        Ok(ServeReport {
            shutdown,
            dropped_connections: served.dropped,
            stop_took: began.elapsed(),
        })
    }
}

/// Resolves at the first SIGTERM or SIGINT.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = tokio::signal::ctrl_c() => {},
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; stopping on SIGINT only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
