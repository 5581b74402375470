//! Laying the sources over each other: the file, then each override in
//! order, key by key, later ones winning. The side map of origins follows
//! the values.

use crate::source::{join, Layer, Origins};

/// The merged config: every key's value and where it was written.
#[derive(Debug, Clone, Default)]
pub(crate) struct Merged {
    pub(crate) table: toml::Table,
    pub(crate) origins: Origins,
}

impl Merged {
    /// Starts from the file.
    pub(crate) fn new(file: Layer) -> Self {
        Self {
            table: file.table,
            origins: file.origins,
        }
    }

    /// Lays `layer` (checked) over what is there.
    ///
    /// Sections merge key by key. `calibration` is a table or a switch:
    /// `false` turns it off (forgetting the keys set before), `true` keeps
    /// a table set before (or starts the defaults), and a table merges
    /// into one set before or starts from the defaults.
    pub(crate) fn lay(&mut self, layer: Layer) {
        let Layer { table, origins, .. } = layer;
        for (key, value) in table {
            let had_table = matches!(self.table.get(&key), Some(toml::Value::Table(_)));
            match (key.as_str(), had_table, value) {
                ("calibration", true, toml::Value::Boolean(true)) => {
                    self.origins.replace_one(&key, &origins);
                }
                ("calibration", false, toml::Value::Boolean(true)) => {
                    self.origins.replace(&key, &origins);
                    self.table
                        .insert(key, toml::Value::Table(toml::Table::new()));
                }
                (_, true, toml::Value::Table(theirs)) => {
                    self.origins.replace_one(&key, &origins);
                    for inner in theirs.keys() {
                        self.origins.replace(&join(&key, inner), &origins);
                    }
                    if let Some(toml::Value::Table(mine)) = self.table.get_mut(&key) {
                        mine.extend(theirs);
                    }
                }
                (_, _, value) => {
                    self.origins.replace(&key, &origins);
                    self.table.insert(key, value);
                }
            }
        }
    }

    /// `true` if `path` (`section.key` or a top-level key) was set.
    pub(crate) fn has(&self, path: &str) -> bool {
        self.get(path).is_some()
    }

    /// The value at `path` (`section.key` or a top-level key).
    pub(crate) fn get(&self, path: &str) -> Option<&toml::Value> {
        match path.split_once('.') {
            None => self.table.get(path),
            Some((section, key)) => self.table.get(section)?.as_table()?.get(key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{parse_layer, Source};

    fn merged(layers: &[&str]) -> Merged {
        let mut m = Merged::new(parse_layer(layers[0], Source::File).expect("valid"));
        for (i, text) in layers[1..].iter().enumerate() {
            m.lay(parse_layer(text, Source::Override(i)).expect("valid"));
        }
        m
    }

    #[test]
    fn sections_merge_key_by_key() {
        let m = merged(&["[spsa]\nalpha = 1\ngamma = 2\n", "[spsa]\nalpha = 3\n"]);
        assert_eq!(
            m.get("spsa.alpha").and_then(toml::Value::as_integer),
            Some(3)
        );
        assert_eq!(
            m.get("spsa.gamma").and_then(toml::Value::as_integer),
            Some(2)
        );
    }

    #[test]
    fn calibration_switches_and_tables() {
        let on = "[calibration]\nnoise_windows = 5\n";
        let m = merged(&[on, "calibration = false\n"]);
        assert_eq!(m.get("calibration"), Some(&toml::Value::Boolean(false)));
        let m = merged(&[on, "calibration = true\n"]);
        assert!(m.has("calibration.noise_windows"));
        let m = merged(&[
            on,
            "calibration = false\n",
            "[calibration]\ngain_floor = 0.5\n",
        ]);
        assert!(!m.has("calibration.noise_windows"));
        assert!(m.has("calibration.gain_floor"));
    }
}
