//! [`AtomicConfig`]: the live configuration, published lock-free by one
//! writer and read wait-free (in practice) by any number of readers.
//!
//! The publication protocol, who may write and which read to use are
//! documented on [`AtomicConfig`] itself.

use crate::sync::{fence, spin_hint, Arc, AtomicBool, AtomicU64, Ordering};
use crate::ParamVec;
use serde::{Deserialize, Serialize};

/// A consistent copy of the configuration: every value from one publication.
///
/// ```
/// use hotpath::{AtomicConfig, ParamVec};
///
/// let config = AtomicConfig::new(ParamVec::from_slice(&[0.5, 0.5]));
/// let snap = config.snapshot();
/// assert_eq!(snap.generation, 0);
/// assert_eq!(&snap.params[..], &[0.5, 0.5]);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigSnapshot {
    /// Publication counter: 0 for the initial values, +1 for every change.
    /// Strictly increasing.
    pub generation: u64,
    /// The parameter values.
    pub params: ParamVec,
}

/// Identities of configurations for the threads' snapshot caches.
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many configurations' snapshots a thread keeps (least recently
/// inserted replaced first when full).
const CACHED_CONFIGS: usize = 4;

type CachedSnapshot = Option<(u64, std::sync::Arc<ConfigSnapshot>)>;

thread_local! {
    /// Per thread: the last snapshot `Arc` handed out, per configuration.
    static THREAD_SNAPSHOTS: std::cell::RefCell<[CachedSnapshot; CACHED_CONFIGS]> =
        const { std::cell::RefCell::new([None, None, None, None]) };
}

/// The highest generation a configuration starts at (2⁶²): at a million
/// publications per second, counting from there to `u64::MAX` takes over
/// 100,000 years.
pub const MAX_GENERATION: u64 = 1 << 62;

/// How many slots the writer rotates through (a power of two).
const SLOTS: usize = 4;

/// The slot generation `g` lives in.
#[inline]
fn slot_of(generation: u64) -> usize {
    (generation as usize) & (SLOTS - 1)
}

/// Eight words on a cache line of their own.
#[repr(align(64))]
struct Line([AtomicU64; 8]);

/// One copy of the configuration. Aligned, like [`AtomicConfig`] and the
/// value [`Line`]s, so that nothing else shares its cache lines: with plain
/// heap boxes the values shared lines with whatever the allocator put next
/// to them (the executor's scratch arrays, written on every apply), and
/// reads under a busy writer measured 11 or 35 ns depending on the heap's
/// layout in that run.
#[repr(align(64))]
struct Slot {
    /// Even: stable. Odd: the writer is filling this slot.
    seq: AtomicU64,
    generation: AtomicU64,
    lines: Box<[Line]>,
}

impl Slot {
    fn new(generation: u64, params: &[f64]) -> Self {
        let lines = params
            .chunks(8)
            .map(|chunk| {
                Line(std::array::from_fn(|i| {
                    AtomicU64::new(chunk.get(i).map_or(0, |v| v.to_bits()))
                }))
            })
            .collect();
        Self {
            seq: AtomicU64::new(0),
            generation: AtomicU64::new(generation),
            lines,
        }
    }
}

