//! Serving a router on a listener with the connection-level bounds of
//! [`Limits`], and the graceful stop.

use crate::limits::Limits;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// How a [`serve`] ended.
///
/// ```
/// # use hotpath_server::Served;
/// fn clean(s: &Served) -> bool { s.dropped == 0 }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    /// Connections still open when the grace period ran out, dropped.
    pub dropped: usize,
}

/// Serves `app` on `listener` (HTTP/1.1, at most `max_connections` at a
/// time, headers bounded in size, count and time) until `shutdown`
/// resolves. Then it stops accepting, sets `stopping` to `true` (which
/// ends every watch stream and turns `/readyz` to 503), lets open
/// requests finish for at most [`Limits::shutdown_grace`], and drops the
/// connections left.
///
/// # Errors
///
/// None today: a failed `accept` (out of file descriptors, say) is
/// logged and retried after 50 ms; the `Result` is for what a later
/// listener may need.
///
/// ```no_run
/// # async fn run(app: axum::Router) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:7070").await?;
/// let (stopping, _) = tokio::sync::watch::channel(false);
/// let limits = hotpath_server::Limits::default();
/// hotpath_server::serve(listener, app, &limits, stopping, async {
///     let _ = tokio::signal::ctrl_c().await;
/// }).await?;
/// # Ok(()) }
/// ```
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &Limits,
    stopping: watch::Sender<bool>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<Served> {
    let graceful = GracefulShutdown::new();
    let mut tasks = tokio::task::JoinSet::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        while tasks.try_join_next().is_some() {}
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(limits.max_header_bytes.max(8192))
            .max_header_size(limits.max_header_bytes.max(8192))
            .max_headers(limits.max_headers.max(1))
            .keep_alive(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let watched = graceful.watch(connection);
        tasks.spawn(async move {
            if let Err(e) = watched.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    stopping.send_replace(true);
    let dropped = match tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await {
        Ok(()) => 0,
        Err(_) => {
            while tasks.try_join_next().is_some() {}
            let dropped = tasks.len();
            tracing::warn!(
                dropped,
                "connections still open after the grace period; dropping them"
            );
            tasks.abort_all();
            dropped
        }
    };
    Ok(Served { dropped })
}
