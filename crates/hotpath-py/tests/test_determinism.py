"""Same seed and telemetry, same decisions and audit trail."""

from __future__ import annotations

import random
from typing import Any, List, Tuple

import hotpath
from conftest import bowl, knobs


def run(seed: int, noise_seed: int = 1) -> Tuple[List[Any], List[Any], Any]:
    engine = hotpath.Engine(knobs(), seed=seed, manual_clock=True)
    noise = random.Random(noise_seed)
    reader = engine.reader()
    decisions = []
    for _ in range(300):
        engine.advance_clock(100_000)
        snap = reader.get()
        objective = bowl(snap) + noise.gauss(0.0, 0.02)
        decisions.append(engine.step(objective, 50, generation=snap.generation).as_dict())
    trail = engine.audit()
    status = engine.status()
    engine.close()
    return decisions, trail, status


def test_same_seed_same_decisions_and_audit() -> None:
    a, b = run(11), run(11)
    assert a[0] == b[0]
    assert a[1] == b[1]
    assert a[2] == b[2]
    assert sum(d["applied"] for d in a[0]) > 10, "the run moved"


def test_another_seed_other_decisions() -> None:
    assert run(11)[0] != run(12)[0]
