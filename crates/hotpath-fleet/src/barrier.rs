//! [`EtcdBarrier`]: `GET /v1/config` read linearizably from etcd,
//! coalesced so an instance has at most one read in flight.

use crate::keys::config_generation;
use crate::session::{within, Shared};
use hotpath_server::{FreshConfig, ReadBarrier};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How long a read may take before the instance's own view is served.
const READ_TIMEOUT: Duration = Duration::from_millis(250);

/// Tickets: every caller takes one; a read started after a ticket was
/// taken answers it.
#[derive(Default)]
struct Tickets {
    taken: u64,
    reading: bool,
}

/// The fleet's configuration read fresh from etcd (see
/// [`ReadBarrier`]): each caller is answered by a linearizable read that
/// began after it called, shared with every caller waiting meanwhile; at
/// once with `None` while etcd is known unreachable.
pub struct EtcdBarrier {
    shared: Arc<Shared>,
    tickets: Arc<Mutex<Tickets>>,
    /// (the last ticket answered, its answer)
    answered: watch::Sender<(u64, FreshConfig)>,
}

impl std::fmt::Debug for EtcdBarrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdBarrier").finish_non_exhaustive()
    }
}

impl EtcdBarrier {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            tickets: Arc::new(Mutex::new(Tickets::default())),
            answered: watch::Sender::new((0, None)),
        }
    }

    async fn read(shared: &Shared) -> FreshConfig {
        let mut client = shared.client()?;
        let response = within(READ_TIMEOUT, client.get(shared.keys.config.as_str(), None))
            .await
            .ok()?;
        let kv = response.kvs().first()?;
        let json = kv.value_str().ok()?;
        Some((config_generation(json)?, Arc::from(json)))
    }

    async fn fresh_read(&self) -> FreshConfig {
        if !self.shared.known().connected {
            return None;
        }
        let mut answers = self.answered.subscribe();
        let (ticket, start) = {
            let mut t = self
                .tickets
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            t.taken += 1;
            let start = !t.reading;
            t.reading = true;
            (t.taken, start)
        };
        if start {
            let (shared, tickets, answered) = (
                Arc::clone(&self.shared),
                Arc::clone(&self.tickets),
                self.answered.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let target = tickets
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .taken;
                    let answer = Self::read(&shared).await;
                    answered.send_replace((target, answer));
                    let mut t = tickets
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if t.taken == target {
                        t.reading = false;
                        return;
                    }
                }
            });
        }
        let wait = async {
            match answers.wait_for(|(done, _)| *done >= ticket).await {
                Ok(answer) => answer.1.clone(),
                Err(_) => None,
            }
        };
        tokio::time::timeout(READ_TIMEOUT * 4, wait)
            .await
            .unwrap_or(None)
    }
}

impl ReadBarrier for EtcdBarrier {
    fn fresh(&self) -> Pin<Box<dyn Future<Output = FreshConfig> + Send + '_>> {
        Box::pin(self.fresh_read())
    }
}
