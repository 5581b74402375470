//! # hotpath-fleet: one governed tuner for many replicas, over etcd
//!
//! `hotpath serve --fleet NAME --etcd URL` on several machines (or ports):
//! exactly one instance, the **leader**, runs the engine and the
//! `SafetyExecutor`; the others, **standbys**, serve the configuration the
//! leader published (`GET /v1/config`, the watch stream, `/metrics`,
//! `/v1/status` with `"role": "standby"`) and forward digests and operator
//! calls to it. [`start`] builds such an instance on
//! [`hotpath_server::Server::start_with`] and
//! [`hotpath_server::Control::start_fleet`]; this crate is the
//! [`Coordinator`](hotpath_server::Coordinator) over etcd
//! ([`EtcdCoordinator`]).
//!
//! ```no_run
//! use hotpath_fleet::FleetOptions;
//! use hotpath_server::ServeOptions;
//!
//! let mut serve = ServeOptions::new("tuning.toml", "/var/lib/hotpath");
//! serve.token_file = Some("/etc/hotpath/token".into());   // one token for the fleet
//! let fleet = FleetOptions::new("checkout", vec!["http://127.0.0.1:2379".into()]);
//! let server = hotpath_fleet::start(serve, fleet)?;
//! server.run_until_signal()?;
//! # Ok::<(), hotpath_server::ServerError>(())
//! ```
//!
//! # Securing etcd
//!
//! [`FleetOptions::auth`] logs in as an etcd user ([`EtcdAuth`]; its
//! [`Password`] never shows in `Debug`, logs or errors; the client logs in
//! on every connection and again when etcd says the token expired).
//! [`FleetOptions::tls`] ([`EtcdTls`]) speaks TLS (rustls, through
//! etcd-client's `tls` feature): a CA bundle that verifies etcd (without
//! one, an `https://` endpoint is verified against the system's roots)
//! and an optional client certificate for an etcd with
//! `--client-cert-auth`. The files are read once, when the instance
//! starts, and a bad one is refused naming it ([`FleetError::File`]); a
//! login etcd refuses is [`FleetError::Auth`], a failed handshake
//! [`FleetError::OverTls`]. A password sent without TLS is logged as a
//! warning (fine on loopback, not across a network).
//!
//! # Keys
//!
//! Under `/hotpath/fleet/<NAME>/`:
//!
//! * `leader`: `{"instance", "address"}` of the leader, attached to its
//!   **lease** (time to live [`FleetOptions::lease_ttl`], 5 s by default,
//!   kept alive every third of it). Its `create_revision` is the leader's
//!   **term**.
//! * `config`: `{"generation": N, "values": {…}}`, what readers see.
//! * `state`: `{"generation", "config", "instance", "term", "state"}`: the
//!   same configuration with the governed state it was decided in (a
//!   checkpoint of the leader's committed log: its `checkpoint` is the
//!   head of the fleet's audit chain).
//!
//! # Election
//!
//! An instance with no leader in sight campaigns with one transaction:
//! *if* `leader` does not exist (`create_revision == 0`) *then* put it on
//! this instance's lease **and read `state` in the same transaction**.
//! The transaction's revision is the term; the state it read is the one
//! the new leader resumes from ([`Host::take_over`](hotpath_host::Host::take_over)),
//! above its generation. Standbys watch the prefix; when `leader` is
//! deleted (its lease expired: the leader died or lost etcd; or it
//! resigned) they campaign at once. A leader killed outright is replaced
//! once its lease expires: within the TTL (plus etcd's expiry check, half
//! a second, plus the takeover).
//!
//! # Fencing: why a deposed leader cannot publish
//!
//! Every publication is one transaction: *if* `leader`'s `create_revision`
//! is this leader's term *and* `state`'s `mod_revision` is the one this
//! leader last wrote (or read when it won) *then* put `config` and
//! `state`. etcd applies transactions one at a time, in revision order:
//!
//! * Once the lease is gone, `leader` is deleted, and any later `leader`
//!   has a larger `create_revision`: no transaction of the old term can
//!   succeed after that, however late it arrives, so a partitioned or
//!   paused old leader never publishes again.
//! * A new leader's campaign read `state` at its own term's revision,
//!   after every successful publication of every earlier term; it starts
//!   above that generation, so **published generations strictly
//!   increase** across leaders. Within a term the executor's generations
//!   rise.
//! * The `mod_revision` compare means two writers in one term (which the
//!   lease rules out) would still not interleave.
//!
//! A leader also stops leading on its own clock: its lease is valid until
//! the *send* time of its last acknowledged keep-alive plus the TTL, which
//! is no later than etcd's own expiry; past that it steps down without
//! waiting to hear from etcd.
//!
//! # From "the executor accepted" to "etcd published"
//!
//! The leader's executor applies a change to its own live configuration;
//! readers never read that one. The control thread then waits for the
//! local audit log to commit the events (so anything published is on the
//! leader's disk: the fleet's chain has no hole), publishes fenced, and
//! only on success makes the configuration visible (this instance's
//! `GET /v1/config` and watch stream; the standbys through their etcd
//! watch). At each point a failure leaves:
//!
//! * killed before the publication: nothing visible changed; the next
//!   leader resumes from the previous publication; the killed leader's
//!   log holds the unpublished events as an *abandoned tail*
//!   ([`hotpath_durable::verify_fleet`] reports it).
//! * the publication refused (deposed): the same, and this instance steps
//!   down at once, its leader host shut down.
//! * no answer (etcd unreachable, a timeout: the write may or may not
//!   have happened): safe mode `CoordinatorLost`, audited locally, retried
//!   every 250 ms. If etcd answers again while the lease holds, the next
//!   publication's fence tells: it succeeds (nothing was lost, safe mode
//!   is cleared, adaptation resumes) or it is refused because an
//!   uncertain write did land (then it steps down, campaigns, and resumes
//!   from what etcd holds). If the lease ran out meanwhile, it steps down.
//!   Every instance keeps serving its last configuration throughout.
//!
//! # Reads that never go backwards
//!
//! Each instance's view only moves to higher generations. `GET
//! /v1/config` also reads `config` from etcd linearizably (coalesced: one
//! read in flight per instance, started after the request arrived) and
//! answers with the newer of the two: a client that reads one instance
//! and then another never sees a lower generation. While etcd does not
//! answer (within 250 ms, or at once when this instance knows it is
//! unreachable), a standby serves the newer of its own view and the
//! leader's (`GET /v1/config` on the leader, 250 ms): every publication
//! goes through the leader, and a leader also shows its own publication
//! when the watch delivered it but the acknowledgement was lost. Only
//! when neither etcd nor the leader answers can a standby whose watch had
//! not yet received the last publication serve the one before it; a
//! replica that keeps the highest generation it has seen (as
//! `scripts/fleet-replica.py` does) is never affected.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod barrier;
mod coordinator;
mod keys;
mod security;
mod session;

