//! [`Background`]: the API served on a thread of its own, for a process
//! that has other work on its main thread (`hotpath demo`, a service
//! embedding the tuner, tests and benchmarks).

use crate::control::ControlHandle;
use crate::http::{router, AppState};
use crate::limits::Limits;
use crate::run::{http_runtime, ServerError};
use crate::serve::{serve, Served};
use crate::token::Token;
use std::net::SocketAddr;
use std::thread::JoinHandle;

/// The router over a [`ControlHandle`], served on `listen` by a runtime
/// on a thread of its own until [`stop`](Self::stop) (or drop), with the
/// same bounds and graceful stop as `hotpath serve`.
///
/// ```
/// use hotpath::{Knob, ParamSpace};
/// use hotpath_host::{Host, HostOptions, ShutdownPolicy};
/// use hotpath_server::{Background, Control, ControlOptions, Limits, Token};
/// use std::sync::Arc;
///
/// let space = Arc::new(ParamSpace::new(vec![Knob::int("batch", 1, 512, 64)])?);
/// let settings = hotpath::AdaptiveEngineConfig::bounded(vec![(1.0, 512.0)]);
/// let host = Host::open(space, settings, HostOptions::in_memory(), hotpath::SystemClock::new())?;
/// let control = Control::start(host, ControlOptions::default())?;
/// let token = Token::new("a-long-enough-secret");
/// let server = Background::start(control.handle(), token, Limits::default(), "127.0.0.1:0".parse()?)?;
/// println!("status page at http://{}/", server.local_addr());
/// server.stop();                                   // stop serving first,
/// control.shutdown(ShutdownPolicy::default())?;    // then the host
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Background {
    local_addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<std::io::Result<Served>>>,
}

impl Background {
    /// Binds `listen` and starts serving.
    ///
    /// # Errors
    ///
    /// [`ServerError::Runtime`] if the runtime or its thread cannot start,
    /// [`ServerError::Bind`] if the address cannot be bound.
    pub fn start(
        control: ControlHandle,
        token: Token,
        limits: Limits,
        listen: SocketAddr,
    ) -> Result<Self, ServerError> {
        let runtime = http_runtime()?;
        let bind = |source| ServerError::Bind {
            addr: listen,
            source,
        };
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(listen))
            .map_err(bind)?;
        let local_addr = listener.local_addr().map_err(bind)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("hotpath-serve".into())
            .spawn(move || {
                let (stopping, watching) = tokio::sync::watch::channel(false);
                let app = router(AppState::new(control, token, limits.clone(), watching));
                let shutdown = async {
                    let _ = stopped.await;
                };
                runtime.block_on(serve(listener, app, &limits, stopping, shutdown))
            })
            .map_err(ServerError::Runtime)?;
        Ok(Self {
            local_addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address bound (with the port the system chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops serving (the event streams closed, requests given the grace
    /// period) and waits for the thread: how it ended.
    pub fn stop(mut self) -> Served {
        self.finish()
    }

    fn finish(&mut self) -> Served {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Ok(served))) => served,
            Some(Ok(Err(e))) => {
                tracing::warn!(error = %e, "serving ended with an error");
                Served { dropped: 0 }
            }
            Some(Err(_)) => {
                tracing::error!("the serving thread panicked");
                Served { dropped: 0 }
            }
            None => Served { dropped: 0 },
        }
    }
}

impl Drop for Background {
    /// As [`stop`](Self::stop).
    fn drop(&mut self) {
        self.finish();
    }
}
