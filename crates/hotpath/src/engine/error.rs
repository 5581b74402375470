//! [`EngineError`]: why the engine refused a digest or could not be built.

use crate::error::ConfigError;
use crate::spsa::SpsaConfigError;
use crate::telemetry::DigestError;

/// Why the engine refused a digest or could not be built. A refused digest
/// changes nothing.
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
