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
    /// An audit log line is unusable.
    #[error("{file}:{line}: {message}")]
    AuditLine {
        /// The audit log.
        file: String,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
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
    /// A demo thread failed.
    #[error("demo: {0}")]
    Demo(String),
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
