"""Readers and snapshots: typed values, the same object while nothing
changed, a new one after a change."""

from __future__ import annotations

import pytest

import hotpath
from conftest import drive


def test_get_returns_the_same_snapshot_while_unchanged(engine: hotpath.Engine) -> None:
    reader = engine.reader()
    first = reader.get()
    assert reader.get() is first
    engine.advance_clock(100_000)
    engine.step(1.0, 10, generation=first.generation)
    assert reader.get() is first, "a step that moved nothing keeps the snapshot"


def test_get_returns_a_new_snapshot_after_a_change(engine: hotpath.Engine) -> None:
    reader = engine.reader()
    first = reader.get()
    for d in drive(engine, 200):
        if d.applied:
            break
    second = reader.get()
    assert second is not first
    assert second.generation == engine.generation > first.generation
    assert first.generation == 0, "an old snapshot is immutable"
    assert reader.get() is second


def test_values_are_typed(engine: hotpath.Engine) -> None:
    snap = engine.reader().get()
    assert type(snap["batch_size"]) is int
    assert type(snap["linger_ms"]) is float
    assert type(snap["codec"]) is str
    assert snap.values == {"batch_size": 64, "linger_ms": 5.0, "codec": "zlib"}
    drive(engine, 200)
    moved = engine.reader().get()
    assert [type(v) for v in moved.values.values()] == [int, float, str]


def test_snapshot_reads_like_a_dict(engine: hotpath.Engine) -> None:
    snap = engine.reader().get()
    assert list(snap) == ["batch_size", "linger_ms", "codec"]
    assert snap.keys() == ["batch_size", "linger_ms", "codec"]
    assert snap.items() == [("batch_size", 64), ("linger_ms", 5.0), ("codec", "zlib")]
    assert len(snap) == 3 and "codec" in snap and "nope" not in snap
    assert snap.get("nope") is None and snap.get("nope", 7) == 7 and snap.get("codec") == "zlib"
    assert dict(snap) == snap.values
    with pytest.raises(KeyError, match="nope"):
        snap["nope"]
    assert repr(snap) == (
        "Snapshot(generation=0, values={'batch_size': 64, 'linger_ms': 5.0, 'codec': 'zlib'})"
    )


def test_values_is_a_copy(engine: hotpath.Engine) -> None:
    snap = engine.reader().get()
    values = snap.values
    values["batch_size"] = 1
    assert snap["batch_size"] == 64 and snap.values["batch_size"] == 64


def test_snapshots_cannot_be_changed(engine: hotpath.Engine) -> None:
    snap = engine.reader().get()
    with pytest.raises((TypeError, AttributeError)):
        snap["batch_size"] = 1  # type: ignore[index]
    with pytest.raises(AttributeError):
        snap.generation = 5  # type: ignore[misc]


def test_reader_generation_is_the_engines(engine: hotpath.Engine) -> None:
    reader = engine.reader()
    drive(engine, 200)
    assert reader.generation == engine.generation
    assert repr(reader) == f"Reader(generation={engine.generation})"


def test_readers_are_independent(engine: hotpath.Engine) -> None:
    a, b = engine.reader(), engine.reader()
    assert a.get().values == b.get().values
    assert a.get() is not b.get(), "each reader caches its own snapshot"
