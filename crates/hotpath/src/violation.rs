//! [`Violation`]: why the executor refused a proposal or request.

use crate::safe_mode::SafeModeReason;
use crate::short_float::ShortFloat;
use crate::space::ParamSpace;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why [`SafetyExecutor`](crate::SafetyExecutor) refused something. Every
/// variant carries its context (which parameter, what value, what limit,
/// when it may pass) and none allocates: the type is `Copy`.
///
/// The first seven variants are the API reference's; the rest cover malformed input
/// and rules the reference implies.
///
/// ```
/// use hotpath::Violation;
///
/// let v = Violation::DeltaTooLarge { index: 1, delta: 0.3, limit: 0.1 };
/// assert_eq!(v.to_string(), "params[1] would move by 0.3 of its range; at most 0.1 per step");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// A parameter would move by more than `max_delta_per_step` of its range.
    #[error("params[{index}] would move by {} of its range; at most {} per step", ShortFloat(*delta), ShortFloat(*limit))]
    DeltaTooLarge {
        /// Parameter index.
        index: usize,
        /// Requested move, as a fraction of the range (absolute value).
        delta: f64,
        /// `max_delta_per_step`.
        limit: f64,
    },
    /// Too soon after the previous apply (`min_interval_us`) or too many in
    /// the last second (`max_updates_per_second`).
    #[error("rate limit ({rule}): retry at t={retry_at_us} µs")]
    RateLimitExceeded {
        /// Which rule refused.
        rule: RateRule,
        /// The earliest time the same proposal can pass this rule.
        retry_at_us: u64,
    },
    /// A committed move would reverse a dimension's direction more than
    /// `direction_flip_limit` times in a minute. Updates are refused for
    /// `cooldown_after_flip_us` (safe mode, reason `Thrashing`).
    #[error("params[{index}] would reverse direction {flips} times in a minute (limit {limit}); cooling down until t={cooldown_until_us} µs")]
    DirectionFlipViolation {
        /// Parameter index.
        index: usize,
        /// Reversals in the last minute including this one.
        flips: u32,
        /// `direction_flip_limit`.
        limit: u32,
        /// End of the cooldown.
        cooldown_until_us: u64,
    },
    /// A committed move would spend more than
    /// `max_cumulative_delta_per_minute` of a parameter's range in a minute.
    #[error("params[{index}] would move {} of its range in a minute (budget {}); safe mode until t={retry_at_us} µs", ShortFloat(*spent), ShortFloat(*limit))]
    CumulativeDeltaViolation {
        /// Parameter index.
        index: usize,
        /// Movement in the budget window including this move.
        spent: f64,
        /// `max_cumulative_delta_per_minute`.
        limit: f64,
        /// When the budget window will have cleared.
        retry_at_us: u64,
    },
    /// Safe mode is latched; only rollback passes.
    #[error("in safe mode ({reason}); {}", SafeModeExit(*until_us))]
    InSafeMode {
        /// The reason latched first among those active.
        reason: SafeModeReason,
        /// When it exits by itself, if it does.
        until_us: Option<u64>,
    },
    /// The audit queue could not take the decision's event, so nothing was
    /// changed; safe mode latched until the queue drains.
    #[error("audit queue full (capacity {capacity}); change refused")]
    AuditQueueFull {
        /// Queue capacity.
        capacity: usize,
    },
    /// `rollback` without a baseline.
    #[error("no baseline set")]
    NoBaseline,
    /// The proposal's vector length differs from the configuration's.
    #[error("proposal has {got} values for {expected} parameters")]
    WrongLength {
        /// Parameters in the configuration.
        expected: usize,
        /// Values in the proposal.
        got: usize,
    },
    /// A value in the proposal is NaN or infinite.
    #[error("params[{index}] is not finite in the proposal")]
    NonFinite {
        /// Index of the first non-finite value.
        index: usize,
    },
    /// A parameter would leave its bounds. The executor rejects rather than
    /// clamps: it never applies anything but what was proposed.
    #[error("params[{index}] would become {}, outside its bounds [{}, {}]", ShortFloat(*value), ShortFloat(*min), ShortFloat(*max))]
    OutOfBounds {
        /// Parameter index.
        index: usize,
        /// The value it would take.
        value: f64,
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
    /// A value within the bounds that is not one of the knob's values: an
    /// integer knob off its grid (12.5, or 7 on a grid of 2), a choice index
    /// that is not an option's. Refused, never rounded.
    #[error("params[{index}] would become {}, which is not on its grid", ShortFloat(*value))]
    OffGrid {
        /// Parameter index.
        index: usize,
        /// The value it would take.
        value: f64,
    },
    /// More choice knobs would differ from the centre than one change may
    /// switch.
    #[error(
        "params[{index}] would be a second choice switched away from the centre; at most {limit}"
    )]
    TooManySwitches {
        /// The index of the first choice knob beyond the limit.
        index: usize,
        /// Switches allowed (1).
        limit: usize,
    },
    /// A probe (`ApplyPlus`/`ApplyMinus`) would take a parameter further
    /// than `max_delta_per_step` of its range from the committed centre.
    #[error(
        "params[{index}] would stray {} of its range from the centre; at most {}",
        ShortFloat(*excursion),
        ShortFloat(*limit)
    )]
    ExcursionTooLarge {
        /// Parameter index.
        index: usize,
        /// Distance from the centre, as a fraction of the range.
        excursion: f64,
        /// `max_delta_per_step`.
        limit: f64,
    },
    /// Within `min_stable_time_us` after a rollback.
    #[error("stabilising after rollback until t={retry_at_us} µs")]
    StabilizationPending {
        /// When updates may resume.
        retry_at_us: u64,
    },
    /// An outcome report's objective is NaN or infinite.
    #[error("outcome objective is not finite")]
    NonFiniteObjective,
    /// An outcome report names a generation other than the live centre's.
    #[error("outcome for generation {reported}, but the centre is generation {centre}")]
    StaleOutcome {
        /// Generation in the report.
        reported: u64,
        /// The centre's generation.
        centre: u64,
    },
}

