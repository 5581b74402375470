//! [`SlotRing`]: the bounded lock-free queue under [`AuditQueue`](super::AuditQueue).
//!
//! # Why not `crossbeam_queue::ArrayQueue`
//!
//! The protocol is the same (Dmitry Vyukov's bounded MPMC array queue, with
//! crossbeam's lap-stamped indices). What differs is where the data lives.
//! `ArrayQueue<T>` moves each `T` by value: into the slot on push, out of it
//! on pop. An audit event with two 16-value parameter vectors is 320 bytes,
//! and moving it four times per round trip cost 55 ns against 12.7 ns for a
//! `u64` through the same queue (`benches/hotpath.rs`, BENCHMARKS.md). Here
//! every slot holds an **initialised** `T` for the queue's whole life, the
//! producer overwrites it in place through `&mut T` (reusing the inline and
//! heap storage of the event that was there before) and the consumer reads
//! it through `&T`. An event is written once and read once.
//!
//! # Invariants (what the `unsafe` blocks rely on)
//!
//! Positions are `lap | index` with `index < cap` and `lap` a multiple of
//! `one_lap` (the next power of two above `cap`). Slot `i` starts with stamp
//! `i`. For a position `p` at slot `p & (one_lap − 1)`:
//!
//! * stamp `== p`: the slot is free for the producer that claims `p`;
//! * stamp `== p + 1`: it holds the value written at `p`, for the consumer
//!   that claims `p`;
//! * a claim is a successful compare-exchange of `tail` (producers) or
//!   `head` (consumers) from `p` to the next position, so **exactly one
//!   thread claims a position**, and between its claim and its stamp store
//!   no other thread can claim that slot: a producer needs stamp `== p'` for
//!   a later position `p'`, a consumer needs stamp `== p' + 1`, and the
//!   stamp only moves by the claimant's own `Release` store, which the next
//!   claimant reads with `Acquire`.
//!
//! Hence the claimant has exclusive access to the slot's value from its
//! claim until its stamp store, and the `Release`/`Acquire` pair orders the
//! producer's writes before the consumer's reads (and the consumer's reads
//! before the next producer's writes). The stamp store happens in a drop
//! guard, so a panicking closure still hands the slot on rather than
//! wedging the queue.

#![allow(unsafe_code)]

use crate::sync::{fence, spin_hint, AtomicUsize, Ordering, UnsafeCell};
use crossbeam_utils::CachePadded;

struct Slot<T> {
    stamp: AtomicUsize,
    value: UnsafeCell<T>,
}

/// A bounded multi-producer multi-consumer queue of always-initialised
/// slots, written and read in place.
pub(crate) struct SlotRing<T> {
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
    slots: Box<[Slot<T>]>,
    cap: usize,
    one_lap: usize,
}

// SAFETY: a `T` is only reached through a claimed slot (module docs), so at
// most one thread touches it at a time and the stamps order the accesses:
// the ring hands `T`s between threads like a channel does, which needs
// `T: Send` and nothing more.
unsafe impl<T: Send> Send for SlotRing<T> {}
// SAFETY: as above; `&SlotRing` gives no unsynchronised access to a `T`.
unsafe impl<T: Send> Sync for SlotRing<T> {}

/// Publishes a claimed slot's new stamp when dropped, so a closure that
/// panics cannot leave the slot claimed forever.
struct Publish<'a> {
    stamp: &'a AtomicUsize,
    value: usize,
}

impl Drop for Publish<'_> {
    #[inline]
    fn drop(&mut self) {
        self.stamp.store(self.value, Ordering::Release);
    }
}

