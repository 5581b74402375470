//! The etcd session: one async task per instance that connects, keeps a
//! lease alive, watches the fleet's keys and campaigns when there is no
//! leader. It shares what it learns with the control thread's side
//! ([`EtcdCoordinator`](crate::EtcdCoordinator)) through [`Shared`].

use crate::keys::{config_generation, Keys, LeaderRecord, StateRecord};
use crate::security::Security;
use crate::{FleetError, FleetOptions};
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, KeyValue, PutOptions, Txn,
    TxnOp, TxnOpResponse, WatchOptions,
};
use hotpath_durable::state::GovernedState;
use hotpath_host::Handoff;
use hotpath_server::Published;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// This instance's leadership, while it holds it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Term {
    /// The `leader` key's `create_revision`.
    pub(crate) revision: i64,
    /// The lease the key is on.
    pub(crate) lease: i64,
    /// The `state` key's `mod_revision` as this leader last wrote (or
    /// read) it: the second half of the fence.
    pub(crate) state_rev: i64,
}

/// What the session knows, shared with the control thread's side.
#[derive(Debug, Default)]
pub(crate) struct Known {
    pub(crate) connected: bool,
    pub(crate) leader: Option<LeaderRecord>,
    pub(crate) leader_term: Option<i64>,
    /// This instance's lease and until when it is surely valid: the send
    /// time of its last acknowledged keep-alive plus its TTL.
    pub(crate) lease: Option<(i64, Instant)>,
    /// This instance's term, from the campaign it won until it steps down.
    pub(crate) term: Option<Term>,
    /// A won election the control thread has not taken yet.
    pub(crate) won: Option<Handoff>,
    /// The term is gone (its key deleted or replaced, its lease expired).
    pub(crate) lost_term: bool,
    /// A publication the control thread has not taken yet.
    pub(crate) published: Option<Published>,
    pub(crate) published_generation: Option<u64>,
    pub(crate) published_state: Option<Arc<GovernedState>>,
    /// The `state` key's revision last taken in: a newer one is followed
    /// even under the same generation (a freeze, a baseline: the state
    /// changed, the configuration did not).
    pub(crate) state_revision: i64,
    /// A lease to revoke (a term given up) when etcd answers.
    pub(crate) resign: Option<i64>,
    /// The session's lease was revoked: start a new session (a new lease).
    pub(crate) renew: bool,
}

/// The session's and the coordinator's common ground.
pub(crate) struct Shared {
    pub(crate) keys: Keys,
    pub(crate) options: FleetOptions,
    /// The user and TLS every connection is made with.
    pub(crate) security: Security,
    pub(crate) me: LeaderRecord,
    pub(crate) client: Mutex<Option<Client>>,
    known: Mutex<Known>,
    pub(crate) wake: tokio::sync::Notify,
    /// The control thread's waker, once it is running.
    pub(crate) waker: Mutex<Option<hotpath_server::Waker>>,
}

impl Shared {
    pub(crate) fn new(options: FleetOptions, security: Security, me: LeaderRecord) -> Self {
        Self {
            keys: Keys::new(&options.name),
            options,
            security,
            me,
            client: Mutex::new(None),
            known: Mutex::new(Known::default()),
            wake: tokio::sync::Notify::new(),
            waker: Mutex::new(None),
        }
    }

    /// Tells the control thread there is news.
    pub(crate) fn news(&self) {
        if let Some(waker) = self
            .waker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
        {
            waker.wake();
        }
    }

    /// What the session knows (a poisoned lock still holds valid data:
    /// every update is a plain assignment).
    pub(crate) fn known(&self) -> MutexGuard<'_, Known> {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn client(&self) -> Option<Client> {
        self.client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_client(&self, client: Option<Client>) {
        *self
            .client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = client;
    }

    pub(crate) fn ttl(&self) -> Duration {
        self.options.lease_ttl
    }
}

/// `future`, or [`FleetError::Timeout`] after `limit`.
pub(crate) async fn within<T>(
    limit: Duration,
    future: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, FleetError> {
    match tokio::time::timeout(limit, future).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(FleetError::Timeout(limit)),
    }
}

/// Connects to etcd (and logs in, with a user).
pub(crate) async fn connect(shared: &Shared) -> Result<Client, FleetError> {
    let options: &FleetOptions = &shared.options;
    let limit = options.request_timeout;
    let connect = shared.security.apply(
        ConnectOptions::new()
            .with_connect_timeout(limit)
            .with_timeout(limit)
            .with_keep_alive(Duration::from_secs(1), limit),
    );
    within(limit, Client::connect(&options.endpoints, Some(connect))).await
}