pub use barrier::EtcdBarrier;
pub use coordinator::EtcdCoordinator;
pub use keys::{LeaderRecord, StateRecord};
pub use security::{EtcdAuth, EtcdFile, EtcdTls, Password};

use hotpath::SystemClock;
use hotpath_host::{Host, HostOptions, OpenReport};
use hotpath_server::{Control, Opening, ServeOptions, Server, ServerError};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The shortest lease etcd grants (it raises shorter ones to this).
pub const MIN_LEASE_TTL: Duration = Duration::from_secs(2);
/// The longest lease [`FleetOptions`] accepts.
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(60);

/// How an instance joins its fleet.
///
/// ```
/// let options = hotpath_fleet::FleetOptions::new("checkout", vec!["http://127.0.0.1:2379".into()]);
/// assert_eq!(options.lease_ttl, std::time::Duration::from_secs(5));
/// assert!(options.validate().is_ok());
/// ```
///
/// A secured etcd (see [Securing etcd](crate#securing-etcd)): a user, and
/// TLS with a private CA and a client certificate.
///
/// ```no_run
/// use hotpath_fleet::{EtcdAuth, EtcdTls, FleetOptions, Password};
///
/// let mut options = FleetOptions::new("checkout", vec!["https://10.0.0.5:2379".into()]);
/// options.auth = Some(EtcdAuth {
///     user: "hotpath".into(),
///     password: Password::from_file("/etc/hotpath/etcd-password".as_ref())?,
/// });
/// options.tls = Some(EtcdTls {
///     ca: Some("/etc/hotpath/etcd-ca.pem".into()),
///     cert: Some("/etc/hotpath/etcd-client.pem".into()),
///     key: Some("/etc/hotpath/etcd-client-key.pem".into()),
/// });
/// options.validate()?;
/// # Ok::<(), hotpath_fleet::FleetError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetOptions {
    /// The fleet's name (letters, digits, `-`, `_`, `.`; at most 64).
    pub name: String,
    /// etcd's endpoints (`http://host:port`, or `https://host:port` with
    /// TLS: then all of them).
    pub endpoints: Vec<String>,
    /// This instance's name; `None`: its advertised address.
    pub instance: Option<String>,
    /// The address the other instances reach this one's HTTP at; `None`:
    /// the address it listens on.
    pub advertise: Option<String>,
    /// The leadership lease's time to live (2 s to 60 s, whole seconds;
    /// default 5 s). A leader that dies is replaced within it plus about
    /// a second; a shorter lease fails over faster and asks more of etcd
    /// (a keep-alive every third of it).
    pub lease_ttl: Duration,
    /// How long one etcd request may take (default 1 s).
    pub request_timeout: Duration,
    /// The etcd user and password; `None`: no authentication.
    pub auth: Option<EtcdAuth>,
    /// TLS to etcd; `None`: TLS only for `https://` endpoints, verified
    /// against the system's roots.
    pub tls: Option<EtcdTls>,
}

