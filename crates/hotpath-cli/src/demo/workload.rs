//! The demo's service: a batching pipeline over generated records.
//!
//! A producer thread generates access-log records (Poisson arrivals at the
//! offered rate) and groups them into batches the way a Kafka producer
//! does: a batch is closed when it holds `batch_size` records or when its
//! first record has waited `linger_ms`, whichever comes first. Closed
//! batches queue for [`SENDERS`] sender threads, which parse every record,
//! hash and varint-encode its fields into a frame, checksum the frame, and
//! then wait for a simulated network round trip of [`ROUND_TRIP`] plus
//! [`PER_RECORD`] per record. The latency of a record runs from its arrival
//! to the end of its batch's round trip.
//!
//! The trade-off is real: small batches closed early keep records from
//! waiting but pay a round trip each, so at a high offered rate they
//! saturate the senders and queue up; big batches and long lingers keep the
//! senders free but make every record wait for its batch. Where the best
//! setting lies depends on the offered rate.
//!
//! The producer reads the knobs through a [`ConfigReader`] and tags each
//! batch with the config generation it was closed under; senders account
//! latency per generation, so the control loop can report each generation's
//! measurements separately. When more than [`MAX_QUEUED`] records are
//! queued, new batches are shed and each shed record counts as a latency of
//! [`SHED_PENALTY_US`].

use crate::CliError;
use hotpath::{AtomicConfig, ConfigReader};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Sender threads (requests in flight at once).
pub const SENDERS: usize = 2;
/// Fixed cost of one request to the (simulated) downstream.
pub const ROUND_TRIP: Duration = Duration::from_micros(1000);
/// Transfer cost per record in a request.
pub const PER_RECORD: Duration = Duration::from_micros(5);
/// Queued records beyond which new batches are shed.
pub const MAX_QUEUED: usize = 4000;
/// Latency charged for a shed record, µs.
pub const SHED_PENALTY_US: f64 = 500_000.0;

/// Latency measured for records batched under one config generation.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bucket {
    /// The config generation the records' batches were closed under.
    pub generation: u64,
    /// Sum of the records' latencies (shed records at the penalty), µs.
    pub latency_us: f64,
    /// Records delivered.
    pub delivered: u64,
    /// Records shed.
    pub shed: u64,
}

impl Bucket {
    /// Records measured.
    pub fn records(&self) -> u64 {
        self.delivered + self.shed
    }

    /// Mean latency per record, ms.
    pub fn mean_ms(&self) -> f64 {
        self.latency_us / self.records().max(1) as f64 / 1000.0
    }
}

struct Record {
    arrived: Instant,
    line: String,
}

struct Batch {
    generation: u64,
    records: Vec<Record>,
}

#[derive(Default)]
struct Queue {
    batches: VecDeque<Batch>,
    records: usize,
}

struct Shared {
    stop: AtomicBool,
    rate: AtomicU64,
    queue: Mutex<Queue>,
    ready: Condvar,
    buckets: Mutex<Vec<Bucket>>,
    checksum: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking worker is reported when it is joined; the data stays usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn account(&self, generation: u64, latency_us: f64, delivered: u64, shed: u64) {
        let mut buckets = lock(&self.buckets);
        let bucket = match buckets.iter_mut().position(|b| b.generation == generation) {
            Some(i) => &mut buckets[i],
            None => {
                buckets.push(Bucket {
                    generation,
                    ..Bucket::default()
                });
                let last = buckets.len() - 1;
                &mut buckets[last]
            }
        };
        bucket.latency_us += latency_us;
        bucket.delivered += delivered;
        bucket.shed += shed;
    }

    /// Queues a closed batch, or sheds it if the queue is too long.
    fn dispatch(&self, generation: u64, records: &mut Vec<Record>) {
        if records.is_empty() {
            return;
        }
        let mut queue = lock(&self.queue);
        if queue.records + records.len() > MAX_QUEUED {
            drop(queue);
            let n = records.len() as u64;
            records.clear();
            self.account(generation, n as f64 * SHED_PENALTY_US, 0, n);
            return;
        }
        queue.records += records.len();
        queue.batches.push_back(Batch {
            generation,
            records: std::mem::take(records),
        });
        drop(queue);
        self.ready.notify_one();
    }
}