/// The live configuration: lock-free, atomically swappable, readable from any
/// thread. The number of parameters is fixed at construction.
///
/// # Model
///
/// The configuration is stored in four *slots* of atomic words (each `f64`
/// as its bit pattern in an `AtomicU64`), and a published generation
/// counter selects the live slot: generation `g` lives in slot `g % 4`.
///
/// * The **writer** fills the next slot (never the live one) under that
///   slot's sequence lock (odd sequence = being written), then stores the
///   new generation. Publication never waits for readers and never
///   allocates.
/// * A **reader** loads the generation, reads the live slot's words between
///   two reads of the slot's sequence, and accepts the copy only if the
///   sequence was even and unchanged and the slot holds the generation it
///   loaded. The writer comes back to a slot only every fourth
///   publication, so a reader retries only if four publications land inside
///   its read, which at the rates a [`SafetyExecutor`](crate::SafetyExecutor)
///   allows never happens; a writer descheduled mid-write does not stall
///   readers. (With two slots, a benchmark writer publishing millions of
///   times per second lapped readers slowed by cache misses, and `get`
///   swung between 11 and 21 ns from run to run; with four it stayed at
///   11 ns. BENCHMARKS.md.)
/// * Readers make **no writes to shared memory**: they only load atomics.
///
/// Every word is an atomic and every access goes through `std` (or `loom`)
/// atomics, so the module contains no `unsafe`. The protocol is model-checked
/// with loom (`RUSTFLAGS="--cfg loom" cargo test --release --lib loom`).
///
/// # Who may write
///
/// `AtomicConfig` has no public method that changes it. The only write path
/// is a `ConfigWriter` handle, which is crate-private and which
/// `AtomicConfig::claim_writer` hands out at most once at a time per
/// configuration (an `AtomicBool` claim, released when the handle drops).
/// [`SafetyExecutor`](crate::SafetyExecutor) claims it on construction, so
/// the executor is the sole writer: a second executor on the same config is
/// refused, and user code cannot obtain a writer at all. The API reference's
/// `AtomicConfig::update` is deliberately not public for that reason.
///
/// # Which read to use
///
/// | call | cost in steady state | allocates |
/// |------|---------------------|-----------|
/// | [`ConfigReader::get`] | one atomic load; copies only when the generation moved | no |
/// | [`AtomicConfig::read_into`] / [`AtomicConfig::load`] | one seqlock copy | no (≤ 16 params) |
/// | [`AtomicConfig::snapshot`] | one lock-free `Arc` load + a reference count; a copy when the generation moved | one `Arc` per generation, not per call |
///
///
/// ```
/// use hotpath::{AtomicConfig, ParamVec};
/// use std::sync::Arc;
///
/// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5, 0.25])));
/// // Any thread can read; none can write without the executor.
/// let reader = Arc::clone(&config);
/// let t = std::thread::spawn(move || reader.load().params[1]);
/// assert_eq!(t.join().unwrap(), 0.25);
/// ```
#[repr(align(64))]
pub struct AtomicConfig {
    generation: AtomicU64,
    slots: [Slot; SLOTS],
    len: usize,
    writer_claimed: AtomicBool,
    /// The `Arc` [`snapshot`](Self::snapshot) shares for its generation.
    shared: arc_swap::ArcSwap<ConfigSnapshot>,
    /// This configuration's identity in the threads' snapshot caches
    /// (never reused, unlike an address).
    id: u64,
}

impl AtomicConfig {
    /// A configuration holding `initial` at generation 0.
    pub fn new(initial: ParamVec) -> Self {
        Self::with_generation(initial, 0)
    }

