//! [`TuningConfig`]: what a valid config describes.

use crate::preset::Preset;
use hotpath::{AdaptiveEngineConfig, ParamSpace, ParamVec};
use std::path::PathBuf;
use std::sync::Arc;

/// A validated tuning config: the parameters (a [`ParamSpace`] and their
/// initial values), the engine's settings and where outputs go.
///
/// ```
/// use hotpath_config::parse;
/// use std::path::Path;
///
/// let text = "seed = 3\n[[param]]\nname = \"batch_size\"\nmin = 1\nmax = 512\ninitial = 64\n";
/// let config = parse("t.toml", text, Path::new(""), &[]).expect("valid");
/// assert_eq!(config.space.index_of("batch_size"), Some(0));
/// assert_eq!(config.initial().as_ref(), &[64.0]);
/// assert_eq!(config.engine.seed, 3);
/// assert_eq!(config.engine.guardrails.bounds, Some(vec![(1.0, 512.0)]));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TuningConfig {
    /// The parameters' names and bounds, in index order (the order of the
    /// `[[param]]` tables).
    pub space: Arc<ParamSpace>,
    /// Their initial values, in index order.
    pub(crate) initial: ParamVec,
    /// Engine settings, bounds included.
    pub engine: AdaptiveEngineConfig,
    /// The guardrails preset the overrides apply to.
    pub guardrails_preset: Preset,
    /// The rollback preset the overrides apply to.
    pub rollback_preset: Preset,
    /// Keys set explicitly (in the file or with `--set`), for reports.
    pub explicit: Vec<String>,
    /// `[output]`, resolved.
    pub output: OutputSettings,
}

impl TuningConfig {
    /// The initial values, in index order.
    ///
    /// ```
    /// # let config = hotpath_config::parse("t.toml", "[[param]]\nname = \"a\"\nmin = 0\nmax = 1\ninitial = 0.5\n", std::path::Path::new(""), &[]).unwrap();
    /// assert_eq!(config.initial().as_ref(), &[0.5]);
    /// ```
    pub fn initial(&self) -> ParamVec {
        self.initial.clone()
    }
}

/// `[output]`: where a run's outputs go, relative paths written in the
/// file resolved against its directory.
///
/// ```
/// use hotpath_config::parse;
/// use std::path::Path;
///
/// let text = "[[param]]\nname = \"a\"\nmin = 0\nmax = 1\ninitial = 0.5\n[output]\naudit_dir = \"out\"\n";
/// let config = parse("t.toml", text, Path::new("/etc/svc"), &[]).expect("valid");
/// assert_eq!(config.output.audit_dir.as_deref(), Some(Path::new("/etc/svc/out")));
/// assert_eq!(config.output.state_file, None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputSettings {
    /// `audit_dir`: a run's output directory (`decisions.jsonl`, `audit/`).
    pub audit_dir: Option<PathBuf>,
    /// `state_file`: where the governed state goes.
    pub state_file: Option<PathBuf>,
}
