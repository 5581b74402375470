//! Fuzzing the config crate's two parsers, the telemetry line and the TOML
//! tuning config (with `--set` overrides), as bounded property tests
//! (`cargo fuzz` needs a nightly toolchain): arbitrary input, and valid
//! input with random edits. The properties: never a panic (nor an abort),
//! and every error typed and located, in a reader's words: a telemetry
//! error names its file and line, a config problem its file (with line and
//! column where it has a place) or its `--set`, and no message shows a Rust
//! type name.
//!
//! `HOTPATH_FUZZ_CASES` sets the cases per target (default 256); a long
//! run: `HOTPATH_FUZZ_CASES=100000 cargo test --release -p hotpath-config --test fuzz`.
//! A failing case is saved in `fuzz.proptest-regressions`; add it to
//! `tests/corpus/` with its expected outcome.
//!
//! The corpus, `tests/corpus/{telemetry,config}/`, holds the cases the
//! reliability issue named and any the fuzzer found, each replayed with its
//! expected outcome (`NAME.expected` beside `NAME`; `HOTPATH_BLESS=1`
//! rewrites them from what the code does, for a reviewed change).

use hotpath_config::telemetry::DigestReader;
use hotpath_config::{parse, Override};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use std::path::{Path, PathBuf};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("HOTPATH_FUZZ_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256),
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

/// Words that give away a Rust type rather than say what is expected.
const RUST_WORDS: [&str; 12] = [
    "RawLine", "RawParam", "struct ", "u64", "u32", "f64", "usize", "i64", "KindName", "Initial",
    "Option<", "Scale",
];

fn plain(message: &str) -> Result<(), TestCaseError> {
    prop_assert!(!message.trim().is_empty(), "an empty message");
    for word in RUST_WORDS {
        prop_assert!(!message.contains(word), "{word} in {message:?}");
    }
    Ok(())
}

/// The telemetry reader's properties on `bytes`.
fn check_telemetry(bytes: &[u8]) -> Result<(), TestCaseError> {
    let mut reader = DigestReader::new(bytes, "f.jsonl");
    let mut lines = 0;
    while let Some(line) = reader.next_digest().expect("in memory") {
        lines += 1;
        prop_assert!(lines <= bytes.len() + 1, "more lines than bytes");
        if let Err(bad) = line {
            prop_assert_eq!(bad.file.as_str(), "f.jsonl");
            prop_assert!(bad.line >= 1);
            plain(&bad.message)?;
            let prefix = format!("f.jsonl:{}", bad.line);
            prop_assert!(bad.to_string().starts_with(&prefix), "{}", bad);
        }
    }
    Ok(())
}

/// The config parser's properties on `text` with `overrides`: an error
/// is located and plainly worded; a config that loads starts every knob
/// at one of its values.
fn check_config(text: &str, overrides: &[String]) -> Result<(), TestCaseError> {
    let mut layers = Vec::new();
    for o in overrides {
        match Override::parse(o) {
            Ok(o) => layers.push(o),
            Err(message) => plain(&message)?,
        }
    }
    let errors = match parse("t.toml", text, Path::new(""), &layers) {
        Ok(config) => {
            let initial = config.initial();
            for (i, v) in initial.iter().enumerate() {
                prop_assert!(config.space.admits(i, *v), "param[{i}] starts at {v}");
            }
            return Ok(());
        }
        Err(errors) => errors,
    };
    {
        prop_assert!(!errors.0.is_empty(), "an error without a problem");
        for d in &errors.0 {
            let located = d.location == "t.toml"
                || d.location.starts_with("--set ")
                || d.location.starts_with("--preset ")
                || d.location
                    .strip_prefix("t.toml:")
                    .and_then(|lc| lc.split_once(':'))
                    .is_some_and(|(l, c)| l.parse::<u64>().is_ok() && c.parse::<u64>().is_ok());
            prop_assert!(located, "not located: {d}");
            plain(&d.message)?;
        }
    }
    Ok(())
}

const TUNING: &str = include_str!("../../hotpath-cli/examples/tuning.toml");
const DIGESTS: &str = "{\"t_us\": 1200000, \"objective\": 3.25, \"samples\": 480}\n\
{\"t_us\": 1300000, \"objective\": 3.10, \"samples\": 512, \"generation\": 4, \"margin\": 0.2, \"window_us\": 100000}\n";

/// Characters that matter to TOML and JSON, and any character.
fn interesting_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => prop::sample::select("{}[]\"'=:,.\n#-+_0123456789eEinfatrulsx ".chars().collect::<Vec<_>>()),
        1 => any::<char>(),
    ]
}

/// Up to five edits of `text`: a character replaced, inserted or removed,
/// or the text cut, at random places.
fn edited(text: &'static str) -> impl Strategy<Value = String> {
    let edit = (0u8..4, any::<prop::sample::Index>(), interesting_char());
    prop::collection::vec(edit, 1..6).prop_map(move |edits| {
        let mut chars: Vec<char> = text.chars().collect();
        for (kind, at, c) in edits {
            if chars.is_empty() {
                break;
            }
            let i = at.index(chars.len());
            match kind {
                0 => chars[i] = c,
                1 => chars.insert(i, c),
                2 => {
                    chars.remove(i);
                }
                _ => chars.truncate(i),
            }
        }
        chars.into_iter().collect()
    })
}

