//! Fleet mode's seam: what the control thread asks of a [`Coordinator`]
//! (the `hotpath-fleet` crate implements one over etcd), and what it
//! shows of the fleet.
//!
//! In fleet mode ([`Control::start_fleet`](crate::Control::start_fleet))
//! the control thread is the same one thread, but what it owns depends on
//! this instance's [`Role`]:
//!
//! * **Leader**: a [`Host`](hotpath_host::Host) opened by
//!   [`Host::take_over`](hotpath_host::Host::take_over) on the state the
//!   fleet last published. After every command and tick that made the
//!   executor record something, the thread takes a
//!   [checkpoint](hotpath_host::Host::checkpoint) (the log has committed
//!   every event it covers) and hands it to [`Coordinator::publish`],
//!   which writes it fenced on the leadership. **Only then** does the new
//!   configuration become visible to readers, on this instance or any
//!   other: the executor's own live configuration runs ahead of what
//!   readers see by at most one publication, and what a deposed leader
//!   decided after its last publication is never seen by anyone.
//! * **Standby**: a read-only view of the last publication (a host in
//!   memory restored from the published state, rebuilt on each new one),
//!   so the status and the metrics show the fleet's governed state.
//!   Digests and operator calls are refused with
//!   [`ControlError::NotLeader`](crate::ControlError::NotLeader), which the
//!   HTTP side turns into a forward to the leader.
//!
//! What the coordinator says ([`Directive`]) moves the thread between the
//! two: [`Lead`](Directive::Lead) with the published state when this
//! instance wins the election, [`StepDown`](Directive::StepDown) when its
//! leadership is gone. A publication the coordinator cannot make for want
//! of the coordinator ([`PublishError::Unavailable`]) latches safe mode
//! (`CoordinatorLost`, audited locally) and is retried; the latch is
//! cleared only by a later publication that succeeds, which proves the
//! leadership still holds. A publication refused because the leadership is
//! gone ([`PublishError::Deposed`]) steps down at once.

use hotpath_durable::state::GovernedState;
use hotpath_host::Handoff;
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// This instance's part in its fleet.
///
/// ```
/// assert_eq!(serde_json::to_string(&hotpath_server::Role::Standby).unwrap(), "\"standby\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// It runs the engine and the executor and publishes.
    Leader,
    /// It serves the published configuration and forwards writes.
    Standby,
}

/// The fleet's leader, as the coordinator knows it.
///
/// ```
/// let leader = hotpath_server::LeaderView { instance: "a".into(), address: "127.0.0.1:7070".into() };
/// assert_eq!(leader.url("/v1/freeze"), "http://127.0.0.1:7070/v1/freeze");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaderView {
    /// Its instance name.
    pub instance: String,
    /// The address it serves HTTP on (`host:port`).
    pub address: String,
}

impl LeaderView {
    /// The URL of `path` on the leader.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }
}

/// The fleet, as `GET /v1/status` shows it (`fleet`, absent outside fleet
/// mode).
///
/// ```
/// # use hotpath_server::{FleetStatus, Role};
/// fn leading(s: &FleetStatus) -> bool { s.role == Role::Leader }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FleetStatus {
    /// The fleet's name.
    pub fleet: String,
    /// This instance's name.
    pub instance: String,
    /// This instance's role.
    pub role: Role,
    /// The leader, if there is one (this instance when it leads).
    pub leader: Option<LeaderView>,
    /// `connected` while the coordinator answers, `lost` otherwise.
    pub coordinator: &'static str,
    /// The leader's term (a number that rises with every election), if
    /// known.
    pub term: Option<u64>,
    /// The generation the fleet last published, if any.
    pub published_generation: Option<u64>,
    /// The leadership lease's time to live, in seconds: a dead leader is
    /// replaced within it (plus about a second).
    pub lease_ttl_s: u64,
}

/// What a leader publishes: the configuration readers will see and the
/// governed state a successor resumes from.
///
/// ```
/// # use hotpath_server::Publication;
/// fn describe(p: &Publication<'_>) -> String { format!("generation {}", p.generation) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Publication<'a> {
    /// The live generation.
    pub generation: u64,
    /// `{"generation": N, "values": {…}}`.
    pub config_json: &'a str,
    /// The governed state, a checkpoint of the leader's committed log
    /// (its [`checkpoint`](GovernedState::checkpoint) is the head of the
    /// fleet's audit chain).
    pub state: &'a GovernedState,
}

