//! Moves measured in a knob's coordinate, for the engine's planning: the
//! same units the executor's rules judge (see [`ParamSpace`]).
//!
//! On a linear scale each function is the plain arithmetic on values the
//! engine always used (`v + f·range`, `(to − from) / range`), written in
//! the same order, so a space of linear reals plans bit for bit as before.

use super::{KnobKind, ParamSpace};

impl ParamSpace {
    /// `value` moved by `fraction` of knob `i`'s range, in its coordinate,
    /// not snapped to a grid.
    #[inline]
    pub(crate) fn offset(&self, i: usize, value: f64, fraction: f64) -> f64 {
        let range = self.range(i);
        if self.is_log(i) {
            (value.ln() + fraction * range).exp()
        } else {
            value + fraction * range
        }
    }

    /// The move from `from` to `to` as a signed fraction of knob `i`'s range.
    #[inline]
    pub(crate) fn fraction(&self, i: usize, from: f64, to: f64) -> f64 {
        (self.coord(i, to) - self.coord(i, from)) / self.range(i)
    }

    /// `true` if a move of knob `i` from `from` to `to` is within `limit`
    /// of its range as the executor's step rule measures it: a choice
    /// switch is exempt (the switch rule counts switches), and an integer
    /// may always move one grid step.
    pub(crate) fn within_step(&self, i: usize, from: f64, to: f64, limit: f64) -> bool {
        match self.knobs.get(i).map(|k| &k.kind) {
            Some(KnobKind::Choice { .. }) => true,
            Some(KnobKind::Int { step, .. }) if (to - from).abs() <= *step as f64 => true,
            _ => (self.coord(i, to) - self.coord(i, from)).abs() <= limit * self.range(i),
        }
    }

    /// One move of knob `i` from `from` toward `to` of at most `limit` of
    /// its range, on the knob's grid and never past `limit`: a partial move
    /// of an integer rounds toward `from` (it may then not move at all); a
    /// choice either switches (a limit above 0) or stays.
    pub(crate) fn toward(&self, i: usize, from: f64, to: f64, limit: f64) -> f64 {
        let Some(knob) = self.knobs.get(i) else {
            return from;
        };
        if let KnobKind::Choice { .. } = knob.kind {
            return if limit > 0.0 { to } else { from };
        }
        let cap = limit * self.range(i);
        let wanted = self.coord(i, to) - self.coord(i, from);
        let allowed = wanted.clamp(-cap, cap);
        let Some(_) = knob.grid_step() else {
            return self.value_of_coord(i, self.coord(i, from) + allowed);
        };
        if allowed == wanted {
            return to;
        }
        let raw = self.value_of_coord(i, self.coord(i, from) + allowed);
        self.round_toward(i, raw, from)
    }

    /// [`toward`](Self::toward), but an integer moves at least one grid
    /// step when `to` is a step or more away: the executor always allows
    /// one, and without it a knob whose step is more than `limit` of its
    /// range could never move.
    pub(crate) fn toward_at_least_one_step(&self, i: usize, from: f64, to: f64, limit: f64) -> f64 {
        let moved = self.toward(i, from, to, limit);
        match self.grid_step(i) {
            Some(step) if moved == from && (to - from).abs() >= step => {
                self.snap(i, from + step.copysign(to - from))
            }
            _ => moved,
        }
    }

    /// `value` clamped into knob `i`'s bounds less `margin` of its range on
    /// each side (in its coordinate), on its grid (rounded inward): where a
    /// centre must sit so probes `margin` away stay in bounds. The middle
    /// of the bounds when the interval is empty; the value itself without
    /// bounds.
    pub(crate) fn inset(&self, i: usize, value: f64, margin: f64) -> f64 {
        let inside = self.inset_continuous(i, value, margin);
        let (lo, hi) = self.bounds(i);
        if !(lo.is_finite() && hi.is_finite()) {
            return inside;
        }
        let (a, b) = (self.offset(i, lo, margin), self.offset(i, hi, -margin));
        match self.grid_step(i) {
            None => inside,
            Some(_) if a > b => self.snap(i, inside),
            Some(_) => {
                let snapped = self.snap(i, inside);
                if snapped < a {
                    self.snap(i, snapped + self.grid_step(i).unwrap_or(0.0))
                } else if snapped > b {
                    self.snap(i, snapped - self.grid_step(i).unwrap_or(0.0))
                } else {
                    snapped
                }
            }
        }
    }

