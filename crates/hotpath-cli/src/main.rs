//! `hotpath`: see `hotpath --help`.

use clap::Parser;
use hotpath_cli::cli::{self, Cli};
use hotpath_cli::CliError;
use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        // `hotpath audit show … | head`: the reader has seen enough.
        Err(CliError::Stdout(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            for line in error.to_string().lines() {
                eprintln!("error: {line}");
            }
            ExitCode::FAILURE
        }
    }
}
