//! [`Attached`]: the API over a host its owner keeps and steps.

use super::worker::Worker;
use super::{prepare, Command, ControlError, ControlHandle, ControlOptions, Readers};
use hotpath::{Clock, TelemetryDigest};
use hotpath_host::Host;
use std::sync::mpsc::Receiver;
use std::sync::Arc;

/// The API over a host that its owner keeps and steps itself, on its
/// own thread, instead of handing it to a [`Control`](super::Control)
/// thread.
///
/// `hotpath demo` is such an owner: its loop measures a workload, steps
/// the host, rolls back and saves the state on its own schedule. To serve
/// the same page and endpoints as `hotpath serve`, it polls an `Attached`
/// between its own calls: the operator calls that arrived since (freeze,
/// resume, …) are carried out on its host, then the new audit events, the
/// configuration, the status and the metrics are published exactly as the
/// control thread publishes them (the same code runs). Operator calls wait
/// in the bounded command queue until the next poll, so an owner polls at
/// least every few hundred milliseconds (callers wait at most
/// [`reply_timeout`](ControlOptions::reply_timeout), 5 s). The owner
/// maintains its host itself: a poll never saves the state.
///
/// ```
/// use hotpath::{Knob, ParamSpace, TelemetryDigest};
/// use hotpath_host::{Host, HostOptions};
/// use hotpath_server::{Action, Attached, ControlOptions};
/// use std::sync::Arc;
///
/// let space = Arc::new(ParamSpace::new(vec![Knob::int("batch", 1, 512, 64)])?);
/// let settings = hotpath::AdaptiveEngineConfig::bounded(vec![(1.0, 512.0)]);
/// let mut host = Host::open(space, settings, HostOptions::in_memory(), hotpath::SystemClock::new())?;
/// let options = ControlOptions { accept_telemetry: false, ..ControlOptions::default() };
/// let mut attached = Attached::new(&mut host, options)?;
/// let handle = attached.handle();   // for http::router; the freeze below waits for a poll
/// let operator = std::thread::spawn(move || handle.operate_blocking(Action::Freeze));
/// while !operator.is_finished() {
///     attached.poll(&mut host)?;      // the owner's loop, between its own calls
///     std::thread::sleep(std::time::Duration::from_millis(5));
/// }
/// assert!(operator.join().unwrap()?.safe_mode.active);
/// attached.measured(&mut host, &TelemetryDigest::new(100_000, 3.5, 200))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Attached {
    worker: Worker,
    rx: Receiver<Command>,
    handle: ControlHandle,
}

impl std::fmt::Debug for Attached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attached")
            .field("handle", &self.handle)
            .finish()
    }
}

impl Attached {
    /// Attaches to `host`: subscribes to its audit events and publishes
    /// its state as of now. `options` as for [`Control`](super::Control)
    /// (`maintain_every` is unused: the owner maintains its host).
    ///
    /// # Errors
    ///
    /// [`ControlError::Host`] if `subscription_capacity` is out of the
    /// host's range (1..=2^20).
    pub fn new<C: Clock>(
        host: &mut Host<C>,
        options: ControlOptions,
    ) -> Result<Self, ControlError> {
        let (worker, handle, rx) = prepare(host, &options, Readers::Executor)?;
        let mut attached = Self { worker, rx, handle };
        attached.poll(host)?;
        Ok(attached)
    }

    /// A handle for [`http::router`](crate::http::router) and anything
    /// else in the process.
    pub fn handle(&self) -> ControlHandle {
        self.handle.clone()
    }

    /// Carries out the commands waiting, closes the aggregation window if
    /// it is due, and publishes what readers see.
    ///
    /// # Errors
    ///
    /// [`ControlError::Host`] if `host` is not the host this was attached
    /// to (nothing is done).
    pub fn poll<C: Clock>(&mut self, host: &mut Host<C>) -> Result<(), ControlError> {
        self.check(host)?;
        self.worker.poll(host, &self.rx);
        Ok(())
    }

    /// Shows an objective the owner measured in the live feed
    /// (`GET /v1/events`), at the digest's timestamp and generation (now
    /// and the live one when it has none). It does not step the host.
    ///
    /// # Errors
    ///
    /// As [`poll`](Self::poll).
    pub fn measured<C: Clock>(
        &mut self,
        host: &mut Host<C>,
        digest: &TelemetryDigest,
    ) -> Result<(), ControlError> {
        self.check(host)?;
        self.worker.measured(host, digest);
        Ok(())
    }

    fn check<C: Clock>(&self, host: &Host<C>) -> Result<(), ControlError> {
        if Arc::ptr_eq(host.config(), &self.handle.shared.config) {
            Ok(())
        } else {
            Err(ControlError::Host(
                "this is not the host the server was attached to".into(),
            ))
        }
    }
}
