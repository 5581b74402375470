//! Fixed-memory sliding-window counters behind the executor's rate, flip,
//! rollback and budget rules. All memory is allocated at construction; every
//! check and record is O(1) (O(parameters) for the budget), whatever the
//! rate of calls.

/// Remembers the times of the last `capacity` events, so "at most
/// `capacity` events in any window of length `window_us`" is checked exactly
/// in O(1).
///
/// A new event at `now` is admitted iff fewer than `capacity` events are
/// remembered, or the oldest remembered one is at least `window_us` old:
/// then the half-open window `(now − window_us, now]` holds at most
/// `capacity` events including the new one.
#[derive(Debug, Clone)]
pub(crate) struct TimeRing {
    times: Box<[u64]>,
    /// Index of the oldest remembered event.
    head: usize,
    len: usize,
}

impl TimeRing {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            times: vec![0; capacity].into_boxed_slice(),
            head: 0,
            len: 0,
        }
    }

    /// `Ok` if an event at `now` keeps the window within capacity; otherwise
    /// `Err(t)`, the earliest time one would. A zero-capacity ring admits
    /// nothing (`Err(u64::MAX)`).
    pub(crate) fn admits(&self, now: u64, window_us: u64) -> Result<(), u64> {
        if self.len < self.times.len() {
            return Ok(());
        }
        match self.times.get(self.head) {
            None => Err(u64::MAX),
            Some(&oldest) => {
                let free_at = oldest.saturating_add(window_us);
                if now >= free_at {
                    Ok(())
                } else {
                    Err(free_at)
                }
            }
        }
    }

    /// Records an event at `now` (forgetting the oldest when full).
    pub(crate) fn push(&mut self, now: u64) {
        let cap = self.times.len();
        if cap == 0 {
            return;
        }
        if self.len < cap {
            let slot = self.wrap(self.head + self.len);
            self.times[slot] = now;
            self.len += 1;
        } else {
            self.times[self.head] = now;
            self.head = self.wrap(self.head + 1);
        }
    }

    /// `i mod capacity` for `i < 2·capacity`, without a division (this is
    /// on the path of every apply).
    fn wrap(&self, i: usize) -> usize {
        if i >= self.times.len() {
            i - self.times.len()
        } else {
            i
        }
    }

    /// The most recent event, if any.
    pub(crate) fn last(&self) -> Option<u64> {
        (self.len > 0).then(|| self.times[self.wrap(self.head + self.len - 1)])
    }

    /// The remembered events, oldest first.
    pub(crate) fn times(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.len).map(move |i| self.times[self.wrap(self.head + i)])
    }

    /// Events remembered within `(now − window_us, now]`.
    pub(crate) fn count_within(&self, now: u64, window_us: u64) -> usize {
        self.times()
            .filter(|&t| now.saturating_sub(t) < window_us)
            .count()
    }
}

/// Width of one budget bucket.
pub(crate) const BUDGET_BUCKET_US: u64 = 5_000_000;
/// Buckets kept: 13 × 5 s = 65 s ≥ the 60 s budget window plus the partly
/// elapsed current bucket, so the sum over-counts, never under-counts.
const BUDGET_BUCKETS: usize = 13;
/// How long after its last spending a budget window is certainly clear.
pub(crate) const BUDGET_CLEAR_US: u64 = BUDGET_BUCKET_US * BUDGET_BUCKETS as u64;

/// Per-dimension movement spent in the last minute, in 5 s buckets.
///
/// The total for a dimension covers between 60 and 65 s of history, so a
/// move refused here might have been allowed by an exact 60 s window, never
/// the reverse: the approximation errs on the safe side, in fixed memory.
#[derive(Debug, Clone)]
pub(crate) struct BudgetWindow {
    dims: usize,
    /// `spent[b * dims + i]`: movement of dimension `i` in bucket slot `b`.
    spent: Box<[f64]>,
    /// Bucket number (`time / BUDGET_BUCKET_US`) of the newest slot.
    newest: u64,
    totals: Box<[f64]>,
}