/// The running pipeline.
pub struct Pipeline {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Pipeline {
    /// Starts the producer and the senders; the producer reads its knobs
    /// (`[batch_size, linger_ms]`) from `config`.
    pub fn start(config: &Arc<AtomicConfig>, rate: u64, seed: u64) -> Result<Self, CliError> {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            rate: AtomicU64::new(rate),
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            buckets: Mutex::new(Vec::new()),
            checksum: AtomicU64::new(0),
        });
        let mut pipeline = Self {
            shared,
            threads: Vec::new(),
        };
        let spawn = |name: String, work: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name)
                .spawn(work)
                .map_err(|e| CliError::Demo(format!("cannot start a worker thread: {e}")))
        };
        for i in 0..SENDERS {
            let shared = pipeline.shared.clone();
            let handle = spawn(format!("sender-{i}"), Box::new(move || send(&shared)));
            pipeline.threads.push(handle?);
        }
        let shared = pipeline.shared.clone();
        let reader = config.reader();
        let handle = spawn(
            "producer".into(),
            Box::new(move || produce(&shared, reader, seed)),
        );
        pipeline.threads.push(handle?);
        Ok(pipeline)
    }

    /// Changes the offered load, records per second.
    pub fn set_rate(&self, rate: u64) {
        self.shared.rate.store(rate.max(1), Ordering::Relaxed);
    }

    /// Takes the measurements since the last call, one bucket per
    /// generation.
    pub fn take(&self) -> Vec<Bucket> {
        std::mem::take(&mut *lock(&self.shared.buckets))
    }

    /// Stops and joins every thread.
    pub fn shutdown(mut self) -> Result<(), CliError> {
        self.stop();
        let mut failed = false;
        for handle in self.threads.drain(..) {
            failed |= handle.join().is_err();
        }
        if failed {
            return Err(CliError::Demo("a worker thread panicked".into()));
        }
        Ok(())
    }

    fn stop(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.ready.notify_all();
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        // On an early return the threads still stop (and are detached).
        self.stop();
    }
}

/// `[batch_size, linger_ms]` as the producer uses them.
fn knobs(params: &[f64]) -> (usize, Duration) {
    let batch = params.first().map_or(1.0, |b| b.round().max(1.0)) as usize;
    let linger_ms = params.get(1).copied().unwrap_or(0.0).max(0.0);
    (batch, Duration::from_secs_f64(linger_ms / 1000.0))
}

fn produce(shared: &Shared, mut reader: ConfigReader, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut next = Instant::now();
    let mut open: Vec<Record> = Vec::new();
    let mut opened: Option<Instant> = None;
    while !shared.stop.load(Ordering::Relaxed) {
        let snapshot = reader.get();
        let (batch, linger) = knobs(&snapshot.params);
        let generation = snapshot.generation;
        let rate = shared.rate.load(Ordering::Relaxed).max(1) as f64;
        let now = Instant::now();
        while next <= now {
            open.push(Record {
                arrived: next,
                line: rng.record(),
            });
            opened.get_or_insert(next);
            if open.len() >= batch {
                shared.dispatch(generation, &mut open);
                opened = None;
            }
            next += Duration::from_secs_f64(rng.exponential() / rate);
        }
        if opened.is_some_and(|t| now >= t + linger) {
            shared.dispatch(generation, &mut open);
            opened = None;
        }
        let wake = opened.map_or(next, |t| next.min(t + linger));
        let nap = wake
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(2));
        if !nap.is_zero() {
            std::thread::sleep(nap);
        }
    }
}

