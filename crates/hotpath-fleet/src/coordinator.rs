//! [`EtcdCoordinator`]: the control thread's side of the fleet, over the
//! etcd session.

use crate::barrier::EtcdBarrier;
use crate::keys::{LeaderRecord, StateRecord};
use crate::security::Security;
use crate::session::{self, within, Shared};
use crate::{FleetError, FleetOptions};
use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use hotpath_durable::state::GovernedState;
use hotpath_server::{
    Coordinator, Directive, FleetStatus, LeaderView, Publication, PublishError, Published, Role,
};
use std::sync::Arc;
use std::time::Instant;
use tokio::runtime::Handle;

/// A fleet's coordinator over etcd (see the [crate docs](crate) for the
/// keys, the election and the fencing). Its session runs on the server's
/// runtime; the control thread calls it (blocking, each call bounded by
/// [`FleetOptions::request_timeout`]).
///
/// ```no_run
/// use hotpath_fleet::{EtcdCoordinator, FleetOptions};
/// use hotpath_server::Coordinator;
///
/// let runtime = tokio::runtime::Runtime::new()?;
/// let options = FleetOptions::new("checkout", vec!["http://127.0.0.1:2379".into()]);
/// let coordinator = EtcdCoordinator::connect(runtime.handle().clone(), options, "127.0.0.1:7070".into())?;
/// println!("{:?}", coordinator.status().leader);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct EtcdCoordinator {
    shared: Arc<Shared>,
    runtime: Handle,
    /// The control thread leads (it took [`Directive::Lead`]).
    leading: bool,
    /// The generation of the `config` this term last wrote: a publication
    /// of the same generation (new audit events, no new configuration)
    /// writes the `state` alone.
    config_written: Option<u64>,
}

impl std::fmt::Debug for EtcdCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdCoordinator")
            .field("fleet", &self.shared.options.name)
            .field("instance", &self.shared.me.instance)
            .field("leading", &self.leading)
            .finish()
    }
}

impl EtcdCoordinator {
    /// Connects to etcd, reads the fleet's keys (so the first view is its
    /// last publication) and starts the session on `runtime`. `address`
    /// is where this instance serves HTTP (advertised to the others unless
    /// [`FleetOptions::advertise`] says otherwise). Call it from outside
    /// the runtime (it waits for the first read).
    ///
    /// # Errors
    ///
    /// [`FleetError::Options`]; [`FleetError::File`] for a TLS file that
    /// cannot be read; [`FleetError::Auth`] if etcd refuses the login (or
    /// wants one); [`FleetError::OverTls`] (with TLS on),
    /// [`FleetError::Etcd`] or [`FleetError::Timeout`] if etcd cannot be
    /// reached and read.
    pub fn connect(
        runtime: Handle,
        options: FleetOptions,
        address: String,
    ) -> Result<Self, FleetError> {
        options.validate()?;
        let security = Security::load(&options)?;
        let advertised = options.advertise.clone().unwrap_or(address);
        let me = LeaderRecord {
            instance: options
                .instance
                .clone()
                .unwrap_or_else(|| advertised.clone()),
            address: advertised,
        };
        let shared = Arc::new(Shared::new(options, security, me));
        let first = runtime
            .block_on(async {
                let mut client = session::connect(&shared).await?;
                let revision = session::read_all(&shared, &mut client).await?;
                Ok::<_, FleetError>((client, revision))
            })
            .map_err(|e| shared.security.explain(e))?;
        runtime.spawn(session::run(Arc::clone(&shared), Some(first)));
        Ok(Self {
            shared,
            runtime,
            leading: false,
            config_written: None,
        })
    }

    /// The linearizable read of the published configuration for
    /// `GET /v1/config`.
    pub fn barrier(&self) -> EtcdBarrier {
        EtcdBarrier::new(Arc::clone(&self.shared))
    }

    /// The generation the fleet last published, as last read.
    pub fn published_generation(&self) -> Option<u64> {
        self.shared.known().published_generation
    }

    /// The governed state the fleet last published, as last read.
    pub fn published_state(&self) -> Option<GovernedState> {
        self.shared.known().published_state.as_deref().cloned()
    }

    fn deposed(&mut self) -> PublishError {
        self.shared.known().lost_term = true;
        PublishError::Deposed
    }
}

impl Coordinator for EtcdCoordinator {
    fn wake_with(&mut self, waker: hotpath_server::Waker) {
        *self
            .shared
            .waker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(waker);
    }

