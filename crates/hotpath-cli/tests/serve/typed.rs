//! `hotpath serve` on a config of every kind of knob, from its TOML to the
//! wire: `GET /v1/config` and the watch stream give an integer knob as a
//! JSON integer and a choice as its option's name, the metrics give every
//! knob's value and a choice's live option, and tuning keeps them so.

use super::drive_on;
use super::http::{get, metric, Watch};
use super::process::{Serve, FAST_CONFIG};
use serde_json::Value;
use std::time::Duration;

/// An integer, a real on a log scale and a choice, with the test
/// config's settings (tuning moves within seconds).
fn typed_config() -> String {
    let settings = FAST_CONFIG
        .split_once("[guardrails]")
        .map_or("", |(_, rest)| rest);
    format!("{TYPED_PARAMS}[guardrails]{settings}")
}

const TYPED_PARAMS: &str = r#"seed = 3
calibration = false

[[param]]
name = "batch_size"
type = "int"
min = 1
max = 512
step = 1
initial = 64

[[param]]
name = "linger_ms"
scale = "log"
min = 0.5
max = 50
initial = 5

[[param]]
name = "codec"
type = "choice"
options = ["none", "lz4", "zstd"]
initial = "lz4"

"#;

const OPTIONS: [&str; 3] = ["none", "lz4", "zstd"];

/// The typed values of a config body, checked for their kinds.
fn typed(config: &Value) -> (i64, f64, String) {
    let values = &config["values"];
    let batch = values["batch_size"]
        .as_i64()
        .unwrap_or_else(|| panic!("batch_size is not a JSON integer: {config}"));
    let linger = values["linger_ms"].as_f64().expect("linger_ms a number");
    let codec = values["codec"].as_str().expect("codec an option's name");
    assert!((1..=512).contains(&batch), "{config}");
    assert!((0.5..=50.0).contains(&linger), "{config}");
    assert!(OPTIONS.contains(&codec), "{config}");
    (batch, linger, codec.to_owned())
}

#[test]
fn typed_knobs_from_toml_are_typed_on_the_wire_and_in_the_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let serve = Serve::start(dir.path(), &typed_config(), &[]);
    let addr = &serve.addr;
    let first = get(addr, "/v1/config").json();
    assert_eq!(typed(&first), (64, 5.0, "lz4".to_owned()));
    assert!(
        get(addr, "/v1/config")
            .text()
            .contains("\"batch_size\":64,"),
        "an integer is written without a fraction"
    );
    let metrics = get(addr, "/metrics").text();
    let series = [
        ("hotpath_knob_value{knob=\"batch_size\"}", 64.0),
        ("hotpath_knob_value{knob=\"linger_ms\"}", 5.0),
        ("hotpath_knob_value{knob=\"codec\"}", 1.0),
        (
            "hotpath_knob_choice_info{knob=\"codec\",option=\"none\"}",
            0.0,
        ),
        (
            "hotpath_knob_choice_info{knob=\"codec\",option=\"lz4\"}",
            1.0,
        ),
        (
            "hotpath_knob_choice_info{knob=\"codec\",option=\"zstd\"}",
            0.0,
        ),
    ];
    for (name, value) in series {
        assert_eq!(metric(&metrics, name), Some(value), "{name} in\n{metrics}");
    }
    let text = get(addr, "/v1/status").text();
    // In the knobs' order, as /v1/config and /v1/knobs, not sorted.
    let at = |key: &str| text.find(&format!("\"{key}\":")).expect(key);
    assert!(
        at("batch_size") < at("linger_ms") && at("linger_ms") < at("codec"),
        "{text}"
    );
    let status: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(status["values"]["codec"], "lz4", "{status}");
    assert_eq!(status["baseline"]["values"]["batch_size"], 64, "{status}");

    // Tune on a bowl around batch_size 200 and linger 5 ms, with zstd the
    // best codec, until batch_size has moved; every configuration read on
    // the way is typed.
    let mut watch = Watch::open(addr, None);
    let objective = |config: &Value| {
        let (b, l, codec) = typed(config);
        let penalty = match codec.as_str() {
            "zstd" => 0.0,
            "lz4" => 0.2,
            _ => 0.5,
        };
        ((b as f64 - 200.0) / 100.0).powi(2) + (l / 5.0).ln().powi(2) + penalty
    };
    let reached = drive_on(&serve, Duration::from_secs(30), objective, |config| {
        typed(config).0 != 64
    });
    assert_ne!(typed(&reached).0, 64, "batch_size never moved in 30 s");
    // The last window closes and is stepped; then nothing moves.
    std::thread::sleep(Duration::from_millis(300));
    let event = watch
        .next_event(Duration::from_secs(5))
        .expect("a config event on the watch stream");
    let watched: Value = serde_json::from_str(&event.data).expect("a JSON config");
    typed(&watched);
    let live = typed(&get(addr, "/v1/config").json());
    let metrics = get(addr, "/metrics").text();
    assert_eq!(
        metric(&metrics, "hotpath_knob_value{knob=\"batch_size\"}"),
        Some(live.0 as f64),
        "{metrics}"
    );
    let on: Vec<&str> = OPTIONS
        .iter()
        .copied()
        .filter(|o| {
            let series = format!("hotpath_knob_choice_info{{knob=\"codec\",option=\"{o}\"}}");
            metric(&metrics, &series) == Some(1.0)
        })
        .collect();
    assert_eq!(
        on,
        [live.2.as_str()],
        "exactly the live option is 1:\n{metrics}"
    );
}
