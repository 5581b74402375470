//! Atomics used by the lock-free parts of the crate: `std`'s normally,
//! `loom`'s under `RUSTFLAGS="--cfg loom"` so the model checker can explore
//! every interleaving of [`AtomicConfig`](crate::AtomicConfig) publication.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};

// `std`'s `Arc` in both builds: the model checks the publication protocol's
// atomics, and `Arc` must stay usable as a method receiver (`config.reader()`).
pub(crate) use std::sync::Arc;

/// A busy-wait hint; under loom a yield, so the model can schedule the writer.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}