impl BudgetWindow {
    pub(crate) fn new(dims: usize) -> Self {
        Self {
            dims,
            spent: vec![0.0; dims * BUDGET_BUCKETS].into_boxed_slice(),
            newest: 0,
            totals: vec![0.0; dims].into_boxed_slice(),
        }
    }

    /// Forgets buckets that fell out of the window by `now`. Time-driven
    /// only: what counts as spent in the last minute does not change.
    pub(crate) fn advance(&mut self, now: u64) {
        let bucket = now / BUDGET_BUCKET_US;
        if bucket <= self.newest {
            return;
        }
        let expired = (bucket - self.newest).min(BUDGET_BUCKETS as u64);
        for step in 1..=expired {
            let slot = ((self.newest + step) % BUDGET_BUCKETS as u64) as usize;
            self.spent[slot * self.dims..(slot + 1) * self.dims].fill(0.0);
        }
        self.newest = bucket;
        // Re-summing (rather than subtracting) keeps rounding from drifting.
        self.totals.fill(0.0);
        for row in self.spent.chunks_exact(self.dims.max(1)) {
            for (total, s) in self.totals.iter_mut().zip(row) {
                *total += s;
            }
        }
    }

    /// Movement of dimension `i` in the window (fraction of its range).
    pub(crate) fn total(&self, i: usize) -> f64 {
        self.totals.get(i).copied().unwrap_or(0.0)
    }

    /// Records `amount` of movement for dimension `i` at the newest bucket
    /// (call [`advance`](Self::advance) first).
    /// Every parameter's running total over the window.
    #[inline]
    pub(crate) fn totals(&self) -> &[f64] {
        &self.totals
    }

    /// The current bucket's per-parameter spending and the running totals,
    /// for a caller that spends on every parameter at once.
    #[inline]
    pub(crate) fn current_mut(&mut self) -> (&mut [f64], &mut [f64]) {
        let slot = (self.newest % BUDGET_BUCKETS as u64) as usize;
        let row = &mut self.spent[slot * self.dims..(slot + 1) * self.dims];
        (row, &mut self.totals)
    }

    pub(crate) fn spend(&mut self, i: usize, amount: f64) {
        let slot = (self.newest % BUDGET_BUCKETS as u64) as usize;
        if let Some(s) = self.spent.get_mut(slot * self.dims + i) {
            *s += amount;
            self.totals[i] += amount;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_admits_capacity_per_window() {
        let mut r = TimeRing::new(2);
        assert_eq!(r.admits(0, 1000), Ok(()));
        r.push(0);
        r.push(10);
        assert_eq!(r.admits(500, 1000), Err(1000));
        assert_eq!(r.admits(1000, 1000), Ok(()));
        r.push(1000);
        assert_eq!(r.admits(1005, 1000), Err(1010));
        assert_eq!(r.last(), Some(1000));
        assert_eq!(r.count_within(1005, 1000), 2);
    }

    #[test]
    fn zero_capacity_ring_admits_nothing() {
        let mut r = TimeRing::new(0);
        assert_eq!(r.admits(0, 1), Err(u64::MAX));
        r.push(5);
        assert_eq!(r.last(), None);
    }

    #[test]
    fn budget_forgets_after_the_window() {
        let mut b = BudgetWindow::new(2);
        b.advance(0);
        b.spend(0, 0.3);
        b.advance(30_000_000);
        b.spend(0, 0.2);
        assert!((b.total(0) - 0.5).abs() < 1e-12);
        assert_eq!(b.total(1), 0.0);
        b.advance(BUDGET_CLEAR_US - 1);
        assert!((b.total(0) - 0.5).abs() < 1e-12, "still inside 65 s");
        b.advance(BUDGET_CLEAR_US);
        assert!((b.total(0) - 0.2).abs() < 1e-12, "first spending expired");
        b.advance(10 * BUDGET_CLEAR_US);
        assert_eq!(b.total(0), 0.0);
    }
}
