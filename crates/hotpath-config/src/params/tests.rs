//! Every kind of `[[param]]`, good and bad, through [`crate::parse`]: each
//! problem at its FILE:LINE:COL and key, in the file's words.

use crate::parse;
use hotpath::{KnobKind, Scale, Value};
use std::path::Path;

fn errors(text: &str) -> Vec<String> {
    match parse("t.toml", text, Path::new(""), &[]) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

/// One `[[param]]` table of `body` (after `name = "k"`).
fn one(body: &str) -> String {
    format!("[[param]]\nname = \"k\"\n{body}")
}

#[test]
fn every_kind_builds_its_knob() {
    let text = r#"
[[param]]
name = "ratio"
min = 0
max = 1
initial = 0.5

[[param]]
name = "batch_size"
type = "int"
min = 8
max = 512
step = 8
initial = 64

[[param]]
name = "ttl_s"
scale = "log"
min = 1
max = 3600
initial = 60

[[param]]
name = "workers"
type = "int"
scale = "log"
min = 1
max = 64
initial = 4.0

[[param]]
name = "codec"
type = "choice"
options = ["none", "lz4", "zstd"]
initial = "zstd"
"#;
    let c = parse("t.toml", text, Path::new(""), &[]).expect("valid");
    let space = &c.space;
    assert_eq!(&c.initial()[..], &[0.5, 64.0, 60.0, 4.0, 2.0]);
    assert_eq!(
        space.knobs()[1].kind(),
        &KnobKind::Int {
            min: 8,
            max: 512,
            step: 8,
            scale: Scale::Linear
        }
    );
    assert!(matches!(
        space.knobs()[2].kind(),
        KnobKind::Real {
            scale: Scale::Log,
            ..
        }
    ));
    assert!(matches!(
        space.knobs()[3].kind(),
        KnobKind::Int {
            scale: Scale::Log,
            step: 1,
            ..
        }
    ));
    assert_eq!(space.value(4, c.initial()[4]), Value::Choice("zstd"));
    assert_eq!(
        c.engine.guardrails.bounds,
        Some(vec![
            (0.0, 1.0),
            (8.0, 512.0),
            (1.0, 3600.0),
            (1.0, 64.0),
            (0.0, 2.0)
        ])
    );
    assert_eq!(
        serde_json::to_string(&space.named(&c.initial())).expect("json"),
        r#"{"ratio":0.5,"batch_size":64,"ttl_s":60.0,"workers":4,"codec":"zstd"}"#
    );
}

#[test]
fn bad_combinations_are_located_at_their_key() {
    let cases: [(&str, &str); 22] = [
        (
            "type = \"float\"\nmin = 0\nmax = 1\ninitial = 0\n",
            "t.toml:3:8: param[0].type: unknown variant `float`, expected one of `real`, `int`, `choice`",
        ),
        (
            "scale = \"ln\"\nmin = 1\nmax = 2\ninitial = 1\n",
            "t.toml:3:9: param[0].scale: unknown variant `ln`, expected `linear` or `log`",
        ),
        (
            "scale = \"log\"\nmin = 0\nmax = 10\ninitial = 1\n",
            "t.toml:4:7: param[0].min: a log scale (scale = \"log\") needs min > 0, got 0",
        ),
        (
            "type = \"int\"\nscale = \"log\"\nmin = -4\nmax = 10\ninitial = 1\n",
            "t.toml:5:7: param[0].min: a log scale (scale = \"log\") needs min > 0, got -4",
        ),
        (
            "min = 0\nmax = 10\nstep = 2\ninitial = 1\n",
            "t.toml:5:8: param[0].step: step applies only to integer knobs (type = \"int\"); this is a real knob",
        ),
        (
            "type = \"int\"\nmin = 0\nmax = 10\noptions = [\"a\", \"b\"]\ninitial = 1\n",
            "t.toml:6:11: param[0].options: options apply only to choice knobs (type = \"choice\"); this is an integer knob",
        ),
        (
            "type = \"choice\"\noptions = [\"a\", \"b\"]\nmin = 0\ninitial = \"a\"\n",
            "t.toml:5:7: param[0].min: min does not apply to a choice knob (it takes options and an initial option)",
        ),
        (
            "type = \"int\"\nmin = 0\nmax = 10\ninitial = 2.5\n",
            "t.toml:6:11: param[0].initial: expected a whole number (this is an integer knob), got 2.5",
        ),
        (
            "type = \"int\"\nmin = 0.5\nmax = 10\ninitial = 2\n",
            "t.toml:4:7: param[0].min: expected a whole number (this is an integer knob), got 0.5",
        ),
        (
            "type = \"int\"\nmin = 8\nmax = 512\nstep = 8\ninitial = 60\n",
            "t.toml:7:11: param[0].initial: expected a value on the grid min + k × step (8, 16, …), got 60: the nearest are 56 and 64",
        ),
        (
            "type = \"int\"\nmin = 1\nmax = 10\nstep = 0\ninitial = 1\n",
            "t.toml:6:8: param[0].step: expected a whole number ≥ 1, got 0",
        ),
        (
            "type = \"int\"\nmin = 1\nmax = 10\nstep = 20\ninitial = 1\n",
            "t.toml:6:8: param[0].step: step 20 is wider than the range from min 1 to max 10",
        ),
        (
            "type = \"int\"\nmin = 1\nmax = 10\ninitial = 11\n",
            "t.toml:6:11: param[0].initial: expected a value within [1, 10], got 11",
        ),
        (
            "type = \"int\"\nmin = -9223372036854775808\nmax = 10\ninitial = 1\n",
            "t.toml:4:7: param[0].min: expected an integer within ±2^53 (9007199254740992), got -9223372036854775808",
        ),
        (
            "type = \"choice\"\noptions = [\"a\", \"b\"]\ninitial = \"c\"\n",
            "t.toml:5:11: param[0].initial: expected one of the options (\"a\", \"b\"), got \"c\"",
        ),
        (
            "type = \"choice\"\noptions = [\"a\", \"b\"]\ninitial = 1\n",
            "t.toml:5:11: param[0].initial: expected one of the options as a string (\"a\", \"b\"), got the number 1",
        ),
        (
            "type = \"choice\"\noptions = [\"a\"]\ninitial = \"a\"\n",
            "t.toml:4:11: param[0].options: expected 2 to 256 options, got 1",
        ),
        (
            "type = \"choice\"\noptions = []\ninitial = \"a\"\n",
            "t.toml:4:11: param[0].options: expected 2 to 256 options, got 0",
        ),
        (
            "type = \"choice\"\noptions = [\"a\", \"b\", \"a\"]\ninitial = \"a\"\n",
            "t.toml:4:22: param[0].options[2]: duplicate option \"a\": options[0] already has it",
        ),
        (
            "type = \"choice\"\noptions = [\"a\", \" \"]\ninitial = \"a\"\n",
            "t.toml:4:17: param[0].options[1]: expected a non-empty option name",
        ),
        (
            "min = 0\nmax = 1\ninitial = \"fast\"\n",
            "t.toml:5:11: param[0].initial: expected a number, got the string \"fast\" (options by name are for choice knobs: type = \"choice\")",
        ),
        (
            "type = \"choice\"\ninitial = \"a\"\n",
            "t.toml:1:1: param[0].options: missing: a choice knob needs its options, e.g. options = [\"crc32\", \"sha256\"]",
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(errors(&one(body)), [expected], "{body}");
    }
}

#[test]
fn every_problem_of_every_param_is_reported() {
    let text = "[[param]]\nname = \"a\"\ntype = \"int\"\nmin = 1\nmax = 10\nstep = 0\ninitial = 2.5\n\
                [[param]]\nname = \"a\"\ntype = \"choice\"\nscale = \"log\"\noptions = [\"x\", \"x\"]\ninitial = \"y\"\n";
    assert_eq!(
        errors(text),
        [
            "t.toml:6:8: param[0].step: expected a whole number ≥ 1, got 0",
            "t.toml:7:11: param[0].initial: expected a whole number (this is an integer knob), got 2.5",
            "t.toml:9:8: param[1].name: duplicate name \"a\": param[0] already has it",
            "t.toml:11:9: param[1].scale: scale does not apply to a choice knob (it takes options and an initial option)",
            "t.toml:12:17: param[1].options[1]: duplicate option \"x\": options[0] already has it",
            "t.toml:13:11: param[1].initial: expected one of the options (\"x\", \"x\"), got \"y\"",
        ]
    );
}

#[test]
fn missing_bounds_name_what_the_kind_needs() {
    assert_eq!(
        errors(&one("type = \"int\"\nmax = 10\ninitial = 1\n")),
        ["t.toml:1:1: param[0].min: missing: an integer knob needs min and max"]
    );
    assert_eq!(
        errors(&one("initial = 1\n")),
        [
            "t.toml:1:1: param[0].min: missing: a real knob needs min and max",
            "t.toml:1:1: param[0].max: missing: a real knob needs min and max",
        ]
    );
    assert_eq!(
        errors(&one("min = 1\nmax = 2\n")),
        ["t.toml:1:1: param[0]: missing field `initial`"]
    );
}