    fn poll(&mut self) -> Directive {
        let mut known = self.shared.known();
        if self.leading {
            let expired = known.lease.is_none_or(|(_, until)| Instant::now() >= until);
            if known.lost_term || known.term.is_none() || expired {
                return Directive::StepDown;
            }
            return Directive::Stay;
        }
        match known.won.take() {
            Some(handoff) => {
                self.leading = true;
                self.config_written = None;
                Directive::Lead(Box::new(handoff))
            }
            None => Directive::Stay,
        }
    }

    fn take_published(&mut self) -> Option<Published> {
        self.shared.known().published.take()
    }

    fn publish(&mut self, publication: &Publication<'_>) -> Result<(), PublishError> {
        let (term, lost) = {
            let known = self.shared.known();
            (known.term, known.lost_term)
        };
        let Some(term) = term.filter(|_| !lost) else {
            return Err(self.deposed());
        };
        let Some(mut client) = self.shared.client() else {
            return Err(PublishError::Unavailable("not connected to etcd".into()));
        };
        let keys = &self.shared.keys;
        let record = StateRecord {
            generation: publication.generation,
            config: publication.config_json.to_string(),
            instance: self.shared.me.instance.clone(),
            term: term.revision,
            state: publication.state.clone(),
        };
        let record = serde_json::to_string(&record)
            .map_err(|e| PublishError::Unavailable(format!("cannot encode the state: {e}")))?;
        let mut writes = vec![TxnOp::put(keys.state.as_str(), record, None)];
        let new_config = self.config_written != Some(publication.generation);
        if new_config {
            writes.push(TxnOp::put(
                keys.config.as_str(),
                publication.config_json,
                None,
            ));
        }
        let txn = Txn::new()
            .when([
                Compare::create_revision(keys.leader.as_str(), CompareOp::Equal, term.revision),
                Compare::mod_revision(keys.state.as_str(), CompareOp::Equal, term.state_rev),
            ])
            .and_then(writes);
        let limit = self.shared.options.request_timeout;
        let answer = self.runtime.block_on(within(limit, client.txn(txn)));
        match answer {
            Ok(response) if response.succeeded() => {
                let revision = response.header().map_or(0, |h| h.revision());
                let mut known = self.shared.known();
                if let Some(t) = known.term.as_mut() {
                    t.state_rev = revision;
                }
                known.connected = true;
                self.config_written = Some(publication.generation);
                Ok(())
            }
            Ok(_) => {
                tracing::warn!(
                    term = term.revision,
                    "fleet: publication refused by the fence"
                );
                Err(self.deposed())
            }
            Err(e) => {
                self.shared.known().connected = false;
                Err(PublishError::Unavailable(e.to_string()))
            }
        }
    }

    fn stepped_down(&mut self) {
        self.leading = false;
        self.config_written = None;
        let term = {
            let mut known = self.shared.known();
            known.won = None;
            known.lost_term = false;
            known.lease = None;
            known.term.take()
        };
        if let Some(term) = term {
            // Revoked now, the leader key goes at once and the fleet elects
            // without waiting for the lease to expire; if etcd does not
            // answer, the session revokes it when it does.
            let revoked = self.shared.client().is_some_and(|mut client| {
                let limit = self.shared.options.request_timeout;
                self.runtime
                    .block_on(within(limit, client.lease_revoke(term.lease)))
                    .is_ok()
            });
            let mut known = self.shared.known();
            match revoked {
                true => known.renew = true,
                false => known.resign = Some(term.lease),
            }
        }
        self.shared.wake.notify_one();
    }

    fn connected(&self) -> bool {
        self.shared.known().connected
    }

    fn status(&self) -> FleetStatus {
        let known = self.shared.known();
        FleetStatus {
            fleet: self.shared.options.name.clone(),
            instance: self.shared.me.instance.clone(),
            role: match self.leading {
                true => Role::Leader,
                false => Role::Standby,
            },
            leader: known.leader.as_ref().map(|l| LeaderView {
                instance: l.instance.clone(),
                address: l.address.clone(),
            }),
            coordinator: match known.connected {
                true => "connected",
                false => "lost",
            },
            term: known.leader_term.and_then(|t| u64::try_from(t).ok()),
            published_generation: known.published_generation,
            lease_ttl_s: self.shared.ttl().as_secs(),
        }
    }
}
