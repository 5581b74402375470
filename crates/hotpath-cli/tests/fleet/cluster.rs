//! A fleet of `hotpath serve` processes on loopback, and replica
//! processes (`scripts/fleet-replica.py`) reading and reporting.

use crate::etcd::free_port;
use crate::http::{try_get, Response};
use serde_json::Value;
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const FLEET: &str = "test";

/// Polls `done` until it holds, failing after `limit` with `what`.
pub fn eventually(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `p` quantile of `sorted` (nearest rank).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len().saturating_sub(1))]
}

pub struct Instance {
    pub name: String,
    pub addr: String,
    pub data: PathBuf,
    child: Option<Child>,
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub token: String,
    token_file: PathBuf,
    etcd: String,
    pub ttl_s: u64,
    /// Further arguments of every instance started from now on.
    pub extra: Vec<OsString>,
    pub instances: Vec<Instance>,
    replicas: Vec<Child>,
}

fn config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tuning.toml")
}

impl Cluster {
    pub fn start(etcd_url: &str, n: usize, ttl_s: u64) -> Cluster {
        let mut cluster = Self::new(etcd_url, n, ttl_s, Vec::new());
        for i in 0..n {
            cluster.spawn(i);
        }
        cluster
    }

    /// `n` instances, none started yet, each to run with `extra`.
    pub fn new(etcd_url: &str, n: usize, ttl_s: u64, extra: Vec<OsString>) -> Cluster {
        let dir = tempfile::tempdir().expect("dir");
        let token = "fleet-test-token-0123456789abcdef".to_string();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, format!("{token}\n")).expect("token");
        let instances = (0..n)
            .map(|i| Instance {
                name: format!("i{i}"),
                addr: format!("127.0.0.1:{}", free_port()),
                data: dir.path().join(format!("d{i}")),
                child: None,
            })
            .collect();
        Cluster {
            dir,
            token,
            token_file,
            etcd: etcd_url.to_string(),
            ttl_s,
            extra,
            instances,
            replicas: Vec::new(),
        }
    }

    /// Instance `i`'s `hotpath serve` command.
    fn command(&self, i: usize) -> Command {
        let instance = &self.instances[i];
        let mut command = Command::new(env!("CARGO_BIN_EXE_hotpath"));
        command
            .env("HOTPATH_LOG", "info")
            .arg("serve")
            .arg("--config")
            .arg(config())
            .arg("--data")
            .arg(&instance.data)
            .arg("--listen")
            .arg(&instance.addr)
            .arg("--token-file")
            .arg(&self.token_file)
            .args(["--fleet", FLEET, "--etcd", &self.etcd])
            .args(["--lease-ttl", &self.ttl_s.to_string()])
            .args(["--instance", &instance.name])
            .args(&self.extra)
            .stdout(Stdio::null());
        command
    }

    pub fn spawn(&mut self, i: usize) {
        let err = std::fs::File::create(self.err_file(i)).expect("stderr file");
        let child = self
            .command(i)
            .stderr(err)
            .spawn()
            .expect("hotpath serve starts");
        self.instances[i].child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.status(i).is_some() {
                return;
            }
            let exited = self.instances[i]
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                let stderr = std::fs::read_to_string(self.err_file(i)).unwrap_or_default();
                panic!("{} exited with {status}: {stderr}", self.instances[i].name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{} did not start", self.instances[i].name);
    }

    /// Where instance `i`'s standard error goes.
    pub fn err_file(&self, i: usize) -> PathBuf {
        self.dir
            .path()
            .join(format!("{}.err", self.instances[i].name))
    }

    /// Runs instance `i` expecting it to fail to start: its exit status
    /// and standard error, or a failure if it still runs after `limit`.
    pub fn refused(&self, i: usize, limit: Duration) -> (std::process::ExitStatus, String) {
        let err = std::fs::File::create(self.err_file(i)).expect("stderr file");
        let mut child = self
            .command(i)
            .stderr(err)
            .spawn()
            .expect("hotpath serve starts");
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} still runs after {limit:?}", self.instances[i].name);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = std::fs::read_to_string(self.err_file(i)).expect("stderr");
        (status, stderr)
    }

    /// SIGKILL.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.instances[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and the exit status.
    pub fn stop(&mut self, i: usize) -> Option<std::process::ExitStatus> {
        let child = self.instances[i].child.take()?;
        crate::etcd::terminate(child, Duration::from_secs(20))
    }

    pub fn alive(&self, i: usize) -> bool {
        self.instances[i].child.is_some()
    }

    pub fn get(&self, i: usize, path: &str) -> Option<Response> {
        try_get(&self.instances[i].addr, path, Duration::from_secs(5))
    }

    pub fn status(&self, i: usize) -> Option<Value> {
        let response = self.get(i, "/v1/status")?;
        (response.status == 200).then(|| response.json())
    }

    /// `POST path` (empty body) to instance `i` with the token.
    pub fn operate(&self, i: usize, path: &str) -> Response {
        crate::http::post(
            &self.instances[i].addr,
            path,
            &self.token,
            "application/json",
            b"",
        )
    }

    /// The instance every live instance names as the leader, once that
    /// one says it leads and has published above `above`, within `limit`.
    pub fn wait_leader(&self, above: Option<u64>, limit: Duration) -> Option<(usize, Value)> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(found) = self.agreed_leader(above) {
                return Some(found);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    fn agreed_leader(&self, above: Option<u64>) -> Option<(usize, Value)> {
        let mut named = None;
        let mut leaders = 0;
        let mut leader_status = None;
        for i in (0..self.instances.len()).filter(|&i| self.alive(i)) {
            let status = self.status(i)?;
            let fleet = &status["fleet"];
            let leader = fleet["leader"]["instance"].as_str()?.to_string();
            if named.get_or_insert_with(|| leader.clone()) != &leader {
                return None;
            }
            if fleet["role"] == "leader" {
                leaders += 1;
                leader_status = Some((i, status));
            }
        }
        let (i, status) = leader_status?;
        let published = status["fleet"]["published_generation"].as_u64()?;
        let fresh = above.is_none_or(|a| published > a);
        (leaders == 1 && named.as_deref() == Some(&self.instances[i].name) && fresh)
            .then_some((i, status))
    }

    /// Starts `n` replica processes reporting to every instance.
    pub fn start_replicas(&mut self, n: usize) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/fleet-replica.py");
        for r in 0..n {
            let mut command = Command::new("python3");
            command
                .arg(&script)
                .args(["--name", &format!("r{r}")])
                .arg("--token-file")
                .arg(&self.token_file)
                .args(["--seconds", "600", "--interval-ms", "15"])
                .args(["--seed", &r.to_string()])
                .arg("--log")
                .arg(self.dir.path().join(format!("r{r}.jsonl")))
                .arg("--stop-file")
                .arg(self.dir.path().join("stop"));
            for instance in &self.instances {
                command.args(["--instance", &format!("http://{}", instance.addr)]);
            }
            let child = command
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("python3 runs the replica");
            self.replicas.push(child);
        }
    }

    /// Stops the replicas and returns each one's summary.
    pub fn stop_replicas(&mut self) -> Vec<Value> {
        std::fs::write(self.dir.path().join("stop"), "").expect("stop file");
        let mut summaries = Vec::new();
        for (r, mut child) in self.replicas.drain(..).enumerate() {
            let status = child.wait().expect("replica ends");
            let log = std::fs::read_to_string(self.dir.path().join(format!("r{r}.jsonl")))
                .expect("replica log");
            let last = log.lines().last().expect("a summary line");
            let summary: Value = serde_json::from_str(last).expect("json");
            if !status.success() {
                // Which reads went backwards, and what came before them.
                let mut highest = (0, String::new(), 0.0);
                for line in log.lines() {
                    let v: Value = serde_json::from_str(line).unwrap_or_default();
                    let (Some(g), Some(t)) = (v["generation"].as_u64(), v["t"].as_f64()) else {
                        continue;
                    };
                    if g < highest.0 {
                        eprintln!(
                            "r{r}: {g} from {} at {t:.3} after {} from {} at {:.3}",
                            v["instance"], highest.0, highest.1, highest.2
                        );
                    } else {
                        highest = (g, v["instance"].to_string(), t);
                    }
                }
            }
            assert!(status.success(), "replica r{r}: {summary}");
            summaries.push(summary["summary"].clone());
        }
        summaries
    }

    /// Publish-to-visible on a standby: for each generation both watch
    /// streams deliver within `for_`, the standby's receipt minus the
    /// leader's (the leader shows a configuration the moment etcd
    /// acknowledged its publication), in ms, sorted.
    pub fn standby_latency_ms(&self, leader: usize, standby: usize, for_: Duration) -> Vec<f64> {
        let open = |i: usize| {
            let addr = self.instances[i].addr.clone();
            std::thread::spawn(move || {
                let mut watch = crate::http::Watch::open(&addr, None);
                let mut seen = HashMap::new();
                let end = Instant::now() + for_;
                while let Some(event) =
                    watch.next_event(end.saturating_duration_since(Instant::now()))
                {
                    if let Some(id) = event.id {
                        seen.entry(id).or_insert_with(Instant::now);
                    }
                }
                seen
            })
        };
        let (at_leader, at_standby) = (open(leader), open(standby));
        let at_leader = at_leader.join().expect("leader watch");
        let at_standby = at_standby.join().expect("standby watch");
        let mut deltas: Vec<f64> = at_standby
            .iter()
            .filter_map(|(id, t)| {
                let l = at_leader.get(id)?;
                Some(t.saturating_duration_since(*l).as_secs_f64() * 1e3)
            })
            .collect();
        deltas.sort_by(f64::total_cmp);
        deltas
    }

    pub fn audit_dirs(&self) -> Vec<PathBuf> {
        self.instances
            .iter()
            .map(|i| i.data.join("audit"))
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.path().join("stop"), "");
        for mut child in self.replicas.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
        for i in 0..self.instances.len() {
            self.kill(i);
        }
    }
}
