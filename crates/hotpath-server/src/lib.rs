//! # hotpath-server: the governed tuner as an HTTP service
//!
//! `hotpath serve` in a library: replicas of a service report telemetry
//! and read or watch the live configuration over HTTP; operators freeze,
//! resume, roll back and set the baseline; Prometheus scrapes the metrics.
//! Every decision still goes through the one [`SafetyExecutor`] and into
//! the hash-chained audit log, through a [`Host`].
//!
//! ```no_run
//! use hotpath_server::{Server, ServeOptions};
//!
//! let options = ServeOptions::new("tuning.toml", "/var/lib/hotpath"); // 127.0.0.1:7070
//! let server = Server::start(options)?;          // host open, token ready, port bound
//! println!("listening on http://{}, token in {}", server.local_addr(), server.token_file().display());
//! server.run_until_signal()?;                    // SIGTERM/SIGINT: graceful, bounded
//! # Ok::<(), hotpath_server::ServerError>(())
//! ```
//!
//! # Architecture
//!
//! ```text
//!  HTTP (tokio, 2 workers)                     control thread (std)              readers
//!  ───────────────────────                     ────────────────────              ───────
//!  POST /v1/telemetry ─┐  bounded channel      owns Host<C>: engine, executor,
//!  POST /v1/freeze …  ─┼──(try_send; full ⇒───► audit log feed, state file
//!                      │   503 busy)            ├ windows: per generation, by time
//!  reply (oneshot) ◄───┘                        ├ step / operator calls / maintain
//!                                               └ after each: drain subscription ─► metrics, audit ring
//!  GET /v1/config ────────── lock-free ─────────── AtomicConfig::snapshot ◄───────── published by the executor
//!  GET /v1/config/watch ◄─── watch::Receiver ◄──── watch::Sender (latest only) ◄──── new generation seen
//!  GET /v1/events ◄────────── cursor into the feed ◄─ feed ring + watch (latest id) ◄─ audit events, objectives
//!  GET /v1/status, /v1/audit, /metrics ◄────────── ArcSwap<Status>, ring, recorder
//!  GET /v1/knobs, / (the page) ◄────────────────── serialised once / embedded in the binary
//! ```
//!
//! * **One owner.** The [`Host`] is synchronous (`&mut self`) and is the
//!   executor's only way in, so it lives on one dedicated thread
//!   ([`Control`]), which receives [commands](ControlHandle) over a
//!   bounded channel: reported digests, operator calls, and its own timer
//!   (window deadlines, `maintain` every 100 ms). A full channel refuses
//!   at once (503 `busy`), a slow answer times out (503 `timeout`):
//!   handlers never wait on the thread without bound, and the thread
//!   never waits on a handler.
//! * **Reads never queue.** `GET /v1/config` reads the lock-free
//!   [`AtomicConfig`] directly. After every command and tick the thread
//!   publishes what else readers want: each new generation to a
//!   `tokio::sync::watch` channel (serialised once; a watcher that falls
//!   behind skips to the latest and never slows the executor or the other
//!   watchers), the [`Status`] through an `ArcSwap`, the audit events into
//!   a bounded ring, every audit event and every stepped window's
//!   objective into the live feed of `/v1/events` (a bounded ring each
//!   stream reads with its own cursor: see [`FeedKind`]), the metrics.
//! * **A status page** at `GET /`, embedded in the binary and built on
//!   the same endpoints (`/v1/knobs`, `/v1/config/watch`, `/v1/events`,
//!   `/v1/status`), served under a `Content-Security-Policy` of the
//!   server's own origin only ([`CONTENT_SECURITY_POLICY`]).
//! * **Telemetry in windows.** Digests of several replicas are aggregated
//!   per generation over a time window and stepped through the engine as
//!   one digest weighted by samples: the precise rule is in [`window`].
//! * **Metrics derived, not built in.** The core library knows nothing of
//!   them: the thread derives the [metrics](Metrics) from the host's
//!   counters and from an audit subscription, into a recorder private to
//!   the server (no global recorder, no exporter thread).
//! * **Bounded everywhere.** The command channel, the subscription, the
//!   audit ring, the feed, the event streams (64), the connections (256), body and header
//!   sizes, and header, body and handler times: [`Limits`].
//! * **Shutdown, in order** ([`Server::run_until`]): stop accepting; end
//!   every watch stream and turn `/readyz` to 503; let requests finish for
//!   at most [`Limits::shutdown_grace`] (5 s), then drop the connections
//!   left; shut the host down (the open window dropped, rollback only if
//!   asked, the log flushed and closed, the state saved). From the signal
//!   to the exit: the grace period at most, plus the log's flush.
//!
//! # Fleet mode
//!
//! [`Control::start_fleet`] runs the same thread for one instance of a
//! fleet: a [`Coordinator`] (the `hotpath-fleet` crate's, over etcd)
//! says whether it leads; a leader's host publishes each decision fenced
//! on its leadership before readers see it, a standby serves the
//! published configuration and forwards writes to the leader
//! ([`fleet`] has the rules). [`Server::start_with`] builds a server
//! around such a control thread.
//!
//! # Embedding: the same API in another process
//!
//! [`Control::start`] takes any [`Host`] (any clock); its
//! [`ControlHandle`] feeds digests ([`ControlHandle::report_blocking`] from
//! a plain thread, [`ControlHandle::report`] from async code) and operator
//! calls, and [`http::router`] with [`serve`] serves the same API on a
//! listener of the caller's; [`Background`] does both on a thread of its
//! own. `tests/in_process.rs` does exactly that.
//!
//! A process that keeps its host and steps it on its own schedule (as
//! `hotpath demo` does) attaches instead: [`Attached::new`] takes the host
//! by reference, and the owner's loop calls [`Attached::poll`] between its
//! own calls, which carries out the operator calls waiting and publishes
//! exactly what the control thread would (the same code runs);
//! [`Attached::measured`] shows the owner's measurements in the live feed.
//! `tests/page.rs` does that.
//!
//! # Modules
//!
//! `control/` (the thread and its handle, the attached host;
//! `control/fleet.rs` its fleet mode), [`fleet`] (the coordinator's
//! seam), [`window`] (aggregation), [`http`] (router, handlers, auth,
//! limits on bodies, the watch stream, the event stream, a standby's
//! forwards), `feed` (the live feed), `knobs` (their description),
//! `page/` (the status page and its files),
//! `metrics/` (the recorder, and what the thread derives), `status`,
//! `audit` (the ring), `token`, `limits`, `serve` (the accept loop),
//! `run` ([`Server`]). The API is described in `openapi.yaml` beside
//! this crate's `Cargo.toml`, and a Grafana dashboard of the metrics is
//! in `grafana/hotpath.json`.
//!
//! [`SafetyExecutor`]: hotpath::SafetyExecutor
//! [`Host`]: hotpath_host::Host
//! [`AtomicConfig`]: hotpath::AtomicConfig
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod audit;
mod background;
mod control;
mod feed;
pub mod fleet;
pub mod http;
mod knobs;
mod limits;
mod metrics;
mod names;
mod page;
mod run;
mod serve;
mod status;
mod token;
pub mod window;

pub use audit::{AuditPage, EventView, AUDIT_RING_CAPACITY, MAX_AUDIT_PAGE};
pub use background::Background;
pub use control::{
    default_window, Action, Attached, ConfigEvent, Control, ControlError, ControlHandle,
    ControlOptions, FreshView, IngestCounts, OperatorReply, Waker,
};
pub use feed::{FeedKind, ObjectivePoint, FEED_BACKLOG, FEED_CAPACITY};
pub use fleet::{
    Coordinator, Directive, FleetStatus, FreshConfig, LeaderView, Opening, Publication,
    PublishError, Published, ReadBarrier, Role,
};
pub use knobs::KnobView;
pub use limits::Limits;
pub use metrics::Metrics;
pub use page::CONTENT_SECURITY_POLICY;
pub use run::{ServeOptions, ServeReport, Server, ServerError, DEFAULT_LISTEN};
pub use serve::{serve, Served};
pub use status::{
    AuditStatus, BaselineView, Counts, EngineView, KnobValues, ReasonView, SafeModeView, Status,
    TelemetryCounts,
};
pub use token::{Token, TokenError, MIN_TOKEN_LEN, TOKEN_FILE};
pub use window::WindowView;
