//! # hotpath-bench: load benchmarks of `hotpath serve`, on loopback only
//!
//! The pieces `benches/serve.rs` is made of, each bounded in count and
//! time: an HTTP/1.1 load generator ([`load`]), Server-Sent-Event
//! watchers that time when each generation reaches them ([`watchers`]),
//! a process's resident memory ([`rss_kib`]), and (feature `etcd`) an
//! etcd server started on free loopback ports with watchers of one key
//! ([`etcd`]). Every figure is compared with a baseline measured in the
//! same run; `BENCHMARKS.md` has the figures and the commands.
//!
//! ```text
//! cargo bench -p hotpath-bench --bench serve                      # all but etcd
//! cargo bench -p hotpath-bench --bench serve --features etcd      # with the etcd comparison
//! cargo bench -p hotpath-bench --bench serve -- config ingest     # some parts only
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "etcd")]
pub mod etcd;
pub mod load;
pub mod watchers;

use std::time::Duration;

/// The resident memory of process `pid` in KiB (Linux: `VmRSS` of
/// `/proc/PID/status`), or `None` where it cannot be read.
///
/// ```
/// let mine = hotpath_bench::rss_kib(std::process::id());
/// assert!(cfg!(not(target_os = "linux")) || mine.is_some_and(|kib| kib > 0));
/// ```
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The `q`-quantile (0..=1) of `samples` (sorted here), nearest rank;
/// `None` if there are none.
///
/// ```
/// use std::time::Duration;
/// let ms = |n| Duration::from_millis(n);
/// let mut samples: Vec<_> = (1..=100).map(ms).collect();
/// assert_eq!(hotpath_bench::quantile(&mut samples, 0.99), Some(ms(99)));
/// assert_eq!(hotpath_bench::quantile(&mut samples, 0.5), Some(ms(50)));
/// assert_eq!(hotpath_bench::quantile(&mut [], 0.5), None);
/// ```
pub fn quantile(samples: &mut [Duration], q: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let rank = (q.clamp(0.0, 1.0) * samples.len() as f64).ceil() as usize;
    Some(samples[rank.clamp(1, samples.len()) - 1])
}
