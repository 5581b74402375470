//! The tuning config: a TOML file naming the parameters and choosing the
//! policy, loaded into an [`AdaptiveEngineConfig`] plus the parameter names.
//!
//! ```toml
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
//! [rollback]
//! preset = "balanced"
//!
//! [spsa]
//! eval_window_digests = 3
//!
//! [calibration]                # or `calibration = false`
//! noise_windows = 4
//!
//! [output]
//! audit_dir = "hotpath-out"    # relative to this file
//! ```
//!
//! Sections and keys (every key is optional unless marked):
//!
//! * top level: `seed`; `calibration = false | true` (instead of a table).
//! * `[[param]]` (at least one): `name`, `min`, `max`, `initial`, all
//!   required. Names map to dense indices in file order at load time.
//! * `[guardrails]`: `preset` and the fields of [`hotpath::Guardrails`]
//!   except `bounds` (which come from the parameters).
//! * `[rollback]`: `preset` and the fields of [`hotpath::RollbackPolicy`].
//! * `[spsa]`: `eval_window_digests`, `eval_window_us`, `settle_time_us`,
//!   `alpha`, `gamma`, `stability_a`, `aggregation` (`"trimmed_mean"`,
//!   `"mean"` or `"median"`), `trim_fraction`, `learning_rate`,
//!   `perturbation_scale`.
//! * `[calibration]`: the fields of [`hotpath::CalibrationConfig`].
//! * `[engine]`: `emergency_margin`, `max_eval_timeouts`, `audit_capacity`.
//! * `[output]`: `audit_dir`, `state_file` (relative to the config file).
//!
//! Every problem is reported as `FILE:LINE:COLUMN: KEY: what is expected`;
//! values given with `--set KEY=VALUE` are reported as `--set KEY=VALUE: …`.

use hotpath::{
    AdaptiveEngine, AdaptiveEngineConfig, Aggregation, CalibrationConfig, ConfigError, EngineError,
    Guardrails, ManualClock, ParamVec, RollbackPolicy, SpsaConfigError,
};
use serde::Deserialize;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

type Span = Range<usize>;

/// A policy preset for the guardrails and the rollback policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
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
    /// The preset's name as written in the config.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Conservative => "conservative",
            Preset::Balanced => "balanced",
            Preset::Aggressive => "aggressive",
        }
    }

    /// The guardrails of this preset (no bounds).
    pub fn guardrails(self) -> Guardrails {
        match self {
            Preset::Conservative => Guardrails::preset_conservative(),
            Preset::Balanced => Guardrails::preset_balanced(),
            Preset::Aggressive => Guardrails::preset_aggressive(),
        }
    }

    /// The rollback policy of this preset.
    pub fn rollback(self) -> RollbackPolicy {
        match self {
            Preset::Conservative => RollbackPolicy::preset_conservative(),
            Preset::Balanced => RollbackPolicy::preset_balanced(),
            Preset::Aggressive => RollbackPolicy::preset_aggressive(),
        }
    }
}

/// One named parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    /// Its name.
    pub name: String,
    /// Lower bound.
    pub min: f64,
    /// Upper bound.
    pub max: f64,
    /// Starting value.
    pub initial: f64,
}

/// A validated tuning config.
#[derive(Debug, Clone, PartialEq)]
pub struct TuningConfig {
    /// The parameters, in index order.
    pub params: Vec<ParamSpec>,
    /// Engine settings, bounds included.
    pub engine: AdaptiveEngineConfig,
    /// The guardrails preset the overrides apply to.
    pub guardrails_preset: Preset,
    /// The rollback preset the overrides apply to.
    pub rollback_preset: Preset,
    /// Keys set explicitly (in the file or with `--set`), for reports.
    pub explicit: Vec<String>,
    /// `[output] audit_dir`, resolved.
    pub audit_dir: Option<PathBuf>,
    /// `[output] state_file`, resolved.
    pub state_file: Option<PathBuf>,
}

impl TuningConfig {
    /// The initial values, in index order.
    pub fn initial(&self) -> ParamVec {
        self.params.iter().map(|p| p.initial).collect()
    }
}

/// A `--set KEY=VALUE` (or `--preset`) override.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// How the user wrote it, for messages.
    origin: String,
    /// A TOML snippet setting the key.
    snippet: String,
    /// The same snippet with the value quoted as a string (for bare words).
    quoted: String,
}

