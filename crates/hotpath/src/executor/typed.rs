//! The rules for integer, log-scale and choice knobs: what the one-pass
//! scan leaves to them, and the distance the ordered step checks measure.
//!
//! Every movement rule keeps meaning "a fraction of the knob's range",
//! measured in the knob's coordinate (see
//! [`ParamSpace`](crate::ParamSpace)):
//!
//! * **log scale**: moves are measured in `ln value`, so a 10 % step of a
//!   knob bounded to `[1, 4096]` multiplies it by at most `4096^0.1 ≈ 2.3`;
//! * **integer**: values must be on the knob's grid (rule 4, `OffGrid`,
//!   never rounded), and a move of one grid step always passes the step
//!   and excursion rules: the smallest possible move must stay possible
//!   even where one step is more than `max_delta_per_step` of the range
//!   (a knob of 1…4 moves a third of its range per step). The flip and
//!   budget rules count such a move at its full size;
//! * **choice**: a switch is a discrete move, exempt from the step-size
//!   and excursion rules. At most **one** choice knob may differ from the
//!   centre after any change, probes included (`TooManySwitches`). A
//!   committed switch counts as a move of `max_delta_per_step` of the
//!   knob's range, alternating in direction: every switch after the first
//!   is a reversal for the flip rule (so a choice switches at most
//!   `direction_flip_limit` + 1 times a minute) and each spends one full
//!   step of the movement budget. Switches count towards the rate limit
//!   like any change.
//!
//! The scan's branch-free loop treats every knob as a linear real. For a
//! knob on a log scale and for a choice, the executor's *fast* columns
//! hold a cap of +∞ and an inverse range of 0, so the loop never flags it
//! and records no move; [`scan_typed`](SafetyExecutor::scan_typed) then
//! measures those knobs properly and checks every grid. A linear integer's
//! fast cap already admits one grid step, so its step needs no second look.
//! A space of linear reals only skips this file entirely.

use super::rules::{overspends, step_cap, turns};
use super::SafetyExecutor;
use crate::clock::Clock;
use crate::space::ParamSpace;
use crate::violation::Violation;

/// How many choice knobs may differ from the centre after a change.
const SWITCH_LIMIT: usize = 1;

/// How the step rules measure a knob, decided once per knob.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Measure {
    /// A real on a linear scale: the change of value.
    Linear,
    /// An integer on a linear scale: the change of value, one grid step
    /// always allowed.
    LinearGrid,
    /// A real on a log scale: the change of `ln value`.
    Log,
    /// An integer on a log scale: the change of `ln value`, one grid step
    /// always allowed.
    LogGrid,
    /// A choice: exempt.
    Switch,
}

/// The per-knob caps the executor derives from its space and step limit.
pub(super) struct Caps {
    /// How each knob is measured.
    pub(super) measure: Box<[Measure]>,
    /// Each knob's grid step (0 for a real).
    pub(super) grid: Box<[f64]>,
    /// The exact rule's cap on a change of coordinate (see [`step_cap`]);
    /// +∞ for a choice, which the step rule exempts.
    pub(super) step: Box<[f64]>,
    /// What the one-pass loop compares a change of *value* with: `step`
    /// for a linear real, at least one grid step for a linear integer, +∞
    /// where the loop cannot judge (log scale, choice).
    pub(super) fast: Box<[f64]>,
    /// `1 / range` for the loop's move accounting; 0 where the loop cannot
    /// measure the move (log scale, choice).
    pub(super) fast_inv_range: Box<[f64]>,
}

impl Caps {
    pub(super) fn new(space: &ParamSpace, limit: f64) -> Self {
        let n = space.len();
        let special =
            |i: usize| space.log_indices().contains(&i) || space.choice_indices().contains(&i);
        let exact = |i: usize| {
            if space.choice_indices().contains(&i) {
                f64::INFINITY
            } else {
                step_cap(limit, space.range(i))
            }
        };
        let measure = |i: usize| {
            let log = space.log_indices().contains(&i);
            match (space.choice_indices().contains(&i), log, space.grid_step(i)) {
                (true, _, _) => Measure::Switch,
                (false, false, None) => Measure::Linear,
                (false, false, Some(_)) => Measure::LinearGrid,
                (false, true, None) => Measure::Log,
                (false, true, Some(_)) => Measure::LogGrid,
            }
        };
        Self {
            measure: (0..n).map(measure).collect(),
            grid: (0..n).map(|i| space.grid_step(i).unwrap_or(0.0)).collect(),
            step: (0..n).map(exact).collect(),
            fast: (0..n)
                .map(|i| match (special(i), space.grid_step(i)) {
                    (true, _) => f64::INFINITY,
                    (false, Some(grid)) => exact(i).max(grid),
                    (false, None) => exact(i),
                })
                .collect(),
            fast_inv_range: (0..n)
                .map(|i| {
                    if special(i) {
                        0.0
                    } else {
                        space.inv_ranges()[i]
                    }
                })
                .collect(),
        }
    }
}