/// Which rate rule refused an apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RateRule {
    /// `min_interval_us` since the previous apply.
    MinInterval,
    /// `max_updates_per_second` in the last second.
    PerSecond,
}

impl std::fmt::Display for RateRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RateRule::MinInterval => "min interval",
            RateRule::PerSecond => "updates per second",
        })
    }
}

/// Formats when a safe-mode latch ends, without allocating.
struct SafeModeExit(Option<u64>);

impl std::fmt::Display for SafeModeExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(t) => write!(f, "exits at t={t} µs"),
            None => f.write_str("exits on resume or when its condition clears"),
        }
    }
}

impl Violation {
    /// `true` for refusals that mean the proposal itself was bad (malformed
    /// or outside the envelope), as opposed to "not now". These count
    /// towards `Guardrails::violation_limit`.
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            Violation::DeltaTooLarge { .. }
                | Violation::WrongLength { .. }
                | Violation::NonFinite { .. }
                | Violation::OutOfBounds { .. }
                | Violation::ExcursionTooLarge { .. }
                | Violation::OffGrid { .. }
                | Violation::TooManySwitches { .. }
        )
    }

    /// The parameter the refusal is about, for the rules about one.
    ///
    /// ```
    /// use hotpath::Violation;
    ///
    /// assert_eq!(Violation::DeltaTooLarge { index: 1, delta: 0.3, limit: 0.1 }.index(), Some(1));
    /// assert_eq!(Violation::NoBaseline.index(), None);
    /// ```
    pub fn index(&self) -> Option<usize> {
        match *self {
            Violation::DeltaTooLarge { index, .. }
            | Violation::DirectionFlipViolation { index, .. }
            | Violation::CumulativeDeltaViolation { index, .. }
            | Violation::NonFinite { index }
            | Violation::OutOfBounds { index, .. }
            | Violation::OffGrid { index, .. }
            | Violation::TooManySwitches { index, .. }
            | Violation::ExcursionTooLarge { index, .. } => Some(index),
            _ => None,
        }
    }

    /// The message with its parameter named by the knob's name in
    /// `space` (`batch_size would move by …` for `params[0] would move by
    /// …`), for people; the plain message (its `Display`) is what the
    /// audit log records, since the log does not carry the knobs.
    ///
    /// ```
    /// use hotpath::{Knob, ParamSpace, Violation};
    ///
    /// let space = ParamSpace::new(vec![Knob::int("batch_size", 1, 512, 64)])?;
    /// let v = Violation::DeltaTooLarge { index: 0, delta: 0.3, limit: 0.1 };
    /// assert_eq!(v.named(&space).to_string(), "batch_size would move by 0.3 of its range; at most 0.1 per step");
    /// # Ok::<(), hotpath::ConfigError>(())
    /// ```
    pub fn named<'a>(&'a self, space: &'a ParamSpace) -> Named<'a, Violation> {
        Named {
            item: self,
            index: self.index(),
            space,
        }
    }
}