impl<T> SlotRing<T> {
    /// A ring of `cap` slots (at least 1), each initialised with `fill()`.
    pub(crate) fn new(cap: usize, mut fill: impl FnMut() -> T) -> Self {
        let cap = cap.max(1);
        let one_lap = (cap + 1).next_power_of_two();
        let slots = (0..cap)
            .map(|i| Slot {
                stamp: AtomicUsize::new(i),
                value: UnsafeCell::new(fill()),
            })
            .collect();
        Self {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            slots,
            cap,
            one_lap,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    /// The position after `pos`.
    #[inline]
    fn next(&self, pos: usize) -> usize {
        let index = pos & (self.one_lap - 1);
        if index + 1 < self.cap {
            pos + 1
        } else {
            (pos & !(self.one_lap - 1)).wrapping_add(self.one_lap)
        }
    }

    /// Values between a `head` and a `tail` position.
    #[inline]
    fn distance(&self, head: usize, tail: usize) -> usize {
        let hix = head & (self.one_lap - 1);
        let tix = tail & (self.one_lap - 1);
        if hix < tix {
            tix - hix
        } else if hix > tix {
            self.cap - hix + tix
        } else if tail == head {
            0
        } else {
            self.cap
        }
    }

    #[inline]
    fn slot(&self, pos: usize) -> &Slot<T> {
        // `pos & (one_lap − 1) < cap` for every position the ring makes.
        &self.slots[pos & (self.one_lap - 1)]
    }

    /// Claims the next slot if fewer than `limit` values are queued, lets
    /// `write` overwrite the value in place, and publishes it. `false` (and
    /// `write` not called) if the queue holds `limit` values or more.
    #[inline]
    pub(crate) fn push_with(&self, limit: usize, write: impl FnOnce(&mut T)) -> bool {
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            let slot = self.slot(tail);
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == tail {
                if limit < self.cap {
                    let head = self.head.load(Ordering::Relaxed);
                    if self.distance(head, tail) >= limit {
                        // Only a verdict if `tail` is still current: then
                        // `head` cannot have passed it.
                        let current = self.tail.load(Ordering::Relaxed);
                        if current == tail {
                            return false;
                        }
                        tail = current;
                        continue;
                    }
                }
                match self.tail.compare_exchange(
                    tail,
                    self.next(tail),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        let _publish = Publish {
                            stamp: &slot.stamp,
                            value: tail + 1,
                        };
                        slot.value.with_mut(|value| {
                            // SAFETY: our compare-exchange claimed position
                            // `tail`, whose slot is free (stamp == tail): no
                            // other thread reaches this value until
                            // `_publish` stores the new stamp (module docs).
                            write(unsafe { &mut *value })
                        });
                        return true;
                    }
                    Err(current) => {
                        tail = current;
                        spin_hint();
                    }
                }
            } else if stamp.wrapping_add(self.one_lap) == tail + 1 {
                // The slot still holds last lap's value: full, unless a
                // consumer is between its claim and its release.
                fence(Ordering::SeqCst);
                let head = self.head.load(Ordering::Relaxed);
                if head.wrapping_add(self.one_lap) == tail {
                    return false;
                }
                spin_hint();
                tail = self.tail.load(Ordering::Relaxed);
            } else {
                // Another producer claimed `tail` and has not published yet.
                spin_hint();
                tail = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Claims the oldest value, lets `read` look at it in place, and frees
    /// the slot. `None` (and `read` not called) if the queue is empty.
    #[inline]
    pub(crate) fn pop_with<R>(&self, read: impl FnOnce(&T) -> R) -> Option<R> {
        self.pop_with_mut(|value| read(value))
    }

    /// [`pop_with`](Self::pop_with), lending the value mutably (to move it
    /// out, leaving a placeholder for the next producer).
    #[inline]
    pub(crate) fn pop_with_mut<R>(&self, read: impl FnOnce(&mut T) -> R) -> Option<R> {
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            let slot = self.slot(head);
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == head + 1 {
                match self.head.compare_exchange(
                    head,
                    self.next(head),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        let _publish = Publish {
                            stamp: &slot.stamp,
                            value: head.wrapping_add(self.one_lap),
                        };
                        return Some(slot.value.with_mut(|value| {
                            // SAFETY: our compare-exchange claimed position
                            // `head`, whose value was published (stamp ==
                            // head + 1, read with Acquire): no other thread
                            // touches it until `_publish` frees the slot.
                            read(unsafe { &mut *value })
                        }));
                    }
                    Err(current) => {
                        head = current;
                        spin_hint();
                    }
                }
            } else if stamp == head {
                // Nothing published here yet: empty, unless a producer is
                // between its claim and its publication.
                fence(Ordering::SeqCst);
                let tail = self.tail.load(Ordering::Relaxed);
                if tail == head {
                    return None;
                }
                spin_hint();
                head = self.head.load(Ordering::Relaxed);
            } else {
                // Another consumer claimed `head` and has not released yet.
                spin_hint();
                head = self.head.load(Ordering::Relaxed);
            }
        }
    }

    /// How many values are queued (a snapshot; exact when nothing runs
    /// concurrently).
    pub(crate) fn len(&self) -> usize {
        loop {
            let tail = self.tail.load(Ordering::SeqCst);
            let head = self.head.load(Ordering::SeqCst);
            if self.tail.load(Ordering::SeqCst) == tail {
                return self.distance(head, tail);
            }
        }
    }
}

impl<T> std::fmt::Debug for SlotRing<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotRing")
            .field("capacity", &self.cap)
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn push(ring: &SlotRing<u64>, v: u64) -> bool {
        ring.push_with(ring.capacity(), |slot| *slot = v)
    }

