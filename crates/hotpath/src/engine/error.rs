//! [`EngineError`]: why the engine refused a digest or could not be built.

use crate::error::ConfigError;
use crate::spsa::SpsaConfigError;
use crate::telemetry::DigestError;

/// Why the engine refused a digest or could not be built. A refused digest
/// changes nothing.
///
/// ```
/// use hotpath::{AdaptiveEngine, AdaptiveEngineConfig, EngineError, ManualClock, ParamVec};
///
/// let config = AdaptiveEngineConfig { learning_rate: -1.0, ..AdaptiveEngineConfig::default() };
/// let initial = ParamVec::from_slice(&[0.5]);
/// let refused = AdaptiveEngine::with_clock(config, initial, ManualClock::new(0));
/// assert!(matches!(refused, Err(EngineError::Config(_))));
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The digest is malformed (NaN/∞ objective, zero samples, …).
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// The digest's timestamp is earlier than the previous one's.
    #[error("digest timestamp {got} µs is earlier than the previous digest's {previous} µs")]
    TimestampWentBackwards {
        /// The previous digest's time.
        previous: u64,
        /// This digest's time.
        got: u64,
    },
    /// Executor settings are invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// SPSA settings are invalid.
    #[error(transparent)]
    Spsa(#[from] SpsaConfigError),
}

/// Why an engine could not be built: one of the two ways, as one type, so
/// that [`AdaptiveEngine::new`](super::AdaptiveEngine::new) hands the cause
/// to the executor it fails closed with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum SetupError {
    Config(ConfigError),
    Spsa(SpsaConfigError),
}

impl From<ConfigError> for SetupError {
    fn from(error: ConfigError) -> Self {
        Self::Config(error)
    }
}

impl From<SpsaConfigError> for SetupError {
    fn from(error: SpsaConfigError) -> Self {
        Self::Spsa(error)
    }
}

impl From<SetupError> for EngineError {
    fn from(error: SetupError) -> Self {
        match error {
            SetupError::Config(error) => Self::Config(error),
            SetupError::Spsa(error) => Self::Spsa(error),
        }
    }
}

impl From<SetupError> for ConfigError {
    fn from(error: SetupError) -> Self {
        match error {
            SetupError::Config(error) => error,
            SetupError::Spsa(cause) => Self::InvalidEngineConfig { cause },
        }
    }
}
