//! The `hotpath` command-line tool: a live tuning demo, deterministic
//! offline replay of recorded telemetry, config checking and audit tools.
//!
//! The binary is a thin wrapper over [`cli::run`]; the modules are public so
//! the formats' parsers can be tested directly.
//!
//! * [`config`]: the tuning config (TOML) and its validation (the
//!   `hotpath-config` crate).
//! * [`telemetry`]: recorded telemetry (JSON Lines; `hotpath-config`'s).
//! * [`replay`]: the engine run offline over recorded telemetry.
//! * [`named`]: knobs and their typed values as the reports show them.
//! * [`demo`]: a live, in-process workload tuned by the engine.
//! * [`audit_log`]: a run's durable, hash-chained audit log
//!   (`hotpath_durable`) and reading one back.
//! * [`state`]: the governed state file (`hotpath_durable`).
//! * [`serve`]: `hotpath serve`, the tuner as an HTTP service
//!   (`hotpath_server`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit_log;
pub mod cli;
pub mod demo;
mod error;
pub mod named;
pub mod output;
pub mod replay;
pub mod report;
pub mod serve;
pub mod state;

pub use error::CliError;
pub use hotpath_config as config;
pub use hotpath_config::telemetry;
