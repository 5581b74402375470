//! Where every key came from: each source (the file, each `--set`) is
//! parsed into a plain [`toml::Table`] to merge, and its positions go into
//! a side map, [`Origins`], from key path (`guardrails.max_delta_per_step`,
//! `param[1].min`) to the place it was written. Errors found after the
//! merge, the library's validation included, are located through it.

use crate::diagnostic::{friendly, line_column, Part, Problem, Span};
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// Which source a key was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The config file.
    File,
    /// The override of this index (in the order given).
    Override(usize),
}

/// A place to blame: a byte offset in the file, or an override as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A byte offset in the file.
    File(usize),
    /// The override of this index.
    Override(usize),
}

/// One written key: its source and, in the file, where its key and value
/// are.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    source: Source,
    key: Span,
    value: Span,
}

/// The side map: key path → where it was written. Paths are the format's
/// (`spsa.trim_fraction`), with `[i]` for array elements.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Origins {
    entries: BTreeMap<String, Entry>,
}

impl Origins {
    /// Where `path` was written (the `part` asked for), or, for a key that
    /// was not written (a missing field), the value of its closest written
    /// ancestor.
    pub(crate) fn locate(&self, path: &str, part: Part) -> Option<Origin> {
        let origin = |e: &Entry, part: Part| match e.source {
            Source::Override(i) => Origin::Override(i),
            Source::File => Origin::File(match part {
                Part::Key => e.key.start,
                Part::Value => e.value.start,
            }),
        };
        if let Some(entry) = self.entries.get(path) {
            return Some(origin(entry, part));
        }
        let mut path = path;
        while let Some(cut) = path.rfind(['.', '[']) {
            path = &path[..cut];
            if let Some(entry) = self.entries.get(path) {
                return Some(origin(entry, Part::Value));
            }
        }
        None
    }

    /// The innermost key whose value was written around byte `offset` of
    /// its source's text.
    pub(crate) fn key_at(&self, offset: usize) -> Option<&str> {
        self.entries
            .iter()
            .filter(|(_, e)| e.value.contains(&offset))
            .min_by_key(|(_, e)| e.value.len())
            .map(|(key, _)| key.as_str())
    }

    /// `true` if `path` was written in the file (not by an override).
    pub(crate) fn in_file(&self, path: &str) -> bool {
        self.entries
            .get(path)
            .is_some_and(|e| e.source == Source::File)
    }

    /// Takes `path` and everything under it from `other` (a later layer),
    /// dropping what this map had there.
    pub(crate) fn replace(&mut self, path: &str, other: &Origins) {
        self.remove(path);
        for (key, entry) in other.under(path) {
            self.entries.insert(key.clone(), entry.clone());
        }
    }

    /// Takes only `path` itself from `other`.
    pub(crate) fn replace_one(&mut self, path: &str, other: &Origins) {
        if let Some(entry) = other.entries.get(path) {
            self.entries.insert(path.to_owned(), entry.clone());
        }
    }

    /// Forgets `path` and everything under it.
    pub(crate) fn remove(&mut self, path: &str) {
        let doomed: Vec<String> = self.under(path).map(|(k, _)| k.clone()).collect();
        for key in doomed {
            self.entries.remove(&key);
        }
    }

    fn under<'a>(&'a self, path: &'a str) -> impl Iterator<Item = (&'a String, &'a Entry)> {
        self.entries.iter().filter(move |(key, _)| {
            key.strip_prefix(path)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        })
    }

    /// Records `table` and everything in it, under `prefix`.
    fn record(&mut self, prefix: &str, table: &DeTable<'_>, source: Source) {
        for (key, value) in table.iter() {
            let path = join(prefix, key.get_ref());
            self.record_value(path, key.span(), value, source);
        }
    }

    fn record_value(
        &mut self,
        path: String,
        key: Span,
        value: &Spanned<DeValue<'_>>,
        source: Source,
    ) {
        match value.get_ref() {
            DeValue::Table(table) => self.record(&path, table, source),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.record_value(format!("{path}[{i}]"), item.span(), item, source);
                }
            }
            _ => {}
        }
        let value = value.span();
        self.entries.insert(path, Entry { source, key, value });
    }
}

/// `prefix.key`, or `key` at the top.
pub(crate) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// One parsed source: its values, where each was written, and the parsed
/// document itself (format-owned keys are deserialised from it, so that
/// their errors carry the parser's own positions).
#[derive(Debug, Clone)]
pub(crate) struct Layer<'a> {
    pub(crate) table: toml::Table,
    pub(crate) origins: Origins,
    pub(crate) source: Source,
    document: DeTable<'a>,
}