    /// A configuration holding `initial` at `generation`, for restoring a
    /// persisted configuration so that generations keep rising across
    /// restarts. A generation above [`MAX_GENERATION`] (only a corrupt file
    /// can carry one) is clamped to it, so publishing can never overflow the
    /// counter and make it go backwards.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ParamVec};
    ///
    /// let config = AtomicConfig::with_generation(ParamVec::from_slice(&[1.0]), 41);
    /// assert_eq!(config.generation(), 41);
    /// ```
    pub fn with_generation(initial: ParamVec, generation: u64) -> Self {
        // Every slot starts as a copy, so a reader racing the first
        // publications never sees uninitialised data.
        let generation = generation.min(MAX_GENERATION);
        Self {
            generation: AtomicU64::new(generation),
            slots: std::array::from_fn(|_| Slot::new(generation, &initial)),
            len: initial.len(),
            writer_claimed: AtomicBool::new(false),
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            shared: arc_swap::ArcSwap::from_pointee(ConfigSnapshot {
                generation,
                params: initial.clone(),
            }),
        }
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` if the configuration has no parameters.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The generation most recently published: one atomic load.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Copies the live values into `out` (resized to [`len`](Self::len)) and
    /// returns their generation. Allocation-free when `out` is inline
    /// (≤ [`INLINE_PARAMS`](crate::INLINE_PARAMS) values) or already large
    /// enough.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ParamVec};
    ///
    /// let config = AtomicConfig::new(ParamVec::from_slice(&[3.0, 4.0]));
    /// let mut buf = ParamVec::new();
    /// assert_eq!(config.read_into(&mut buf), 0);
    /// assert_eq!(&buf[..], &[3.0, 4.0]);
    /// ```
    pub fn read_into(&self, out: &mut ParamVec) -> u64 {
        out.resize(self.len, 0.0);
        loop {
            let generation = self.generation.load(Ordering::Acquire);
            let slot = &self.slots[slot_of(generation)];
            let before = slot.seq.load(Ordering::Acquire);
            if before & 1 == 1 {
                spin_hint();
                continue;
            }
            let slot_generation = slot.generation.load(Ordering::Relaxed);
            for (dst, line) in out.chunks_mut(8).zip(slot.lines.iter()) {
                for (dst, word) in dst.iter_mut().zip(&line.0) {
                    *dst = f64::from_bits(word.load(Ordering::Relaxed));
                }
            }
            // Orders the word loads before the re-check of the sequence: if
            // any load saw a write of a newer publication, the writer's
            // release fence makes its odd sequence visible below.
            fence(Ordering::Acquire);
            let after = slot.seq.load(Ordering::Relaxed);
            // `slot_generation != generation` means the writer lapped us and
            // refilled this slot with a newer generation; returning it could
            // make a later read return an older one, so retry instead.
            if before == after && slot_generation == generation {
                return generation;
            }
            spin_hint();
        }
    }

    /// A consistent copy of the live configuration, by value. Allocation-free
    /// for up to [`INLINE_PARAMS`](crate::INLINE_PARAMS) parameters.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ParamVec};
    ///
    /// let config = AtomicConfig::new(ParamVec::from_slice(&[1.0, 2.0]));
    /// let snap = config.load();
    /// assert_eq!((snap.generation, snap.params[0]), (0, 1.0));
    /// ```
    pub fn load(&self) -> ConfigSnapshot {
        let mut params = ParamVec::zeros(self.len);
        let generation = self.read_into(&mut params);
        ConfigSnapshot { generation, params }
    }

    /// The reference API's convenience read: a consistent copy behind an
    /// `Arc`, cheap to pass around and keep.
    ///
    /// Every caller of one generation gets the same `Arc`, and while the
    /// generation is unchanged a call neither allocates nor locks: each
    /// thread keeps the last `Arc` it got of each of (up to) four
    /// configurations, so the common call is one atomic load of the
    /// generation, a look in the thread's cache and a reference-count
    /// increment (cheaper than an `RwLock<Arc<_>>` read, which writes the
    /// lock word twice). After a publication, the first call on a thread
    /// takes the new `Arc` from a cache shared by all threads (a lock-free
    /// `arc-swap` load), and the first call anywhere copies the
    /// configuration into it: one allocation per generation, by a reader,
    /// never by the writer. A caller that loses the race to cache a newer
    /// generation still returns its own consistent copy, and the shared
    /// cache never goes back to an older generation. (Unlike
    /// [`ConfigReader::get`], it writes to shared memory: the count.)
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ParamVec};
    /// use std::sync::Arc;
    ///
    /// let config = AtomicConfig::new(ParamVec::from_slice(&[0.5]));
    /// let (a, b) = (config.snapshot(), config.snapshot());
    /// assert!(Arc::ptr_eq(&a, &b)); // unchanged: the same Arc
    /// assert_eq!(a.params[0], 0.5);
    /// ```
    pub fn snapshot(&self) -> std::sync::Arc<ConfigSnapshot> {
        let generation = self.generation();
        let cached = THREAD_SNAPSHOTS.try_with(|cache| {
            let cache = cache.borrow();
            let hit = cache
                .iter()
                .flatten()
                .find(|(id, s)| *id == self.id && s.generation == generation);
            hit.map(|(_, s)| std::sync::Arc::clone(s))
        });
        if let Ok(Some(hit)) = cached {
            return hit;
        }
        let fresh = self.shared_snapshot(generation);
        // During the thread's own teardown there is no cache: skip it.
        let _ = THREAD_SNAPSHOTS.try_with(|cache| {
            let mut cache = cache.borrow_mut();
            let mine = |e: &CachedSnapshot| e.as_ref().is_none_or(|(id, _)| *id == self.id);
            let slot = cache.iter().position(mine).unwrap_or_else(|| {
                cache.rotate_left(1); // full of others: the oldest goes
                CACHED_CONFIGS - 1
            });
            cache[slot] = Some((self.id, std::sync::Arc::clone(&fresh)));
        });
        fresh
    }