    fn pop(ring: &SlotRing<u64>) -> Option<u64> {
        ring.pop_with(|v| *v)
    }

    #[test]
    fn fifo_through_many_laps_for_every_small_capacity() {
        for cap in 1..=9 {
            let ring = SlotRing::new(cap, || u64::MAX);
            let mut next_in = 0;
            let mut next_out = 0;
            for round in 0..50 {
                // Fill to a varying depth, then drain part of it.
                while ring.len() < cap && next_in < next_out + 1 + (round % cap as u64) {
                    assert!(push(&ring, next_in));
                    next_in += 1;
                }
                assert_eq!(ring.len() as u64, next_in - next_out);
                while next_out < next_in - (round % 2).min(next_in - next_out) {
                    assert_eq!(pop(&ring), Some(next_out));
                    next_out += 1;
                }
            }
            while let Some(v) = pop(&ring) {
                assert_eq!(v, next_out);
                next_out += 1;
            }
            assert_eq!(next_out, next_in);
            assert_eq!(ring.len(), 0);
        }
    }

    #[test]
    fn full_and_empty_are_reported_without_calling_the_closure() {
        let ring = SlotRing::new(3, || 0u64);
        assert_eq!(ring.pop_with(|_| panic!("empty ring read")), None::<()>);
        for v in 0..3 {
            assert!(push(&ring, v));
        }
        assert!(!ring.push_with(3, |_| panic!("full ring written")));
        assert_eq!(ring.len(), 3);
        assert_eq!(pop(&ring), Some(0));
        assert!(push(&ring, 3));
        assert_eq!(
            (0..3).map(|_| pop(&ring).unwrap()).collect::<Vec<_>>(),
            [1, 2, 3]
        );
    }

    #[test]
    fn limit_keeps_a_reserve() {
        let ring = SlotRing::new(4, || 0u64);
        assert!(ring.push_with(2, |v| *v = 1));
        assert!(ring.push_with(2, |v| *v = 2));
        assert!(!ring.push_with(2, |_| panic!("over the limit")));
        assert!(ring.push_with(4, |v| *v = 3));
        assert_eq!(pop(&ring), Some(1));
        assert!(!ring.push_with(2, |_| panic!("over the limit")));
        assert_eq!(pop(&ring), Some(2));
        assert!(ring.push_with(2, |v| *v = 4));
    }

    #[test]
    fn slots_keep_their_value_for_the_next_writer() {
        let ring = SlotRing::new(1, Vec::<u8>::new);
        assert!(ring.push_with(1, |v| v.extend_from_slice(b"abc")));
        assert_eq!(ring.pop_with(|v| v.clone()), Some(b"abc".to_vec()));
        assert!(ring.push_with(1, |v| {
            assert_eq!(v, b"abc", "the previous value, storage included");
            v.clear();
        }));
    }

