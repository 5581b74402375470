//! [`CliError`]: everything that can stop a command, each a one-line message.

use std::path::{Path, PathBuf};

/// Why a command failed. Every variant displays as one line (a config with
/// several problems displays one line per problem).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The tuning config is invalid; one [`Diagnostic`](crate::config::Diagnostic)
    /// per line.
    #[error("{0}")]
    Config(#[from] crate::config::ConfigErrors),
    /// A telemetry line is unusable (and `--skip-bad-lines` was not given).
    #[error("{0}")]
    Telemetry(#[from] crate::telemetry::BadLine),
    /// The audit log could not be opened or did not shut down cleanly.
    #[error("{0}")]
    AuditLog(#[from] hotpath_durable::AuditLogError),
    /// An audit log does not verify (`FILE:LINE: what is wrong`), or could
    /// not be read.
    #[error("{0}")]
    Verify(#[from] hotpath_durable::VerifyError),
    /// `hotpath audit` was given a directory without log files.
    #[error("no audit log in {}: it holds no audit.NNNNNNNNNN.jsonl files", path.display())]
    NoAuditLog {
        /// The directory.
        path: PathBuf,
    },
    /// `hotpath audit show --config`: the log's events do not have one
    /// value per parameter of the config.
    #[error("{}:{line}: the event has {values} values but {} declares {params} parameters: not this log's config", file.display(), config.display())]
    ConfigMismatch {
        /// The log file.
        file: PathBuf,
        /// The line of the event.
        line: u64,
        /// Values in the event.
        values: usize,
        /// The config file.
        config: PathBuf,
        /// Parameters it declares.
        params: usize,
    },
    /// The state file could not be read or written.
    #[error("{0}")]
    State(#[from] hotpath_durable::state::StateError),
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An output could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Standard output could not be written.
    #[error("cannot write to standard output: {0}")]
    Stdout(std::io::Error),
    /// The output directory cannot be used.
    #[error("output directory {}: {reason}", path.display())]
    OutputDir {
        /// The directory.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// No output directory was given.
    #[error("no output directory: pass --out DIR or set [output] audit_dir in the config")]
    NoOutputDir,
    /// The engine could not be built from a config that passed validation.
    #[error("cannot start the engine: {0}")]
    Engine(#[from] hotpath::EngineError),
    /// The host (the engine, its audit log and state file) failed: a log or
    /// state file that cannot be used, an engine that cannot start.
    #[error(transparent)]
    Host(#[from] hotpath_host::HostError),
    /// A demo thread failed.
    #[error("demo: {0}")]
    Demo(String),
    /// `hotpath serve` could not start or stop cleanly.
    #[error(transparent)]
    Serve(#[from] hotpath_server::ServerError),
}

impl From<hotpath_config::LoadError> for CliError {
    fn from(e: hotpath_config::LoadError) -> Self {
        match e {
            hotpath_config::LoadError::Read { path, source } => Self::Read { path, source },
            hotpath_config::LoadError::Invalid(errors) => Self::Config(errors),
        }
    }
}

impl CliError {
    /// A read error for `path`.
    pub fn read(path: &Path, source: std::io::Error) -> Self {
        Self::Read {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A write error for `path`.
    pub fn write(path: &Path, source: std::io::Error) -> Self {
        Self::Write {
            path: path.to_path_buf(),
            source,
        }
    }
}
