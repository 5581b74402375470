//! # hotpath-config: the tuning config and the telemetry format
//!
//! The formats the `hotpath` command reads, as a library for anything
//! that drives [`hotpath`] (a daemon, a binding, a fleet):
//!
//! * the **tuning config** (TOML): the parameters, presets and every
//!   engine setting, with `--set KEY=VALUE` [`Override`]s, loaded into a
//!   [`TuningConfig`]: a [`hotpath::ParamSpace`] with the initial values
//!   beside it, an [`hotpath::AdaptiveEngineConfig`] and the
//!   [`OutputSettings`]. Every problem is a [`Diagnostic`] at
//!   `FILE:LINE:COLUMN: KEY: what is expected` (or `--set KEY=VALUE: …`),
//!   the library's own validation included;
//! * the **telemetry** (JSON Lines): [`telemetry::DigestReader`].
//!
//! ```
//! use hotpath_config::{parse, Override};
//! use std::path::Path;
//!
//! let text = r#"
//! seed = 7
//!
//! [[param]]
//! name = "batch_size"
//! min = 1
//! max = 512
//! initial = 64
//!
//! [guardrails]
//! preset = "balanced"          # conservative | balanced | aggressive
//! max_delta_per_step = 0.05    # any Guardrails field overrides the preset
//!
//! [spsa]
//! eval_window_digests = 3
//!
//! [calibration]                # or `calibration = false`
//! noise_windows = 4
//!
//! [output]
//! audit_dir = "hotpath-out"    # relative to the file
//! "#;
//! let overrides = [Override::parse("guardrails.max_delta_per_step=0.02")?];
//! let config = parse("tuning.toml", text, Path::new("/etc/svc"), &overrides).expect("valid");
//! assert_eq!(config.engine.guardrails.max_delta_per_step, 0.02);
//!
//! let bad = [Override::parse("spsa.alpha=-1")?];
//! let errors = parse("tuning.toml", text, Path::new(""), &bad).unwrap_err();
//! assert_eq!(errors.to_string(), "--set spsa.alpha=-1: spsa.alpha: alpha must be finite and >= 0, got -1");
//! # Ok::<(), String>(())
//! ```
//!
//! # Sections and keys
//!
//! Every key is optional unless marked:
//!
//! * top level: `seed`; `calibration = false | true` (instead of a table).
//! * `[[param]]` (at least one): `name` and `initial`, and by `type`:
//!   `"real"` (the default) and `"int"` need `min` and `max` and take
//!   `scale = "linear" | "log"` (log needs `min > 0`); `"int"` also takes
//!   `step` (default 1; the values are `min + k·step`); `"choice"` needs
//!   `options = ["…", …]` (2 to 256, distinct) and a string `initial`.
//!   A key that does not apply to the type is a problem at that key.
//!   Names map to dense indices in file order at load time; the values
//!   live as `f64`s (an integer exactly, a choice as its option's index:
//!   see [`hotpath::KnobKind`]).
//! * `[guardrails]`: `preset` and the fields of [`hotpath::Guardrails`]
//!   except `bounds` (which come from the parameters).
//! * `[rollback]`: `preset` and the fields of [`hotpath::RollbackPolicy`].
//! * `[spsa]`: the fields of [`hotpath::SpsaConfig`], its aggregation
//!   written as `aggregation` (`"trimmed_mean"`, `"mean"` or `"median"`)
//!   and `trim_fraction`, and the engine's `learning_rate` and
//!   `perturbation_scale`.
//! * `[calibration]`: the fields of [`hotpath::CalibrationConfig`].
//! * `[engine]`: the other fields of [`hotpath::AdaptiveEngineConfig`]
//!   (`emergency_margin`, `max_eval_timeouts`, `audit_capacity`).
//! * `[output]`: `audit_dir`, `state_file` (relative to the config file).
//!
//! The library sections' keys are not listed in this crate: they are read
//! from the library's types, so a new field is a new key.
//!
//! Every count and capacity has an upper limit, refused at its key beyond
//! it: the library's (`engine.audit_capacity` 1 to
//! [`hotpath::MAX_AUDIT_CAPACITY`], `spsa.eval_window_digests` at most
//! [`hotpath::MAX_EVAL_WINDOW_DIGESTS`], rates, flips, rollbacks), and
//! TOML's own (integers at most
//! 2⁶³ − 1, said so rather than read as a string).
//!
//! # How a config is read
//!
//! 1. Each source (the file, then each override) is parsed and checked on
//!    its own: a TOML syntax error, an unknown key or a wrong type stops at
//!    the first one.
//! 2. The sources are merged as TOML tables, later ones winning key by
//!    key, with a side map of where each key was written.
//! 3. The merged keys are laid over the library's config with the chosen
//!    presets and deserialised into the library's types, which are then
//!    validated; every problem is reported, each at the key that caused it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod build;
mod diagnostic;
mod merge;
mod overrides;
mod params;
mod preset;
mod schema;
mod source;
mod structure;
pub mod telemetry;
#[cfg(test)]
mod tests;
mod tuning;