impl Override {
    /// `--set KEY=VALUE`: KEY is `key` (top level) or `section.key`; VALUE
    /// is a TOML value, or a bare word taken as a string.
    pub fn parse(arg: &str) -> Result<Self, String> {
        let Some((key, value)) = arg.split_once('=') else {
            return Err(format!("`{arg}` is not KEY=VALUE"));
        };
        let key = key.trim();
        let parts: Vec<&str> = key.split('.').collect();
        let valid_part = |p: &&str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if parts.first() == Some(&"param") {
            return Err(
                "parameters cannot be changed with --set: edit [[param]] in the config".into(),
            );
        }
        let value = value.trim();
        if value.contains(['\n', '\r']) {
            return Err("the value must be on one line".into());
        }
        let quoted = format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""));
        let (snippet, quoted) = match parts.as_slice() {
            [k] if valid_part(k) => (format!("{k} = {value}\n"), format!("{k} = {quoted}\n")),
            [section, k] if valid_part(section) && valid_part(k) => (
                format!("[{section}]\n{k} = {value}\n"),
                format!("[{section}]\n{k} = {quoted}\n"),
            ),
            _ => {
                return Err(format!(
                    "`{key}` is not a key: expected `key` or `section.key`, e.g. guardrails.max_delta_per_step"
                ))
            }
        };
        Ok(Self {
            origin: format!("--set {key}={value}"),
            snippet,
            quoted,
        })
    }

    /// `--preset P`: both presets.
    pub fn preset(preset: Preset) -> Vec<Self> {
        ["guardrails", "rollback"]
            .into_iter()
            .map(|section| {
                let snippet = format!("[{section}]\npreset = \"{}\"\n", preset.name());
                Self {
                    origin: format!("--preset {}", preset.name()),
                    quoted: snippet.clone(),
                    snippet,
                }
            })
            .collect()
    }
}

impl std::str::FromStr for Override {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s)
    }
}

/// One problem in a config: where, which key, what is expected.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// `file:line:column`, `file`, or `--set KEY=VALUE`.
    pub location: String,
    /// The key, e.g. `guardrails.max_delta_per_step` or `param[1].min`.
    pub key: Option<String>,
    /// What is wrong and what is expected.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{}: {key}: {}", self.location, self.message),
            None => write!(f, "{}: {}", self.location, self.message),
        }
    }
}

/// Every problem found in a config, one per line.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigErrors(pub Vec<Diagnostic>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads and validates the config at `path` with `overrides` applied in
/// order.
pub fn load(path: &Path, overrides: &[Override]) -> Result<TuningConfig, crate::CliError> {
    let text = std::fs::read(path).map_err(|e| crate::CliError::read(path, e))?;
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

/// Validates config `text` (named `name` in messages; relative output paths
/// are resolved against `base_dir`).
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
    let mut raw = parse_source(text).map_err(|e| ConfigErrors(vec![sources.diagnostic(e)]))?;
    let mut next_base = text.len() + 1;
    for o in overrides {
        let base = next_base;
        next_base += o.snippet.len().max(o.quoted.len()) + 1;
        sources.overrides.push((o.origin.clone(), base..next_base));
        let layer = match parse_source(&o.snippet) {
            Err(Problem {
                from_parser: true, ..
            }) => parse_source(&o.quoted),
            other => other,
        };
        let layer = layer.map_err(|mut e| {
            e.span = Some(base..base);
            ConfigErrors(vec![sources.diagnostic(e)])
        })?;
        raw.merge(layer, base);
    }
    build(raw, &sources, base_dir).map_err(ConfigErrors)
}

/// A problem before it is located.
struct Problem {
    span: Option<Span>,
    key: Option<String>,
    message: String,
    /// A TOML syntax error (rather than a wrong key or type).
    from_parser: bool,
}

impl Problem {
    fn at(span: Option<Span>, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            span,
            key: Some(key.into()),
            message: message.into(),
            from_parser: false,
        }
    }
}

/// The file and the overrides, laid end to end in one offset space so a
/// span tells where a value came from.
struct Sources<'a> {
    name: &'a str,
    text: &'a str,
    overrides: Vec<(String, Span)>,
}