impl<'a> Layer<'a> {
    /// The parsed value at `path` (`["guardrails", "preset"]`).
    pub(crate) fn parsed(&self, path: &[&str]) -> Option<&Spanned<DeValue<'a>>> {
        let (last, parents) = path.split_last()?;
        let mut table = &self.document;
        for name in parents {
            match find(table, name)?.get_ref() {
                DeValue::Table(inner) => table = inner,
                _ => return None,
            }
        }
        find(table, last)
    }
}

fn find<'t, 'a>(table: &'t DeTable<'a>, key: &str) -> Option<&'t Spanned<DeValue<'a>>> {
    table
        .iter()
        .find(|(k, _)| k.get_ref() == key)
        .map(|(_, v)| v)
}

/// Parses `text` (from `source`) into a [`Layer`].
///
/// # Errors
///
/// A TOML syntax error (`from_parser`), located in the file.
pub(crate) fn parse_layer(text: &str, source: Source) -> Result<Layer<'_>, Problem> {
    let syntax = |e: toml::de::Error| Problem {
        origin: e.span().map(|s| Origin::File(s.start)),
        key: None,
        message: friendly(e.message()),
        from_parser: true,
    };
    let document = DeTable::parse(text).map_err(syntax)?;
    let mut origins = Origins::default();
    origins.record("", document.get_ref(), source);
    // The text parsed; a value it holds may still not convert (an integer
    // beyond TOML's 64 bits): a problem of that key, not of the syntax.
    let table =
        toml::Table::deserialize(toml::de::Deserializer::from(document.clone())).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let written = text.get(span.clone()).unwrap_or("").trim();
            Problem {
                origin: Some(Origin::File(span.start)),
                key: origins.key_at(span.start).map(str::to_owned),
                message: unconvertible(written, e.message()),
                from_parser: false,
            }
        })?;
    Ok(Layer {
        table,
        origins,
        source,
        document: document.into_inner(),
    })
}

/// What is wrong with a `written` value TOML could parse but not convert.
fn unconvertible(written: &str, message: &str) -> String {
    let digits = written.trim_start_matches(['+', '-']);
    let integer = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    match (integer, written.starts_with('-')) {
        (true, false) => format!(
            "integer {written} is too large: TOML integers are at most {}",
            i64::MAX
        ),
        (true, true) => format!(
            "integer {written} is too small: TOML integers are at least {}",
            i64::MIN
        ),
        _ => friendly(message),
    }
}

/// The file and the overrides, for messages.
pub(crate) struct Sources<'a> {
    /// The file's name.
    pub(crate) name: &'a str,
    /// Its text.
    pub(crate) text: &'a str,
    /// Each override as the user wrote it (`--set KEY=VALUE`).
    pub(crate) overrides: Vec<String>,
}

impl Sources<'_> {
    /// `file:line:column`, the override, or the file's name alone.
    pub(crate) fn describe(&self, origin: Option<&Origin>) -> String {
        match origin {
            None => self.name.to_owned(),
            Some(Origin::Override(i)) => self
                .overrides
                .get(*i)
                .cloned()
                .unwrap_or_else(|| self.name.to_owned()),
            Some(Origin::File(offset)) => {
                let (line, column) = line_column(self.text, *offset);
                format!("{}:{line}:{column}", self.name)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_and_element_is_recorded_with_its_spans() {
        let text = "seed = 3\n[[param]]\nname = \"a\"\n[spsa]\nalpha = 0.5\n";
        let layer = parse_layer(text, Source::File).expect("valid");
        let at = |path: &str, part| match layer.origins.locate(path, part) {
            Some(Origin::File(offset)) => line_column(text, offset),
            other => panic!("{path}: {other:?}"),
        };
        assert_eq!(at("seed", Part::Value), (1, 8));
        assert_eq!(at("spsa.alpha", Part::Key), (5, 1));
        assert_eq!(at("param[0].name", Part::Value), (3, 8));
        // Not written: the closest written ancestor's value.
        assert_eq!(at("param[0].min", Part::Value), at("param[0]", Part::Value));
        assert!(layer.origins.in_file("spsa.alpha"));
    }

    #[test]
    fn replacing_a_path_drops_what_was_under_it() {
        let mut base = parse_layer("[calibration]\nnoise_windows = 4\n", Source::File)
            .expect("valid")
            .origins;
        let later = parse_layer("calibration = false\n", Source::Override(0))
            .expect("valid")
            .origins;
        base.replace("calibration", &later);
        assert_eq!(
            base.locate("calibration.noise_windows", Part::Value),
            Some(Origin::Override(0))
        );
        assert!(!base.in_file("calibration.noise_windows"));
    }
}