/// What the fleet last published, as a standby receives it.
///
/// ```
/// # use hotpath_server::Published;
/// fn newer(a: &Published, b: &Published) -> bool { a.generation > b.generation }
/// ```
#[derive(Debug, Clone)]
pub struct Published {
    /// The generation.
    pub generation: u64,
    /// `{"generation": N, "values": {…}}`.
    pub config_json: Arc<str>,
    /// The governed state published with it.
    pub state: Arc<GovernedState>,
}

/// Why a publication was not made.
///
/// ```
/// let e = hotpath_server::PublishError::Unavailable("timed out".into());
/// assert!(e.to_string().contains("timed out"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The fenced write was refused: this instance no longer leads.
    #[error("not published: this instance no longer leads the fleet")]
    Deposed,
    /// The coordinator did not answer (or not in time): whether the write
    /// was made is unknown until it answers again.
    #[error("not published: the coordinator is unavailable ({0})")]
    Unavailable(String),
}

/// What the coordinator tells the control thread, asked after every
/// command and tick.
///
/// ```
/// # use hotpath_server::Directive;
/// fn quiet(d: &Directive) -> bool { matches!(d, Directive::Stay) }
/// ```
#[derive(Debug)]
pub enum Directive {
    /// Nothing changed.
    Stay,
    /// This instance won the election: open a leader on this handoff (the
    /// state published when it won, above the last generation).
    Lead(Box<Handoff>),
    /// This instance's leadership is gone (its lease expired or was
    /// lost): shut the leader down and follow.
    StepDown,
}

/// How the control thread opens a host in fleet mode.
///
/// ```
/// # use hotpath_server::Opening;
/// assert_ne!(Opening::Lead, Opening::View);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// A leader: its log in the data directory, a new segment of the
    /// fleet's chain.
    Lead,
    /// A standby's read-only view of a publication, in memory.
    View,
}

/// A fleet's coordinator, as the control thread uses it. Every call is
/// made from the control thread and must return within a bounded time
/// (the coordinator's own timeouts).
pub trait Coordinator: Send + 'static {
    /// The thread's waker: call it when there is news for
    /// [`poll`](Self::poll) or [`take_published`](Self::take_published),
    /// so it acts at once rather than at its next tick (every 100 ms).
    fn wake_with(&mut self, waker: crate::Waker);
    /// What the thread should do now.
    fn poll(&mut self) -> Directive;
    /// A publication newer than the last one taken, if any (a standby
    /// follows it; a leader shows its own if the acknowledgement of the
    /// write was lost but the watch delivered it).
    fn take_published(&mut self) -> Option<Published>;
    /// Writes `publication`, fenced on this instance's leadership: `Ok`
    /// once the fleet holds it.
    ///
    /// # Errors
    ///
    /// [`PublishError::Deposed`] if this instance no longer leads;
    /// [`PublishError::Unavailable`] if the coordinator did not answer in
    /// time.
    fn publish(&mut self, publication: &Publication<'_>) -> Result<(), PublishError>;
    /// The thread has shut its leader down (after
    /// [`Directive::StepDown`], a publication refused as
    /// [`PublishError::Deposed`], or a leader that could not open): give
    /// the leadership up and follow.
    fn stepped_down(&mut self);
    /// `true` while the coordinator answers.
    fn connected(&self) -> bool;
    /// The fleet section of the status.
    fn status(&self) -> FleetStatus;
}

/// The configuration the fleet last published, as a fresh read of the
/// coordinator finds it.
pub type FreshConfig = Option<(u64, Arc<str>)>;

/// A linearizable read of the fleet's published configuration for
/// `GET /v1/config`: resolves to what the coordinator holds, read after
/// the call began (or to `None` if it does not answer in a bounded time;
/// the instance's own view is served then). With it, a client that reads
/// one instance and then another never sees the generation go backwards,
/// whatever each instance's watch has received.
pub trait ReadBarrier: Send + Sync + 'static {
    /// The fresh read.
    fn fresh(&self) -> Pin<Box<dyn Future<Output = FreshConfig> + Send + '_>>;
}