impl Sources<'_> {
    fn locate(&self, span: Option<&Span>) -> String {
        let Some(span) = span else {
            return self.name.to_string();
        };
        if let Some((origin, _)) = self
            .overrides
            .iter()
            .find(|(_, range)| range.contains(&span.start))
        {
            return origin.clone();
        }
        let (line, column) = line_column(self.text, span.start);
        format!("{}:{line}:{column}", self.name)
    }

    fn in_file(&self, span: &Span) -> bool {
        span.start <= self.text.len()
    }

    fn diagnostic(&self, p: Problem) -> Diagnostic {
        Diagnostic {
            location: self.locate(p.span.as_ref()),
            key: p.key,
            message: p.message,
        }
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

fn parse_source(text: &str) -> Result<RawConfig, Problem> {
    let de = toml::Deserializer::parse(text).map_err(|e| Problem {
        span: e.span(),
        key: None,
        message: friendly(e.message()),
        from_parser: true,
    })?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = key_path(e.path());
        Problem {
            span: e.inner().span(),
            key: (!key.is_empty()).then_some(key),
            message: friendly(e.inner().message()),
            from_parser: false,
        }
    })
}

/// `guardrails.max_delta_per_step`, `param[1].min`: the path without the
/// `Spanned` wrappers.
fn key_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut key = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Map { key: k } if !k.starts_with("$__serde_spanned") => {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(k);
            }
            Segment::Seq { index } => key.push_str(&format!("[{index}]")),
            _ => {}
        }
    }
    key
}

/// One line, with Rust type names turned into what a TOML user writes.
fn friendly(message: &str) -> String {
    let mut m = message.trim().replace('\n', " ");
    for (from, to) in [
        ("expected f64", "expected a number"),
        ("expected u64", "expected a non-negative integer"),
        ("expected u32", "expected a non-negative integer below 2^32"),
        ("expected usize", "expected a non-negative integer"),
        ("expected struct param", "expected a [[param]] table"),
    ] {
        if let Some(stripped) = m.strip_suffix(from) {
            m = format!("{stripped}{to}");
        }
    }
    if let Some((head, table)) = m.rsplit_once("expected struct ") {
        m = format!("{head}expected a [{table}] table");
    }
    m
}

fn shifted<T>(value: Spanned<T>, by: usize) -> Spanned<T> {
    let span = value.span();
    Spanned::new(span.start + by..span.end + by, value.into_inner())
}

/// A section whose keys are all optional, with a field-wise merge (later
/// layers win) and a lookup of where each key was written.
macro_rules! section {
    ($name:ident, $toml:literal { $($field:ident : $ty:ty),* $(,)? }) => {
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields, rename = $toml)]
        struct $name {
            $($field: Option<Spanned<$ty>>,)*
        }

        impl $name {
            fn merge(&mut self, other: Self, shift: usize) {
                $(if let Some(v) = other.$field {
                    self.$field = Some(shifted(v, shift));
                })*
            }

            fn span_of(&self, field: &str) -> Option<Span> {
                match field {
                    $(stringify!($field) => self.$field.as_ref().map(|v| v.span()),)*
                    _ => None,
                }
            }

            fn explicit(&self) -> impl Iterator<Item = &'static str> + '_ {
                [$((stringify!($field), self.$field.is_some()),)*]
                    .into_iter()
                    .filter(|(_, set)| *set)
                    .map(|(name, _)| name)
            }
        }
    };
}

section!(RawGuardrails, "guardrails" {
    preset: Preset,
    max_delta_per_step: f64,
    max_updates_per_second: f64,
    min_interval_us: u64,
    direction_flip_limit: u32,
    cooldown_after_flip_us: u64,
    max_cumulative_delta_per_minute: f64,
    regression_count_limit: u32,
    violation_limit: u32,
});

section!(RawRollback, "rollback" {
    preset: Preset,
    max_consecutive_regressions: u32,
    max_rollbacks_per_hour: u32,
    min_stable_time_us: u64,
    regression_sigmas: f64,
    regression_tolerance: f64,
});

section!(RawSpsa, "spsa" {
    eval_window_digests: usize,
    eval_window_us: u64,
    settle_time_us: u64,
    alpha: f64,
    gamma: f64,
    stability_a: f64,
    aggregation: AggregationKind,
    trim_fraction: f64,
    learning_rate: f64,
    perturbation_scale: f64,
});

