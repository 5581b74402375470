//! An etcd server (Debian's `etcd-server`) on free loopback ports with a
//! data directory of its own, and watchers of one key.

use crate::watchers::{Receipt, Watchers};
use etcd_client::Client;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A running etcd, stopped (and its data removed) when dropped.
#[derive(Debug)]
pub struct Etcd {
    child: Child,
    _dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Etcd {
    /// Starts `etcd` (from `PATH`, or `ETCD_BIN`) and waits until it
    /// answers, at most 20 s.
    ///
    /// # Errors
    ///
    /// The binary is missing, or it does not answer in time.
    pub async fn start() -> std::io::Result<Etcd> {
        let dir = tempfile::tempdir()?;
        let (client, peer) = (free_port()?, free_port()?);
        let endpoint = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let binary = std::env::var("ETCD_BIN").unwrap_or_else(|_| "etcd".into());
        let child = Command::new(binary)
            .arg("--name=bench")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={endpoint}"))
            .arg(format!("--advertise-client-urls={endpoint}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=bench={peer_url}"))
            .args(["--logger=zap", "--log-level=error"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let etcd = Etcd {
            child,
            _dir: dir,
            endpoint,
        };
        let started = Instant::now();
        loop {
            if let Ok(mut c) = Client::connect([etcd.endpoint.as_str()], None).await {
                if c.status().await.is_ok() {
                    return Ok(etcd);
                }
            }
            if started.elapsed() > Duration::from_secs(20) {
                return Err(std::io::Error::other("etcd did not answer within 20 s"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A client.
    ///
    /// # Errors
    ///
    /// The connection failed.
    pub async fn client(&self) -> Result<Client, etcd_client::Error> {
        Client::connect([self.endpoint.as_str()], None).await
    }

    /// `count` watchers of `key`, each on a connection of its own (as many
    /// replicas would be), each reporting the generation a put's value
    /// holds (a decimal number).
    ///
    /// # Errors
    ///
    /// A connection or watch that failed.
    pub async fn watchers(&self, key: &str, count: usize) -> Result<Watchers, etcd_client::Error> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut tasks = tokio::task::JoinSet::new();
        for watcher in 0..count {
            let mut client = self.client().await?;
            let mut stream = client.watch(key, None).await?;
            let tx = tx.clone();
            tasks.spawn(async move {
                let _keep = client;
                while let Ok(Some(response)) = stream.message().await {
                    let at = Instant::now();
                    for event in response.events() {
                        let value = event.kv().and_then(|kv| kv.value_str().ok());
                        if let Some(generation) = value.and_then(|v| v.parse().ok()) {
                            let _ = tx.send(Receipt {
                                watcher,
                                generation,
                                at,
                            });
                        }
                    }
                }
            });
        }
        Ok(Watchers::new(rx, tasks, count))
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
