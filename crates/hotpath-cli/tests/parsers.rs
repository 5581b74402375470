//! The telemetry and config parsers never panic, whatever they are given,
//! and what they accept is usable.

use hotpath::{AdaptiveEngine, ManualClock};
use hotpath_cli::config::{self, Override};
use hotpath_cli::telemetry::DigestReader;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use std::path::Path;

/// Reads everything; checks each accepted digest is one the engine takes.
fn read_all(bytes: &[u8]) -> (u64, u64) {
    let mut reader = DigestReader::new(bytes, "fuzz.jsonl");
    let mut last = None;
    let (mut good, mut bad) = (0, 0);
    loop {
        match reader.next_digest() {
            Ok(None) => break,
            Ok(Some(Ok((_, digest)))) => {
                assert!(digest.validate().is_ok(), "{digest:?}");
                let t = digest.timestamp_us.expect("always set");
                assert!(last.is_none_or(|l| t >= l), "time went backwards");
                last = Some(t);
                good += 1;
            }
            Ok(Some(Err(e))) => {
                let message = e.to_string();
                assert!(
                    message.starts_with("fuzz.jsonl:") && !message.contains('\n'),
                    "{message}"
                );
                bad += 1;
            }
            Err(e) => panic!("reading memory cannot fail: {e}"),
        }
    }
    (good, bad)
}

/// Fragments of telemetry lines, good and bad.
fn telemetry_line() -> impl Strategy<Value = String> {
    let key = select(vec![
        "t_us",
        "objective",
        "samples",
        "generation",
        "margin",
        "window_us",
        "extra",
        "",
    ]);
    let value = select(vec![
        "0",
        "1",
        "-1",
        "2.5",
        "1e308",
        "1e309",
        "-1e400",
        "\"NaN\"",
        "\"inf\"",
        "null",
        "true",
        "18446744073709551615",
        "18446744073709551616",
        "4611686018427387905",
        "[]",
        "{}",
        "\"\"",
        "0.000001",
        "-0",
        "1E2",
    ]);
    let fields = vec((key, value), 0..7);
    (fields, any::<u8>()).prop_map(|(fields, noise)| {
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        let mut line = format!("{{{}}}", body.join(","));
        match noise % 8 {
            0 => line.truncate(line.len() / 2),
            1 => line.push_str(" trailing"),
            2 => line = format!("  {line}\r"),
            _ => {}
        }
        line
    })
}

fn config_text() -> impl Strategy<Value = String> {
    let section = select(vec![
        "",
        "[guardrails]",
        "[rollback]",
        "[spsa]",
        "[calibration]",
        "[engine]",
        "[output]",
        "[bogus]",
        "[[param]]",
    ]);
    let key = select(vec![
        "preset",
        "max_delta_per_step",
        "max_updates_per_second",
        "min_interval_us",
        "direction_flip_limit",
        "cooldown_after_flip_us",
        "max_cumulative_delta_per_minute",
        "regression_count_limit",
        "violation_limit",
        "max_consecutive_regressions",
        "max_rollbacks_per_hour",
        "min_stable_time_us",
        "regression_sigmas",
        "regression_tolerance",
        "eval_window_digests",
        "eval_window_us",
        "settle_time_us",
        "alpha",
        "gamma",
        "stability_a",
        "aggregation",
        "trim_fraction",
        "learning_rate",
        "perturbation_scale",
        "noise_windows",
        "gradient_pairs",
        "target_first_step",
        "expected_iterations",
        "min_perturbation",
        "gain_floor",
        "trust_radius",
        "rejection_sigmas",
        "emergency_margin",
        "max_eval_timeouts",
        "audit_capacity",
        "audit_dir",
        "state_file",
        "seed",
        "calibration",
        "name",
        "min",
        "max",
        "initial",
        "x",
    ]);
    let value = select(vec![
        "0",
        "1",
        "2",
        "-1",
        "0.5",
        "0.05",
        "1e300",
        "nan",
        "inf",
        "-inf",
        "\"balanced\"",
        "\"wild\"",
        "\"median\"",
        "\"trimmed_mean\"",
        "true",
        "false",
        "[1, 2]",
        "{ a = 1 }",
        "9223372036854775807",
        "4294967296",
        "\"\"",
        "\"dir\"",
        "1000000",
        "3",
    ]);
    let line = (section, key, value, any::<bool>()).prop_map(|(s, k, v, header)| {
        if header && !s.is_empty() {
            format!("{s}\n{k} = {v}")
        } else {
            format!("{k} = {v}")
        }
    });
    (vec(line, 0..12), any::<bool>()).prop_map(|(lines, with_param)| {
        let mut text = String::new();
        if with_param {
            text.push_str("[[param]]\nname = \"a\"\nmin = 0\nmax = 10\ninitial = 5\n");
        }
        text.push_str(&lines.join("\n"));
        text
    })
}

/// A config that passed validation really builds an engine.
fn check_config(text: &str, overrides: &[Override]) {
    match config::parse("fuzz.toml", text, Path::new(""), overrides) {
        Ok(c) => assert!(
            AdaptiveEngine::with_clock(c.engine.clone(), c.initial(), ManualClock::new(0)).is_ok(),
            "accepted but unusable: {text}"
        ),
        Err(e) => {
            for d in &e.0 {
                assert!(!d.to_string().contains('\n'), "{d}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn telemetry_reader_survives_arbitrary_bytes(bytes in vec(any::<u8>(), 0..600)) {
        read_all(&bytes);
    }

    #[test]
    fn telemetry_reader_survives_near_miss_lines(lines in vec(telemetry_line(), 0..24)) {
        let text = lines.join("\n");
        let (good, bad) = read_all(text.as_bytes());
        prop_assert!(good + bad <= lines.len() as u64);
    }

    #[test]
    fn config_parser_survives_arbitrary_text(bytes in vec(any::<u8>(), 0..400)) {
        check_config(&String::from_utf8_lossy(&bytes), &[]);
    }

    #[test]
    fn config_parser_survives_near_miss_configs(text in config_text(), set in ".{0,40}") {
        check_config(&text, &[]);
        if let Ok(o) = Override::parse(&set) {
            check_config(&text, &[o]);
        }
    }
}
