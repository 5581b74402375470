//! The control thread in fleet mode: leading, following, publishing,
//! stepping down (see the [`fleet` module](crate::fleet) for the rules).
//!
//! The loop ([`Worker::run`]) owns the host and this [`FleetSide`]; after
//! every command and tick it lends the worker and the host to
//! [`FleetSide::step`], which follows the coordinator. When this instance
//! takes the lead, steps down or follows a new publication, the side
//! opens the new host and puts it in the old one's place through the
//! `&mut` it was lent: the worker keeps everything else (the feed, the
//! audit ring, the metrics, the watchers), so readers and the status page
//! carry on across a change of role.

use super::worker::Worker;
use super::{config_json, ControlError};
use crate::fleet::{
    Coordinator, Directive, FleetStatus, Opening, Publication, PublishError, Published,
};
use hotpath::{Clock, ConfigSnapshot};
use hotpath_durable::state::GovernedState;
use hotpath_host::{Handoff, Host, HostError, ShutdownPolicy};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The configuration of a publication: its state's live values.
fn snapshot_of(space: &hotpath::ParamSpace, published: &Published) -> Option<ConfigSnapshot> {
    let live = &published.state.executor.live;
    (live.generation == published.generation && live.params.len() == space.len())
        .then(|| live.clone())
}

/// How long a leader that could not reach its coordinator waits before
/// it tries to publish again.
const RETRY_AFTER: Duration = Duration::from_millis(250);

/// Opens the hosts of a fleet's instance: a leader's, or a view of a
/// publication.
pub(crate) type Open<C> = Box<dyn FnMut(Opening, Handoff) -> Result<Host<C>, HostError> + Send>;

/// The fleet's side of the control thread.
pub(crate) struct FleetSide<C: Clock> {
    open: Open<C>,
    coordinator: Box<dyn Coordinator>,
    leading: bool,
    /// Events the leader's host had logged at its last publication.
    published_events: Option<u64>,
    /// The last state known published (this leader's, or followed).
    last_state: Option<Arc<GovernedState>>,
    /// `CoordinatorLost` is latched.
    lost: bool,
    retry_at: Option<Instant>,
}

impl<C: Clock> FleetSide<C> {
    pub(crate) fn new(open: Open<C>, coordinator: Box<dyn Coordinator>) -> Self {
        Self {
            open,
            coordinator,
            leading: false,
            published_events: None,
            last_state: None,
            lost: false,
            retry_at: None,
        }
    }

    fn status(&self) -> FleetStatus {
        self.coordinator.status()
    }

    /// On a standby: the refusal of a digest or an operator call (the
    /// HTTP side forwards it to the leader).
    pub(super) fn not_leader(&self) -> Option<ControlError> {
        (!self.leading).then(|| ControlError::NotLeader {
            leader: self.status().leader,
        })
    }

    /// After every command and tick: follow the coordinator's directive,
    /// publish what the leader decided, follow what the fleet published;
    /// then the status is published again if the host or the fleet
    /// changed.
    pub(super) fn step(&mut self, w: &mut Worker, host: &mut Host<C>) {
        let replaced = match (self.leading, self.coordinator.poll()) {
            (true, Directive::StepDown) => {
                self.step_down(w, host, "the leadership lease is gone");
                true
            }
            (true, _) => {
                self.lead_on(w, host);
                false
            }
            (false, Directive::Lead(handoff)) => self.lead(w, host, *handoff),
            (false, _) => match self.coordinator.take_published() {
                Some(published) => self.follow(w, host, published),
                None => false,
            },
        };
        self.show_fleet(w, host, replaced);
    }

    /// The status shows the fleet as it is now: published again if that
    /// changed, or if `replaced` (the host).
    pub(super) fn show_fleet(&self, w: &mut Worker, host: &mut Host<C>, replaced: bool) {
        if w.set_fleet(self.status()) || replaced {
            w.publish_status(host);
        }
    }

    /// A leader's tick: safe mode while the coordinator is unreachable,
    /// and a publication when the host logged something since the last.
    fn lead_on(&mut self, w: &mut Worker, host: &mut Host<C>) {
        // Its own publication seen on the coordinator's watch: shown even
        // if the acknowledgement was lost, so no standby is ahead of it.
        let own = self.coordinator.take_published();
        if let Some((published, snapshot)) =
            own.and_then(|p| snapshot_of(host.space(), &p).map(|s| (p, s)))
        {
            w.show(Arc::new(snapshot), &published.config_json);
        }
        if !self.coordinator.connected() && !self.lost {
            self.lost = true;
            if let Err(e) = host.coordinator_lost() {
                w.on_error(&e);
            }
            w.sync(host);
        }
        let changed = self.published_events != Some(host.logged_events());
        let due = self.retry_at.is_none_or(|at| Instant::now() >= at);
        if changed && due {
            self.publish_now(w, host);
        }
    }

    /// The leader at a stop: what it decided since its last publication
    /// is published if the fleet still takes it.
    pub(super) fn finish(&mut self, w: &mut Worker, host: &mut Host<C>) {
        if self.leading {
            self.publish_now(w, host);
        }
    }

