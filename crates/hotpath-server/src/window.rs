//! Aggregation windows: how the digests several replicas report become the
//! one digest per window the engine steps on.
//!
//! # The rule
//!
//! * A digest is **stale** if it names a generation other than the live
//!   one: it is counted and dropped at once. A digest without a
//!   generation is taken as measured under the live one.
//! * The first digest accepted while no window is open **opens** one, for
//!   the live generation, at the server's clock reading.
//! * The window **closes** when the server's clock reaches its opening
//!   time plus the window length: checked before every digest is offered
//!   and on the control thread's timer, so a window closes on time even
//!   if no one reports again. Nothing waits for a replica: one that stops
//!   reporting only stops contributing.
//! * A closed window becomes **one digest**: the objective is the mean of
//!   its digests' objectives weighted by their `samples`, `samples` is
//!   their sum (saturating), the constraint margin is the smallest margin
//!   reported (the worst replica decides feasibility), the generation is
//!   the window's and the time is the server's clock at the close (the
//!   replicas' `t_us` are on clocks of their own and are not compared).
//! * If the live generation changes while a window is open (a move, a
//!   rollback, an operator's call), the window is **superseded**: its
//!   digests were measured under a configuration that is no longer live,
//!   so it is dropped, counted, and the next digest opens a new window.

use hotpath::TelemetryDigest;

/// What [`Windows::offer`] did with a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offered {
    /// Counted into the open window.
    Accepted,
    /// Measured under another generation: dropped.
    Stale,
}

/// What [`Windows::close_due`] found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Closed {
    /// No window is due.
    Nothing,
    /// The window's generation is no longer live: dropped, with this many
    /// digests.
    Superseded(u64),
    /// The window closed: its aggregate, and how many digests it holds.
    Ready(TelemetryDigest, u64),
}

/// The open window's running aggregate.
#[derive(Debug, Clone, PartialEq)]
struct Open {
    generation: u64,
    opened_us: u64,
    /// Weighted mean of the objectives so far (a convex combination, so
    /// it stays finite).
    mean: f64,
    samples: u64,
    digests: u64,
    margin: Option<f64>,
}

/// The aggregation windows of one tuner (see the [module docs](self)).
#[derive(Debug, Clone)]
pub(crate) struct Windows {
    length_us: u64,
    open: Option<Open>,
}

/// The open window, as the status shows it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct WindowView {
    /// The generation it collects.
    pub generation: u64,
    /// Digests in it so far.
    pub digests: u64,
    /// Their samples.
    pub samples: u64,
    /// Microseconds until it closes.
    pub closes_in_us: u64,
}

impl Windows {
    /// Windows of `length_us` (at least 1 µs).
    pub(crate) fn new(length_us: u64) -> Self {
        Self {
            length_us: length_us.max(1),
            open: None,
        }
    }

    /// The windows' length.
    pub(crate) fn length_us(&self) -> u64 {
        self.length_us
    }

    /// When the open window closes, if one is open.
    pub(crate) fn deadline_us(&self) -> Option<u64> {
        self.open
            .as_ref()
            .map(|w| w.opened_us.saturating_add(self.length_us))
    }

    /// Offers one digest at `now_us` while `live` is the live generation.
    /// Call [`close_due`](Self::close_due) first.
    pub(crate) fn offer(&mut self, now_us: u64, live: u64, digest: &TelemetryDigest) -> Offered {
        if digest.generation.is_some_and(|g| g != live) {
            return Offered::Stale;
        }
        let window = self.open.get_or_insert(Open {
            generation: live,
            opened_us: now_us,
            mean: 0.0,
            samples: 0,
            digests: 0,
            margin: None,
        });
        let total = window.samples.saturating_add(digest.sample_count);
        let share = match total {
            0 => 1.0,
            _ => digest.sample_count as f64 / total as f64,
        };
        window.mean = window.mean * (1.0 - share) + digest.objective_value * share;
        window.samples = total;
        window.digests += 1;
        window.margin = match (window.margin, digest.constraint_margin) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Offered::Accepted
    }

    /// Closes the open window if its generation is no longer `live` or
    /// its time is up at `now_us`.
    pub(crate) fn close_due(&mut self, now_us: u64, live: u64) -> Closed {
        let Some(window) = &self.open else {
            return Closed::Nothing;
        };
        if window.generation != live {
            let digests = window.digests;
            self.open = None;
            return Closed::Superseded(digests);
        }
        if now_us < window.opened_us.saturating_add(self.length_us) {
            return Closed::Nothing;
        }
        let Some(window) = self.open.take() else {
            return Closed::Nothing;
        };
        let elapsed = now_us.saturating_sub(window.opened_us);
        let mut digest = TelemetryDigest::new(elapsed, window.mean, window.samples.max(1))
            .with_generation(window.generation);
        if let Some(margin) = window.margin {
            digest = digest.with_constraint_margin(margin);
        }
        Closed::Ready(digest, window.digests)
    }

    /// The open window at `now_us`, if any.
    pub(crate) fn view(&self, now_us: u64) -> Option<WindowView> {
        self.open.as_ref().map(|w| WindowView {
            generation: w.generation,
            digests: w.digests,
            samples: w.samples,
            closes_in_us: w
                .opened_us
                .saturating_add(self.length_us)
                .saturating_sub(now_us),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(objective: f64, samples: u64, generation: Option<u64>) -> TelemetryDigest {
        let d = TelemetryDigest::new(0, objective, samples);
        match generation {
            Some(g) => d.with_generation(g),
            None => d,
        }
    }

    #[test]
    fn a_window_is_the_sample_weighted_mean_of_its_digests() {
        let mut w = Windows::new(100);
        assert_eq!(w.offer(10, 3, &digest(1.0, 10, Some(3))), Offered::Accepted);
        assert_eq!(w.offer(20, 3, &digest(4.0, 30, None)), Offered::Accepted);
        assert_eq!(w.offer(30, 3, &digest(9.0, 5, Some(2))), Offered::Stale);
        assert_eq!(w.close_due(109, 3), Closed::Nothing);
        match w.close_due(110, 3) {
            Closed::Ready(d, n) => {
                assert_eq!((n, d.sample_count, d.generation), (2, 40, Some(3)));
                assert!((d.objective_value - 3.25).abs() < 1e-12);
                assert_eq!((d.window_us, d.timestamp_us), (100, None));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(w.close_due(500, 3), Closed::Nothing, "no window is open");
    }

    #[test]
    fn the_worst_margin_decides_and_a_new_generation_supersedes() {
        let mut w = Windows::new(100);
        w.offer(0, 1, &digest(1.0, 1, None).with_constraint_margin(0.5));
        w.offer(0, 1, &digest(1.0, 1, None).with_constraint_margin(-0.1));
        w.offer(0, 1, &digest(1.0, 1, None));
        assert_eq!(w.clone().close_due(100, 1).clone(), {
            let d = TelemetryDigest::new(100, 1.0, 3)
                .with_generation(1)
                .with_constraint_margin(-0.1);
            Closed::Ready(d, 3)
        });
        assert_eq!(w.close_due(50, 2), Closed::Superseded(3));
        assert_eq!(w.deadline_us(), None);
    }

    #[test]
    fn extreme_values_stay_finite() {
        let mut w = Windows::new(1);
        w.offer(0, 0, &digest(f64::MAX, u64::MAX, None));
        w.offer(0, 0, &digest(-f64::MAX, u64::MAX, None));
        match w.close_due(1, 0) {
            Closed::Ready(d, _) => assert!(d.objective_value.is_finite()),
            other => panic!("{other:?}"),
        }
    }
}
