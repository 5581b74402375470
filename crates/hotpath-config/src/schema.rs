//! How the format's sections map onto [`AdaptiveEngineConfig`].
//!
//! The keys of `[guardrails]`, `[rollback]`, `[spsa]`, `[calibration]`
//! and `[engine]` are not listed here: they are the fields of the library
//! types, read from their serialised defaults (in declaration order). Only
//! the places where the format differs from the library's shape are
//! written down, in [`RULES`]: the presets, the bounds (which come from
//! `[[param]]`), the aggregation (a name plus `trim_fraction` instead of a
//! tagged table) and the two gains that live in `[spsa]`.

use crate::source::join;
use hotpath::AdaptiveEngineConfig;
use serde::de::{Deserializer as _, IgnoredAny, MapAccess, Visitor};
use serde::Serialize;
use std::fmt;

/// The top-level keys of the format, in the order messages list them.
pub(crate) const TOP: [&str; 8] = [
    "seed",
    "param",
    "guardrails",
    "rollback",
    "spsa",
    "calibration",
    "engine",
    "output",
];

/// Top-level keys that are fields of [`AdaptiveEngineConfig`] itself.
const TOP_LIB: [&str; 1] = ["seed"];

/// One section of the format and how it differs from the library table it
/// sets.
struct Rule {
    /// The section's name in the format.
    name: &'static str,
    /// The field of [`AdaptiveEngineConfig`] holding the table it sets;
    /// `""` for the engine's own scalar fields that no other place sets.
    lib: &'static str,
    /// Takes `preset = "…"`.
    preset: bool,
    /// Library fields the format does not let this section set.
    hide: &'static [&'static str],
    /// A library field written as several format keys: `(field, [(key,
    /// sub-field)])`.
    split: &'static [(&'static str, &'static [(&'static str, &'static str)])],
    /// Engine fields (top level of the library config) set in this section.
    adopt: &'static [&'static str],
}

const RULES: [Rule; 5] = [
    Rule {
        name: "guardrails",
        lib: "guardrails",
        preset: true,
        hide: &["bounds"],
        split: &[],
        adopt: &[],
    },
    Rule {
        name: "rollback",
        lib: "rollback_policy",
        preset: true,
        hide: &[],
        split: &[],
        adopt: &[],
    },
    Rule {
        name: "spsa",
        lib: "spsa",
        preset: false,
        hide: &[],
        split: &[(
            "aggregation",
            &[("aggregation", "kind"), ("trim_fraction", "trim_fraction")],
        )],
        adopt: &["learning_rate", "perturbation_scale"],
    },
    Rule {
        name: "calibration",
        lib: "calibration",
        preset: false,
        hide: &[],
        split: &[],
        adopt: &[],
    },
    Rule {
        name: "engine",
        lib: "",
        preset: false,
        hide: &[],
        split: &[],
        adopt: &[],
    },
];

/// Where a format key's value goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `preset`: chooses the section's defaults.
    Preset,
    /// A field of the library config, by path (`spsa.aggregation.kind`).
    Lib(Vec<String>),
}

/// One key of a section.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    pub(crate) name: String,
    pub(crate) route: Route,
}

/// One section: its keys in the order messages list them.
#[derive(Debug, Clone)]
pub(crate) struct Section {
    pub(crate) name: &'static str,
    pub(crate) keys: Vec<Key>,
}

impl Section {
    /// The key called `name`.
    pub(crate) fn key(&self, name: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.name == name)
    }

    /// The keys' names.
    pub(crate) fn names(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.name.as_str()).collect()
    }
}

/// The format's sections, derived from the library's types.
#[derive(Debug, Clone)]
pub(crate) struct Schema {
    pub(crate) sections: Vec<Section>,
}

impl Schema {
    /// Reads the library's field names (in declaration order) from the
    /// serialised default config and applies [`RULES`].
    ///
    /// # Errors
    ///
    /// If the library's config cannot be serialised (a bug).
    pub(crate) fn new() -> Result<Self, String> {
        let json = serde_json::to_string(&AdaptiveEngineConfig::default())
            .map_err(|e| format!("cannot describe the engine config: {e}"))?;
        let root = serde_json::Deserializer::from_str(&json)
            .deserialize_map(ShapeVisitor)
            .map_err(|e| format!("cannot describe the engine config: {e}"))?;
        let claimed: Vec<&str> = TOP_LIB
            .iter()
            .chain(RULES.iter().flat_map(|r| r.adopt))
            .copied()
            .collect();
        let sections = RULES
            .iter()
            .map(|rule| {
                let mut keys = Vec::new();
                if rule.preset {
                    keys.push(Key {
                        name: "preset".into(),
                        route: Route::Preset,
                    });
                }
                let fields = if rule.lib.is_empty() {
                    root.leaves()
                        .filter(|f| !claimed.contains(f))
                        .map(|f| (f.to_owned(), vec![f.to_owned()]))
                        .collect()
                } else {
                    root.child(rule.lib).map_or_else(Vec::new, |table| {
                        table.fields(rule.lib, rule.hide, rule.split)
                    })
                };
                keys.extend(fields.into_iter().map(|(name, path)| Key {
                    name,
                    route: Route::Lib(path),
                }));
                keys.extend(rule.adopt.iter().map(|f| Key {
                    name: (*f).to_owned(),
                    route: Route::Lib(vec![(*f).to_owned()]),
                }));
                Section {
                    name: rule.name,
                    keys,
                }
            })
            .collect();
        Ok(Self { sections })
    }

