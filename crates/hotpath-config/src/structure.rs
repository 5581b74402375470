//! The first pass over each source: unknown keys and wrong types, which
//! stop at the first one (in key order, as serde visits a TOML table).
//!
//! A key of a library section is type-checked by laying it, alone, over
//! the library's default config and deserialising that: the library type
//! says what the key must be, so nothing here repeats it.

use crate::diagnostic::{friendly, unknown_field, Part, Problem};
use crate::params;
use crate::preset::Preset;
use crate::schema::{insert, Route, Schema, Section, TOP};
use crate::source::{join, Layer, Origin, Origins, Source};
use hotpath::AdaptiveEngineConfig;
use serde::de::{DeserializeOwned, Unexpected};
use serde::Deserialize;

/// `[output]`: where a run's outputs go.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOutput {
    pub(crate) audit_dir: Option<String>,
    pub(crate) state_file: Option<String>,
}

/// The key naming the aggregation: the tag of the library's
/// [`Aggregation`](hotpath::Aggregation), written as a bare name.
const AGGREGATION: &str = "spsa.aggregation";

/// The names `aggregation` takes: the library's variants, checked as a
/// name first so a value that is not one is worded as for any other
/// choice (the library's tag would say "variant identifier").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
enum AggregationName {
    TrimmedMean,
    Mean,
    Median,
}

/// What the checks compare against: the schema and the library's defaults
/// in TOML form.
pub(crate) struct Checker<'a> {
    pub(crate) schema: &'a Schema,
    pub(crate) defaults: &'a toml::Table,
}

impl Checker<'_> {
    /// Checks one source: every key known, every value of the right type.
    ///
    /// # Errors
    ///
    /// The first problem, in key order.
    pub(crate) fn check(&self, layer: &Layer) -> Result<(), Problem> {
        let origins = &layer.origins;
        for (key, value) in &layer.table {
            match key.as_str() {
                "seed" => self.lib_value(origins, key, &["seed".to_owned()], value)?,
                "param" => parsed::<Vec<params::RawParam>>(layer, &["param"])?,
                "output" => {
                    expect_table(value, "a [output] table")
                        .map_err(|m| Problem::at(origins, key, Part::Value, m))?;
                    parsed::<RawOutput>(layer, &["output"])?;
                }
                "calibration" if value.is_bool() => {}
                "calibration" => {
                    let table = expect_table(value, "a [calibration] table, or true/false")
                        .map_err(|m| Problem::at(origins, key, Part::Value, m))?;
                    self.section(layer, key, table)?;
                }
                name if TOP.contains(&name) => {
                    let table = expect_table(value, &format!("a [{name}] table"))
                        .map_err(|m| Problem::at(origins, key, Part::Value, m))?;
                    self.section(layer, name, table)?;
                }
                unknown => {
                    return Err(Problem::at(
                        origins,
                        unknown,
                        Part::Key,
                        unknown_field(unknown, &TOP),
                    ))
                }
            }
        }
        Ok(())
    }

    fn section(&self, layer: &Layer, name: &str, table: &toml::Table) -> Result<(), Problem> {
        let origins = &layer.origins;
        let Some(section) = self.schema.section(name) else {
            return Ok(());
        };
        for (key, value) in table {
            let path = join(name, key);
            match section.key(key).map(|k| &k.route) {
                None => return Err(unknown_key(origins, section, &path, key)),
                Some(Route::Preset) => parsed::<Preset>(layer, &[name, key])?,
                Some(Route::Lib(lib)) => {
                    if path == AGGREGATION {
                        parsed::<AggregationName>(layer, &[name, key])?;
                    }
                    self.lib_value(origins, &path, lib, value)?;
                }
            }
        }
        Ok(())
    }

    /// Lays `value` at `lib` over the library's defaults and deserialises
    /// the whole: the library's type decides.
    fn lib_value(
        &self,
        origins: &Origins,
        path: &str,
        lib: &[String],
        value: &toml::Value,
    ) -> Result<(), Problem> {
        let mut doc = self.defaults.clone();
        insert(&mut doc, lib, value.clone());
        from_value::<AdaptiveEngineConfig>(&toml::Value::Table(doc))
            .map(drop)
            .map_err(|(_, message)| Problem::at(origins, path, Part::Value, friendly(&message)))
    }
}