/// Reads every key of the fleet into `shared`; returns the revision read.
pub(crate) async fn read_all(shared: &Shared, client: &mut Client) -> Result<i64, FleetError> {
    let limit = shared.options.request_timeout;
    let response = within(
        limit,
        client.get(
            shared.keys.prefix.as_str(),
            Some(GetOptions::new().with_prefix()),
        ),
    )
    .await?;
    let mut known = shared.known();
    let mut leader_seen = false;
    for kv in response.kvs() {
        leader_seen |= kv.key() == shared.keys.leader.as_bytes();
        apply_put(shared, &mut known, kv);
    }
    if !leader_seen {
        known.leader = None;
        known.leader_term = None;
    }
    known.connected = true;
    Ok(response.header().map_or(0, |h| h.revision()))
}

/// Runs the session until the process ends: connects, and after any
/// failure connects again.
pub(crate) async fn run(shared: Arc<Shared>, first: Option<(Client, i64)>) {
    let mut first = first;
    loop {
        let result = match first.take() {
            Some((client, revision)) => session(&shared, client, revision).await,
            None => match connect(&shared).await {
                Ok(mut client) => match read_all(&shared, &mut client).await {
                    Ok(revision) => session(&shared, client, revision).await,
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            },
        };
        if let Err(e) = result {
            let e = shared.security.explain(e);
            let was = std::mem::replace(&mut shared.known().connected, false);
            if was {
                tracing::warn!(error = %e, "fleet: lost etcd; reconnecting");
                shared.news();
            }
        }
        shared.set_client(None);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One connection's life: the lease kept alive, the keys watched, a
/// campaign whenever no one leads.
async fn session(shared: &Shared, mut client: Client, revision: i64) -> Result<(), FleetError> {
    let limit = shared.options.request_timeout;
    shared.set_client(Some(client.clone()));
    let resign = {
        let mut known = shared.known();
        known.renew = false;
        known.resign.take()
    };
    if let Some(lease) = resign {
        // A term given up while etcd was away: its key goes now, not at
        // its expiry.
        let _ = within(limit, client.lease_revoke(lease)).await;
    }
    let kept = shared.known().term.map(|t| t.lease);
    let lease = match kept {
        Some(lease) => lease,
        None => {
            let ttl = i64::try_from(shared.ttl().as_secs()).unwrap_or(5);
            within(limit, client.lease_grant(ttl, None)).await?.id()
        }
    };
    let (mut keeper, mut alive) = within(limit, client.lease_keep_alive(lease)).await?;
    let watch = WatchOptions::new()
        .with_prefix()
        .with_start_revision(revision.saturating_add(1));
    let mut watch = within(
        limit,
        client.watch(shared.keys.prefix.as_str(), Some(watch)),
    )
    .await?;
    let mut tick = tokio::time::interval(shared.ttl() / 3);
    loop {
        if should_campaign(shared, lease) {
            campaign(shared, &mut client, lease).await?;
        }
        tokio::select! {
            _ = tick.tick() => {
                let sent = Instant::now();
                within(limit, keeper.keep_alive()).await?;
                let answer = match tokio::time::timeout(limit, alive.message()).await {
                    Ok(answer) => answer?,
                    Err(_) => return Err(FleetError::Timeout(limit)),
                };
                let ttl = answer.map_or(0, |a| a.ttl());
                let mut known = shared.known();
                if ttl <= 0 {
                    // The lease is gone: a term on it is over.
                    if known.term.is_some() {
                        known.lost_term = true;
                    }
                    known.lease = None;
                    drop(known);
                    shared.news();
                    return Err(FleetError::Record { key: "lease".into(), reason: "expired".into() });
                }
                let ttl = Duration::from_secs(u64::try_from(ttl).unwrap_or(0));
                known.lease = Some((lease, sent + ttl));
                known.connected = true;
            }
            message = watch.message() => {
                let Some(response) = message? else {
                    return Err(FleetError::Record { key: shared.keys.prefix.clone(), reason: "the watch ended".into() });
                };
                if response.canceled() {
                    return Err(FleetError::Record { key: shared.keys.prefix.clone(), reason: "the watch was cancelled".into() });
                }
                {
                    let mut known = shared.known();
                    for event in response.events() {
                        let Some(kv) = event.kv() else { continue };
                        match event.event_type() {
                            EventType::Put => apply_put(shared, &mut known, kv),
                            EventType::Delete => apply_delete(shared, &mut known, kv),
                        }
                    }
                }
                shared.news();
            }
            _ = shared.wake.notified() => {
                let (resign, renew) = {
                    let mut known = shared.known();
                    (known.resign.take(), std::mem::take(&mut known.renew))
                };
                if let Some(old) = resign {
                    let _ = within(limit, client.lease_revoke(old)).await;
                }
                if resign.is_some() || renew {
                    // A new session: a new lease for the next campaign.
                    return Ok(());
                }
            }
        }
    }
}

/// No leader is known, this instance does not lead and is not about to.
fn should_campaign(shared: &Shared, lease: i64) -> bool {
    let known = shared.known();
    known.leader.is_none()
        && known.term.is_none()
        && known.won.is_none()
        && known.resign.is_none()
        && !known.renew
        && known.lease.is_none_or(|(id, _)| id == lease)
}

/// One campaign: the leader key if it is free, and the state read in the
/// same transaction (see the [crate docs](crate#election)).
async fn campaign(shared: &Shared, client: &mut Client, lease: i64) -> Result<(), FleetError> {
    let keys = &shared.keys;
    let me = serde_json::to_string(&shared.me).map_err(|e| FleetError::Record {
        key: keys.leader.clone(),
        reason: e.to_string(),
    })?;
    let txn = Txn::new()
        .when([Compare::create_revision(
            keys.leader.as_str(),
            CompareOp::Equal,
            0,
        )])
        .and_then([
            TxnOp::put(
                keys.leader.as_str(),
                me,
                Some(PutOptions::new().with_lease(lease)),
            ),
            TxnOp::get(keys.state.as_str(), None),
        ])
        .or_else([TxnOp::get(keys.leader.as_str(), None)]);
    let response = within(shared.options.request_timeout, client.txn(txn)).await?;
    let revision = response.header().map_or(0, |h| h.revision());
    let mut known = shared.known();
    let reads: Vec<KeyValue> = response
        .op_responses()
        .into_iter()
        .filter_map(|op| match op {
            TxnOpResponse::Get(get) => Some(get.kvs().to_vec()),
            _ => None,
        })
        .flatten()
        .collect();
    if !response.succeeded() {
        for kv in &reads {
            apply_put(shared, &mut known, kv);
        }
        return Ok(());
    }
    let published = match reads.first() {
        Some(kv) => match parse_state(keys, kv) {
            Ok(record) => Some((record, kv.mod_revision())),
            Err(e) => {
                // Leading from a state it cannot read would reset the
                // governance: give the term up instead, loudly.
                tracing::error!(error = %e, "fleet: won the election but cannot read the state; resigning");
                known.resign = Some(lease);
                shared.wake.notify_one();
                return Ok(());
            }
        },
        None => None,
    };
    let state_rev = published.as_ref().map_or(0, |(_, rev)| *rev);
    let above = published.as_ref().map_or(0, |(r, _)| r.generation);
    known.term = Some(Term {
        revision,
        lease,
        state_rev,
    });
    known.lost_term = false;
    known.leader = Some(shared.me.clone());
    known.leader_term = Some(revision);
    known.won = Some(Handoff {
        state: published.map(|(r, _)| r.state),
        above_generation: Some(above),
    });
    tracing::info!(term = revision, above, "fleet: won the election");
    drop(known);
    shared.news();
    Ok(())
}

fn parse_state(keys: &Keys, kv: &KeyValue) -> Result<StateRecord, FleetError> {
    serde_json::from_slice(kv.value()).map_err(|e| FleetError::Record {
        key: keys.state.clone(),
        reason: e.to_string(),
    })
}

fn apply_put(shared: &Shared, known: &mut Known, kv: &KeyValue) {
    let keys = &shared.keys;
    if kv.key() == keys.leader.as_bytes() {
        match serde_json::from_slice::<LeaderRecord>(kv.value()) {
            Ok(record) => known.leader = Some(record),
            Err(e) => tracing::warn!(error = %e, "fleet: unreadable leader key"),
        }
        known.leader_term = Some(kv.create_revision());
        if known
            .term
            .is_some_and(|t| t.revision != kv.create_revision())
        {
            known.lost_term = true;
        }
    } else if kv.key() == keys.state.as_bytes() {
        match parse_state(keys, kv) {
            Ok(record) => {
                if config_generation(&record.config) != Some(record.generation) {
                    tracing::warn!(
                        generation = record.generation,
                        "fleet: a state whose config is of another generation; ignored"
                    );
                    return;
                }
                if kv.mod_revision() <= known.state_revision
                    || known
                        .published_generation
                        .is_some_and(|g| g > record.generation)
                {
                    return;
                }
                known.state_revision = kv.mod_revision();
                let state = Arc::new(record.state);
                known.published_generation = Some(record.generation);
                known.published_state = Some(Arc::clone(&state));
                known.published = Some(Published {
                    generation: record.generation,
                    config_json: record.config.into(),
                    state,
                });
            }
            Err(e) => tracing::warn!(error = %e, "fleet: unreadable state key"),
        }
    }
}

fn apply_delete(shared: &Shared, known: &mut Known, kv: &KeyValue) {
    if kv.key() == shared.keys.leader.as_bytes() {
        known.leader = None;
        known.leader_term = None;
        if known.term.is_some() {
            known.lost_term = true;
        }
    }
}
