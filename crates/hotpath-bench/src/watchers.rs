//! Watchers that time when each generation reaches them: Server-Sent
//! Event streams here ([`open_sse`]), etcd watches in
//! [`etcd`](crate::etcd) (feature `etcd`). Each receipt goes to one
//! channel the benchmark reads.

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// One watcher received one generation.
#[derive(Debug, Clone, Copy)]
pub struct Receipt {
    /// Which watcher.
    pub watcher: usize,
    /// The generation it received.
    pub generation: u64,
    /// When.
    pub at: Instant,
}

/// Open watchers and the receipts they send.
#[derive(Debug)]
pub struct Watchers {
    receipts: mpsc::UnboundedReceiver<Receipt>,
    tasks: tokio::task::JoinSet<()>,
    count: usize,
}

impl Watchers {
    /// Watchers whose tasks send to the channel of `receipts`.
    pub fn new(
        receipts: mpsc::UnboundedReceiver<Receipt>,
        tasks: tokio::task::JoinSet<()>,
        count: usize,
    ) -> Self {
        Self {
            receipts,
            tasks,
            count,
        }
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.count
    }

    /// `true` if there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// When each watcher received `generation` (or a later one), waiting
    /// at most `wait`; earlier generations are skipped. Fewer than
    /// [`len`](Self::len) instants means some did not receive it in time.
    pub async fn collect(&mut self, generation: u64, wait: Duration) -> Vec<Instant> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut seen = vec![None; self.count];
        let mut left = self.count;
        while left > 0 {
            match tokio::time::timeout_at(deadline, self.receipts.recv()).await {
                Ok(Some(r)) if r.generation >= generation && r.watcher < self.count => {
                    if seen[r.watcher].is_none() {
                        seen[r.watcher] = Some(r.at);
                        left -= 1;
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        seen.into_iter().flatten().collect()
    }

    /// Closes every watcher.
    pub async fn close(mut self) {
        self.tasks.shutdown().await;
    }
}

/// Opens `count` Server-Sent-Event streams on `path` at `addr` (one
/// connection each) and waits until each has received its first event.
///
/// # Errors
///
/// A connection that cannot be opened, or a stream whose first event does
/// not arrive within `wait`.
pub async fn open_sse(
    addr: SocketAddr,
    path: &str,
    count: usize,
    wait: Duration,
) -> std::io::Result<Watchers> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut tasks = tokio::task::JoinSet::new();
    for watcher in 0..count {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let head =
            format!("GET {path} HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n");
        stream.write_all(head.as_bytes()).await?;
        let tx = tx.clone();
        tasks.spawn(async move { read_ids(stream, watcher, tx).await });
    }
    let mut watchers = Watchers::new(rx, tasks, count);
    let first = watchers.collect(0, wait).await;
    if first.len() < count {
        return Err(std::io::Error::other(format!(
            "{} of {count} streams received nothing within {wait:?}",
            count - first.len()
        )));
    }
    Ok(watchers)
}

/// Reads a stream, sending a receipt for every `id: N` line.
async fn read_ids(
    mut stream: tokio::net::TcpStream,
    watcher: usize,
    tx: mpsc::UnboundedSender<Receipt>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let at = Instant::now();
        pending.extend_from_slice(&buf[..n]);
        let mut start = 0;
        while let Some(end) = pending[start..].iter().position(|b| *b == b'\n') {
            let line = &pending[start..start + end];
            if let Some(id) = line.strip_prefix(b"id: ") {
                let id = std::str::from_utf8(id)
                    .ok()
                    .and_then(|s| s.trim().parse().ok());
                if let Some(generation) = id {
                    let _ = tx.send(Receipt {
                        watcher,
                        generation,
                        at,
                    });
                }
            }
            start += end + 1;
        }
        pending.drain(..start);
    }
}