    /// [`inset`](Self::inset) without rounding to the grid: where a
    /// continuous iterate may sit.
    pub(crate) fn inset_continuous(&self, i: usize, value: f64, margin: f64) -> f64 {
        let (lo, hi) = self.bounds(i);
        if !(lo.is_finite() && hi.is_finite()) {
            return value;
        }
        let (a, b) = (self.offset(i, lo, margin), self.offset(i, hi, -margin));
        if a > b {
            self.value_of_coord(i, 0.5 * (self.coord(i, lo) + self.coord(i, hi)))
        } else {
            value.clamp(a, b)
        }
    }

    /// The grid value of knob `i` nearest to `value` on the side of
    /// `toward` (so a move rounded this way never exceeds the move asked).
    fn round_toward(&self, i: usize, value: f64, toward: f64) -> f64 {
        let nearest = self.snap(i, value);
        let step = self.grid_step(i).unwrap_or(0.0);
        let overshoot = (nearest - toward).abs() > (value - toward).abs();
        if overshoot && step > 0.0 {
            self.snap(i, nearest - step.copysign(value - toward))
        } else {
            nearest
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Knob, ParamSpace};

    fn space() -> ParamSpace {
        ParamSpace::new(vec![
            Knob::real("lin", 0.0, 10.0, 5.0),
            Knob::real("log", 1.0, 10_000.0, 100.0).log(),
            Knob::int("int", 1, 4, 2),
            Knob::choice("c", ["a", "b", "c"], "a"),
            Knob::int("wide", 0, 1000, 500),
        ])
        .expect("valid")
    }

    #[test]
    fn linear_arithmetic_is_the_plain_one() {
        let s = space();
        let (v, f) = (1.234_567, 0.037);
        assert_eq!(s.offset(0, v, f).to_bits(), (v + f * 10.0).to_bits());
        assert_eq!(
            s.fraction(0, 1.0, 3.5).to_bits(),
            ((3.5 - 1.0) / 10.0f64).to_bits()
        );
        assert_eq!(s.toward(0, 5.0, 9.0, 0.1), 6.0);
        assert_eq!(s.toward(0, 5.0, 5.5, 0.1), 5.5);
    }

    #[test]
    fn log_moves_are_ratios() {
        let s = space();
        // A quarter of four decades is one decade.
        assert!((s.offset(1, 100.0, 0.25) - 1000.0).abs() < 1e-9);
        assert!((s.fraction(1, 100.0, 10.0) + 0.25).abs() < 1e-12);
        assert!(s.within_step(1, 100.0, 250.0, 0.1));
        assert!(!s.within_step(1, 100.0, 300.0, 0.1));
    }

    #[test]
    fn integers_move_on_their_grid() {
        let s = space();
        // One step is a third of 1..4: beyond 10 %, always allowed.
        assert!(s.within_step(2, 2.0, 3.0, 0.1) && !s.within_step(2, 2.0, 4.0, 0.1));
        assert_eq!(
            s.toward(2, 2.0, 4.0, 0.1),
            2.0,
            "a partial move rounds back"
        );
        assert_eq!(s.toward_at_least_one_step(2, 2.0, 4.0, 0.1), 3.0);
        assert_eq!(s.toward(4, 500.0, 900.0, 0.1), 600.0);
        assert_eq!(s.toward(4, 500.0, 512.0, 0.1), 512.0, "the whole way");
        assert_eq!(s.inset(2, 1.0, 0.1), 2.0, "a probe step inside");
        assert_eq!(s.inset(4, 3.0, 0.1), 100.0);
    }

    #[test]
    fn a_choice_switches_or_stays() {
        let s = space();
        assert!(s.within_step(3, 0.0, 2.0, 0.1));
        assert_eq!(s.toward(3, 0.0, 2.0, 0.1), 2.0);
        assert_eq!(s.toward(3, 0.0, 2.0, 0.0), 0.0);
    }
}
