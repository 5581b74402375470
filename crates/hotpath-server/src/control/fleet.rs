//! The control thread in fleet mode: leading, following, publishing,
//! stepping down (see the [`fleet` module](crate::fleet) for the rules).

use super::worker::Worker;
use super::{config_json, ConfigEvent, ControlError, Visible};
use crate::fleet::{
    Coordinator, Directive, FleetStatus, Opening, Publication, PublishError, Published, ReadBarrier,
};
use crate::window::Windows;
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
    /// Handed to the readers when the thread starts.
    pub(super) barrier: Option<Arc<dyn ReadBarrier>>,
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
    pub(crate) fn new(
        open: Open<C>,
        coordinator: Box<dyn Coordinator>,
        barrier: Option<Arc<dyn ReadBarrier>>,
    ) -> Self {
        Self {
            open,
            coordinator,
            barrier,
            leading: false,
            published_events: None,
            last_state: None,
            lost: false,
            retry_at: None,
        }
    }

    pub(crate) fn status(&self) -> FleetStatus {
        self.coordinator.status()
    }

    /// Gives the leadership up when the thread stops.
    pub(crate) fn resign(&mut self) {
        if self.leading {
            self.leading = false;
            self.coordinator.stepped_down();
        }
    }
}

impl<C: Clock> Worker<C> {
    /// In fleet mode on a standby: the refusal of a digest or an operator
    /// call (the HTTP side forwards it to the leader).
    pub(super) fn not_leader(&self) -> Option<ControlError> {
        let side = self.fleet.as_ref().filter(|side| !side.leading)?;
        Some(ControlError::NotLeader {
            leader: side.coordinator.status().leader,
        })
    }

    /// After every command and tick in fleet mode: follow the
    /// coordinator's directive, publish what the leader decided, follow
    /// what the fleet published.
    pub(super) fn fleet_step(&mut self) {
        let Some(side) = self.fleet.as_mut() else {
            return;
        };
        let directive = side.coordinator.poll();
        if side.leading {
            if matches!(directive, Directive::StepDown) {
                self.step_down("the leadership lease is gone");
                return;
            }
            self.lead_on();
            return;
        }
        if let Directive::Lead(handoff) = directive {
            self.lead(*handoff);
            return;
        }
        if let Some(published) = side.coordinator.take_published() {
            self.follow(published);
        }
    }

    /// A leader's tick: safe mode while the coordinator is unreachable,
    /// and a publication when the host logged something since the last.
    fn lead_on(&mut self) {
        let Some(side) = self.fleet.as_mut() else {
            return;
        };
        // Its own publication seen on the coordinator's watch: shown even
        // if the acknowledgement was lost, so no standby is ahead of it.
        if let Some(published) = side.coordinator.take_published() {
            let snapshot = match self.shared.published.as_ref() {
                Some(view) if published.generation > view.load().event.generation => {
                    snapshot_of(self.host.space(), &published)
                }
                _ => None,
            };
            if let Some(snapshot) = snapshot {
                self.show(Arc::new(snapshot), published.config_json);
            }
        }
        let Some(side) = self.fleet.as_mut() else {
            return;
        };
        if !side.coordinator.connected() && !side.lost {
            side.lost = true;
            if let Err(e) = self.host.coordinator_lost() {
                self.on_error(&e);
            }
            self.sync();
        }
        let Some(side) = self.fleet.as_ref() else {
            return;
        };
        let changed = side.published_events != Some(self.host.logged_events());
        let due = side.retry_at.is_none_or(|at| Instant::now() >= at);
        if changed && due {
            self.publish_now();
        }
    }

    /// The leader at a stop: what it decided since its last publication
    /// is published if the fleet still takes it.
    pub(super) fn fleet_finish(&mut self) {
        let leading = self.fleet.as_ref().is_some_and(|side| side.leading);
        if leading {
            self.publish_now();
        }
    }

    /// Takes a checkpoint and publishes it; on success the configuration
    /// becomes visible.
    fn publish_now(&mut self) {
        let state = match self.host.checkpoint() {
            Ok(state) => state,
            Err(e) => {
                self.on_error(&e);
                return;
            }
        };
        let snapshot = Arc::new(self.host.executor().snapshot());
        let json: Arc<str> = config_json(self.host.space(), &snapshot).into();
        let events = self.host.logged_events();
        let Some(side) = self.fleet.as_mut() else {
            return;
        };
        let publication = Publication {
            generation: snapshot.generation,
            config_json: &json,
            state: &state,
        };
        match side.coordinator.publish(&publication) {
            Ok(()) => {
                side.published_events = Some(events);
                side.retry_at = None;
                side.last_state = Some(Arc::new(state));
                let regained = std::mem::take(&mut side.lost);
                self.show(snapshot, json);
                if regained {
                    tracing::info!("fleet: publishing again; leaving safe mode (CoordinatorLost)");
                    if let Err(e) = self.host.coordinator_regained() {
                        self.on_error(&e);
                    }
                    self.sync();
                }
            }
            Err(PublishError::Deposed) => self.step_down("a publication was refused"),
            Err(PublishError::Unavailable(why)) => {
                side.retry_at = Some(Instant::now() + RETRY_AFTER);
                if !side.lost {
                    tracing::warn!(%why, "fleet: cannot publish; safe mode until the coordinator answers");
                    side.lost = true;
                    if let Err(e) = self.host.coordinator_lost() {
                        self.on_error(&e);
                    }
                    self.sync();
                }
            }
        }
    }