/// `--set` arguments: real keys with odd values, and anything.
fn overrides() -> impl Strategy<Value = Vec<String>> {
    let key = prop::sample::select(vec![
        "seed",
        "calibration",
        "guardrails.max_delta_per_step",
        "guardrails.max_updates_per_second",
        "guardrails.direction_flip_limit",
        "rollback.max_rollbacks_per_hour",
        "spsa.eval_window_digests",
        "spsa.settle_time_us",
        "spsa.aggregation",
        "calibration.noise_windows",
        "engine.audit_capacity",
        "output.state_file",
    ]);
    let value = prop_oneof![
        prop::sample::select(vec![
            "0",
            "1",
            "-1",
            "4294967296",
            "18446744073709551615",
            "9223372036854775807",
            "1e300",
            "-1.7976931348623157e308",
            "nan",
            "inf",
            "true",
            "\"x\"",
            "[1,2]",
            "{a=1}",
            "",
            "median",
        ])
        .prop_map(str::to_owned),
        "\\PC{0,12}",
    ];
    let one = prop_oneof![
        3 => (key, value).prop_map(|(k, v)| format!("{k}={v}")),
        1 => "\\PC{0,24}",
    ];
    prop::collection::vec(one, 0..3)
}

/// A `[[param]]` table of any kind, its keys drawn from values that are
/// right for one kind and wrong for another (or for every kind).
fn typed_param() -> impl Strategy<Value = String> {
    let kind = prop::sample::select(vec!["", "real", "int", "choice", "float", "\"\""]);
    let scale = prop::sample::select(vec!["", "linear", "log", "ln"]);
    let number = prop::sample::select(vec![
        "",
        "0",
        "1",
        "-1",
        "2",
        "8",
        "64",
        "0.5",
        "2.5",
        "1e300",
        "-9223372036854775808",
        "9007199254740993",
        "nan",
        "inf",
        "\"x\"",
        "\"lz4\"",
        "true",
        "[1]",
    ]);
    let options = prop::sample::select(vec![
        "",
        "[]",
        "[\"lz4\"]",
        "[\"none\", \"lz4\", \"zstd\"]",
        "[\"a\", \"a\"]",
        "[\"\", \"b\"]",
        "[1, 2]",
        "\"lz4\"",
    ]);
    let numbers = prop::collection::vec(number, 4);
    (kind, scale, numbers, options).prop_map(|(kind, scale, n, options)| {
        let mut table = String::from("[[param]]\nname = \"k\"\n");
        let mut key = |k: &str, v: &str, quoted: bool| {
            if !v.is_empty() {
                let v = if quoted {
                    format!("\"{v}\"")
                } else {
                    v.to_owned()
                };
                table.push_str(&format!("{k} = {v}\n"));
            }
        };
        key("type", kind, !kind.starts_with('"'));
        key("scale", scale, true);
        key("min", n[0], false);
        key("max", n[1], false);
        key("step", n[2], false);
        key("options", options, false);
        key("initial", n[3], false);
        table
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn typed_params_of_every_combination(
        params in prop::collection::vec(typed_param(), 1..4),
        sets in overrides(),
    ) {
        check_config(&params.concat(), &sets)?;
    }

    #[test]
    fn telemetry_of_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        check_telemetry(&bytes)?;
    }

    #[test]
    fn telemetry_with_random_edits(text in edited(DIGESTS)) {
        check_telemetry(text.as_bytes())?;
    }

    #[test]
    fn configs_of_arbitrary_text(text in "\\PC{0,300}", sets in overrides()) {
        check_config(&text, &sets)?;
    }

    #[test]
    fn configs_with_random_edits(text in edited(TUNING), sets in overrides()) {
        check_config(&text, &sets)?;
    }
}

// ---------------------------------------------------------------- corpus

/// The corpus of `kind`, `tests/corpus/KIND/`.
fn corpus(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(kind)
}

/// Each non-blank line's outcome: `ok` or the error.
fn telemetry_outcome(bytes: &[u8]) -> String {
    let mut reader = DigestReader::new(bytes, "f.jsonl");
    let mut out = Vec::new();
    while let Some(line) = reader.next_digest().expect("in memory") {
        out.push(match line {
            Ok((n, _)) => format!("f.jsonl:{n}: ok"),
            Err(bad) => bad.to_string(),
        });
    }
    out.join("\n")
}

/// `ok`, or the config's problems. A case's first line may be
/// `# --set KEY=VALUE ...` (the overrides to apply).
fn config_outcome(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let overrides: Vec<Override> = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# --set "))
        .map(|sets| {
            sets.split(" --set ")
                .map(|s| Override::parse(s).expect("a corpus override"))
                .collect()
        })
        .unwrap_or_default();
    match parse("t.toml", &text, Path::new(""), &overrides) {
        Ok(_) => "ok".to_owned(),
        Err(errors) => errors.to_string(),
    }
}

#[test]
fn the_telemetry_corpus_has_its_expected_outcomes() {
    hotpath_testkit::replay_corpus(&corpus("telemetry"), telemetry_outcome);
}

#[test]
fn the_config_corpus_has_its_expected_outcomes() {
    hotpath_testkit::replay_corpus(&corpus("config"), config_outcome);
}