    /// The shared `Arc` of `generation` (or a newer one), creating it if
    /// the shared cache holds an older one.
    fn shared_snapshot(&self, generation: u64) -> std::sync::Arc<ConfigSnapshot> {
        let cached = self.shared.load_full();
        if cached.generation >= generation {
            return cached;
        }
        let fresh = std::sync::Arc::new(self.load());
        if fresh.generation > cached.generation {
            // Fails if another caller cached a newer one meanwhile: keep it.
            self.shared
                .compare_and_swap(&cached, std::sync::Arc::clone(&fresh));
        }
        fresh
    }

    /// A cached reader for one thread's hot path. See [`ConfigReader`].
    pub fn reader(self: &Arc<Self>) -> ConfigReader {
        ConfigReader::new(Arc::clone(self))
    }

    /// Takes the single writer handle, or `None` if another holder (an
    /// executor) has it. Crate-private: only the executor writes.
    pub(crate) fn claim_writer(self: &Arc<Self>) -> Option<ConfigWriter> {
        self.writer_claimed
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| ConfigWriter {
                config: Arc::clone(self),
            })
    }
}

impl std::fmt::Debug for AtomicConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let snap = self.load();
        f.debug_struct("AtomicConfig")
            .field("generation", &snap.generation)
            .field("params", &snap.params)
            .finish()
    }
}

/// The one handle that can publish to an [`AtomicConfig`]. Not `Clone`;
/// `publish` takes `&mut self`, so publications are serialised by the borrow
/// checker and the generation is strictly increasing.
pub(crate) struct ConfigWriter {
    config: Arc<AtomicConfig>,
}

impl ConfigWriter {
    /// Publishes `params` as the next generation and returns it.
    ///
    /// The executor checks the length before calling; a mismatched slice
    /// writes only the common prefix (never panics), which no caller in the
    /// crate can produce.
    pub(crate) fn publish(&mut self, params: &[f64]) -> u64 {
        debug_assert_eq!(params.len(), self.config.len);
        let config = &*self.config;
        // Only this handle stores `generation`, so a relaxed load is exact.
        let generation = config.generation.load(Ordering::Relaxed) + 1;
        let slot = &config.slots[slot_of(generation)];
        let seq = slot.seq.load(Ordering::Relaxed);
        slot.seq.store(seq + 1, Ordering::Relaxed);
        // Keeps the odd sequence ahead of the data stores (see `read_into`).
        fence(Ordering::Release);
        slot.generation.store(generation, Ordering::Relaxed);
        for (values, line) in params.chunks(8).zip(slot.lines.iter()) {
            for (word, value) in line.0.iter().zip(values) {
                word.store(value.to_bits(), Ordering::Relaxed);
            }
        }
        slot.seq.store(seq + 2, Ordering::Release);
        config.generation.store(generation, Ordering::Release);
        generation
    }
}

