//! The config layer's behaviour as the `hotpath` command shows it: the
//! same cases and messages the CLI's config module was tested with.

use crate::{parse, Override, Preset};
use hotpath::{Aggregation, RollbackPolicy};
use std::path::Path;

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
    assert_eq!(c.space.name(1), "workers");
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
        e.to_string()
            .starts_with("--set guardrails.preset=wild: guardrails.preset: unknown variant `wild`"),
        "{e}"
    );
    assert!(Override::parse("param.a.min=1").is_err());
    assert!(Override::parse("a.b.c=1").is_err());
    assert!(Override::parse("a]\n[b=1").is_err());
    assert!(Override::parse("seed=1\n[x]").is_err());
}

/// Every problem of `text` with `overrides`, one string each.
fn errors_with(text: &str, overrides: &[&str]) -> Vec<String> {
    let overrides: Vec<Override> = overrides
        .iter()
        .map(|o| Override::parse(o).expect("an override"))
        .collect();
    match parse("t.toml", text, Path::new(""), &overrides) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

const ONE: &str = "[[param]]\nname = \"a\"\nmin = 0\nmax = 1\ninitial = 0.5\n";

#[test]
fn capacities_beyond_their_limits_are_located_errors() {
    for value in ["4294967296", "1048577"] {
        assert_eq!(
            errors_with(ONE, &[&format!("engine.audit_capacity={value}")]),
            [format!("--set engine.audit_capacity={value}: engine.audit_capacity: expected a capacity in [2, 1048576] events, got {value}")]
        );
        assert_eq!(
            errors(&format!("{ONE}[engine]\naudit_capacity = {value}\n")),
            [format!("t.toml:7:18: engine.audit_capacity: expected a capacity in [2, 1048576] events, got {value}")]
        );
    }
    // Beyond TOML's integers: said so, at the key, not taken as a string.
    let max = "18446744073709551615";
    let expected =
        format!("integer {max} is too large: TOML integers are at most 9223372036854775807");
    assert_eq!(
        errors_with(ONE, &[&format!("engine.audit_capacity={max}")]),
        [format!(
            "--set engine.audit_capacity={max}: engine.audit_capacity: {expected}"
        )]
    );
    assert_eq!(
        errors(&format!("{ONE}[engine]\naudit_capacity = {max}\n")),
        [format!("t.toml:7:18: engine.audit_capacity: {expected}")]
    );
    // A window the engine would allocate for every digest.
    assert_eq!(
        errors_with(ONE, &["spsa.eval_window_digests=4294967296"]),
        ["--set spsa.eval_window_digests=4294967296: spsa.eval_window_digests: expected at most 65536 digests per window, got 4294967296"]
    );
}

#[test]
fn every_library_validation_error_is_located() {
    // Too small for the engine's first two events: refused by the
    // library's validation, blamed on the key, where it was written.
    for capacity in [0, 1] {
        assert_eq!(
            errors(&format!("{ONE}[engine]\naudit_capacity = {capacity}\n")),
            [format!("t.toml:7:18: engine.audit_capacity: expected a capacity in [2, 1048576] events, got {capacity}")]
        );
        assert_eq!(
            errors_with(ONE, &[&format!("engine.audit_capacity={capacity}")]),
            [format!("--set engine.audit_capacity={capacity}: engine.audit_capacity: expected a capacity in [2, 1048576] events, got {capacity}")]
        );
    }
}

#[test]
fn ranges_that_overflow_and_extreme_numbers_are_worded_plainly() {
    let huge = "[[param]]\nname = \"a\"\nmin = -1.7976931348623157e308\nmax = 1.7976931348623157e308\ninitial = 0\n";
    assert_eq!(
        errors(huge),
        ["t.toml:3:7: param[0].min: the range from min -1.7976931348623157e308 to max 1.7976931348623157e308 overflows: max - min must be a finite number"]
    );
    // No float is written out with hundreds of digits.
    for e in errors_with(
        ONE,
        &[
            "guardrails.max_updates_per_second=1e300",
            "guardrails.min_interval_us=1e300",
        ],
    )
    .into_iter()
    .chain(errors_with(
        ONE,
        &["guardrails.max_updates_per_second=1e300"],
    ))
    .chain(errors_with(ONE, &["guardrails.min_interval_us=1e300"]))
    {
        assert!(e.len() < 200 && e.contains("1e300"), "{e}");
    }
}
