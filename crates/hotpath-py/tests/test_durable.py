"""Durability: the audit log and the state survive an engine's process,
and a restart resumes (in subprocesses, as a service restarts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import pytest

import hotpath
from conftest import drive, knobs

HERE = Path(__file__).resolve().parent


def child(data_dir: Path, steps: int, ending: str = "close") -> Dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(HERE / "_durable_child.py"), str(data_dir), str(steps), ending],
        capture_output=True, text=True, timeout=120, cwd=HERE, check=False,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def log_lines(data_dir: Path) -> list:
    lines = []
    for path in sorted((data_dir / "audit").glob("audit.*.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines() if line]
    return lines


def test_a_restart_resumes(tmp_path: Path) -> None:
    first = child(tmp_path, 200)
    assert first["opened"]["restored"] is False
    assert (tmp_path / "state.json").is_file() and (tmp_path / "audit").is_dir()
    second = child(tmp_path, 50)
    assert second["opened"]["restored"] is True
    assert second["opened"]["generation"] >= first["status"]["generation"]
    assert second["opened"]["first_seq"] == first["last_seq"] + 1
    assert second["status"]["engine"]["iteration"] >= first["status"]["engine"]["iteration"]
    assert second["status"]["baseline"] == first["status"]["baseline"]
    lines = log_lines(tmp_path)
    assert [line["seq"] for line in lines] == list(range(len(lines))), "one gap-free chain"
    for before, after in zip(lines, lines[1:]):
        assert after["prev"] == before["hash"]
    assert lines[second["opened"]["first_seq"]]["type"] == "Restored"


def test_a_crash_resumes_from_the_last_save(tmp_path: Path) -> None:
    crashed = child(tmp_path, 120, "crash")
    resumed = child(tmp_path, 10)
    assert resumed["opened"]["restored"] is True
    assert resumed["opened"]["generation"] >= crashed["status"]["generation"]
    assert resumed["opened"]["first_seq"] > 0


def test_the_log_is_held_by_one_engine(tmp_path: Path) -> None:
    e = hotpath.Engine(knobs(), data_dir=tmp_path, manual_clock=True)
    with pytest.raises(hotpath.AuditLogError, match="is already open"):
        hotpath.Engine(knobs(), data_dir=tmp_path, manual_clock=True)
    e.close()
    hotpath.Engine(knobs(), data_dir=tmp_path, manual_clock=True).close()


def test_a_corrupt_state_is_an_error_not_a_reset(tmp_path: Path) -> None:
    hotpath.Engine(knobs(), data_dir=tmp_path, manual_clock=True).close()
    (tmp_path / "state.json").write_text("{ not json")
    with pytest.raises(hotpath.StateError, match="is corrupt"):
        hotpath.Engine(knobs(), data_dir=tmp_path, manual_clock=True)
    fresh = hotpath.Engine(knobs(), data_dir=tmp_path, manual_clock=True, resume="fresh")
    assert fresh.opened["restored"] is False
    fresh.close()


def test_resume_require_needs_a_state(tmp_path: Path) -> None:
    with pytest.raises(hotpath.StateError, match="there is no state file .* to resume from"):
        hotpath.Engine(knobs(), data_dir=tmp_path, resume="require")


def test_a_state_for_other_knobs_is_refused(tmp_path: Path) -> None:
    e = hotpath.Engine(knobs(), data_dir=tmp_path, manual_clock=True)
    drive(e, 50)
    e.close()
    with pytest.raises(hotpath.StateError):
        hotpath.Engine([hotpath.Real("other", 0, 1, 0.5)], data_dir=tmp_path, manual_clock=True)


def test_durable_status_and_summary(tmp_path: Path) -> None:
    e = hotpath.Engine(knobs(), data_dir=str(tmp_path), manual_clock=True)
    assert e.data_dir == tmp_path
    drive(e, 30)
    assert e.status()["audit"]["log_dir"] == str(tmp_path / "audit")
    assert e.save_state() == tmp_path / "state.json"
    summary = e.close()
    assert summary["state_file"] == str(tmp_path / "state.json")
    assert summary["events_logged"] == len(log_lines(tmp_path))
