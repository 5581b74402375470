//! Injected time: the [`Clock`] trait, [`SystemClock`] and [`ManualClock`].
//!
//! Nothing in this crate reads the wall clock behind the caller's back: every
//! component that needs time takes a `Clock`. Time is a monotonic count of
//! microseconds from an arbitrary origin.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// A source of monotonic time in microseconds.
///
/// Implementations should never go backwards; consumers in this crate still
/// defend against one that does by clamping to the largest time they have
/// seen (see [`SafetyExecutor`](crate::SafetyExecutor)).
///
/// ```
/// use hotpath::{Clock, ManualClock};
///
/// let clock = ManualClock::new(1_000);
/// clock.advance(500);
/// assert_eq!(clock.now_us(), 1_500);
/// ```
pub trait Clock {
    /// Microseconds since this clock's origin.
    fn now_us(&self) -> u64;
}

/// The process's monotonic clock ([`Instant`]), counted from the moment the
/// `SystemClock` was created.
///
/// ```
/// use hotpath::{Clock, SystemClock};
///
/// let clock = SystemClock::new();
/// let a = clock.now_us();
/// assert!(clock.now_us() >= a);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now_us(&self) -> u64 {
        // Saturates after ~584k years; `as` on u128 → u64 cannot panic.
        self.origin.elapsed().as_micros().min(u64::MAX as u128) as u64
    }
}

/// A clock that only moves when told to. Clones share the same time, so a
/// test can keep one handle and give another to the component under test.
///
/// [`set`](ManualClock::set) may move time backwards on purpose, to test how
/// consumers cope with a misbehaving clock.
///
/// ```
/// use hotpath::{Clock, ManualClock};
///
/// let clock = ManualClock::new(0);
/// let shared = clock.clone();
/// clock.advance(200_000);
/// assert_eq!(shared.now_us(), 200_000);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock reading `start_us`.
    pub fn new(start_us: u64) -> Self {
        Self {
            now: Arc::new(AtomicU64::new(start_us)),
        }
    }

    /// Moves time forward by `us` (saturating at `u64::MAX`).
    pub fn advance(&self, us: u64) {
        // fetch_update with a closure that always returns Some cannot fail.
        let _ = self
            .now
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_add(us))
            });
    }

    /// Sets the time, forwards or backwards.
    pub fn set(&self, us: u64) {
        self.now.store(us, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_us(&self) -> u64 {
        self.now.load(Ordering::Relaxed)
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now_us(&self) -> u64 {
        (**self).now_us()
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now_us(&self) -> u64 {
        (**self).now_us()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_saturates() {
        let c = ManualClock::new(u64::MAX - 1);
        c.advance(10);
        assert_eq!(c.now_us(), u64::MAX);
    }

    #[test]
    fn manual_clock_can_go_backwards_on_purpose() {
        let c = ManualClock::new(100);
        c.set(50);
        assert_eq!(c.now_us(), 50);
    }
}