impl Drop for ConfigWriter {
    fn drop(&mut self) {
        self.config.writer_claimed.store(false, Ordering::Release);
    }
}

/// A per-thread cached view of an [`AtomicConfig`] for hot paths.
///
/// [`get`](ConfigReader::get) costs one atomic load of the generation while
/// the configuration is unchanged, and re-reads the values only when the
/// generation moved. It never writes to memory shared with other threads and
/// never allocates for up to [`INLINE_PARAMS`](crate::INLINE_PARAMS)
/// parameters. Each thread keeps its own reader (it is `Send`, and `get`
/// takes `&mut self`).
///
/// ```
/// use hotpath::{AtomicConfig, ParamVec};
/// use std::sync::Arc;
///
/// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[64.0, 8.0])));
/// let mut reader = config.reader();
/// let snap = reader.get();
/// let batch_size = snap.params[0] as usize;
/// assert_eq!(batch_size, 64);
/// ```
pub struct ConfigReader {
    config: Arc<AtomicConfig>,
    cached: ConfigSnapshot,
}

impl ConfigReader {
    /// A reader over `config`, primed with its current values.
    pub fn new(config: Arc<AtomicConfig>) -> Self {
        let cached = config.load();
        Self { config, cached }
    }

    /// The current configuration. One atomic load when nothing changed.
    #[inline]
    pub fn get(&mut self) -> &ConfigSnapshot {
        if self.config.generation() != self.cached.generation {
            self.cached.generation = self.config.read_into(&mut self.cached.params);
        }
        &self.cached
    }