    /// Gives the leadership up when the thread stops (after the host's
    /// shutdown: nothing it decides is published any more).
    pub(super) fn resign(&mut self) {
        if self.leading {
            self.leading = false;
            self.coordinator.stepped_down();
        }
    }

    /// Takes a checkpoint and publishes it; on success the configuration
    /// becomes visible.
    fn publish_now(&mut self, w: &mut Worker, host: &mut Host<C>) {
        let state = match host.checkpoint() {
            Ok(state) => state,
            Err(e) => {
                w.on_error(&e);
                return;
            }
        };
        let snapshot = Arc::new(host.executor().snapshot());
        let json = config_json(host.space(), &snapshot);
        let events = host.logged_events();
        let publication = Publication {
            generation: snapshot.generation,
            config_json: &json,
            state: &state,
        };
        match self.coordinator.publish(&publication) {
            Ok(()) => {
                self.published_events = Some(events);
                self.retry_at = None;
                self.last_state = Some(Arc::new(state));
                let regained = std::mem::take(&mut self.lost);
                w.show(snapshot, &json);
                if regained {
                    tracing::info!("fleet: publishing again; leaving safe mode (CoordinatorLost)");
                    if let Err(e) = host.coordinator_regained() {
                        w.on_error(&e);
                    }
                    w.sync(host);
                }
            }
            Err(PublishError::Deposed) => self.step_down(w, host, "a publication was refused"),
            Err(PublishError::Unavailable(why)) => {
                self.retry_at = Some(Instant::now() + RETRY_AFTER);
                if !self.lost {
                    tracing::warn!(%why, "fleet: cannot publish; safe mode until the coordinator answers");
                    self.lost = true;
                    if let Err(e) = host.coordinator_lost() {
                        w.on_error(&e);
                    }
                    w.sync(host);
                }
            }
        }
    }

    /// This instance won the election: a leader on the handoff replaces
    /// the view, and its first publication goes out at once. `true` if it
    /// did.
    fn lead(&mut self, w: &mut Worker, host: &mut Host<C>, handoff: Handoff) -> bool {
        match (self.open)(Opening::Lead, handoff) {
            Ok(leader) => {
                self.leading = true;
                self.published_events = None;
                self.lost = false;
                self.retry_at = None;
                replace(w, host, leader, false);
                w.record_opening(host);
                tracing::info!(generation = host.executor().generation(), "fleet: leading");
                self.publish_now(w, host);
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "fleet: won the election but cannot open the leader; giving it up");
                self.coordinator.stepped_down();
                false
            }
        }
    }

    /// The leadership is gone: the leader is shut down (its log closed;
    /// nothing it decided after its last publication was ever visible)
    /// and a view of the last known publication replaces it.
    fn step_down(&mut self, w: &mut Worker, host: &mut Host<C>, why: &str) {
        tracing::warn!(why, "fleet: stepping down");
        self.leading = false;
        self.lost = false;
        let handoff = Handoff {
            state: self.last_state.as_deref().cloned(),
            above_generation: None,
        };
        let view = (self.open)(Opening::View, handoff).or_else(|e| {
            tracing::error!(error = %e, "fleet: cannot view the last publication");
            (self.open)(
                Opening::View,
                Handoff {
                    state: None,
                    above_generation: None,
                },
            )
        });
        match view {
            Ok(view) => replace(w, host, view, true),
            Err(e) => {
                tracing::error!(error = %e, "fleet: cannot open a view; the leader stays closed to writes")
            }
        }
        self.coordinator.stepped_down();
    }

    /// A standby follows a new publication: the configuration becomes
    /// visible, and a view of its state replaces the last. `true` if it
    /// did.
    fn follow(&mut self, w: &mut Worker, host: &mut Host<C>, published: Published) -> bool {
        self.last_state = Some(Arc::clone(&published.state));
        let handoff = Handoff {
            state: Some((*published.state).clone()),
            above_generation: None,
        };
        match (self.open)(Opening::View, handoff) {
            Ok(view) => {
                replace(w, host, view, false);
                let snapshot = Arc::new(host.executor().snapshot());
                w.show(snapshot, &published.config_json);
                true
            }
            Err(e) => {
                tracing::error!(error = %e, generation = published.generation, "fleet: cannot view a publication");
                false
            }
        }
    }
}

/// Puts `new` in `host`'s place (the worker subscribes to it and opens an
/// empty window); the old one is shut down if `shut` (a leader: its log
/// closed), else dropped (a view in memory).
fn replace<C: Clock>(w: &mut Worker, host: &mut Host<C>, new: Host<C>, shut: bool) {
    let old = std::mem::replace(host, new);
    if shut {
        let policy = ShutdownPolicy {
            rollback_to_baseline: false,
            save_state: false,
        };
        if let Err(e) = old.shutdown(policy) {
            tracing::error!(error = %e, "fleet: the old leader did not shut down cleanly");
        }
    }
    w.host_replaced(host);
}