impl FleetOptions {
    /// The defaults for a fleet `name` on etcd at `endpoints`.
    pub fn new(name: impl Into<String>, endpoints: Vec<String>) -> Self {
        Self {
            name: name.into(),
            endpoints,
            instance: None,
            advertise: None,
            lease_ttl: Duration::from_secs(5),
            request_timeout: Duration::from_secs(1),
            auth: None,
            tls: None,
        }
    }

    /// Checks the options.
    ///
    /// # Errors
    ///
    /// [`FleetError::Options`] naming the first problem.
    pub fn validate(&self) -> Result<(), FleetError> {
        let valid_name = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !valid_name {
            return Err(FleetError::Options(format!(
                "fleet name `{}`: use 1 to 64 letters, digits, `-`, `_` or `.`",
                self.name.chars().take(80).collect::<String>()
            )));
        }
        if self.endpoints.is_empty() {
            return Err(FleetError::Options("no etcd endpoint".into()));
        }
        let ttl = self.lease_ttl;
        if ttl < MIN_LEASE_TTL || ttl > MAX_LEASE_TTL || ttl.subsec_nanos() != 0 {
            return Err(FleetError::Options(format!(
                "lease TTL {ttl:?}: whole seconds from 2 to 60"
            )));
        }
        if self.request_timeout.is_zero() || self.request_timeout > Duration::from_secs(30) {
            return Err(FleetError::Options(format!(
                "request timeout {:?}: more than 0, at most 30 s",
                self.request_timeout
            )));
        }
        if self.auth.as_ref().is_some_and(|a| a.user.is_empty()) {
            return Err(FleetError::Options("etcd user (--etcd-user): empty".into()));
        }
        if let Some(tls) = &self.tls {
            if tls.cert.is_some() != tls.key.is_some() {
                return Err(FleetError::Options(
                    "a client certificate needs its key: give both --etcd-cert and --etcd-key (tls.cert, tls.key), or neither"
                        .into(),
                ));
            }
        }
        if security::tls_on(self) {
            if let Some(plain) = self.endpoints.iter().find(|e| !e.starts_with("https://")) {
                return Err(FleetError::Options(format!(
                    "etcd endpoint `{}` is not https://, but TLS is on (a CA bundle, a client certificate or another https:// endpoint): use https:// for every endpoint",
                    plain.chars().take(200).collect::<String>()
                )));
            }
        }
        Ok(())
    }
}