    /// The section called `name`.
    pub(crate) fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The format key that sets the library field `lib_path`
    /// (`rollback_policy.regression_sigmas` → `rollback.regression_sigmas`).
    pub(crate) fn format_key(&self, lib_path: &str) -> Option<String> {
        if TOP_LIB.contains(&lib_path) {
            return Some(lib_path.to_owned());
        }
        self.sections.iter().find_map(|s| {
            s.keys.iter().find_map(|k| match &k.route {
                Route::Lib(path) if path.join(".") == lib_path => Some(join(s.name, &k.name)),
                _ => None,
            })
        })
    }

    /// The format key to blame for a library field set by no key: the
    /// section's `preset` if it has one, else the section itself.
    pub(crate) fn fallback(&self, lib_path: &str) -> Option<String> {
        let table = lib_path.split_once('.')?.0;
        let rule = RULES.iter().find(|r| r.lib == table)?;
        Some(if rule.preset {
            join(rule.name, "preset")
        } else {
            rule.name.to_owned()
        })
    }
}

/// The field names of a serialised value, in order.
#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Leaf,
    Table(Vec<(String, Shape)>),
}

impl Shape {
    fn child(&self, name: &str) -> Option<&Shape> {
        match self {
            Shape::Table(fields) => fields.iter().find(|(n, _)| n == name).map(|(_, s)| s),
            Shape::Leaf => None,
        }
    }

    /// The names of the fields that are not tables.
    fn leaves(&self) -> impl Iterator<Item = &str> {
        let fields = match self {
            Shape::Table(fields) => fields.as_slice(),
            Shape::Leaf => &[],
        };
        fields
            .iter()
            .filter(|(_, s)| *s == Shape::Leaf)
            .map(|(n, _)| n.as_str())
    }

    /// `(format key, library path)` of each field of the table at `lib`,
    /// with the rule's hidden fields left out and split ones expanded.
    fn fields(
        &self,
        lib: &str,
        hide: &[&str],
        split: &[(&str, &[(&str, &str)])],
    ) -> Vec<(String, Vec<String>)> {
        let Shape::Table(fields) = self else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, _) in fields {
            if hide.contains(&name.as_str()) {
                continue;
            }
            match split.iter().find(|(field, _)| field == name) {
                Some((_, parts)) => out.extend(parts.iter().map(|(key, sub)| {
                    (
                        (*key).to_owned(),
                        vec![lib.to_owned(), name.clone(), (*sub).to_owned()],
                    )
                })),
                None => out.push((name.clone(), vec![lib.to_owned(), name.clone()])),
            }
        }
        out
    }
}

/// Reads a JSON object's keys in the order they come (serde_json's own
/// map would sort them).
struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        let mut fields = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            fields.push((key, map.next_value::<ShapeOf>()?.0));
        }
        Ok(Shape::Table(fields))
    }
}

/// A [`Shape`] for any value: objects become tables, the rest leaves.
struct ShapeOf(Shape);

impl<'de> serde::Deserialize<'de> for ShapeOf {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Any;
        impl<'de> Visitor<'de> for Any {
            type Value = Shape;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Shape, A::Error> {
                ShapeVisitor.visit_map(map)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Shape, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Shape::Leaf)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
                Ok(Shape::Leaf)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
                Ok(Shape::Leaf)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
                Ok(Shape::Leaf)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
                Ok(Shape::Leaf)
            }
            fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
                Ok(Shape::Leaf)
            }
            fn visit_unit<E>(self) -> Result<Shape, E> {
                Ok(Shape::Leaf)
            }
        }
        deserializer.deserialize_any(Any).map(ShapeOf)
    }
}

/// `value` as a TOML table, for laying keys over it.
///
/// # Errors
///
/// If `value` is not a table in TOML (a bug for the library's configs).
pub(crate) fn to_table(value: &impl Serialize) -> Result<toml::Table, String> {
    toml::Table::try_from(value).map_err(|e| format!("cannot lay out the defaults: {e}"))
}

/// Sets `path` in `table` to `value`, creating tables on the way.
pub(crate) fn insert(table: &mut toml::Table, path: &[String], value: toml::Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut table = table;
    for name in parents {
        let entry = table
            .entry(name.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(inner) = entry else {
            return;
        };
        table = inner;
    }
    table.insert(last.clone(), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_list_the_library_fields_in_declaration_order() {
        let schema = Schema::new().expect("describable");
        let names = |s: &str| schema.section(s).expect(s).names().join(" ");
        assert_eq!(
            names("guardrails"),
            "preset max_delta_per_step max_updates_per_second min_interval_us direction_flip_limit \
             cooldown_after_flip_us max_cumulative_delta_per_minute regression_count_limit violation_limit"
        );
        assert_eq!(
            names("spsa"),
            "eval_window_digests eval_window_us settle_time_us alpha gamma stability_a aggregation \
             trim_fraction learning_rate perturbation_scale"
        );
        assert_eq!(
            names("engine"),
            "emergency_margin max_eval_timeouts audit_capacity"
        );
        let trim = schema.section("spsa").and_then(|s| s.key("trim_fraction"));
        assert_eq!(
            trim.map(|k| k.route.clone()),
            Some(Route::Lib(vec![
                "spsa".into(),
                "aggregation".into(),
                "trim_fraction".into()
            ]))
        );
        assert_eq!(
            schema
                .format_key("rollback_policy.regression_sigmas")
                .as_deref(),
            Some("rollback.regression_sigmas")
        );
        assert_eq!(
            schema.format_key("learning_rate").as_deref(),
            Some("spsa.learning_rate")
        );
        assert_eq!(
            schema.fallback("guardrails.min_interval_us").as_deref(),
            Some("guardrails.preset")
        );
    }
}
