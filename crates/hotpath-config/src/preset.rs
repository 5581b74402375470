//! [`Preset`]: the named policies a config starts from.

use hotpath::{Guardrails, RollbackPolicy};
use serde::Deserialize;

/// A policy preset for the guardrails and the rollback policy.
///
/// ```
/// use hotpath_config::Preset;
///
/// let p: Preset = "conservative".parse()?;
/// assert_eq!(p.name(), "conservative");
/// assert_eq!(p.guardrails(), hotpath::Guardrails::preset_conservative());
/// assert_eq!(Preset::default(), Preset::Balanced);
/// # Ok::<(), hotpath_config::UnknownPreset>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// Small steps, slow rate, quick to roll back.
    Conservative,
    /// The library's defaults.
    #[default]
    Balanced,
    /// Large steps, fast rate, tolerant of regressions.
    Aggressive,
}

impl Preset {
    /// Every preset, mildest first.
    ///
    /// ```
    /// use hotpath_config::Preset;
    ///
    /// assert_eq!(Preset::ALL.map(Preset::name), ["conservative", "balanced", "aggressive"]);
    /// ```
    pub const ALL: [Preset; 3] = [Preset::Conservative, Preset::Balanced, Preset::Aggressive];

    /// The preset's name as written in the config.
    ///
    /// ```
    /// assert_eq!(hotpath_config::Preset::Aggressive.name(), "aggressive");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Preset::Conservative => "conservative",
            Preset::Balanced => "balanced",
            Preset::Aggressive => "aggressive",
        }
    }

    /// What the preset is for, in a few words (for help texts).
    ///
    /// ```
    /// assert_eq!(hotpath_config::Preset::Balanced.description(), "The library's defaults");
    /// ```
    pub fn description(self) -> &'static str {
        match self {
            Preset::Conservative => "Small steps, slow rate, quick to roll back",
            Preset::Balanced => "The library's defaults",
            Preset::Aggressive => "Large steps, fast rate, tolerant of regressions",
        }
    }

    /// The guardrails of this preset (no bounds).
    ///
    /// ```
    /// use hotpath_config::Preset;
    ///
    /// assert_eq!(Preset::Balanced.guardrails(), hotpath::Guardrails::default());
    /// ```
    pub fn guardrails(self) -> Guardrails {
        match self {
            Preset::Conservative => Guardrails::preset_conservative(),
            Preset::Balanced => Guardrails::preset_balanced(),
            Preset::Aggressive => Guardrails::preset_aggressive(),
        }
    }

    /// The rollback policy of this preset.
    ///
    /// ```
    /// use hotpath_config::Preset;
    ///
    /// assert_eq!(Preset::Aggressive.rollback(), hotpath::RollbackPolicy::preset_aggressive());
    /// ```
    pub fn rollback(self) -> RollbackPolicy {
        match self {
            Preset::Conservative => RollbackPolicy::preset_conservative(),
            Preset::Balanced => RollbackPolicy::preset_balanced(),
            Preset::Aggressive => RollbackPolicy::preset_aggressive(),
        }
    }
}

/// A name that is not a [`Preset`]'s.
///
/// ```
/// let e = "wild".parse::<hotpath_config::Preset>().unwrap_err();
/// assert_eq!(e.to_string(), "unknown preset `wild`, expected one of conservative, balanced, aggressive");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown preset `{name}`, expected one of conservative, balanced, aggressive")]
pub struct UnknownPreset {
    /// The name given.
    pub name: String,
}

impl std::str::FromStr for Preset {
    type Err = UnknownPreset;

    /// Parses a [`name`](Preset::name).
    ///
    /// # Errors
    ///
    /// [`UnknownPreset`] for any other string.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownPreset { name: s.to_owned() })
    }
}