fn unknown_key(origins: &Origins, section: &Section, path: &str, key: &str) -> Problem {
    Problem::at(
        origins,
        path,
        Part::Key,
        unknown_field(key, &section.names()),
    )
}

/// `value`'s table, or serde's wording for what it is instead.
pub(crate) fn expect_table<'v>(
    value: &'v toml::Value,
    expected: &str,
) -> Result<&'v toml::Table, String> {
    let unexpected = match value {
        toml::Value::Table(table) => return Ok(table),
        toml::Value::String(s) => Unexpected::Str(s),
        toml::Value::Integer(i) => Unexpected::Signed(*i),
        toml::Value::Float(f) => Unexpected::Float(*f),
        toml::Value::Boolean(b) => Unexpected::Bool(*b),
        toml::Value::Array(_) => Unexpected::Seq,
        toml::Value::Datetime(_) => Unexpected::Other("datetime"),
    };
    Err(format!("invalid type: {unexpected}, expected {expected}"))
}

/// Deserialises the format-owned value at `path` of `layer` (`[output]`,
/// `[[param]]`, a `preset`) from the parsed document, so a problem is
/// where the parser puts it.
///
/// # Errors
///
/// The first problem serde finds, at the key it names.
fn parsed<T: DeserializeOwned>(layer: &Layer, path: &[&str]) -> Result<(), Problem> {
    let Some(value) = layer.parsed(path) else {
        return Ok(());
    };
    let de = toml::de::ValueDeserializer::from(value.clone());
    serde_path_to_error::deserialize::<_, T>(de)
        .map(drop)
        .map_err(|e| {
            let key = join_path(&path.join("."), &key_path("", e.path()));
            let mut problem = serde_problem(&layer.origins, key, e.inner().message());
            if let (Some(span), Source::File) = (e.inner().span(), layer.source) {
                problem.origin = Some(Origin::File(span.start));
            }
            problem
        })
}

/// Deserialises `value` as TOML text is: through the TOML parser's own
/// deserializer (a [`toml::Value`]'s words differ for enums). The error
/// is serde's path to the failing key (`[1].min`) and its message.
///
/// # Errors
///
/// What serde found wrong.
pub(crate) fn from_value<T: DeserializeOwned>(value: &toml::Value) -> Result<T, (String, String)> {
    let text = value.to_string();
    let de = toml::de::ValueDeserializer::parse(&text)
        .map_err(|e| (String::new(), e.message().to_owned()))?;
    serde_path_to_error::deserialize(de)
        .map_err(|e| (key_path("", e.path()), e.inner().message().to_owned()))
}

/// `prefix` followed by a path from [`from_value`].
pub(crate) fn join_path(prefix: &str, path: &str) -> String {
    if path.is_empty() || path.starts_with('[') {
        format!("{prefix}{path}")
    } else {
        join(prefix, path)
    }
}

/// `prefix` followed by serde's path: `param[1].min`.
pub(crate) fn key_path(prefix: &str, path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut key = prefix.to_owned();
    for segment in path.iter() {
        match segment {
            Segment::Map { key: k } => {
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

/// A serde problem at `key`: an unknown key is shown at the key, anything
/// else at the value.
pub(crate) fn serde_problem(origins: &Origins, key: String, message: &str) -> Problem {
    let part = if message.starts_with("unknown field") {
        Part::Key
    } else {
        Part::Value
    };
    Problem::at(origins, key, part, friendly(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_aggregation_name_is_a_library_variant() {
        for name in [
            AggregationName::TrimmedMean,
            AggregationName::Mean,
            AggregationName::Median,
        ] {
            let name = toml::Value::try_from(name).expect("a name");
            let mut table = toml::Table::new();
            table.insert("kind".into(), name);
            table.insert("trim_fraction".into(), toml::Value::Float(0.1));
            assert!(from_value::<hotpath::Aggregation>(&toml::Value::Table(table)).is_ok());
        }
    }
}