section!(RawCalibrationTable, "calibration" {
    noise_windows: u32,
    gradient_pairs: u32,
    target_first_step: f64,
    expected_iterations: u64,
    min_perturbation: f64,
    gain_floor: f64,
    trust_radius: f64,
    rejection_sigmas: f64,
});

section!(RawEngine, "engine" {
    emergency_margin: f64,
    max_eval_timeouts: u32,
    audit_capacity: usize,
});

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename = "output")]
struct RawOutput {
    audit_dir: Option<Spanned<String>>,
    state_file: Option<Spanned<String>>,
}

impl RawOutput {
    fn merge(&mut self, other: Self, shift: usize) {
        if let Some(v) = other.audit_dir {
            self.audit_dir = Some(shifted(v, shift));
        }
        if let Some(v) = other.state_file {
            self.state_file = Some(shifted(v, shift));
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum AggregationKind {
    TrimmedMean,
    Mean,
    Median,
}

/// `calibration = false`, `calibration = true` or a `[calibration]` table.
#[derive(Debug)]
enum RawCalibration {
    Off,
    On(Box<RawCalibrationTable>),
}

impl<'de> Deserialize<'de> for RawCalibration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawCalibration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a [calibration] table, or true/false")
            }
            fn visit_bool<E: serde::de::Error>(self, on: bool) -> Result<RawCalibration, E> {
                Ok(if on {
                    RawCalibration::On(Box::default())
                } else {
                    RawCalibration::Off
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<RawCalibration, A::Error> {
                RawCalibrationTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|t| RawCalibration::On(Box::new(t)))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "param")]
struct RawParam {
    name: Spanned<String>,
    min: Spanned<f64>,
    max: Spanned<f64>,
    initial: Spanned<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    seed: Option<Spanned<u64>>,
    #[serde(default)]
    param: Vec<Spanned<RawParam>>,
    #[serde(default)]
    guardrails: RawGuardrails,
    #[serde(default)]
    rollback: RawRollback,
    #[serde(default)]
    spsa: RawSpsa,
    calibration: Option<Spanned<RawCalibration>>,
    #[serde(default)]
    engine: RawEngine,
    #[serde(default)]
    output: RawOutput,
}

impl RawConfig {
    /// Lays `layer` (an override, whose spans start at `shift`) over this.
    fn merge(&mut self, layer: RawConfig, shift: usize) {
        if let Some(seed) = layer.seed {
            self.seed = Some(shifted(seed, shift));
        }
        self.guardrails.merge(layer.guardrails, shift);
        self.rollback.merge(layer.rollback, shift);
        self.spsa.merge(layer.spsa, shift);
        self.engine.merge(layer.engine, shift);
        self.output.merge(layer.output, shift);
        if let Some(calibration) = layer.calibration {
            let span = calibration.span();
            let span = span.start + shift..span.end + shift;
            let merged = match (
                self.calibration.take().map(Spanned::into_inner),
                calibration.into_inner(),
            ) {
                (Some(RawCalibration::On(mut table)), RawCalibration::On(layer)) => {
                    table.merge(*layer, shift);
                    RawCalibration::On(table)
                }
                (_, RawCalibration::On(layer)) => {
                    let mut table = Box::<RawCalibrationTable>::default();
                    table.merge(*layer, shift);
                    RawCalibration::On(table)
                }
                (_, RawCalibration::Off) => RawCalibration::Off,
            };
            self.calibration = Some(Spanned::new(span, merged));
        }
    }

    fn calibration_table(&self) -> Option<&RawCalibrationTable> {
        match self.calibration.as_ref().map(Spanned::get_ref) {
            Some(RawCalibration::On(table)) => Some(table),
            _ => None,
        }
    }

    /// Where the engine setting `field` (as hotpath names it) was written:
    /// its TOML key and span. `None` span if it was not written.
    fn locate_field(&self, field: &str) -> (String, Option<Span>) {
        if let Some(f) = field.strip_prefix("calibration.") {
            let span = self.calibration_table().and_then(|t| t.span_of(f));
            return (
                field.to_string(),
                span.or_else(|| self.calibration.as_ref().map(Spanned::span)),
            );
        }
        let sections: [(&str, Option<Span>, Option<Span>); 4] = [
            (
                "guardrails",
                self.guardrails.span_of(field),
                self.guardrails.span_of("preset"),
            ),
            (
                "rollback",
                self.rollback.span_of(field),
                self.rollback.span_of("preset"),
            ),
            ("spsa", self.spsa.span_of(field), None),
            ("engine", self.engine.span_of(field), None),
        ];
        let owner = match field {
            "max_delta_per_step"
            | "max_updates_per_second"
            | "min_interval_us"
            | "direction_flip_limit"
            | "cooldown_after_flip_us"
            | "max_cumulative_delta_per_minute"
            | "regression_count_limit"
            | "violation_limit" => "guardrails",
            "max_consecutive_regressions"
            | "max_rollbacks_per_hour"
            | "min_stable_time_us"
            | "regression_sigmas"
            | "regression_tolerance" => "rollback",
            "emergency_margin" | "max_eval_timeouts" | "audit_capacity" => "engine",
            _ => "spsa",
        };
        sections
            .into_iter()
            .find(|(name, _, _)| *name == owner)
            .map(|(name, span, fallback)| (format!("{name}.{field}"), span.or(fallback)))
            .unwrap_or_else(|| (field.to_string(), None))
    }
}

/// Builds the engine config and checks it; every problem found.
fn build(raw: RawConfig, src: &Sources, base_dir: &Path) -> Result<TuningConfig, Vec<Diagnostic>> {
    let mut problems = Vec::new();
    let params = check_params(&raw, &mut problems);

    let guardrails_preset = raw
        .guardrails
        .preset
        .as_ref()
        .map_or(Preset::Balanced, |p| *p.get_ref());
    let mut guardrails = guardrails_preset.guardrails();
    macro_rules! set {
        ($target:expr, $raw:expr, $($field:ident),*) => {
            $(if let Some(v) = &$raw.$field { $target.$field = v.get_ref().clone(); })*
        };
    }
    set!(
        guardrails,
        raw.guardrails,
        max_delta_per_step,
        max_updates_per_second,
        min_interval_us,
        direction_flip_limit,
        cooldown_after_flip_us,
        max_cumulative_delta_per_minute,
        regression_count_limit,
        violation_limit
    );
    if let Err(e) = guardrails.validate() {
        problems.push(engine_problem(&raw, &EngineError::Config(e)));
    }

    let rollback_preset = raw
        .rollback
        .preset
        .as_ref()
        .map_or(Preset::Balanced, |p| *p.get_ref());
    let mut rollback = rollback_preset.rollback();
    set!(
        rollback,
        raw.rollback,
        max_consecutive_regressions,
        max_rollbacks_per_hour,
        min_stable_time_us,
        regression_sigmas,
        regression_tolerance
    );
    if let Err(e) = rollback.validate() {
        problems.push(engine_problem(&raw, &EngineError::Config(e)));
    }

    let mut engine = AdaptiveEngineConfig {
        guardrails: guardrails.with_bounds(params.iter().map(|p| (p.min, p.max)).collect()),
        rollback_policy: rollback,
        ..AdaptiveEngineConfig::default()
    };
    if let Some(seed) = &raw.seed {
        engine.seed = *seed.get_ref();
    }
    set!(
        engine.spsa,
        raw.spsa,
        eval_window_digests,
        eval_window_us,
        settle_time_us,
        alpha,
        gamma,
        stability_a
    );
    set!(engine, raw.spsa, learning_rate, perturbation_scale);
    match (
        raw.spsa.aggregation.as_ref().map(|a| *a.get_ref()),
        &raw.spsa.trim_fraction,
    ) {
        (Some(AggregationKind::Mean), None) => engine.spsa.aggregation = Aggregation::Mean,
        (Some(AggregationKind::Median), None) => engine.spsa.aggregation = Aggregation::Median,
        (Some(kind), Some(t)) if kind != AggregationKind::TrimmedMean => {
            problems.push(Problem::at(
                Some(t.span()),
                "spsa.trim_fraction",
                "only applies to aggregation = \"trimmed_mean\"",
            ))
        }
        (_, trim) => {
            if let Some(t) = trim {
                engine.spsa.aggregation = Aggregation::TrimmedMean {
                    trim_fraction: *t.get_ref(),
                };
            }
        }
    }
    if let Err(e) = engine.spsa.validate() {
        problems.push(engine_problem(&raw, &EngineError::Spsa(e)));
    }

    engine.calibration = match raw.calibration.as_ref().map(Spanned::get_ref) {
        Some(RawCalibration::Off) => None,
        Some(RawCalibration::On(table)) => {
            let mut c = CalibrationConfig::default();
            set!(
                c,
                table,
                noise_windows,
                gradient_pairs,
                target_first_step,
                expected_iterations,
                min_perturbation,
                gain_floor,
                trust_radius,
                rejection_sigmas
            );
            if let Err(e) = c.validate() {
                problems.push(engine_problem(&raw, &EngineError::Config(e)));
            }
            Some(c)
        }
        None => Some(CalibrationConfig::default()),
    };
    set!(
        engine,
        raw.engine,
        emergency_margin,
        max_eval_timeouts,
        audit_capacity
    );
    if engine.audit_capacity == 0 {
        problems.push(engine_problem(
            &raw,
            &EngineError::Config(ConfigError::ZeroCapacity {
                what: "audit queue",
            }),
        ));
    }

    // The library's own checks, as a whole, once the parts are sound.
    if problems.is_empty() && !params.is_empty() {
        let initial: ParamVec = params.iter().map(|p| p.initial).collect();
        let checked = engine.validate(params.len()).and_then(|()| {
            AdaptiveEngine::with_clock(engine.clone(), initial, ManualClock::new(0)).map(drop)
        });
        if let Err(e) = checked {
            problems.push(engine_problem(&raw, &e));
        }
    }

    let resolve = |v: &Option<Spanned<String>>| {
        v.as_ref().map(|s| {
            let path = PathBuf::from(s.get_ref());
            if src.in_file(&s.span()) && path.is_relative() {
                base_dir.join(path)
            } else {
                path
            }
        })
    };
    let audit_dir = resolve(&raw.output.audit_dir);
    let state_file = resolve(&raw.output.state_file);
    for (key, value) in [
        ("output.audit_dir", &raw.output.audit_dir),
        ("output.state_file", &raw.output.state_file),
    ] {
        if let Some(v) = value.as_ref().filter(|v| v.get_ref().is_empty()) {
            problems.push(Problem::at(
                Some(v.span()),
                key,
                "expected a path, got an empty string",
            ));
        }
    }

    if !problems.is_empty() {
        return Err(problems.into_iter().map(|p| src.diagnostic(p)).collect());
    }
    let mut explicit: Vec<String> = Vec::new();
    if raw.seed.is_some() {
        explicit.push("seed".into());
    }
    for (section, keys) in [
        ("guardrails", raw.guardrails.explicit().collect::<Vec<_>>()),
        ("rollback", raw.rollback.explicit().collect()),
        ("spsa", raw.spsa.explicit().collect()),
        (
            "calibration",
            raw.calibration_table()
                .map(|t| t.explicit().collect())
                .unwrap_or_default(),
        ),
        ("engine", raw.engine.explicit().collect()),
    ] {
        explicit.extend(
            keys.into_iter()
                .filter(|k| *k != "preset")
                .map(|k| format!("{section}.{k}")),
        );
    }
    Ok(TuningConfig {
        params,
        engine,
        guardrails_preset,
        rollback_preset,
        explicit,
        audit_dir,
        state_file,
    })
}

/// The parameters, checked: at least one, unique non-empty names, finite
/// `min < max`, `initial` within them.
fn check_params(raw: &RawConfig, problems: &mut Vec<Problem>) -> Vec<ParamSpec> {
    if raw.param.is_empty() {
        problems.push(Problem {
            span: None,
            key: None,
            message:
                "no parameters: add at least one [[param]] table with name, min, max and initial"
                    .into(),
            from_parser: false,
        });
    }
    let mut params = Vec::with_capacity(raw.param.len());
    for (i, p) in raw.param.iter().enumerate() {
        let p = p.get_ref();
        let key = |field: &str| format!("param[{i}].{field}");
        let name = p.name.get_ref().trim();
        if name.is_empty() {
            problems.push(Problem::at(
                Some(p.name.span()),
                key("name"),
                "expected a non-empty name",
            ));
        } else if let Some(j) = params.iter().position(|q: &ParamSpec| q.name == name) {
            problems.push(Problem::at(
                Some(p.name.span()),
                key("name"),
                format!("duplicate name \"{name}\": param[{j}] already has it"),
            ));
        }
        let mut finite = true;
        for (field, v) in [("min", &p.min), ("max", &p.max), ("initial", &p.initial)] {
            if !v.get_ref().is_finite() {
                finite = false;
                problems.push(Problem::at(
                    Some(v.span()),
                    key(field),
                    format!("expected a finite number, got {}", v.get_ref()),
                ));
            }
        }
        let (min, max, initial) = (*p.min.get_ref(), *p.max.get_ref(), *p.initial.get_ref());
        if finite && !(min < max && (max - min).is_finite()) {
            problems.push(Problem::at(
                Some(p.min.span()),
                key("min"),
                format!("min ({min}) must be less than max ({max})"),
            ));
        } else if finite && !(min..=max).contains(&initial) {
            problems.push(Problem::at(
                Some(p.initial.span()),
                key("initial"),
                format!("expected a value within [{min}, {max}], got {initial}"),
            ));
        }
        params.push(ParamSpec {
            name: name.to_string(),
            min,
            max,
            initial,
        });
    }
    params
}

/// Maps one of hotpath's validation errors to the TOML key that caused it.
fn engine_problem(raw: &RawConfig, error: &EngineError) -> Problem {
    let field_of = |e: &SpsaConfigError| -> &'static str {
        match e {
            SpsaConfigError::ZeroEvalWindowDigests => "eval_window_digests",
            SpsaConfigError::ZeroEvalWindowUs => "eval_window_us",
            SpsaConfigError::SettleNotShorterThanWindow { .. } => {
                if raw.spsa.settle_time_us.is_some() || raw.spsa.eval_window_us.is_none() {
                    "settle_time_us"
                } else {
                    "eval_window_us"
                }
            }
            SpsaConfigError::InvalidExponent { name, .. } => name,
            SpsaConfigError::InvalidStabilityA(_) => "stability_a",
            SpsaConfigError::InvalidGain { name, .. } => name,
            SpsaConfigError::Aggregation(_) => "trim_fraction",
            _ => "",
        }
    };
    let param_key = |index: usize, field: &str| {
        let span = raw.param.get(index).map(|p| match field {
            "initial" => p.get_ref().initial.span(),
            _ => p.get_ref().min.span(),
        });
        (format!("param[{index}].{field}"), span)
    };
    let (key, span, message) = match error {
        EngineError::Config(ConfigError::InvalidField {
            field,
            value,
            expected,
        }) => {
            let (key, span) = raw.locate_field(field);
            (key, span, format!("expected {expected}, got {value}"))
        }
        EngineError::Config(ConfigError::ZeroCapacity { .. }) => {
            let (key, span) = raw.locate_field("audit_capacity");
            (key, span, "expected at least 1".to_string())
        }
        EngineError::Config(e @ ConfigError::InvalidBounds { index, .. }) => {
            let (key, span) = param_key(*index, "min");
            (key, span, e.to_string())
        }
        EngineError::Config(e @ ConfigError::InitialOutOfBounds { index, .. }) => {
            let (key, span) = param_key(*index, "initial");
            (key, span, e.to_string())
        }
        EngineError::Spsa(SpsaConfigError::NoParameters) => (
            "param".to_string(),
            None,
            "at least one [[param]] is required".to_string(),
        ),
        EngineError::Spsa(e) => match field_of(e) {
            "" => ("spsa".to_string(), None, e.to_string()),
            field => {
                let (key, span) = raw.locate_field(field);
                (key, span, e.to_string())
            }
        },
        other => ("config".to_string(), None, other.to_string()),
    };
    Problem::at(span, key, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
seed = 3
[[param]]
name = "batch_size"
min = 1
max = 512
initial = 64
[[param]]
name = "workers"
min = 1
max = 16
initial = 4
[guardrails]
preset = "conservative"
max_delta_per_step = 0.04
[spsa]
aggregation = "median"
"#;

    fn errors(text: &str) -> Vec<String> {
        match parse("t.toml", text, Path::new(""), &[]) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn good_config_maps_names_to_indices_and_applies_overrides() {
        let c = parse("t.toml", GOOD, Path::new("/etc"), &[]).expect("valid");
        assert_eq!(c.params[1].name, "workers");
        assert_eq!(c.initial().as_ref(), &[64.0, 4.0]);
        assert_eq!(c.engine.seed, 3);
        assert_eq!(c.engine.guardrails.max_delta_per_step, 0.04);
        assert_eq!(c.engine.guardrails.min_interval_us, 500_000);
        assert_eq!(
            c.engine.guardrails.bounds,
            Some(vec![(1.0, 512.0), (1.0, 16.0)])
        );
        assert_eq!(c.engine.spsa.aggregation, Aggregation::Median);
        assert_eq!(c.guardrails_preset, Preset::Conservative);
        assert_eq!(
            c.explicit,
            vec!["seed", "guardrails.max_delta_per_step", "spsa.aggregation"]
        );
    }

    #[test]
    fn errors_name_line_column_key_and_expectation() {
        let text = "[[param]]\nname = \"a\"\nmin = 5\nmax = 1\ninitial = 2\n[guardrails]\nmax_delta_per_stepp = 0.1\n";
        assert_eq!(
            errors(text),
            vec!["t.toml:7:1: guardrails.max_delta_per_stepp: unknown field `max_delta_per_stepp`, expected one of `preset`, `max_delta_per_step`, `max_updates_per_second`, `min_interval_us`, `direction_flip_limit`, `cooldown_after_flip_us`, `max_cumulative_delta_per_minute`, `regression_count_limit`, `violation_limit`"]
        );
        let text = "[[param]]\nname = \"a\"\nmin = 5\nmax = 1\ninitial = 2\n";
        assert_eq!(
            errors(text),
            vec!["t.toml:3:7: param[0].min: min (5) must be less than max (1)"]
        );
    }

    #[test]
    fn library_validation_is_mapped_to_the_key() {
        let text = "[[param]]\nname = \"a\"\nmin = 0\nmax = 1\ninitial = 0.5\n[guardrails]\nmax_delta_per_step = 1.5\n[spsa]\neval_window_us = 1000\n";
        assert_eq!(
            errors(text),
            vec![
                "t.toml:7:22: guardrails.max_delta_per_step: expected a fraction of the range in (0, 1], got 1.5",
                "t.toml:9:18: spsa.eval_window_us: settle_time_us (10000) must be shorter than eval_window_us (1000)",
            ]
        );
    }

    #[test]
    fn overrides_layer_over_the_file_and_are_blamed_by_name() {
        let sets = [
            Override::parse("guardrails.max_delta_per_step=0.02").unwrap(),
            Override::parse("calibration=false").unwrap(),
        ];
        let c = parse("t.toml", GOOD, Path::new(""), &sets).expect("valid");
        assert_eq!(c.engine.guardrails.max_delta_per_step, 0.02);
        assert_eq!(c.engine.calibration, None);
        let preset = Override::preset(Preset::Aggressive);
        let c = parse("t.toml", GOOD, Path::new(""), &preset).expect("valid");
        assert_eq!(c.engine.guardrails.min_interval_us, 50_000);
        assert_eq!(
            c.engine.rollback_policy,
            RollbackPolicy::preset_aggressive()
        );
        let bad = [Override::parse("spsa.alpha=-1").unwrap()];
        let e = parse("t.toml", GOOD, Path::new(""), &bad).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--set spsa.alpha=-1: spsa.alpha: alpha must be finite and >= 0, got -1"
        );
        let bad = [Override::parse("guardrails.preset=wild").unwrap()];
        let e = parse("t.toml", GOOD, Path::new(""), &bad).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "--set guardrails.preset=wild: guardrails.preset: unknown variant `wild`"
            ),
            "{e}"
        );
        assert!(Override::parse("param.a.min=1").is_err());
        assert!(Override::parse("a.b.c=1").is_err());
        assert!(Override::parse("a]\n[b=1").is_err());
        assert!(Override::parse("seed=1\n[x]").is_err());
    }

    #[test]
    fn line_column_counts_characters() {
        assert_eq!(line_column("ab\ncé d", 7), (2, 4));
        assert_eq!(line_column("x", 99), (1, 2));
    }
}
