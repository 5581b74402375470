//! Atomics and cells used by the lock-free parts of the crate: `std`'s
//! normally, `loom`'s under `RUSTFLAGS="--cfg loom"` so the model checker can
//! explore every interleaving of [`AtomicConfig`](crate::AtomicConfig)
//! publication and of the audit queue's slot ring.

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};

// `std`'s `Arc` in both builds: the model checks the publication protocol's
// atomics, and `Arc` must stay usable as a method receiver (`config.reader()`).
pub(crate) use std::sync::Arc;

/// `std::cell::UnsafeCell` with loom's closure-based access API (the part
/// of it the ring uses), so the
/// ring's code is the same in both builds and loom can track every access.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// A busy-wait hint; under loom a yield, so the model can schedule the writer.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}
