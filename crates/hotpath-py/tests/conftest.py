"""Shared helpers of the hotpath Python tests."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable, List, Optional

import pytest

import hotpath

REPO = Path(__file__).resolve().parents[3]


def knobs() -> List[hotpath.Knob]:
    """One knob of each kind."""
    return [
        hotpath.Int("batch_size", 1, 512, 64),
        hotpath.Real("linger_ms", 0.1, 100.0, 5.0, log=True),
        hotpath.Choice("codec", ["none", "zlib", "lzma"], "zlib"),
    ]


def bowl(snap: hotpath.Snapshot) -> float:
    """A noiseless objective with its best at batch_size 200, linger 20 ms
    and codec zlib."""
    codec = {"none": 0.5, "zlib": 0.0, "lzma": 1.0}[snap["codec"]]
    return (
        1.0
        + ((snap["batch_size"] - 200) / 100.0) ** 2
        + math.log(snap["linger_ms"] / 20.0) ** 2 / 4.0
        + codec
    )


def drive(
    engine: hotpath.Engine,
    steps: int,
    objective: Callable[[hotpath.Snapshot], float] = bowl,
    dt_us: int = 100_000,
) -> List[hotpath.Decision]:
    """``steps`` digests, each ``dt_us`` after the previous one, measured
    at the live configuration."""
    reader = engine.reader()
    decisions = []
    for _ in range(steps):
        engine.advance_clock(dt_us)
        snap = reader.get()
        decisions.append(engine.step(objective(snap), 50, generation=snap.generation))
    return decisions


@pytest.fixture
def engine() -> Any:
    """An in-memory engine over :func:`knobs` on a manual clock."""
    e = hotpath.Engine(knobs(), seed=7, manual_clock=True)
    yield e
    e.close()


def hotpath_binary() -> Optional[Path]:
    """The built ``hotpath`` command: ``$HOTPATH_BIN``, else the
    workspace's ``target/{debug,release}/hotpath``, else on the PATH."""
    explicit = os.environ.get("HOTPATH_BIN")
    if explicit:
        return Path(explicit)
    for profile in ("debug", "release"):
        candidate = REPO / "target" / profile / "hotpath"
        if candidate.is_file():
            return candidate
    found = shutil.which("hotpath")
    return Path(found) if found else None


def serve_binary() -> Path:
    """The ``hotpath`` command if it has a ``serve`` subcommand; skips the
    test otherwise, saying why."""
    binary = hotpath_binary()
    if binary is None:
        pytest.skip("no hotpath binary (build it with `cargo build -p hotpath-cli` or set HOTPATH_BIN)")
    try:
        probe = subprocess.run(
            [str(binary), "serve", "--help"], capture_output=True, timeout=30, check=False
        )
    except OSError as e:
        pytest.skip(f"cannot run {binary}: {e}")
    if probe.returncode != 0:
        pytest.skip(
            f"{binary} has no `serve` subcommand yet (it arrives with crates/hotpath-server); "
            "the client is tested against the stand-in server meanwhile"
        )
    return binary
