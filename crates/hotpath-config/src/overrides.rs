//! [`Override`]: a `--set KEY=VALUE` (or `--preset`) laid over the file.

use crate::preset::Preset;

/// A `--set KEY=VALUE` (or `--preset`) override: a one-key TOML layer
/// applied over the config file, blamed by name when it is wrong.
///
/// ```
/// use hotpath_config::{parse, Override, Preset};
/// use std::path::Path;
///
/// let text = "[[param]]\nname = \"a\"\nmin = 0\nmax = 1\ninitial = 0.5\n";
/// let mut layers = Override::preset(Preset::Conservative);
/// layers.push(Override::parse("spsa.eval_window_digests=3")?);
/// let config = parse("t.toml", text, Path::new(""), &layers).expect("valid");
/// assert_eq!(config.engine.spsa.eval_window_digests, 3);
/// assert_eq!(config.engine.guardrails.min_interval_us, 500_000);
/// # Ok::<(), String>(())
/// ```
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
    ///
    /// # Errors
    ///
    /// A message when `arg` is not `KEY=VALUE`, the key is not `key` or
    /// `section.key`, it names a parameter, or the value spans lines.
    ///
    /// ```
    /// use hotpath_config::Override;
    ///
    /// assert!(Override::parse("guardrails.preset=wild").is_ok()); // a bare word
    /// assert!(Override::parse("param.a.min=1").is_err());
    /// ```
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

    /// `--preset P`: both presets, as two layers.
    ///
    /// ```
    /// use hotpath_config::{Override, Preset};
    ///
    /// let layers = Override::preset(Preset::Aggressive);
    /// assert_eq!(layers.len(), 2);
    /// assert_eq!(layers[0].origin(), "--preset aggressive");
    /// ```
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

    /// How the user wrote it (`--set spsa.alpha=0.5`): where its problems
    /// are reported.
    ///
    /// ```
    /// let o = hotpath_config::Override::parse("seed = 3")?;
    /// assert_eq!(o.origin(), "--set seed=3");
    /// # Ok::<(), String>(())
    /// ```
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The TOML snippet, and the snippet with the value quoted (tried when
    /// the first is not TOML: a bare word).
    pub(crate) fn snippets(&self) -> (&str, &str) {
        (&self.snippet, &self.quoted)
    }
}

impl std::str::FromStr for Override {
    type Err = String;

    /// [`Override::parse`].
    ///
    /// # Errors
    ///
    /// As [`Override::parse`].
    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_overrides_are_refused() {
        assert!(Override::parse("param.a.min=1").is_err());
        assert!(Override::parse("a.b.c=1").is_err());
        assert!(Override::parse("a]\n[b=1").is_err());
        assert!(Override::parse("seed=1\n[x]").is_err());
        assert!(Override::parse("seed").is_err());
    }
}
