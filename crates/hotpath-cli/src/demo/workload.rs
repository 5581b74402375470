//! The demo's service: a batching pipeline over generated records.
//!
//! A producer thread generates access-log records (Poisson arrivals at the
//! offered rate) and groups them into batches the way a Kafka producer
//! does: a batch is closed when it holds `batch_size` records or when its
//! first record has waited `linger_ms`, whichever comes first. Closed
//! batches queue for [`SENDERS`] sender threads, which encode every record
//! into a frame in the batch's `encoding`, checksum the frame, and then
//! wait for a simulated network round trip of [`ROUND_TRIP`] plus
//! [`PER_BYTE`] per byte of the frame. The latency of a record runs from
//! its arrival to the end of its batch's round trip.
//!
//! The `encoding` is a choice knob with a real cost difference: what goes
//! on the wire. `json` writes each record as a JSON object, `csv` sends the
//! line as it came, `varint` parses it, hashes the path and varint-encodes
//! the fields. Measured over 200,000 generated records (the `encodings`
//! test: `cargo test -p hotpath-cli --release -- --ignored encodings
//! --nocapture`; this machine, shared, one run):
//!
//! | encoding | bytes per record | encode + checksum | on the wire at [`PER_BYTE`] |
//! |----------|------------------|-------------------|-----------------------------|
//! | `json`   | 104.9            | 257 ns            | 21.0 µs                     |
//! | `csv`    | 53.9             | 78 ns             | 10.8 µs                     |
//! | `varint` | 24.2             | 104 ns            | 4.8 µs                      |
//!
//! So the wire dominates and `varint` is the best option at every load,
//! but how much it matters depends on the batch: every record of a batch
//! waits for the whole batch's transfer, so a steady-load batch of about
//! three records gains some 18 µs from `csv` to `varint`, a peak-load batch
//! of 48 about 290 µs (over a 1 ms round trip). Under the steady load the
//! options are hard to tell apart through the noise; under the peak they
//! are not.
//!
//! The trade-off is real: small batches closed early keep records from
//! waiting but pay a round trip each, so at a high offered rate they
//! saturate the senders and queue up; big batches and long lingers keep the
//! senders free but make every record wait for its batch. Where the best
//! setting lies depends on the offered rate.
//!
//! The producer reads the knobs through a [`ConfigReader`], by the typed
//! handles looked up once at start ([`Knobs`]), and tags each batch with
//! the config generation and the encoding it was closed under; senders account
//! latency per generation, so the control loop can report each generation's
//! measurements separately. When more than [`MAX_QUEUED`] records are
//! queued, new batches are shed and each shed record counts as a latency of
//! [`SHED_PENALTY_US`].

use crate::CliError;
use hotpath::{
    AtomicConfig, ChoiceKnob, ConfigReader, ConfigSnapshot, IntKnob, ParamSpace, RealKnob,
};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Sender threads (requests in flight at once).
pub const SENDERS: usize = 2;
/// Fixed cost of one request to the (simulated) downstream.
pub const ROUND_TRIP: Duration = Duration::from_micros(1000);
/// Transfer cost per byte of a request's frame (a 40 Mbit/s link).
pub const PER_BYTE: Duration = Duration::from_nanos(200);
/// The `encoding` knob's options, in index order.
pub const ENCODINGS: [&str; 3] = ["json", "csv", "varint"];
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
    encoding: Encoding,
    records: Vec<Record>,
}

/// How a sender writes a record into its batch's frame (the `encoding`
/// knob, [`ENCODINGS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Json,
    Csv,
    Varint,
}

impl Encoding {
    /// The option of index `index` (an index the executor guarantees).
    fn of(index: usize) -> Self {
        match index {
            0 => Encoding::Json,
            1 => Encoding::Csv,
            _ => Encoding::Varint,
        }
    }

    /// Appends `line` to `frame`.
    fn write(self, line: &str, frame: &mut Vec<u8>) {
        match self {
            Encoding::Json => json(line, frame),
            Encoding::Csv => {
                frame.extend_from_slice(line.as_bytes());
                frame.push(b'\n');
            }
            Encoding::Varint => varint(line, frame),
        }
    }
}

/// The knobs the pipeline reads, looked up by name and kind once.
#[derive(Debug, Clone, Copy)]
pub struct Knobs {
    batch_size: IntKnob,
    linger_ms: RealKnob,
    encoding: ChoiceKnob,
}