/// Something displayed with its parameter named by its knob:
/// [`Violation::named`], [`AuditEvent::named`](crate::AuditEvent::named).
/// It writes the item's own message with the first `params[i]` replaced
/// by the knob's name, so every message is written once (on the item)
/// and the names come from the space. An index the space does not have
/// is left as it is.
#[derive(Debug, Clone, Copy)]
pub struct Named<'a, T> {
    pub(crate) item: &'a T,
    pub(crate) index: Option<usize>,
    pub(crate) space: &'a ParamSpace,
}

impl<T: fmt::Display> fmt::Display for Named<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.item.to_string();
        let name = self.index.map(|i| (i, self.space.name(i)));
        match name {
            Some((i, name)) if !name.is_empty() => {
                f.write_str(&text.replacen(&format!("params[{i}]"), name, 1))
            }
            _ => f.write_str(&text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Knob;

    /// Every rule about one parameter names it as `params[i]` in its
    /// message, so `named` can name every one of them.
    #[test]
    fn every_indexed_message_is_named_and_other_messages_are_untouched() {
        let space = ParamSpace::new(vec![
            Knob::real("a", 0.0, 1.0, 0.5),
            Knob::int("batch_size", 1, 64, 8),
        ])
        .expect("valid");
        let indexed = [
            Violation::DeltaTooLarge {
                index: 1,
                delta: 0.3,
                limit: 0.1,
            },
            Violation::DirectionFlipViolation {
                index: 1,
                flips: 4,
                limit: 3,
                cooldown_until_us: 9,
            },
            Violation::CumulativeDeltaViolation {
                index: 1,
                spent: 0.6,
                limit: 0.5,
                retry_at_us: 9,
            },
            Violation::NonFinite { index: 1 },
            Violation::OutOfBounds {
                index: 1,
                value: 99.0,
                min: 1.0,
                max: 64.0,
            },
            Violation::OffGrid {
                index: 1,
                value: 12.5,
            },
            Violation::TooManySwitches { index: 1, limit: 1 },
            Violation::ExcursionTooLarge {
                index: 1,
                excursion: 0.2,
                limit: 0.1,
            },
        ];
        for v in indexed {
            assert_eq!(v.index(), Some(1));
            let plain = v.to_string();
            let named = v.named(&space).to_string();
            assert!(plain.starts_with("params[1] "), "{plain}");
            assert_eq!(named, plain.replacen("params[1]", "batch_size", 1));
        }
        let beyond = Violation::OffGrid {
            index: 7,
            value: 1.5,
        };
        assert_eq!(beyond.named(&space).to_string(), beyond.to_string());
        let unindexed = Violation::NoBaseline;
        assert_eq!(unindexed.index(), None);
        assert_eq!(unindexed.named(&space).to_string(), "no baseline set");
    }
}