/// Why an instance could not join its fleet.
///
/// ```
/// let e = hotpath_fleet::FleetError::Options("no etcd endpoint".into());
/// assert_eq!(e.to_string(), "fleet options: no etcd endpoint");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// The options are invalid.
    #[error("fleet options: {0}")]
    Options(String),
    /// etcd could not be reached or answered with an error.
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    /// etcd could not be reached over TLS: etcd is down, or the
    /// handshake failed (these look alike from the client's side).
    #[error("etcd over TLS: {0} (if etcd is up: does it want a client certificate, --etcd-cert and --etcd-key, and does --etcd-ca hold the CA that signed its certificate, for the endpoint's host or IP address?)")]
    OverTls(etcd_client::Error),
    /// etcd refused this instance's login or its requests as that user
    /// (a wrong password, an unknown user, no permission on the fleet's
    /// keys, a user given to an etcd without authentication, or none to
    /// one with it).
    #[error("etcd authentication{}: {reason}", user.as_ref().map(|u| format!(" as user `{u}`")).unwrap_or_default())]
    Auth {
        /// The user it logged in as, if any.
        user: Option<String>,
        /// What etcd said (never the password).
        reason: String,
    },
    /// A file for etcd (password, CA bundle, client certificate or key)
    /// cannot be read or does not hold what it should.
    #[error("{file} {}: {reason}", path.display())]
    File {
        /// Which file.
        file: EtcdFile,
        /// Its path.
        path: PathBuf,
        /// Why (never its content).
        reason: String,
    },
    /// etcd did not answer in time.
    #[error("etcd did not answer within {0:?}")]
    Timeout(Duration),
    /// A key of the fleet holds what this version does not read.
    #[error("{key} holds what this version cannot read: {reason}")]
    Record {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
}

