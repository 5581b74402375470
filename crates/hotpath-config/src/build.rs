//! The second pass: the merged config turned into the library's types and
//! checked as a whole, every problem reported.
//!
//! The written keys are laid, at their library paths, over the library's
//! config serialised with the chosen presets, and the whole is
//! deserialised into an [`AdaptiveEngineConfig`]. Then the library checks
//! it (`validate`, in the order below); each error names a field, which
//! the schema maps back to the key that set it and the side map to where
//! that key was written.

use crate::diagnostic::{Diagnostic, Part, Problem};
use crate::merge::Merged;
use crate::params::{self, Param};
use crate::preset::Preset;
use crate::schema::{insert, to_table, Route, Schema};
use crate::source::{join, Sources};
use crate::structure::{from_value, RawOutput};
use crate::tuning::{OutputSettings, TuningConfig};
use hotpath::ShortFloat;
use hotpath::{
    AdaptiveEngine, AdaptiveEngineConfig, AtomicConfig, ConfigError, EngineError, Knob,
    ManualClock, ParamSpace, SafetyExecutor, SpsaConfigError, MAX_EVAL_WINDOW_DIGESTS,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The aggregation that takes a `trim_fraction`.
const TRIMMED: &str = "trimmed_mean";

/// Builds the config from `merged`; every problem found.
pub(crate) fn build(
    merged: &Merged,
    schema: &Schema,
    sources: &Sources,
    base_dir: &Path,
) -> Result<TuningConfig, Vec<Diagnostic>> {
    let ctx = Context { merged, schema };
    let located = |problems: Vec<Problem>| {
        problems
            .into_iter()
            .map(|p| p.diagnostic(sources))
            .collect::<Vec<_>>()
    };
    let mut problems = Vec::new();
    let params = params::build(merged.table.get("param"), &merged.origins, &mut problems);
    let guardrails_preset = ctx.preset("guardrails");
    let rollback_preset = ctx.preset("rollback");
    let mut engine = ctx
        .engine(guardrails_preset, rollback_preset)
        .map_err(|p| located(vec![p]))?;
    ctx.validate(&mut engine, &params, &mut problems);
    let space = if problems.is_empty() && !params.is_empty() {
        ctx.check_whole(&engine, &params, &mut problems)
    } else {
        None
    };
    let output = ctx.output(base_dir, &mut problems);
    match (space, problems.is_empty()) {
        (Some(space), true) => Ok(TuningConfig {
            space,
            initial: params.iter().map(Param::initial).collect(),
            engine,
            guardrails_preset,
            rollback_preset,
            explicit: ctx.explicit(),
            output,
        }),
        _ => Err(located(problems)),
    }
}

struct Context<'a> {
    merged: &'a Merged,
    schema: &'a Schema,
}