impl Knobs {
    /// The handles of `batch_size` (integer), `linger_ms` (real) and
    /// `encoding` (a choice of [`ENCODINGS`]) in `space`.
    ///
    /// # Errors
    ///
    /// [`CliError::Demo`] if one is missing, of another kind, or the
    /// encoding's options are not [`ENCODINGS`].
    pub fn of(space: &ParamSpace) -> Result<Self, CliError> {
        let bad = |e: hotpath::KnobLookupError| CliError::Demo(format!("the demo's config: {e}"));
        let knobs = Self {
            batch_size: space.int("batch_size").map_err(bad)?,
            linger_ms: space.real("linger_ms").map_err(bad)?,
            encoding: space.choice("encoding").map_err(bad)?,
        };
        let options: Vec<Option<&str>> = (0..=ENCODINGS.len())
            .map(|i| space.option(knobs.encoding, i))
            .collect();
        let expected: Vec<Option<&str>> =
            ENCODINGS.iter().map(|e| Some(*e)).chain([None]).collect();
        if options != expected {
            return Err(CliError::Demo(format!(
                "the demo's config: encoding's options must be {ENCODINGS:?}"
            )));
        }
        Ok(knobs)
    }

    /// `(batch size, linger, encoding)` as the producer uses them.
    fn read(self, snapshot: &ConfigSnapshot) -> (usize, Duration, Encoding) {
        let batch = snapshot.get(self.batch_size).max(1) as usize;
        let linger_ms = snapshot.get(self.linger_ms).max(0.0);
        let linger = Duration::try_from_secs_f64(linger_ms / 1000.0).unwrap_or(Duration::ZERO);
        (batch, linger, Encoding::of(snapshot.get(self.encoding)))
    }
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
    fn dispatch(&self, generation: u64, encoding: Encoding, records: &mut Vec<Record>) {
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
            encoding,
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
    /// (see [`Knobs`]) from `config`.
    ///
    /// # Errors
    ///
    /// [`CliError::Demo`] if `space` lacks the knobs or a thread cannot
    /// start.
    pub fn start(
        config: &Arc<AtomicConfig>,
        space: &ParamSpace,
        rate: u64,
        seed: u64,
    ) -> Result<Self, CliError> {
        let knobs = Knobs::of(space)?;
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
            Box::new(move || produce(&shared, reader, knobs, seed)),
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

fn produce(shared: &Shared, mut reader: ConfigReader, knobs: Knobs, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut next = Instant::now();
    let mut open: Vec<Record> = Vec::new();
    let mut opened: Option<Instant> = None;
    while !shared.stop.load(Ordering::Relaxed) {
        let snapshot = reader.get();
        let (batch, linger, encoding) = knobs.read(snapshot);
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
                shared.dispatch(generation, encoding, &mut open);
                opened = None;
            }
            next += Duration::from_secs_f64(rng.exponential() / rate);
        }
        if opened.is_some_and(|t| now >= t + linger) {
            shared.dispatch(generation, encoding, &mut open);
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
            batch.encoding.write(&record.line, &mut frame);
        }
        shared.checksum.fetch_xor(fnv1a(&frame), Ordering::Relaxed);
        let n = batch.records.len() as u32;
        let bytes = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        std::thread::sleep(ROUND_TRIP + PER_BYTE * bytes);
        let done = Instant::now();
        let latency_us: f64 = batch
            .records
            .iter()
            .map(|r| done.duration_since(r.arrived).as_secs_f64() * 1e6)
            .sum();
        shared.account(batch.generation, latency_us, u64::from(n), 0);
    }
}

/// A record's fields: `ts,user,verb,path,status,bytes`.
struct Fields<'a> {
    ts: u64,
    user: u64,
    verb: &'a str,
    path: &'a str,
    status: u64,
    bytes: u64,
}

impl<'a> Fields<'a> {
    fn parse(line: &'a str) -> Self {
        let mut fields = line.split(',');
        let mut text = || fields.next().unwrap_or("");
        let number = |s: &str| s.trim_start_matches('u').parse::<u64>().unwrap_or(0);
        let (ts, user, verb, path) = (number(text()), number(text()), text(), text());
        Self {
            ts,
            user,
            verb,
            path,
            status: number(text()),
            bytes: number(text()),
        }
    }
}

/// Appends the record as a JSON object and a newline.
fn json(line: &str, frame: &mut Vec<u8>) {
    use std::io::Write as _;
    let f = Fields::parse(line);
    // Writing into a Vec cannot fail.
    let _ = writeln!(
        frame,
        "{{\"ts\":{},\"user\":\"u{}\",\"verb\":\"{}\",\"path\":\"{}\",\"status\":{},\"bytes\":{}}}",
        f.ts, f.user, f.verb, f.path, f.status, f.bytes
    );
}

