"""The engine: construction, the control loop, the operator calls, status
and audit."""

from __future__ import annotations

import textwrap

import pytest

import hotpath
from conftest import bowl, drive, knobs


def test_engine_starts_at_the_initial_values(engine: hotpath.Engine) -> None:
    assert engine.generation == 0
    assert engine.names == ["batch_size", "linger_ms", "codec"]
    assert [type(k).__name__ for k in engine.knobs] == ["Int", "Real", "Choice"]
    assert engine.snapshot().values == {"batch_size": 64, "linger_ms": 5.0, "codec": "zlib"}
    assert engine.opened == {
        "restored": False, "generation": 0, "first_seq": 0, "truncations": 0, "truncated_bytes": 0,
    }
    assert engine.data_dir is None
    assert engine.now_us == 0
    assert repr(engine) == "Engine(knobs=['batch_size', 'linger_ms', 'codec'], generation=0)"


def test_the_control_loop_moves_the_knobs_and_improves(engine: hotpath.Engine) -> None:
    first = bowl(engine.snapshot())
    decisions = drive(engine, 400)
    kinds = {d.kind for d in decisions}
    assert kinds == {"NoChange", "ApplyPlus", "ApplyMinus", "Update"}
    centre = engine.status()["centre"]["values"]
    assert isinstance(centre["batch_size"], int) and isinstance(centre["codec"], str)
    assert bowl(centre) < first  # type: ignore[arg-type]


def test_decisions_describe_the_move(engine: hotpath.Engine) -> None:
    decisions = drive(engine, 200)
    waiting = decisions[0]
    assert (waiting.kind, waiting.reason, waiting.delta, waiting.proposed) == (
        "NoChange", "CollectingSamples", None, None,
    )
    assert not waiting.applied and waiting.violation is None and waiting.gradient is None
    moves = [d for d in decisions if d.kind != "NoChange"]
    assert moves, "the engine moved"
    probe = moves[0]
    assert probe.kind == "ApplyPlus" and probe.applied and probe.reason is None
    assert set(probe.delta) == {"batch_size", "linger_ms", "codec"}
    assert isinstance(probe.delta["batch_size"], int)
    assert isinstance(probe.delta["linger_ms"], float)
    assert isinstance(probe.delta["codec"], int)
    assert isinstance(probe.proposed["batch_size"], int)
    assert probe.proposed["codec"] in ("none", "zlib", "lzma")
    assert probe.generation == 1
    updates = [d for d in moves if d.kind == "Update" and d.gradient]
    assert updates and set(updates[0].gradient) == {"batch_size", "linger_ms", "codec"}
    d = probe.as_dict()
    assert set(d) == {
        "kind", "reason", "correlation_id", "delta", "proposed", "gradient", "applied",
        "violation", "generation",
    }
    assert repr(probe).startswith("Decision(ApplyPlus delta={'batch_size': ")
    assert "applied, generation=1)" in repr(probe)
    assert repr(waiting) == "Decision(NoChange reason=CollectingSamples, generation=0)"


def test_a_frozen_engine_decides_nothing(engine: hotpath.Engine) -> None:
    drive(engine, 25)
    engine.freeze()
    frozen_at = engine.generation
    decisions = drive(engine, 100)
    assert all(not d.applied and d.generation == frozen_at for d in decisions)
    assert {d.kind for d in decisions} == {"NoChange"}
    assert "SafeMode" in {d.reason for d in decisions}
    engine.resume()
    assert any(d.applied for d in drive(engine, 100))


def test_operator_calls(engine: hotpath.Engine) -> None:
    drive(engine, 150)
    moved = engine.generation
    assert moved > 0
    engine.freeze()
    status = engine.status()
    assert status["safe_mode"]["active"]
    assert status["safe_mode"]["reasons"] == [
        {"reason": "Manual", "description": "manual freeze", "exit": "manual", "exit_at_us": None}
    ]
    assert engine.resume() == ["Manual"]
    assert engine.resume() == []
    assert not engine.status()["safe_mode"]["active"]
    receipt = engine.rollback()
    assert receipt["reason"] == "Manual" and receipt["old_generation"] == moved
    assert engine.snapshot().values == {"batch_size": 64, "linger_ms": 5.0, "codec": "zlib"}
    assert engine.set_baseline() == engine.status()["centre"]["generation"]
    assert engine.save_state() is None