pub use diagnostic::{line_column, ConfigErrors, Diagnostic};
pub use overrides::Override;
pub use preset::{Preset, UnknownPreset};
pub use tuning::{OutputSettings, TuningConfig};

use diagnostic::Problem;
use hotpath::AdaptiveEngineConfig;
use merge::Merged;
use source::{parse_layer, Origin, Source, Sources};
use std::path::{Path, PathBuf};
use structure::Checker;

/// Why [`load`] failed: the file could not be read, or it is not a valid
/// config.
///
/// ```
/// use hotpath_config::{load, LoadError};
///
/// let e = load(std::path::Path::new("/nonexistent/tuning.toml"), &[]).unwrap_err();
/// assert!(matches!(e, LoadError::Read { .. }));
/// assert!(e.to_string().starts_with("cannot read /nonexistent/tuning.toml: "));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config is invalid; one [`Diagnostic`] per line.
    #[error("{0}")]
    Invalid(#[from] ConfigErrors),
}

/// Reads and validates the config at `path` with `overrides` applied in
/// order; relative output paths are resolved against the file's directory.
///
/// # Errors
///
/// [`LoadError::Read`] if the file cannot be read, [`LoadError::Invalid`]
/// with every problem found otherwise (a file that is not UTF-8 is one).
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("tuning.toml");
/// std::fs::write(&path, "[[param]]\nname = \"a\"\nmin = 0\nmax = 1\ninitial = 0.5\n")?;
/// let config = hotpath_config::load(&path, &[])?;
/// assert_eq!(config.space.name(0), "a");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn load(path: &Path, overrides: &[Override]) -> Result<TuningConfig, LoadError> {
    let text = std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path.display().to_string();
    let text = String::from_utf8(text).map_err(|e| {
        ConfigErrors(vec![Diagnostic {
            location: name.clone(),
            key: None,
            message: format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        }])
    })?;
    let base = path.parent().unwrap_or(Path::new(""));
    Ok(parse(&name, &text, base, overrides)?)
}

/// Validates config `text` (named `name` in messages; relative output
/// paths are resolved against `base_dir`) with `overrides` applied in
/// order.
///
/// # Errors
///
/// [`ConfigErrors`]: the first syntax, key or type problem of a source, or
/// every problem with the values.
///
/// ```
/// use hotpath_config::parse;
/// use std::path::Path;
///
/// let text = "[[param]]\nname = \"a\"\nmin = 0\nmax = 1\ninitial = 0.5\n[guardrails]\nmax_delta_per_step = 1.5\n";
/// let e = parse("t.toml", text, Path::new(""), &[]).unwrap_err();
/// assert_eq!(
///     e.to_string(),
///     "t.toml:7:22: guardrails.max_delta_per_step: expected a fraction of the range in (0, 1], got 1.5"
/// );
/// ```
pub fn parse(
    name: &str,
    text: &str,
    base_dir: &Path,
    overrides: &[Override],
) -> Result<TuningConfig, ConfigErrors> {
    let mut sources = Sources {
        name,
        text,
        overrides: Vec::new(),
    };
    let one = |sources: &Sources, p: Problem| ConfigErrors(vec![p.diagnostic(sources)]);
    let setup = schema::Schema::new().and_then(|schema| {
        schema::to_table(&AdaptiveEngineConfig::default()).map(|defaults| (schema, defaults))
    });
    let (schema, defaults) = setup.map_err(|m| one(&sources, Problem::whole(m)))?;
    let checker = Checker {
        schema: &schema,
        defaults: &defaults,
    };
    let file = parse_layer(text, Source::File)
        .and_then(|layer| checker.check(&layer).map(|()| layer))
        .map_err(|p| one(&sources, p))?;
    let mut merged = Merged::new(file);
    for (i, o) in overrides.iter().enumerate() {
        sources.overrides.push(o.origin().to_owned());
        let (snippet, quoted) = o.snippets();
        let layer = match parse_layer(snippet, Source::Override(i)) {
            Err(Problem {
                from_parser: true, ..
            }) => parse_layer(quoted, Source::Override(i)),
            other => other,
        };
        let layer = layer
            .and_then(|layer| checker.check(&layer).map(|()| layer))
            .map_err(|p| one(&sources, p.blamed_on(Origin::Override(i))))?;
        merged.lay(layer);
    }
    build::build(&merged, &schema, &sources, base_dir).map_err(ConfigErrors)
}