fn send(shared: &Shared) {
    let mut frame = Vec::with_capacity(4096);
    loop {
        let batch = {
            let mut queue = lock(&shared.queue);
            loop {
                if shared.stop.load(Ordering::Relaxed) {
                    return;
                }
                if let Some(batch) = queue.batches.pop_front() {
                    queue.records -= batch.records.len();
                    break batch;
                }
                queue = shared
                    .ready
                    .wait_timeout(queue, Duration::from_millis(50))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        };
        frame.clear();
        for record in &batch.records {
            encode(&record.line, &mut frame);
        }
        shared.checksum.fetch_xor(fnv1a(&frame), Ordering::Relaxed);
        let n = batch.records.len() as u32;
        std::thread::sleep(ROUND_TRIP + PER_RECORD * n);
        let done = Instant::now();
        let latency_us: f64 = batch
            .records
            .iter()
            .map(|r| done.duration_since(r.arrived).as_secs_f64() * 1e6)
            .sum();
        shared.account(batch.generation, latency_us, u64::from(n), 0);
    }
}

/// Parses `ts,user,verb,path,status,bytes` and appends its fields to
/// `frame`: varints, with the path hashed.
fn encode(line: &str, frame: &mut Vec<u8>) {
    let mut fields = line.split(',');
    let number = |f: Option<&str>| {
        f.and_then(|s| s.trim_start_matches('u').parse::<u64>().ok())
            .unwrap_or(0)
    };
    let ts = number(fields.next());
    let user = number(fields.next());
    let verb = match fields.next() {
        Some("GET") => 0,
        Some("PUT") => 1,
        Some("POST") => 2,
        _ => 3,
    };
    let path = fields.next().map_or(0, |p| fnv1a(p.as_bytes()));
    let status = number(fields.next());
    let bytes = number(fields.next());
    for v in [ts, user, verb, path, status, bytes] {
        let mut v = v;
        while v >= 0x80 {
            frame.push((v as u8) | 0x80);
            v >>= 7;
        }
        frame.push(v as u8);
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// xorshift64*: the records' content and arrival times.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Exponential with mean 1.
    fn exponential(&mut self) -> f64 {
        let u = ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        -u.ln()
    }

    fn record(&mut self) -> String {
        const VERBS: [&str; 3] = ["GET", "PUT", "POST"];
        const STATUS: [u16; 4] = [200, 200, 404, 500];
        let r = self.next();
        format!(
            "{},u{},{},/api/v1/items/{},{},{}",
            1_700_000_000_000u64 + (r >> 44),
            r % 100_000,
            VERBS[(r >> 20) as usize % 3],
            (r >> 8) % 10_000,
            STATUS[(r >> 30) as usize % 4],
            (r >> 34) % 65_536
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotpath::ParamVec;

    #[test]
    fn records_round_trip_through_the_encoder() {
        let mut rng = Rng::new(7);
        let line = rng.record();
        let mut frame = Vec::new();
        encode(&line, &mut frame);
        assert!(frame.len() >= 6, "{line} -> {frame:?}");
        assert_eq!(knobs(&[0.4, -1.0]), (1, Duration::ZERO));
        assert_eq!(knobs(&[16.6, 2.5]), (17, Duration::from_micros(2500)));
    }

    /// Prints the latency landscape the demo tunes (not run by default:
    /// `cargo test -p hotpath-cli --release -- --ignored landscape --nocapture`).
    #[test]
    #[ignore = "takes a minute; prints the demo's objective over a grid"]
    fn landscape() {
        for rate in [super::super::STEADY_RATE, super::super::PEAK_RATE] {
            for batch in [4.0, 8.0, 16.0, 48.0] {
                let mut row = format!("rate {rate:>6} batch {batch:>3}:");
                for linger in [0.15, 0.3, 0.5, 0.7, 1.0, 1.5, 2.5] {
                    let config =
                        Arc::new(AtomicConfig::new(ParamVec::from_slice(&[batch, linger])));
                    let p = Pipeline::start(&config, rate, 1).expect("threads");
                    std::thread::sleep(Duration::from_millis(300));
                    p.take();
                    std::thread::sleep(Duration::from_millis(700));
                    let b = p.take().into_iter().next().unwrap_or_default();
                    p.shutdown().expect("clean");
                    row.push_str(&format!(" {:>7.2}", b.mean_ms()));
                }
                println!("{row}");
            }
        }
    }
}