impl Context<'_> {
    /// The preset `section` chose (the default if none).
    fn preset(&self, section: &str) -> Preset {
        self.merged
            .get(&join(section, "preset"))
            .and_then(|v| from_value::<Preset>(v).ok())
            .unwrap_or_default()
    }

    /// The engine config: the written keys over the presets' defaults.
    fn engine(
        &self,
        guardrails: Preset,
        rollback: Preset,
    ) -> Result<AdaptiveEngineConfig, Problem> {
        let base = AdaptiveEngineConfig {
            guardrails: guardrails.guardrails(),
            rollback_policy: rollback.rollback(),
            ..AdaptiveEngineConfig::default()
        };
        let mut lib = to_table(&base).map_err(Problem::whole)?;
        if let Some(seed) = self.merged.get("seed") {
            insert(&mut lib, &["seed".to_owned()], seed.clone());
        }
        for section in &self.schema.sections {
            for key in &section.keys {
                let (Route::Lib(path), Some(value)) =
                    (&key.route, self.merged.get(&join(section.name, &key.name)))
                else {
                    continue;
                };
                insert(&mut lib, path, value.clone());
            }
        }
        let kind = self
            .merged
            .get("spsa.aggregation")
            .and_then(toml::Value::as_str);
        if kind.is_some_and(|k| k != TRIMMED) {
            if let Some(toml::Value::Table(spsa)) = lib.get_mut("spsa") {
                if let Some(toml::Value::Table(a)) = spsa.get_mut("aggregation") {
                    a.remove("trim_fraction");
                }
            }
        }
        let off = self.merged.get("calibration") == Some(&toml::Value::Boolean(false));
        let mut engine: AdaptiveEngineConfig =
            from_value(&toml::Value::Table(lib)).map_err(|(path, message)| {
                let key = self.format_key(&path);
                Problem::at(&self.merged.origins, key, Part::Value, message)
            })?;
        if off {
            engine.calibration = None;
        }
        Ok(engine)
    }

    /// The library's checks of the parts, in order; the bounds are added
    /// once the guardrails are checked.
    fn validate(
        &self,
        engine: &mut AdaptiveEngineConfig,
        params: &[Param],
        out: &mut Vec<Problem>,
    ) {
        if let Err(e) = engine.guardrails.validate() {
            out.push(self.problem("guardrails", &e.into()));
        }
        if let Err(e) = engine.rollback_policy.validate() {
            out.push(self.problem("rollback_policy", &e.into()));
        }
        let kind = self
            .merged
            .get("spsa.aggregation")
            .and_then(toml::Value::as_str);
        if kind.is_some_and(|k| k != TRIMMED) && self.merged.has("spsa.trim_fraction") {
            out.push(self.located(
                "spsa.trim_fraction",
                "only applies to aggregation = \"trimmed_mean\"".into(),
            ));
        }
        if let Err(e) = engine.spsa.validate() {
            out.push(self.problem("spsa", &e.into()));
        }
        if let Some(Err(e)) = engine.calibration.as_ref().map(|c| c.validate()) {
            out.push(self.problem("", &e.into()));
        }
        let bounds = params.iter().map(Param::bounds).collect();
        engine.guardrails = engine.guardrails.clone().with_bounds(bounds);
    }

    /// The library's checks of the whole, once the parts are sound: the
    /// engine's settings for these parameters, the parameter space, and an
    /// engine really built from them.
    fn check_whole(
        &self,
        engine: &AdaptiveEngineConfig,
        params: &[Param],
        out: &mut Vec<Problem>,
    ) -> Option<Arc<ParamSpace>> {
        let knobs: Option<Vec<Knob>> = params.iter().map(|p| p.knob.clone()).collect();
        let checked = engine
            .validate(params.len())
            .and_then(|()| Ok(ParamSpace::new(knobs.unwrap_or_default())?))
            .and_then(|space| {
                let space = Arc::new(space);
                let live = Arc::new(AtomicConfig::new(space.initial()));
                let executor = SafetyExecutor::builder(live)
                    .space(Arc::clone(&space))
                    .guardrails(engine.guardrails.clone())
                    .rollback_policy(engine.rollback_policy)
                    .audit_capacity(engine.audit_capacity)
                    .clock(ManualClock::new(0))
                    .build()?;
                AdaptiveEngine::with_executor(engine.clone(), executor)?;
                Ok(space)
            });
        match checked {
            Ok(space) => Some(space),
            Err(e) => {
                out.push(self.problem("", &e));
                None
            }
        }
    }

    /// `[output]`, with relative paths written in the file resolved
    /// against `base_dir`.
    fn output(&self, base_dir: &Path, out: &mut Vec<Problem>) -> OutputSettings {
        let raw = self
            .merged
            .table
            .get("output")
            .and_then(|v| from_value::<RawOutput>(v).ok())
            .unwrap_or_default();
        let mut resolve = |field: &str, value: Option<String>| {
            let key = join("output", field);
            let value = value?;
            if value.is_empty() {
                out.push(self.located(&key, "expected a path, got an empty string".into()));
            }
            let path = PathBuf::from(value);
            Some(if self.merged.origins.in_file(&key) && path.is_relative() {
                base_dir.join(path)
            } else {
                path
            })
        };
        OutputSettings {
            audit_dir: resolve("audit_dir", raw.audit_dir),
            state_file: resolve("state_file", raw.state_file),
        }
    }

    /// The keys set explicitly (in the file or by an override), `preset`
    /// aside: `seed`, then each section's in the schema's order.
    fn explicit(&self) -> Vec<String> {
        let mut keys = Vec::new();
        if self.merged.has("seed") {
            keys.push("seed".to_owned());
        }
        for section in &self.schema.sections {
            for key in &section.keys {
                let path = join(section.name, &key.name);
                if key.route != Route::Preset && self.merged.has(&path) {
                    keys.push(path);
                }
            }
        }
        keys
    }

    /// A problem at the written key `key`'s value.
    fn located(&self, key: &str, message: String) -> Problem {
        Problem::at(&self.merged.origins, key, Part::Value, message)
    }

    /// The format key for a library path (the path itself if none).
    fn format_key(&self, lib_path: &str) -> String {
        self.schema
            .format_key(lib_path)
            .unwrap_or_else(|| lib_path.to_owned())
    }

    /// One of the library's validation errors, at the key that set the
    /// field it names (`scope` is the library table the failing check
    /// looked at: `guardrails`, `rollback_policy`, `spsa`, or `""` for the
    /// engine config, whose fields' names are paths).
    fn problem(&self, scope: &str, error: &EngineError) -> Problem {
        let (lib_path, message) = match error {
            EngineError::Config(ConfigError::InvalidField {
                field,
                value,
                expected,
            }) => (
                self.lib_field(scope, field),
                format!("expected {expected}, got {}", ShortFloat(*value)),
            ),
            EngineError::Config(ConfigError::ZeroCapacity { .. }) => (
                "audit_capacity".to_owned(),
                "expected at least 1".to_owned(),
            ),
            EngineError::Config(ConfigError::CapacityTooLarge { got, limit, .. }) => (
                "audit_capacity".to_owned(),
                format!("expected at most {limit} events, got {got}"),
            ),
            // The queue cannot hold the engine's first events.
            EngineError::Config(ConfigError::BaselineRefused { violation }) => (
                "audit_capacity".to_owned(),
                format!(
                    "too small for the engine's first events (started, baseline set): {violation}"
                ),
            ),
            EngineError::Config(
                ConfigError::InvalidKnob { index, .. } | ConfigError::BoundsMismatch { index },
            ) => return self.located(&format!("param[{index}]"), error.to_string()),
            EngineError::Config(ConfigError::InitialOffGrid { index, .. }) => {
                return self.located(&format!("param[{index}].initial"), error.to_string())
            }
            EngineError::Config(
                ConfigError::TooManyParams { .. }
                | ConfigError::BoundsLength { .. }
                | ConfigError::SpaceLength { .. },
            ) => return self.located("param", error.to_string()),
            EngineError::Config(ConfigError::InvalidEngineConfig { cause }) => {
                return self.problem("spsa", &EngineError::Spsa(*cause))
            }
            EngineError::Config(
                e @ (ConfigError::InvalidBounds { index, .. }
                | ConfigError::InitialOutOfBounds { index, .. }),
            ) => {
                let field = match e {
                    ConfigError::InvalidBounds { .. } => "min",
                    _ => "initial",
                };
                return self.located(&format!("param[{index}].{field}"), e.to_string());
            }
            EngineError::Spsa(SpsaConfigError::NoParameters) => {
                return Problem {
                    key: Some("param".into()),
                    ..Problem::whole("at least one [[param]] is required")
                }
            }
            EngineError::Spsa(SpsaConfigError::TooManyEvalWindowDigests { value }) => (
                "spsa.eval_window_digests".to_owned(),
                format!(
                    "expected at most {MAX_EVAL_WINDOW_DIGESTS} digests per window, got {value}"
                ),
            ),
            EngineError::Spsa(e) => match self.spsa_field(e) {
                Some(path) => (path, e.to_string()),
                None => {
                    return Problem {
                        key: Some("spsa".into()),
                        ..Problem::whole(e.to_string())
                    }
                }
            },
            other => {
                return Problem {
                    key: Some("config".into()),
                    ..Problem::whole(other.to_string())
                }
            }
        };
        let key = self.format_key(&lib_path);
        let written = self.merged.has(&key);
        let origin = match (written, self.schema.fallback(&lib_path)) {
            (true, _) => self.merged.origins.locate(&key, Part::Value),
            (false, Some(fallback)) if self.merged.has(&fallback) => {
                self.merged.origins.locate(&fallback, Part::Value)
            }
            _ => None,
        };
        Problem {
            origin,
            key: Some(key),
            message,
            from_parser: false,
        }
    }

    /// The library path of a field named by a check of `scope`.
    fn lib_field(&self, scope: &str, field: &str) -> String {
        if field.contains('.') || scope.is_empty() {
            // Already a path (`calibration.noise_windows`), or an engine
            // field; a bare name the engine does not have is a part's.
            return [
                field.to_owned(),
                join("guardrails", field),
                join("rollback_policy", field),
            ]
            .into_iter()
            .find(|p| self.schema.format_key(p).is_some())
            .unwrap_or_else(|| field.to_owned());
        }
        join(scope, field)
    }

    /// The library path a [`SpsaConfigError`] is about. A settle time that
    /// swallows the window is blamed on the settle time unless only the
    /// window was written.
    fn spsa_field(&self, e: &SpsaConfigError) -> Option<String> {
        Some(match e {
            SpsaConfigError::ZeroEvalWindowDigests => "spsa.eval_window_digests".into(),
            SpsaConfigError::ZeroEvalWindowUs => "spsa.eval_window_us".into(),
            SpsaConfigError::SettleNotShorterThanWindow { .. } => {
                if self.merged.has("spsa.settle_time_us") || !self.merged.has("spsa.eval_window_us")
                {
                    "spsa.settle_time_us".into()
                } else {
                    "spsa.eval_window_us".into()
                }
            }
            SpsaConfigError::InvalidExponent { name, .. } => join("spsa", name),
            SpsaConfigError::InvalidStabilityA(_) => "spsa.stability_a".into(),
            SpsaConfigError::InvalidGain { name, .. } => (*name).to_owned(),
            SpsaConfigError::Aggregation(_) => "spsa.aggregation.trim_fraction".into(),
            _ => return None,
        })
    }
}