/// Starts a fleet's instance: the config loaded, the token read (a
/// fleet's instances share one: set `serve.token_file`), the address
/// bound, etcd reached and read (so the first view is the fleet's last
/// publication, never older), the control thread started as a standby.
/// It campaigns as soon as it finds no leader.
///
/// # Errors
///
/// [`ServerError`]: a bad config or token, an address in use,
/// [`ServerError::Coordinator`] with a [`FleetError`] (options, etcd
/// unreachable at start).
pub fn start(serve: ServeOptions, fleet: FleetOptions) -> Result<Server, ServerError> {
    let data = serve.data.clone();
    let control = serve.control.clone();
    Server::start_with(serve, move |config, runtime, listening| {
        let boxed = |e: FleetError| ServerError::Coordinator(Box::new(e));
        fleet.validate().map_err(boxed)?;
        // The data directory exists from the start, led or not: `hotpath
        // audit verify` takes every instance's.
        std::fs::create_dir_all(&data).map_err(|source| {
            ServerError::Host(hotpath_host::HostError::Io {
                path: data.clone(),
                source,
            })
        })?;
        let coordinator = EtcdCoordinator::connect(runtime.clone(), fleet, listening.to_string())
            .map_err(boxed)?;
        let barrier = Arc::new(coordinator.barrier());
        let space = Arc::clone(&config.space);
        let settings = config.engine.clone();
        let report = OpenReport {
            log: None,
            generation: coordinator.published_generation().unwrap_or(0),
            restored: coordinator.published_state(),
            first_seq: 0,
            events: Vec::new(),
        };
        let open = move |opening: Opening, handoff| {
            let options = match opening {
                Opening::Lead => HostOptions {
                    state_file: None,
                    ..HostOptions::in_dir(&data)
                },
                Opening::View => HostOptions::in_memory(),
            };
            Host::take_over(
                Arc::clone(&space),
                settings.clone(),
                options,
                SystemClock::new(),
                handoff,
            )
        };
        let control = Control::start_fleet(open, Box::new(coordinator), Some(barrier), control)?;
        Ok((control, report))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> FleetOptions {
        FleetOptions::new("f", vec!["http://127.0.0.1:2379".into()])
    }

    #[test]
    fn options_out_of_range_are_refused_with_what_is_accepted() {
        let refused = |o: FleetOptions| o.validate().expect_err("refused").to_string();
        assert!(refused(FleetOptions {
            name: String::new(),
            ..options()
        })
        .contains("1 to 64"));
        assert!(refused(FleetOptions {
            name: "a/b".into(),
            ..options()
        })
        .contains("fleet name"));
        assert!(refused(FleetOptions {
            endpoints: vec![],
            ..options()
        })
        .contains("no etcd endpoint"));
        for ttl in [
            Duration::from_secs(1),
            Duration::from_secs(61),
            Duration::from_millis(2500),
        ] {
            assert!(refused(FleetOptions {
                lease_ttl: ttl,
                ..options()
            })
            .contains("whole seconds"));
        }
        assert!(refused(FleetOptions {
            request_timeout: Duration::ZERO,
            ..options()
        })
        .contains("request timeout"));
        assert!(options().validate().is_ok());
    }

    #[test]
    fn secured_options_pair_up_and_tls_wants_https_everywhere() {
        let refused = |o: FleetOptions| o.validate().expect_err("refused").to_string();
        let tls = |cert: bool, key: bool| EtcdTls {
            ca: None,
            cert: cert.then(|| "c.pem".into()),
            key: key.then(|| "k.pem".into()),
        };
        let https = || FleetOptions {
            endpoints: vec!["https://127.0.0.1:2379".into()],
            ..options()
        };
        for (cert, key) in [(true, false), (false, true)] {
            let text = refused(FleetOptions {
                tls: Some(tls(cert, key)),
                ..https()
            });
            assert!(text.contains("--etcd-cert and --etcd-key"), "{text}");
        }
        assert!(FleetOptions {
            tls: Some(tls(true, true)),
            ..https()
        }
        .validate()
        .is_ok());
        // A CA bundle over plain http, or http beside https.
        let text = refused(FleetOptions {
            tls: Some(EtcdTls {
                ca: Some("ca.pem".into()),
                ..EtcdTls::default()
            }),
            ..options()
        });
        assert!(
            text.contains("`http://127.0.0.1:2379` is not https://"),
            "{text}"
        );
        let mut mixed = https();
        mixed.endpoints.push("http://127.0.0.1:2380".into());
        assert!(refused(mixed).contains("is not https://"));
        assert!(
            https().validate().is_ok(),
            "https:// alone: the system's roots"
        );
        let text = refused(FleetOptions {
            auth: Some(EtcdAuth {
                user: String::new(),
                password: Password::new("pw"),
            }),
            ..options()
        });
        assert!(
            text.contains("--etcd-user") && !text.contains("pw"),
            "{text}"
        );
    }

    #[test]
    fn no_debug_output_of_the_options_shows_the_password() {
        let secured = FleetOptions {
            auth: Some(EtcdAuth {
                user: "root".into(),
                password: Password::new("hunter2-secret"),
            }),
            ..options()
        };
        let shown = format!("{secured:?} {secured:#?}");
        assert!(
            shown.contains("root") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
