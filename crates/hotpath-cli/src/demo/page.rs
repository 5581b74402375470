//! The demo's live status page: the page and endpoints of `hotpath serve`
//! (one implementation, [`hotpath_server`]'s), over the demo's own host.
//!
//! The demo keeps its host and steps it on its own schedule, so the page
//! is [`Attached`] rather than given the host: every tick the demo's loop
//! [polls](Page::poll) it, which carries out the operator calls that came
//! in (freeze and resume from the page's buttons, or `curl`) and publishes
//! the decisions, configuration and status; each measurement the demo
//! takes is [shown](Page::measured) on the objective chart. The server
//! binds a free loopback port; the operator token is `OUT/token` (made
//! with mode 0600 on the first run, reused after), never printed.
//! Telemetry over HTTP is refused: the demo measures its own workload.

use crate::CliError;
use hotpath::TelemetryDigest;
use hotpath_host::Host;
use hotpath_server::{Attached, Background, ControlOptions, Limits, Token, TOKEN_FILE};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// The page, served while the demo runs.
pub(super) struct Page {
    attached: Attached,
    server: Background,
    token_file: PathBuf,
}

impl Page {
    /// Attaches to `host` and serves the page on a free loopback port,
    /// with the token in `out`.
    pub(super) fn start(host: &mut Host, out: &Path) -> Result<Self, CliError> {
        let token_file = out.join(TOKEN_FILE);
        let token =
            Token::load_or_generate(&token_file).map_err(hotpath_server::ServerError::from)?;
        let options = ControlOptions {
            accept_telemetry: false,
            ..ControlOptions::default()
        };
        let attached = Attached::new(host, options).map_err(page_error)?;
        let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let server = Background::start(attached.handle(), token, Limits::default(), listen)?;
        Ok(Self {
            attached,
            server,
            token_file,
        })
    }

    /// The line the demo prints before it starts.
    pub(super) fn banner(&self) -> String {
        format!(
            "status page: http://{}/ (freeze and resume ask for the token in {})",
            self.server.local_addr(),
            self.token_file.display()
        )
    }

    /// Carries out the operator calls waiting and publishes the host's
    /// state (call every tick).
    pub(super) fn poll(&mut self, host: &mut Host) -> Result<(), CliError> {
        self.attached.poll(host).map_err(page_error)
    }

    /// Shows a measurement on the objective chart.
    pub(super) fn measured(
        &mut self,
        host: &mut Host,
        digest: &TelemetryDigest,
    ) -> Result<(), CliError> {
        self.attached.measured(host, digest).map_err(page_error)
    }
}

fn page_error(e: hotpath_server::ControlError) -> CliError {
    CliError::Demo(format!("status page: {e}"))
}
