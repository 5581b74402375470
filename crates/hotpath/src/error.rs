//! [`ConfigError`]: why a [`Guardrails`](crate::Guardrails),
//! [`RollbackPolicy`](crate::RollbackPolicy) or executor setup was refused.

use crate::short_float::ShortFloat;
use crate::spsa::SpsaConfigError;
use crate::violation::Violation;

/// A setting that cannot be used. Returned by the `validate` methods and by
/// [`ExecutorBuilder::build`](crate::ExecutorBuilder::build); never a panic.
///
/// ```
/// use hotpath::{ConfigError, Guardrails};
///
/// let g = Guardrails { max_delta_per_step: f64::NAN, ..Guardrails::default() };
/// assert!(matches!(g.validate(), Err(ConfigError::InvalidField { field: "max_delta_per_step", .. })));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A numeric setting is NaN, infinite or outside its range.
    #[error("{field} = {} is invalid: expected {expected}", ShortFloat(*value))]
    InvalidField {
        /// The field's name.
        field: &'static str,
        /// The value given (as `f64`).
        value: f64,
        /// What is accepted, in words.
        expected: &'static str,
    },
    /// A parameter's bounds are not finite or not `min < max`.
    #[error("bounds[{index}] = ({}, {}) is invalid: expected finite min < max", ShortFloat(*min), ShortFloat(*max))]
    InvalidBounds {
        /// Parameter index.
        index: usize,
        /// Lower bound given.
        min: f64,
        /// Upper bound given.
        max: f64,
    },
    /// The number of bounds differs from the number of parameters.
    #[error("{got} bounds given for {expected} parameters")]
    BoundsLength {
        /// Number of parameters in the configuration.
        expected: usize,
        /// Number of bounds given.
        got: usize,
    },
    /// A live value lies outside its bounds or is not finite.
    #[error("initial value params[{index}] = {} is outside its bounds ({}, {})", ShortFloat(*value), ShortFloat(*min), ShortFloat(*max))]
    InitialOutOfBounds {
        /// Parameter index.
        index: usize,
        /// The live value.
        value: f64,
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
    /// A persisted state cannot be restored onto this configuration.
    #[error("cannot restore the persisted state: {reason}")]
    InvalidState {
        /// What is wrong.
        reason: &'static str,
    },
    /// Another executor already holds this configuration's writer.
    #[error("the configuration already has a writer (another SafetyExecutor owns it)")]
    WriterTaken,
    /// The adaptive engine's SPSA settings are invalid (its numeric
    /// settings are named by [`InvalidField`](Self::InvalidField)). What
    /// [`AdaptiveEngine::new`](crate::AdaptiveEngine::new) latches its
    /// executor with for such settings.
    #[error("invalid adaptive engine settings: {cause}")]
    InvalidEngineConfig {
        /// What is wrong.
        cause: SpsaConfigError,
    },
    /// The executor refused to record the baseline a new
    /// [`AdaptiveEngine`](crate::AdaptiveEngine) starts from.
    #[error("the executor refused to set the engine's baseline: {violation}")]
    BaselineRefused {
        /// Why it refused.
        violation: Violation,
    },
    /// A knob's definition or initial value is invalid.
    #[error("params[{index}]: {problem}")]
    InvalidKnob {
        /// Knob index.
        index: usize,
        /// What is wrong.
        problem: crate::KnobProblem,
    },
    /// More knobs than [`MAX_PARAMS`](crate::MAX_PARAMS).
    #[error("{count} parameters given; at most {limit}")]
    TooManyParams {
        /// Knobs given.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A live value is within its bounds but not one of the knob's values
    /// (an integer knob at 12.5, a choice index that is not an option).
    #[error("initial value params[{index}] = {} is not on the knob's grid", ShortFloat(*value))]
    InitialOffGrid {
        /// Parameter index.
        index: usize,
        /// The live value.
        value: f64,
    },
    /// The parameter space has another number of parameters than the
    /// configuration.
    #[error("the parameter space has {got} parameters, the configuration {expected}")]
    SpaceLength {
        /// Number of parameters in the configuration.
        expected: usize,
        /// Number of parameters in the space.
        got: usize,
    },
    /// The guardrails' bounds disagree with the parameter space given
    /// beside them.
    #[error("guardrails bounds[{index}] differ from the parameter space's bounds")]
    BoundsMismatch {
        /// Parameter index.
        index: usize,
    },
    /// A capacity beyond its documented limit was given.
    #[error("{what} capacity {got} is too large: at most {limit}")]
    CapacityTooLarge {
        /// What the capacity is for.
        what: &'static str,
        /// The capacity given.
        got: usize,
        /// The largest accepted.
        limit: usize,
    },
    /// A sequence number or generation beyond its ceiling was given.
    #[error("{what} = {got} is beyond its ceiling 2^62")]
    BeyondCeiling {
        /// What it is.
        what: &'static str,
        /// The value given.
        got: u64,
    },
    /// A capacity of zero was given.
    #[error("{what} capacity must be at least 1")]
    ZeroCapacity {
        /// What the capacity is for.
        what: &'static str,
    },
}

/// Checks `value` lies in `[min, max]` and is not NaN.
pub(crate) fn check_range(
    field: &'static str,
    value: f64,
    min: f64,
    max: f64,
    expected: &'static str,
) -> Result<(), ConfigError> {
    if value >= min && value <= max {
        Ok(())
    } else {
        Err(ConfigError::InvalidField {
            field,
            value,
            expected,
        })
    }
}