    #[test]
    fn a_panicking_closure_hands_the_slot_on() {
        let ring = SlotRing::new(2, || 0u64);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ring.push_with(2, |v| {
                *v = 7;
                panic!("writer fails");
            })
        }));
        assert!(panicked.is_err());
        assert_eq!(pop(&ring), Some(7), "published as far as it was written");
        assert!(push(&ring, 8));
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ring.pop_with(|_| panic!("reader fails"))
        }));
        assert!(panicked.is_err());
        assert_eq!(ring.len(), 0, "the slot was released");
        assert!(push(&ring, 9));
        assert_eq!(pop(&ring), Some(9));
    }

    #[test]
    fn producers_and_consumers_on_threads_lose_and_duplicate_nothing() {
        const PER_PRODUCER: u64 = 50_000;
        let ring = Arc::new(SlotRing::new(8, || [0u64; 4]));
        let producers: Vec<_> = (0..2u64)
            .map(|p| {
                let ring = Arc::clone(&ring);
                std::thread::spawn(move || {
                    let mut i = 0;
                    while i < PER_PRODUCER {
                        // All four words equal: a torn read would show.
                        let v = p << 32 | i;
                        if ring.push_with(8, |slot| *slot = [v; 4]) {
                            i += 1;
                        }
                    }
                })
            })
            .collect();
        // Consumers stop once the producers are done and the ring is empty
        // (an idle count instead let them quit while a descheduled producer
        // still had values to push, which then spun on a full ring forever).
        let produced = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let (ring, produced) = (Arc::clone(&ring), Arc::clone(&produced));
                std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    loop {
                        let done = produced.load(std::sync::atomic::Ordering::Acquire);
                        match ring.pop_with(|s| *s) {
                            Some(words) => {
                                assert!(words.iter().all(|w| *w == words[0]), "torn: {words:?}");
                                seen.push(words[0]);
                            }
                            None if done => break,
                            None => std::thread::yield_now(),
                        }
                    }
                    seen
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        produced.store(true, std::sync::atomic::Ordering::Release);
        let mut all: Vec<u64> = Vec::new();
        for c in consumers {
            let seen = c.join().unwrap();
            // Per producer, each consumer sees values in increasing order.
            for p in 0..2u64 {
                let mine: Vec<_> = seen.iter().filter(|v| *v >> 32 == p).collect();
                assert!(mine.windows(2).all(|w| w[0] < w[1]));
            }
            all.extend(seen);
        }
        all.sort_unstable();
        let expected: Vec<u64> = (0..2u64)
            .flat_map(|p| (0..PER_PRODUCER).map(move |i| p << 32 | i))
            .collect();
        assert_eq!(all, expected);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    /// Two producers racing for the slots of a two-slot ring, each trying
    /// twice (no retry loops: they only add branches), drained afterwards:
    /// everything that was put is taken once, whole, each producer's values
    /// in order.
    #[test]
    fn two_producers() {
        loom::model(|| {
            let ring = Arc::new(SlotRing::new(2, || (0u64, 0u64)));
            let producers: Vec<_> = (1..=2u64)
                .map(|p| {
                    let ring = Arc::clone(&ring);
                    loom::thread::spawn(move || {
                        (0..2u64)
                            .map(|i| p * 10 + i)
                            .filter(|&v| ring.push_with(2, |slot| *slot = (v, v)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            let mut put: Vec<u64> = Vec::new();
            for p in producers {
                put.extend(p.join().unwrap());
            }
            let taken: Vec<u64> = std::iter::from_fn(|| ring.pop_with(|s| *s))
                .map(|(a, b)| {
                    assert_eq!(a, b, "torn value");
                    a
                })
                .collect();
            for p in 1..=2u64 {
                let mine: Vec<_> = taken.iter().filter(|v| **v / 10 == p).collect();
                assert!(mine.windows(2).all(|w| w[0] < w[1]), "{taken:?}");
            }
            let mut sorted = taken.clone();
            sorted.sort_unstable();
            put.sort_unstable();
            assert_eq!(sorted, put);
        });
    }

    /// A producer and a consumer on a one-slot ring, two single attempts
    /// each: values arrive in order, and a slot is never read while it is
    /// written (loom's cell tracking would fail the model).
    #[test]
    fn producer_and_consumer() {
        loom::model(|| {
            let ring = Arc::new(SlotRing::new(1, || (0u64, 0u64)));
            let producer = {
                let ring = Arc::clone(&ring);
                loom::thread::spawn(move || {
                    (1..=2u64)
                        .filter(|&v| ring.push_with(1, |slot| *slot = (v, v)))
                        .collect::<Vec<_>>()
                })
            };
            let mut taken: Vec<u64> = (0..2)
                .filter_map(|_| ring.pop_with(|s| *s))
                .map(|(a, b)| {
                    assert_eq!(a, b, "torn value");
                    a
                })
                .collect();
            let put = producer.join().unwrap();
            taken.extend(std::iter::from_fn(|| ring.pop_with(|s| s.0)));
            assert_eq!(taken, put);
        });
    }

    /// Two consumers racing on a two-slot ring that starts full, with a
    /// producer whose third value needs a consumer to free a slot first (it
    /// wraps to slot 0): each value is taken exactly once, and the slot is
    /// never written while a consumer reads it.
    #[test]
    fn one_producer_two_consumers() {
        loom::model(|| {
            let ring = Arc::new(SlotRing::new(2, || 0u64));
            assert!(ring.push_with(2, |slot| *slot = 1));
            assert!(ring.push_with(2, |slot| *slot = 2));
            let producer = {
                let ring = Arc::clone(&ring);
                loom::thread::spawn(move || ring.push_with(2, |slot| *slot = 3))
            };
            let consumer = {
                let ring = Arc::clone(&ring);
                loom::thread::spawn(move || ring.pop_with(|v| *v))
            };
            let mut all: Vec<u64> = ring.pop_with(|v| *v).into_iter().collect();
            let third = producer.join().unwrap();
            all.extend(consumer.join().unwrap());
            all.extend(std::iter::from_fn(|| ring.pop_with(|v| *v)));
            all.sort_unstable();
            let expected: Vec<u64> = if third { vec![1, 2, 3] } else { vec![1, 2] };
            assert_eq!(all, expected);
        });
    }
}