def test_propose_goes_through_the_guardrails(engine: hotpath.Engine) -> None:
    engine.advance_clock(1_000_000)
    receipt = engine.propose({"batch_size": 90, "codec": "none"})
    assert receipt["kind"] == "Update" and receipt["new_generation"] == 1
    assert engine.snapshot().values == {"batch_size": 90, "linger_ms": 5.0, "codec": "none"}
    with pytest.raises(hotpath.Refused) as caught:
        engine.propose({"batch_size": 512})
    refused = caught.value
    assert refused.kind == "DeltaTooLarge"
    assert refused.fields["knob"] == "batch_size" and refused.fields["index"] == 0
    assert refused.fields["limit"] == 0.1
    assert str(refused) == refused.violation.message.join(["refused: ", ""])
    assert str(refused).startswith("refused: batch_size would move by 0.825")
    engine.freeze()
    engine.advance_clock(1_000_000)
    with pytest.raises(hotpath.Refused) as caught:
        engine.propose({"batch_size": 91})
    assert caught.value.kind == "InSafeMode"
    assert caught.value.fields == {"reason": "Manual", "until_us": None}
    assert str(caught.value) == "refused: in safe mode (manual freeze); exits on resume or when its condition clears"
    engine.resume()
    with pytest.raises(hotpath.Refused) as caught:
        engine.propose({"batch_size": 90.5})
    assert caught.value.kind == "OffGrid"
    with pytest.raises(hotpath.ConfigError, match="no knob is called `nope`"):
        engine.propose({"nope": 1})
    with pytest.raises(hotpath.ConfigError, match=r"codec = \"gzip\" is outside the bounds"):
        engine.propose({"codec": "gzip"})
    with pytest.raises(TypeError):
        engine.propose({"codec": 2})


def test_status_has_every_part(engine: hotpath.Engine) -> None:
    drive(engine, 60)
    status = engine.status()
    assert set(status) == {
        "generation", "values", "centre", "baseline", "safe_mode", "engine", "counts", "audit",
        "clock_us",
    }
    assert status["baseline"] == {
        "generation": 0, "values": {"batch_size": 64, "linger_ms": 5.0, "codec": "zlib"},
    }
    assert list(status["values"]) == engine.names, "named in the knobs' order"
    assert list(status["centre"]["values"]) == engine.names
    assert status["engine"]["stage"] in ("calibrating", "tuning")
    assert status["counts"]["engine"]["digests"] == 60
    assert status["clock_us"] == 6_000_000
    assert status["audit"]["log_dir"] is None and status["audit"]["lost"] == 0


def test_stage_goes_from_calibrating_to_tuning(engine: hotpath.Engine) -> None:
    assert engine.status()["engine"]["stage"] == "calibrating"
    drive(engine, 300)
    assert engine.status()["engine"]["stage"] == "tuning"
    fixed = hotpath.Engine(knobs(), manual_clock=True, calibration=False)
    assert fixed.status()["engine"]["stage"] == "tuning"


def test_audit_pages_by_seq(engine: hotpath.Engine) -> None:
    drive(engine, 120)
    events = engine.audit()
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "gap-free"
    # From the first event: the start's, recorded while the engine opened.
    assert seqs[0] == 0
    assert [e["type"] for e in events[:2]] == ["started", "baseline-set"]
    event = events[0]
    assert list(event) == ["seq", "timestamp_us", "generation", "type", "text", "details"]
    assert event["text"].startswith(f"#{event['seq']} t=")
    applied = [e for e in events if e["type"] == "applied"]
    assert applied and "Applied" in applied[0]["details"]
    assert engine.audit(after=seqs[2], limit=3) == events[3:6]
    assert engine.audit(after=seqs[-1]) == []
    assert engine.audit(limit=0) == []
    with pytest.raises(hotpath.ConfigError, match="^after = -1 is invalid"):
        engine.audit(after=-1)


def test_audit_history_is_bounded() -> None:
    e = hotpath.Engine(knobs(), manual_clock=True, audit_history=5)
    drive(e, 150)
    held = e.audit()
    assert len(held) == 5
    assert e.status()["audit"]["forgotten"] > 0
    assert e.status()["audit"]["oldest_seq"] == held[0]["seq"]


def test_settings_by_keyword() -> None:
    e = hotpath.Engine(
        knobs(), hotpath.Guardrails.aggressive(), hotpath.RollbackPolicy.conservative(), 3,
        manual_clock=True, eval_window_digests=2, eval_window_us=300_000, settle_time_us=0,
    )
    decisions = drive(e, 60)
    assert any(d.kind != "NoChange" for d in decisions[:30]), "short windows move sooner"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(eval_window_digests=0), "eval_window_digests must be at least 1"),
        (dict(eval_window_digests=2**16 + 1), "eval_window_digests must be at most 65536, got 65537"),
        (dict(eval_window_us=0), "eval_window_us must be at least 1"),
        (dict(settle_time_us=600_000), "settle_time_us (600000) must be shorter than eval_window_us (500000)"),
        (dict(seed=-1), "seed = -1 is invalid: expected an integer in [0, 18446744073709551615]"),
        (dict(resume="later"), 'resume = "later" is invalid: expected "fresh", "if_present" or "require"'),
        (dict(audit_history=-1), "audit_history = -1 is invalid: expected an integer in [0, 1048576]"),
        (dict(audit_history=2**20 + 1), "audit_history = 1048577 is invalid: expected an integer in [0, 1048576]"),
    ],
)
def test_bad_settings_are_config_errors(kwargs, message) -> None:
    with pytest.raises(hotpath.ConfigError) as caught:
        hotpath.Engine(knobs(), **kwargs)
    assert str(caught.value) == message