/// Appends the record's fields as varints, with the path hashed.
fn varint(line: &str, frame: &mut Vec<u8>) {
    let f = Fields::parse(line);
    let verb = match f.verb {
        "GET" => 0,
        "PUT" => 1,
        "POST" => 2,
        _ => 3,
    };
    let path = fnv1a(f.path.as_bytes());
    for v in [f.ts, f.user, verb, path, f.status, f.bytes] {
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

    fn space() -> ParamSpace {
        ParamSpace::new(vec![
            hotpath::Knob::int("batch_size", 1, 64, 48),
            hotpath::Knob::real("linger_ms", 0.1, 6.0, 2.5).log(),
            hotpath::Knob::choice("encoding", ENCODINGS, "csv"),
        ])
        .expect("valid")
    }

    /// Bytes per record of each encoding, over `n` generated records.
    fn sizes(n: usize) -> [f64; 3] {
        let mut rng = Rng::new(7);
        let lines: Vec<String> = (0..n).map(|_| rng.record()).collect();
        [Encoding::Json, Encoding::Csv, Encoding::Varint].map(|e| {
            let mut frame = Vec::new();
            for line in &lines {
                e.write(line, &mut frame);
            }
            frame.len() as f64 / n as f64
        })
    }

    #[test]
    fn encodings_differ_in_what_goes_on_the_wire() {
        let [json, csv, varint] = sizes(1000);
        assert!(
            json > 1.8 * csv && csv > 1.8 * varint,
            "{json} {csv} {varint}"
        );
        let mut frame = Vec::new();
        Encoding::Json.write("1700000000001,u42,GET,/api/v1/items/7,200,99", &mut frame);
        let record: serde_json::Value = serde_json::from_slice(&frame).expect("a JSON object");
        assert_eq!(record["user"], "u42");
        assert_eq!(record["bytes"], 99);
    }

    #[test]
    fn the_knobs_are_read_by_their_typed_handles() {
        let space = space();
        let knobs = Knobs::of(&space).expect("the demo's knobs");
        let config = AtomicConfig::new(space.initial());
        assert_eq!(
            knobs.read(&config.load()),
            (48, Duration::from_micros(2500), Encoding::Csv)
        );
        let reals = ParamSpace::new(vec![hotpath::Knob::real("batch_size", 1.0, 64.0, 48.0)])
            .expect("valid");
        let e = Knobs::of(&reals).unwrap_err().to_string();
        assert!(e.contains("is a real knob, not an integer knob"), "{e}");
        let other = ParamSpace::new(vec![
            hotpath::Knob::int("batch_size", 1, 64, 48),
            hotpath::Knob::real("linger_ms", 0.1, 6.0, 2.5),
            hotpath::Knob::choice("encoding", ["json", "csv"], "csv"),
        ])
        .expect("valid");
        assert!(Knobs::of(&other).is_err());
    }

    /// Prints what each encoding costs: bytes and encoding time per record
    /// (not run by default: `cargo test -p hotpath-cli --release --
    /// --ignored encodings --nocapture`).
    #[test]
    #[ignore = "prints the encodings' measured costs"]
    fn encodings() {
        const N: usize = 200_000;
        let mut rng = Rng::new(7);
        let lines: Vec<String> = (0..N).map(|_| rng.record()).collect();
        let sizes = sizes(N);
        for (i, e) in [Encoding::Json, Encoding::Csv, Encoding::Varint]
            .into_iter()
            .enumerate()
        {
            let mut frame = Vec::with_capacity(N * 128);
            let started = Instant::now();
            for line in &lines {
                e.write(line, &mut frame);
            }
            let sum = fnv1a(&frame);
            let ns = started.elapsed().as_nanos() as f64 / N as f64;
            let wire_us = sizes[i] * PER_BYTE.as_nanos() as f64 / 1000.0;
            println!(
                "{:<7} {:6.1} bytes/record  {ns:6.0} ns/record to encode and checksum  {wire_us:5.1} µs/record on the wire  ({sum:x})",
                ENCODINGS[i], sizes[i]
            );
        }
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
                    let values = [batch, linger, 2.0];
                    let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&values)));
                    let p = Pipeline::start(&config, &space(), rate, 1).expect("threads");
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