    /// Makes a published configuration visible to readers, if it is newer
    /// than what they see.
    fn show(&mut self, snapshot: Arc<ConfigSnapshot>, json: Arc<str>) {
        let Some(published) = &self.shared.published else {
            return;
        };
        if snapshot.generation <= published.load().event.generation {
            return;
        }
        let event = Arc::new(ConfigEvent {
            generation: snapshot.generation,
            json,
        });
        published.store(Arc::new(Visible {
            snapshot,
            event: Arc::clone(&event),
        }));
        self.watch.send_replace(event);
    }

    /// This instance won the election: a leader on the handoff replaces
    /// the view, and its first publication goes out at once.
    fn lead(&mut self, handoff: Handoff) {
        let Some(side) = self.fleet.as_mut() else {
            return;
        };
        match (side.open)(Opening::Lead, handoff) {
            Ok(host) => {
                side.leading = true;
                side.published_events = None;
                side.lost = false;
                side.retry_at = None;
                self.replace_host(host, false);
                tracing::info!(
                    generation = self.host.executor().generation(),
                    "fleet: leading"
                );
                self.publish_now();
            }
            Err(e) => {
                tracing::error!(error = %e, "fleet: won the election but cannot open the leader; giving it up");
                side.coordinator.stepped_down();
            }
        }
    }

    /// The leadership is gone: the leader is shut down (its log closed;
    /// nothing it decided after its last publication was ever visible)
    /// and a view of the last known publication replaces it.
    fn step_down(&mut self, why: &str) {
        let Some(side) = self.fleet.as_mut() else {
            return;
        };
        tracing::warn!(why, "fleet: stepping down");
        side.leading = false;
        side.lost = false;
        let handoff = Handoff {
            state: side.last_state.as_deref().cloned(),
            above_generation: None,
        };
        let view = (side.open)(Opening::View, handoff).or_else(|e| {
            tracing::error!(error = %e, "fleet: cannot view the last publication");
            (side.open)(
                Opening::View,
                Handoff {
                    state: None,
                    above_generation: None,
                },
            )
        });
        match view {
            Ok(view) => self.replace_host(view, true),
            Err(e) => {
                tracing::error!(error = %e, "fleet: cannot open a view; the leader stays closed to writes")
            }
        }
        if let Some(side) = self.fleet.as_mut() {
            side.coordinator.stepped_down();
        }
        self.publish_status();
    }

    /// A standby follows a new publication: the configuration becomes
    /// visible, and a view of its state replaces the last.
    fn follow(&mut self, published: Published) {
        let Some(side) = self.fleet.as_mut() else {
            return;
        };
        side.last_state = Some(Arc::clone(&published.state));
        let handoff = Handoff {
            state: Some((*published.state).clone()),
            above_generation: None,
        };
        match (side.open)(Opening::View, handoff) {
            Ok(view) => {
                self.replace_host(view, false);
                let snapshot = Arc::new(self.host.executor().snapshot());
                self.show(snapshot, published.config_json);
            }
            Err(e) => {
                tracing::error!(error = %e, generation = published.generation, "fleet: cannot view a publication")
            }
        }
        self.publish_status();
    }

    /// Puts `host` in place (a new subscription, an empty window); the
    /// old one is shut down if `shut` (a leader: its log closed), else
    /// dropped (a view in memory).
    fn replace_host(&mut self, host: Host<C>, shut: bool) {
        let old = std::mem::replace(&mut self.host, host);
        if shut {
            let policy = ShutdownPolicy {
                rollback_to_baseline: false,
                save_state: false,
            };
            if let Err(e) = old.shutdown(policy) {
                tracing::error!(error = %e, "fleet: the old leader did not shut down cleanly");
            }
        }
        match self.host.subscribe(self.subscription_capacity) {
            Ok(events) => self.events = events,
            Err(e) => self.on_error(&e),
        }
        self.windows = Windows::new(self.windows.length_us());
    }
}