def test_bad_knob_lists() -> None:
    with pytest.raises(hotpath.ConfigError, match="^num_params must be at least 1$"):
        hotpath.Engine([])
    twice = [hotpath.Real("x", 0, 1, 0.5), hotpath.Int("x", 0, 9, 1)]
    with pytest.raises(hotpath.ConfigError, match=r"^params\[1\]: it has the same name as params\[0\]$"):
        hotpath.Engine(twice)
    with pytest.raises(TypeError, match="knobs must be hotpath.Real, hotpath.Int or hotpath.Choice, not dict"):
        hotpath.Engine([{"name": "x"}])
    with pytest.raises(TypeError):
        hotpath.Engine(knobs(), guardrails=hotpath.RollbackPolicy())


def test_advance_clock_needs_a_manual_clock() -> None:
    e = hotpath.Engine(knobs())
    with pytest.raises(hotpath.ConfigError, match="manual_clock=True"):
        e.advance_clock(1)
    e.step(1.0, 10)
    assert e.status()["counts"]["engine"]["digests"] == 1


def test_closed_engines_refuse_calls(engine: hotpath.Engine) -> None:
    reader = engine.reader()
    summary = engine.close()
    assert summary == {"rolled_back": False, "events_logged": None, "state_file": None, "state_saves": 0}
    assert engine.closed and engine.close() is None
    for call in (lambda: engine.step(1.0, 1), engine.freeze, engine.resume, engine.rollback,
                 engine.set_baseline, engine.status, engine.audit, engine.save_state,
                 lambda: engine.propose({"batch_size": 65})):
        with pytest.raises(hotpath.ClosedError, match="^the engine is closed$"):
            call()
    assert reader.get()["batch_size"] == 64, "readers outlive the engine's host"


def test_context_manager_closes() -> None:
    with hotpath.Engine(knobs(), manual_clock=True) as e:
        drive(e, 5)
    assert e.closed


def test_close_can_roll_back() -> None:
    e = hotpath.Engine(knobs(), manual_clock=True)
    drive(e, 150)
    assert e.snapshot().values != {"batch_size": 64, "linger_ms": 5.0, "codec": "zlib"}
    assert e.close(rollback_to_baseline=True)["rolled_back"] is True


CONFIG = textwrap.dedent(
    """
    seed = 5

    [[param]]
    name = "batch_size"
    min = 1
    max = 512
    initial = 64

    [[param]]
    name = "linger_ms"
    min = 0.5
    max = 50
    initial = 5

    [guardrails]
    preset = "aggressive"

    [spsa]
    eval_window_digests = 2
    """
)


def test_from_config_reads_the_clis_toml(tmp_path) -> None:
    path = tmp_path / "tuning.toml"
    path.write_text(CONFIG)
    e = hotpath.Engine.from_config(path, manual_clock=True)
    assert e.names == ["batch_size", "linger_ms"]
    assert e.snapshot().values == {"batch_size": 64.0, "linger_ms": 5.0}
    moves = [d for d in drive(e, 100, lambda s: (s["batch_size"] - 100) ** 2 / 1e4 + 1) if d.applied]
    assert moves
    e2 = hotpath.Engine.from_config(str(path), overrides=["guardrails.max_delta_per_step=0.02"])
    assert e2.generation == 0


def test_from_config_errors_carry_the_diagnostics(tmp_path) -> None:
    path = tmp_path / "tuning.toml"
    path.write_text(CONFIG.replace('preset = "aggressive"', "max_delta_per_step = 1.5"))
    with pytest.raises(hotpath.ConfigError) as caught:
        hotpath.Engine.from_config(path)
    assert str(caught.value) == (
        f"{path}:17:22: guardrails.max_delta_per_step: expected a fraction of the range in (0, 1], got 1.5"
    )
    with pytest.raises(hotpath.ConfigError, match="^`nonsense` is not KEY=VALUE$"):
        hotpath.Engine.from_config(tmp_path / "tuning.toml", overrides=["nonsense"])
    with pytest.raises(hotpath.ConfigError, match="^cannot read .*missing.toml: "):
        hotpath.Engine.from_config(tmp_path / "missing.toml")