    /// The configuration as last read by [`get`](Self::get), without
    /// checking for a newer one.
    pub fn cached(&self) -> &ConfigSnapshot {
        &self.cached
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool as StdAtomicBool;

    #[test]
    fn only_one_writer_at_a_time() {
        let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[1.0])));
        let w = config.claim_writer();
        assert!(w.is_some());
        assert!(config.claim_writer().is_none());
        drop(w);
        assert!(config.claim_writer().is_some());
    }

    #[test]
    fn publish_increments_generation_and_values() {
        let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[1.0, 2.0])));
        let mut w = config.claim_writer().unwrap();
        assert_eq!(w.publish(&[3.0, 4.0]), 1);
        assert_eq!(w.publish(&[5.0, 6.0]), 2);
        let snap = config.load();
        assert_eq!(snap.generation, 2);
        assert_eq!(&snap.params[..], &[5.0, 6.0]);
        assert_eq!(config.snapshot().generation, 2);
    }

    #[test]
    fn read_into_resizes_the_buffer() {
        let config = AtomicConfig::new(ParamVec::from_slice(&[1.0, 2.0, 3.0]));
        let mut buf = ParamVec::from_slice(&[9.0]);
        config.read_into(&mut buf);
        assert_eq!(&buf[..], &[1.0, 2.0, 3.0]);
    }

    #[test]
    fn reader_follows_publications() {
        let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[1.0])));
        let mut reader = config.reader();
        let mut w = config.claim_writer().unwrap();
        assert_eq!(reader.get().params[0], 1.0);
        w.publish(&[2.0]);
        assert_eq!(reader.cached().params[0], 1.0);
        let snap = reader.get();
        assert_eq!((snap.generation, snap.params[0]), (1, 2.0));
    }

    #[test]
    fn absurd_restored_generation_is_clamped_and_still_rises() {
        let config = Arc::new(AtomicConfig::with_generation(
            ParamVec::from_slice(&[1.0]),
            u64::MAX,
        ));
        assert_eq!(config.generation(), MAX_GENERATION);
        let mut w = config.claim_writer().unwrap();
        assert_eq!(w.publish(&[2.0]), MAX_GENERATION + 1);
    }

    #[test]
    fn restored_generation_keeps_rising() {
        let config = Arc::new(AtomicConfig::with_generation(
            ParamVec::from_slice(&[1.0]),
            7,
        ));
        let mut w = config.claim_writer().unwrap();
        assert_eq!(w.publish(&[2.0]), 8);
        assert_eq!(config.load().params[0], 2.0);
    }

    /// Real threads: readers on every core while one writer publishes
    /// vectors whose values are all equal to the generation. A torn read
    /// would mix values; a stale one would go backwards.
    #[test]
    fn stress_readers_never_see_torn_or_older_snapshots() {
        const PARAMS: usize = 16;
        const PUBLICATIONS: u64 = 200_000;
        let config = Arc::new(AtomicConfig::new(ParamVec::zeros(PARAMS)));
        let done = Arc::new(StdAtomicBool::new(false));
        let readers: Vec<_> = (0..std::thread::available_parallelism().map_or(2, |n| n.get()))
            .map(|_| {
                let config = Arc::clone(&config);
                let done = Arc::clone(&done);
                std::thread::spawn(move || {
                    let mut reader = config.reader();
                    let mut buf = ParamVec::new();
                    let (mut last, mut reads) = (0u64, 0u64);
                    while !done.load(Ordering::Relaxed) {
                        let g = config.read_into(&mut buf);
                        assert!(g >= last, "generation went backwards: {g} < {last}");
                        assert!(
                            buf.iter().all(|v| *v == g as f64),
                            "torn read at {g}: {buf:?}"
                        );
                        let snap = reader.get();
                        assert!(snap.generation >= g);
                        assert!(snap.params.iter().all(|v| *v == snap.generation as f64));
                        last = g;
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        let mut writer = config.claim_writer().unwrap();
        let mut values = [0.0; PARAMS];
        for g in 1..=PUBLICATIONS {
            values.fill(g as f64);
            assert_eq!(writer.publish(&values), g);
        }
        done.store(true, Ordering::Relaxed);
        let total: u64 = readers.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(total > 0);
        assert_eq!(config.generation(), PUBLICATIONS);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;

    /// Two publications race two reads on another thread: each read must
    /// return one whole publication (all values equal to its generation) and
    /// generations must not go backwards.
    #[test]
    fn loom_reader_sees_whole_snapshots_in_order() {
        loom::model(|| {
            let config = Arc::new(AtomicConfig::new(ParamVec::zeros(2)));
            let mut writer = config.claim_writer().unwrap();
            let reader_config = Arc::clone(&config);
            let reader = loom::thread::spawn(move || {
                let mut buf = ParamVec::new();
                let first = reader_config.read_into(&mut buf);
                assert!(buf.iter().all(|v| *v == first as f64));
                let second = reader_config.read_into(&mut buf);
                assert!(buf.iter().all(|v| *v == second as f64));
                assert!(second >= first);
            });
            writer.publish(&[1.0, 1.0]);
            writer.publish(&[2.0, 2.0]);
            reader.join().unwrap();
            assert_eq!(config.generation(), 2);
        });
    }

    /// Three publications, so the writer laps the reader's slot.
    #[test]
    fn loom_writer_lapping_a_reader_is_detected() {
        loom::model(|| {
            let config = Arc::new(AtomicConfig::new(ParamVec::zeros(1)));
            let mut writer = config.claim_writer().unwrap();
            let reader_config = Arc::clone(&config);
            let reader = loom::thread::spawn(move || {
                let mut buf = ParamVec::new();
                let g = reader_config.read_into(&mut buf);
                assert_eq!(buf[0], g as f64);
            });
            // Enough publications to come back to the reader's slot.
            for g in 1..=SLOTS as u64 + 1 {
                writer.publish(&[g as f64]);
            }
            reader.join().unwrap();
        });
    }
}
