//! A real `hotpath serve` process on a free loopback port.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The test config (`tests/data/fast_tuning.toml`): two knobs, calibration
/// off, one window digest per evaluation and no settle time, so generations
/// move within seconds.
pub const FAST_CONFIG: &str = include_str!("../data/fast_tuning.toml");

pub struct Serve {
    child: Option<Child>,
    pub addr: String,
    pub dir: PathBuf,
    pub token: String,
    stdout: mpsc::Receiver<String>,
}

impl Serve {
    /// Starts `hotpath serve` on `dir` with `config` written next to it.
    pub fn start(dir: &Path, config: &str, extra: &[&str]) -> Serve {
        let config_path = dir.join("tuning.toml");
        std::fs::write(&config_path, config).expect("config");
        let data = dir.join("data");
        let mut child = Command::new(env!("CARGO_BIN_EXE_hotpath"))
            .args(["serve", "--config"])
            .arg(&config_path)
            .arg("--data")
            .arg(&data)
            .args(["--listen", "127.0.0.1:0", "--window-ms", "20"])
            .args(extra)
            .env("HOTPATH_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hotpath serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("hotpath serve printed nothing; stderr: {err}");
            }
        };
        let addr = first
            .split("http://")
            .nth(1)
            .unwrap_or_else(|| panic!("no address in {first:?}"))
            .trim()
            .to_string();
        let token = std::fs::read_to_string(data.join("token")).expect("token file");
        Serve {
            child: Some(child),
            addr,
            dir: data,
            token: token.trim().to_string(),
            stdout: rx,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The lines printed so far (after the first).
    pub fn printed(&self) -> Vec<String> {
        self.stdout.try_iter().collect()
    }

    /// Sends SIGTERM and waits at most `bound` for the exit: its status
    /// and how long it took.
    pub fn terminate(&mut self, bound: Duration) -> (ExitStatus, Duration) {
        let pid = self.pid().to_string();
        let started = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -TERM {pid}");
        let mut child = self.child.take().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return (status, started.elapsed());
            }
            if started.elapsed() > bound {
                let _ = child.kill();
                panic!("hotpath serve did not exit within {bound:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The resident memory of the process, in KiB (Linux).
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