/// What the typed pass found might fail (see `rules::Flags`).
pub(super) struct TypedFlags {
    pub(super) content: bool,
    pub(super) turn: bool,
    pub(super) overspend: bool,
}

impl<C: Clock> SafetyExecutor<C> {
    /// The second pass over the knobs the loop cannot judge: log-scale
    /// steps and moves, every grid, choice switches and their moves.
    pub(super) fn scan_typed(&mut self) -> TypedFlags {
        let mut flags = TypedFlags {
            content: false,
            turn: false,
            overspend: false,
        };
        let budget = self.guardrails.max_cumulative_delta_per_minute;
        let limit = self.guardrails.max_delta_per_step;
        let space = &*self.space;
        for &i in space.log_indices() {
            let c = self.candidate[i];
            flags.content |= self.step_beyond(i, c, self.live[i]).is_some();
            let m = (space.coord(i, c) - space.coord(i, self.centre[i])) * space.inv_ranges()[i];
            self.moves[i] = m;
            flags.turn |= turns(m, self.directions[i]);
            flags.overspend |= overspends(self.budget.totals()[i], m, budget);
        }
        for &i in space.grid_indices() {
            flags.content |= !space.admits(i, self.candidate[i]);
        }
        let mut switches = 0;
        for &i in space.choice_indices() {
            let switched = self.candidate[i] != self.centre[i];
            switches += usize::from(switched);
            // Alternating directions: each switch after the first reverses.
            let m = match (switched, self.directions[i] > 0.0) {
                (false, _) => 0.0,
                (true, true) => -limit,
                (true, false) => limit,
            };
            self.moves[i] = m;
            flags.turn |= turns(m, self.directions[i]);
            flags.overspend |= overspends(self.budget.totals()[i], m, budget);
        }
        flags.content |= switches > SWITCH_LIMIT;
        flags
    }

    /// The step rules' distance from `reference` to `candidate` for knob
    /// `i`, as a fraction of its range, if it is beyond the step limit:
    /// in coordinates, a choice exempt, an integer's single grid step
    /// allowed. A candidate outside a log knob's bounds (≤ 0, NaN) has no
    /// logarithm: the bounds rule refuses it.
    #[inline(always)]
    pub(super) fn step_beyond(&self, i: usize, candidate: f64, reference: f64) -> Option<f64> {
        let limit = self.guardrails.max_delta_per_step;
        let change = self.step_change(i, self.caps.measure[i], candidate, reference)?;
        super::rules::beyond(change, self.caps.step[i], self.space.ranges()[i], limit)
    }

    /// The change of knob `i`'s coordinate that the step rules judge, or
    /// `None` where they do not apply (see [`step_beyond`](Self::step_beyond)).
    #[inline(always)]
    pub(super) fn step_change(
        &self,
        i: usize,
        measure: Measure,
        candidate: f64,
        reference: f64,
    ) -> Option<f64> {
        if !candidate.is_finite() {
            return None; // a move that overflowed: the bounds rule refuses it
        }
        let change = (candidate - reference).abs();
        let one_grid_step = || change <= self.caps.grid[i];
        match measure {
            Measure::Linear => Some(change),
            Measure::Switch => None,
            Measure::LinearGrid => (!one_grid_step()).then_some(change),
            Measure::Log | Measure::LogGrid => {
                let (min, _) = self.space.bounds(i);
                let skip = candidate < min; // no logarithm: the bounds rule refuses it
                let skip = skip || (measure == Measure::LogGrid && one_grid_step());
                (!skip).then(|| (candidate.ln() - reference.ln()).abs())
            }
        }
    }

    /// Rule 3, choices: at most one choice knob differs from the centre.
    pub(super) fn switch_rule(&self) -> Result<(), Violation> {
        let mut switched = self
            .space
            .choice_indices()
            .iter()
            .filter(|&&i| self.candidate[i] != self.centre[i]);
        match switched.nth(SWITCH_LIMIT) {
            Some(&index) => Err(Violation::TooManySwitches {
                index,
                limit: SWITCH_LIMIT,
            }),
            None => Ok(()),
        }
    }
}
